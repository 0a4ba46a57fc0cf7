/*
 * The control protocol (SPEC section 4) through control_handle_request,
 * with a real state file in a temporary folder and a fake clock: replies,
 * error codes, changes undone when the save fails, the log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mosquitto.h>

#include "control.h"
#include "token_format.h"
#include "test_support.h"

#define READER_ROLE "{\"command\": \"createRole\", \"rolename\": \"reader\", \"acls\": [" \
	"{\"acltype\": \"subscribePattern\", \"topic\": \"sensors/#\", \"allow\": true}]}"
#define CREATE_CI_BOT "{\"command\": \"createToken\", \"name\": \"ci-bot\", \"role\": \"reader\", " \
	"\"validUntil\": \"2027-01-01T00:00:00Z\"}"

static int setup(void **state)
{
	struct test_plugin *test_plugin = test_plugin_new();
	cJSON_Delete(test_command_ok(&test_plugin->plugin, "alice", READER_ROLE));
	*state = test_plugin;
	return 0;
}


/* A createToken in role "reader" that must succeed; returns its secret (malloc'd). */
static char *create_token(struct tokens_plugin *plugin, const char *name, const char *valid_until)
{
	return test_create_token(plugin, name, "reader", valid_until);
}

static int total_count(struct tokens_plugin *plugin, const char *list_command)
{
	cJSON *data = test_command_ok(plugin, "alice", list_command);
	const cJSON *total = cJSON_GetObjectItemCaseSensitive(data, "totalCount");
	assert_true(cJSON_IsNumber(total));
	int count = (int)total->valuedouble;
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(data, "tokens")) > count, 0);
	cJSON_Delete(data);
	return count;
}

static int token_count(struct tokens_plugin *plugin)
{
	return total_count(plugin, "{\"command\": \"listTokens\"}");
}

/* The role's "acls" array as compact JSON (malloc'd). */
static char *role_acls(struct tokens_plugin *plugin, const char *rolename)
{
	char *command = test_format("{\"command\": \"getRole\", \"rolename\": \"%s\"}", rolename);
	cJSON *data = test_command_ok(plugin, "alice", command);
	free(command);
	assert_string_equal(test_string(data, "rolename"), rolename);
	char *text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(data, "acls"));
	assert_non_null(text);
	cJSON_Delete(data);
	return text;
}

/* ---- createToken ---- */

static void create_token_returns_metadata_and_secret_once(void **state)
{
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;

	/* requestedBy in the payload is ignored: the plugin sets it. */
	cJSON *response = test_command(plugin, "alice",
			"{\"command\": \"createToken\", \"name\": \"ci-bot\", \"role\": \"reader\", "
			"\"validUntil\": \"2027-01-01T02:00:00+02:00\", \"correlationData\": \"42\", \"requestedBy\": \"mallory\"}");
	test_assert_success(response);
	assert_string_equal(test_string(response, "command"), "createToken");
	assert_string_equal(test_string(response, "correlationData"), "42");
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(response, "data");
	assert_non_null(data);
	assert_string_equal(test_string(data, "name"), "ci-bot");
	assert_string_equal(test_string(data, "role"), "reader");
	assert_string_equal(test_string(data, "requestedBy"), "alice");
	assert_string_equal(test_string(data, "issuedAt"), "2026-11-28T10:00:00Z");
	assert_string_equal(test_string(data, "validUntil"), "2027-01-01T00:00:00Z");
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(data, "lastUsed")));
	assert_string_equal(test_string(data, "status"), "valid");

	const char *secret = test_string(data, "token");
	assert_int_equal(token_format_check(secret), TOKEN_WELL_FORMED);
	unsigned char hash[TOKEN_HASH_LEN];
	char hash_hex[TOKEN_HASH_HEX_LEN + 1];
	token_format_hash(secret, hash);
	token_format_hash_to_hex(hash, hash_hex);
	assert_string_equal(test_string(data, "hash"), hash_hex);

	/* Listed, and fetched by name and by hash, always without the secret. */
	cJSON *list = test_command_ok(plugin, "bob", "{\"command\": \"listTokens\"}");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(list, "totalCount")->valuedouble, 1);
	const cJSON *listed = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(list, "tokens"), 0);
	assert_string_equal(test_string(listed, "hash"), hash_hex);
	assert_string_equal(test_string(listed, "requestedBy"), "alice");
	assert_null(cJSON_GetObjectItemCaseSensitive(listed, "token"));
	cJSON_Delete(list);

	cJSON *by_name = test_command_ok(plugin, "bob", "{\"command\": \"getToken\", \"name\": \"ci-bot\"}");
	char *command = test_format("{\"command\": \"getToken\", \"hash\": \"%s\"}", hash_hex);
	cJSON *by_hash = test_command_ok(plugin, "bob", command);
	free(command);
	assert_true(cJSON_Compare(by_name, by_hash, true));
	assert_string_equal(test_string(by_name, "hash"), hash_hex);
	assert_string_equal(test_string(by_name, "status"), "valid");
	assert_null(cJSON_GetObjectItemCaseSensitive(by_name, "token"));
	cJSON_Delete(by_name);
	cJSON_Delete(by_hash);

	/* On disk (in the journal) before the reply: the hash, never the secret. */
	char *file = test_read_file(test_plugin->journal_path, NULL);
	assert_non_null(file);
	assert_non_null(strstr(file, hash_hex));
	assert_null(strstr(file, secret));
	assert_null(strstr(file, secret + 5));
	const char *line = strstr(file, "{\"op\":\"createToken\"");
	assert_non_null(line);
	cJSON *document = cJSON_ParseWithLength(line, strcspn(line, "\n"));
	free(file);
	assert_non_null(document);
	const cJSON *saved = cJSON_GetObjectItemCaseSensitive(document, "token");
	assert_string_equal(test_string(saved, "name"), "ci-bot");
	assert_string_equal(test_string(saved, "requestedBy"), "alice");
	assert_string_equal(test_string(saved, "hash"), hash_hex);
	cJSON_Delete(document);
	cJSON_Delete(response);
}

static void each_created_token_is_new(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	char *first = create_token(plugin, "one", "2027-01-01T00:00:00Z");
	char *second = create_token(plugin, "two", "2027-01-01T00:00:00Z");
	assert_string_not_equal(first, second);
	free(first);
	free(second);
	assert_int_equal(token_count(plugin), 2);
}

/* ---- error codes ---- */

struct error_case {
	const char *command;
	const char *code;
	const char *fragment;
};

