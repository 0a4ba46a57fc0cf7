/*
 * The plugin instance's life: create it from a state file, save what is
 * saved lazily, close a token's connections, free it. Nothing here talks
 * to the broker except through plugin->log, so tests can build instances.
 */
#include <stdlib.h>
#include <mosquitto.h>

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
	plugin->persist = persist_open(state_file, error, error_len);
	if(plugin->persist == NULL || !persist_load(plugin->persist, &plugin->store, error, error_len)){
		tokens_plugin_free(plugin);
		return NULL;
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
	free(plugin);
}

size_t tokens_plugin_close_token_sessions(struct tokens_plugin *plugin, struct token *token)
{
	expiry_remove(&plugin->expiry, token);
	return sessions_close_token(&plugin->sessions, token);
}

void tokens_plugin_save_last_used(struct tokens_plugin *plugin)
{
	char error[1024];
	if(!plugin->last_used_dirty){
		return;
	}
	plugin->last_used_saved_at = plugin->now();
	if(!persist_save(plugin->persist, &plugin->store, error, sizeof(error))){
		plugin->log(MOSQ_LOG_WARNING, "tokens: could not save lastUsed times (will retry): %s", error);
		return;
	}
	plugin->last_used_dirty = false;
}
