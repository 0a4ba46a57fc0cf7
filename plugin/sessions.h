/*
 * Sessions logged in with a token (SPEC section 3): a token's authority
 * lasts as long as the MQTT session it logged in to, not only its network
 * connection.
 *
 * A connected session is keyed by the broker's `struct mosquitto *` (client
 * ids are reused on session takeover, the pointer of a live connection is
 * not) and listed under its token, so that revoking or expiring a token
 * finds its sessions without a scan.
 *
 * A session that outlives its connection (MQTT 3.1.1 clean session false,
 * MQTT 5 session expiry) becomes offline: keyed by client id, because
 * mosquitto 2.0 frees an offline session without telling plugins (session
 * expiry) and may then give its pointer to a new connection. An offline
 * binding holds a context only while that context has the same pointer,
 * client id and username. A binding restored from the state file holds
 * only a context the broker restored from its own persistence (one without
 * a network address, which every connection has), the first one with its
 * client id and username. Offline bindings end at the next accepted token
 * login with the client id (its own login decides), when a context with
 * that pointer logs in anew (the old one is gone), when the broker reports
 * the session's end, when their token goes, when the SIGHUP re-check no
 * longer finds them, or beyond a bound: per token its oldest go; beyond
 * the bound for all, new ones are not kept.
 *
 * Only sessions with clean session false are saved with the state (the
 * broker restores no others), and only with a client id and username of
 * at most SESSION_SAVED_TEXT_MAX bytes, so that a client cannot make the
 * journal grow by much more than its login costs it.
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

#include "session_records.h"
#include "store.h"

struct mosquitto;

struct session {
	const struct mosquitto *client;      /* NULL: restored from the state file, its context not yet met */
	struct token *token;                 /* NULL once the token is revoked or expired (connected only) */
	unsigned char hash[TOKEN_HASH_LEN];  /* of the secret it logged in with: what the state file keeps */
	bool disconnected;                   /* its connection is gone; settled at the next tick */
	uint8_t departure;                   /* enum session_departure, once disconnected */
	bool offline;                        /* the session outlives its connection: in by_id, not by_client */
	bool persists;                       /* may outlive its connection (not MQTT 3.x clean session) */
	bool saved;                          /* its binding is in the state file, until a login takes its id */
	bool via_previous;                   /* logged in with the token's previous secret */
	uint64_t seen_at_reload;             /* offline: the last SIGHUP re-check that met its context */
	uint64_t offline_order;              /* offline: when it went offline, for the bound per token */
	struct session *token_previous;
	struct session *token_next;
	struct session *older;               /* offline sessions, oldest first, for the bound */
	struct session *newer;
	const char *username;                /* points into text, or NULL */
	UT_hash_handle hh;                   /* by_client */
	UT_hash_handle hh_id;                /* by_id when offline, live_by_id when connected and saved */
	char client_id[];                    /* then the username */
};

struct session_kick {
	const struct mosquitto *client;
	uint64_t due_tick;
};

struct sessions {
	struct session *by_client;      /* connected (and just departed) sessions */
	struct session *by_id;          /* offline sessions */
	/* Connected sessions whose binding is saved, by client id: a login with
	 * the id of one of them takes its session over, and the saved binding
	 * with it. */
	struct session *live_by_id;
	struct session *oldest_offline;
	struct session *newest_offline;
	size_t attached;                /* sessions bound to a token and connected */
	size_t offline;                 /* offline sessions bound to a token */
	size_t max_offline;             /* 0: no bound */
	size_t max_offline_per_token;   /* 0: no bound */
	uint64_t offline_orders;        /* sessions that went offline, for offline_order */
	/* Bindings of persistent sessions made and ended since the last save
	 * (session_records.h), written by the periodic save. */
	struct session_records changes;
	uint64_t reloads;               /* SIGHUPs seen */
	struct session_kick *kicks;     /* connections to close from the tick */
	size_t kick_count;
	size_t kick_capacity;
	uint64_t ticks;                 /* the broker's loop iterations, counted by the tick */
	const struct mosquitto **leaving;  /* disconnected, to settle at the next tick */
	size_t leaving_count;
	size_t leaving_capacity;
};

/* Connections and offline sessions a token change ended. */
struct sessions_closed {
	size_t connected;               /* kicked (or to be kicked) */
	size_t offline;                 /* offline sessions whose binding ended */
};

/* The longest client id or username a saved binding keeps, in bytes. */
#define SESSION_SAVED_TEXT_MAX 1024

/* What a login brings to its binding. */
struct session_login {
	const char *client_id;
	const char *username;           /* NULL: none */
	const unsigned char *hash;      /* of the secret used */
	bool via_previous;              /* the token's previous secret (rotation) */
	bool persists;                  /* the session may outlive the connection */
	bool restorable;                /* the broker saves the session (clean session false) */
};

