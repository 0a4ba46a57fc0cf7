/*
 * Events and metrics. See plugin/events.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mosquitto.h>

#include "events.h"
#include "fleet_member.h"
#include "journal.h"
#include "rfc3339.h"
#include "metadata_json.h"

static cJSON *event_json(const char *event, const struct token *token, int64_t now,
		const char *by, const unsigned char *previous_hash)
{
	char at[RFC3339_LEN + 1], previous_hex[TOKEN_HASH_HEX_LEN + 1];
	cJSON *object = token_to_json(token);
	rfc3339_format(now, at);
	bool ok = object
		&& cJSON_AddStringToObject(object, "status", now < token->valid_until ? "valid" : "invalid")
		&& cJSON_AddStringToObject(object, "event", event)
		&& cJSON_AddStringToObject(object, "at", at);
	if(ok && by){
		ok = cJSON_AddStringToObject(object, "by", by) != NULL;
	}
	if(ok && previous_hash){
		token_format_hash_to_hex(previous_hash, previous_hex);
		ok = cJSON_AddStringToObject(object, "previousHash", previous_hex) != NULL;
	}
	if(!ok){
		cJSON_Delete(object);
		return NULL;
	}
	return object;
}

void events_publish(struct tokens_plugin *plugin, const char *event, const struct token *token,
		const char *by, const unsigned char *previous_hash)
{
	if(plugin->publish == NULL){
		return;
	}
	cJSON *object = event_json(event, token, plugin->now(), by, previous_hash);
	char *payload = object ? cJSON_PrintUnformatted(object) : NULL;
	cJSON_Delete(object);
	if(payload == NULL){
		plugin->log(MOSQ_LOG_WARNING, "tokens: out of memory sending %s for %s", event, token->name);
		return;
	}
	plugin->publish(EVENTS_TOPIC, payload, false);
	free(payload);
}

/* The marks are applied even if they cannot be recorded: sent once in
 * this run, and perhaps again after a restart, is the lesser harm. A
 * fleet member sends a notice only once its mark is in the database: the
 * member whose mark is committed first is the one that sends it, and the
 * others learn the mark from the database. Returns whether to send. */
static bool mark_noticed(struct tokens_plugin *plugin, struct token *token, bool expired)
{
	char error[512];
	struct change change = change_noticed(token, true, expired);
	cJSON *line = journal_encode(&change);
	enum record_outcome outcome = line ? tokens_plugin_record(plugin, line, error, sizeof(error)) : RECORD_FAILED;
	cJSON_Delete(line);
	if(plugin->fleet && outcome != RECORDED){
		change_release(&change);
		if(outcome != RECORD_BEHIND){
			plugin->log(MOSQ_LOG_WARNING, "tokens: could not record the expiry notice of %s in the database "
					"(it is sent once it is): %s", token->name, line ? error : "out of memory");
			tokens_plugin_schedule_notices(plugin, token);
			return false;
		}
		/* Another member's change came first, likely its mark of this very
		 * notice: applied now, the queue then knows. The catch-up may
		 * revoke the token: it is looked up again. */
		unsigned char hash[TOKEN_HASH_LEN];
		memcpy(hash, token->hash, sizeof(hash));
		fleet_member_catch_up(plugin, error, sizeof(error));
		token = store_find_token_by_hash(&plugin->store, hash);
		if(token){
			tokens_plugin_schedule_notices(plugin, token);
		}
		return false;
	}
	if(outcome != RECORDED){
		plugin->log(MOSQ_LOG_WARNING, "tokens: could not record the expiry notice of %s "
				"(it may be sent again after a restart): %s", token->name, line ? error : "out of memory");
	}
	tokens_plugin_apply(plugin, &change);   /* marks only: nothing to allocate */
	change_release(&change);
	return true;
}

void events_send_due_notices(struct tokens_plugin *plugin, int64_t now)
{
	struct token *token;
	size_t sent = 0;
	if(!fleet_member_can_record(plugin)){
		return;   /* they wait for the database, which says who sends them */
	}
	while(sent++ < NOTICES_PER_TICK && (token = expiry_pop_due(&plugin->notices, now)) != NULL){
		/* A token that expired while the broker was down gets no warning. */
		bool expired = now >= token->valid_until;
		if(expired ? token->expired_noticed : token->expiring_noticed){
			/* Sent already: a fleet member's mark came from the database
			 * while the token waited in the queue under its old time. */
			tokens_plugin_schedule_notices(plugin, token);
			continue;
		}
		if(!mark_noticed(plugin, token, expired)){
			break;   /* behind the database, or without it: the next tick */
		}
		events_publish(plugin, expired ? "tokenExpired" : "tokenExpiring", token, NULL, NULL);
	}
}

static void publish_number(struct tokens_plugin *plugin, const char *name, uint64_t value)
{
	char topic[96], payload[32];
	snprintf(topic, sizeof(topic), METRICS_TOPIC_PREFIX "%s", name);
	snprintf(payload, sizeof(payload), "%" PRIu64, value);
	plugin->publish(topic, payload, true);
}

void events_publish_metrics(struct tokens_plugin *plugin)
{
	if(plugin->publish == NULL){
		return;
	}
	size_t total = store_token_count(&plugin->store);
	publish_number(plugin, "total", total);
	publish_number(plugin, "valid", total - plugin->expired_tokens);
	publish_number(plugin, "invalid", plugin->expired_tokens);
	publish_number(plugin, "connections", plugin->sessions.attached);
	publish_number(plugin, "sessions/offline", plugin->sessions.offline);
	publish_number(plugin, "logins/accepted", plugin->logins_accepted);
	publish_number(plugin, "logins/refused", plugin->logins_refused);
}
