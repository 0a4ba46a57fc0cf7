/*
 * The console's MQTT side: one MQTT 5 connection per application token in
 * use, logged in with that token, kept open while it is used and closed
 * after an idle minute. A request publishes one control command (QoS 1,
 * with a Response Topic and Correlation Data) and waits for its reply.
 *
 * The pool never stores a token anywhere but in libmosquitto's connection
 * settings (memory); it is keyed by the token's SHA-256. A login in
 * progress holds up only the requests with the same token.
 */
#ifndef BROKER_LINK_H
#define BROKER_LINK_H

#include <stdbool.h>
#include <stddef.h>

struct broker_settings {
	const char *host;
	int port;
	const char *cafile;      /* TLS to the broker when set */
	bool insecure;           /* do not check the broker's certificate name */
	int timeout_ms;          /* for connecting and logging in, and for a reply */
	int idle_seconds;        /* close unused connections after this */
};

enum broker_outcome {
	BROKER_REPLIED,          /* *reply holds the control reply document */
	BROKER_REFUSED_LOGIN,    /* the broker refused the token (CONNACK) */
	BROKER_FORBIDDEN,        /* PUBACK 0x87: the role may not use the control topic */
	BROKER_UNREACHABLE,      /* no connection, or refused for another reason */
	BROKER_TIMEOUT,          /* no reply in time (the login included) */
	BROKER_FAILED,           /* the console itself failed: no memory, no randomness */
};

struct broker_pool;

struct broker_pool *broker_pool_new(const struct broker_settings *settings);
void broker_pool_free(struct broker_pool *pool);

/* Sends payload with the token's connection; on BROKER_REPLIED, *reply is a
 * malloc'd NUL-terminated document for the caller to free. */
enum broker_outcome broker_pool_request(struct broker_pool *pool, const char *token, const char *payload,
		char **reply);

#endif
