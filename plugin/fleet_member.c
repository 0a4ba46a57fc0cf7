/*
 * The plugin as a fleet member (fleet_member.h): joining at start-up,
 * recording a change in the database then the cache, applying the other
 * members' changes, and what the link's ups and downs mean for the
 * operator (the log says each once).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <mosquitto.h>

#include "fleet.h"
#include "fleet_member.h"
#include "instance.h"
#include "journal.h"
#include "rfc3339.h"

/* ---- the cache ---- */

/* The cache holds every change it has in the database's order; after a
 * failed write it takes none until a snapshot has written it whole
 * again, so that it never holds a later change without an earlier one. */
static void cache_failed(struct tokens_plugin *plugin, int64_t sequence, const char *error)
{
	plugin->log(MOSQ_LOG_WARNING, "tokens: could not write change %" PRId64 " to the local cache (the database "
			"has it; the cache is written whole again at the next snapshot): %s", sequence, error);
	plugin->fleet_cache_stale = true;
}

/* durable: this member's own change, on disk before its reply as with the
 * file; the others' are synced once per batch (sync_cache). */
static void record_in_cache(struct tokens_plugin *plugin, cJSON *change, int64_t sequence, bool durable)
{
	char error[1024];
	if(plugin->fleet_cache_stale){
		persist_set_fleet_position(plugin->persist, fleet_id(plugin->fleet), sequence);
		return;
	}
	bool added = cJSON_AddNumberToObject(change, "fleetSeq", (double)sequence) != NULL;
	bool recorded = added && (durable ? persist_record(plugin->persist, change, error, sizeof(error))
		: persist_record_lazily(plugin->persist, change, error, sizeof(error)));
	cJSON_DeleteItemFromObjectCaseSensitive(change, "fleetSeq");
	persist_set_fleet_position(plugin->persist, fleet_id(plugin->fleet), sequence);
	if(!recorded){
		cache_failed(plugin, sequence, added ? error : "out of memory");
	}
}

static void sync_cache(struct tokens_plugin *plugin)
{
	char error[1024];
	if(!plugin->fleet_cache_stale && !persist_sync(plugin->persist, error, sizeof(error))){
		cache_failed(plugin, plugin->fleet_applied, error);
	}
}

static void refresh_stale_cache(struct tokens_plugin *plugin)
{
	if(!plugin->fleet_cache_stale){
		return;
	}
	int64_t now = plugin->now();
	if(now - plugin->fleet_cache_tried_at < plugin->last_used_save_interval){
		return;
	}
	plugin->fleet_cache_tried_at = now;
	char error[1024];
	if(persist_save(plugin->persist, &plugin->store, error, sizeof(error))){
		plugin->fleet_cache_stale = false;
		plugin->log(MOSQ_LOG_NOTICE, "tokens: the local cache is written whole again");
	}
}

/* ---- applying the database's changes ---- */

static bool apply_change(void *context, int64_t sequence, const cJSON *line)
{
	struct tokens_plugin *plugin = context;
	if(plugin->fleet_foreign){
		return false;
	}
	if(sequence <= plugin->fleet_applied){
		return true;   /* applied already: its own, or fetched twice */
	}
	char problem[512];
	if(sequence != plugin->fleet_applied + 1){
		snprintf(problem, sizeof(problem), "changes %" PRId64 " to %" PRId64 " are missing from the database's log",
				plugin->fleet_applied + 1, sequence - 1);
	}else{
		struct change change;
		bool applied = journal_decode(&plugin->store, line, &change, problem, sizeof(problem))
			&& (tokens_plugin_apply(plugin, &change) || (snprintf(problem, sizeof(problem), "out of memory"), false));
		if(applied){
			change_release(&change);
			cJSON *copy = cJSON_Duplicate(line, true);
			if(copy){
				record_in_cache(plugin, copy, sequence, false);
			}else{
				plugin->fleet_cache_stale = true;
				persist_set_fleet_position(plugin->persist, fleet_id(plugin->fleet), sequence);
			}
			cJSON_Delete(copy);
			plugin->fleet_applied = sequence;
			plugin->fleet_refused_at = 0;
			return true;
		}
	}
	if(plugin->fleet_refused_at != sequence){
		plugin->fleet_refused_at = sequence;
		plugin->log(MOSQ_LOG_ERR, "tokens: change %" PRId64 " from the database cannot be applied to this broker's "
				"store (%s): this broker stays at change %" PRId64 "; restart it without its cache (%s) to load "
				"the database's store whole", sequence, problem, plugin->fleet_applied, plugin->state_file);
	}
	return false;
}

