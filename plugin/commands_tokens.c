/*
 * Token commands: createToken, listTokens, getToken, revokeToken,
 * rotateToken. The secret of a new token exists only in this file's
 * createToken and rotateToken, in the reply they build, and is wiped from
 * the stack once the reply holds it.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "command.h"
#include "events.h"
#include "fields.h"
#include "log_text.h"
#include "rfc3339.h"
#include "metadata_json.h"
#include "token_listing.h"

/* The protocol's metadata object: with status, and previousValidUntil
 * while a rotated token's old secret still works. */
static cJSON *token_metadata(const struct store *store, const struct token *token, int64_t now)
{
	cJSON *object = token_to_json(token);
	const struct previous_secret *previous = store_find_previous(store, token);
	bool ok = object && cJSON_AddStringToObject(object, "status", now < token->valid_until ? "valid" : "invalid");
	if(ok && previous && now < previous->valid_until){
		char until[RFC3339_LEN + 1];
		rfc3339_format(previous->valid_until, until);
		ok = cJSON_AddStringToObject(object, "previousValidUntil", until) != NULL;
	}
	if(!ok){
		cJSON_Delete(object);
		return NULL;
	}
	return object;
}

/* Commands that act on one token name it by exactly one of hash and name. */
static struct token *find_target_token(struct command_context *context)
{
	const char *key, *value;
	struct token *token;

	if(!field_one_string_of(context, "hash", "name", &key, &value)){
		return NULL;
	}
	if(strcmp(key, "hash") == 0){
		unsigned char hash[TOKEN_HASH_LEN];
		if(!token_format_hash_from_hex(value, hash)){
			command_fail(context, CODE_INVALID, "Field 'hash' must be 64 lowercase hex digits");
			return NULL;
		}
		token = store_find_token_by_hash(&context->plugin->store, hash);
	}else{
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
		if(!store_hash_in_use(&context->plugin->store, hash)){
			return true;
		}
	}
	return command_fail(context, CODE_INTERNAL, "Could not generate a unique token");
}

static cJSON *created_token_data(const struct store *store, const struct token *token, const char *secret, int64_t now)
{
	cJSON *data = token_metadata(store, token, now);
	if(data && !cJSON_AddStringToObject(data, "token", secret)){
		cJSON_Delete(data);
		return NULL;
	}
	return data;
}

