/*
 * The broker entry points: every callback the plugin registers (plugin.c's
 * table, which also holds MOSQ_EVT_RELOAD's, kept static there), and the
 * directed publish they use. userdata is always the plugin instance. Each
 * function lives in the .c its prefix names: authentication.c,
 * authorization.c, tick.c, control_topic.c, broker_publish.c; the few that
 * are not callbacks are what those files call in one another.
 */
#ifndef BROKER_CALLBACKS_H
#define BROKER_CALLBACKS_H

#include <stdbool.h>
#include <mosquitto.h>

#include "instance.h"

/* authentication.c */

/* Broker callbacks; userdata is the plugin instance. */
int authentication_on_basic_auth(int event, void *event_data, void *userdata);
int authentication_on_disconnect(int event, void *event_data, void *userdata);

/* The name of the token the client logged in with, or NULL. */
const char *authentication_token_name(const struct tokens_plugin *plugin, const struct mosquitto *client);

/* authorization.c */

/* MOSQ_EVT_ACL_CHECK; userdata is the plugin instance. */
int authorization_on_acl_check(int event, void *event_data, void *userdata);

/* tick.c */

/* MOSQ_EVT_TICK: closes connections of expired tokens, runs queued kicks,
 * saves lastUsed when due. userdata is the plugin instance. */
int tick_on_tick(int event, void *event_data, void *userdata);

/* control_topic.c */

/* The MOSQ_EVT_CONTROL callback for CONTROL_TOPIC; userdata is the plugin. */
int control_topic_on_message(int event, void *event_data, void *userdata);
/* Sends the replies waiting since the last tick (replies.h); from the tick. */
void control_topic_send_replies(struct tokens_plugin *plugin);
/* 2.1's MOSQ_EVT_MESSAGE_OUT: refuses a control reply on its way to a
 * connection other than the one that asked. */
int control_topic_on_message_out(int event, void *event_data, void *userdata);
/* 2.1, from the tick: forgets expected replies that were never written. */
void control_topic_forget_unwritten_replies(struct tokens_plugin *plugin);

/* broker_publish.c */

/* mosquitto_broker_publish of a copy of payload (a C string) made with the
 * broker's own allocator. Takes ownership of properties, also on failure. */
int broker_publish_counted(const char *client_id, const char *topic, const char *payload, int qos,
		bool retain, mosquitto_property *properties);

#endif
