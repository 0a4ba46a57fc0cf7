/*
 * Journal lines: encoding a command's change, decoding it again for
 * replay. See plugin/journal.h for the format. Decoding is strict: a
 * change that does not fit the store means the journal and the snapshot
 * disagree, and starting from a guess would lose or resurrect credentials.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "journal.h"
#include "log_text.h"
#include "metadata_json.h"
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

static cJSON *encode_create_token(const struct change *change)
{
	return with_item(change_of("createToken"), "token", token_state_json_with(change->token, NULL));
}

static cJSON *encode_rotate_token(const struct change *change)
{
	return with_item(with_item(change_of("rotateToken"), "hash", hash_string(change->replaced->hash)),
			"token", token_state_json_with(change->token, change->previous));
}

static cJSON *encode_noticed(const struct change *change)
{
	cJSON *line = with_item(change_of("noticed"), "hash", hash_string(change->token->hash));
	line = with_item(line, "expiring", cJSON_CreateBool(change->expiring_noticed));
	return with_item(line, "expired", cJSON_CreateBool(change->expired_noticed));
}

static cJSON *encode_remove_role_acl(const struct change *change)
{
	cJSON *line = with_string(change_of("removeRoleACL"), "rolename", change->role->name);
	line = with_string(line, "acltype", acl_type_name(change->acl->type));
	return with_string(line, "topic", change->acl->topic);
}

cJSON *journal_encode(const struct change *change)
{
	switch(change->kind){
		case CHANGE_CREATE_TOKEN:
			return encode_create_token(change);
		case CHANGE_ROTATE_TOKEN:
			return encode_rotate_token(change);
		case CHANGE_REVOKE_TOKEN:
			return with_item(change_of("revokeToken"), "hash", hash_string(change->token->hash));
		case CHANGE_NOTICED:
			return encode_noticed(change);
		case CHANGE_CREATE_ROLE:
			return with_item(change_of("createRole"), "role", role_to_json(change->role));
		case CHANGE_DELETE_ROLE:
			return with_string(change_of("deleteRole"), "rolename", change->role->name);
		case CHANGE_ADD_ROLE_ACL:
			return with_item(with_string(change_of("addRoleACL"), "rolename", change->role->name),
					"acl", role_acl_to_json(change->acl));
		case CHANGE_REMOVE_ROLE_ACL:
			return encode_remove_role_acl(change);
	}
	return NULL;
}

/* One ["<hash>","<time>"] pair, without escaping: hex digits and RFC 3339
 * times need none. */
#define LAST_USED_PAIR_LEN (2 + TOKEN_HASH_HEX_LEN + 3 + RFC3339_LEN + 2)

cJSON *journal_last_used_of(const struct token *const *tokens, size_t count)
{
	char *text = malloc(count * (LAST_USED_PAIR_LEN + 1) + 3);
	if(text == NULL){
		return NULL;
	}
	char *end = text;
	*end++ = '[';
	for(size_t i = 0; i < count; i++){
		if(i) *end++ = ',';
		memcpy(end, "[\"", 2);
		token_format_hash_to_hex(tokens[i]->hash, end + 2);
		end += 2 + TOKEN_HASH_HEX_LEN;
		memcpy(end, "\",\"", 3);
		rfc3339_format(tokens[i]->last_used, end + 3);
		end += 3 + RFC3339_LEN;
		memcpy(end, "\"]", 2);
		end += 2;
	}
	*end++ = ']';
	*end = '\0';
	cJSON *change = with_item(change_of("lastUsed"), "tokens", cJSON_CreateRaw(text));
	free(text);
	return change;
}

/* Text built piece by piece; failed once an allocation failed. */
struct text_buffer {
	char *text;
	size_t length;
	size_t capacity;
	bool failed;
};

static void buffer_add(struct text_buffer *buffer, const char *text, size_t length)
{
	if(buffer->failed){
		return;
	}
	if(buffer->length + length + 1 > buffer->capacity){
		size_t capacity = 2 * (buffer->length + length + 1) + 256;
		char *grown = realloc(buffer->text, capacity);
		if(grown == NULL){
			buffer->failed = true;
			return;
		}
		buffer->text = grown;
		buffer->capacity = capacity;
	}
	memcpy(buffer->text + buffer->length, text, length);
	buffer->length += length;
	buffer->text[buffer->length] = '\0';
}

/* Appends json printed (and deletes it); NULL json means out of memory. */
static void buffer_add_json(struct text_buffer *buffer, cJSON *json)
{
	char *text = json ? cJSON_PrintUnformatted(json) : NULL;
	cJSON_Delete(json);
	if(text == NULL){
		buffer->failed = true;
		return;
	}
	buffer_add(buffer, text, strlen(text));
	free(text);
}

