/*
 * State document <-> store. Loading is strict: a file that breaks the format
 * in any way is refused with the first problem found, because starting with
 * part of the state (and later saving it) would silently lose credentials.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "metadata_json.h"
#include "rfc3339.h"
#include "state_format.h"

cJSON *token_state_to_json(const struct store *store, const struct token *token)
{
	return token_state_json_with(token, store_find_previous(store, token));
}

cJSON *token_state_json_with(const struct token *token, const struct previous_secret *previous)
{
	cJSON *object = token_to_json(token);
	bool ok = object != NULL;
	if(ok && previous){
		char hash_hex[TOKEN_HASH_HEX_LEN + 1];
		token_format_hash_to_hex(previous->hash, hash_hex);
		ok = cJSON_AddStringToObject(object, "previousHash", hash_hex)
			&& metadata_add_time(object, "previousValidUntil", previous->valid_until);
	}
	if(ok && token->expiring_noticed){
		ok = cJSON_AddTrueToObject(object, "expiringNotified") != NULL;
	}
	if(ok && token->expired_noticed){
		ok = cJSON_AddTrueToObject(object, "expiredNotified") != NULL;
	}
	if(!ok){
		cJSON_Delete(object);
		return NULL;
	}
	return object;
}

/* ---- loading ---- */

/* Which item a problem is in; formatted only when there is a problem. */
static void set_item(struct state_loader *loader, const char *kind, int index, const char *name)
{
	loader->item_kind = kind;
	loader->item_index = index;
	loader->item_name = name;
}

