/*
 * The link of one broker of a fleet to the PostgreSQL store they share
 * (SPEC section 9, docs/postgresql.md): one libpq connection, in
 * non-blocking mode, that LISTENs for the change log's notifications.
 *
 * Two kinds of use, never interleaved (the broker has one thread):
 *
 *  - fleet_poll, from the tick, never blocks: it connects (with backoff),
 *    reads notifications, fetches the changes after a sequence number and
 *    hands each to a callback, in order. It asks again every
 *    FLEET_POLL_MS even without a notification, so a notification lost
 *    with a connection loses no change.
 *  - The calls that answer a command (commit a change, fetch changes now,
 *    load the whole store) wait for their answer, at most the timeout
 *    given to fleet_new: a command's reply waits for its transaction, as
 *    it waits for an fsync with the file. While the link is down they fail
 *    at once, without waiting.
 */
#ifndef FLEET_H
#define FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "fleet_schema.h"
#include "store.h"

#define FLEET_POLL_MS 2000         /* fetch even without a notification */
#define FLEET_FETCH_BATCH 1000     /* changes per fetch */
#define FLEET_BACKOFF_FIRST_MS 250
#define FLEET_BACKOFF_MAX_MS 30000

struct fleet;

/* Applies one change of the log; false stops the fetch (the same change
 * comes again next time). */
typedef bool (*fleet_change_fn)(void *context, int64_t sequence, const cJSON *change);
/* What fleet_poll reports to its caller. */
struct fleet_events {
	void *context;
	fleet_change_fn change;
	/* The link came up (after the first connection or a loss), or went
	 * down; error says why. */
	void (*link_up)(void *context);
	void (*link_down)(void *context, const char *error);
	/* The sequence number after which to fetch. */
	int64_t (*applied)(void *context);
};

/* Whether libpq can parse conninfo. Its own message is never shown: it
 * quotes pieces of the string, a password's among them. */
bool fleet_conninfo_is_valid(const char *conninfo);

/* member names this broker in the change log. NULL when out of memory. */
struct fleet *fleet_new(const char *conninfo, const char *member, int64_t timeout_ms);
/* Where fetched changes and the link's news go (copied): set before the
 * first fleet_poll. */
void fleet_set_events(struct fleet *fleet, const struct fleet_events *events);
void fleet_free(struct fleet *fleet);

/* Connects, waiting at most the timeout, and creates or migrates the
 * schema (fleet_schema.h). */
bool fleet_connect_now(struct fleet *fleet, char *error, size_t error_len);
bool fleet_is_up(const struct fleet *fleet);
/* The store's id (fleet_schema.h), "" before the first connection. */
const char *fleet_id(const struct fleet *fleet);

/* Reads every role and token into an empty store, with the number of the
 * last change they hold, from one consistent view. */
bool fleet_load_store(struct fleet *fleet, struct store *store, int64_t *sequence, char *error, size_t error_len);
/* The lowest and highest sequence numbers the change log holds (0 and 0
 * when it is empty). */
bool fleet_log_bounds(struct fleet *fleet, int64_t *first, int64_t *last, char *error, size_t error_len);

enum fleet_commit {
	FLEET_COMMITTED,
	FLEET_BEHIND,    /* another broker's change came first: catch up and try again */
	FLEET_FAILED,    /* not committed */
	FLEET_UNKNOWN,   /* sent, and no answer in time: committed or not, the log will say */
};
/* Commits one change as number sequence (the one after the last applied). */
enum fleet_commit fleet_commit(struct fleet *fleet, int64_t sequence, const cJSON *change,
		char *error, size_t error_len);

/* Fetches the changes after after, in order, until the log's end (or,
 * with batches > 0, that many batches of FLEET_FETCH_BATCH) or a callback
 * returns false; waits for each batch. */
bool fleet_fetch_now(struct fleet *fleet, int64_t after, size_t batches, fleet_change_fn change, void *context,
		char *error, size_t error_len);

/* Saves lastUsed times (only ever moved later) in the background: the
 * arrays' contents are copied. False when one is still on its way or the
 * link is down (keep them for later). */
bool fleet_save_last_used(struct fleet *fleet, const char *const *hashes, const char *const *times, size_t count);

/* At shutdown: sends the lastUsed times still waiting, waiting at most
 * the timeout. */
void fleet_flush_last_used(struct fleet *fleet);

/* From the tick: never blocks. A query from the tick that has no answer
 * within the timeout drops the link (a database that hangs, a connection
 * a partition left half open). */
void fleet_poll(struct fleet *fleet);

#endif
