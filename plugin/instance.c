/*
 * The plugin instance's life: create it from a state file, save what is
 * saved lazily, close a token's connections, free it. Nothing here talks
 * to the broker except through plugin->log, so tests can build instances.
 */
#include <stdlib.h>
#include <string.h>
#include <mosquitto.h>

#include "fleet.h"
#include "fleet_member.h"
#include "invariants.h"
#include "journal.h"
#include "login.h"

#include "instance.h"

/* A fold's sentence may name two paths of the state folder. */
#define FOLD_ERROR_SIZE 9216

/* A saved binding is restored when its secret still logs in, with its
 * client id: its token's current secret, or a previous one in its grace
 * period, and a token bound to a client id only for that client id. */
static bool restore_session(struct tokens_plugin *plugin, const struct session_record *record)
{
	struct session_login login = {record->client_id, record->username, record->hash, false, true, true};
	struct token *token = store_find_token_by_hash(&plugin->store, record->hash);
	if(token == NULL){
		struct previous_secret *previous = store_find_previous_by_hash(&plugin->store, record->hash);
		if(previous == NULL){
			return true;   /* its token is gone, and with it the binding */
		}
		token = previous->token;
		login.via_previous = true;
	}
	if(!login_client_id_allowed(token, record->client_id)){
		return true;   /* no login with this client id could have made it */
	}
	return sessions_restore(&plugin->sessions, token, &login) && expiry_add(&plugin->expiry, token);
}

static bool restore_sessions(struct tokens_plugin *plugin, const struct session_records *bindings)
{
	for(const struct session_record *record = bindings->by_id; record; record = record->hh.next){
		if(record->bound && !restore_session(plugin, record)){
			return false;
		}
	}
	return true;
}

struct binding_writer {
	session_put_fn put;
	void *writer;
};

static void put_binding(void *context, const struct session *session)
{
	const struct binding_writer *binding_writer = context;
	const struct session_view view = {session->client_id, session->username, session->hash};
	binding_writer->put(binding_writer->writer, &view);
}

/* persist's view of the bindings a snapshot keeps (sessions.h). */
static void each_session_binding(void *context, session_put_fn put, void *writer)
{
	const struct tokens_plugin *plugin = context;
	struct binding_writer binding_writer = {put, writer};
	sessions_each_binding(&plugin->sessions, put_binding, &binding_writer);
}

void tokens_plugin_keep_sessions(struct tokens_plugin *plugin)
{
	plugin->session_source = (struct session_source){plugin, each_session_binding};
	persist_set_session_source(plugin->persist, &plugin->session_source);
}

struct tokens_plugin *tokens_plugin_new(const char *state_file, tokens_log_fn log, tokens_clock_fn now,
		char *error, size_t error_len)
{
	return tokens_plugin_new_member(state_file, NULL, 0, log, now, error, error_len);
}