static bool fail(struct state_loader *loader, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

static bool fail(struct state_loader *loader, const char *format, ...)
{
	char detail[256];
	va_list args;
	va_start(args, format);
	vsnprintf(detail, sizeof(detail), format, args);
	va_end(args);
	char where[LOG_TEXT_SIZE + 32] = "";   /* a session's client id may take LOG_TEXT_SIZE */
	if(loader->item_kind){
		if(loader->item_name){
			snprintf(where, sizeof(where), "%s \"%s\": ", loader->item_kind, loader->item_name);
		}else{
			snprintf(where, sizeof(where), "%s %d: ", loader->item_kind, loader->item_index);
		}
	}
	snprintf(loader->problem, loader->problem_len, "%s%s", where, detail);
	return false;
}

static const char *string_value(struct state_loader *loader, const cJSON *item, const char *key)
{
	if(!cJSON_IsString(item)){
		fail(loader, "'%s' is %s", key, item ? "not a string" : "missing");
		return NULL;
	}
	return item->valuestring;
}

static const char *string_field(struct state_loader *loader, const cJSON *object, const char *key)
{
	return string_value(loader, cJSON_GetObjectItemCaseSensitive(object, key), key);
}

static bool time_value(struct state_loader *loader, const cJSON *item, const char *key, bool nullable, int64_t *out)
{
	if(nullable && cJSON_IsNull(item)){
		*out = TIME_NEVER;
		return true;
	}
	if(!cJSON_IsString(item) || !rfc3339_parse(item->valuestring, out)){
		return fail(loader, "'%s' is %s", key, item ? "not an RFC 3339 time" : "missing");
	}
	return true;
}

/* A token's fields, found in one pass over the object (a million tokens
 * load at start-up; looking each key up again costs more than the rest). */
enum token_field {
	FIELD_NAME, FIELD_ROLE, FIELD_REQUESTED_BY, FIELD_ISSUED_AT, FIELD_VALID_UNTIL, FIELD_LAST_USED,
	FIELD_HASH, FIELD_EXPIRING, FIELD_EXPIRED, FIELD_PREVIOUS_HASH, FIELD_PREVIOUS_VALID_UNTIL, FIELD_CLIENT_ID,
	FIELD_COUNT
};

static const char *const token_field_names[FIELD_COUNT] = {
	"name", "role", "requestedBy", "issuedAt", "validUntil", "lastUsed",
	"hash", "expiringNotified", "expiredNotified", "previousHash", "previousValidUntil", "clientId",
};

/* Like cJSON_GetObjectItemCaseSensitive for each name: the first wins. */
static void find_token_fields(const cJSON *object, const cJSON *fields[FIELD_COUNT])
{
	memset(fields, 0, FIELD_COUNT * sizeof(*fields));
	const cJSON *child;
	cJSON_ArrayForEach(child, object){
		for(int f = 0; f < FIELD_COUNT; f++){
			if(fields[f] == NULL && child->string && child->string[0] == token_field_names[f][0]
					&& strcmp(child->string, token_field_names[f]) == 0){
				fields[f] = child;
				break;
			}
		}
	}
}

struct role_acl *state_parse_acl(struct state_loader *loader, const struct role *role, const cJSON *item)
{
	if(!cJSON_IsObject(item)){
		fail(loader, "an ACL is not an object");
		return NULL;
	}
	const char *type_name = string_field(loader, item, "acltype");
	const char *topic = type_name ? string_field(loader, item, "topic") : NULL;
	const cJSON *priority = cJSON_GetObjectItemCaseSensitive(item, "priority");
	const cJSON *allow = cJSON_GetObjectItemCaseSensitive(item, "allow");
	enum acl_type type;

	if(topic == NULL){
		return NULL;
	}
	if(!acl_type_from_name(type_name, &type)){
		fail(loader, "unknown acltype \"%s\"", type_name);
	}else if(!acl_topic_is_valid(topic, ACL_TOPIC_STORED)){
		fail(loader, "ACL topic \"%s\" is not a valid topic filter", topic);
	}else if(!cJSON_IsNumber(priority) || priority->valuedouble != (double)priority->valueint){
		fail(loader, "ACL \"%s\": 'priority' is not an integer", topic);
	}else if(!cJSON_IsBool(allow)){
		fail(loader, "ACL \"%s\": 'allow' is not a boolean", topic);
	}else if(role_find_acl(role, type, topic)){
		fail(loader, "duplicate %s ACL for \"%s\"", type_name, topic);
	}else{
		struct role_acl *acl = role_acl_new(type, topic, priority->valueint, cJSON_IsTrue(allow));
		if(acl == NULL){
			fail(loader, "out of memory");
		}
		return acl;
	}
	return NULL;
}

bool state_load_acl(struct state_loader *loader, struct role *role, const cJSON *item)
{
	struct role_acl *acl = state_parse_acl(loader, role, item);
	if(acl){
		role_link_acl(role, acl);
	}
	return acl != NULL;
}

struct role *state_parse_role(struct state_loader *loader, const cJSON *item, int index)
{
	set_item(loader, "role", index, NULL);
	if(!cJSON_IsObject(item)){
		fail(loader, "not an object");
		return NULL;
	}
	const char *name = string_field(loader, item, "rolename");
	if(name == NULL){
		return NULL;
	}
	const char *problem = name_problem(name, ROLENAME_MAX_CHARS);
	if(problem){
		fail(loader, "'rolename' %s", problem);
		return NULL;
	}
	loader->item_name = name;
	if(store_find_role(loader->store, name)){
		fail(loader, "duplicate rolename");
		return NULL;
	}
	const cJSON *acls = cJSON_GetObjectItemCaseSensitive(item, "acls");
	if(!cJSON_IsArray(acls)){
		fail(loader, "'acls' is %s", acls ? "not an array" : "missing");
		return NULL;
	}
	struct role *role = role_new(name);
	if(role == NULL){
		fail(loader, "out of memory");
		return NULL;
	}
	const cJSON *acl;
	cJSON_ArrayForEach(acl, acls){
		if(!state_load_acl(loader, role, acl)){
			role_free(role);
			return NULL;
		}
	}
	return role;
}

bool state_load_role(struct state_loader *loader, const cJSON *item, int index)
{
	struct role *role = state_parse_role(loader, item, index);
	if(role && !store_link_role(loader->store, role)){
		role_free(role);
		return fail(loader, "out of memory");
	}
	return role != NULL;
}

/* A boolean field that may be absent (false). */
static bool optional_true(struct state_loader *loader, const cJSON *item, const char *key, bool *out)
{
	*out = cJSON_IsTrue(item);
	return item == NULL || cJSON_IsBool(item) || fail(loader, "'%s' is not a boolean", key);
}

/* The optional clientId: absent (not bound), or one a token may be bound to. */
static bool client_id_field(struct state_loader *loader, const cJSON *item, const char **client_id)
{
	*client_id = NULL;
	if(item == NULL){
		return true;
	}
	if(!cJSON_IsString(item)){
		return fail(loader, "'clientId' is not a string");
	}
	const char *problem = client_id_problem(item->valuestring);
	if(problem){
		return fail(loader, "'clientId' %s", problem);
	}
	*client_id = item->valuestring;
	return true;
}

/* previousHash and previousValidUntil: both or neither. */
static bool previous_fields(struct state_loader *loader, const cJSON *hash, const cJSON *until,
		struct previous_secret *previous)
{
	memset(previous, 0, sizeof(*previous));
	if(hash == NULL && until == NULL){
		return true;
	}
	if(!cJSON_IsString(hash) || !token_format_hash_from_hex(hash->valuestring, previous->hash)){
		return fail(loader, "'previousHash' is %s", hash ? "not 64 lowercase hex digits" : "missing");
	}
	if(!time_value(loader, until, "previousValidUntil", false, &previous->valid_until)){
		return false;
	}
	return true;
}

struct token *state_parse_token(struct state_loader *loader, const cJSON *item, int index,
		struct previous_secret *previous)
{
	set_item(loader, "token", index, NULL);
	if(!cJSON_IsObject(item)){
		fail(loader, "not an object");
		return NULL;
	}
	const cJSON *fields[FIELD_COUNT];
	find_token_fields(item, fields);
	const char *name = string_value(loader, fields[FIELD_NAME], "name");
	if(name == NULL){
		return NULL;
	}
	const char *problem = name_problem(name, NAME_MAX_CHARS);
	if(problem){
		fail(loader, "'name' %s", problem);
		return NULL;
	}
	loader->item_name = name;

	const char *role_name = string_value(loader, fields[FIELD_ROLE], "role");
	const char *requested_by = role_name ? string_value(loader, fields[FIELD_REQUESTED_BY], "requestedBy") : NULL;
	const char *hash_hex = requested_by ? string_value(loader, fields[FIELD_HASH], "hash") : NULL;
	int64_t issued_at, valid_until, last_used;
	unsigned char hash[TOKEN_HASH_LEN];
	if(hash_hex == NULL
			|| !time_value(loader, fields[FIELD_ISSUED_AT], "issuedAt", false, &issued_at)
			|| !time_value(loader, fields[FIELD_VALID_UNTIL], "validUntil", false, &valid_until)
			|| !time_value(loader, fields[FIELD_LAST_USED], "lastUsed", true, &last_used)){
		return NULL;
	}
	if(!token_format_hash_from_hex(hash_hex, hash)){
		fail(loader, "'hash' is not 64 lowercase hex digits");
		return NULL;
	}
	struct role *role = store_find_role(loader->store, role_name);
	if(role == NULL){
		fail(loader, "role \"%s\" does not exist", role_name);
		return NULL;
	}
	bool expiring_noticed, expired_noticed;
	const char *client_id;
	if(!optional_true(loader, fields[FIELD_EXPIRING], "expiringNotified", &expiring_noticed)
			|| !optional_true(loader, fields[FIELD_EXPIRED], "expiredNotified", &expired_noticed)
			|| !previous_fields(loader, fields[FIELD_PREVIOUS_HASH], fields[FIELD_PREVIOUS_VALID_UNTIL], previous)
			|| !client_id_field(loader, fields[FIELD_CLIENT_ID], &client_id)){
		return NULL;
	}
	struct token *token = token_new_bound(name, requested_by, client_id, hash, issued_at, valid_until, last_used);
	if(token == NULL){
		fail(loader, "out of memory");
		return NULL;
	}
	token->role = role;
	token->expiring_noticed = expiring_noticed;
	token->expired_noticed = expired_noticed;
	previous->token = previous->valid_until ? token : NULL;
	return token;
}

bool state_add_token(struct state_loader *loader, struct token *token, int index)
{
	enum store_added added = store_add_token(loader->store, token, token->role);
	if(added != STORE_ADDED){
		set_item(loader, "token", index, token->name);
		fail(loader, "%s", added == STORE_NAME_TAKEN ? "duplicate name"
				: added == STORE_HASH_TAKEN ? "duplicate hash" : "out of memory");
		token_free(token);
		return false;
	}
	return true;
}

bool state_order_tokens(struct state_loader *loader)
{
	struct token *taken;
	enum store_added ordered = store_order_added(loader->store, &taken);
	if(ordered == STORE_NAME_TAKEN){
		set_item(loader, "token", 0, taken->name);
		return fail(loader, "duplicate name");
	}
	return ordered == STORE_ADDED || fail(loader, "out of memory");
}

bool state_add_previous(struct state_loader *loader, const struct previous_secret *previous)
{
	if(previous->token == NULL){
		return true;
	}
	if(store_hash_in_use(loader->store, previous->hash)){
		set_item(loader, "token", 0, previous->token->name);
		return fail(loader, "'previousHash' is another token's hash");
	}
	if(!store_set_previous(loader->store, previous->token, previous->hash, previous->valid_until)){
		return fail(loader, "out of memory");
	}
	return true;
}

bool state_load_token(struct state_loader *loader, const cJSON *item, int index)
{
	struct previous_secret previous;
	struct token *token = state_parse_token(loader, item, index, &previous);
	return token && state_add_token(loader, token, index) && state_add_previous(loader, &previous);
}

bool state_check_header(struct state_loader *loader, const cJSON *document, int64_t *journal_sequence)
{
	set_item(loader, NULL, 0, NULL);
	if(!cJSON_IsObject(document)){
		return fail(loader, "the top level is not a JSON object");
	}
	const cJSON *version = cJSON_GetObjectItemCaseSensitive(document, "version");
	if(!cJSON_IsNumber(version) || version->valuedouble != STATE_FORMAT_VERSION){
		return fail(loader, "'version' is %s (expected %d)",
				version ? "not supported" : "missing", STATE_FORMAT_VERSION);
	}
	const cJSON *sequence = cJSON_GetObjectItemCaseSensitive(document, "journalSequence");
	*journal_sequence = 0;
	if(sequence){
		if(!cJSON_IsNumber(sequence) || sequence->valuedouble < 0 || sequence->valuedouble > (double)JOURNAL_SEQUENCE_MAX
				|| sequence->valuedouble != (double)(int64_t)sequence->valuedouble){
			return fail(loader, "'journalSequence' is not a whole number");
		}
		*journal_sequence = (int64_t)sequence->valuedouble;
	}
	return true;
}

bool journal_id_is_valid(const char *text)
{
	size_t length = strlen(text);
	return length == JOURNAL_ID_HEX_LEN && strspn(text, "0123456789abcdef") == length;
}

/* An absent member leaves out as "" and *present false. */
static bool read_journal_id(struct state_loader *loader, const cJSON *document, const char *key,
		bool empty_allowed, char out[JOURNAL_ID_HEX_LEN + 1], bool *present)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(document, key);
	out[0] = '\0';
	*present = item != NULL;
	if(item == NULL){
		return true;
	}
	if(!cJSON_IsString(item) || !(journal_id_is_valid(item->valuestring) || (empty_allowed && item->valuestring[0] == '\0'))){
		return fail(loader, "'%s' is not %d lowercase hex digits", key, JOURNAL_ID_HEX_LEN);
	}
	memcpy(out, item->valuestring, strlen(item->valuestring) + 1);
	return true;
}

