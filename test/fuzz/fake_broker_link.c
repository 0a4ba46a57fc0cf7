/*
 * The broker pool of broker_link.h without a broker, for the console
 * fuzzer: every request is answered at once from the command it carries, so
 * that the HTTP request alone decides which branch of http_api.c runs, and
 * the same input always takes the same path.
 *
 * The first random character of the caller's token (after "mqtk_") picks
 * the outcome, the second one its variant; the seeds hold tokens made for
 * each (test/fuzz/make_console_corpus.py):
 *   R  the broker refuses the login       F  the role may not use the topic
 *   U  the broker cannot be reached       T  no reply in time
 *   E  an error response (its code from the second character)
 *   X  a reply that is not a tokens reply (its shape from the second character)
 *   D  a success response without data
 *   anything else: a success response whose data echoes the command's fields.
 *
 * Like the real pool, it keeps no token and logs nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "broker_link.h"
#include "token_format.h"

struct broker_pool {
	int unused;
};

struct broker_pool *broker_pool_new(const struct broker_settings *settings)
{
	(void)settings;
	return calloc(1, sizeof(struct broker_pool));
}

void broker_pool_free(struct broker_pool *pool)
{
	free(pool);
}

/* ---- replies ---- */

static char *duplicate(const char *text)
{
	size_t size = strlen(text) + 1;
	char *copy = malloc(size);
	if(copy){
		memcpy(copy, text, size);
	}
	return copy;
}

/* Wraps one response in the reply document and prints it; takes response. */
static char *print_reply(cJSON *response)
{
	cJSON *reply = cJSON_CreateObject();
	cJSON *responses = cJSON_AddArrayToObject(reply, "responses");
	char *text = NULL;
	if(responses && cJSON_AddItemToArray(responses, response)){
		text = cJSON_PrintUnformatted(reply);
	}else{
		cJSON_Delete(response);
	}
	cJSON_Delete(reply);
	return text;
}

static cJSON *response_for(const cJSON *command)
{
	cJSON *response = cJSON_CreateObject();
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(command, "command");
	cJSON_AddStringToObject(response, "command", cJSON_IsString(name) ? name->valuestring : "Unknown command");
	return response;
}

/* Every code of SPEC section 4, one the console does not know, and two
 * malformed ones (missing, not a string). */
static char *error_reply(const cJSON *command, char variant)
{
	static const char *const codes[] = {"invalid", "notFound", "exists", "inUse", "limit", "storage",
		"internal", "somethingNew"};
	size_t count = sizeof(codes) / sizeof(codes[0]);
	size_t pick = (unsigned char)variant % (count + 2);
	cJSON *response = response_for(command);
	cJSON_AddStringToObject(response, "error", "Refused by the fake broker");
	if(pick < count){
		cJSON_AddStringToObject(response, "code", codes[pick]);
	}else if(pick == count){
		cJSON_AddNumberToObject(response, "code", 7);
	}
	return print_reply(response);
}

static char *not_a_tokens_reply(char variant)
{
	static const char *const shapes[] = {"", "not JSON", "{}", "[]", "{\"responses\":[]}",
		"{\"responses\":[1]}", "{\"responses\":{}}", "{\"responses\":[{\"error\":5}]}"};
	return duplicate(shapes[(unsigned char)variant % (sizeof(shapes) / sizeof(shapes[0]))]);
}

/* Copies the command's fields (the caller's, through the console) into a
 * token metadata object, so that what the console sends back is partly the
 * fuzzer's own JSON. */
