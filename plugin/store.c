/*
 * The token and role tables. See include/store.h for the ideas; this file
 * only keeps the indexes consistent. Nothing here allocates on a lookup.
 */
#include <stdlib.h>
#include <string.h>
#include <mosquitto.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include "acl.h"
#include "store.h"
#include "token_orders.h"

static const char *const acl_type_names[ACL_TYPE_COUNT] = {
	[ACL_PUBLISH_CLIENT_SEND] = "publishClientSend",
	[ACL_PUBLISH_CLIENT_RECEIVE] = "publishClientReceive",
	[ACL_SUBSCRIBE_LITERAL] = "subscribeLiteral",
	[ACL_SUBSCRIBE_PATTERN] = "subscribePattern",
	[ACL_UNSUBSCRIBE_LITERAL] = "unsubscribeLiteral",
	[ACL_UNSUBSCRIBE_PATTERN] = "unsubscribePattern",
};

const char *acl_type_name(enum acl_type type)
{
	return acl_type_names[type];
}

bool acl_type_from_name(const char *name, enum acl_type *type)
{
	for(int i = 0; i < ACL_TYPE_COUNT; i++){
		if(strcmp(name, acl_type_names[i]) == 0){
			*type = (enum acl_type)i;
			return true;
		}
	}
	return false;
}

static bool is_plain_ascii(const char *text, size_t bytes)
{
	for(size_t i = 0; i < bytes; i++){
		if((unsigned char)text[i] >= 0x80){
			return false;
		}
	}
	return true;
}

/* Characters that make two names look alike, or a name look like none:
 * invisible format characters (zero-width space, BOM, bidirectional
 * overrides) and every other character Unicode says to draw as nothing
 * (Default_Ignorable_Code_Point: fillers, variation selectors, the
 * combining grapheme joiner), line and paragraph separators, white space at either end
 * (no-break and ideographic spaces too), a combining mark with nothing to
 * combine with, and spellings that are not in NFC (so that "é" is one
 * name however it was typed). */
static const char *unicode_problem(const char *name, size_t bytes)
{
	const uint8_t *text = (const uint8_t *)name;
	ucs4_t current, first, last = 0;
	u8_mbtouc(&first, text, bytes);
	for(const uint8_t *at = u8_next(&current, text); at != NULL; at = u8_next(&current, at)){
		last = current;
		if(uc_is_general_category(current, UC_CATEGORY_Cf) || uc_is_general_category(current, UC_CATEGORY_Zl)
				|| uc_is_general_category(current, UC_CATEGORY_Zp)
				|| uc_is_property_default_ignorable_code_point(current)){
			return "must not hold invisible format characters or line separators";
		}
	}
	if(uc_is_property_white_space(first) || uc_is_property_white_space(last)){
		return "must not start or end with a space";
	}
	if(uc_is_general_category(first, UC_CATEGORY_M)){
		return "must not start with a combining mark";
	}
	size_t normalized_length = 0;
	uint8_t *normalized = u8_normalize(UNINORM_NFC, text, bytes, NULL, &normalized_length);
	bool composed = normalized && normalized_length == bytes && memcmp(normalized, text, bytes) == 0;
	free(normalized);
	return composed ? NULL : "must be in Unicode normalization form C (NFC)";
}

const char *name_problem(const char *name, size_t max_chars)
{
	size_t bytes = strlen(name);
	if(bytes == 0){
		return "must not be empty";
	}
	/* libmosquitto's check refuses invalid UTF-8, C0, DEL, C1 and noncharacters. */
	if(bytes > 4 * max_chars || mosquitto_validate_utf8(name, (int)bytes) != MOSQ_ERR_SUCCESS){
		return bytes > 4 * max_chars ? "is too long"
			: "must be valid UTF-8 without control characters";
	}
	size_t chars = 0;
	for(size_t i = 0; i < bytes; i++){
		if(((unsigned char)name[i] & 0xC0) != 0x80){
			chars++;
		}
	}
	if(chars > max_chars){
		return "is too long";
	}
	if(name[0] == ' ' || name[bytes - 1] == ' '){
		return "must not start or end with a space";
	}
	return NULL;
}

const char *new_name_problem(const char *name, size_t max_chars)
{
	const char *problem = name_problem(name, max_chars);
	if(problem == NULL && !is_plain_ascii(name, strlen(name))){
		problem = unicode_problem(name, strlen(name));
	}
	return problem;
}

