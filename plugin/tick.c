/*
 * Work the broker lets the plugin do between network events (MOSQ_EVT_TICK,
 * about ten times a second when idle): settling the sessions that left
 * (sessions.h), closing connections, and the lazy saves of lastUsed times
 * and session bindings. Kicks run here and only here because a kick calls back
 * into the plugin's disconnect handler, and a command may be running on
 * behalf of the very client being kicked.
 */
#include <stdlib.h>
#include <string.h>
#include "broker_api.h"

#include "broker_callbacks.h"
#include "events.h"
#include "fleet_member.h"
#include "instance.h"

static void close_expired_tokens(struct tokens_plugin *plugin, int64_t now)
{
	struct token *token;
	while((token = expiry_pop_due(&plugin->expiry, now)) != NULL){
		struct sessions_closed closed = sessions_close_token(&plugin->sessions, token, NULL);
		plugin->log(MOSQ_LOG_NOTICE, "tokens: token %s expired, closing %zu connection%s and ending %zu offline session%s",
				token->name, closed.connected, closed.connected == 1 ? "" : "s",
				closed.offline, closed.offline == 1 ? "" : "s");
	}
}

/* Departed sessions become offline or end; after a SIGHUP, offline
 * bindings whose session the broker no longer has end (sessions.h). */
static void settle_sessions(struct tokens_plugin *plugin)
{
	if(plugin->rechecking_logins){
		plugin->rechecking_logins = false;
		size_t gone = sessions_end_unmet(&plugin->sessions);
		if(gone > 0){
			plugin->log(MOSQ_LOG_INFO, "tokens: %zu offline session%s bound to tokens no longer exist%s; "
					"their bindings end", gone, gone == 1 ? "" : "s", gone == 1 ? "s" : "");
		}
	}
	size_t dropped = sessions_settle_departed(&plugin->sessions, mosquitto_client_id);
	if(dropped > 0){
		plugin->log(MOSQ_LOG_WARNING, "tokens: %zu offline session%s lost %s binding to %s token: "
				"beyond plugin_opt_max_offline_sessions_per_token (%zu; its oldest go) or "
				"plugin_opt_max_offline_sessions (%zu; new ones are not kept); nothing more is queued for %s",
				dropped, dropped == 1 ? "" : "s", dropped == 1 ? "its" : "their", dropped == 1 ? "its" : "their",
				plugin->sessions.max_offline_per_token, plugin->sessions.max_offline, dropped == 1 ? "it" : "them");
	}
}

static void kick(struct tokens_plugin *plugin, const struct mosquitto *client)
{
	/* Still connected and still detached? See sessions_take_due_kicks. */
	const struct session *session = sessions_find(&plugin->sessions, client);
	if(session == NULL || session->token != NULL){
		return;
	}
	/* The kick frees the session (through the disconnect callback). */
	char *client_id = strdup(session->client_id);
	if(client_id){
		mosquitto_kick_client_by_clientid(client_id, false);
		free(client_id);
	}
}

static void run_kicks(struct tokens_plugin *plugin)
{
	size_t count;
	const struct mosquitto **kicks = sessions_take_due_kicks(&plugin->sessions, &count);
	for(size_t i = 0; i < count; i++){
		kick(plugin, kicks[i]);
	}
	free(kicks);
}

int tick_on_tick(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)event_data;
	struct tokens_plugin *plugin = userdata;
	int64_t now = plugin->now();

	/* First: what another fleet member changed (a revoke) is in force
	 * before anything else this tick does. */
	fleet_member_tick(plugin);
	settle_sessions(plugin);
	close_expired_tokens(plugin, now);
	tokens_plugin_end_grace_periods(plugin, now);
	events_send_due_notices(plugin, now);
	run_kicks(plugin);
	if(plugin->metrics_interval > 0 && now - plugin->metrics_published_at >= plugin->metrics_interval){
		plugin->metrics_published_at = now;
		events_publish_metrics(plugin);
	}
	bool unsaved = plugin->last_used_queued > 0 || session_records_count(&plugin->sessions.changes) > 0;
	if(unsaved && now - plugin->last_used_saved_at >= plugin->last_used_save_interval){
		tokens_plugin_save_last_used(plugin);
		tokens_plugin_save_sessions(plugin);
		/* Logins alone may grow the journal: fold it as a command would. */
		if(persist_wants_snapshot(plugin->persist, &plugin->store)){
			tokens_plugin_fold(plugin);
		}
	}
	tokens_plugin_poll_fold(plugin);
	/* Last: after the kicks (a requester kicked now gets nothing), and
	 * nothing between here and the broker's drain of its plugin queue
	 * reads the network (replies.h). */
	control_topic_send_replies(plugin);
	control_topic_forget_unwritten_replies(plugin);
	return MOSQ_ERR_SUCCESS;
}