static bool catch_up(struct tokens_plugin *plugin, size_t batches, char *error, size_t error_len)
{
	bool caught_up = fleet_fetch_now(plugin->fleet, plugin->fleet_applied, batches, apply_change, plugin,
			error, error_len);
	sync_cache(plugin);
	return caught_up;
}

bool fleet_member_catch_up(struct tokens_plugin *plugin, char *error, size_t error_len)
{
	return catch_up(plugin, 0, error, error_len);
}

/* One batch at most: a member far behind (back from a long outage) must
 * not hold the broker for the whole log at one request; the tick goes on
 * with the rest, and a command that changes something catches up whole. */
void fleet_member_refresh(struct tokens_plugin *plugin)
{
	char error[1024];
	if(plugin->fleet && fleet_is_up(plugin->fleet)){
		catch_up(plugin, 1, error, sizeof(error));   /* a failure shows in the link's state */
	}
}

/* ---- joining ---- */

/* The database's store, read into a store of its own and put in place
 * only once whole: a database that fails half way leaves the cache's. */
static bool load_whole(struct tokens_plugin *plugin, char *error, size_t error_len)
{
	int64_t sequence = 0;
	struct store fresh;
	store_init(&fresh);
	if(!fleet_load_store(plugin->fleet, &fresh, &sequence, error, error_len)){
		return false;
	}
	store_clear(&plugin->store);
	plugin->store = fresh;   /* nothing points at a store's own fields: it moves whole */
	plugin->fleet_applied = sequence;
	persist_set_fleet_position(plugin->persist, fleet_id(plugin->fleet), sequence);
	char problem[1024];
	if(!persist_save(plugin->persist, &plugin->store, problem, sizeof(problem))){
		plugin->log(MOSQ_LOG_WARNING, "tokens: could not write the local cache %s (retried later): %s",
				plugin->state_file, problem);
		plugin->fleet_cache_stale = true;
	}
	plugin->log(MOSQ_LOG_INFO, "tokens: loaded %zu tokens and %zu roles from the database (change %" PRId64 ")",
			store_token_count(&plugin->store), store_role_count(&plugin->store), sequence);
	return true;
}

/* The cache is of this database and the log still holds every change
 * after it: catching up is enough. */
static bool cache_follows_log(struct tokens_plugin *plugin, const char *cache_id, int64_t cache_sequence)
{
	char error[512];
	int64_t first = 0, last = 0;
	if(strcmp(cache_id, fleet_id(plugin->fleet)) != 0
			|| !fleet_log_bounds(plugin->fleet, &first, &last, error, sizeof(error))){
		return false;
	}
	return cache_sequence <= last && (cache_sequence == last || cache_sequence + 1 >= first);
}

/* False when the database failed meanwhile: the store is then the cache's,
 * or the cache's and some of the changes after it, in order. */
static bool sync_with_database(struct tokens_plugin *plugin, char *error, size_t error_len)
{
	const char *cache_id;
	int64_t cache_sequence;
	persist_fleet_position(plugin->persist, &cache_id, &cache_sequence);
	if(!cache_follows_log(plugin, cache_id, cache_sequence)){
		return load_whole(plugin, error, error_len);
	}
	plugin->fleet_applied = cache_sequence;
	if(fleet_member_catch_up(plugin, error, error_len)){
		plugin->log(MOSQ_LOG_INFO, "tokens: the local cache %s was at change %" PRId64 "; caught up to change %" PRId64,
				plugin->state_file, cache_sequence, plugin->fleet_applied);
		return true;
	}
	if(!fleet_is_up(plugin->fleet)){
		return false;
	}
	/* A change did not apply (logged): the cache is not what the database
	 * says it was. The database's store wins. */
	plugin->fleet_refused_at = 0;
	plugin->log(MOSQ_LOG_WARNING, "tokens: the local cache %s does not follow the database's change log: "
			"loading the database's store whole", plugin->state_file);
	return load_whole(plugin, error, error_len);
}

