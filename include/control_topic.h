#ifndef CONTROL_TOPIC_H
#define CONTROL_TOPIC_H

/* The MOSQ_EVT_CONTROL callback for CONTROL_TOPIC; userdata is the plugin. */
int control_topic_on_message(int event, void *event_data, void *userdata);

#endif