/* Runs each case and checks its error, and that nothing changed on disk. */
static void assert_errors(struct test_plugin *test_plugin, const struct error_case *cases, size_t count)
{
	struct tokens_plugin *plugin = &test_plugin->plugin;
	struct test_snapshot before;
	test_snapshot_take(&before, test_plugin->state_path);
	int tokens_before = token_count(plugin);
	for(size_t i = 0; i < count; i++){
		cJSON *response = test_command(plugin, "alice", cases[i].command);
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(response, "code");
		const cJSON *error = cJSON_GetObjectItemCaseSensitive(response, "error");
		if(!cJSON_IsString(code) || strcmp(code->valuestring, cases[i].code) != 0 || !cJSON_IsString(error)
				|| (cases[i].fragment && strstr(error->valuestring, cases[i].fragment) == NULL)){
			char *text = cJSON_PrintUnformatted(response);
			fail_msg("%s\n  expected code \"%s\" with \"%s\", got %s", cases[i].command, cases[i].code,
					cases[i].fragment ? cases[i].fragment : "", text);
		}
		assert_null(cJSON_GetObjectItemCaseSensitive(response, "data"));
		cJSON_Delete(response);
	}
	test_snapshot_assert_unchanged(&before, test_plugin->state_path);
	test_snapshot_free(&before);
	assert_int_equal(token_count(plugin), tokens_before);
}

static void bad_fields_are_invalid(void **state)
{
	struct test_plugin *test_plugin = *state;
	free(create_token(&test_plugin->plugin, "ci-bot", "2027-01-01T00:00:00Z"));
	static const struct error_case cases[] = {
		{"{\"command\": \"createToken\", \"role\": \"reader\", \"validUntil\": \"2027-01-01T00:00:00Z\"}", "invalid", "'name'"},
		{"{\"command\": \"createToken\", \"name\": 7, \"role\": \"reader\", \"validUntil\": \"2027-01-01T00:00:00Z\"}", "invalid", "'name'"},
		{"{\"command\": \"createToken\", \"name\": \"\", \"role\": \"reader\", \"validUntil\": \"2027-01-01T00:00:00Z\"}", "invalid", "'name'"},
		{"{\"command\": \"createToken\", \"name\": \"0123456789012345678901234567890\", \"role\": \"reader\", "
			"\"validUntil\": \"2027-01-01T00:00:00Z\"}", "invalid", "'name'"},
		{"{\"command\": \"createToken\", \"name\": \" padded\", \"role\": \"reader\", \"validUntil\": \"2027-01-01T00:00:00Z\"}", "invalid", "'name'"},
		{"{\"command\": \"createToken\", \"name\": \"tab\\there\", \"role\": \"reader\", \"validUntil\": \"2027-01-01T00:00:00Z\"}", "invalid", "'name'"},
		{"{\"command\": \"createToken\", \"name\": \"x\", \"validUntil\": \"2027-01-01T00:00:00Z\"}", "invalid", "'role'"},
		{"{\"command\": \"createToken\", \"name\": \"x\", \"role\": \"ghost\", \"validUntil\": \"2027-01-01T00:00:00Z\"}", "invalid", "ghost"},
		{"{\"command\": \"createToken\", \"name\": \"x\", \"role\": \"reader\"}", "invalid", "'validUntil'"},
		{"{\"command\": \"createToken\", \"name\": \"x\", \"role\": \"reader\", \"validUntil\": \"tomorrow\"}", "invalid", "'validUntil'"},
		{"{\"command\": \"createToken\", \"name\": \"x\", \"role\": \"reader\", \"validUntil\": 1798761600}", "invalid", "'validUntil'"},
		/* Not in the future: before now, and now itself (the fake clock's 2026-11-28T10:00:00Z). */
		{"{\"command\": \"createToken\", \"name\": \"x\", \"role\": \"reader\", \"validUntil\": \"2026-01-01T00:00:00Z\"}", "invalid", "'validUntil'"},
		{"{\"command\": \"createToken\", \"name\": \"x\", \"role\": \"reader\", \"validUntil\": \"2026-11-28T10:00:00Z\"}", "invalid", "'validUntil'"},
		{"{\"command\": \"getToken\"}", "invalid", "'hash'"},
		{"{\"command\": \"getToken\", \"name\": \"ci-bot\", \"hash\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", "invalid", "'name'"},
		{"{\"command\": \"getToken\", \"hash\": \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}", "invalid", "'hash'"},
		{"{\"command\": \"revokeToken\", \"hash\": \"abc\"}", "invalid", "'hash'"},
		{"{\"command\": \"revokeToken\", \"name\": 5}", "invalid", "'name'"},
		{"{\"command\": \"listTokens\", \"count\": 0}", "invalid", "'count'"},
		{"{\"command\": \"listTokens\", \"count\": \"1\"}", "invalid", "'count'"},
		{"{\"command\": \"listTokens\", \"count\": 1.5}", "invalid", "'count'"},
		{"{\"command\": \"listTokens\", \"offset\": -1}", "invalid", "'offset'"},
		{"{\"command\": \"listTokens\", \"status\": \"expired\"}", "invalid", "'status'"},
		{"{\"command\": \"createRole\"}", "invalid", "'rolename'"},
		{"{\"command\": \"createRole\", \"rolename\": \"w\", \"acls\": {}}", "invalid", "'acls'"},
		{"{\"command\": \"createRole\", \"rolename\": \"w\", \"acls\": [{\"acltype\": \"subscribePattern\", \"topic\": \"a/#\"}]}",
			"invalid", "'allow'"},
		{"{\"command\": \"addRoleACL\", \"rolename\": \"reader\", \"acltype\": \"subscribePattern\", \"topic\": \"a/#\"}", "invalid", "'allow'"},
		{"{\"command\": \"addRoleACL\", \"rolename\": \"reader\", \"acltype\": \"subscribePattern\", \"topic\": \"a/#\", "
			"\"allow\": \"true\"}", "invalid", "'allow'"},
		{"{\"command\": \"addRoleACL\", \"rolename\": \"reader\", \"acltype\": \"publish\", \"topic\": \"a/#\", \"allow\": true}",
			"invalid", "'acltype'"},
		{"{\"command\": \"addRoleACL\", \"rolename\": \"reader\", \"acltype\": \"subscribePattern\", \"topic\": \"a/#/b\", "
			"\"allow\": true}", "invalid", "'topic'"},
		{"{\"command\": \"addRoleACL\", \"rolename\": \"reader\", \"acltype\": \"subscribePattern\", \"topic\": \"a/#\", "
			"\"allow\": true, \"priority\": 1.5}", "invalid", "'priority'"},
		{"{\"command\": \"listRoles\", \"correlationData\": 42}", "invalid", "'correlationData'"},
		/* The texts of the field getters, in full. */
		{"{\"command\": \"rotateToken\"}", "invalid", "Give exactly one of the fields 'hash' and 'name'"},
		{"{\"command\": \"rotateToken\", \"hash\": 5}", "invalid", "Field 'hash' must be a string"},
		{"{\"command\": \"rotateToken\", \"name\": \"ci-bot\", \"validUntil\": 5}", "invalid",
			"Field 'validUntil' must be a string"},
		{"{\"command\": \"rotateToken\", \"name\": \"ci-bot\", \"validUntil\": \"soon\"}", "invalid",
			"Field 'validUntil' must be an RFC 3339 time between 1970 and 9999, such as 2027-01-01T00:00:00Z"},
		{"{\"command\": \"rotateToken\", \"name\": \"ci-bot\", \"validUntil\": \"2026-01-01T00:00:00Z\"}", "invalid",
			"Field 'validUntil' must be in the future"},
		{"{\"command\": \"createRole\", \"rolename\": \"w\", \"acls\": \"a/#\"}", "invalid", "Field 'acls' must be an array"},
		{"{\"command\": \"frobnicate\"}", "invalid", "frobnicate"},
		{"{\"command\": 3}", "invalid", "'command'"},
		{"{\"name\": \"x\"}", "invalid", "'command'"},
	};
	assert_errors(test_plugin, cases, sizeof(cases) / sizeof(cases[0]));
}

