/*
 * The JSON state file (SPEC section 5): save and load, file mode, the
 * strict loader, the lock, and saves that fail half way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "persist.h"
#include "rfc3339.h"
#include "state_format.h"
#include "test_support.h"


#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* A store with every kind of thing the file must keep. */
static void fill_store(struct store *store)
{
	struct role *admin = test_add_role(store, "admin");
	struct role *sensors = test_add_role(store, "sensors");
	test_add_role(store, "empty role");
	test_add_acl(admin, ACL_PUBLISH_CLIENT_SEND, "$CONTROL/tokens/v1", 0, true);
	test_add_acl(admin, ACL_SUBSCRIBE_LITERAL, "$CONTROL/tokens/v1/response", 0, true);
	test_add_acl(sensors, ACL_PUBLISH_CLIENT_SEND, "sensors/+/data", 5, true);
	test_add_acl(sensors, ACL_PUBLISH_CLIENT_SEND, "sensors/secret/#", 10, false);
	test_add_acl(sensors, ACL_PUBLISH_CLIENT_SEND, "sensors/#", 5, false);
	test_add_acl(sensors, ACL_PUBLISH_CLIENT_SEND, "sensors/x", -3, true);
	test_add_acl(sensors, ACL_PUBLISH_CLIENT_RECEIVE, "commands/#", 0, true);
	test_add_acl(sensors, ACL_SUBSCRIBE_PATTERN, "commands/+", 1, true);
	test_add_acl(sensors, ACL_UNSUBSCRIBE_LITERAL, "a/b", 0, false);
	test_add_acl(sensors, ACL_UNSUBSCRIBE_PATTERN, "a/#", 2147483647, true);

	int64_t t2026 = test_time("2026-11-28T10:00:00Z");
	int64_t t2027 = test_time("2027-01-01T00:00:00Z");
	test_add_token(store, "ci-bot", admin, t2026, t2027, TIME_NEVER);
	test_add_token(store, "boiler-7", sensors, t2026, t2027, t2026 + 3600);
	test_add_token(store, "Größe ✓ 😀", sensors, t2026 - 86400, t2026 + 1, t2026);
	/* A requester with characters JSON must escape. */
	unsigned char odd_hash[TOKEN_HASH_LEN];
	memset(odd_hash, 0x5a, sizeof(odd_hash));
	struct token *odd = token_new("quote\"and\\slash", "client \"x\" / é", odd_hash, 0, RFC3339_MAX, RFC3339_MAX);
	assert_non_null(odd);
	store_link_token(store, odd, admin);
}

static void saved_state_loads_back_equal(void **state)
{
	struct persist_fixture *fixture = *state;
	fill_store(&fixture->store);
	test_persist_save(fixture, &fixture->store);
	assert_true(test_file_exists(fixture->path));

	/* As a restarted broker: a new persist, an empty store. */
	persist_close(fixture->persist);
	fixture->persist = persist_open(fixture->path, fixture->error, sizeof(fixture->error));
	assert_non_null(fixture->persist);
	struct store loaded;
	store_init(&loaded);
	bool ok = persist_load(fixture->persist, &loaded, fixture->error, sizeof(fixture->error));
	/* PLUGIN BUG: load refuses every file, see the top of this file. */
	if(!ok){
		fail_msg("persist_load: %s", fixture->error);
	}
	test_assert_stores_equal(&fixture->store, &loaded);

	/* Saving what was loaded writes the same bytes, but for the journal
	 * ids: each snapshot has a new one. */
	char *first = test_read_file(fixture->path, NULL);
	struct test_snapshot before;
	test_strip_journal_ids(fixture->path);
	test_snapshot_take(&before, fixture->path);
	assert_true(persist_save(fixture->persist, &loaded, fixture->error, sizeof(fixture->error)));
	char *second = test_read_file(fixture->path, NULL);
	assert_non_null(first);
	assert_non_null(second);
	assert_string_not_equal(first, second);
	free(first);
	free(second);
	test_strip_journal_ids(fixture->path);
	test_snapshot_assert_unchanged(&before, fixture->path);
	test_snapshot_free(&before);
	store_clear(&loaded);
}