struct tokens_plugin *tokens_plugin_new_member(const char *state_file, const char *postgres_conninfo,
		int64_t postgres_timeout_ms, tokens_log_fn log, tokens_clock_fn now, char *error, size_t error_len)
{
	struct tokens_plugin *plugin = calloc(1, sizeof(*plugin));
	if(plugin == NULL){
		snprintf(error, error_len, "out of memory");
		return NULL;
	}
	store_init(&plugin->store);
	sessions_init(&plugin->sessions);
	replies_init(&plugin->replies);
	reply_recipients_init(&plugin->reply_recipients, REPLY_RECIPIENTS_MAX);
	expiry_init(&plugin->expiry);
	expiry_init_notices(&plugin->notices, DEFAULT_EXPIRY_WARNING_DAYS * 86400);
	plugin->metrics_interval = DEFAULT_METRICS_INTERVAL;
	plugin->limits = (struct tokens_limits)DEFAULT_LIMITS;
	plugin->sessions.max_offline = (size_t)plugin->limits.offline_sessions;
	plugin->sessions.max_offline_per_token = (size_t)plugin->limits.offline_sessions_per_token;
	plugin->log = log;
	plugin->now = now;
	plugin->last_used_save_interval = DEFAULT_LAST_USED_SAVE_INTERVAL;
	plugin->last_used_saved_at = now();
	plugin->state_file = strdup(state_file);
	if(plugin->state_file == NULL){
		snprintf(error, error_len, "out of memory");
		tokens_plugin_free(plugin);
		return NULL;
	}
	if(!token_hasher_init(&plugin->hasher)){
		snprintf(error, error_len, "OpenSSL has no SHA-256");
		tokens_plugin_free(plugin);
		return NULL;
	}
	plugin->persist = persist_open(state_file, error, error_len);
	struct session_records bindings;
	session_records_init(&bindings);
	if(plugin->persist){
		persist_set_session_sink(plugin->persist, &bindings);
	}
	if(plugin->persist == NULL || !persist_load(plugin->persist, &plugin->store, error, error_len)){
		session_records_clear(&bindings);
		tokens_plugin_free(plugin);
		return NULL;
	}
	persist_set_session_sink(plugin->persist, NULL);
	if(postgres_conninfo && !fleet_member_join(plugin, postgres_conninfo, postgres_timeout_ms, error, error_len)){
		session_records_clear(&bindings);
		tokens_plugin_free(plugin);
		return NULL;
	}
	bool restored = restore_sessions(plugin, &bindings);
	session_records_clear(&bindings);
	if(!restored){
		snprintf(error, error_len, "out of memory");
		tokens_plugin_free(plugin);
		return NULL;
	}
	tokens_plugin_keep_sessions(plugin);
	/* The orders were built counting every token valid: the first listing
	 * would pay for the expired ones. */
	store_refresh_status(&plugin->store, plugin->now());
	/* A load that broke one would be a bug here, not in the file: refuse
	 * rather than serve credentials from a store that contradicts itself. */
	char problem[512];
	if(!invariants_check_store(&plugin->store, problem, sizeof(problem))){
		snprintf(error, error_len, "%s: the loaded state is inconsistent (%s)", state_file, problem);
		tokens_plugin_free(plugin);
		return NULL;
	}
	if(persist_load_notice(plugin->persist)){
		log(MOSQ_LOG_WARNING, "tokens: %s", persist_load_notice(plugin->persist));
	}
	return plugin;
}

void tokens_plugin_free(struct tokens_plugin *plugin)
{
	if(plugin == NULL){
		return;
	}
	sessions_clear(&plugin->sessions);
	replies_clear(&plugin->replies);
	reply_recipients_clear(&plugin->reply_recipients);
	expiry_clear(&plugin->expiry);
	expiry_clear(&plugin->notices);
	store_clear(&plugin->store);
	persist_close(plugin->persist);
	fleet_free(plugin->fleet);
	free(plugin->state_file);
	token_hasher_free(&plugin->hasher);
	free(plugin->last_used_queue);
	free(plugin);
}

void tokens_plugin_schedule_notices(struct tokens_plugin *plugin, struct token *token)
{
	if(!token->expired_noticed && !expiry_add(&plugin->notices, token)){
		plugin->log(MOSQ_LOG_WARNING, "tokens: out of memory: no expiry notices for %s", token->name);
	}
}

bool tokens_plugin_start_notices(struct tokens_plugin *plugin, int64_t warning_seconds)
{
	expiry_clear(&plugin->notices);
	expiry_init_notices(&plugin->notices, warning_seconds);
	plugin->expired_tokens = 0;
	for(struct token *token = plugin->store.tokens_by_hash; token; token = token->hh_hash.next){
		if(token->expired_noticed){
			plugin->expired_tokens++;
		}else if(!expiry_add_unordered(&plugin->notices, token)){
			return false;
		}
	}
	expiry_heapify(&plugin->notices);
	return true;
}

/* ---- what follows a change to the store (changes.h) ---- */

static void on_token_added(void *context, struct token *token)
{
	tokens_plugin_schedule_notices(context, token);
}

/* The token's connections are closed, its offline sessions end, and it
 * leaves every queue. */
static struct sessions_closed on_token_removed(void *context, struct token *token)
{
	struct tokens_plugin *plugin = context;
	expiry_remove(&plugin->expiry, token);
	expiry_remove(&plugin->notices, token);
	if(token->expired_noticed){
		plugin->expired_tokens--;
	}
	return sessions_close_token(&plugin->sessions, token, plugin->requesting_client);
}

/* The replacement takes the old record's connections and queues. With a
 * grace period the old secret's connections stay (as made with it);
 * without, they are closed now. */
static void add_closed(struct sessions_closed *total, struct sessions_closed closed)
{
	total->connected += closed.connected;
	total->offline += closed.offline;
}