void store_init(struct store *store)
{
	memset(store, 0, sizeof(*store));
	token_orders_init(store);
}

/* Whole orders at once: a load that failed half way may have a token in
 * some and not in others. */
void store_clear(struct store *store)
{
	struct previous_secret *previous, *next_previous;
	HASH_ITER(hh_hash, store->previous_by_hash, previous, next_previous){
		store_drop_previous(store, previous->token);
	}
	token_orders_clear(store);
	struct token *token, *next_token;
	HASH_ITER(hh_hash, store->tokens_by_hash, token, next_token){
		HASH_DELETE(hh_hash, store->tokens_by_hash, token);
		token->role->token_count--;
		token_free(token);
	}
	struct role *role, *next_role;
	HASH_ITER(hh, store->roles, role, next_role){
		store_unlink_role(store, role);
		role_free(role);
	}
}

size_t store_token_count(const struct store *store)
{
	return HASH_CNT(hh_hash, store->tokens_by_hash);
}

size_t store_role_count(const struct store *store)
{
	return HASH_CNT(hh, store->roles);
}

const char *client_id_problem(const char *client_id)
{
	size_t bytes = strlen(client_id);
	if(bytes == 0){
		return "must not be empty";
	}
	if(bytes > CLIENT_ID_MAX_BYTES){
		return "is longer than 65535 bytes";
	}
	/* What the broker checks every client id against, so that a token is
	 * never bound to one no client can connect with. */
	if(mosquitto_validate_utf8(client_id, (int)bytes) != MOSQ_ERR_SUCCESS){
		return "must be valid UTF-8 without control characters";
	}
	/* Topic separators and wildcards: a client id may stand in a topic
	 * (ACL patterns, logs of topics), where these would change its meaning. */
	if(strpbrk(client_id, "+#/")){
		return "must not hold '+', '#' or '/'";
	}
	return NULL;
}

/* One allocation per token: the struct, then its name, requester and
 * client id, so a million tokens cost a million mallocs, not three million. */
struct token *token_new_bound(const char *name, const char *requested_by, const char *client_id,
		const unsigned char hash[TOKEN_HASH_LEN], int64_t issued_at,
		int64_t valid_until, int64_t last_used)
{
	size_t name_size = strlen(name) + 1;
	size_t requester_size = strlen(requested_by) + 1;
	size_t client_id_size = client_id ? strlen(client_id) + 1 : 0;
	struct token *token = calloc(1, sizeof(*token) + name_size + requester_size + client_id_size);
	if(token == NULL){
		return NULL;
	}
	token->name = token->text;
	memcpy(token->text, name, name_size);
	token->requested_by = token->text + name_size;
	memcpy(token->text + name_size, requested_by, requester_size);
	if(client_id){
		token->client_id = token->text + name_size + requester_size;
		memcpy(token->text + name_size + requester_size, client_id, client_id_size);
	}
	memcpy(token->hash, hash, TOKEN_HASH_LEN);
	token->issued_at = issued_at;
	token->valid_until = valid_until;
	token->last_used = last_used;
	return token;
}

struct token *token_new(const char *name, const char *requested_by,
		const unsigned char hash[TOKEN_HASH_LEN], int64_t issued_at,
		int64_t valid_until, int64_t last_used)
{
	return token_new_bound(name, requested_by, NULL, hash, issued_at, valid_until, last_used);
}

void token_free(struct token *token)
{
	free(token);
}

/* The key is a SHA-256: its first bytes are as good a bucket hash as any,
 * and cheaper than hashing 32 bytes again on every login. */
static unsigned bucket_of_hash(const unsigned char hash[TOKEN_HASH_LEN])
{
	uint32_t value;
	memcpy(&value, hash, sizeof(value));
	return value;
}

struct token *store_find_token_by_hash(const struct store *store, const unsigned char hash[TOKEN_HASH_LEN])
{
	struct token *token;
	HASH_FIND_BYHASHVALUE(hh_hash, store->tokens_by_hash, hash, TOKEN_HASH_LEN, bucket_of_hash(hash), token);
	return token;
}

struct token *store_find_token_by_name(const struct store *store, const char *name)
{
	return token_orders_find_name(store, name);
}

/* uthash leaves an element out, and says so with a NULL table, when it
 * cannot allocate (HASH_NONFATAL_OOM, store.h). */
