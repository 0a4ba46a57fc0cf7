/*
 * Pooled MQTT connections, one per token. See broker_link.h.
 *
 * Each connection runs libmosquitto's network thread; a request waits on
 * the connection's condition variable for the CONNACK, the PUBACK and the
 * reply, each bounded by the timeout. Requests for one token are handled
 * one at a time (they share one correlation slot); different tokens run in
 * parallel. The pool's lock is never held across network work: a new
 * connection is put in the pool first and connects (without blocking, its
 * TCP handshake in libmosquitto's thread) under its own request lock. A connection the broker closes (revoke, expiry) is not
 * reopened: it is dropped, and the next request logs in anew and gets the
 * broker's answer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include "mqtt_api.h"
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <uthash.h>

#include "broker_link.h"
#include "control_topics.h"
#include "token_format.h"

#define CORRELATION_BYTES 16

enum link_state { LINK_CONNECTING, LINK_READY, LINK_REFUSED, LINK_FAILED, LINK_GONE };

struct broker_link {
	unsigned char key[TOKEN_HASH_LEN];
	struct mosquitto *mosq;
	int socket_copy;              /* dup of its socket, to abort a hung connect; -1: none */
	bool connect_started;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	pthread_mutex_t request_lock;
	enum link_state state;
	int users;
	time_t last_used;
	/* The request in flight. */
	int mid;
	int puback_code;
	bool puback_seen;
	unsigned char correlation[CORRELATION_BYTES];
	char *reply;
	bool retired;                 /* out of the pool, destroyed once unused */
	struct broker_link *next_retired;
	UT_hash_handle hh;
};

struct broker_pool {
	struct broker_settings settings;
	pthread_mutex_t lock;
	pthread_cond_t stop_signal;
	bool stopping;
	pthread_t reaper;
	struct broker_link *links;
	struct broker_link *retired;
};

static void set_state(struct broker_link *link, enum link_state state)
{
	pthread_mutex_lock(&link->lock);
	/* A refusal stays a refusal when the broker then closes the socket. */
	if(link->state != LINK_REFUSED && link->state != LINK_FAILED){
		link->state = state;
	}
	pthread_cond_broadcast(&link->changed);
	pthread_mutex_unlock(&link->lock);
}

static void on_connect(struct mosquitto *mosq, void *data, int code, int flags, const mosquitto_property *properties)
{
	(void)mosq;
	(void)flags;
	(void)properties;
	struct broker_link *link = data;
	bool refused = code == MQTT_RC_BAD_USERNAME_OR_PASSWORD || code == MQTT_RC_NOT_AUTHORIZED;
	set_state(link, code == 0 ? LINK_READY : refused ? LINK_REFUSED : LINK_FAILED);
}

static void on_disconnect(struct mosquitto *mosq, void *data, int code, const mosquitto_property *properties)
{
	(void)code;
	(void)properties;
	/* No automatic reconnection: see the top of this file. */
	mosquitto_disconnect(mosq);
	set_state(data, LINK_GONE);
}

static void on_publish(struct mosquitto *mosq, void *data, int mid, int code, const mosquitto_property *properties)
{
	(void)mosq;
	(void)properties;
	struct broker_link *link = data;
	pthread_mutex_lock(&link->lock);
	if(mid == link->mid){
		link->puback_seen = true;
		link->puback_code = code;
		pthread_cond_broadcast(&link->changed);
	}
	pthread_mutex_unlock(&link->lock);
}

static void on_message(struct mosquitto *mosq, void *data, const struct mosquitto_message *message,
		const mosquitto_property *properties)
{
	(void)mosq;
	struct broker_link *link = data;
	void *correlation = NULL;
	uint16_t correlation_len = 0;
	if(!mosquitto_property_read_binary(properties, MQTT_PROP_CORRELATION_DATA, &correlation, &correlation_len, false)){
		return;
	}
	pthread_mutex_lock(&link->lock);
	if(link->reply == NULL && correlation_len == CORRELATION_BYTES
			&& memcmp(correlation, link->correlation, CORRELATION_BYTES) == 0){
		link->reply = malloc((size_t)message->payloadlen + 1);
		if(link->reply){
			memcpy(link->reply, message->payload, (size_t)message->payloadlen);
			link->reply[message->payloadlen] = '\0';
		}
		pthread_cond_broadcast(&link->changed);
	}
	pthread_mutex_unlock(&link->lock);
	free(correlation);
}

