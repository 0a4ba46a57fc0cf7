/*
 * The console's connection guard: what keeps slow or numerous clients from
 * locking the others out. libmicrohttpd runs one thread per connection and
 * its own timeout only counts idle time, so a client sending one byte every
 * few seconds would hold a thread and a descriptor forever.
 *
 * The guard counts the open connections (in total and per client address),
 * refuses a new one over the per-address limit, and over the total limit
 * closes the oldest connection that is not being answered to make room.
 * Every connection has a deadline: its request, headers and body, must have
 * arrived within request_timeout_ms of the connection's start or of the end
 * of its previous request; the answer's own work at the broker does not
 * count. A watchdog thread closes the connections past their deadline.
 *
 * It is wired in as libmicrohttpd's accept policy and connection
 * notification; the request handler tells it when it starts and stops
 * working on a request.
 */
#ifndef GUARD_H
#define GUARD_H

#include <stdbool.h>
#include <sys/socket.h>
#include <microhttpd.h>

#define GUARD_DEFAULT_MAX_CONNECTIONS 256
#define GUARD_DEFAULT_MAX_PER_ADDRESS 32
#define GUARD_DEFAULT_REQUEST_TIMEOUT_S 5

struct guard_settings {
	unsigned max_connections;
	unsigned max_per_address;
	int request_timeout_ms;   /* 0: no deadline and no watchdog thread (the fuzzer) */
};

struct guard;

struct guard *guard_new(const struct guard_settings *settings);
/* After MHD_stop_daemon. */
void guard_free(struct guard *guard);

/* Connections open at once at worst: the limit, plus those evicted to make
 * room and not closed yet. libmicrohttpd's own limit is set to this. */
unsigned guard_hard_limit(const struct guard_settings *settings);

/* MHD_AcceptPolicyCallback: MHD_NO closes the new connection at once. */
enum MHD_Result guard_accept(void *guard, const struct sockaddr *address, socklen_t length);

/* MHD_NotifyConnectionCallback: registers and forgets connections. */
void guard_notify_connection(void *guard, struct MHD_Connection *connection, void **socket_context,
		enum MHD_ConnectionNotificationCode code);

/* The handler works on the connection's request (busy: no deadline), or
 * has queued its answer (the deadline starts again, for sending it). */
void guard_set_busy(struct guard *guard, struct MHD_Connection *connection, bool busy);

/* The request is over; a next one on the connection gets a new deadline. */
void guard_request_done(struct guard *guard, struct MHD_Connection *connection);

#endif