void command_create_token(struct command_context *context)
{
	struct store *store = &context->plugin->store;
	const char *name, *role_name, *client_id = NULL;
	int64_t valid_until;

	if(!field_name(context, "name", NAME_MAX_CHARS, &name)
			|| !field_string(context, "role", &role_name)
			|| !field_time(context, "validUntil", &valid_until)
			|| !field_optional_client_id(context, "clientId", &client_id)){
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
	int64_t max_tokens = context->plugin->limits.tokens;
	if(max_tokens && (int64_t)store_token_count(store) >= max_tokens){
		command_fail(context, CODE_LIMIT, "The store holds the most tokens allowed (%lld)", (long long)max_tokens);
		return;
	}

	char secret[TOKEN_LEN + 1];
	unsigned char hash[TOKEN_HASH_LEN];
	if(!new_secret(context, secret, hash)){
		return;
	}
	struct token *token = token_new_bound(name, context->requester, client_id, hash, context->now, valid_until,
			TIME_NEVER);
	if(token == NULL){
		OPENSSL_cleanse(secret, sizeof(secret));
		command_fail(context, CODE_INTERNAL, "Out of memory");
		return;
	}
	token->role = role;
	struct change change = change_create_token(token);
	if(command_apply(context, &change)){
		command_reply(context, created_token_data(store, token, secret, context->now));
		char hash_hex[TOKEN_HASH_HEX_LEN + 1];
		token_format_hash_to_hex(token->hash, hash_hex);
		char client_id_text[LOG_TEXT_SIZE];
		command_log_change(context, "name=%s role=%s hash=%s%s%s", token->name, role->name, hash_hex,
				token->client_id ? " clientId=" : "",
				token->client_id ? log_text_escape(token->client_id, client_id_text) : "");
		events_publish(context->plugin, "tokenCreated", token, context->requester, NULL);
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	change_release(&change);
}

/* A page of tokens, built only while it fits in the room its reply has:
 * an answer MQTT could not carry is refused before it costs memory. */
struct token_page {
	const struct store *store;
	cJSON *list;
	int64_t now;
	int64_t room;        /* bytes the items may take; 0: no limit */
	int64_t used;
	int64_t listed;
	bool too_large;
};

/* Adds one token's metadata; false when out of memory or out of room. */
static bool add_to_page(struct token_page *page, cJSON *list, const struct token *token)
{
	cJSON *item = token_metadata(page->store, token, page->now);
	if(item && page->room){
		char *text = cJSON_PrintUnformatted(item);
		page->used += text ? (int64_t)strlen(text) + 1 : page->room;
		free(text);
		page->too_large = page->used > page->room;
	}
	if(item == NULL || page->too_large || !cJSON_AddItemToArray(list, item)){
		cJSON_Delete(item);
		return false;
	}
	page->listed++;
	return true;
}

static bool visit_for_page(void *context, const struct token *token)
{
	struct token_page *page = context;
	return add_to_page(page, page->list, token);
}

static bool status_from_name(const char *name, enum order_status *status)
{
	static const char *const names[] = {[ORDER_ALL] = "all", [ORDER_VALID] = "valid", [ORDER_INVALID] = "invalid"};
	for(size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++){
		if(strcmp(name, names[i]) == 0){
			*status = (enum order_status)i;
			return true;
		}
	}
	return false;
}

/* The smallest a token's metadata can be in a reply: fixed keys, two
 * times, a hash, one-character names. */
#define TOKEN_METADATA_MIN_BYTES 180

/* What fits, said in tokens: the page so far tells a token's size. */
static void fail_too_large(struct command_context *context, const struct token_page *page)
{
	int64_t per_token = page->listed ? page->used / (page->listed + 1)
		: page->used ? page->used : 2 * TOKEN_METADATA_MIN_BYTES;
	int64_t fitting = per_token > 0 ? page->room / per_token : 1;
	command_fail(context, CODE_LIMIT, "The answer would make the reply larger than plugin_opt_max_reply_bytes "
			"allows: page through the tokens with 'count' (at most about %lld here) and 'offset'",
			(long long)(fitting > 1 ? fitting * 9 / 10 : 1));
}

/* The filters and the page asked for; false (an error sent) when a field is bad. */
static bool list_query(struct command_context *context, struct token_query *query)
{
	const char *status = "all";
	int64_t offset = 0, limit = INT64_MAX;
	*query = (struct token_query){.now = context->now};
	if(!field_optional_string(context, "status", &status)
			|| !field_optional_string(context, "role", &query->role)
			|| !field_optional_string(context, "namePrefix", &query->name_prefix)
			|| !field_optional_int(context, "count", 1, INT32_MAX, &limit)
			|| !field_optional_int(context, "offset", 0, INT32_MAX, &offset)){
		return false;
	}
	if(!status_from_name(status, &query->status)){
		return command_fail(context, CODE_INVALID, "Field 'status' must be \"valid\", \"invalid\" or \"all\"");
	}
	query->offset = (size_t)offset;
	query->limit = (size_t)limit;
	return true;
}

void command_list_tokens(struct command_context *context)
{
	struct token_query query;
	if(!list_query(context, &query)){
		return;
	}
	struct token_page page = {.store = &context->plugin->store, .now = context->now};
	/* The response's own keys and the totalCount take the rest. */
	page.room = context->reply_room > 256 ? context->reply_room - 256 : context->reply_room ? 1 : 0;
	/* A page that cannot fit even with the smallest tokens is refused
	 * before anything is read: a request of a hundred such lists must not
	 * cost a hundred walks of a million tokens. */
	size_t stored = store_token_count(page.store);
	size_t at_most = stored > query.offset ? stored - query.offset : 0;
	if(at_most > query.limit) at_most = query.limit;
	if(page.room && at_most > 0 && at_most > (size_t)page.room / TOKEN_METADATA_MIN_BYTES){
		page.too_large = true;
		fail_too_large(context, &page);
		return;
	}
	cJSON *data = cJSON_CreateObject();
	page.list = cJSON_AddArrayToObject(data, "tokens");
	size_t total = 0;
	enum listing_outcome outcome = page.list == NULL ? LISTING_NO_MEMORY
		: token_listing_page(&context->plugin->store, &context->plugin->listing_memo, &query, visit_for_page,
				&page, &total);
	if(page.too_large){
		cJSON_Delete(data);
		fail_too_large(context, &page);
		return;
	}
	if(outcome != LISTING_DONE || !cJSON_AddNumberToObject(data, "totalCount", (double)total)){
		cJSON_Delete(data);
		command_fail(context, CODE_INTERNAL, "Out of memory");
		return;
	}
	command_reply(context, data);
}

void command_get_token(struct command_context *context)
{
	struct token *token = find_target_token(context);
	if(token){
		command_reply(context, token_metadata(&context->plugin->store, token, context->now));
	}
}

static cJSON *revoked_data(const char *name, const char *hash_hex, struct sessions_closed closed)
{
	cJSON *data = cJSON_CreateObject();
	if(data == NULL
			|| !cJSON_AddStringToObject(data, "name", name)
			|| !cJSON_AddStringToObject(data, "hash", hash_hex)
			|| !cJSON_AddNumberToObject(data, "disconnected", (double)closed.connected)
			|| !cJSON_AddNumberToObject(data, "offlineSessionsEnded", (double)closed.offline)){
		cJSON_Delete(data);
		return NULL;
	}
	return data;
}

void command_revoke_token(struct command_context *context)
{
	struct token *token = find_target_token(context);
	if(token == NULL){
		return;
	}
	struct change change = change_revoke_token(token);
	if(command_apply(context, &change)){
		char hash_hex[TOKEN_HASH_HEX_LEN + 1];
		token_format_hash_to_hex(token->hash, hash_hex);
		command_reply(context, revoked_data(token->name, hash_hex, change.closed));
		command_log_change(context, "name=%s hash=%s disconnected=%zu offlineSessionsEnded=%zu", token->name, hash_hex,
				change.closed.connected, change.closed.offline);
		events_publish(context->plugin, "tokenRevoked", token, context->requester, NULL);
	}
	change_release(&change);
}

/* Where the old secret stands after a rotation: NULL when it stops now
 * (no grace, or it would have expired anyway). It never outlives its own
 * validUntil, nor the token's new one. */
static struct previous_secret *grace_for(const struct token *old, int64_t grace, int64_t new_valid_until,
		int64_t now, bool *failed)
{
	int64_t until = now + grace;
	if(until > old->valid_until) until = old->valid_until;
	if(until > new_valid_until) until = new_valid_until;
	*failed = false;
	if(grace == 0 || until <= now){
		return NULL;
	}
	struct previous_secret *previous = calloc(1, sizeof(*previous));
	*failed = previous == NULL;
	if(previous){
		memcpy(previous->hash, old->hash, TOKEN_HASH_LEN);
		previous->valid_until = until;
	}
	return previous;
}

static bool rotation_valid_until(struct command_context *context, const struct token *old, int64_t *valid_until)
{
	/* Without one, the same lifetime as before, from now. */
	int64_t lifetime = old->valid_until - old->issued_at;
	*valid_until = context->now + (lifetime > 0 ? lifetime : 0);
	if(*valid_until > RFC3339_MAX) *valid_until = RFC3339_MAX;
	if(!field_optional_time(context, "validUntil", valid_until)){
		return false;
	}
	if(*valid_until <= context->now){
		return command_fail(context, CODE_INVALID, "Field 'validUntil' must be in the future");
	}
	return true;
}

/* previous_valid_until: when the old secret stops working, 0 when it
 * already has. */
static cJSON *rotated_data(const struct store *store, const struct token *token, const char *secret,
		int64_t previous_valid_until, int64_t now)
{
	cJSON *data = created_token_data(store, token, secret, now);
	if(data && previous_valid_until && !cJSON_GetObjectItemCaseSensitive(data, "previousValidUntil")){
		char until[RFC3339_LEN + 1];
		rfc3339_format(previous_valid_until, until);
		if(!cJSON_AddStringToObject(data, "previousValidUntil", until)){
			cJSON_Delete(data);
			return NULL;
		}
	}
	return data;
}

void command_rotate_token(struct command_context *context)
{
	struct tokens_plugin *plugin = context->plugin;
	int64_t grace = 0, valid_until;
	struct token *old = find_target_token(context);
	if(old == NULL
			|| !field_optional_int(context, "graceSeconds", 0, MAX_GRACE_SECONDS, &grace)
			|| !rotation_valid_until(context, old, &valid_until)){
		return;
	}
	char secret[TOKEN_LEN + 1];
	unsigned char hash[TOKEN_HASH_LEN], old_hash[TOKEN_HASH_LEN];
	bool failed;
	if(!new_secret(context, secret, hash)){
		return;
	}
	memcpy(old_hash, old->hash, TOKEN_HASH_LEN);
	/* The same name, role and client id: only the secret and its times change. */
	struct token *replacement = token_new_bound(old->name, context->requester, old->client_id, hash, context->now,
			valid_until, old->last_used);
	struct previous_secret *previous = grace_for(old, grace, valid_until, context->now, &failed);
	if(replacement == NULL || failed){
		OPENSSL_cleanse(secret, sizeof(secret));
		token_free(replacement);
		free(previous);
		command_fail(context, CODE_INTERNAL, "Out of memory");
		return;
	}
	replacement->role = old->role;
	/* The reply shows the grace period's end, which the store keeps from now on. */
	int64_t previous_valid_until = previous ? previous->valid_until : 0;
	struct change change = change_rotate_token(old, replacement, previous);
	if(command_apply(context, &change)){
		command_reply(context, rotated_data(&plugin->store, replacement, secret, previous_valid_until, context->now));
		char hash_hex[TOKEN_HASH_HEX_LEN + 1];
		token_format_hash_to_hex(replacement->hash, hash_hex);
		command_log_change(context, "name=%s hash=%s graceSeconds=%lld disconnected=%zu offlineSessionsEnded=%zu",
				replacement->name, hash_hex, (long long)grace, change.closed.connected, change.closed.offline);
		events_publish(plugin, "tokenRotated", replacement, context->requester, old_hash);
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	change_release(&change);
}
