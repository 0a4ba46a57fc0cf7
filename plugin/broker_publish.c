/*
 * Publishing through the broker with memory the broker counts. The broker
 * frees a published payload with its counting free, which subtracts the
 * size from $SYS/broker/heap/current. A payload from plain malloc (cJSON's
 * output, or on 2.0 even mosquitto_broker_publish_copy's own copy) was
 * never added there, so each reply would drive that figure down until it
 * wrapped below zero.
 */
#include <string.h>
#include "broker_api.h"

#include "broker_callbacks.h"

int broker_publish_counted(const char *client_id, const char *topic, const char *payload, int qos,
		bool retain, mosquitto_property *properties)
{
	size_t length = strlen(payload);
	char *copy = mosquitto_malloc(length + 1);
	if(copy == NULL){
		mosquitto_property_free_all(&properties);
		return MOSQ_ERR_NOMEM;
	}
	memcpy(copy, payload, length + 1);
	int rc = mosquitto_broker_publish(client_id, topic, (int)length, copy, qos, retain, properties);
	if(rc != MOSQ_ERR_SUCCESS){
		mosquitto_free(copy);
		mosquitto_property_free_all(&properties);
	}
	return rc;
}