/* What only a state file may hold (test_persist.c loads the same topics):
 * a new ACL's topic is valid UTF-8 without control characters or
 * noncharacters, and not empty. */
static void topics_only_a_state_file_may_hold_are_invalid(void **state)
{
	struct test_plugin *test_plugin = *state;
	static const char *const topics[] = {"a\\tb", "\\u0001/#", "a\\u007f", "\\u0080", "\\uffff", "\\ufdd0", "\xc0\xaf", ""};
	size_t count = sizeof(topics) / sizeof(topics[0]);
	struct error_case cases[2 * sizeof(topics) / sizeof(topics[0])];
	char *commands[2 * sizeof(topics) / sizeof(topics[0])];
	for(size_t i = 0; i < count; i++){
		commands[2 * i] = test_format("{\"command\": \"addRoleACL\", \"rolename\": \"reader\", "
				"\"acltype\": \"subscribePattern\", \"topic\": \"%s\", \"allow\": true}", topics[i]);
		commands[2 * i + 1] = test_format("{\"command\": \"createRole\", \"rolename\": \"w\", \"acls\": "
				"[{\"acltype\": \"subscribePattern\", \"topic\": \"%s\", \"allow\": true}]}", topics[i]);
		for(size_t j = 2 * i; j < 2 * i + 2; j++){
			cases[j] = (struct error_case){commands[j], "invalid", "Field 'topic' must be a valid MQTT topic filter"};
		}
	}
	assert_errors(test_plugin, cases, 2 * count);
	for(size_t i = 0; i < 2 * count; i++){
		free(commands[i]);
	}
}

static void unknown_targets_are_not_found(void **state)
{
	struct test_plugin *test_plugin = *state;
	free(create_token(&test_plugin->plugin, "ci-bot", "2027-01-01T00:00:00Z"));
	static const struct error_case cases[] = {
		{"{\"command\": \"getToken\", \"name\": \"ci-bot2\"}", "notFound", NULL},
		{"{\"command\": \"getToken\", \"name\": \"CI-BOT\"}", "notFound", NULL},
		{"{\"command\": \"getToken\", \"hash\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", "notFound", NULL},
		{"{\"command\": \"revokeToken\", \"name\": \"nobody\"}", "notFound", NULL},
		{"{\"command\": \"getRole\", \"rolename\": \"writer\"}", "notFound", NULL},
		{"{\"command\": \"deleteRole\", \"rolename\": \"writer\"}", "notFound", NULL},
		{"{\"command\": \"addRoleACL\", \"rolename\": \"writer\", \"acltype\": \"subscribePattern\", \"topic\": \"a/#\", "
			"\"allow\": true}", "notFound", NULL},
		{"{\"command\": \"removeRoleACL\", \"rolename\": \"writer\", \"acltype\": \"subscribePattern\", \"topic\": \"sensors/#\"}",
			"notFound", NULL},
		/* The role exists, the ACL does not (same topic, other type). */
		{"{\"command\": \"removeRoleACL\", \"rolename\": \"reader\", \"acltype\": \"subscribeLiteral\", \"topic\": \"sensors/#\"}",
			"notFound", NULL},
	};
	assert_errors(test_plugin, cases, sizeof(cases) / sizeof(cases[0]));
}

static void taken_names_are_exists(void **state)
{
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;
	cJSON *first = test_command_ok(plugin, "alice", CREATE_CI_BOT);
	static const struct error_case cases[] = {
		{CREATE_CI_BOT, "exists", NULL},
		{"{\"command\": \"createRole\", \"rolename\": \"reader\"}", "exists", NULL},
		{"{\"command\": \"addRoleACL\", \"rolename\": \"reader\", \"acltype\": \"subscribePattern\", \"topic\": \"sensors/#\", "
			"\"allow\": false, \"priority\": 3}", "exists", NULL},
	};
	assert_errors(test_plugin, cases, sizeof(cases) / sizeof(cases[0]));

	/* The existing token is untouched. */
	cJSON *now = test_command_ok(plugin, "alice", "{\"command\": \"getToken\", \"name\": \"ci-bot\"}");
	assert_string_equal(test_string(now, "hash"), test_string(first, "hash"));
	assert_string_equal(test_string(now, "issuedAt"), test_string(first, "issuedAt"));
	cJSON_Delete(now);
	cJSON_Delete(first);
}

static void role_in_use_is_not_deleted(void **state)
{
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;
	free(create_token(plugin, "ci-bot", "2027-01-01T00:00:00Z"));
	static const struct error_case cases[] = {
		{"{\"command\": \"deleteRole\", \"rolename\": \"reader\"}", "inUse", NULL},
	};
	assert_errors(test_plugin, cases, 1);
	char *acls = role_acls(plugin, "reader");
	free(acls);

	/* Once its token is revoked, it can go. */
	cJSON_Delete(test_command_ok(plugin, "alice", "{\"command\": \"revokeToken\", \"name\": \"ci-bot\"}"));
	cJSON_Delete(test_command_ok(plugin, "alice", "{\"command\": \"deleteRole\", \"rolename\": \"reader\"}"));
	cJSON *response = test_command(plugin, "alice", "{\"command\": \"getRole\", \"rolename\": \"reader\"}");
	test_assert_error(response, "notFound", NULL);
	cJSON_Delete(response);
}

/* ---- storage failures ---- */

/* A change is an appended, fsync'd journal line: no rename involved. */
static const struct persist_io *const failing_ios[] = {
	&test_io_write_enospc, &test_io_fsync_eio,
};
static const char *const failing_steps[] = {"write failed", "fsync failed"};
#define FAILING_IO_COUNT (sizeof(failing_ios) / sizeof(failing_ios[0]))

