#ifndef BROKER_PUBLISH_H
#define BROKER_PUBLISH_H

#include <stdbool.h>
#include <mosquitto.h>

/* mosquitto_broker_publish of a copy of payload (a C string) made with the
 * broker's own allocator. Takes ownership of properties, also on failure. */
int broker_publish_counted(const char *client_id, const char *topic, const char *payload, int qos,
		bool retain, mosquitto_property *properties);

#endif