static struct sessions_closed on_token_replaced(void *context, struct token *old, struct token *replacement,
		bool keeps_previous)
{
	struct tokens_plugin *plugin = context;
	struct sessions_closed closed = {0, 0};
	expiry_remove(&plugin->expiry, old);
	expiry_remove(&plugin->notices, old);
	if(old->expired_noticed){
		plugin->expired_tokens--;
	}
	/* Sessions made with an even older secret lose it now. */
	add_closed(&closed, sessions_close_previous(&plugin->sessions, old));
	if(!keeps_previous){
		add_closed(&closed, sessions_close_token(&plugin->sessions, old, plugin->requesting_client));
	}
	sessions_move(old, replacement);
	if(replacement->sessions && !expiry_add(&plugin->expiry, replacement)){
		/* Without a place in the queue its sessions would outlive it. */
		add_closed(&closed, sessions_close_token(&plugin->sessions, replacement, plugin->requesting_client));
	}
	tokens_plugin_schedule_notices(plugin, replacement);
	return closed;
}

static void on_token_noticed(void *context, struct token *token, bool was_expired_noticed)
{
	struct tokens_plugin *plugin = context;
	if(token->expired_noticed && !was_expired_noticed){
		plugin->expired_tokens++;
	}
	tokens_plugin_schedule_notices(plugin, token);
}

void tokens_plugin_commit(struct tokens_plugin *plugin, struct change *change)
{
	const struct change_observer observer = {
		.context = plugin,
		.token_added = on_token_added,
		.token_removed = on_token_removed,
		.token_replaced = on_token_replaced,
		.token_noticed = on_token_noticed,
	};
	change_commit(&plugin->store, change, &observer);
}

bool tokens_plugin_apply(struct tokens_plugin *plugin, struct change *change)
{
	if(!change_prepare(&plugin->store, change)){
		return false;
	}
	tokens_plugin_commit(plugin, change);
	return true;
}

void tokens_plugin_end_grace_periods(struct tokens_plugin *plugin, int64_t now)
{
	struct previous_secret *previous, *next;
	HASH_ITER(hh_hash, plugin->store.previous_by_hash, previous, next){
		if(previous->valid_until <= now){
			struct token *token = previous->token;
			struct sessions_closed closed = sessions_close_previous(&plugin->sessions, token);
			store_drop_previous(&plugin->store, token);
			plugin->log(MOSQ_LOG_NOTICE, "tokens: the previous secret of %s has expired, closing %zu connection%s "
					"and ending %zu offline session%s", token->name, closed.connected, closed.connected == 1 ? "" : "s",
					closed.offline, closed.offline == 1 ? "" : "s");
		}
	}
}

void tokens_plugin_mark_used(struct tokens_plugin *plugin, struct token *token, int64_t now)
{
	token->last_used = now;
	if(token->last_used_unsaved){
		return;
	}
	if(plugin->last_used_queued == plugin->last_used_capacity){
		size_t capacity = plugin->last_used_capacity ? 2 * plugin->last_used_capacity : 64;
		void *grown = realloc(plugin->last_used_queue, capacity * sizeof(*plugin->last_used_queue));
		if(grown == NULL){
			return;   /* saved by the next snapshot instead */
		}
		plugin->last_used_queue = grown;
		plugin->last_used_capacity = capacity;
	}
	memcpy(plugin->last_used_queue[plugin->last_used_queued++], token->hash, TOKEN_HASH_LEN);
	token->last_used_unsaved = true;
}

/* Builds one lastUsed change from the head of the queue; *added says how
 * many tokens it holds (those revoked meanwhile are skipped). */
static cJSON *last_used_change(struct tokens_plugin *plugin, size_t *taken, size_t *added)
{
	size_t batch = plugin->last_used_queued < LAST_USED_SAVE_BATCH ? plugin->last_used_queued : LAST_USED_SAVE_BATCH;
	const struct token **tokens = malloc((batch ? batch : 1) * sizeof(*tokens));
	if(tokens == NULL){
		return NULL;
	}
	*added = 0;
	for(*taken = 0; *taken < batch; (*taken)++){
		const struct token *token = store_find_token_by_hash(&plugin->store, plugin->last_used_queue[*taken]);
		if(token){
			tokens[(*added)++] = token;
		}
	}
	cJSON *change = journal_last_used_of(tokens, *added);
	free(tokens);
	return change;
}