static void failed_save_of_a_new_token_changes_nothing(void **state)
{
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;
	free(create_token(plugin, "existing", "2027-01-01T00:00:00Z"));
	for(size_t i = 0; i < FAILING_IO_COUNT; i++){
		struct test_snapshot before, journal_before;
		test_snapshot_take(&before, test_plugin->state_path);
		test_snapshot_take(&journal_before, test_plugin->journal_path);
		test_log_reset();
		persist_set_io(plugin->persist, failing_ios[i]);

		cJSON *response = test_command(plugin, "alice", CREATE_CI_BOT);
		test_assert_error(response, "storage", failing_steps[i]);
		assert_null(cJSON_GetObjectItemCaseSensitive(response, "data"));
		cJSON_Delete(response);
		persist_set_io(plugin->persist, NULL);

		/* Not in memory: not listed, not found, the role not counting it. */
		assert_int_equal(token_count(plugin), 1);
		response = test_command(plugin, "alice", "{\"command\": \"getToken\", \"name\": \"ci-bot\"}");
		test_assert_error(response, "notFound", NULL);
		cJSON_Delete(response);
		assert_int_equal(store_find_role(&plugin->store, "reader")->token_count, 1);
		/* Not on disk: the journal has not grown by a partial line either. */
		test_snapshot_assert_unchanged(&before, test_plugin->state_path);
		test_snapshot_assert_unchanged(&journal_before, test_plugin->journal_path);
		test_snapshot_free(&before);
		test_snapshot_free(&journal_before);
		assert_int_equal(test_count_entries_containing(test_plugin->dir, ".tmp."), 0);
		/* Logged as an error, not as a change. */
		int line = test_log_find("tokens: ");
		assert_true(line >= 0);
		assert_int_equal(test_log_level(line), MOSQ_LOG_ERR);
		assert_non_null(strstr(test_log_text(), failing_steps[i]));
		assert_null(strstr(test_log_text(), "| createToken |"));
	}
	/* The name is free: creating it works once the disk does. */
	free(create_token(plugin, "ci-bot", "2027-01-01T00:00:00Z"));
	assert_int_equal(token_count(plugin), 2);
}

static void failed_save_of_a_revoke_keeps_the_token(void **state)
{
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;
	cJSON *created = test_command_ok(plugin, "alice", CREATE_CI_BOT);
	char *hash = strdup(test_string(created, "hash"));
	cJSON_Delete(created);

	struct test_snapshot before;
	test_snapshot_take(&before, test_plugin->state_path);
	persist_set_io(plugin->persist, &test_io_write_enospc);
	cJSON *response = test_command(plugin, "alice", "{\"command\": \"revokeToken\", \"name\": \"ci-bot\"}");
	test_assert_error(response, "storage", "write failed");
	cJSON_Delete(response);
	persist_set_io(plugin->persist, NULL);

	test_snapshot_assert_unchanged(&before, test_plugin->state_path);
	test_snapshot_free(&before);
	assert_int_equal(token_count(plugin), 1);
	char *command = test_format("{\"command\": \"getToken\", \"hash\": \"%s\"}", hash);
	cJSON *data = test_command_ok(plugin, "alice", command);
	free(command);
	assert_string_equal(test_string(data, "name"), "ci-bot");
	cJSON_Delete(data);
	data = test_command_ok(plugin, "alice", "{\"command\": \"getToken\", \"name\": \"ci-bot\"}");
	assert_string_equal(test_string(data, "hash"), hash);
	cJSON_Delete(data);
	assert_int_equal(store_find_role(&plugin->store, "reader")->token_count, 1);

	/* And the revoke goes through once the disk works. */
	data = test_command_ok(plugin, "alice", "{\"command\": \"revokeToken\", \"name\": \"ci-bot\"}");
	assert_string_equal(test_string(data, "name"), "ci-bot");
	assert_string_equal(test_string(data, "hash"), hash);
	assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(data, "disconnected")));
	cJSON_Delete(data);
	assert_int_equal(token_count(plugin), 0);
	/* The journal records the revoke (once: the failed attempt left nothing). */
	char *file = test_read_file(test_plugin->journal_path, NULL);
	assert_non_null(file);
	char *revoke = test_format("{\"op\":\"revokeToken\",\"hash\":\"%s\"", hash);
	const char *found = strstr(file, revoke);
	assert_non_null(found);
	assert_null(strstr(found + 1, revoke));
	free(revoke);
	free(file);
	free(hash);
}

static void failed_save_of_an_acl_removal_keeps_the_order(void **state)
{
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;
	cJSON_Delete(test_command_ok(plugin, "alice",
			"{\"command\": \"createRole\", \"rolename\": \"ordered\", \"acls\": ["
			"{\"acltype\": \"publishClientSend\", \"topic\": \"a\", \"priority\": 5, \"allow\": true},"
			"{\"acltype\": \"publishClientSend\", \"topic\": \"b\", \"priority\": 5, \"allow\": false},"
			"{\"acltype\": \"publishClientSend\", \"topic\": \"c\", \"priority\": 5, \"allow\": true},"
			"{\"acltype\": \"publishClientSend\", \"topic\": \"d\", \"allow\": true},"
			"{\"acltype\": \"publishClientSend\", \"topic\": \"e\", \"priority\": 9, \"allow\": true},"
			"{\"acltype\": \"subscribeLiteral\", \"topic\": \"a\", \"allow\": true}]}"));
	char *order = role_acls(plugin, "ordered");
	/* Highest priority first, equal priorities in the order given. */
	const char *a = strstr(order, "\"topic\":\"a\""), *b = strstr(order, "\"topic\":\"b\"");
	const char *c = strstr(order, "\"topic\":\"c\""), *d = strstr(order, "\"topic\":\"d\"");
	const char *e = strstr(order, "\"topic\":\"e\"");
	assert_true(e && a && b && c && d && e < a && a < b && b < c && c < d);

	static const char *const topics[] = {"e", "a", "b", "c", "d"};
	for(size_t i = 0; i < 5; i++){
		struct test_snapshot before;
		test_snapshot_take(&before, test_plugin->state_path);
		persist_set_io(plugin->persist, &test_io_fsync_eio);
		char *command = test_format("{\"command\": \"removeRoleACL\", \"rolename\": \"ordered\", "
				"\"acltype\": \"publishClientSend\", \"topic\": \"%s\"}", topics[i]);
		cJSON *response = test_command(plugin, "alice", command);
		free(command);
		test_assert_error(response, "storage", NULL);
		cJSON_Delete(response);
		persist_set_io(plugin->persist, NULL);

		char *after = role_acls(plugin, "ordered");
		if(strcmp(after, order) != 0){
			fail_msg("removing \"%s\" failed, yet the ACLs changed:\n  before %s\n  after  %s", topics[i], order, after);
		}
		free(after);
		test_snapshot_assert_unchanged(&before, test_plugin->state_path);
		test_snapshot_free(&before);
	}
	free(order);

	/* A removal that is saved takes exactly that ACL out. */
	cJSON_Delete(test_command_ok(plugin, "alice", "{\"command\": \"removeRoleACL\", \"rolename\": \"ordered\", "
			"\"acltype\": \"publishClientSend\", \"topic\": \"b\"}"));
	order = role_acls(plugin, "ordered");
	assert_null(strstr(order, "\"topic\":\"b\""));
	assert_true(strstr(order, "\"topic\":\"e\"") < strstr(order, "\"topic\":\"a\""));
	assert_true(strstr(order, "\"topic\":\"a\"") < strstr(order, "\"topic\":\"c\""));
	assert_true(strstr(order, "\"topic\":\"c\"") < strstr(order, "\"topic\":\"d\""));
	free(order);
}