bool state_is_sequence_number(const cJSON *item, bool zero_allowed)
{
	return cJSON_IsNumber(item) && item->valuedouble >= (zero_allowed ? 0 : 1)
		&& item->valuedouble <= (double)JOURNAL_SEQUENCE_MAX
		&& item->valuedouble == (double)(int64_t)item->valuedouble;
}

static bool read_fleet_position(struct state_loader *loader, const cJSON *document, struct journal_ids *ids)
{
	bool present;
	const cJSON *sequence = cJSON_GetObjectItemCaseSensitive(document, "fleetSequence");
	ids->fleet_sequence = 0;
	if(!read_journal_id(loader, document, "fleetId", false, ids->fleet_id, &present)){
		return false;
	}
	if(sequence == NULL){
		return true;
	}
	if(!state_is_sequence_number(sequence, true)){
		return fail(loader, "'fleetSequence' is not a whole number");
	}
	ids->fleet_sequence = (int64_t)sequence->valuedouble;
	return true;
}

bool state_read_journal_ids(struct state_loader *loader, const cJSON *document, struct journal_ids *ids)
{
	bool present;
	set_item(loader, NULL, 0, NULL);
	return read_journal_id(loader, document, "journalId", false, ids->id, &present)
		&& read_journal_id(loader, document, "previousJournalId", true, ids->previous, &ids->has_previous)
		&& read_fleet_position(loader, document, ids);
}

