/*
 * The connection guard. See guard.h.
 *
 * The open connections are a list, newest first, under one lock. The
 * accept policy and the connection notifications run in libmicrohttpd's
 * listening thread, one after the other, so a connection the policy lets in
 * is in the list before the next one is judged. A connection is closed from
 * outside with shutdown(): its thread then reads the end of the stream and
 * libmicrohttpd closes it as if the client had. The descriptor stays valid
 * while its entry is in the list, since libmicrohttpd sends the "closed"
 * notification (which removes the entry, under the lock) before it closes
 * the descriptor.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"

/* How often the watchdog looks for connections past their deadline. */
#define WATCH_INTERVAL_MS 100

struct guard_entry {
	struct guard_entry *next, *prev;
	int fd;
	unsigned char address[16];   /* IPv4 as IPv4-mapped IPv6 */
	long long since_ms;          /* the current deadline counts from here */
	bool busy;                   /* the handler is answering: no deadline */
	bool closing;                /* shut down by the guard, not yet closed */
};

struct guard {
	struct guard_settings settings;
	pthread_mutex_t lock;
	pthread_cond_t stop_signal;
	bool stopping;
	bool watching;
	pthread_t watchdog;
	struct guard_entry *entries;
	unsigned open;               /* entries in the list */
	unsigned closing;            /* of which shut down by the guard */
};

static long long now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* The address as 16 bytes, so that one comparison serves both families;
 * false for a family without an address (a socketpair in the fuzzer). */
static bool address_key(const struct sockaddr *address, socklen_t length, unsigned char key[16])
{
	memset(key, 0, 16);
	if(address == NULL){
		return false;
	}
	if(address->sa_family == AF_INET && length >= (socklen_t)sizeof(struct sockaddr_in)){
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
		key[10] = 0xff;
		key[11] = 0xff;
		memcpy(key + 12, &v4->sin_addr, 4);
		return true;
	}
	if(address->sa_family == AF_INET6 && length >= (socklen_t)sizeof(struct sockaddr_in6)){
		memcpy(key, &((const struct sockaddr_in6 *)address)->sin6_addr, 16);
		return true;
	}
	return false;
}

unsigned guard_hard_limit(const struct guard_settings *settings)
{
	return settings->max_connections + settings->max_connections / 2 + 1;
}

/* Shuts the connection down (guard->lock held); its thread closes it. */
static void close_entry(struct guard *guard, struct guard_entry *entry)
{
	if(!entry->closing){
		shutdown(entry->fd, SHUT_RDWR);
		entry->closing = true;
		guard->closing++;
	}
}

static void *watchdog(void *data)
{
	struct guard *guard = data;
	pthread_mutex_lock(&guard->lock);
	while(!guard->stopping){
		struct timespec deadline;
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += WATCH_INTERVAL_MS * 1000000L;
		if(deadline.tv_nsec >= 1000000000L){
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&guard->stop_signal, &guard->lock, &deadline);
		long long expired_before = now_ms() - guard->settings.request_timeout_ms;
		for(struct guard_entry *entry = guard->entries; entry; entry = entry->next){
			if(!entry->busy && entry->since_ms <= expired_before){
				close_entry(guard, entry);
			}
		}
	}
	pthread_mutex_unlock(&guard->lock);
	return NULL;
}

struct guard *guard_new(const struct guard_settings *settings)
{
	struct guard *guard = calloc(1, sizeof(*guard));
	if(guard == NULL){
		return NULL;
	}
	guard->settings = *settings;
	pthread_mutex_init(&guard->lock, NULL);
	pthread_cond_init(&guard->stop_signal, NULL);
	if(settings->request_timeout_ms > 0){
		if(pthread_create(&guard->watchdog, NULL, watchdog, guard) != 0){
			guard_free(guard);
			return NULL;
		}
		guard->watching = true;
	}
	return guard;
}

void guard_free(struct guard *guard)
{
	if(guard == NULL){
		return;
	}
	if(guard->watching){
		pthread_mutex_lock(&guard->lock);
		guard->stopping = true;
		pthread_cond_broadcast(&guard->stop_signal);
		pthread_mutex_unlock(&guard->lock);
		pthread_join(guard->watchdog, NULL);
	}
	while(guard->entries){
		struct guard_entry *entry = guard->entries;
		guard->entries = entry->next;
		free(entry);
	}
	pthread_mutex_destroy(&guard->lock);
	pthread_cond_destroy(&guard->stop_signal);
	free(guard);
}