static bool still_connecting(struct broker_link *link)
{
	pthread_mutex_lock(&link->lock);
	bool connecting = link->state == LINK_CONNECTING;
	pthread_mutex_unlock(&link->lock);
	return connecting;
}

static void destroy_link(struct broker_link *link)
{
	if(link->mosq){
		/* A connect the broker never completes would keep libmosquitto's
		 * thread (and so loop_stop) waiting for minutes: abort it. The
		 * copy is ours, so it cannot name another file meanwhile. */
		if(link->socket_copy >= 0 && still_connecting(link)){
			shutdown(link->socket_copy, SHUT_RDWR);
		}
		mosquitto_disconnect(link->mosq);
		mosquitto_loop_stop(link->mosq, false);
		mosquitto_destroy(link->mosq);
	}
	if(link->socket_copy >= 0){
		close(link->socket_copy);
	}
	free(link->reply);
	pthread_mutex_destroy(&link->lock);
	pthread_cond_destroy(&link->changed);
	pthread_mutex_destroy(&link->request_lock);
	free(link);
}

static bool configure(struct broker_link *link, const struct broker_settings *settings, const char *token)
{
	char client_id[40] = "tokens-console-";
	unsigned char random[8];
	if(RAND_bytes(random, sizeof(random)) != 1){
		return false;
	}
	for(size_t i = 0; i < sizeof(random); i++){
		snprintf(client_id + strlen(client_id), 3, "%02x", random[i]);
	}
	link->mosq = mosquitto_new(client_id, true, link);
	if(link->mosq == NULL
			|| mosquitto_int_option(link->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5) != MOSQ_ERR_SUCCESS
			|| mosquitto_int_option(link->mosq, MOSQ_OPT_TCP_NODELAY, 1) != MOSQ_ERR_SUCCESS
			|| mosquitto_username_pw_set(link->mosq, "console", token) != MOSQ_ERR_SUCCESS){
		return false;
	}
	if(settings->cafile && (mosquitto_tls_set(link->mosq, settings->cafile, NULL, NULL, NULL, NULL) != MOSQ_ERR_SUCCESS
			|| mosquitto_tls_insecure_set(link->mosq, settings->insecure) != MOSQ_ERR_SUCCESS)){
		return false;
	}
	mosquitto_connect_v5_callback_set(link->mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(link->mosq, on_disconnect);
	mosquitto_publish_v5_callback_set(link->mosq, on_publish);
	mosquitto_message_v5_callback_set(link->mosq, on_message);
	return true;
}

/* A connection not connected yet; NULL when out of memory. */
static struct broker_link *new_link(const unsigned char key[TOKEN_HASH_LEN])
{
	struct broker_link *link = calloc(1, sizeof(*link));
	if(link == NULL){
		return NULL;
	}
	memcpy(link->key, key, TOKEN_HASH_LEN);
	link->socket_copy = -1;
	pthread_mutex_init(&link->lock, NULL);
	pthread_cond_init(&link->changed, NULL);
	pthread_mutex_init(&link->request_lock, NULL);
	link->state = LINK_CONNECTING;
	return link;
}

/* Starts the TCP connect and the login (link->request_lock held, the
 * pool's lock not); the CONNACK is awaited by request_on. Only a host name
 * to look up can make this wait, and only this token's requests wait. */
static enum broker_outcome start_connect(struct broker_link *link, const struct broker_settings *settings,
		const char *token)
{
	link->connect_started = true;
	if(!configure(link, settings, token)){
		set_state(link, LINK_FAILED);
		return BROKER_FAILED;
	}
	if(mosquitto_connect_bind_async(link->mosq, settings->host, settings->port, 60, NULL) != MOSQ_ERR_SUCCESS){
		set_state(link, LINK_FAILED);
		return BROKER_UNREACHABLE;
	}
	/* Before the loop starts, while no other thread can close the socket. */
	link->socket_copy = dup(mosquitto_socket(link->mosq));
	if(mosquitto_loop_start(link->mosq) != MOSQ_ERR_SUCCESS){
		set_state(link, LINK_FAILED);
		return BROKER_FAILED;
	}
	return BROKER_REPLIED;
}

static struct timespec deadline_after(int milliseconds)
{
	struct timespec when;
	clock_gettime(CLOCK_REALTIME, &when);
	when.tv_sec += milliseconds / 1000;
	when.tv_nsec += (long)(milliseconds % 1000) * 1000000L;
	if(when.tv_nsec >= 1000000000L){
		when.tv_sec++;
		when.tv_nsec -= 1000000000L;
	}
	return when;
}

/* Waits (link->lock held) until done() or the deadline; false on timeout. */
static bool wait_for(struct broker_link *link, const struct timespec *deadline, bool (*done)(const struct broker_link *))
{
	while(!done(link)){
		if(pthread_cond_timedwait(&link->changed, &link->lock, deadline) == ETIMEDOUT){
			return done(link);
		}
	}
	return true;
}

static bool connect_settled(const struct broker_link *link)
{
	return link->state != LINK_CONNECTING;
}

static bool reply_settled(const struct broker_link *link)
{
	return link->reply != NULL || link->state != LINK_READY || (link->puback_seen && link->puback_code >= 0x80);
}

static int publish_request(struct broker_link *link, const char *payload)
{
	mosquitto_property *properties = NULL;
	int rc = mosquitto_property_add_string(&properties, MQTT_PROP_RESPONSE_TOPIC, RESPONSE_TOPIC);
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_property_add_binary(&properties, MQTT_PROP_CORRELATION_DATA, link->correlation, CORRELATION_BYTES);
	}
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_publish_v5(link->mosq, &link->mid, CONTROL_TOPIC, (int)strlen(payload), payload, 1, false, properties);
	}
	mosquitto_property_free_all(&properties);
	return rc;
}