static void failed_save_of_role_changes_changes_nothing(void **state)
{
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;
	char *reader_before = role_acls(plugin, "reader");
	struct test_snapshot before;
	test_snapshot_take(&before, test_plugin->state_path);

	persist_set_io(plugin->persist, &test_io_fsync_eio);
	static const char *const commands[] = {
		"{\"command\": \"createRole\", \"rolename\": \"writer\", \"acls\": "
			"[{\"acltype\": \"publishClientSend\", \"topic\": \"a/#\", \"allow\": true}]}",
		"{\"command\": \"addRoleACL\", \"rolename\": \"reader\", \"acltype\": \"publishClientSend\", "
			"\"topic\": \"x\", \"priority\": 100, \"allow\": true}",
		"{\"command\": \"deleteRole\", \"rolename\": \"reader\"}",
	};
	for(size_t i = 0; i < 3; i++){
		cJSON *response = test_command(plugin, "alice", commands[i]);
		test_assert_error(response, "storage", "fsync failed");
		cJSON_Delete(response);
	}
	persist_set_io(plugin->persist, NULL);

	test_snapshot_assert_unchanged(&before, test_plugin->state_path);
	test_snapshot_free(&before);
	cJSON *roles = test_command_ok(plugin, "alice", "{\"command\": \"listRoles\"}");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(roles, "totalCount")->valuedouble, 1);
	assert_string_equal(test_string(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(roles, "roles"), 0), "rolename"),
			"reader");
	cJSON_Delete(roles);
	char *reader_after = role_acls(plugin, "reader");
	assert_string_equal(reader_after, reader_before);
	free(reader_after);
	free(reader_before);
	/* The failed createRole left no role behind: creating it now works. */
	cJSON_Delete(test_command_ok(plugin, "alice", commands[0]));
}

/* ---- the log ---- */

static void log_records_changes_and_never_a_secret(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	test_log_reset();

	cJSON *created = test_command_ok(plugin, "alice", CREATE_CI_BOT);
	char *secret = strdup(test_string(created, "token"));
	char *hash = strdup(test_string(created, "hash"));
	cJSON_Delete(created);

	int line = test_log_find("tokens: alice | createToken | name=ci-bot role=reader");
	if(line < 0){
		fail_msg("no createToken line in the log:\n%s", test_log_text());
	}
	assert_int_equal(test_log_level((size_t)line), MOSQ_LOG_NOTICE);
	assert_non_null(strstr(test_log_line((size_t)line), hash));

	/* Everything else a session might do with it. */
	cJSON_Delete(test_command_ok(plugin, "bob", "{\"command\": \"listTokens\"}"));
	cJSON_Delete(test_command_ok(plugin, "bob", "{\"command\": \"getToken\", \"name\": \"ci-bot\"}"));
	cJSON *refused = test_command(plugin, "bob", CREATE_CI_BOT);
	test_assert_error(refused, "exists", NULL);
	cJSON_Delete(refused);
	persist_set_io(plugin->persist, &test_io_fsync_eio);
	refused = test_command(plugin, "bob", "{\"command\": \"createToken\", \"name\": \"other\", \"role\": \"reader\", "
			"\"validUntil\": \"2027-01-01T00:00:00Z\"}");
	test_assert_error(refused, "storage", NULL);
	cJSON_Delete(refused);
	persist_set_io(plugin->persist, NULL);
	cJSON_Delete(test_command_ok(plugin, "bob", "{\"command\": \"revokeToken\", \"name\": \"ci-bot\"}"));
	cJSON_Delete(test_command_ok(plugin, "bob", "{\"command\": \"addRoleACL\", \"rolename\": \"reader\", "
			"\"acltype\": \"subscribeLiteral\", \"topic\": \"t\", \"allow\": true}"));
	cJSON_Delete(test_command_ok(plugin, "bob", "{\"command\": \"removeRoleACL\", \"rolename\": \"reader\", "
			"\"acltype\": \"subscribeLiteral\", \"topic\": \"t\"}"));
	cJSON_Delete(test_command_ok(plugin, "bob", "{\"command\": \"createRole\", \"rolename\": \"temp\"}"));
	cJSON_Delete(test_command_ok(plugin, "bob", "{\"command\": \"deleteRole\", \"rolename\": \"temp\"}"));

	const char *log = test_log_text();
	assert_null(strstr(log, secret));
	assert_null(strstr(log, secret + 5));                      /* not even without its prefix */
	char body_start[21];
	snprintf(body_start, sizeof(body_start), "%s", secret + 5);
	assert_null(strstr(log, body_start));                       /* nor a good part of it */

	/* One line per change, with the requester. */
	static const char *const changes[] = {
		"tokens: bob | revokeToken | name=ci-bot",
		"tokens: bob | addRoleACL | rolename=reader",
		"tokens: bob | removeRoleACL | rolename=reader",
		"tokens: bob | createRole | rolename=temp",
		"tokens: bob | deleteRole | rolename=temp",
	};
	for(size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++){
		if(test_log_find(changes[i]) < 0){
			fail_msg("no line \"%s\" in the log:\n%s", changes[i], log);
		}
	}
	/* Refused commands are not logged as changes. */
	assert_int_equal(test_log_find("tokens: bob | createToken |"), -1);
	free(secret);
	free(hash);
}

/* ---- NUL characters and odd payloads ---- */

static void escaped_nul_in_a_string_is_refused(void **state)
{
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;

	/* cJSON would cut "ci\u0000bot" to "ci": it must be refused, not created as "ci". */
	static const struct error_case cases[] = {
		{"{\"command\": \"createToken\", \"name\": \"ci\\u0000bot\", "
			"\"role\": \"reader\", \"validUntil\": \"2027-01-01T00:00:00Z\"}", "invalid", "'name'"},
		{"{\"command\": \"createToken\", \"name\": \"\\u0000\", "
			"\"role\": \"reader\", \"validUntil\": \"2027-01-01T00:00:00Z\"}", "invalid", "'name'"},
		{"{\"command\": \"createToken\", \"name\": \"ci-bot\", "
			"\"role\": \"reader\\u0000x\", \"validUntil\": \"2027-01-01T00:00:00Z\"}", "invalid", "'role'"},
		{"{\"command\": \"createToken\", \"name\": \"ci-bot\", "
			"\"role\": \"reader\", \"validUntil\": \"2027-01-01T00:00:00Z\\u0000junk\"}", "invalid", "'validUntil'"},
		{"{\"command\": \"getToken\", \"name\": \"ci\\u0000\"}", "invalid", "'name'"},
		{"{\"command\": \"listRoles\", \"correlationData\": \"4\\u00002\"}", "invalid", "'correlationData'"},
		{"{\"command\": \"listRoles\\u0000\"}", "invalid", "'command'"},
	};
	assert_errors(test_plugin, cases, sizeof(cases) / sizeof(cases[0]));
	assert_int_equal(token_count(plugin), 0);

	/* An escaped backslash followed by "u0000" is six ordinary characters. */
	cJSON *data = test_command_ok(plugin, "alice", "{\"command\": \"createToken\", \"name\": \"a\\\\u0000\", "
			"\"role\": \"reader\", \"validUntil\": \"2027-01-01T00:00:00Z\"}");
	assert_string_equal(test_string(data, "name"), "a\\u0000");
	cJSON_Delete(data);
	/* And other escapes still work, \" included. */
	data = test_command_ok(plugin, "alice", "{\"command\": \"createToken\", \"name\": \"q\\\"\\u00e9\\\\\", "
			"\"role\": \"reader\", \"validUntil\": \"2027-01-01T00:00:00Z\"}");
	assert_string_equal(test_string(data, "name"), "q\"\xc3\xa9\\");
	cJSON_Delete(data);
}

