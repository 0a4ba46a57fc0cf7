/*
 * Token commands: createToken, listTokens, getToken, revokeToken.
 * The secret of a new token exists only in this file's createToken, in the
 * reply it builds, and is wiped from the stack once the reply holds it.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "command.h"
#include "fields.h"
#include "journal.h"
#include "state_format.h"

static cJSON *token_metadata(const struct token *token, int64_t now)
{
	cJSON *object = token_to_json(token);
	if(object && !cJSON_AddStringToObject(object, "status", now < token->valid_until ? "valid" : "invalid")){
		cJSON_Delete(object);
		return NULL;
	}
	return object;
}

/* Commands that act on one token name it by exactly one of hash and name. */
static struct token *find_target_token(struct command_context *context)
{
	const cJSON *command = context->command;
	bool has_hash = cJSON_GetObjectItemCaseSensitive(command, "hash") != NULL;
	bool has_name = cJSON_GetObjectItemCaseSensitive(command, "name") != NULL;
	const char *value;
	struct token *token;

	if(has_hash == has_name){
		command_fail(context, CODE_INVALID, "Give exactly one of the fields 'hash' and 'name'");
		return NULL;
	}
	if(has_hash){
		unsigned char hash[TOKEN_HASH_LEN];
		if(!field_string(context, "hash", &value)){
			return NULL;
		}
		if(!token_format_hash_from_hex(value, hash)){
			command_fail(context, CODE_INVALID, "Field 'hash' must be 64 lowercase hex digits");
			return NULL;
		}
		token = store_find_token_by_hash(&context->plugin->store, hash);
	}else{
		if(!field_string(context, "name", &value)){
			return NULL;
		}
		token = store_find_token_by_name(&context->plugin->store, value);
	}
	if(token == NULL){
		command_fail(context, CODE_NOT_FOUND, "Token not found");
	}
	return token;
}

/* A fresh secret whose hash is not taken (a collision is astronomically
 * unlikely, but a duplicate hash would corrupt the store). */
static bool new_secret(struct command_context *context, char secret[TOKEN_LEN + 1], unsigned char hash[TOKEN_HASH_LEN])
{
	for(int attempt = 0; attempt < 3; attempt++){
		if(!token_format_generate(secret)){
			return command_fail(context, CODE_INTERNAL, "The random number generator failed");
		}
		token_format_hash(secret, hash);
		if(store_find_token_by_hash(&context->plugin->store, hash) == NULL){
			return true;
		}
	}
	return command_fail(context, CODE_INTERNAL, "Could not generate a unique token");
}

static cJSON *created_token_data(const struct token *token, const char *secret, int64_t now)
{
	cJSON *data = token_metadata(token, now);
	if(data && !cJSON_AddStringToObject(data, "token", secret)){
		cJSON_Delete(data);
		return NULL;
	}
	return data;
}

void command_create_token(struct command_context *context)
{
	struct store *store = &context->plugin->store;
	const char *name, *role_name;
	int64_t valid_until;

	if(!field_name(context, "name", NAME_MAX_CHARS, &name)
			|| !field_string(context, "role", &role_name)
			|| !field_time(context, "validUntil", &valid_until)){
		return;
	}
	struct role *role = store_find_role(store, role_name);
	if(role == NULL){
		command_fail(context, CODE_INVALID, "Role '%s' does not exist", role_name);
		return;
	}
	if(valid_until <= context->now){
		command_fail(context, CODE_INVALID, "Field 'validUntil' must be in the future");
		return;
	}
	if(store_find_token_by_name(store, name)){
		command_fail(context, CODE_EXISTS, "Token name already exists");
		return;
	}

	char secret[TOKEN_LEN + 1];
	unsigned char hash[TOKEN_HASH_LEN];
	if(!new_secret(context, secret, hash)){
		return;
	}
	struct token *token = token_new(name, context->requester, hash, context->now, valid_until, TIME_NEVER);
	if(token == NULL){
		OPENSSL_cleanse(secret, sizeof(secret));
		command_fail(context, CODE_INTERNAL, "Out of memory");
		return;
	}
	store_link_token(store, token, role);
	if(!command_commit(context, journal_create_token(token))){
		store_unlink_token(store, token);
		token_free(token);
		OPENSSL_cleanse(secret, sizeof(secret));
		return;
	}
	command_reply(context, created_token_data(token, secret, context->now));
	OPENSSL_cleanse(secret, sizeof(secret));

	char hash_hex[TOKEN_HASH_HEX_LEN + 1];
	token_format_hash_to_hex(token->hash, hash_hex);
	command_log_change(context, "name=%s role=%s hash=%s", token->name, role->name, hash_hex);
}

