/*
 * Connections logged in with a token. Each is keyed by the broker's
 * `struct mosquitto *` (client ids are reused on session takeover, the
 * pointer of a live connection is not) and listed under its token, so that
 * revoking or expiring a token finds its connections without a scan.
 *
 * Closing connections is two steps: the session is detached from its token
 * at once (every later ACL check is denied) and a kick is queued; the kicks
 * run from the broker's tick, never inside a command or a table walk,
 * because a kick re-enters the plugin's disconnect callback.
 */
#ifndef SESSIONS_H
#define SESSIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

struct mosquitto;

struct session {
	const struct mosquitto *client;
	struct token *token;            /* NULL once the token is revoked or expired */
	struct session *token_previous;
	struct session *token_next;
	UT_hash_handle hh;
	char client_id[];
};

struct sessions {
	struct session *by_client;
	const struct mosquitto **kicks; /* connections to close at the next tick */
	size_t kick_count;
	size_t kick_capacity;
};

void sessions_init(struct sessions *sessions);
void sessions_clear(struct sessions *sessions);

struct session *sessions_find(const struct sessions *sessions, const struct mosquitto *client);
/* Insert or update; false when out of memory (nothing bound then). */
bool sessions_bind(struct sessions *sessions, const struct mosquitto *client, const char *client_id,
		struct token *token);
/* Idempotent: the broker may report a disconnect twice. */
void sessions_unbind(struct sessions *sessions, const struct mosquitto *client);
size_t sessions_count(const struct sessions *sessions);

/* Detaches every session of the token and queues their kicks; returns how
 * many. The token may be freed afterwards. */
size_t sessions_close_token(struct sessions *sessions, struct token *token);
/* Hands the queued kicks to the caller, who frees the array. A queued
 * connection is still to be closed only if sessions_find still finds it
 * detached: if it disconnected meanwhile (a takeover by a new connection
 * with the same client id, say), kicking by id would hit the wrong one. */
const struct mosquitto **sessions_take_kicks(struct sessions *sessions, size_t *count);

#endif
