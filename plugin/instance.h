/*
 * The plugin instance: everything the plugin knows lives here, reached from
 * the broker's userdata pointer, so that several instances (one per listener
 * with per_listener_settings) never share state by accident.
 *
 * The clock and the logger are pointers so that tests can drive time and
 * read what would have been logged.
 */
#ifndef INSTANCE_H
#define INSTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "changes.h"
#include "control_topics.h"
#include "expiry.h"
#include "persist.h"
#include "replies.h"
#include "reply_recipients.h"
#include "sessions.h"
#include "store.h"
#include "token_listing.h"

#define TOKENS_VERSION "0.4.0"

#define METRICS_TOPIC_PREFIX "$SYS/broker/tokens/"

#define DEFAULT_LAST_USED_SAVE_INTERVAL 60
#define LAST_USED_SAVE_BATCH 100000
#define DEFAULT_EXPIRY_WARNING_DAYS 7
#define DEFAULT_METRICS_INTERVAL 10
#define MAX_GRACE_SECONDS (7 * 86400)

/* Limits, each a plugin option (README); 0 means none. */
struct tokens_limits {
	int64_t request_bytes;     /* a control request's payload */
	int64_t commands;          /* commands in one request */
	int64_t tokens;            /* tokens in the store */
	int64_t acls_per_role;
	int64_t topic_bytes;       /* an ACL's topic filter */
	int64_t reply_bytes;       /* a control reply's payload: MQTT packets have a size limit */
	int64_t offline_sessions;  /* offline sessions kept bound to tokens */
	int64_t offline_sessions_per_token;
};

#define DEFAULT_LIMITS {.request_bytes = 65536, .commands = 100, .tokens = 10000000, \
		.acls_per_role = 1000, .topic_bytes = 1024, .reply_bytes = 1000000, \
		.offline_sessions = 1000000, .offline_sessions_per_token = 1000}

struct mosquitto;

typedef void (*tokens_log_fn)(int level, const char *format, ...);
typedef int64_t (*tokens_clock_fn)(void);
/* Publishes to every subscriber the broker's ACLs let read the topic. */
typedef void (*tokens_publish_fn)(const char *topic, const char *payload, bool retain);

struct tokens_plugin {
	struct store store;
	struct listing_memo listing_memo;   /* where the last wide listTokens walk ended */
	struct token_hasher hasher;
	struct persist *persist;
	struct sessions sessions;
	struct session_source session_source;   /* what a snapshot reads the bindings from */
	struct expiry_queue expiry;     /* tokens with connections, by validUntil */
	struct expiry_queue notices;    /* tokens owed tokenExpiring or tokenExpired */
	tokens_log_fn log;
	tokens_clock_fn now;
	tokens_publish_fn publish;      /* NULL: no events or metrics */
	struct tokens_limits limits;
	void *broker_identifier;

	/* lastUsed changes only in memory at login; the tick saves them at
	 * most once per interval, and the snapshot at cleanup holds them all.
	 * The queue holds hashes, not pointers: a token revoked meanwhile is
	 * simply not found. */
	int64_t last_used_save_interval;
	int64_t last_used_saved_at;
	unsigned char (*last_used_queue)[TOKEN_HASH_LEN];
	size_t last_used_queued;
	size_t last_used_capacity;

	/* Set by MOSQ_EVT_RELOAD: the broker re-runs every login right after
	 * it, in the same loop iteration; the next tick clears it. Those
	 * re-checks are not logins. */
	bool rechecking_logins;

	/* 2.1: MOSQ_EVT_CLIENT_OFFLINE reports a connection whose session
	 * stays, and MOSQ_EVT_DISCONNECT a session's end (sessions.h). */
	bool broker_reports_session_end;
	int reload_answer;              /* what MOSQ_EVT_RELOAD answers on this release */

	/* Control replies. 2.0: held here and sent from the tick to the
	 * connection that asked. 2.1 (replies_checked_on_write): published at
	 * once, and refused at MOSQ_EVT_MESSAGE_OUT to any other connection. */
	struct replies replies;
	struct reply_recipients reply_recipients;
	bool replies_checked_on_write;

	/* A token login on 2.1's HTTP API, for the read check of the URL that
	 * the broker makes right after it on the same temporary context: such
	 * a login is never bound as a session (nothing ever disconnects it). */
	struct {
		const struct mosquitto *context;
		unsigned char hash[TOKEN_HASH_LEN];
	} http_login;

	/* The connection whose control request is being handled, or NULL. */
	const struct mosquitto *requesting_client;