static bool link_by_hash(struct store *store, struct token *token, struct role *role)
{
	HASH_ADD_KEYPTR_BYHASHVALUE(hh_hash, store->tokens_by_hash, token->hash, TOKEN_HASH_LEN,
			bucket_of_hash(token->hash), token);
	if(token->hh_hash.tbl == NULL){
		return false;
	}
	token->role = role;
	role->token_count++;
	return true;
}

static void unlink_by_hash(struct store *store, struct token *token)
{
	HASH_DELETE(hh_hash, store->tokens_by_hash, token);
	token->role->token_count--;
}

bool store_link_token(struct store *store, struct token *token, struct role *role)
{
	if(!link_by_hash(store, token, role)){
		return false;
	}
	if(!token_orders_insert(store, token, role)){
		unlink_by_hash(store, token);
		return false;
	}
	return true;
}

enum store_added store_add_token(struct store *store, struct token *token, struct role *role)
{
	if(store_hash_in_use(store, token->hash)){
		return STORE_HASH_TAKEN;
	}
	if(!link_by_hash(store, token, role)){
		return STORE_NO_MEMORY;
	}
	if(!token_orders_keep_added(store, token)){
		unlink_by_hash(store, token);
		return STORE_NO_MEMORY;
	}
	return STORE_ADDED;
}

enum store_added store_order_added(struct store *store, struct token **taken)
{
	return token_orders_build_added(store, taken);
}

void store_unlink_token(struct store *store, struct token *token)
{
	token_orders_remove(store, token);
	unlink_by_hash(store, token);
}

static struct token **tokens_in(const struct order_index *order, size_t *count)
{
	*count = order_index_count(order);
	struct token **tokens = malloc((*count ? *count : 1) * sizeof(*tokens));
	if(tokens == NULL){
		return NULL;
	}
	struct order_cursor cursor;
	size_t i = 0;
	for(bool more = order_index_seek(order, ORDER_ALL, 0, &cursor); more; more = order_cursor_next(order, &cursor, ORDER_ALL)){
		tokens[i++] = order_cursor_token(&cursor);
	}
	return tokens;
}

struct token **store_sorted_tokens(const struct store *store, size_t *count)
{
	return tokens_in(&store->by_issue, count);
}

struct token **store_tokens_by_name(const struct store *store, size_t *count)
{
	return tokens_in(&store->by_name, count);
}

void store_refresh_status(struct store *store, int64_t now)
{
	order_index_refresh(&store->by_issue, now);
	order_index_refresh(&store->by_name, now);
	for(struct role *role = store->roles; role; role = role->hh.next){
		order_index_refresh(&role->tokens, now);
	}
}

bool store_hash_in_use(const struct store *store, const unsigned char hash[TOKEN_HASH_LEN])
{
	return store_find_token_by_hash(store, hash) || store_find_previous_by_hash(store, hash);
}

struct previous_secret *store_find_previous_by_hash(const struct store *store, const unsigned char hash[TOKEN_HASH_LEN])
{
	struct previous_secret *previous;
	HASH_FIND_BYHASHVALUE(hh_hash, store->previous_by_hash, hash, TOKEN_HASH_LEN, bucket_of_hash(hash), previous);
	return previous;
}

struct previous_secret *store_find_previous(const struct store *store, const struct token *token)
{
	struct previous_secret *previous;
	HASH_FIND(hh_token, store->previous_by_token, &token, sizeof(token), previous);
	return previous;
}

void store_drop_previous(struct store *store, struct token *token)
{
	struct previous_secret *previous = store_find_previous(store, token);
	if(previous){
		HASH_DELETE(hh_hash, store->previous_by_hash, previous);
		HASH_DELETE(hh_token, store->previous_by_token, previous);
		free(previous);
	}
}

bool store_adopt_previous(struct store *store, struct previous_secret *previous)
{
	store_drop_previous(store, previous->token);
	HASH_ADD_KEYPTR_BYHASHVALUE(hh_hash, store->previous_by_hash, previous->hash, TOKEN_HASH_LEN,
			bucket_of_hash(previous->hash), previous);
	if(previous->hh_hash.tbl == NULL){
		return false;
	}
	HASH_ADD_KEYPTR(hh_token, store->previous_by_token, &previous->token, sizeof(previous->token), previous);
	if(previous->hh_token.tbl == NULL){
		HASH_DELETE(hh_hash, store->previous_by_hash, previous);
		return false;
	}
	return true;
}

