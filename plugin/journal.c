/*
 * Journal changes: building them for commands and applying them on replay.
 * See include/journal.h for the format. Replay is strict: a change that
 * does not fit the store means the journal and the snapshot disagree, and
 * starting from a guess would lose or resurrect credentials.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "journal.h"
#include "rfc3339.h"
#include "state_format.h"

static cJSON *change_of(const char *op)
{
	cJSON *change = cJSON_CreateObject();
	if(change && !cJSON_AddStringToObject(change, "op", op)){
		cJSON_Delete(change);
		return NULL;
	}
	return change;
}

/* Adds item (taken over) under key; on failure frees both. */
static cJSON *with_item(cJSON *change, const char *key, cJSON *item)
{
	if(change == NULL || item == NULL || !cJSON_AddItemToObject(change, key, item)){
		cJSON_Delete(change);
		cJSON_Delete(item);
		return NULL;
	}
	return change;
}

static cJSON *with_string(cJSON *change, const char *key, const char *value)
{
	return with_item(change, key, cJSON_CreateString(value));
}

static cJSON *hash_string(const unsigned char hash[TOKEN_HASH_LEN])
{
	char hex[TOKEN_HASH_HEX_LEN + 1];
	token_format_hash_to_hex(hash, hex);
	return cJSON_CreateString(hex);
}

cJSON *journal_create_token(const struct store *store, const struct token *token)
{
	return with_item(change_of("createToken"), "token", token_state_to_json(store, token));
}

cJSON *journal_rotate_token(const unsigned char old_hash[TOKEN_HASH_LEN], const struct token *replacement,
		const struct previous_secret *previous)
{
	return with_item(with_item(change_of("rotateToken"), "hash", hash_string(old_hash)),
			"token", token_state_json_with(replacement, previous));
}

cJSON *journal_noticed(const struct token *token)
{
	cJSON *change = with_item(change_of("noticed"), "hash", hash_string(token->hash));
	change = with_item(change, "expiring", cJSON_CreateBool(token->expiring_noticed));
	return with_item(change, "expired", cJSON_CreateBool(token->expired_noticed));
}

cJSON *journal_revoke_token(const struct token *token)
{
	return with_item(change_of("revokeToken"), "hash", hash_string(token->hash));
}

cJSON *journal_create_role(const struct role *role)
{
	return with_item(change_of("createRole"), "role", role_to_json(role));
}

cJSON *journal_delete_role(const struct role *role)
{
	return with_string(change_of("deleteRole"), "rolename", role->name);
}

cJSON *journal_add_role_acl(const struct role *role, const struct role_acl *acl)
{
	return with_item(with_string(change_of("addRoleACL"), "rolename", role->name), "acl", role_acl_to_json(acl));
}

cJSON *journal_remove_role_acl(const struct role *role, const struct role_acl *acl)
{
	cJSON *change = with_string(change_of("removeRoleACL"), "rolename", role->name);
	change = with_string(change, "acltype", acl_type_name(acl->type));
	return with_string(change, "topic", acl->topic);
}

cJSON *journal_last_used(void)
{
	return with_item(change_of("lastUsed"), "tokens", cJSON_CreateArray());
}

bool journal_add_last_used(cJSON *change, const struct token *token)
{
	char time_text[RFC3339_LEN + 1];
	rfc3339_format(token->last_used, time_text);
	cJSON *pair = cJSON_CreateArray();
	cJSON *hash = hash_string(token->hash);
	cJSON *when = cJSON_CreateString(time_text);
	if(pair && hash && when && cJSON_AddItemToArray(pair, hash)){
		hash = NULL;
		if(cJSON_AddItemToArray(pair, when)){
			when = NULL;
			if(cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(change, "tokens"), pair)){
				return true;
			}
		}
	}
	cJSON_Delete(pair);
	cJSON_Delete(hash);
	cJSON_Delete(when);
	return false;
}

size_t journal_change_count(const cJSON *change)
{
	const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(change, "tokens");
	return cJSON_IsArray(tokens) ? (size_t)cJSON_GetArraySize(tokens) : 1;
}

/* ---- replay ---- */

struct replay {
	struct store *store;
	const cJSON *change;
	char *problem;
	size_t problem_len;
};

static bool refuse(struct replay *replay, const char *format, ...) __attribute__((format(printf, 2, 3)));

static bool refuse(struct replay *replay, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	vsnprintf(replay->problem, replay->problem_len, format, args);
	va_end(args);
	return false;
}

static const char *string_of(struct replay *replay, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(replay->change, key);
	if(!cJSON_IsString(item)){
		refuse(replay, "'%s' is missing or not a string", key);
		return NULL;
	}
	return item->valuestring;
}

static struct token *token_of(struct replay *replay, const char *hash_hex)
{
	unsigned char hash[TOKEN_HASH_LEN];
	if(!token_format_hash_from_hex(hash_hex, hash)){
		refuse(replay, "'%s' is not a token hash", hash_hex);
		return NULL;
	}
	struct token *token = store_find_token_by_hash(replay->store, hash);
	if(token == NULL){
		refuse(replay, "token %s does not exist", hash_hex);
	}
	return token;
}

static struct role *role_of(struct replay *replay)
{
	const char *name = string_of(replay, "rolename");
	struct role *role = name ? store_find_role(replay->store, name) : NULL;
	if(name && role == NULL){
		refuse(replay, "role \"%s\" does not exist", name);
	}
	return role;
}

static bool apply_create_token(struct replay *replay)
{
	struct state_loader loader;
	state_loader_init(&loader, replay->store, replay->problem, replay->problem_len);
	return state_load_token(&loader, cJSON_GetObjectItemCaseSensitive(replay->change, "token"), 0);
}