	/* Metrics ($SYS/broker/tokens/...), counted as things happen so that a
	 * refresh costs the same however many tokens there are. */
	int64_t metrics_interval;        /* seconds; 0: off */
	int64_t metrics_published_at;
	uint64_t logins_accepted;
	uint64_t logins_refused;
	size_t expired_tokens;           /* tokens whose tokenExpired was sent */

	/* plugin_opt_background_fold (README): a due snapshot is written by a
	 * forked child while the broker goes on (persist_fold_start), instead
	 * of on the broker's thread. Off in tokens_plugin_new (tools and unit
	 * tests fold at once); the broker's init turns it on. */
	bool background_folds;
	bool fold_failing;               /* the last fold failed: log the next success */

	/* A fleet member (fleet_member.h): NULL with the state file alone. */
	struct fleet *fleet;
	char *state_file;                /* for the log: the store, or a member's cache */
	int64_t fleet_applied;           /* the last change of the database's log in the store */
	int64_t fleet_refused_at;        /* a change that did not apply, logged once */
	bool fleet_link_down;            /* logged as down, not yet as up again */
	bool fleet_foreign;              /* the database holds another store: changes stop */
	bool fleet_cache_stale;          /* a cache write failed: written whole at the next try */
	int64_t fleet_cache_tried_at;
};

/* Queues a token's pending expiry notices (after load, create, rotate). */
void tokens_plugin_schedule_notices(struct tokens_plugin *plugin, struct token *token);
/* Commits a prepared change (changes.h) that has been recorded, and keeps
 * the connections, queues and counters in step with it: a revoked token's
 * connections are closed, a rotated one's move to its replacement. */
void tokens_plugin_commit(struct tokens_plugin *plugin, struct change *change);
/* Prepares and commits; false when out of memory (nothing changed). */
bool tokens_plugin_apply(struct tokens_plugin *plugin, struct change *change);

/* Creates an instance and loads its state file; NULL with a sentence in
 * error when the file cannot be used. */
struct tokens_plugin *tokens_plugin_new(const char *state_file, tokens_log_fn log, tokens_clock_fn now,
		char *error, size_t error_len);
/* The same for a fleet member (fleet_member.h): state_file is then the
 * local cache, and postgres_conninfo (NULL: none) the shared store;
 * postgres_timeout_ms bounds each wait for the database. */
struct tokens_plugin *tokens_plugin_new_member(const char *state_file, const char *postgres_conninfo,
		int64_t postgres_timeout_ms, tokens_log_fn log, tokens_clock_fn now, char *error, size_t error_len);
void tokens_plugin_free(struct tokens_plugin *plugin);
/* Lets the instance's snapshots write the bindings of its persistent
 * sessions (tokens_plugin_new does it). */
void tokens_plugin_keep_sessions(struct tokens_plugin *plugin);

/* Records the lastUsed times of up to LAST_USED_SAVE_BATCH tokens that
 * logged in since their last save (the rest wait for the next interval,
 * so a save's cost is bounded however many tokens log in). A failure is
 * logged and retried at the next interval. */
void tokens_plugin_save_last_used(struct tokens_plugin *plugin);
/* Records the bindings of persistent sessions made and ended since the
 * last save (sessions.h); a failure is logged and retried at the next
 * interval. */
void tokens_plugin_save_sessions(struct tokens_plugin *plugin);
/* Notes that the token logged in: lastUsed is now, saved later. */
void tokens_plugin_mark_used(struct tokens_plugin *plugin, struct token *token, int64_t now);
/* Writes a snapshot (the journal is then empty); failures are logged, the
 * journal still has every change. A background fold still running is
 * killed first (this one holds all it would). */
void tokens_plugin_snapshot(struct tokens_plugin *plugin);
/* A due snapshot: in the background with background_folds (none starts
 * while one runs), else tokens_plugin_snapshot. */
void tokens_plugin_fold(struct tokens_plugin *plugin);
/* From the tick: reaps a finished background fold and installs its
 * snapshot; never waits. */
void tokens_plugin_poll_fold(struct tokens_plugin *plugin);

/* Fills the notice queue from the store (after load) with the warning
 * window in seconds, and counts expired tokens. False when out of memory. */
bool tokens_plugin_start_notices(struct tokens_plugin *plugin, int64_t warning_seconds);
/* Closes the connections of previous secrets whose grace period is over. */
void tokens_plugin_end_grace_periods(struct tokens_plugin *plugin, int64_t now);

#endif
