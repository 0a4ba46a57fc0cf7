/*
 * The token endpoints: list (with its query filters), create, get, revoke
 * and rotate. A path's hash that is not 64 lowercase hex digits is a 404
 * without reaching the broker: no token can have it.
 */
#include "api_routes.h"
#include "http_reply.h"
#include "token_format.h"

enum MHD_Result tokens_list(const struct api_request *request, const char *name)
{
	(void)name;
	cJSON *command = api_command_named("listTokens");
	if(command == NULL){
		return api_out_of_memory(request);
	}
	/* role and namePrefix go on as strings, as given: "" is a prefix of every name. */
	if(!api_add_query(request, command, "status", false) || !api_add_query(request, command, "role", false)
			|| !api_add_query(request, command, "namePrefix", false)
			|| !api_add_query(request, command, "count", true) || !api_add_query(request, command, "offset", true)){
		cJSON_Delete(command);
		return reply_error(request->connection, MHD_HTTP_BAD_REQUEST, "invalid", "count and offset must be numbers");
	}
	return api_answer(request, command, MHD_HTTP_OK);
}

enum MHD_Result tokens_create(const struct api_request *request, const char *name)
{
	(void)name;
	static const char *const fields[] = {"name", "role", "validUntil", "clientId", NULL};
	enum MHD_Result result;
	cJSON *command = api_command_from_body(request, "createToken", fields, false,
			"The body must be a JSON object with name, role and validUntil (and optionally clientId)", &result);
	return command ? api_answer(request, command, MHD_HTTP_CREATED) : result;
}

/* False, with the 404 queued in *result, for a hash no token can have. */
static bool hash_well_formed(const struct api_request *request, const char *hash, enum MHD_Result *result)
{
	unsigned char digest[TOKEN_HASH_LEN];
	if(!token_format_hash_from_hex(hash, digest)){
		*result = reply_error(request->connection, MHD_HTTP_NOT_FOUND, "notFound", "Token not found");
		return false;
	}
	return true;
}

/* {"command": name, "hash": hash}, or NULL (with the 404 or 500 queued). */
static cJSON *command_for_hash(const struct api_request *request, const char *name, const char *hash,
		enum MHD_Result *result)
{
	if(!hash_well_formed(request, hash, result)){
		return NULL;
	}
	cJSON *command = api_command_named(name);
	if(command == NULL || cJSON_AddStringToObject(command, "hash", hash) == NULL){
		cJSON_Delete(command);
		*result = api_out_of_memory(request);
		return NULL;
	}
	return command;
}

enum MHD_Result tokens_get(const struct api_request *request, const char *hash)
{
	enum MHD_Result result;
	cJSON *command = command_for_hash(request, "getToken", hash, &result);
	return command ? api_answer(request, command, MHD_HTTP_OK) : result;
}

enum MHD_Result tokens_revoke(const struct api_request *request, const char *hash)
{
	enum MHD_Result result;
	cJSON *command = command_for_hash(request, "revokeToken", hash, &result);
	return command ? api_answer(request, command, MHD_HTTP_OK) : result;
}

/* The body is optional: without one, the plugin's defaults (the same
 * lifetime from now, no grace). */
enum MHD_Result tokens_rotate(const struct api_request *request, const char *hash)
{
	static const char *const fields[] = {"validUntil", "graceSeconds", NULL};
	enum MHD_Result result;
	if(!hash_well_formed(request, hash, &result)){
		return result;
	}
	cJSON *command = api_command_from_body(request, "rotateToken", fields, true,
			"The body, when given, must be a JSON object with validUntil and/or graceSeconds", &result);
	if(command == NULL){
		return result;
	}
	if(cJSON_AddStringToObject(command, "hash", hash) == NULL){
		cJSON_Delete(command);
		return api_out_of_memory(request);
	}
	return api_answer(request, command, MHD_HTTP_CREATED);
}