static void name_member(char *member, size_t size)
{
	char host[256] = "";
	if(gethostname(host, sizeof(host) - 1) != 0){
		snprintf(host, sizeof(host), "unknown");
	}
	snprintf(member, size, "%s:%ld", host, (long)getpid());
}

static void set_events(struct tokens_plugin *plugin);

/* A state file with a store but no fleetId was never a cache: the
 * database's store would replace it unasked, or be replayed on top of it. */
static bool refuse_a_store_as_cache(struct tokens_plugin *plugin, char *error, size_t error_len)
{
	const char *cache_id;
	int64_t cache_sequence;
	persist_fleet_position(plugin->persist, &cache_id, &cache_sequence);
	size_t tokens = store_token_count(&plugin->store), roles = store_role_count(&plugin->store);
	if(cache_id[0] != '\0' || (tokens == 0 && roles == 0)){
		return false;
	}
	snprintf(error, error_len, "%s holds a store of its own (%zu tokens, %zu roles), not a cache of a database: "
			"copy it into the database with `mosquitto_ctrl tokens import %s <postgres>`, or give this broker "
			"another plugin_opt_state_file for its cache", plugin->state_file, tokens, roles, plugin->state_file);
	return true;
}

static void serve_the_cache(struct tokens_plugin *plugin, const char *reason)
{
	plugin->log(MOSQ_LOG_WARNING, "tokens: PostgreSQL is not reachable (%s): serving the %zu tokens of the "
			"local cache %s (change %" PRId64 "); changes fail until it is reachable", reason,
			store_token_count(&plugin->store), plugin->state_file, plugin->fleet_applied);
	plugin->fleet_link_down = true;
}

bool fleet_member_join(struct tokens_plugin *plugin, const char *conninfo, int64_t timeout_ms,
		char *error, size_t error_len)
{
	if(refuse_a_store_as_cache(plugin, error, error_len)){
		return false;
	}
	char member[300];
	name_member(member, sizeof(member));
	plugin->fleet = fleet_new(conninfo, member, timeout_ms);
	if(plugin->fleet == NULL){
		snprintf(error, error_len, "out of memory");
		return false;
	}
	set_events(plugin);
	const char *cache_id;
	persist_fleet_position(plugin->persist, &cache_id, &plugin->fleet_applied);
	char reason[1024];
	if(!fleet_connect_now(plugin->fleet, reason, sizeof(reason)) || !sync_with_database(plugin, reason, sizeof(reason))){
		serve_the_cache(plugin, reason);
	}
	return true;
}

/* ---- recording ---- */

bool fleet_member_can_record(const struct tokens_plugin *plugin)
{
	return plugin->fleet == NULL || (fleet_is_up(plugin->fleet) && !plugin->fleet_foreign);
}

enum record_outcome tokens_plugin_record(struct tokens_plugin *plugin, cJSON *change, char *error, size_t error_len)
{
	if(plugin->fleet == NULL){
		return persist_record(plugin->persist, change, error, error_len) ? RECORDED : RECORD_FAILED;
	}
	if(plugin->fleet_foreign){
		snprintf(error, error_len, "the database holds another store than this broker's (restart the broker)");
		return RECORD_FAILED;
	}
	int64_t sequence = plugin->fleet_applied + 1;
	switch(fleet_commit(plugin->fleet, sequence, change, error, error_len)){
	case FLEET_COMMITTED:
		record_in_cache(plugin, change, sequence, true);
		plugin->fleet_applied = sequence;
		return RECORDED;
	case FLEET_BEHIND:
		return RECORD_BEHIND;
	case FLEET_UNKNOWN:
		return RECORD_UNKNOWN;
	case FLEET_FAILED:
		break;
	}
	return RECORD_FAILED;
}