static void saved_file_has_the_documented_shape(void **state)
{
	struct persist_fixture *fixture = *state;
	fill_store(&fixture->store);
	test_persist_save(fixture, &fixture->store);

	/* Read back with cJSON directly, independent of persist_load. */
	char *text = test_read_file(fixture->path, NULL);
	assert_non_null(text);
	assert_null(strstr(text, "secret-of-"));
	cJSON *document = cJSON_Parse(text);
	free(text);
	assert_non_null(document);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(document, "version")->valuedouble, 1);

	const cJSON *roles = cJSON_GetObjectItemCaseSensitive(document, "roles");
	assert_int_equal(cJSON_GetArraySize(roles), 3);
	assert_string_equal(test_string(cJSON_GetArrayItem(roles, 0), "rolename"), "admin");
	assert_string_equal(test_string(cJSON_GetArrayItem(roles, 1), "rolename"), "empty role");
	const cJSON *sensors = cJSON_GetArrayItem(roles, 2);
	assert_string_equal(test_string(sensors, "rolename"), "sensors");
	const cJSON *acls = cJSON_GetObjectItemCaseSensitive(sensors, "acls");
	assert_int_equal(cJSON_GetArraySize(acls), 8);
	const cJSON *first = cJSON_GetArrayItem(acls, 0);
	assert_string_equal(test_string(first, "acltype"), "publishClientSend");
	assert_string_equal(test_string(first, "topic"), "sensors/secret/#");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(first, "priority")->valuedouble, 10);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(first, "allow")));

	const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(document, "tokens");
	assert_int_equal(cJSON_GetArraySize(tokens), 4);
	/* Name order, by bytes (upper case first), which a load puts in both of
	 * the store's orders fastest (token_orders.c). */
	assert_string_equal(test_string(cJSON_GetArrayItem(tokens, 0), "name"), "Größe ✓ 😀");
	const cJSON *boiler = cJSON_GetArrayItem(tokens, 1);
	assert_string_equal(test_string(boiler, "name"), "boiler-7");
	assert_string_equal(test_string(boiler, "role"), "sensors");
	assert_string_equal(test_string(boiler, "requestedBy"), "tester");
	assert_string_equal(test_string(boiler, "issuedAt"), "2026-11-28T10:00:00Z");
	assert_string_equal(test_string(boiler, "validUntil"), "2027-01-01T00:00:00Z");
	assert_string_equal(test_string(boiler, "lastUsed"), "2026-11-28T11:00:00Z");
	assert_int_equal(strlen(test_string(boiler, "hash")), 64);
	const cJSON *bot = cJSON_GetArrayItem(tokens, 2);
	assert_string_equal(test_string(bot, "name"), "ci-bot");
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(bot, "lastUsed")));
	assert_string_equal(test_string(cJSON_GetArrayItem(tokens, 3), "name"), "quote\"and\\slash");
	cJSON_Delete(document);
}

static void state_file_is_private(void **state)
{
	struct persist_fixture *fixture = *state;
	fill_store(&fixture->store);
	mode_t old_umask = umask(0);   /* the mode must not depend on the umask */
	bool ok = persist_save(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error));
	umask(old_umask);
	assert_true(ok);
	struct stat info;
	assert_int_equal(stat(fixture->path, &info), 0);
	assert_int_equal(info.st_mode & 07777, 0600);

	/* Still 0600 after it is replaced. */
	test_persist_save(fixture, &fixture->store);
	assert_int_equal(stat(fixture->path, &info), 0);
	assert_int_equal(info.st_mode & 07777, 0600);
	assert_int_equal(test_count_entries_containing(fixture->dir, ".tmp."), 0);
}