static bool load_document(struct state_loader *loader, const cJSON *document)
{
	if(!state_check_header(loader, document, &loader->journal_sequence)){
		return false;
	}
	const cJSON *roles = cJSON_GetObjectItemCaseSensitive(document, "roles");
	const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(document, "tokens");
	if(!cJSON_IsArray(roles)){
		return fail(loader, "'roles' is %s", roles ? "not an array" : "missing");
	}
	if(!cJSON_IsArray(tokens)){
		return fail(loader, "'tokens' is %s", tokens ? "not an array" : "missing");
	}
	int index = 0;
	const cJSON *item;
	cJSON_ArrayForEach(item, roles){
		if(!state_load_role(loader, item, index++)){
			return false;
		}
	}
	index = 0;
	cJSON_ArrayForEach(item, tokens){
		if(!state_load_token(loader, item, index++)){
			return false;
		}
	}
	return state_order_tokens(loader);
}

/* ---- bindings of persistent sessions ---- */

_Static_assert(SESSION_TEXT_MAX_BYTES == 65535, "the sentences below say 65535");

/* What is wrong with a clientId or username item, or NULL. */
static const char *session_text_problem(const cJSON *item, bool nullable)
{
	if(item == NULL){
		return "is missing";
	}
	if(nullable && cJSON_IsNull(item)){
		return NULL;
	}
	if(!cJSON_IsString(item)){
		return nullable ? "is not a string or null" : "is not a string";
	}
	size_t length = strlen(item->valuestring);
	if(length == 0 && !nullable){
		return "is empty";
	}
	return length > SESSION_TEXT_MAX_BYTES ? "is longer than 65535 bytes" : NULL;
}