static bool status_matches(const char *status, const struct token *token, int64_t now)
{
	bool valid = now < token->valid_until;
	return strcmp(status, "all") == 0 || (strcmp(status, "valid") == 0) == valid;
}

static cJSON *token_page(struct token **tokens, size_t count, const char *status,
		int64_t offset, int64_t limit, int64_t now)
{
	cJSON *data = cJSON_CreateObject();
	cJSON *list = cJSON_AddArrayToObject(data, "tokens");
	if(list == NULL){
		cJSON_Delete(data);
		return NULL;
	}
	int64_t matching = 0;
	for(size_t i = 0; i < count; i++){
		if(!status_matches(status, tokens[i], now)){
			continue;
		}
		if(matching >= offset && matching - offset < limit){
			cJSON *item = token_metadata(tokens[i], now);
			if(item == NULL || !cJSON_AddItemToArray(list, item)){
				cJSON_Delete(item);
				cJSON_Delete(data);
				return NULL;
			}
		}
		matching++;
	}
	if(!cJSON_AddNumberToObject(data, "totalCount", (double)matching)){
		cJSON_Delete(data);
		return NULL;
	}
	return data;
}

void command_list_tokens(struct command_context *context)
{
	const char *status = "all";
	int64_t limit = INT64_MAX, offset = 0;

	if(!field_optional_string(context, "status", &status)
			|| !field_optional_int(context, "count", 1, INT32_MAX, &limit)
			|| !field_optional_int(context, "offset", 0, INT32_MAX, &offset)){
		return;
	}
	if(strcmp(status, "all") != 0 && strcmp(status, "valid") != 0 && strcmp(status, "invalid") != 0){
		command_fail(context, CODE_INVALID, "Field 'status' must be \"valid\", \"invalid\" or \"all\"");
		return;
	}
	size_t count;
	struct token **tokens = store_sorted_tokens(&context->plugin->store, &count);
	if(tokens == NULL){
		command_fail(context, CODE_INTERNAL, "Out of memory");
		return;
	}
	command_reply(context, token_page(tokens, count, status, offset, limit, context->now));
	free(tokens);
}

void command_get_token(struct command_context *context)
{
	struct token *token = find_target_token(context);
	if(token){
		command_reply(context, token_metadata(token, context->now));
	}
}

static cJSON *revoked_data(const char *name, const char *hash_hex, size_t disconnected)
{
	cJSON *data = cJSON_CreateObject();
	if(data == NULL
			|| !cJSON_AddStringToObject(data, "name", name)
			|| !cJSON_AddStringToObject(data, "hash", hash_hex)
			|| !cJSON_AddNumberToObject(data, "disconnected", (double)disconnected)){
		cJSON_Delete(data);
		return NULL;
	}
	return data;
}

void command_revoke_token(struct command_context *context)
{
	struct store *store = &context->plugin->store;
	struct token *token = find_target_token(context);
	if(token == NULL){
		return;
	}
	struct role *role = token->role;
	store_unlink_token(store, token);
	if(!command_commit(context, journal_revoke_token(token))){
		store_link_token(store, token, role);
		return;
	}
	size_t disconnected = tokens_plugin_close_token_sessions(context->plugin, token);
	char hash_hex[TOKEN_HASH_HEX_LEN + 1];
	token_format_hash_to_hex(token->hash, hash_hex);
	command_reply(context, revoked_data(token->name, hash_hex, disconnected));
	command_log_change(context, "name=%s hash=%s disconnected=%zu", token->name, hash_hex, disconnected);
	token_free(token);
}