/* Each binding is printed as the snapshot prints it (state_session_to_json),
 * one at a time into the list's text: a tree of the whole change would
 * cost five nodes per binding at once. */
cJSON *journal_sessions_of(const struct session_records *changes, size_t limit)
{
	struct text_buffer bound = {0}, ended = {0};
	buffer_add(&bound, "[", 1);
	buffer_add(&ended, "[", 1);
	size_t taken = 0;
	for(const struct session_record *record = changes->by_id; record && taken < limit; record = record->hh.next, taken++){
		struct text_buffer *list = record->bound ? &bound : &ended;
		if(list->length > 1){
			buffer_add(list, ",", 1);
		}
		buffer_add_json(list, record->bound
				? state_session_to_json(record->client_id, record->username, record->hash)
				: cJSON_CreateString(record->client_id));
	}
	buffer_add(&bound, "]", 1);
	buffer_add(&ended, "]", 1);
	cJSON *change = NULL;
	if(!bound.failed && !ended.failed){
		change = with_item(change_of("sessions"), "bound", cJSON_CreateRaw(bound.text));
		change = with_item(change, "ended", cJSON_CreateRaw(ended.text));
	}
	free(bound.text);
	free(ended.text);
	return change;
}

/* The items of a JSON array written as text (journal_last_used_of's and
 * journal_sessions_of's lists): the commas between them, outside strings
 * and nested values, and one more unless it is empty. */
static size_t raw_array_length(const char *text)
{
	size_t depth = 0, commas = 0;
	bool empty = true;
	for(const char *c = text; *c; c++){
		switch(*c){
		case '"':
			/* A string: skip to its closing quote, escapes included
			 * (strcspn, since hashes and times make up most of a list). */
			empty = empty && depth == 0;
			for(c++; *c; c += 2){
				c += strcspn(c, "\"\\");
				if(*c != '\\' || c[1] == '\0'){
					break;
				}
			}
			if(*c != '"'){
				return empty ? 0 : commas + 1;   /* cut short: counted so far */
			}
			break;
		case '[': case '{':
			empty = empty && depth == 0;
			depth++;
			break;
		case ']': case '}':
			if(depth > 0){
				depth--;
			}
			break;
		case ',':
			commas += depth == 1;
			break;
		case ' ': case '\t': case '\r': case '\n':
			break;
		default:
			empty = empty && depth == 0;
		}
	}
	return empty ? 0 : commas + 1;
}

/* The items of one of the change's lists, as text or as a parsed array. */
static size_t list_length(const cJSON *change, const char *key)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(change, key);
	if(cJSON_IsRaw(list)){
		return raw_array_length(list->valuestring);
	}
	return cJSON_IsArray(list) ? (size_t)cJSON_GetArraySize(list) : 0;
}

size_t journal_change_count(const cJSON *change)
{
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(change, "op");
	if(cJSON_IsString(op) && strcmp(op->valuestring, "lastUsed") == 0){
		return list_length(change, "tokens");
	}
	if(cJSON_IsString(op) && strcmp(op->valuestring, "sessions") == 0){
		return list_length(change, "bound") + list_length(change, "ended");
	}
	return 1;
}

/* ---- decoding and replay ---- */

struct replay {
	struct store *store;
	const cJSON *line;
	struct change *change;
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
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(replay->line, key);
	if(!cJSON_IsString(item)){
		refuse(replay, "'%s' is missing or not a string", key);
		return NULL;
	}
	return item->valuestring;
}

