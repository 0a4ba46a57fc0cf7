/*
 * Run-time detection of the broker's release line. See
 * plugin/broker_features.h.
 */
#include <dlfcn.h>

#include "broker_features.h"

struct broker_features broker_features_detect(void)
{
	struct broker_features features = {0};
	/* A function pointer from dlsym: POSIX guarantees the conversion. */
	void *set_info = dlsym(RTLD_DEFAULT, "mosquitto_plugin_set_info");
	*(void **)&features.set_info = set_info;
	features.release_2_1 = set_info != NULL;
	return features;
}

int broker_features_reload_answer(const struct broker_features *features)
{
	return features->release_2_1 ? MOSQ_ERR_SUCCESS : MOSQ_ERR_PLUGIN_DEFER;
}
