/*
 * Entry points of mosquitto_tokens.so (plugin API version 5): read the
 * options, load the state, register the callbacks; and undo it all at
 * cleanup. A state file that cannot be used stops the broker from starting:
 * running with an empty store would lock every device out, and the next
 * save would destroy the operator's tokens.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "broker_api.h"
#include "broker_features.h"

#include "broker_callbacks.h"
#include "fleet.h"
#include "fleet_member.h"
#include "instance.h"

static int64_t wall_clock_now(void)
{
	return (int64_t)time(NULL);
}

/* Events at QoS 1 (a subscriber asking for it gets them reliably),
 * metrics retained at QoS 0 like the broker's own $SYS topics. */
static void broker_publish(const char *topic, const char *payload, bool retain)
{
	broker_publish_counted(NULL, topic, payload, retain ? 0 : 1, retain, NULL);
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

/* A whole number in [min, max]; an absent option keeps *out. */
static bool number_option(const struct mosquitto_opt *options, int option_count, const char *key,
		const char *unit, int64_t min, int64_t max, int64_t *out)
{
	const char *text = find_option(options, option_count, key);
	if(text == NULL){
		return true;
	}
	char *end;
	errno = 0;
	long long value = strtoll(text, &end, 10);
	if(errno || end == text || *end != '\0' || value < min || value > max){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tokens: plugin_opt_%s must be a whole number%s "
				"from %lld to %lld, not \"%s\"", key, unit, (long long)min, (long long)max, text);
		return false;
	}
	*out = value;
	return true;
}

static bool seconds_option(const struct mosquitto_opt *options, int option_count, const char *key,
		int64_t min, int64_t max, int64_t *out)
{
	return number_option(options, option_count, key, " of seconds", min, max, out);
}

static bool whole_number_option(const struct mosquitto_opt *options, int option_count, const char *key,
		int64_t min, int64_t max, int64_t *out)
{
	return number_option(options, option_count, key, "", min, max, out);
}

/* With per_listener_settings true the broker initialises the plugin once
 * per listener, each instance with its own copy of the state, and 2.0
 * sends such instances MOSQ_EVT_TICK only from 2.0.15 (revoked connections
 * would never be closed, replies never sent). So the plugin refuses a
 * second live instance in the process (the only state kept per process:
 * the library is loaded once whatever the number of instances), and on
 * 2.0 any listener-bound one. */
static int live_instances;

/* The plugin id is opaque, and its layout differs between release lines.
 * On 2.0 (every release from 2.0.11 to 2.0.22, read from their sources) it
 * is exactly the listener's pointer, NULL unless per_listener_settings is
 * on; 2.1 has its own layout, and ticks every listener's plugins, so it is
 * not read there. */
static bool bound_to_a_listener_on_2_0(const mosquitto_plugin_id_t *identifier, const struct broker_features *features)
{
	return !features->release_2_1 && *(void *const *)identifier != NULL;
}

/* Options are not re-read on SIGHUP; but the broker re-runs every login
 * right after this event, offline sessions' too, and those re-checks must
 * not count as logins. The answer that lets the reload go on differs
 * between releases (broker_features.h). */
static int on_reload(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)event_data;
	struct tokens_plugin *plugin = userdata;
	plugin->rechecking_logins = true;
	sessions_start_recheck(&plugin->sessions);
	return plugin->reload_answer;
}

static const struct {
	int event;
	MOSQ_FUNC_generic_callback callback;
	const char *event_data;
	bool release_2_1_only;
} callbacks[] = {
	{MOSQ_EVT_BASIC_AUTH, authentication_on_basic_auth, NULL, false},
	{MOSQ_EVT_ACL_CHECK, authorization_on_acl_check, NULL, false},
	{MOSQ_EVT_DISCONNECT, authentication_on_disconnect, NULL, false},
	{MOSQ_EVT_CLIENT_OFFLINE, authentication_on_disconnect, NULL, true},
	{MOSQ_EVT_TICK, tick_on_tick, NULL, false},
	{MOSQ_EVT_RELOAD, on_reload, NULL, false},
	{MOSQ_EVT_CONTROL, control_topic_on_message, CONTROL_TOPIC, false},
	{MOSQ_EVT_MESSAGE_OUT, control_topic_on_message_out, NULL, true},
};
#define CALLBACK_COUNT (sizeof(callbacks) / sizeof(callbacks[0]))

