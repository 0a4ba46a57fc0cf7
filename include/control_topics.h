/*
 * The control protocol's topics (docs/protocol.md): the plugin serves
 * them, the mosquitto_ctrl module and the console send their requests on
 * them, and `tokens init` grants them to the first admin role. One
 * definition, so that none of them can drift from the others.
 */
#ifndef CONTROL_TOPICS_H
#define CONTROL_TOPICS_H

#define CONTROL_TOPIC "$CONTROL/tokens/v1"
#define RESPONSE_TOPIC CONTROL_TOPIC "/response"
#define EVENTS_TOPIC CONTROL_TOPIC "/events"

#endif