static void assert_one_unknown_command_response(struct tokens_plugin *plugin, const char *payload, size_t length)
{
	cJSON *reply = control_handle_request(plugin, "alice", payload, length);
	assert_non_null(reply);
	const cJSON *responses = cJSON_GetObjectItemCaseSensitive(reply, "responses");
	if(cJSON_GetArraySize(responses) != 1){
		char *text = cJSON_PrintUnformatted(reply);
		fail_msg("payload %.*s: expected one response, got %s", (int)length, payload, text);
	}
	const cJSON *response = cJSON_GetArrayItem(responses, 0);
	assert_string_equal(test_string(response, "command"), "Unknown command");
	assert_true(strlen(test_string(response, "error")) > 0);
	assert_string_equal(test_string(response, "code"), "invalid");
	assert_null(cJSON_GetObjectItemCaseSensitive(response, "data"));
	cJSON_Delete(reply);
}

static void payload_without_commands_gets_one_unknown_command_response(void **state)
{
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;
	struct test_snapshot before;
	test_snapshot_take(&before, test_plugin->state_path);
	static const char *const payloads[] = {
		"not json",
		"{\"commands\": [",
		"{",
		"{}",
		"[]",
		"null",
		"42",
		"{\"commands\": {\"command\": \"listTokens\"}}",
		"{\"commands\": \"listTokens\"}",
		"{\"Commands\": [{\"command\": \"listTokens\"}]}",
	};
	for(size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++){
		assert_one_unknown_command_response(plugin, payloads[i], strlen(payloads[i]));
	}
	assert_one_unknown_command_response(plugin, "", 0);
	/* The length is what counts, not a NUL: a cut-off valid request is not JSON. */
	const char *request = "{\"commands\": [" CREATE_CI_BOT "]}";
	assert_one_unknown_command_response(plugin, request, strlen(request) - 2);
	assert_int_equal(token_count(plugin), 0);
	test_snapshot_assert_unchanged(&before, test_plugin->state_path);
	test_snapshot_free(&before);
}

static void payload_with_trailing_data_is_not_json(void **state)
{
	/* A request followed by anything else is not JSON. */
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;
	struct test_snapshot before;
	test_snapshot_take(&before, test_plugin->state_path);
	static const char *const payloads[] = {
		"{\"commands\": [" CREATE_CI_BOT "]}garbage",
		"{\"commands\": [" CREATE_CI_BOT "]}{\"commands\": [{\"command\": \"listTokens\"}]}",
		"{\"commands\": [" CREATE_CI_BOT "]}]",
	};
	for(size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++){
		assert_one_unknown_command_response(plugin, payloads[i], strlen(payloads[i]));
	}
	assert_int_equal(token_count(plugin), 0);
	test_snapshot_assert_unchanged(&before, test_plugin->state_path);
	test_snapshot_free(&before);
	/* Trailing white space is still JSON. */
	const char *spaced = "{\"commands\": [" CREATE_CI_BOT "]} \r\n\t";
	cJSON *reply = test_request(plugin, "alice", spaced);
	test_assert_success(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "responses"), 0));
	cJSON_Delete(reply);
	assert_int_equal(token_count(plugin), 1);
}

static void commands_run_in_order_and_a_failure_does_not_stop_the_rest(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	cJSON *reply = test_request(plugin, "alice", "{\"commands\": ["
			CREATE_CI_BOT ","
			"{\"command\": \"createToken\", \"name\": \"ci-bot\", \"role\": \"reader\", "
				"\"validUntil\": \"2027-01-01T00:00:00Z\", \"correlationData\": \"second\"},"
			"{\"command\": \"frobnicate\", \"correlationData\": \"third\"},"
			"17,"
			"{\"command\": \"listTokens\", \"correlationData\": \"fifth\"}]}");
	const cJSON *responses = cJSON_GetObjectItemCaseSensitive(reply, "responses");
	assert_int_equal(cJSON_GetArraySize(responses), 5);

	const cJSON *response = cJSON_GetArrayItem(responses, 0);
	test_assert_success(response);
	assert_string_equal(test_string(response, "command"), "createToken");
	assert_null(cJSON_GetObjectItemCaseSensitive(response, "correlationData"));

	response = cJSON_GetArrayItem(responses, 1);
	test_assert_error(response, "exists", NULL);
	assert_string_equal(test_string(response, "command"), "createToken");
	assert_string_equal(test_string(response, "correlationData"), "second");

	response = cJSON_GetArrayItem(responses, 2);
	test_assert_error(response, "invalid", "frobnicate");
	assert_string_equal(test_string(response, "command"), "frobnicate");
	assert_string_equal(test_string(response, "correlationData"), "third");

	response = cJSON_GetArrayItem(responses, 3);
	test_assert_error(response, "invalid", NULL);

	response = cJSON_GetArrayItem(responses, 4);
	test_assert_success(response);
	assert_string_equal(test_string(response, "correlationData"), "fifth");
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(response, "data");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(data, "totalCount")->valuedouble, 1);
	cJSON_Delete(reply);
}

/* ---- time: the fake clock drives status, order and "in the future" ---- */