static bool wanted(size_t index, const struct tokens_plugin *plugin)
{
	return !callbacks[index].release_2_1_only || plugin->broker_reports_session_end;
}

static void unregister_callbacks(mosquitto_plugin_id_t *identifier, const struct tokens_plugin *plugin, size_t count)
{
	for(size_t i = 0; i < count; i++){
		if(wanted(i, plugin)){
			mosquitto_callback_unregister(identifier, callbacks[i].event, callbacks[i].callback,
					callbacks[i].event_data);
		}
	}
}

static bool register_callbacks(mosquitto_plugin_id_t *identifier, struct tokens_plugin *plugin)
{
	for(size_t i = 0; i < CALLBACK_COUNT; i++){
		if(wanted(i, plugin) && mosquitto_callback_register(identifier, callbacks[i].event, callbacks[i].callback,
				callbacks[i].event_data, plugin) != MOSQ_ERR_SUCCESS){
			mosquitto_log_printf(MOSQ_LOG_ERR, "tokens: cannot register broker callback %d", callbacks[i].event);
			unregister_callbacks(identifier, plugin, i);
			return false;
		}
	}
	return true;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	const struct broker_features features = broker_features_detect();
	if(live_instances > 0 || bound_to_a_listener_on_2_0(identifier, &features)){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tokens: per_listener_settings true is not supported%s: "
				"load the plugin once, with per_listener_settings false (the default)",
				live_instances > 0 ? " (the plugin is loaded a second time)" : "");
		return MOSQ_ERR_NOT_SUPPORTED;
	}
	const char *state_file = find_option(options, option_count, "state_file");
	if(state_file == NULL || state_file[0] == '\0'){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tokens: plugin_opt_state_file is required "
				"(for example plugin_opt_state_file /var/lib/mosquitto/tokens.json)");
		return MOSQ_ERR_INVAL;
	}
	int64_t save_interval = DEFAULT_LAST_USED_SAVE_INTERVAL;
	struct tokens_limits limits = DEFAULT_LIMITS;
	if(!whole_number_option(options, option_count, "max_request_bytes", 1024, 268435455, &limits.request_bytes)
			|| !whole_number_option(options, option_count, "max_commands", 1, 100000, &limits.commands)
			|| !whole_number_option(options, option_count, "max_tokens", 1, 100000000, &limits.tokens)
			|| !whole_number_option(options, option_count, "max_acls_per_role", 1, 100000, &limits.acls_per_role)
			|| !whole_number_option(options, option_count, "max_topic_bytes", 1, 65535, &limits.topic_bytes)
			|| !whole_number_option(options, option_count, "max_reply_bytes", 16384, 268435455, &limits.reply_bytes)
			|| !whole_number_option(options, option_count, "max_offline_sessions", 1, 100000000,
				&limits.offline_sessions)
			|| !whole_number_option(options, option_count, "max_offline_sessions_per_token", 1, 100000000,
				&limits.offline_sessions_per_token)){
		return MOSQ_ERR_INVAL;
	}
	int64_t snapshot_after = 0;
	int64_t warning_days = DEFAULT_EXPIRY_WARNING_DAYS, metrics_interval = DEFAULT_METRICS_INTERVAL;
	if(!seconds_option(options, option_count, "last_used_save_interval", 1, 86400, &save_interval)
			|| !whole_number_option(options, option_count, "snapshot_after", 0, 1000000000, &snapshot_after)
			|| !whole_number_option(options, option_count, "expiry_warning_days", 0, 3650, &warning_days)
			|| !seconds_option(options, option_count, "metrics_interval", 0, 86400, &metrics_interval)){
		return MOSQ_ERR_INVAL;
	}

	const char *background_fold = find_option(options, option_count, "background_fold");
	if(background_fold && strcmp(background_fold, "true") != 0 && strcmp(background_fold, "false") != 0){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tokens: plugin_opt_background_fold must be true or false, not \"%s\"",
				background_fold);
		return MOSQ_ERR_INVAL;
	}

	const char *postgres_conninfo = find_option(options, option_count, "postgres_conninfo");
	int64_t postgres_timeout_ms = FLEET_DEFAULT_TIMEOUT_MS;
	if(postgres_conninfo && postgres_conninfo[0] == '\0'){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tokens: plugin_opt_postgres_conninfo is empty (give a libpq connection "
				"string or URI, or leave the option out to use the state file alone)");
		return MOSQ_ERR_INVAL;
	}
	if(postgres_conninfo && !fleet_conninfo_is_valid(postgres_conninfo)){
		/* libpq's own message would quote the string, a password with it. */
		mosquitto_log_printf(MOSQ_LOG_ERR, "tokens: plugin_opt_postgres_conninfo is not a connection string or URI "
				"libpq can read (see \"Connection Strings\" in PostgreSQL's libpq documentation)");
		return MOSQ_ERR_INVAL;
	}
	if(!whole_number_option(options, option_count, "postgres_timeout_ms", 100, 60000, &postgres_timeout_ms)){
		return MOSQ_ERR_INVAL;
	}

	char error[1024];
	struct tokens_plugin *plugin = tokens_plugin_new_member(state_file, postgres_conninfo, postgres_timeout_ms,
			mosquitto_log_printf, wall_clock_now, error, sizeof(error));
	if(plugin == NULL){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tokens: %s", error);
		return MOSQ_ERR_UNKNOWN;
	}
	plugin->last_used_save_interval = save_interval;
	plugin->metrics_interval = metrics_interval;
	plugin->limits = limits;
	plugin->sessions.max_offline = (size_t)limits.offline_sessions;
	plugin->sessions.max_offline_per_token = (size_t)limits.offline_sessions_per_token;
	plugin->publish = broker_publish;
	persist_set_snapshot_after(plugin->persist, (size_t)snapshot_after);
	plugin->background_folds = background_fold == NULL || strcmp(background_fold, "true") == 0;
	if(!tokens_plugin_start_notices(plugin, warning_days * 86400)){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tokens: out of memory");
		tokens_plugin_free(plugin);
		return MOSQ_ERR_NOMEM;
	}
	plugin->broker_identifier = identifier;
	plugin->broker_reports_session_end = features.release_2_1;
	plugin->replies_checked_on_write = features.release_2_1;
	plugin->reload_answer = broker_features_reload_answer(&features);
	if(features.set_info){
		features.set_info(identifier, "mosquitto-tokens", TOKENS_VERSION);
	}
	if(!register_callbacks(identifier, plugin)){
		tokens_plugin_free(plugin);
		return MOSQ_ERR_UNKNOWN;
	}
	live_instances++;
	mosquitto_log_printf(MOSQ_LOG_INFO, "tokens: loaded %zu tokens and %zu roles from %s%s",
			store_token_count(&plugin->store), store_role_count(&plugin->store),
			postgres_conninfo ? "PostgreSQL, with the local cache " : "", state_file);
	*userdata = plugin;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)options;
	(void)option_count;
	struct tokens_plugin *plugin = userdata;
	if(plugin){
		unregister_callbacks(plugin->broker_identifier, plugin, CALLBACK_COUNT);
		live_instances--;
		fleet_member_leave(plugin);
		/* A stopped broker's state is one file: fold the journal in. */
		if(plugin->last_used_queued > 0 || persist_has_journal(plugin->persist)){
			tokens_plugin_snapshot(plugin);
		}
		tokens_plugin_free(plugin);
	}
	return MOSQ_ERR_SUCCESS;
}
