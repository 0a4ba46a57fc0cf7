/*
 * The plugin instance's life: create it from a state file, save what is
 * saved lazily, close a token's connections, free it. Nothing here talks
 * to the broker except through plugin->log, so tests can build instances.
 */
#include <stdlib.h>
#include <string.h>
#include <mosquitto.h>

#include "journal.h"

#include "tokens_plugin.h"

struct tokens_plugin *tokens_plugin_new(const char *state_file, tokens_log_fn log, tokens_clock_fn now,
		char *error, size_t error_len)
{
	struct tokens_plugin *plugin = calloc(1, sizeof(*plugin));
	if(plugin == NULL){
		snprintf(error, error_len, "out of memory");
		return NULL;
	}
	store_init(&plugin->store);
	sessions_init(&plugin->sessions);
	expiry_init(&plugin->expiry);
	plugin->log = log;
	plugin->now = now;
	plugin->last_used_save_interval = DEFAULT_LAST_USED_SAVE_INTERVAL;
	plugin->last_used_saved_at = now();
	if(!token_hasher_init(&plugin->hasher)){
		snprintf(error, error_len, "OpenSSL has no SHA-256");
		tokens_plugin_free(plugin);
		return NULL;
	}
	plugin->persist = persist_open(state_file, error, error_len);
	if(plugin->persist == NULL || !persist_load(plugin->persist, &plugin->store, error, error_len)){
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
	expiry_clear(&plugin->expiry);
	store_clear(&plugin->store);
	persist_close(plugin->persist);
	token_hasher_free(&plugin->hasher);
	free(plugin->last_used_queue);
	free(plugin);
}

size_t tokens_plugin_close_token_sessions(struct tokens_plugin *plugin, struct token *token)
{
	expiry_remove(&plugin->expiry, token);
	return sessions_close_token(&plugin->sessions, token, plugin->requesting_client);
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

/* Builds one lastUsed change from the head of the queue. */
static cJSON *last_used_change(struct tokens_plugin *plugin, size_t *taken)
{
	cJSON *change = journal_last_used();
	size_t i = 0;
	for(; change && i < plugin->last_used_queued && journal_change_count(change) < LAST_USED_SAVE_BATCH; i++){
		const struct token *token = store_find_token_by_hash(&plugin->store, plugin->last_used_queue[i]);
		if(token && !journal_add_last_used(change, token)){
			cJSON_Delete(change);
			return NULL;
		}
	}
	*taken = i;
	return change;
}

void tokens_plugin_save_last_used(struct tokens_plugin *plugin)
{
	char error[1024];
	size_t taken = 0;
	plugin->last_used_saved_at = plugin->now();
	if(plugin->last_used_queued == 0){
		return;
	}
	cJSON *change = last_used_change(plugin, &taken);
	bool saved = change && (journal_change_count(change) == 0
			|| persist_record(plugin->persist, change, error, sizeof(error)));
	cJSON_Delete(change);
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
	/* The snapshot holds every lastUsed time. */
	for(size_t i = 0; i < plugin->last_used_queued; i++){
		struct token *token = store_find_token_by_hash(&plugin->store, plugin->last_used_queue[i]);
		if(token) token->last_used_unsaved = false;
	}
	plugin->last_used_queued = 0;
}