/* A broker context as an ACL check or an event shows it. */
struct session_context {
	const struct mosquitto *client;
	const char *client_id;          /* NULL once the broker gave the session up */
	const char *username;
	bool restored;                  /* restored from the broker's persistence, not connected since */
};

/* How the broker reported a connection's end. Mosquitto 2.0 says only
 * that it left, and whether the session stays is read from the context at
 * the next tick (it still has its client id); 2.1 says which it is, and
 * frees a context that leaves in a loop iteration before the next tick
 * (its tick comes before the network), so its contexts are never read
 * then. */
enum session_departure {
	DEPARTURE_ASK_AT_TICK,          /* 2.0's MOSQ_EVT_DISCONNECT */
	DEPARTURE_SESSION_STAYS,        /* 2.1's MOSQ_EVT_CLIENT_OFFLINE */
	DEPARTURE_SESSION_ENDS,         /* 2.1's MOSQ_EVT_DISCONNECT */
};

/* The broker's client id of a context, NULL once its session is over
 * (mosquitto_client_id; tests pass their own). */
typedef const char *(*sessions_client_id_fn)(const struct mosquitto *client);

void sessions_init(struct sessions *sessions);
void sessions_clear(struct sessions *sessions);

struct session *sessions_find(const struct sessions *sessions, const struct mosquitto *client);
/* The offline session this context holds, or NULL (see above; a restored
 * binding takes the context's pointer here). */
struct session *sessions_find_offline(struct sessions *sessions, const struct session_context *context);
/* Insert or update; ends an offline binding of the client id. False when
 * out of memory (nothing bound then). */
bool sessions_bind(struct sessions *sessions, const struct mosquitto *client, struct token *token,
		const struct session_login *login);
/* Idempotent: the broker may report a disconnect twice. */
void sessions_unbind(struct sessions *sessions, const struct mosquitto *client);
/* Any login but the SIGHUP re-check, before its answer: a context at the
 * pointer of an offline binding is a new one (the old one was freed). */
void sessions_note_login(struct sessions *sessions, const struct mosquitto *client, const char *client_id);
/* A SIGHUP: the broker re-checks every session's login now, offline ones
 * too; sessions_note_recheck records each one met, and
 * sessions_end_unmet, at the next tick, ends the offline bindings whose
 * context the re-check did not meet (their session is gone). */
void sessions_start_recheck(struct sessions *sessions);
/* Returns the offline session the re-checked context holds, or NULL. */
struct session *sessions_note_recheck(struct sessions *sessions, const struct session_context *context);
size_t sessions_end_unmet(struct sessions *sessions);
/* A connection left (MOSQ_EVT_DISCONNECT, or 2.1's CLIENT_OFFLINE). The
 * broker checks its Will against the ACLs right after, so the binding
 * stays; sessions_settle_departed, from the tick, ends it or keeps it
 * offline. For a context that is offline already, this is the end of its
 * session (mosquitto 2.0 reports a takeover so; 2.1 the session's end),
 * except during the SIGHUP re-check, which reports sessions it refuses. */
void sessions_depart(struct sessions *sessions, const struct session_context *context,
		enum session_departure departure, bool rechecking);
/* Each departed session whose context still has its client id (the
 * broker keeps the session) becomes offline; the rest are unbound. The
 * contexts are still allocated at the tick: mosquitto 2.0 frees departed
 * contexts at the start of the next loop iteration. Returns how many
 * offline bindings the bounds ended. */
size_t sessions_settle_departed(struct sessions *sessions, sessions_client_id_fn client_id_of);
/* An offline binding loaded from the state file; false when out of memory. */
bool sessions_restore(struct sessions *sessions, struct token *token, const struct session_login *login);

/* Detaches every session of the token: connected ones get a kick, offline
 * ones end. The token may be freed afterwards. The requester's own
 * connection (a client revoking its own token) is kicked two loop
 * iterations later, so that the reply queued for it leaves first; pass
 * NULL when there is none. */
struct sessions_closed sessions_close_token(struct sessions *sessions, struct token *token,
		const struct mosquitto *requester);
/* The same for the sessions made with the token's previous secret only. */
struct sessions_closed sessions_close_previous(struct sessions *sessions, struct token *token);
/* Moves every session of one token to another (a rotation replaces the
 * token's record); they now count as logged in with the previous secret. */
void sessions_move(struct token *from, struct token *to);
/* Counts one tick and hands the kicks now due to the caller, who frees the
 * array (NULL when there are none). A queued
 * connection is still to be closed only if sessions_find still finds it
 * detached: if it disconnected meanwhile (a takeover by a new connection
 * with the same client id, say), kicking by id would hit the wrong one. */
const struct mosquitto **sessions_take_due_kicks(struct sessions *sessions, size_t *count);

/* Calls put for each binding a snapshot keeps: the saved ones, those the
 * broker may restore after a restart, connected or offline. */
void sessions_each_binding(const struct sessions *sessions, void (*put)(void *writer,
		const struct session *session), void *writer);

#endif