static void list_tokens_follows_the_clock(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	int64_t start = test_clock_now();
	free(create_token(plugin, "short", "2026-11-28T10:01:40Z"));   /* start + 100 */
	test_clock_advance(50);
	free(create_token(plugin, "long", "2026-11-28T10:16:40Z"));    /* start + 1000 */
	free(create_token(plugin, "also-long", "2026-11-28T10:16:40Z"));

	assert_int_equal(total_count(plugin, "{\"command\": \"listTokens\", \"status\": \"valid\"}"), 3);
	assert_int_equal(total_count(plugin, "{\"command\": \"listTokens\", \"status\": \"invalid\"}"), 0);

	/* validUntil itself is the first invalid second. */
	test_clock_set(start + 100);
	assert_int_equal(total_count(plugin, "{\"command\": \"listTokens\", \"status\": \"valid\"}"), 2);
	cJSON *data = test_command_ok(plugin, "alice", "{\"command\": \"listTokens\", \"status\": \"invalid\"}");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(data, "totalCount")->valuedouble, 1);
	const cJSON *expired = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(data, "tokens"), 0);
	assert_string_equal(test_string(expired, "name"), "short");
	assert_string_equal(test_string(expired, "status"), "invalid");
	cJSON_Delete(data);
	data = test_command_ok(plugin, "alice", "{\"command\": \"getToken\", \"name\": \"short\"}");
	assert_string_equal(test_string(data, "status"), "invalid");
	cJSON_Delete(data);

	/* All, by issuedAt then name; paged. */
	data = test_command_ok(plugin, "alice", "{\"command\": \"listTokens\"}");
	const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(data, "tokens");
	assert_int_equal(cJSON_GetArraySize(tokens), 3);
	assert_string_equal(test_string(cJSON_GetArrayItem(tokens, 0), "name"), "short");
	assert_string_equal(test_string(cJSON_GetArrayItem(tokens, 0), "issuedAt"), "2026-11-28T10:00:00Z");
	assert_string_equal(test_string(cJSON_GetArrayItem(tokens, 1), "name"), "also-long");
	assert_string_equal(test_string(cJSON_GetArrayItem(tokens, 1), "issuedAt"), "2026-11-28T10:00:50Z");
	assert_string_equal(test_string(cJSON_GetArrayItem(tokens, 2), "name"), "long");
	cJSON_Delete(data);
	data = test_command_ok(plugin, "alice", "{\"command\": \"listTokens\", \"count\": 1, \"offset\": 1}");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(data, "totalCount")->valuedouble, 3);
	tokens = cJSON_GetObjectItemCaseSensitive(data, "tokens");
	assert_int_equal(cJSON_GetArraySize(tokens), 1);
	assert_string_equal(test_string(cJSON_GetArrayItem(tokens, 0), "name"), "also-long");
	cJSON_Delete(data);
	data = test_command_ok(plugin, "alice", "{\"command\": \"listTokens\", \"offset\": 3}");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(data, "tokens")), 0);
	cJSON_Delete(data);

	/* A validUntil that was in the future at the start is not any more. */
	cJSON *response = test_command(plugin, "alice", "{\"command\": \"createToken\", \"name\": \"late\", "
			"\"role\": \"reader\", \"validUntil\": \"2026-11-28T10:01:00Z\"}");
	test_assert_error(response, "invalid", "'validUntil'");
	cJSON_Delete(response);
}


/* ---- limits ---- */

static cJSON *only_response(cJSON *reply)
{
	cJSON *responses = cJSON_GetObjectItemCaseSensitive(reply, "responses");
	assert_int_equal(cJSON_GetArraySize(responses), 1);
	return cJSON_GetArrayItem(responses, 0);
}

static void requests_over_the_limits_are_refused_whole(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	plugin->limits.commands = 2;
	plugin->limits.request_bytes = 200;

	cJSON *reply = test_request(plugin, "alice", "{\"commands\": [{\"command\": \"createRole\", \"rolename\": \"a\"},"
			"{\"command\": \"createRole\", \"rolename\": \"b\"}, {\"command\": \"createRole\", \"rolename\": \"c\"}]}");
	test_assert_error(only_response(reply), "limit", "at most 2 commands");
	cJSON_Delete(reply);

	char payload[400];
	snprintf(payload, sizeof(payload), "{\"commands\": [{\"command\": \"createRole\", \"rolename\": \"x\", \"pad\": \"%0250d\"}]}", 0);
	reply = test_request(plugin, "alice", payload);
	test_assert_error(only_response(reply), "limit", "larger than 200 bytes");
	cJSON_Delete(reply);

	/* Nothing of either request ran. */
	cJSON *data = test_command_ok(plugin, "alice", "{\"command\": \"listRoles\"}");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(data, "totalCount")->valueint, 1);   /* "reader" */
	cJSON_Delete(data);
}

/* count tokens, device-000 on, in requests of 20 commands. */
static void create_many_tokens(struct tokens_plugin *plugin, int count)
{
	for(int first = 0; first < count; first += 20){
		char *commands = test_format("%s", "");
		for(int i = first; i < first + 20 && i < count; i++){
			char *more = test_format("%s%s{\"command\": \"createToken\", \"name\": \"device-%03d\", "
					"\"role\": \"reader\", \"validUntil\": \"2027-01-01T00:00:00Z\"}", commands, i > first ? "," : "", i);
			free(commands);
			commands = more;
		}
		char *payload = test_format("{\"commands\": [%s]}", commands);
		cJSON_Delete(test_request(plugin, "alice", payload));
		free(payload);
		free(commands);
	}
}

static size_t reply_length(const cJSON *reply)
{
	char *text = cJSON_PrintUnformatted(reply);
	assert_non_null(text);
	size_t length = strlen(text);
	free(text);
	return length;
}

/* An answer MQTT could not carry is refused with a way to page, and the
 * request's other answers still arrive. */
static void replies_never_outgrow_the_reply_limit(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	create_many_tokens(plugin, 100);
	plugin->limits.reply_bytes = 16384;

	cJSON *reply = test_request(plugin, "alice", "{\"commands\": [{\"command\": \"listTokens\"},"
			"{\"command\": \"listTokens\", \"count\": 10, \"offset\": 50}, {\"command\": \"getRole\", \"rolename\": \"reader\"}]}");
	const cJSON *responses = cJSON_GetObjectItemCaseSensitive(reply, "responses");
	assert_int_equal(cJSON_GetArraySize(responses), 3);
	test_assert_error(cJSON_GetArrayItem(responses, 0), "limit", "'count' (at most about");
	const cJSON *page = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(responses, 1), "data");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(page, "tokens")), 10);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(page, "totalCount")->valueint, 100);
	test_assert_success(cJSON_GetArrayItem(responses, 2));
	assert_true(reply_length(reply) <= 16384);
	cJSON_Delete(reply);
}

/* A change is never made when its answer could not be sent: once the
 * reply is full, the rest of the request does not run. */
static void commands_that_would_not_fit_the_reply_do_not_run(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	create_many_tokens(plugin, 30);
	plugin->limits.reply_bytes = 16384;
	/* Pages of 30 tokens fill the reply; the revoke after them must not run. */
	char *commands = test_format("%s", "{\"command\": \"listTokens\", \"count\": 30}");
	for(int i = 0; i < 3; i++){
		char *more = test_format("%s, {\"command\": \"listTokens\", \"count\": 30}", commands);
		free(commands);
		commands = more;
	}
	char *payload = test_format("{\"commands\": [%s, {\"command\": \"revokeToken\", \"name\": \"device-000\"}]}", commands);
	cJSON *reply = test_request(plugin, "alice", payload);
	const cJSON *responses = cJSON_GetObjectItemCaseSensitive(reply, "responses");
	assert_int_equal(cJSON_GetArraySize(responses), 5);
	test_assert_error(cJSON_GetArrayItem(responses, 4), "limit", "was not run");
	assert_true(reply_length(reply) <= 16384);
	assert_non_null(store_find_token_by_name(&plugin->store, "device-000"));
	cJSON_Delete(reply);
	free(payload);
	free(commands);
}