static bool apply_revoke_token(struct replay *replay)
{
	const char *hash = string_of(replay, "hash");
	struct token *token = hash ? token_of(replay, hash) : NULL;
	if(token == NULL){
		return false;
	}
	store_unlink_token(replay->store, token);
	token_free(token);
	return true;
}

static bool apply_create_role(struct replay *replay)
{
	struct state_loader loader;
	state_loader_init(&loader, replay->store, replay->problem, replay->problem_len);
	return state_load_role(&loader, cJSON_GetObjectItemCaseSensitive(replay->change, "role"), 0);
}

static bool apply_delete_role(struct replay *replay)
{
	struct role *role = role_of(replay);
	if(role == NULL){
		return false;
	}
	if(role->token_count > 0){
		return refuse(replay, "role \"%s\" is still used by tokens", role->name);
	}
	store_unlink_role(replay->store, role);
	role_free(role);
	return true;
}

static bool apply_add_role_acl(struct replay *replay)
{
	struct role *role = role_of(replay);
	if(role == NULL){
		return false;
	}
	struct state_loader loader;
	state_loader_init(&loader, replay->store, replay->problem, replay->problem_len);
	return state_load_acl(&loader, role, cJSON_GetObjectItemCaseSensitive(replay->change, "acl"));
}

static bool apply_remove_role_acl(struct replay *replay)
{
	struct role *role = role_of(replay);
	const char *type_name = role ? string_of(replay, "acltype") : NULL;
	const char *topic = type_name ? string_of(replay, "topic") : NULL;
	enum acl_type type;
	if(topic == NULL){
		return false;
	}
	struct role_acl *acl = acl_type_from_name(type_name, &type) ? role_find_acl(role, type, topic) : NULL;
	if(acl == NULL){
		return refuse(replay, "role \"%s\" has no %s ACL for \"%s\"", role->name, type_name, topic);
	}
	role_unlink_acl(role, acl);
	role_acl_free(acl);
	return true;
}

/* lastUsed is advisory: a token revoked since is skipped, not an error. */
static bool apply_last_used(struct replay *replay)
{
	const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(replay->change, "tokens");
	const cJSON *pair;
	if(!cJSON_IsArray(tokens)){
		return refuse(replay, "'tokens' is missing or not an array");
	}
	cJSON_ArrayForEach(pair, tokens){
		const cJSON *hash = cJSON_GetArrayItem(pair, 0);
		const cJSON *when = cJSON_GetArrayItem(pair, 1);
		unsigned char digest[TOKEN_HASH_LEN];
		int64_t seconds;
		if(!cJSON_IsString(hash) || !cJSON_IsString(when)
				|| !token_format_hash_from_hex(hash->valuestring, digest)
				|| !rfc3339_parse(when->valuestring, &seconds)){
			return refuse(replay, "a lastUsed entry is not [hash, time]");
		}
		struct token *token = store_find_token_by_hash(replay->store, digest);
		if(token){
			token->last_used = seconds;
		}
	}
	return true;
}

/* The token record is replaced: name, role and requester may stay, the
 * hash, times and previous secret change. */
static bool apply_rotate_token(struct replay *replay)
{
	const char *hash = string_of(replay, "hash");
	struct token *old = hash ? token_of(replay, hash) : NULL;
	if(old == NULL){
		return false;
	}
	struct state_loader loader;
	struct previous_secret previous;
	state_loader_init(&loader, replay->store, replay->problem, replay->problem_len);
	struct token *replacement = state_parse_token(&loader,
			cJSON_GetObjectItemCaseSensitive(replay->change, "token"), 0, &previous);
	if(replacement == NULL){
		return false;
	}
	if(strcmp(replacement->name, old->name) != 0){
		token_free(replacement);
		return refuse(replay, "a rotation renamed token \"%s\"", old->name);
	}
	store_drop_previous(replay->store, old);
	store_unlink_token(replay->store, old);
	token_free(old);
	return state_add_token(&loader, replacement, 0) && state_add_previous(&loader, &previous);
}

static bool apply_noticed(struct replay *replay)
{
	const char *hash = string_of(replay, "hash");
	struct token *token = hash ? token_of(replay, hash) : NULL;
	const cJSON *expiring = cJSON_GetObjectItemCaseSensitive(replay->change, "expiring");
	const cJSON *expired = cJSON_GetObjectItemCaseSensitive(replay->change, "expired");
	if(token == NULL){
		return false;
	}
	if(!cJSON_IsBool(expiring) || !cJSON_IsBool(expired)){
		return refuse(replay, "'expiring' and 'expired' must be booleans");
	}
	token->expiring_noticed = cJSON_IsTrue(expiring);
	token->expired_noticed = cJSON_IsTrue(expired);
	return true;
}

static const struct {
	const char *op;
	bool (*apply)(struct replay *replay);
} appliers[] = {
	{"rotateToken", apply_rotate_token},
	{"noticed", apply_noticed},
	{"createToken", apply_create_token},
	{"revokeToken", apply_revoke_token},
	{"createRole", apply_create_role},
	{"deleteRole", apply_delete_role},
	{"addRoleACL", apply_add_role_acl},
	{"removeRoleACL", apply_remove_role_acl},
	{"lastUsed", apply_last_used},
};

bool journal_apply(struct store *store, const cJSON *change, char *problem, size_t problem_len)
{
	struct replay replay = {.store = store, .change = change, .problem = problem, .problem_len = problem_len};
	const char *op = string_of(&replay, "op");
	if(op == NULL){
		return false;
	}
	for(size_t i = 0; i < sizeof(appliers) / sizeof(appliers[0]); i++){
		if(strcmp(appliers[i].op, op) == 0){
			return appliers[i].apply(&replay);
		}
	}
	return refuse(&replay, "unknown op \"%s\"", op);
}