void tokens_plugin_save_last_used(struct tokens_plugin *plugin)
{
	char error[1024];
	size_t taken = 0, added = 0;
	plugin->last_used_saved_at = plugin->now();
	if(plugin->last_used_queued == 0){
		return;
	}
	cJSON *change = last_used_change(plugin, &taken, &added);
	bool saved = change && (added == 0 || persist_record(plugin->persist, change, error, sizeof(error)));
	cJSON_Delete(change);
	if(saved){
		fleet_member_queue_last_used(plugin, plugin->last_used_queue, taken);
	}
	if(!saved){
		plugin->log(MOSQ_LOG_WARNING, "tokens: could not save lastUsed times (will retry): %s",
				change ? error : "out of memory");
		return;
	}
	for(size_t i = 0; i < taken; i++){
		struct token *token = store_find_token_by_hash(&plugin->store, plugin->last_used_queue[i]);
		if(token) token->last_used_unsaved = false;
	}
	plugin->last_used_queued -= taken;
	memmove(plugin->last_used_queue, plugin->last_used_queue + taken,
			plugin->last_used_queued * sizeof(*plugin->last_used_queue));
}

void tokens_plugin_save_sessions(struct tokens_plugin *plugin)
{
	char error[1024];
	struct session_records *changes = &plugin->sessions.changes;
	if(session_records_count(changes) == 0){
		return;
	}
	/* At most a batch per save, as for lastUsed: the rest wait. */
	cJSON *change = journal_sessions_of(changes, LAST_USED_SAVE_BATCH);
	bool saved = change && persist_record(plugin->persist, change, error, sizeof(error));
	cJSON_Delete(change);
	if(!saved){
		plugin->log(MOSQ_LOG_WARNING, "tokens: could not save the bindings of persistent sessions (will retry): %s",
				change ? error : "out of memory");
		return;
	}
	struct session_record *record, *next;
	size_t written = 0;
	HASH_ITER(hh, changes->by_id, record, next){
		if(written++ == LAST_USED_SAVE_BATCH){
			break;
		}
		session_records_remove(changes, record->client_id);
	}
}

void tokens_plugin_fold(struct tokens_plugin *plugin)
{
	if(!plugin->background_folds){
		tokens_plugin_snapshot(plugin);
		return;
	}
	char error[1024];
	if(persist_fold_running(plugin->persist)){
		return;
	}
	/* The lastUsed times and bindings still queued stay queued: the
	 * snapshot holds them, but a change made while it is written would be
	 * lost if they were dropped, and the next periodic save costs little. */
	if(!persist_fold_start(plugin->persist, &plugin->store, error, sizeof(error))){
		plugin->log(MOSQ_LOG_WARNING, "tokens: could not write a snapshot (the journal keeps every change; "
				"retried once it has doubled): %s", error);
		plugin->fold_failing = true;
	}
}

void tokens_plugin_poll_fold(struct tokens_plugin *plugin)
{
	char error[FOLD_ERROR_SIZE];
	switch(persist_fold_poll(plugin->persist, error, sizeof(error))){
	case PERSIST_FOLD_IDLE:
	case PERSIST_FOLD_RUNNING:
		return;
	case PERSIST_FOLD_FAILED:
		/* Once per failed fold; the next try waits until the journal has
		 * doubled, so a failing disk is not logged per tick or per command. */
		plugin->log(MOSQ_LOG_WARNING, "tokens: could not write a snapshot (the journal keeps every change; "
				"retried once it has doubled): %s", error);
		plugin->fold_failing = true;
		return;
	case PERSIST_FOLD_INSTALLED:
		break;
	}
	if(error[0]){
		plugin->log(MOSQ_LOG_WARNING, "tokens: %s", error);
	}else if(plugin->fold_failing){
		plugin->log(MOSQ_LOG_NOTICE, "tokens: a snapshot was written again; the journal is folded in");
	}
	plugin->fold_failing = false;
}

void tokens_plugin_snapshot(struct tokens_plugin *plugin)
{
	char error[1024];
	if(!persist_save(plugin->persist, &plugin->store, error, sizeof(error))){
		plugin->log(MOSQ_LOG_WARNING, "tokens: could not write a snapshot (the journal keeps every change): %s", error);
		return;
	}
	if(error[0]){
		plugin->log(MOSQ_LOG_WARNING, "tokens: %s", error);
	}
	/* The snapshot holds every binding and every lastUsed time. */
	session_records_clear(&plugin->sessions.changes);
	for(size_t i = 0; i < plugin->last_used_queued; i++){
		struct token *token = store_find_token_by_hash(&plugin->store, plugin->last_used_queue[i]);
		if(token) token->last_used_unsaved = false;
	}
	plugin->last_used_queued = 0;
}