static cJSON *metadata_from(const cJSON *command)
{
	cJSON *metadata = cJSON_Duplicate(command, true);
	if(metadata == NULL){
		return NULL;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(metadata, "command");
	cJSON_AddStringToObject(metadata, "requestedBy", "fuzzer");
	cJSON_AddStringToObject(metadata, "issuedAt", "2026-01-01T00:00:00Z");
	cJSON_AddNullToObject(metadata, "lastUsed");
	cJSON_AddStringToObject(metadata, "status", "valid");
	return metadata;
}

/* {"totalCount": 1, key: [item]}; takes item. */
static cJSON *listing_of(const char *key, cJSON *item)
{
	cJSON *data = cJSON_CreateObject();
	cJSON *list = cJSON_CreateArray();
	cJSON_AddNumberToObject(data, "totalCount", 1);
	if(data == NULL || list == NULL || !cJSON_AddItemToObject(data, key, list)){
		cJSON_Delete(list);
		list = NULL;
	}
	if(list == NULL || !cJSON_AddItemToArray(list, item)){
		cJSON_Delete(item);
	}
	return data;
}

static cJSON *role_admin(void)
{
	cJSON *role = cJSON_CreateObject();
	cJSON_AddStringToObject(role, "rolename", "admin");
	cJSON_AddArrayToObject(role, "acls");
	return role;
}

/* What each console command gets back on success, as SPEC section 4 has it. */
static cJSON *data_for(const cJSON *command, const char *name)
{
	if(strcmp(name, "listRoles") == 0){
		return listing_of("roles", role_admin());
	}
	cJSON *metadata = metadata_from(command);
	if(strcmp(name, "listTokens") == 0){
		return listing_of("tokens", metadata);
	}
	if(strcmp(name, "createToken") == 0){
		/* Token-shaped, but no secret of anyone's: its checksum is wrong. */
		cJSON_AddStringToObject(metadata, "token", "mqtk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA00000000");
	}else if(strcmp(name, "revokeToken") == 0){
		cJSON_AddNumberToObject(metadata, "disconnected", 0);
	}
	return metadata;
}

static char *success_reply(const cJSON *command, bool with_data)
{
	cJSON *response = response_for(command);
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(command, "command");
	if(with_data && response && cJSON_IsString(name)){
		cJSON *data = data_for(command, name->valuestring);
		if(data == NULL || !cJSON_AddItemToObject(response, "data", data)){
			cJSON_Delete(data);
		}
	}
	return print_reply(response);
}

/* ---- the pool's one request ---- */

/* A broken promise of the console's is a finding, as a crash is. */
static void require(bool holds, const char *promise)
{
	if(!holds){
		fprintf(stderr, "fake_broker_link: the console broke a promise: %s\n", promise);
		abort();
	}
}

static char *reply_to(const char *payload, char outcome, char variant)
{
	cJSON *request = cJSON_Parse(payload);
	const cJSON *commands = cJSON_GetObjectItemCaseSensitive(request, "commands");
	const cJSON *command = cJSON_GetArrayItem(commands, 0);
	require(cJSON_GetArraySize(commands) == 1 && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(command, "command")),
			"the payload is JSON with one named command");
	char *reply;
	switch(outcome){
		case 'E':
			reply = error_reply(command, variant);
			break;
		case 'X':
			reply = not_a_tokens_reply(variant);
			break;
		default:
			reply = success_reply(command, outcome != 'D');
			break;
	}
	cJSON_Delete(request);
	return reply;
}

enum broker_outcome broker_pool_request(struct broker_pool *pool, const char *token, const char *payload,
		char **reply)
{
	(void)pool;
	/* SPEC section 8: a bearer value that is not token-shaped gets 401
	 * without reaching the broker. */
	require(token_format_check(token) == TOKEN_WELL_FORMED, "only a well-formed token reaches the broker");
	char outcome = token[TOKEN_PREFIX_LEN];
	char variant = token[TOKEN_PREFIX_LEN + 1];
	switch(outcome){
		case 'R':
			return BROKER_REFUSED_LOGIN;
		case 'F':
			return BROKER_FORBIDDEN;
		case 'U':
			return BROKER_UNREACHABLE;
		case 'T':
			return BROKER_TIMEOUT;
	}
	*reply = reply_to(payload, outcome, variant);
	/* The real pool's only failure without a reply is a lost connection. */
	return *reply ? BROKER_REPLIED : BROKER_UNREACHABLE;
}
