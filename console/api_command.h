/*
 * One API call as one control command: what a route handler gets (the
 * caller's token, the method, the body), the helpers that build the
 * command from the query or the body, and api_answer, which sends it with
 * the caller's token and turns the plugin's answer into an HTTP status:
 * notFound 404, exists and inUse 409, any other refusal 400; the broker's
 * own refusals 401, 403, 502 and 504 (SPEC section 8). Token objects in
 * the answer get `issueDate` beside `issuedAt`, the seed console's name.
 */
#ifndef API_COMMAND_H
#define API_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "http_api.h"

struct api_request {
	struct console *console;
	struct MHD_Connection *connection;
	const char *token;          /* token-shaped (checked before any route runs) */
	const char *method;
	const char *body;           /* NULL: none came */
	size_t body_length;
};

/* {"command": name}, or NULL when out of memory. */
cJSON *api_command_named(const char *name);

/* Adds the query value `key` as a string, or (numeric) as a number so that
 * the plugin checks it. False for a numeric value that is not a number, or
 * out of memory. A missing key adds nothing. */
bool api_add_query(const struct api_request *request, cJSON *command, const char *key, bool numeric);

/* The body as JSON, or NULL (so a 400) when it is not JSON or holds a raw
 * NUL byte; an escaped NUL ("\u0000") becomes a 0xFF byte, which the plugin
 * refuses in any field, naming it (cJSON would end the string there). */
cJSON *api_parse_body(const struct api_request *request);

/* A new command `name` holding the body's `fields` (NULL-ended; others are
 * ignored). NULL, with the 400 (message `expected`) or 500 queued in
 * *result, when the body is not a JSON object or out of memory. With
 * `optional`, no body at all is an empty object. */
cJSON *api_command_from_body(const struct api_request *request, const char *name, const char *const *fields,
		bool optional, const char *expected, enum MHD_Result *result);

enum MHD_Result api_out_of_memory(const struct api_request *request);

/* Sends `command` (taken, also on failure) and answers the HTTP request:
 * success_status with the command's data, or the error. */
enum MHD_Result api_answer(const struct api_request *request, cJSON *command, unsigned success_status);

#endif