/* The token named by the line's "hash". */
static struct token *target_token(struct replay *replay)
{
	const char *hash_hex = string_of(replay, "hash");
	unsigned char hash[TOKEN_HASH_LEN];
	if(hash_hex == NULL){
		return NULL;
	}
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

static struct role *target_role(struct replay *replay)
{
	const char *name = string_of(replay, "rolename");
	struct role *role = name ? store_find_role(replay->store, name) : NULL;
	if(name && role == NULL){
		refuse(replay, "role \"%s\" does not exist", name);
	}
	return role;
}

static bool hash_is_free(struct replay *replay, const struct token *token)
{
	if(store_hash_in_use(replay->store, token->hash)){
		return refuse(replay, "token \"%s\": duplicate hash", token->name);
	}
	return true;
}

/* The "token" object of the line, parsed but not linked. */
static struct token *parsed_token(struct replay *replay, struct previous_secret *previous)
{
	struct state_loader loader;
	state_loader_init(&loader, replay->store, replay->problem, replay->problem_len);
	return state_parse_token(&loader, cJSON_GetObjectItemCaseSensitive(replay->line, "token"), 0, previous);
}

static bool decode_create_token(struct replay *replay)
{
	struct previous_secret previous;
	struct token *token = parsed_token(replay, &previous);
	if(token == NULL){
		return false;
	}
	bool fits = false;
	if(previous.token){
		refuse(replay, "token \"%s\": a new token has no previous secret", token->name);
	}else if(store_find_token_by_name(replay->store, token->name)){
		refuse(replay, "token \"%s\": duplicate name", token->name);
	}else{
		fits = hash_is_free(replay, token);
	}
	if(!fits){
		token_free(token);
		return false;
	}
	*replay->change = change_create_token(token);
	return true;
}

/* A rotation keeps the name, the role and the client id; only the old
 * secret can live on as the previous one. */
static bool rotation_fits(struct replay *replay, const struct token *old, const struct token *replacement,
		const struct previous_secret *previous)
{
	if(strcmp(replacement->name, old->name) != 0){
		return refuse(replay, "a rotation renamed token \"%s\"", old->name);
	}
	if(replacement->role != old->role){
		return refuse(replay, "a rotation changed the role of token \"%s\"", old->name);
	}
	if((replacement->client_id == NULL) != (old->client_id == NULL)
			|| (old->client_id && strcmp(replacement->client_id, old->client_id) != 0)){
		return refuse(replay, "a rotation changed the client id of token \"%s\"", old->name);
	}
	if(previous->token && CRYPTO_memcmp(previous->hash, old->hash, TOKEN_HASH_LEN) != 0){
		return refuse(replay, "token \"%s\": 'previousHash' is not the rotated secret", old->name);
	}
	return hash_is_free(replay, replacement);
}

static bool decode_rotate_token(struct replay *replay)
{
	struct token *old = target_token(replay);
	struct previous_secret parsed;
	struct token *replacement = old ? parsed_token(replay, &parsed) : NULL;
	if(replacement == NULL){
		return false;
	}
	struct previous_secret *previous = NULL;
	bool fits = rotation_fits(replay, old, replacement, &parsed);
	if(fits && parsed.token){
		previous = malloc(sizeof(*previous));
		fits = previous != NULL || refuse(replay, "out of memory");
		if(previous){
			*previous = parsed;
		}
	}
	if(!fits){
		token_free(replacement);
		return false;
	}
	*replay->change = change_rotate_token(old, replacement, previous);
	return true;
}

static bool decode_revoke_token(struct replay *replay)
{
	struct token *token = target_token(replay);
	if(token){
		*replay->change = change_revoke_token(token);
	}
	return token != NULL;
}

static bool decode_noticed(struct replay *replay)
{
	struct token *token = target_token(replay);
	const cJSON *expiring = cJSON_GetObjectItemCaseSensitive(replay->line, "expiring");
	const cJSON *expired = cJSON_GetObjectItemCaseSensitive(replay->line, "expired");
	if(token == NULL){
		return false;
	}
	if(!cJSON_IsBool(expiring) || !cJSON_IsBool(expired)){
		return refuse(replay, "'expiring' and 'expired' must be booleans");
	}
	*replay->change = change_noticed(token, cJSON_IsTrue(expiring), cJSON_IsTrue(expired));
	return true;
}

static bool decode_create_role(struct replay *replay)
{
	struct state_loader loader;
	state_loader_init(&loader, replay->store, replay->problem, replay->problem_len);
	struct role *role = state_parse_role(&loader, cJSON_GetObjectItemCaseSensitive(replay->line, "role"), 0);
	if(role){
		*replay->change = change_create_role(role);
	}
	return role != NULL;
}

static bool decode_delete_role(struct replay *replay)
{
	struct role *role = target_role(replay);
	if(role == NULL){
		return false;
	}
	if(role->token_count > 0){
		return refuse(replay, "role \"%s\" is still used by tokens", role->name);
	}
	*replay->change = change_delete_role(role);
	return true;
}

static bool decode_add_role_acl(struct replay *replay)
{
	struct role *role = target_role(replay);
	if(role == NULL){
		return false;
	}
	struct state_loader loader;
	state_loader_init(&loader, replay->store, replay->problem, replay->problem_len);
	struct role_acl *acl = state_parse_acl(&loader, role, cJSON_GetObjectItemCaseSensitive(replay->line, "acl"));
	if(acl){
		*replay->change = change_add_role_acl(role, acl);
	}
	return acl != NULL;
}

static bool decode_remove_role_acl(struct replay *replay)
{
	struct role *role = target_role(replay);
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
	*replay->change = change_remove_role_acl(role, acl);
	return true;
}

static const struct {
	const char *op;
	bool (*decode)(struct replay *replay);
} decoders[] = {
	{"rotateToken", decode_rotate_token},
	{"noticed", decode_noticed},
	{"createToken", decode_create_token},
	{"revokeToken", decode_revoke_token},
	{"createRole", decode_create_role},
	{"deleteRole", decode_delete_role},
	{"addRoleACL", decode_add_role_acl},
	{"removeRoleACL", decode_remove_role_acl},
};

bool journal_decode(struct store *store, const cJSON *line, struct change *change, char *problem, size_t problem_len)
{
	struct replay replay = {.store = store, .line = line, .change = change,
		.problem = problem, .problem_len = problem_len};
	const char *op = string_of(&replay, "op");
	*change = (struct change){0};
	if(op == NULL){
		return false;
	}
	for(size_t i = 0; i < sizeof(decoders) / sizeof(decoders[0]); i++){
		if(strcmp(decoders[i].op, op) == 0){
			return decoders[i].decode(&replay);
		}
	}
	return refuse(&replay, "unknown op \"%s\"", op);
}

/* lastUsed is advisory, and live it is in memory before it is recorded:
 * not a change, just times to set. A token revoked since is skipped. */
static bool apply_last_used(struct replay *replay)
{
	const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(replay->line, "tokens");
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

/* A sessions line as the table of changes it was written from (bound
 * records with their hash, ended ones without): each client id once. */
static bool decode_sessions(struct replay *replay, struct session_records *changes)
{
	const cJSON *bound = cJSON_GetObjectItemCaseSensitive(replay->line, "bound");
	const cJSON *ended = cJSON_GetObjectItemCaseSensitive(replay->line, "ended");
	if(!cJSON_IsArray(bound) || !cJSON_IsArray(ended)){
		return refuse(replay, "'bound' and 'ended' must be arrays");
	}
	struct state_loader loader;
	state_loader_init(&loader, replay->store, replay->problem, replay->problem_len);
	int index = 0;
	const cJSON *item;
	cJSON_ArrayForEach(item, bound){
		if(!state_load_session(&loader, changes, item, index++)){
			return false;
		}
	}
	index = 0;
	cJSON_ArrayForEach(item, ended){
		const char *problem = state_client_id_problem(item);
		if(problem){
			return refuse(replay, "'ended' item %d %s", index, problem);
		}
		if(session_records_find(changes, item->valuestring)){
			char name[LOG_TEXT_SIZE];
			return refuse(replay, "session \"%s\": duplicate clientId", log_text_escape(item->valuestring, name));
		}
		if(!session_records_put(changes, item->valuestring, NULL, NULL)){
			return refuse(replay, "out of memory");
		}
		index++;
	}
	return true;
}

/* Bindings are advisory: one whose hash is no token's is kept, for the
 * plugin to drop once loading is done. The line is decoded whole before
 * any of it is applied. */
static bool apply_sessions(struct replay *replay, struct session_records *sessions)
{
	struct session_records changes;
	session_records_init(&changes);
	bool applied = decode_sessions(replay, &changes);
	for(const struct session_record *record = changes.by_id; applied && record; record = record->hh.next){
		if(!record->bound){
			session_records_remove(sessions, record->client_id);
		}else if(!session_records_put(sessions, record->client_id, record->username, record->hash)){
			applied = refuse(replay, "out of memory");
		}
	}
	session_records_clear(&changes);
	return applied;
}

bool journal_replay(struct store *store, struct session_records *sessions, const cJSON *line,
		char *problem, size_t problem_len)
{
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(line, "op");
	if(cJSON_IsString(op) && strcmp(op->valuestring, "sessions") == 0){
		struct replay replay = {.store = store, .line = line, .problem = problem, .problem_len = problem_len};
		return apply_sessions(&replay, sessions);
	}
	return journal_apply(store, line, problem, problem_len);
}

bool journal_apply(struct store *store, const cJSON *line, char *problem, size_t problem_len)
{
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(line, "op");
	if(cJSON_IsString(op) && strcmp(op->valuestring, "lastUsed") == 0){
		struct replay replay = {.store = store, .line = line, .problem = problem, .problem_len = problem_len};
		return apply_last_used(&replay);
	}
	struct change change;
	if(!journal_decode(store, line, &change, problem, problem_len)){
		return false;
	}
	bool applied = change_apply(store, &change, NULL);
	change_release(&change);
	return applied || refuse(&(struct replay){.problem = problem, .problem_len = problem_len}, "out of memory");
}
