/*
 * Control replies on their way out. A reply may carry a new token's
 * secret, and the broker delivers a plugin's message by client id, looked
 * up when it drains its queue: a client that takes over the requester's
 * client id before then would receive it. So replies wait here, and leave
 * at the end of the broker's tick: on 2.0 the tick is the last step of the
 * broker's loop and its queue of plugin messages the first of the next,
 * with no network read in between, so the id still names the connection
 * it named at the tick.
 *
 * Until then a reply is dropped (and its memory wiped) when the
 * requester's connection goes, or when another connection that logged in
 * with its client id is still there at the tick: the secret then reaches
 * nobody rather than somebody else. Such a login is only a contender until
 * the tick: one the broker refused is disconnected at once (before the
 * tick), so a failed login with someone's client id cannot make their
 * replies vanish. (Over TCP a takeover also disconnects the old connection
 * at once; the contenders cover websocket connections, whose disconnect
 * comes later.)
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

/* A login since the last tick whose client id has a reply waiting. */
struct reply_contender {
	const struct mosquitto *client;
	char *client_id;
};

struct replies {
	struct pending_reply *items;
	size_t count;
	size_t capacity;
	struct reply_contender *contenders;
	size_t contender_count;
	size_t contender_capacity;
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
/* A login (whatever its outcome) on a connection: if a reply for another
 * connection waits on this client id, the login contends for it. False
 * when out of memory: the replies for the id are dropped then. */
bool replies_note_login(struct replies *replies, const struct mosquitto *login, const char *client_id);
/* The connection has gone: its replies are dropped, and it contends no
 * more. Returns how many replies were dropped. */
size_t replies_connection_gone(struct replies *replies, const struct mosquitto *client);
/* At the tick: drops the replies whose client id a contender still holds
 * (*taken_over says how many), sends the others, oldest first, and
 * forgets the contenders. Returns how many could not be handed to the
 * broker. */
size_t replies_send(struct replies *replies, reply_send_fn send, size_t *taken_over);

#endif