/* deadline bounds the login (when still in progress), then the reply has
 * the timeout of its own. */
static enum broker_outcome request_on(struct broker_link *link, const struct broker_settings *settings,
		const char *payload, char **reply, struct timespec deadline)
{
	pthread_mutex_lock(&link->lock);
	bool connected = wait_for(link, &deadline, connect_settled) && link->state == LINK_READY;
	enum link_state state = link->state;
	free(link->reply);
	link->reply = NULL;
	link->puback_seen = false;
	link->mid = -1;
	if(!connected){
		pthread_mutex_unlock(&link->lock);
		return state == LINK_REFUSED ? BROKER_REFUSED_LOGIN : state == LINK_CONNECTING ? BROKER_TIMEOUT : BROKER_UNREACHABLE;
	}
	/* A guessable correlation would let another client of the response
	 * topic pass its own reply off as the broker's. */
	if(RAND_bytes(link->correlation, CORRELATION_BYTES) != 1){
		pthread_mutex_unlock(&link->lock);
		return BROKER_FAILED;
	}
	/* The PUBACK may arrive before mosquitto_publish_v5 returns the mid:
	 * hold the lock across the call, the callback waits for it. */
	int rc = publish_request(link, payload);
	deadline = deadline_after(settings->timeout_ms);
	bool settled = rc == MOSQ_ERR_SUCCESS && wait_for(link, &deadline, reply_settled);
	enum broker_outcome outcome = BROKER_TIMEOUT;
	if(rc != MOSQ_ERR_SUCCESS || link->state != LINK_READY){
		outcome = link->reply ? BROKER_REPLIED : BROKER_UNREACHABLE;
	}else if(link->puback_seen && link->puback_code == MQTT_RC_NOT_AUTHORIZED){
		outcome = BROKER_FORBIDDEN;
	}else if(link->puback_seen && link->puback_code >= 0x80){
		outcome = BROKER_UNREACHABLE;
	}else if(settled && link->reply){
		outcome = BROKER_REPLIED;
	}
	if(outcome == BROKER_REPLIED){
		*reply = link->reply;
		link->reply = NULL;
	}
	pthread_mutex_unlock(&link->lock);
	return outcome;
}

/* Takes a connection out of the pool (pool->lock held); it is destroyed
 * by reap once no request uses it. */
static void retire(struct broker_pool *pool, struct broker_link *link)
{
	if(!link->retired){
		HASH_DEL(pool->links, link);
		link->retired = true;
		link->next_retired = pool->retired;
		pool->retired = link;
	}
}