/* A change is either answered whole or not made, however large the
 * correlationData echoed with it, and the reply stays within the limit
 * however much the other responses echo (review of issue 13). */
static void a_change_never_loses_its_answer_to_the_reply_limit(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	create_many_tokens(plugin, 30);
	plugin->limits.reply_bytes = 16384;
	char padding[6001];
	memset(padding, 'c', sizeof(padding) - 1);
	padding[sizeof(padding) - 1] = '\0';
	char *commands = test_format("%s", "{\"command\": \"getToken\", \"name\": \"device-000\"}");
	for(int i = 0; i < 27; i++){
		char *more = test_format("%s, {\"command\": \"getToken\", \"name\": \"device-%03d\"}", commands, i);
		free(commands);
		commands = more;
	}
	char *payload = test_format("{\"commands\": [%s, {\"command\": \"rotateToken\", \"name\": \"device-001\", "
			"\"correlationData\": \"%s\"}, {\"command\": \"listRoles\", \"correlationData\": \"%s\"}]}",
			commands, padding, padding);
	unsigned char before[TOKEN_HASH_LEN];
	memcpy(before, store_find_token_by_name(&plugin->store, "device-001")->hash, TOKEN_HASH_LEN);
	cJSON *reply = test_request(plugin, "alice", payload);
	assert_true(reply_length(reply) <= 16384);
	const cJSON *responses = cJSON_GetObjectItemCaseSensitive(reply, "responses");
	assert_int_equal(cJSON_GetArraySize(responses), 30);
	const cJSON *rotation = cJSON_GetArrayItem(responses, 28);
	bool rotated = memcmp(before, store_find_token_by_name(&plugin->store, "device-001")->hash, TOKEN_HASH_LEN) != 0;
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(rotation, "data");
	if(rotated){
		assert_non_null(cJSON_GetObjectItemCaseSensitive(data, "token"));
	}else{
		test_assert_error(rotation, "limit", NULL);
	}
	cJSON_Delete(reply);
	free(payload);
	free(commands);
}

static void stores_and_roles_over_the_limits_are_refused(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	plugin->limits.tokens = 1;
	plugin->limits.acls_per_role = 2;
	plugin->limits.topic_bytes = 10;

	cJSON_Delete(test_command_ok(plugin, "alice", "{\"command\": \"createToken\", \"name\": \"second\", "
			"\"role\": \"reader\", \"validUntil\": \"2027-01-01T00:00:00Z\"}"));
	cJSON *response = test_command(plugin, "alice", "{\"command\": \"createToken\", \"name\": \"third\", "
			"\"role\": \"reader\", \"validUntil\": \"2027-01-01T00:00:00Z\"}");
	test_assert_error(response, "limit", "most tokens allowed (1)");
	cJSON_Delete(response);

	response = test_command(plugin, "alice", "{\"command\": \"createRole\", \"rolename\": \"big\", \"acls\": ["
			"{\"acltype\": \"subscribeLiteral\", \"topic\": \"a\", \"allow\": true},"
			"{\"acltype\": \"subscribeLiteral\", \"topic\": \"b\", \"allow\": true},"
			"{\"acltype\": \"subscribeLiteral\", \"topic\": \"c\", \"allow\": true}]}");
	test_assert_error(response, "limit", "at most 2 ACLs");
	cJSON_Delete(response);
	response = test_command(plugin, "alice", "{\"command\": \"getRole\", \"rolename\": \"big\"}");
	test_assert_error(response, "notFound", NULL);
	cJSON_Delete(response);

	cJSON_Delete(test_command_ok(plugin, "alice", "{\"command\": \"createRole\", \"rolename\": \"small\"}"));
	for(int i = 0; i < 2; i++){
		char command[200];
		snprintf(command, sizeof(command), "{\"command\": \"addRoleACL\", \"rolename\": \"small\", "
				"\"acltype\": \"subscribeLiteral\", \"topic\": \"t%d\", \"allow\": true}", i);
		cJSON_Delete(test_command_ok(plugin, "alice", command));
	}
	response = test_command(plugin, "alice", "{\"command\": \"addRoleACL\", \"rolename\": \"small\", "
			"\"acltype\": \"subscribeLiteral\", \"topic\": \"t9\", \"allow\": true}");
	test_assert_error(response, "limit", "at most 2 ACLs");
	cJSON_Delete(response);

	response = test_command(plugin, "alice", "{\"command\": \"createRole\", \"rolename\": \"long\", \"acls\": ["
			"{\"acltype\": \"subscribePattern\", \"topic\": \"eleven/byte\", \"allow\": true}]}");
	test_assert_error(response, "limit", "longer than 10 bytes");
	cJSON_Delete(response);
}

#define CONTROL_TEST(f) cmocka_unit_test_setup_teardown(f, setup, test_plugin_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		CONTROL_TEST(create_token_returns_metadata_and_secret_once),
		CONTROL_TEST(requests_over_the_limits_are_refused_whole),
		CONTROL_TEST(replies_never_outgrow_the_reply_limit),
		CONTROL_TEST(commands_that_would_not_fit_the_reply_do_not_run),
		CONTROL_TEST(a_change_never_loses_its_answer_to_the_reply_limit),
		CONTROL_TEST(stores_and_roles_over_the_limits_are_refused),
		CONTROL_TEST(each_created_token_is_new),
		CONTROL_TEST(bad_fields_are_invalid),
		CONTROL_TEST(topics_only_a_state_file_may_hold_are_invalid),
		CONTROL_TEST(unknown_targets_are_not_found),
		CONTROL_TEST(taken_names_are_exists),
		CONTROL_TEST(role_in_use_is_not_deleted),
		CONTROL_TEST(failed_save_of_a_new_token_changes_nothing),
		CONTROL_TEST(failed_save_of_a_revoke_keeps_the_token),
		CONTROL_TEST(failed_save_of_an_acl_removal_keeps_the_order),
		CONTROL_TEST(failed_save_of_role_changes_changes_nothing),
		CONTROL_TEST(log_records_changes_and_never_a_secret),
		CONTROL_TEST(escaped_nul_in_a_string_is_refused),
		CONTROL_TEST(payload_without_commands_gets_one_unknown_command_response),
		CONTROL_TEST(payload_with_trailing_data_is_not_json),
		CONTROL_TEST(commands_run_in_order_and_a_failure_does_not_stop_the_rest),
		CONTROL_TEST(list_tokens_follows_the_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
