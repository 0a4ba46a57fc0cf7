/*
 * Entry points of mosquitto_tokens.so (plugin API version 5): read the
 * options, load the state, register the callbacks; and undo it all at
 * cleanup. A state file that cannot be used stops the broker from starting:
 * running with an empty store would lock every device out, and the next
 * save would destroy the operator's tokens.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "control_topic.h"
#include "tokens_plugin.h"

#define PLUGIN_NAME "mosquitto_tokens"

static int64_t wall_clock_now(void)
{
	return (int64_t)time(NULL);
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5){
			return 5;
		}
	}
	return -1;
}

static const char *find_option(const struct mosquitto_opt *options, int option_count, const char *key)
{
	for(int i = 0; i < option_count; i++){
		if(strcmp(options[i].key, key) == 0){
			return options[i].value;
		}
	}
	return NULL;
}

static void free_plugin(struct tokens_plugin *plugin)
{
	if(plugin){
		store_clear(&plugin->store);
		persist_close(plugin->persist);
		free(plugin);
	}
}

static struct tokens_plugin *load_plugin(const char *state_file)
{
	char error[1024];
	struct tokens_plugin *plugin = calloc(1, sizeof(*plugin));
	if(plugin == NULL){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tokens: out of memory");
		return NULL;
	}
	store_init(&plugin->store);
	plugin->log = mosquitto_log_printf;
	plugin->now = wall_clock_now;
	plugin->persist = persist_open(state_file, error, sizeof(error));
	if(plugin->persist == NULL || !persist_load(plugin->persist, &plugin->store, error, sizeof(error))){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tokens: %s", error);
		free_plugin(plugin);
		return NULL;
	}
	mosquitto_log_printf(MOSQ_LOG_INFO, "tokens: loaded %zu tokens and %zu roles from %s",
			store_token_count(&plugin->store), store_role_count(&plugin->store), state_file);
	return plugin;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	const char *state_file = find_option(options, option_count, "state_file");
	if(state_file == NULL || state_file[0] == '\0'){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tokens: plugin_opt_state_file is required "
				"(for example plugin_opt_state_file /var/lib/mosquitto/tokens.json)");
		return MOSQ_ERR_INVAL;
	}
	struct tokens_plugin *plugin = load_plugin(state_file);
	if(plugin == NULL){
		return MOSQ_ERR_UNKNOWN;
	}
	plugin->broker_identifier = identifier;
	if(mosquitto_callback_register(identifier, MOSQ_EVT_CONTROL, control_topic_on_message,
			CONTROL_TOPIC, plugin) != MOSQ_ERR_SUCCESS){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tokens: cannot register %s", CONTROL_TOPIC);
		free_plugin(plugin);
		return MOSQ_ERR_UNKNOWN;
	}
	*userdata = plugin;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)options;
	(void)option_count;
	struct tokens_plugin *plugin = userdata;
	if(plugin){
		mosquitto_callback_unregister(plugin->broker_identifier, MOSQ_EVT_CONTROL,
				control_topic_on_message, CONTROL_TOPIC);
		free_plugin(plugin);
	}
	return MOSQ_ERR_SUCCESS;
}
