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
#include <stdint.h>

#include "store.h"

struct mosquitto;

struct session {
	const struct mosquitto *client;
	struct token *token;            /* NULL once the token is revoked or expired */
	bool disconnected;              /* gone; unbound at the next tick */
	bool via_previous;              /* logged in with the token's previous secret */
	struct session *token_previous;
	struct session *token_next;
	UT_hash_handle hh;
	char client_id[];
};

struct session_kick {
	const struct mosquitto *client;
	uint64_t due_tick;
};

struct sessions {
	struct session *by_client;
	size_t attached;                /* sessions bound to a token and connected */
	struct session_kick *kicks;     /* connections to close from the tick */
	size_t kick_count;
	size_t kick_capacity;
	uint64_t ticks;                 /* the broker's loop iterations, counted by the tick */
	const struct mosquitto **leaving;  /* disconnected, to unbind at the next tick */
	size_t leaving_count;
	size_t leaving_capacity;
};

void sessions_init(struct sessions *sessions);
void sessions_clear(struct sessions *sessions);

struct session *sessions_find(const struct sessions *sessions, const struct mosquitto *client);
/* Insert or update; false when out of memory (nothing bound then).
 * via_previous: the login used the token's previous secret (rotation). */
bool sessions_bind(struct sessions *sessions, const struct mosquitto *client, const char *client_id,
		struct token *token, bool via_previous);
/* Idempotent: the broker may report a disconnect twice. */
void sessions_unbind(struct sessions *sessions, const struct mosquitto *client);
/* A disconnect: the broker checks the client's Last Will against the ACLs
 * right after reporting it, so the binding must outlive the callback. It
 * is removed by sessions_unbind_departed, from the tick. (A new login on
 * the same pointer meanwhile replaces the binding, and is not removed.) */
void sessions_depart(struct sessions *sessions, const struct mosquitto *client);
void sessions_unbind_departed(struct sessions *sessions);
size_t sessions_count(const struct sessions *sessions);

/* Detaches every session of the token and queues kicks for those still
 * connected; returns how many those are. The token may be freed afterwards.
 * The requester's own connection (a client revoking its own token) is
 * kicked two loop iterations later, so that the reply queued for it leaves
 * first; pass NULL when there is none. */
size_t sessions_close_token(struct sessions *sessions, struct token *token, const struct mosquitto *requester);
/* The same for the connections made with the token's previous secret only. */
size_t sessions_close_previous(struct sessions *sessions, struct token *token);
/* Moves every session of one token to another (a rotation replaces the
 * token's record); they now count as logged in with the previous secret. */
void sessions_move(struct token *from, struct token *to);
/* Counts one tick and hands the kicks now due to the caller, who frees the
 * array (NULL when there are none). A queued
 * connection is still to be closed only if sessions_find still finds it
 * detached: if it disconnected meanwhile (a takeover by a new connection
 * with the same client id, say), kicking by id would hit the wrong one. */
const struct mosquitto **sessions_take_due_kicks(struct sessions *sessions, size_t *count);

#endif