static void missing_file_is_an_empty_store(void **state)
{
	struct persist_fixture *fixture = *state;
	assert_false(test_file_exists(fixture->path));
	assert_true(persist_load(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	assert_int_equal(store_token_count(&fixture->store), 0);
	assert_int_equal(store_role_count(&fixture->store), 0);
	/* Loading does not create it. */
	assert_false(test_file_exists(fixture->path));
	assert_int_equal(test_count_entries_containing(fixture->dir, "tokens.json.tmp"), 0);
}

static void empty_store_round_trips(void **state)
{
	struct persist_fixture *fixture = *state;
	test_persist_save(fixture, &fixture->store);
	assert_true(test_file_exists(fixture->path));
	bool ok = persist_load(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error));
	/* PLUGIN BUG: load refuses every file, see the top of this file. */
	if(!ok){
		fail_msg("persist_load of an empty saved store: %s", fixture->error);
	}
	assert_int_equal(store_token_count(&fixture->store), 0);
	assert_int_equal(store_role_count(&fixture->store), 0);
}

/* ---- files the loader must refuse ---- */

struct corrupt_case {
	const char *what;
	const char *content;
	const char *problem;   /* a substring only this kind of problem has */
};

#define ROLE_ADMIN "{\"rolename\": \"admin\", \"acls\": []}"
#define TOKEN_FIELDS "\"role\": \"admin\", \"requestedBy\": \"alice\", \"issuedAt\": \"2026-11-28T10:00:00Z\", " \
	"\"validUntil\": \"2027-01-01T00:00:00Z\", \"lastUsed\": null"
#define TOKEN(name, hash) "{\"name\": \"" name "\", " TOKEN_FIELDS ", \"hash\": \"" hash "\"}"
#define DOCUMENT(roles, tokens) "{\"version\": 1, \"roles\": [" roles "], \"tokens\": [" tokens "]}\n"
#define ACL_ROLE(acl) "{\"rolename\": \"admin\", \"acls\": [" acl "]}"

/* Parsable JSON, refused for its content. */
static const struct corrupt_case malformed_documents[] = {
	{"top level an array", "[" DOCUMENT(ROLE_ADMIN, "") "]", "top level is not a JSON object"},
	{"top level a string", "\"tokens\"", "top level is not a JSON object"},
	{"version missing", "{\"roles\": [], \"tokens\": []}", "'version' is missing"},
	{"version 2", "{\"version\": 2, \"roles\": [], \"tokens\": []}", "'version' is not supported"},
	{"version a string", "{\"version\": \"1\", \"roles\": [], \"tokens\": []}", "'version' is not supported"},
	{"roles not an array", "{\"version\": 1, \"roles\": {}, \"tokens\": []}", "'roles' is not an array"},
	{"tokens missing", "{\"version\": 1, \"roles\": []}", "'tokens' is missing"},
	{"role without rolename", DOCUMENT("{\"acls\": []}", ""), "role 0: 'rolename' is missing"},
	{"role without acls", DOCUMENT("{\"rolename\": \"admin\"}", ""), "role \"admin\": 'acls' is missing"},
	{"duplicate rolename", DOCUMENT(ROLE_ADMIN ", " ROLE_ADMIN, ""), "role \"admin\": duplicate rolename"},
	{"ACL with unknown acltype",
		DOCUMENT(ACL_ROLE("{\"acltype\": \"publish\", \"topic\": \"a\", \"priority\": 0, \"allow\": true}"), ""),
		"unknown acltype \"publish\""},
	{"ACL with bad filter",
		DOCUMENT(ACL_ROLE("{\"acltype\": \"subscribePattern\", \"topic\": \"a/#/b\", \"priority\": 0, \"allow\": true}"), ""),
		"\"a/#/b\" is not a valid topic filter"},
	{"ACL allow not bool",
		DOCUMENT(ACL_ROLE("{\"acltype\": \"subscribePattern\", \"topic\": \"a/#\", \"priority\": 0, \"allow\": \"true\"}"), ""),
		"'allow' is not a boolean"},
	{"ACL priority not an integer",
		DOCUMENT(ACL_ROLE("{\"acltype\": \"subscribePattern\", \"topic\": \"a/#\", \"priority\": 1.5, \"allow\": true}"), ""),
		"'priority' is not an integer"},
	{"token missing hash",
		DOCUMENT(ROLE_ADMIN, "{\"name\": \"ci-bot\", " TOKEN_FIELDS "}"),
		"token \"ci-bot\": 'hash' is missing"},
	{"hash uppercase",
		DOCUMENT(ROLE_ADMIN, TOKEN("ci-bot", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")),
		"token \"ci-bot\": 'hash' is not 64 lowercase hex digits"},
	{"hash short",
		DOCUMENT(ROLE_ADMIN, TOKEN("ci-bot", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
		"token \"ci-bot\": 'hash' is not 64 lowercase hex digits"},
	{"duplicate token name",
		DOCUMENT(ROLE_ADMIN, TOKEN("ci-bot", HASH_A) ", " TOKEN("ci-bot", HASH_B)),
		"token \"ci-bot\": duplicate name"},
	{"duplicate hash",
		DOCUMENT(ROLE_ADMIN, TOKEN("ci-bot", HASH_A) ", " TOKEN("other-bot", HASH_A)),
		"token \"other-bot\": duplicate hash"},
	{"token whose role does not exist",
		DOCUMENT("{\"rolename\": \"reader\", \"acls\": []}", TOKEN("ci-bot", HASH_A)),
		"token \"ci-bot\": role \"admin\" does not exist"},
	{"bad issuedAt",
		DOCUMENT(ROLE_ADMIN, "{\"name\": \"ci-bot\", \"role\": \"admin\", \"requestedBy\": \"alice\", "
			"\"issuedAt\": \"2026-11-28 10:00:00\", \"validUntil\": \"2027-01-01T00:00:00Z\", "
			"\"lastUsed\": null, \"hash\": \"" HASH_A "\"}"),
		"token \"ci-bot\": 'issuedAt' is not an RFC 3339 time"},
	{"lastUsed a number",
		DOCUMENT(ROLE_ADMIN, "{\"name\": \"ci-bot\", \"role\": \"admin\", \"requestedBy\": \"alice\", "
			"\"issuedAt\": \"2026-11-28T10:00:00Z\", \"validUntil\": \"2027-01-01T00:00:00Z\", "
			"\"lastUsed\": 0, \"hash\": \"" HASH_A "\"}"),
		"token \"ci-bot\": 'lastUsed' is not an RFC 3339 time"},
	{"token name with a control character",
		DOCUMENT(ROLE_ADMIN, TOKEN("ci\\tbot", HASH_A)),
		"token 0: 'name' must be valid UTF-8 without control characters"},
};

/* Writes content to the state file, loads it, and checks the refusal:
 * false, the problem and the file named, nothing loaded, the file (and
 * folder) untouched. Returns the error (malloc'd). */
static char *assert_load_refused(struct persist_fixture *fixture, const struct corrupt_case *c)
{
	test_write_file(fixture->path, c->content, strlen(c->content));
	struct test_snapshot before;
	test_snapshot_take(&before, fixture->path);
	struct store store;
	store_init(&store);
	fixture->error[0] = '\0';
	if(persist_load(fixture->persist, &store, fixture->error, sizeof(fixture->error))){
		fail_msg("%s: the file was loaded", c->what);
	}
	if(strstr(fixture->error, c->problem) == NULL){
		fail_msg("%s: the error \"%s\" does not say \"%s\"", c->what, fixture->error, c->problem);
	}
	if(strstr(fixture->error, fixture->path) == NULL){
		fail_msg("%s: the error \"%s\" does not name the file", c->what, fixture->error);
	}
	assert_int_equal(store_token_count(&store), 0);
	assert_int_equal(store_role_count(&store), 0);
	test_snapshot_assert_unchanged(&before, fixture->path);
	test_snapshot_free(&before);
	assert_int_equal(test_count_entries_containing(fixture->dir, ".tmp."), 0);
	return strdup(fixture->error);
}

static void unparsable_files_are_refused(void **state)
{
	struct persist_fixture *fixture = *state;
	static const struct corrupt_case cases[] = {
		{"not JSON", "tokens: none\n", "is not valid JSON"},
		{"truncated JSON", "{\"version\": 1, \"roles\": [", "is not valid JSON"},
		{"empty file", "", "is not valid JSON"},
		{"two documents", "{\"version\": 1, \"roles\": [], \"tokens\": []} {}", "is not valid JSON"},
	};
	for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++){
		free(assert_load_refused(fixture, &cases[i]));
	}
}

static void malformed_documents_are_refused_with_their_own_message(void **state)
{
	struct persist_fixture *fixture = *state;
	size_t count = sizeof(malformed_documents) / sizeof(malformed_documents[0]);
	char *errors[sizeof(malformed_documents) / sizeof(malformed_documents[0])];
	for(size_t i = 0; i < count; i++){
		errors[i] = assert_load_refused(fixture, &malformed_documents[i]);
	}
	/* Different problems, different messages. */
	for(size_t i = 0; i < count; i++){
		for(size_t j = i + 1; j < count; j++){
			if(strcmp(malformed_documents[i].problem, malformed_documents[j].problem) != 0
					&& strcmp(errors[i], errors[j]) == 0){
				fail_msg("\"%s\" and \"%s\" give the same error: %s",
						malformed_documents[i].what, malformed_documents[j].what, errors[i]);
			}
		}
	}
	for(size_t i = 0; i < count; i++){
		free(errors[i]);
	}
}

/* The same documents through the format layer alone, which the load bug
 * does not reach: each problem is found and named, and the store is left
 * empty. */
static void state_format_names_each_problem(void **state)
{
	(void)state;
	for(size_t i = 0; i < sizeof(malformed_documents) / sizeof(malformed_documents[0]); i++){
		const struct corrupt_case *c = &malformed_documents[i];
		cJSON *document = cJSON_Parse(c->content);
		if(document == NULL){
			fail_msg("%s: test document is not JSON", c->what);
		}
		struct store store;
		store_init(&store);
		char problem[512] = "";
		if(state_from_json(document, &store, problem, sizeof(problem))){
			fail_msg("%s: accepted", c->what);
		}
		if(strstr(problem, c->problem) == NULL){
			fail_msg("%s: the problem \"%s\" does not say \"%s\"", c->what, problem, c->problem);
		}
		assert_int_equal(store_token_count(&store), 0);
		assert_int_equal(store_role_count(&store), 0);
		cJSON_Delete(document);
	}
}

/* The document text through the format layer alone, which must accept it
 * into store (initialised here; the caller clears it). */
static void load_through_the_format(const char *text, const char *what, struct store *store)
{
	cJSON *document = cJSON_Parse(text);
	if(document == NULL){
		fail_msg("%s: test document is not JSON", what);
	}
	store_init(store);
	char problem[512] = "";
	if(!state_from_json(document, store, problem, sizeof(problem))){
		fail_msg("%s refused: %s", what, problem);
	}
	cJSON_Delete(document);
}

static void a_valid_document_with_unknown_fields_is_accepted(void **state)
{
	(void)state;
	/* The documented shape, in any order, with fields the plugin does not know. */
	const char *text = "{\"tokens\": [{\"hash\": \"" HASH_A "\", \"name\": \"ci-bot\", " TOKEN_FIELDS ", \"colour\": 3}],"
		" \"version\": 1, \"comment\": \"x\","
		" \"roles\": [{\"acls\": [{\"acltype\": \"subscribeLiteral\", \"topic\": \"a/b\", \"priority\": 0, \"allow\": false}],"
		" \"rolename\": \"admin\"}]}";
	struct store store;
	load_through_the_format(text, "the document", &store);
	struct token *token = store_find_token_by_name(&store, "ci-bot");
	assert_non_null(token);
	assert_string_equal(token->role->name, "admin");
	assert_int_equal(token->role->token_count, 1);
	assert_int_equal(token->last_used, TIME_NEVER);
	assert_int_equal(token->valid_until, test_time("2027-01-01T00:00:00Z"));
	assert_non_null(role_find_acl(token->role, ACL_SUBSCRIBE_LITERAL, "a/b"));
	store_clear(&store);
}

/* ---- the lock ---- */

static void second_open_of_the_same_file_is_refused(void **state)
{
	struct persist_fixture *fixture = *state;
	char error[1024] = "";
	struct persist *second = persist_open(fixture->path, error, sizeof(error));
	assert_null(second);
	if(strstr(error, "another broker") == NULL || strstr(error, fixture->path) == NULL){
		fail_msg("unexpected error: %s", error);
	}
	/* Released at close: the next broker can start. */
	persist_close(fixture->persist);
	fixture->persist = persist_open(fixture->path, error, sizeof(error));
	if(fixture->persist == NULL){
		fail_msg("reopen after close: %s", error);
	}
	/* A different state file in the same folder has its own lock. */
	char *other_path = test_path(fixture->dir, "other.json");
	struct persist *other = persist_open(other_path, error, sizeof(error));
	assert_non_null(other);
	persist_close(other);
	free(other_path);
}

/* ---- saves that fail ---- */

/* Saves a first state with the real system calls, changes the store, and
 * saves again through io, which must fail at step. */
static void assert_failed_save_changes_nothing(struct persist_fixture *fixture, const struct persist_io *io,
		const char *step, const char *reason)
{
	fill_store(&fixture->store);
	test_persist_save(fixture, &fixture->store);
	struct test_snapshot before;
	test_snapshot_take(&before, fixture->path);
	struct stat info_before, info_after;
	assert_int_equal(stat(fixture->path, &info_before), 0);

	struct role *extra = test_add_role(&fixture->store, "added-later");
	test_add_token(&fixture->store, "added-later", extra, 5, 6, TIME_NEVER);
	persist_set_io(fixture->persist, io);
	test_io_calls = 0;
	fixture->error[0] = '\0';
	assert_false(persist_save(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	assert_true(test_io_calls > 0);   /* the fake was used */

	if(strstr(fixture->error, step) == NULL || strstr(fixture->error, reason) == NULL
			|| strstr(fixture->error, fixture->path) == NULL){
		fail_msg("the error \"%s\" does not name the file, \"%s\" and \"%s\"", fixture->error, step, reason);
	}
	test_snapshot_assert_unchanged(&before, fixture->path);
	assert_int_equal(stat(fixture->path, &info_after), 0);
	assert_int_equal(info_after.st_ino, info_before.st_ino);   /* not replaced either */
	assert_int_equal(test_count_entries_containing(fixture->dir, ".tmp."), 0);
	test_snapshot_free(&before);

	/* With the real calls back, the same state saves. */
	persist_set_io(fixture->persist, NULL);
	test_persist_save(fixture, &fixture->store);
	char *text = test_read_file(fixture->path, NULL);
	assert_non_null(strstr(text, "added-later"));
	free(text);
	assert_int_equal(test_count_entries_containing(fixture->dir, ".tmp."), 0);
}

static void failed_write_leaves_the_old_file(void **state)
{
	assert_failed_save_changes_nothing(*state, &test_io_write_enospc, "write failed", "No space left on device");
}

static void failed_fsync_leaves_the_old_file(void **state)
{
	assert_failed_save_changes_nothing(*state, &test_io_fsync_eio, "fsync failed", "Input/output error");
}

static void failed_rename_leaves_the_old_file(void **state)
{
	assert_failed_save_changes_nothing(*state, &test_io_rename_eacces, "rename failed", "Permission denied");
}

static void failed_first_save_creates_no_file(void **state)
{
	struct persist_fixture *fixture = *state;
	fill_store(&fixture->store);
	const struct persist_io *ios[] = {&test_io_write_enospc, &test_io_fsync_eio, &test_io_rename_eacces};
	for(size_t i = 0; i < 3; i++){
		persist_set_io(fixture->persist, ios[i]);
		assert_false(persist_save(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
		assert_false(test_file_exists(fixture->path));
		assert_int_equal(test_count_entries_containing(fixture->dir, ".tmp."), 0);
	}
}

static void short_writes_still_write_everything(void **state)
{
	struct persist_fixture *fixture = *state;
	fill_store(&fixture->store);
	persist_set_io(fixture->persist, &test_io_short_writes);
	test_persist_save(fixture, &fixture->store);
	assert_true(test_io_calls > 100);   /* one byte per call */

	cJSON *written = test_read_json(fixture->path);
	/* The snapshot also says which journal changes it holds. */
	assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(written, "journalSequence")));
	cJSON_DeleteItemFromObjectCaseSensitive(written, "journalSequence");
	/* And which journal may follow it. */
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(written, "journalId");
	assert_true(cJSON_IsString(id) && strlen(id->valuestring) == 32);
	cJSON_DeleteItemFromObjectCaseSensitive(written, "journalId");
	cJSON_DeleteItemFromObjectCaseSensitive(written, "previousJournalId");
	cJSON *expected = test_state_json(&fixture->store);
	assert_true(cJSON_Compare(written, expected, true));
	cJSON_Delete(written);
	cJSON_Delete(expected);
}

/* ACL topics no command accepts (control characters, noncharacters,
 * invalid UTF-8) still load from a state file: test_control.c has the
 * commands refusing the same ones. */
static void stored_topics_no_command_accepts_still_load(void **state)
{
	(void)state;
	static const struct {
		const char *json;      /* as the file spells it */
		const char *topic;     /* as loaded */
	} topics[] = {
		{"a\\tb", "a\tb"}, {"\\u0001/#", "\x01/#"}, {"a\\u007f", "a\x7f"}, {"\\u0080", "\xc2\x80"},
		{"\\uffff", "\xef\xbf\xbf"}, {"\\ufdd0", "\xef\xb7\x90"}, {"\xc0\xaf", "\xc0\xaf"}, {"a\xff", "a\xff"},
	};
	for(size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++){
		char *text = test_format(DOCUMENT(ACL_ROLE("{\"acltype\": \"subscribePattern\", \"topic\": \"%s\", "
				"\"priority\": 0, \"allow\": true}"), ""), topics[i].json);
		char *what = test_format("topic %zu", i);
		struct store store;
		load_through_the_format(text, what, &store);
		assert_non_null(role_find_acl(store_find_role(&store, "admin"), ACL_SUBSCRIBE_PATTERN, topics[i].topic));
		store_clear(&store);
		free(what);
		free(text);
	}
}

#define PERSIST_TEST(f) cmocka_unit_test_setup_teardown(f, test_persist_setup, test_persist_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		PERSIST_TEST(saved_state_loads_back_equal),
		PERSIST_TEST(saved_file_has_the_documented_shape),
		PERSIST_TEST(state_file_is_private),
		PERSIST_TEST(missing_file_is_an_empty_store),
		PERSIST_TEST(empty_store_round_trips),
		PERSIST_TEST(unparsable_files_are_refused),
		PERSIST_TEST(malformed_documents_are_refused_with_their_own_message),
		cmocka_unit_test(state_format_names_each_problem),
		cmocka_unit_test(a_valid_document_with_unknown_fields_is_accepted),
		cmocka_unit_test(stored_topics_no_command_accepts_still_load),
		PERSIST_TEST(second_open_of_the_same_file_is_refused),
		PERSIST_TEST(failed_write_leaves_the_old_file),
		PERSIST_TEST(failed_fsync_leaves_the_old_file),
		PERSIST_TEST(failed_rename_leaves_the_old_file),
		PERSIST_TEST(failed_first_save_creates_no_file),
		PERSIST_TEST(short_writes_still_write_everything),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