/* The connection to close to make room: the one that has waited longest
 * for its request to arrive (guard->lock held). A client that sends its
 * request at once is answered long before it becomes the oldest. */
static struct guard_entry *eviction_victim(struct guard *guard)
{
	struct guard_entry *victim = NULL;
	for(struct guard_entry *entry = guard->entries; entry; entry = entry->next){
		if(!entry->busy && !entry->closing && (victim == NULL || entry->since_ms <= victim->since_ms)){
			victim = entry;
		}
	}
	return victim;
}

static unsigned open_from(const struct guard *guard, const unsigned char key[16])
{
	unsigned count = 0;
	for(const struct guard_entry *entry = guard->entries; entry; entry = entry->next){
		if(!entry->closing && memcmp(entry->address, key, 16) == 0){
			count++;
		}
	}
	return count;
}

static bool admit(struct guard *guard, const unsigned char key[16])
{
	if(open_from(guard, key) >= guard->settings.max_per_address || guard->open >= guard_hard_limit(&guard->settings)){
		return false;
	}
	if(guard->open - guard->closing < guard->settings.max_connections){
		return true;
	}
	struct guard_entry *victim = eviction_victim(guard);
	if(victim == NULL){
		return false;   /* every connection is being answered: wait for one */
	}
	close_entry(guard, victim);
	return true;
}

enum MHD_Result guard_accept(void *data, const struct sockaddr *address, socklen_t length)
{
	struct guard *guard = data;
	unsigned char key[16];
	address_key(address, length, key);
	pthread_mutex_lock(&guard->lock);
	bool admitted = admit(guard, key);
	pthread_mutex_unlock(&guard->lock);
	return admitted ? MHD_YES : MHD_NO;
}

static void add_entry(struct guard *guard, struct MHD_Connection *connection, void **socket_context)
{
	const union MHD_ConnectionInfo *fd_info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *address = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct guard_entry *entry = fd_info ? calloc(1, sizeof(*entry)) : NULL;
	if(entry == NULL){
		/* Untracked, it would escape every limit: refuse it instead. */
		if(fd_info){
			shutdown(fd_info->connect_fd, SHUT_RDWR);
		}
		*socket_context = NULL;
		return;
	}
	entry->fd = fd_info->connect_fd;
	if(address && address->client_addr){
		socklen_t length = address->client_addr->sa_family == AF_INET6
			? (socklen_t)sizeof(struct sockaddr_in6) : (socklen_t)sizeof(struct sockaddr_in);
		address_key(address->client_addr, length, entry->address);
	}
	entry->since_ms = now_ms();
	pthread_mutex_lock(&guard->lock);
	entry->next = guard->entries;
	if(guard->entries){
		guard->entries->prev = entry;
	}
	guard->entries = entry;
	guard->open++;
	pthread_mutex_unlock(&guard->lock);
	*socket_context = entry;
}

static void remove_entry(struct guard *guard, struct guard_entry *entry)
{
	pthread_mutex_lock(&guard->lock);
	if(entry->prev){
		entry->prev->next = entry->next;
	}else{
		guard->entries = entry->next;
	}
	if(entry->next){
		entry->next->prev = entry->prev;
	}
	guard->open--;
	if(entry->closing){
		guard->closing--;
	}
	pthread_mutex_unlock(&guard->lock);
	free(entry);
}

void guard_notify_connection(void *data, struct MHD_Connection *connection, void **socket_context,
		enum MHD_ConnectionNotificationCode code)
{
	struct guard *guard = data;
	if(code == MHD_CONNECTION_NOTIFY_STARTED){
		add_entry(guard, connection, socket_context);
	}else if(code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context){
		remove_entry(guard, *socket_context);
		*socket_context = NULL;
	}
}

static struct guard_entry *entry_of(struct MHD_Connection *connection)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return info ? info->socket_context : NULL;
}

void guard_set_busy(struct guard *guard, struct MHD_Connection *connection, bool busy)
{
	struct guard_entry *entry = guard ? entry_of(connection) : NULL;
	if(entry){
		pthread_mutex_lock(&guard->lock);
		entry->busy = busy;
		entry->since_ms = now_ms();
		pthread_mutex_unlock(&guard->lock);
	}
}

void guard_request_done(struct guard *guard, struct MHD_Connection *connection)
{
	guard_set_busy(guard, connection, false);
}
