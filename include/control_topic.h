#ifndef CONTROL_TOPIC_H
#define CONTROL_TOPIC_H

#include "tokens_plugin.h"

/* The MOSQ_EVT_CONTROL callback for CONTROL_TOPIC; userdata is the plugin. */
int control_topic_on_message(int event, void *event_data, void *userdata);
/* Sends the replies waiting since the last tick (replies.h); from the tick. */
void control_topic_send_replies(struct tokens_plugin *plugin);

#endif
