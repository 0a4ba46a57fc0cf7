/*
 * What only one broker release line offers, found at run time (SPEC
 * section 10): mosquitto 2.0 loads plugins with RTLD_NOW, so a plugin that
 * linked a 2.1-only function would not load there at all.
 *
 * - 2.1 names plugins in its log (mosquitto_plugin_set_info);
 * - its RELOAD callback must answer success (any other answer stops the
 *   broker on SIGHUP), where 2.0 expects "defer" (a success there skips
 *   the plugins after this one);
 * - it reports a client whose session outlives its connection with
 *   MOSQ_EVT_CLIENT_OFFLINE, and the session's end with MOSQ_EVT_DISCONNECT
 *   (2.0 reports only the connection's end).
 */
#ifndef BROKER_FEATURES_H
#define BROKER_FEATURES_H

#include <stdbool.h>

#include "broker_api.h"

typedef int (*broker_set_info_fn)(mosquitto_plugin_id_t *identifier, const char *name, const char *version);

struct broker_features {
	bool release_2_1;                 /* 2.1 or later */
	broker_set_info_fn set_info;      /* NULL before 2.1 */
};

struct broker_features broker_features_detect(void);
/* What the RELOAD callback must answer on this release. */
int broker_features_reload_answer(const struct broker_features *features);

#endif
