/*
 * The plugin as a member of a fleet on PostgreSQL (SPEC section 9,
 * docs/postgresql.md): its changes go to the database first, the other
 * members' come back from it, and the state file is a local cache that
 * lets it start and serve logins while the database is away.
 *
 * Every change of the store has a number in the database's change log.
 * The plugin applies them in that order, each once: its own right after
 * their commit, the others' from fleet_member_tick (or at once, when a
 * command finds it is behind), through the code that replays the journal
 * (journal_decode, then tokens_plugin_apply, which closes a revoked
 * token's connections). The cache records each with its number
 * ("fleetSeq"), so that after a restart the catch-up starts where the
 * cache ends.
 */
#ifndef FLEET_MEMBER_H
#define FLEET_MEMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "token_format.h"

struct tokens_plugin;

#define FLEET_DEFAULT_TIMEOUT_MS 3000

/* After the cache is loaded: connects (waiting at most timeout_ms) and
 * brings the store up to the database's (catching up, or loading it whole
 * when the cache does not follow the database's log), or, when the
 * database cannot be reached or fails meanwhile, keeps the cache's store
 * and connects later. False when out of memory, or when the state file
 * holds a store of its own instead of a cache. */
bool fleet_member_join(struct tokens_plugin *plugin, const char *conninfo, int64_t timeout_ms,
		char *error, size_t error_len);

enum record_outcome {
	RECORDED,
	RECORD_BEHIND,   /* a fleet member's change came first: catch up, then try again */
	RECORD_FAILED,
	RECORD_UNKNOWN,  /* sent to the database, no answer in time: made or not, its log will say */
};
/* Records one change durably: in the state file, or as a member in the
 * database (then in the cache). */
enum record_outcome tokens_plugin_record(struct tokens_plugin *plugin, cJSON *change, char *error, size_t error_len);
/* Applies the database's changes this broker has not, now, waiting for
 * them (a command that was behind). */
bool fleet_member_catch_up(struct tokens_plugin *plugin, char *error, size_t error_len);
/* Before a control request: the changes the database has and this member
 * not yet, applied now (waiting for them); without the database, nothing. */
void fleet_member_refresh(struct tokens_plugin *plugin);
/* Whether changes can be recorded now (always true without a fleet). */
bool fleet_member_can_record(const struct tokens_plugin *plugin);
/* Queues lastUsed times for the database (no-op without a fleet). */
void fleet_member_queue_last_used(struct tokens_plugin *plugin, const unsigned char (*hashes)[TOKEN_HASH_LEN], size_t count);
/* From the tick: never blocks. */
void fleet_member_tick(struct tokens_plugin *plugin);
/* At shutdown, before the last snapshot: the lastUsed times still queued
 * go to the database (waiting at most the timeout). */
void fleet_member_leave(struct tokens_plugin *plugin);

#endif
