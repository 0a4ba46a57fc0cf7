#ifndef CONTROL_TOPIC_H
#define CONTROL_TOPIC_H

#include "tokens_plugin.h"

/* The MOSQ_EVT_CONTROL callback for CONTROL_TOPIC; userdata is the plugin. */
int control_topic_on_message(int event, void *event_data, void *userdata);
/* Sends the replies waiting since the last tick (replies.h); from the tick. */
void control_topic_send_replies(struct tokens_plugin *plugin);
/* 2.1's MOSQ_EVT_MESSAGE_OUT: refuses a control reply on its way to a
 * connection other than the one that asked. */
int control_topic_on_message_out(int event, void *event_data, void *userdata);
/* 2.1, from the tick: forgets expected replies that were never written. */
void control_topic_forget_unwritten_replies(struct tokens_plugin *plugin);

#endif