void fleet_member_queue_last_used(struct tokens_plugin *plugin, const unsigned char (*hashes)[TOKEN_HASH_LEN],
		size_t count)
{
	if(plugin->fleet == NULL){
		return;
	}
	for(size_t i = 0; i < count; i++){
		const struct token *token = store_find_token_by_hash(&plugin->store, hashes[i]);
		if(token == NULL || token->last_used == TIME_NEVER){
			continue;
		}
		char hash[TOKEN_HASH_HEX_LEN + 1], at[RFC3339_LEN + 1];
		token_format_hash_to_hex(token->hash, hash);
		rfc3339_format(token->last_used, at);
		const char *hash_text = hash, *at_text = at;
		if(!fleet_save_last_used(plugin->fleet, &hash_text, &at_text, 1)){
			plugin->log(MOSQ_LOG_WARNING, "tokens: out of memory queueing lastUsed times for the database");
			return;
		}
	}
}

/* ---- the tick ---- */

static int64_t applied_sequence(void *context)
{
	return ((struct tokens_plugin *)context)->fleet_applied;
}

/* The store this member holds is another database's (the cache of
 * another store, or a database recreated meanwhile): none of its changes
 * fit. Only a restart, which loads the database's store whole, mends it. */
static bool database_replaced(struct tokens_plugin *plugin)
{
	const char *cache_id;
	int64_t cache_sequence;
	persist_fleet_position(plugin->persist, &cache_id, &cache_sequence);
	return cache_id[0] != '\0' && strcmp(cache_id, fleet_id(plugin->fleet)) != 0;
}

static void link_up(void *context)
{
	struct tokens_plugin *plugin = context;
	if(!plugin->fleet_foreign && database_replaced(plugin)){
		plugin->fleet_foreign = true;
		plugin->log(MOSQ_LOG_ERR, "tokens: the database holds another store (id %s) than this broker's (the local "
				"cache %s is of another database, or the database was created again): this broker applies and "
				"makes no change until it is restarted, which loads the database's store whole",
				fleet_id(plugin->fleet), plugin->state_file);
	}
	if(plugin->fleet_link_down){
		plugin->log(MOSQ_LOG_NOTICE, "tokens: PostgreSQL is reachable again; catching up from change %" PRId64,
				plugin->fleet_applied);
	}
	plugin->fleet_link_down = false;
}

static void link_down(void *context, const char *reason)
{
	struct tokens_plugin *plugin = context;
	if(!plugin->fleet_link_down){
		plugin->log(MOSQ_LOG_WARNING, "tokens: lost the connection to PostgreSQL (%s): logins go on from memory, "
				"changes fail until it is back", reason);
	}
	plugin->fleet_link_down = true;
}

static void set_events(struct tokens_plugin *plugin)
{
	const struct fleet_events events = {
		.context = plugin, .change = apply_change, .link_up = link_up, .link_down = link_down,
		.applied = applied_sequence,
	};
	fleet_set_events(plugin->fleet, &events);
}

void fleet_member_tick(struct tokens_plugin *plugin)
{
	if(plugin->fleet == NULL){
		return;
	}
	fleet_poll(plugin->fleet);
	sync_cache(plugin);
	refresh_stale_cache(plugin);
	/* A member that only receives changes folds its cache too. */
	if(persist_wants_snapshot(plugin->persist, &plugin->store)){
		tokens_plugin_fold(plugin);
	}
}

void fleet_member_leave(struct tokens_plugin *plugin)
{
	if(plugin->fleet == NULL){
		return;
	}
	fleet_member_queue_last_used(plugin, plugin->last_used_queue, plugin->last_used_queued);
	fleet_flush_last_used(plugin->fleet);
}
