#ifndef AUTHENTICATION_H
#define AUTHENTICATION_H

#include "tokens_plugin.h"

struct mosquitto;

/* Broker callbacks; userdata is the plugin instance. */
int authentication_on_basic_auth(int event, void *event_data, void *userdata);
int authentication_on_disconnect(int event, void *event_data, void *userdata);

/* The name of the token the client logged in with, or NULL. */
const char *authentication_token_name(const struct tokens_plugin *plugin, const struct mosquitto *client);

#endif
