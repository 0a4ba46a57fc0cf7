/*
 * The plugin instance: everything the plugin knows lives here, reached from
 * the broker's userdata pointer, so that several instances (one per listener
 * with per_listener_settings) never share state by accident.
 *
 * The clock and the logger are pointers so that tests can drive time and
 * read what would have been logged.
 */
#ifndef TOKENS_PLUGIN_H
#define TOKENS_PLUGIN_H

#include <stdint.h>

#include "persist.h"
#include "store.h"

#define CONTROL_TOPIC "$CONTROL/tokens/v1"
#define RESPONSE_TOPIC "$CONTROL/tokens/v1/response"

typedef void (*tokens_log_fn)(int level, const char *format, ...);
typedef int64_t (*tokens_clock_fn)(void);

struct tokens_plugin {
	struct store store;
	struct persist *persist;
	tokens_log_fn log;
	tokens_clock_fn now;
	void *broker_identifier;
};

#endif
