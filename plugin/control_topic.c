/*
 * Broker glue for the control topic: receives MOSQ_EVT_CONTROL, runs the
 * request, and sends the reply to the requesting connection only. The
 * broker's directed publish (by client id) reaches that one client without
 * a subscription, so no other subscriber ever sees a reply or a secret;
 * and a reply whose requester is gone or taken over before it leaves goes
 * to nobody. On 2.0 the reply waits for the tick (replies.h); on 2.1 it
 * leaves at once and MOSQ_EVT_MESSAGE_OUT refuses it to any other
 * connection (reply_recipients.h).
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "broker_api.h"

#include "broker_callbacks.h"
#include "control.h"
#include "log_text.h"

/* Who asked, as recorded in requestedBy and in the log: the token's name
 * for a token login, else the username, else the client id. */
static const char *requester_name(const struct tokens_plugin *plugin, const struct mosquitto *client)
{
	const char *token_name = authentication_token_name(plugin, client);
	if(token_name){
		return token_name;
	}
	const char *username = mosquitto_client_username(client);
	if(username && username[0]){
		return username;
	}
	const char *client_id = mosquitto_client_id(client);
	return client_id ? client_id : "unknown";
}

/* MQTT 5 requests may name their own response topic and correlation data;
 * an invalid response topic falls back to the default one. */
static const char *reply_topic(const mosquitto_property *request, char **response_topic,
		mosquitto_property **reply_properties)
{
	*response_topic = NULL;
	*reply_properties = NULL;
	if(!mosquitto_property_read_string(request, MQTT_PROP_RESPONSE_TOPIC, response_topic, false)){
		return RESPONSE_TOPIC;
	}
	if(mosquitto_pub_topic_check(*response_topic) != MOSQ_ERR_SUCCESS){
		return RESPONSE_TOPIC;
	}
	void *correlation = NULL;
	uint16_t correlation_len = 0;
	if(mosquitto_property_read_binary(request, MQTT_PROP_CORRELATION_DATA, &correlation, &correlation_len, false)){
		if(mosquitto_property_add_binary(reply_properties, MQTT_PROP_CORRELATION_DATA,
				correlation, correlation_len) != MOSQ_ERR_SUCCESS){
			mosquitto_property_free_all(reply_properties);
		}
		/* The broker's property readers allocate with its counting allocator. */
		mosquitto_free(correlation);
	}
	return *response_topic;
}

static void hold_reply(struct tokens_plugin *plugin, const struct mosquitto_evt_control *event, const char *payload)
{
	char *response_topic;
	mosquitto_property *properties;
	const char *topic = reply_topic(event->properties, &response_topic, &properties);
	const char *client_id = mosquitto_client_id(event->client);

	if(client_id == NULL || !replies_hold(&plugin->replies, event->client, client_id, topic, payload, properties)){
		plugin->log(MOSQ_LOG_WARNING, "tokens: out of memory: a control reply to %s is lost",
				client_id ? client_id : "(no client id)");
	}
	mosquitto_free(response_topic);
}

/* 2.1. The expiry makes a copy that a session queues while offline (with
 * queue_qos0_messages) vanish before its expectation does. */
static void publish_reply(struct tokens_plugin *plugin, const struct mosquitto_evt_control *event, const char *payload)
{
	char *response_topic;
	mosquitto_property *properties;
	const char *topic = reply_topic(event->properties, &response_topic, &properties);
	const char *client_id = mosquitto_client_id(event->client);
	char label[LOG_TEXT_SIZE];

	if(client_id == NULL
			|| mosquitto_property_add_int32(&properties, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
					REPLY_EXPIRY_SECONDS) != MOSQ_ERR_SUCCESS
			|| !reply_recipients_expect(&plugin->reply_recipients, event->client, client_id, topic,
					payload, strlen(payload), plugin->now())){
		mosquitto_property_free_all(&properties);
		plugin->log(MOSQ_LOG_WARNING, "tokens: out of memory: a control reply to %s is lost",
				log_text_escape(client_id, label));
	}else if(broker_publish_counted(client_id, topic, payload, 0, false, properties) != MOSQ_ERR_SUCCESS){
		plugin->log(MOSQ_LOG_WARNING, "tokens: could not send a control reply to %s",
				log_text_escape(client_id, label));
	}
	mosquitto_free(response_topic);
}

static int send_reply(const char *client_id, const char *topic, const char *payload, mosquitto_property *properties)
{
	return broker_publish_counted(client_id, topic, payload, 0, false, properties);
}

void control_topic_send_replies(struct tokens_plugin *plugin)
{
	size_t taken_over;
	size_t failed = replies_send(&plugin->replies, send_reply, &taken_over);
	if(taken_over){
		plugin->log(MOSQ_LOG_WARNING, "tokens: %zu control repl%s not delivered: another connection logged in "
				"with the requester's client id first", taken_over, taken_over == 1 ? "y was" : "ies were");
	}
	if(failed){
		plugin->log(MOSQ_LOG_WARNING, "tokens: could not send %zu control repl%s", failed, failed == 1 ? "y" : "ies");
	}
}

int control_topic_on_message(int event, void *event_data, void *userdata)
{
	(void)event;
	struct tokens_plugin *plugin = userdata;
	const struct mosquitto_evt_control *control = event_data;

	plugin->requesting_client = control->client;
	cJSON *reply = control_handle_request(plugin, requester_name(plugin, control->client),
			control->payload, control->payloadlen);
	plugin->requesting_client = NULL;
	char *payload = reply ? cJSON_PrintUnformatted(reply) : NULL;
	cJSON_Delete(reply);
	if(payload == NULL){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tokens: out of memory answering a control request");
		return MOSQ_ERR_SUCCESS;
	}
	if(plugin->replies_checked_on_write){
		publish_reply(plugin, control, payload);
	}else{
		hold_reply(plugin, control, payload);
	}
	/* It may hold a secret. */
	OPENSSL_cleanse(payload, strlen(payload));
	free(payload);
	/* Always 0: any other return disconnects the requester. */
	return MOSQ_ERR_SUCCESS;
}

int control_topic_on_message_out(int event, void *event_data, void *userdata)
{
	(void)event;
	struct tokens_plugin *plugin = userdata;
	const struct mosquitto_evt_message *message = event_data;
	const char *client_id = mosquitto_client_id(message->client);
	if(reply_recipients_check(&plugin->reply_recipients, message->client, client_id, message->topic,
			message->payload, message->payloadlen) != REPLY_TO_ANOTHER){
		return MOSQ_ERR_SUCCESS;
	}
	char label[LOG_TEXT_SIZE];
	plugin->log(MOSQ_LOG_WARNING, "tokens: a control reply was not delivered: client %s is not the "
			"connection that asked (it took the client id over)", log_text_escape(client_id, label));
	return MOSQ_ERR_ACL_DENIED;
}

void control_topic_forget_unwritten_replies(struct tokens_plugin *plugin)
{
	struct reply_recipients *recipients = &plugin->reply_recipients;
	reply_recipients_expire(recipients, plugin->now());
	if(recipients->forgotten_early){
		plugin->log(MOSQ_LOG_WARNING, "tokens: %zu control repl%s forgotten before being written: more than "
				"%zu were waiting", recipients->forgotten_early, recipients->forgotten_early == 1 ? "y was" : "ies were",
				recipients->max);
		recipients->forgotten_early = 0;
	}
}
