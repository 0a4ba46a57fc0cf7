/*
 * Control replies on their way out. A reply may carry a new token's
 * secret, and the broker delivers a plugin's message by client id, looked
 * up when it drains its queue: a client that takes over the requester's
 * client id before then would receive it. So replies wait here, and leave
 * from the broker's tick: on 2.0 the tick is the last step of the broker's
 * loop and its queue of plugin messages the first of the next, with no
 * network read in between, so the id still names the connection it named
 * at the tick.
 *
 * Until then, a reply is dropped (and its memory wiped) when the
 * requester's connection goes, or when any new login uses its client id:
 * the secret then reaches nobody, rather than somebody else.
 */
#ifndef REPLIES_H
#define REPLIES_H

#include <stdbool.h>
#include <stddef.h>
#include <mosquitto.h>

struct pending_reply {
	const struct mosquitto *requester;
	char *client_id;
	char *topic;
	char *payload;
	mosquitto_property *properties;
};

struct replies {
	struct pending_reply *items;
	size_t count;
	size_t capacity;
};

/* Delivers one reply to a client id; returns a MOSQ_ERR_ code, and frees
 * properties whatever it returns. */
typedef int (*reply_send_fn)(const char *client_id, const char *topic, const char *payload,
		mosquitto_property *properties);

void replies_init(struct replies *replies);
/* Wipes and frees every reply still waiting. */
void replies_clear(struct replies *replies);
/* Queues a copy of the reply; takes properties (freed on failure too).
 * False when out of memory: the reply is dropped. */
bool replies_hold(struct replies *replies, const struct mosquitto *requester, const char *client_id,
		const char *topic, const char *payload, mosquitto_property *properties);
/* The connection has gone: its replies are dropped. Returns how many. */
size_t replies_drop_for_connection(struct replies *replies, const struct mosquitto *client);
/* A login with this client id on another connection (a takeover, or a
 * login that will become one): the replies waiting for the id are
 * dropped. Returns how many. */
size_t replies_drop_for_client_id(struct replies *replies, const char *client_id, const struct mosquitto *login);
/* Sends every waiting reply, oldest first; returns how many could not be
 * handed to the broker. */
size_t replies_send(struct replies *replies, reply_send_fn send);

#endif