const char *state_client_id_problem(const cJSON *item)
{
	return session_text_problem(item, false);
}

bool state_parse_session(struct state_loader *loader, const cJSON *item, int index, const char **client_id,
		const char **username, unsigned char hash[TOKEN_HASH_LEN])
{
	set_item(loader, "session", index, NULL);
	if(!cJSON_IsObject(item)){
		return fail(loader, "not an object");
	}
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "clientId");
	const char *problem = state_client_id_problem(id);
	if(problem){
		return fail(loader, "'clientId' %s", problem);
	}
	/* A client chose it: named only as a log line may show it. */
	loader->item_name = log_text_escape(id->valuestring, loader->client_id_text);
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "username");
	problem = session_text_problem(name, true);
	if(problem){
		return fail(loader, "'username' %s", problem);
	}
	const cJSON *hash_hex = cJSON_GetObjectItemCaseSensitive(item, "hash");
	if(!cJSON_IsString(hash_hex) || !token_format_hash_from_hex(hash_hex->valuestring, hash)){
		return fail(loader, "'hash' is %s", hash_hex ? "not 64 lowercase hex digits" : "missing");
	}
	*client_id = id->valuestring;
	*username = cJSON_IsNull(name) ? NULL : name->valuestring;
	return true;
}

bool state_load_session(struct state_loader *loader, struct session_records *records, const cJSON *item, int index)
{
	const char *client_id, *username;
	unsigned char hash[TOKEN_HASH_LEN];
	if(!state_parse_session(loader, item, index, &client_id, &username, hash)){
		return false;
	}
	if(session_records_find(records, client_id)){
		return fail(loader, "duplicate clientId");
	}
	return session_records_put(records, client_id, username, hash) || fail(loader, "out of memory");
}

bool state_load_sessions(struct state_loader *loader, struct session_records *records, const cJSON *document)
{
	const cJSON *sessions = cJSON_GetObjectItemCaseSensitive(document, "sessions");
	if(sessions == NULL){
		return true;   /* a file written before bindings were kept */
	}
	set_item(loader, NULL, 0, NULL);
	if(!cJSON_IsArray(sessions)){
		return fail(loader, "'sessions' is not an array");
	}
	int index = 0;
	const cJSON *item;
	cJSON_ArrayForEach(item, sessions){
		if(!state_load_session(loader, records, item, index++)){
			return false;
		}
	}
	return true;
}

cJSON *state_session_to_json(const char *client_id, const char *username, const unsigned char hash[TOKEN_HASH_LEN])
{
	char hash_hex[TOKEN_HASH_HEX_LEN + 1];
	token_format_hash_to_hex(hash, hash_hex);
	cJSON *object = cJSON_CreateObject();
	if(object == NULL
			|| !cJSON_AddStringToObject(object, "clientId", client_id)
			|| !(username ? cJSON_AddStringToObject(object, "username", username)
				: cJSON_AddNullToObject(object, "username"))
			|| !cJSON_AddStringToObject(object, "hash", hash_hex)){
		cJSON_Delete(object);
		return NULL;
	}
	return object;
}

void state_loader_init(struct state_loader *loader, struct store *store, char *problem, size_t problem_len)
{
	memset(loader, 0, sizeof(*loader));
	loader->store = store;
	loader->problem = problem;
	loader->problem_len = problem_len;
}

bool state_from_json(const cJSON *document, struct store *store, char *problem, size_t problem_len)
{
	struct state_loader loader;
	state_loader_init(&loader, store, problem, problem_len);
	if(!load_document(&loader, document)){
		store_clear(store);
		return false;
	}
	return true;
}