bool store_set_previous(struct store *store, struct token *token, const unsigned char hash[TOKEN_HASH_LEN],
		int64_t valid_until)
{
	struct previous_secret *previous = calloc(1, sizeof(*previous));
	if(previous == NULL){
		return false;
	}
	memcpy(previous->hash, hash, TOKEN_HASH_LEN);
	previous->token = token;
	previous->valid_until = valid_until;
	if(!store_adopt_previous(store, previous)){
		free(previous);
		return false;
	}
	return true;
}

struct role *role_new(const char *name)
{
	struct role *role = calloc(1, sizeof(*role));
	if(role == NULL){
		return NULL;
	}
	role->name = strdup(name);
	if(role->name == NULL){
		free(role);
		return NULL;
	}
	order_index_init(&role->tokens, token_order_by_issue, 0);
	return role;
}

void role_free(struct role *role)
{
	if(role == NULL){
		return;
	}
	for(int type = 0; type < ACL_TYPE_COUNT; type++){
		struct role_acl *acl = role->acls[type];
		while(acl){
			struct role_acl *next = acl->next;
			role_acl_free(acl);
			acl = next;
		}
	}
	order_index_clear(&role->tokens);
	free(role->name);
	free(role);
}

struct role *store_find_role(const struct store *store, const char *name)
{
	struct role *role;
	HASH_FIND_STR(store->roles, name, role);
	return role;
}

bool store_link_role(struct store *store, struct role *role)
{
	HASH_ADD_KEYPTR(hh, store->roles, role->name, strlen(role->name), role);
	return role->hh.tbl != NULL;
}

void store_unlink_role(struct store *store, struct role *role)
{
	HASH_DEL(store->roles, role);
}

static int compare_roles(const void *a, const void *b)
{
	return strcmp((*(const struct role *const *)a)->name, (*(const struct role *const *)b)->name);
}

struct role **store_sorted_roles(const struct store *store, size_t *count)
{
	*count = store_role_count(store);
	struct role **roles = malloc((*count ? *count : 1) * sizeof(*roles));
	if(roles == NULL){
		return NULL;
	}
	size_t i = 0;
	for(struct role *role = store->roles; role; role = role->hh.next){
		roles[i++] = role;
	}
	qsort(roles, *count, sizeof(*roles), compare_roles);
	return roles;
}

struct role_acl *role_acl_new(enum acl_type type, const char *topic, int priority, bool allow)
{
	struct role_acl *acl = calloc(1, sizeof(*acl));
	if(acl == NULL){
		return NULL;
	}
	acl->topic = strdup(topic);
	if(acl->topic == NULL){
		free(acl);
		return NULL;
	}
	acl->type = type;
	acl->priority = priority;
	acl->allow = allow;
	acl->has_placeholder = acl_topic_has_placeholder(topic);
	return acl;
}

void role_acl_free(struct role_acl *acl)
{
	if(acl){
		free(acl->topic);
		free(acl);
	}
}

struct role_acl *role_find_acl(const struct role *role, enum acl_type type, const char *topic)
{
	for(struct role_acl *acl = role->acls[type]; acl; acl = acl->next){
		if(strcmp(acl->topic, topic) == 0){
			return acl;
		}
	}
	return NULL;
}

void role_link_acl(struct role *role, struct role_acl *acl)
{
	struct role_acl *previous = NULL;
	for(struct role_acl *cursor = role->acls[acl->type]; cursor && cursor->priority >= acl->priority; cursor = cursor->next){
		previous = cursor;
	}
	role_relink_acl(role, acl, previous);
}

struct role_acl *role_unlink_acl(struct role *role, struct role_acl *acl)
{
	struct role_acl **link = &role->acls[acl->type];
	struct role_acl *previous = NULL;
	while(*link != acl){
		previous = *link;
		link = &(*link)->next;
	}
	*link = acl->next;
	acl->next = NULL;
	role->acl_count--;
	role->placeholder_acls -= acl->has_placeholder;
	return previous;
}

void role_relink_acl(struct role *role, struct role_acl *acl, struct role_acl *previous)
{
	struct role_acl **link = previous ? &previous->next : &role->acls[acl->type];
	acl->next = *link;
	*link = acl;
	role->acl_count++;
	role->placeholder_acls += acl->has_placeholder;
}
