/*
 * The broker's plugin API, from the headers of either release line (SPEC
 * section 10): Mosquitto 2.1 moved them to <mosquitto/broker.h> and friends
 * and left the 2.0 names as shims whose #warning fails a -Werror build;
 * 2.0 has only the old names, and needs mosquitto_broker.h before
 * mosquitto_plugin.h (2.0.11/2.0.12). The event structures and functions
 * this plugin uses have the same layout in both (plugin API version 5).
 *
 * What only 2.1 has is named here for a build against 2.0's headers, and
 * found at run time (broker_features.h): a plugin built either way loads
 * on both.
 */
#ifndef BROKER_API_H
#define BROKER_API_H

#if defined(__has_include)
#  if __has_include(<mosquitto/broker.h>)
#    define TOKENS_BROKER_HEADERS_2_1 1
#  endif
#endif

#include "mqtt_api.h"

#ifdef TOKENS_BROKER_HEADERS_2_1
#  include <mosquitto/broker.h>
#  include <mosquitto/broker_plugin.h>
#  include <mosquitto/libcommon_memory.h>
#else
#  include <mosquitto_broker.h>
#  include <mosquitto_plugin.h>
/* 2.1's event for a client whose session outlives its connection; its
 * data has the shape of MOSQ_EVT_DISCONNECT's. */
#  define MOSQ_EVT_CLIENT_OFFLINE 28
struct mosquitto_evt_client_offline {
	void *future;
	struct mosquitto *client;
	int reason;
	void *future2[4];
};
/* 2.1's event for each message written to a client, with its receiving
 * connection; its data is 2.0's struct mosquitto_evt_message. */
#  define MOSQ_EVT_MESSAGE_OUT 27
#endif

#endif
