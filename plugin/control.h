/*
 * The control protocol (SPEC section 4), independent of the broker: a
 * request payload goes in, the reply document comes out. The broker glue in
 * control_topic.c decides where the reply is delivered.
 *
 * Commands are a table of {name, handler}; every handler has the same
 * signature and reads its fields through fields.h.
 */
#ifndef CONTROL_H
#define CONTROL_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "instance.h"

/* requester: the name recorded as requestedBy and in the log. Returns the
 * {"responses": [...]} document, or NULL when out of memory. */
cJSON *control_handle_request(struct tokens_plugin *plugin, const char *requester,
		const char *payload, size_t payload_len);

#endif