/* Drops connections that are idle, closed or refused (pool->lock held). */
static void reap(struct broker_pool *pool, time_t now)
{
	struct broker_link **cursor = &pool->retired;
	while(*cursor){
		struct broker_link *retired = *cursor;
		if(retired->users == 0){
			*cursor = retired->next_retired;
			destroy_link(retired);
		}else{
			cursor = &retired->next_retired;
		}
	}
	struct broker_link *link, *next;
	HASH_ITER(hh, pool->links, link, next){
		pthread_mutex_lock(&link->lock);
		bool dead = link->state == LINK_GONE || link->state == LINK_REFUSED || link->state == LINK_FAILED;
		bool idle = now - link->last_used >= pool->settings.idle_seconds;
		pthread_mutex_unlock(&link->lock);
		if(link->users == 0 && (dead || idle)){
			HASH_DEL(pool->links, link);
			destroy_link(link);
		}
	}
}

static void *reaper(void *data)
{
	struct broker_pool *pool = data;
	pthread_mutex_lock(&pool->lock);
	while(!pool->stopping){
		struct timespec deadline = deadline_after(1000);
		pthread_cond_timedwait(&pool->stop_signal, &pool->lock, &deadline);
		reap(pool, time(NULL));
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

struct broker_pool *broker_pool_new(const struct broker_settings *settings)
{
	struct broker_pool *pool = calloc(1, sizeof(*pool));
	if(pool == NULL){
		return NULL;
	}
	pool->settings = *settings;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->stop_signal, NULL);
	if(pthread_create(&pool->reaper, NULL, reaper, pool) != 0){
		free(pool);
		return NULL;
	}
	return pool;
}

void broker_pool_free(struct broker_pool *pool)
{
	if(pool == NULL){
		return;
	}
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->stop_signal);
	pthread_mutex_unlock(&pool->lock);
	pthread_join(pool->reaper, NULL);
	struct broker_link *link, *next;
	HASH_ITER(hh, pool->links, link, next){
		HASH_DEL(pool->links, link);
		destroy_link(link);
	}
	while(pool->retired){
		link = pool->retired;
		pool->retired = link->next_retired;
		destroy_link(link);
	}
	free(pool);
}

/* One attempt; *reused tells whether the connection was already open. */
static enum broker_outcome request_once(struct broker_pool *pool, const char *token, const char *payload,
		char **reply, bool *reused);

enum broker_outcome broker_pool_request(struct broker_pool *pool, const char *token, const char *payload,
		char **reply)
{
	bool reused;
	enum broker_outcome outcome = request_once(pool, token, payload, reply, &reused);
	/* An open connection may have lost its rights since it logged in (its
	 * token revoked, by this very caller perhaps, and the broker about to
	 * close it): ask again on a new login, which gets the broker's answer. */
	if(reused && (outcome == BROKER_FORBIDDEN || outcome == BROKER_UNREACHABLE)){
		outcome = request_once(pool, token, payload, reply, &reused);
	}
	return outcome;
}

static enum broker_outcome request_once(struct broker_pool *pool, const char *token, const char *payload,
		char **reply, bool *reused)
{
	unsigned char key[TOKEN_HASH_LEN];
	token_format_hash(token, key);
	/* The login counts against the timeout from here. */
	struct timespec deadline = deadline_after(pool->settings.timeout_ms);

	pthread_mutex_lock(&pool->lock);
	reap(pool, time(NULL));
	struct broker_link *link;
	HASH_FIND(hh, pool->links, key, TOKEN_HASH_LEN, link);
	*reused = link != NULL;
	if(link == NULL){
		link = new_link(key);
		if(link == NULL){
			pthread_mutex_unlock(&pool->lock);
			return BROKER_FAILED;
		}
		HASH_ADD(hh, pool->links, key, TOKEN_HASH_LEN, link);
	}
	link->users++;
	pthread_mutex_unlock(&pool->lock);

	pthread_mutex_lock(&link->request_lock);
	enum broker_outcome outcome = link->connect_started ? BROKER_REPLIED : start_connect(link, &pool->settings, token);
	if(outcome == BROKER_REPLIED){
		outcome = request_on(link, &pool->settings, payload, reply, deadline);
	}
	pthread_mutex_unlock(&link->request_lock);
	bool never_connected = still_connecting(link);

	pthread_mutex_lock(&pool->lock);
	link->users--;
	link->last_used = time(NULL);
	if(outcome != BROKER_REPLIED && outcome != BROKER_REFUSED_LOGIN && (outcome != BROKER_TIMEOUT || never_connected)){
		/* Not worth keeping: the next request logs in anew. */
		retire(pool, link);
	}
	pthread_mutex_unlock(&pool->lock);
	return outcome;
}
