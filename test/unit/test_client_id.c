/*
 * Tokens bound to a client id (issue 17; SPEC sections 2, 4 and 5): what
 * createToken accepts and refuses, what the replies, events, state file
 * and journal carry, and the login decision, by the current secret, by a
 * previous one in its grace period, and for the bindings of persistent
 * sessions a restart restores.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invariants.h"
#include "login.h"
#include "metadata_json.h"
#include "state_format.h"
#include "token_format.h"
#include "test_support.h"

#define CREATE_BOUND "{\"command\": \"createToken\", \"name\": \"boiler-7\", \"role\": \"sensors\", " \
	"\"validUntil\": \"2027-01-01T00:00:00Z\", \"clientId\": \"boiler-7-dev\"}"
#define CREATE_UNBOUND "{\"command\": \"createToken\", \"name\": \"free\", \"role\": \"sensors\", " \
	"\"validUntil\": \"2027-01-01T00:00:00Z\"}"

/* ---- captured events ---- */

#define MAX_EVENTS 8
static char *events[MAX_EVENTS];
static size_t event_count;

static void capture_event(const char *topic, const char *payload, bool retain)
{
	(void)retain;
	if(strcmp(topic, "$CONTROL/tokens/v1/events") == 0){
		assert_true(event_count < MAX_EVENTS);
		events[event_count] = strdup(payload);
		assert_non_null(events[event_count]);
		event_count++;
	}
}

static void events_reset(void)
{
	for(size_t i = 0; i < event_count; i++){
		free(events[i]);
		events[i] = NULL;
	}
	event_count = 0;
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct test_plugin *test_plugin = test_plugin_new();
	test_plugin->plugin.publish = capture_event;
	events_reset();
	cJSON_Delete(test_command_ok(&test_plugin->plugin, "alice", "{\"command\": \"createRole\", \"rolename\": \"sensors\"}"));
	*state = test_plugin;
	return 0;
}

static int teardown(void **state)
{
	events_reset();
	test_plugin_free(*state);
	return 0;
}

static struct tokens_plugin *plugin_of(void **state)
{
	return &((struct test_plugin *)*state)->plugin;
}

/* The secret of a command that creates or rotates (malloc'd); data is
 * deleted. */
static char *secret_of(cJSON *data)
{
	char *secret = strdup(test_string(data, "token"));
	assert_non_null(secret);
	cJSON_Delete(data);
	return secret;
}

static struct login_answer login_as(const struct tokens_plugin *plugin, const char *secret, const char *client_id)
{
	unsigned char hash[TOKEN_HASH_LEN];
	token_format_hash(secret, hash);
	return login_answer_for(&plugin->store, hash, client_id, test_clock_now());
}

static void assert_bound(const cJSON *metadata, const char *client_id)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(metadata, "clientId");
	if(client_id == NULL){
		assert_null(item);
	}else{
		assert_true(cJSON_IsString(item));
		assert_string_equal(item->valuestring, client_id);
	}
}

static int token_count(struct tokens_plugin *plugin)
{
	cJSON *data = test_command_ok(plugin, "alice", "{\"command\": \"listTokens\"}");
	int count = cJSON_GetObjectItemCaseSensitive(data, "totalCount")->valueint;
	cJSON_Delete(data);
	return count;
}

/* ---- createToken, getToken, listTokens, events ---- */

static void created_with_a_client_id_shows_it_everywhere(void **state)
{
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;
	cJSON *data = test_command_ok(plugin, "alice", CREATE_BOUND);
	assert_bound(data, "boiler-7-dev");
	assert_string_equal(test_string(data, "name"), "boiler-7");
	char *hash = strdup(test_string(data, "hash"));
	cJSON_Delete(data);
	cJSON_Delete(test_command_ok(plugin, "alice", CREATE_UNBOUND));

	data = test_command_ok(plugin, "bob", "{\"command\": \"getToken\", \"name\": \"boiler-7\"}");
	assert_bound(data, "boiler-7-dev");
	cJSON_Delete(data);
	char *by_hash = test_format("{\"command\": \"getToken\", \"hash\": \"%s\"}", hash);
	data = test_command_ok(plugin, "bob", by_hash);
	assert_bound(data, "boiler-7-dev");
	cJSON_Delete(data);
	free(by_hash);
	/* Present only when bound. */
	data = test_command_ok(plugin, "bob", "{\"command\": \"getToken\", \"name\": \"free\"}");
	assert_bound(data, NULL);
	cJSON_Delete(data);

	data = test_command_ok(plugin, "bob", "{\"command\": \"listTokens\"}");
	const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(data, "tokens");
	assert_int_equal(cJSON_GetArraySize(tokens), 2);
	const cJSON *listed;
	cJSON_ArrayForEach(listed, tokens){
		assert_bound(listed, strcmp(test_string(listed, "name"), "boiler-7") == 0 ? "boiler-7-dev" : NULL);
	}
	cJSON_Delete(data);

	/* The event, the journal line and the log line carry it too. */
	assert_int_equal(event_count, 2);
	cJSON *event = cJSON_Parse(events[0]);
	assert_string_equal(test_string(event, "event"), "tokenCreated");
	assert_bound(event, "boiler-7-dev");
	cJSON_Delete(event);
	event = cJSON_Parse(events[1]);
	assert_bound(event, NULL);
	cJSON_Delete(event);
	char *journal = test_read_file(test_plugin->journal_path, NULL);
	assert_non_null(journal);
	test_assert_contains(journal, "\"clientId\":\"boiler-7-dev\"");
	free(journal);
	test_assert_contains(test_log_text(), "| createToken | name=boiler-7 role=sensors hash=");
	test_assert_contains(test_log_text(), " clientId=boiler-7-dev\n");
	free(hash);
}

/* Non-ASCII, spaced, quoted and long client ids are kept byte for byte;
 * the longest one MQTT can carry is accepted. */
static void any_client_id_mqtt_can_carry_is_kept(void **state)
{
	struct tokens_plugin *plugin = plugin_of(state);
	char *longest = malloc(CLIENT_ID_MAX_BYTES + 1);
	assert_non_null(longest);
	memset(longest, 'x', CLIENT_ID_MAX_BYTES);
	longest[CLIENT_ID_MAX_BYTES] = '\0';
	const struct {
		const char *json;      /* as the request spells it */
		const char *bytes;     /* as the token keeps it */
	} cases[] = {
		{"Gr\u00f6\u00dfe \u2713", "Größe ✓"},
		{"Größe ✓ 7", "Größe ✓ 7"},
		{" a b ", " a b "},
		{"$SYS", "$SYS"},
		{"q\\\"u\\\\ote", "q\"u\\ote"},
		{longest, longest},
	};
	for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++){
		char *command = test_format("{\"command\": \"createToken\", \"name\": \"t%zu\", \"role\": \"sensors\", "
				"\"validUntil\": \"2027-01-01T00:00:00Z\", \"clientId\": \"%s\"}", i, cases[i].json);
		cJSON *data = test_command_ok(plugin, "alice", command);
		free(command);
		assert_bound(data, cases[i].bytes);
		cJSON_Delete(data);
		char name[16];
		snprintf(name, sizeof(name), "t%zu", i);
		const struct token *token = store_find_token_by_name(&plugin->store, name);
		assert_non_null(token);
		assert_non_null(token->client_id);
		assert_string_equal(token->client_id, cases[i].bytes);
	}
	free(longest);
}

struct bad_client_id {
	const char *json;      /* the field's value as it stands in the request */
	const char *fragment;  /* what the error says, beside the field's name */
};

static void bad_client_ids_are_invalid_and_change_nothing(void **state)
{
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;
	cJSON_Delete(test_command_ok(plugin, "alice", CREATE_UNBOUND));
	/* One byte over, quoted. */
	char *too_long_json = malloc(CLIENT_ID_MAX_BYTES + 4);
	assert_non_null(too_long_json);
	memset(too_long_json + 1, 'x', CLIENT_ID_MAX_BYTES + 1);
	too_long_json[0] = '"';
	too_long_json[CLIENT_ID_MAX_BYTES + 2] = '"';
	too_long_json[CLIENT_ID_MAX_BYTES + 3] = '\0';
	const struct bad_client_id cases[] = {
		{"\"\"", "must not be empty"},
		{"\"a+b\"", "'+', '#' or '/'"},
		{"\"a#\"", "'+', '#' or '/'"},
		{"\"#\"", "'+', '#' or '/'"},
		{"\"site/boiler\"", "'+', '#' or '/'"},
		{"\"a\\u0000b\"", "NUL"},
		{"\"\\u0000\"", "NUL"},
		{"\"\xc3\x28\"", "valid UTF-8"},
		{"\"\xc0\xaf\"", "valid UTF-8"},            /* an overlong '/' */
		{"\"\xed\xa0\x80\"", "valid UTF-8"},        /* a surrogate */
		{"\"tab\\there\"", "control characters"},  /* the broker refuses such a client id */
		{"\"\\u007f\"", "control characters"},
		{too_long_json, "longer than 65535 bytes"},
		{"7", "must be a string"},
		{"null", "must be a string"},
		{"[\"boiler\"]", "must be a string"},
	};
	struct test_snapshot journal_before;
	test_snapshot_take(&journal_before, test_plugin->journal_path);
	size_t events_before = event_count;
	for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++){
		char *command = test_format("{\"command\": \"createToken\", \"name\": \"bound\", \"role\": \"sensors\", "
				"\"validUntil\": \"2027-01-01T00:00:00Z\", \"clientId\": %s}", cases[i].json);
		cJSON *response = test_command(plugin, "alice", command);
		free(command);
		const cJSON *error = cJSON_GetObjectItemCaseSensitive(response, "error");
		if(!cJSON_IsString(error) || strstr(error->valuestring, "'clientId'") == NULL
				|| strstr(error->valuestring, cases[i].fragment) == NULL){
			fail_msg("case %zu: expected an error naming 'clientId' with \"%s\"", i, cases[i].fragment);
		}
		test_assert_error(response, "invalid", "'clientId'");
		cJSON_Delete(response);
	}
	free(too_long_json);
	assert_int_equal(token_count(plugin), 1);
	assert_null(store_find_token_by_name(&plugin->store, "bound"));
	test_snapshot_assert_unchanged(&journal_before, test_plugin->journal_path);
	test_snapshot_free(&journal_before);
	assert_int_equal(event_count, events_before);
}

/* ---- the login decision ---- */

static void bound_token_logs_in_only_with_its_client_id(void **state)
{
	struct tokens_plugin *plugin = plugin_of(state);
	char *bound = secret_of(test_command_ok(plugin, "alice", CREATE_BOUND));
	char *free_secret = secret_of(test_command_ok(plugin, "alice", CREATE_UNBOUND));

	struct login_answer answer = login_as(plugin, bound, "boiler-7-dev");
	assert_int_equal(answer.verdict, LOGIN_ACCEPTED);
	assert_string_equal(answer.token->name, "boiler-7");
	static const char *const others[] = {"boiler-7", "boiler-7-dev ", "Boiler-7-dev", "boiler-7-de", "boiler-7-devx", ""};
	for(size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++){
		answer = login_as(plugin, bound, others[i]);
		assert_int_equal(answer.verdict, LOGIN_CLIENT_ID_REFUSED);
		assert_string_equal(answer.token->name, "boiler-7");
	}
	/* No client id at all is not that one either. */
	assert_int_equal(login_as(plugin, bound, NULL).verdict, LOGIN_CLIENT_ID_REFUSED);
	/* An unbound token takes any. */
	assert_int_equal(login_as(plugin, free_secret, "boiler-7-dev").verdict, LOGIN_ACCEPTED);
	assert_int_equal(login_as(plugin, free_secret, "anything").verdict, LOGIN_ACCEPTED);
	/* Expired, a bound token is expired whatever the client id. */
	test_clock_set(test_time("2027-01-01T00:00:00Z"));
	assert_int_equal(login_as(plugin, bound, "boiler-7-dev").verdict, LOGIN_EXPIRED);
	assert_int_equal(login_as(plugin, bound, "intruder").verdict, LOGIN_EXPIRED);
	free(bound);
	free(free_secret);
}

static void rotation_keeps_the_client_id_for_both_secrets(void **state)
{
	struct tokens_plugin *plugin = plugin_of(state);
	char *old = secret_of(test_command_ok(plugin, "alice", CREATE_BOUND));
	test_clock_advance(60);
	cJSON *data = test_command_ok(plugin, "bob", "{\"command\": \"rotateToken\", \"name\": \"boiler-7\", "
			"\"graceSeconds\": 600}");
	assert_bound(data, "boiler-7-dev");
	char *new = secret_of(data);
	data = test_command_ok(plugin, "bob", "{\"command\": \"getToken\", \"name\": \"boiler-7\"}");
	assert_bound(data, "boiler-7-dev");
	cJSON_Delete(data);
	cJSON *event = cJSON_Parse(events[event_count - 1]);
	assert_string_equal(test_string(event, "event"), "tokenRotated");
	assert_bound(event, "boiler-7-dev");
	cJSON_Delete(event);

	/* The new secret, and the old one in its grace period: that client id only. */
	assert_int_equal(login_as(plugin, new, "boiler-7-dev").verdict, LOGIN_ACCEPTED);
	assert_int_equal(login_as(plugin, new, "intruder").verdict, LOGIN_CLIENT_ID_REFUSED);
	struct login_answer answer = login_as(plugin, old, "boiler-7-dev");
	assert_int_equal(answer.verdict, LOGIN_ACCEPTED);
	assert_true(answer.via_previous);
	answer = login_as(plugin, old, "intruder");
	assert_int_equal(answer.verdict, LOGIN_CLIENT_ID_REFUSED);
	assert_true(answer.via_previous);
	assert_int_equal(login_as(plugin, old, NULL).verdict, LOGIN_CLIENT_ID_REFUSED);
	/* After the grace period the old one is nobody's. */
	test_clock_advance(601);
	assert_int_equal(login_as(plugin, old, "boiler-7-dev").verdict, LOGIN_UNKNOWN);
	/* A rotation of an unbound token leaves it unbound. */
	cJSON_Delete(test_command_ok(plugin, "alice", CREATE_UNBOUND));
	data = test_command_ok(plugin, "bob", "{\"command\": \"rotateToken\", \"name\": \"free\"}");
	assert_bound(data, NULL);
	cJSON_Delete(data);
	assert_null(store_find_token_by_name(&plugin->store, "free")->client_id);
	free(old);
	free(new);
}

/* The plugin's invariants hold that a session bound to a token has its
 * client id: a binding made around the login decision is caught. */
static void a_session_of_another_client_id_breaks_an_invariant(void **state)
{
	struct tokens_plugin *plugin = plugin_of(state);
	cJSON_Delete(test_command_ok(plugin, "alice", CREATE_BOUND));
	struct token *token = store_find_token_by_name(&plugin->store, "boiler-7");
	static char context;
	const struct mosquitto *client = (const struct mosquitto *)&context;
	struct session_login login = {"intruder", "boiler-7", token->hash, false, false, false};
	assert_true(sessions_bind(&plugin->sessions, client, token, &login));
	assert_true(expiry_add(&plugin->expiry, token));
	char problem[512];
	assert_false(invariants_check_plugin(plugin, problem, sizeof(problem)));
	test_assert_contains(problem, "client intruder is bound to token \"boiler-7\", which only client boiler-7-dev may use");
	sessions_unbind(&plugin->sessions, client);
	test_assert_invariants(plugin);
}

/* ---- the state file and the journal ---- */

/* A restart on copies of the files: the live instance holds their lock. */
static struct tokens_plugin *restarted_from(struct test_plugin *test_plugin, char **dir)
{
	*dir = test_temp_dir();
	char *state = test_path(*dir, "tokens.json");
	char *journal = test_path(*dir, "tokens.json.journal");
	size_t length;
	char *content = test_read_file(test_plugin->state_path, &length);
	if(content){
		test_write_file(state, content, length);
		free(content);
	}
	content = test_read_file(test_plugin->journal_path, &length);
	if(content){
		test_write_file(journal, content, length);
		free(content);
	}
	char error[1024];
	struct tokens_plugin *plugin = tokens_plugin_new(state, test_log, test_clock_now, error, sizeof(error));
	if(plugin == NULL){
		fail_msg("the files do not load: %s", error);
	}
	free(state);
	free(journal);
	test_assert_invariants(plugin);
	return plugin;
}

static void assert_restart_keeps_the_binding(struct test_plugin *test_plugin, const char *new_secret,
		const char *old_secret)
{
	char *dir;
	struct tokens_plugin *plugin = restarted_from(test_plugin, &dir);
	test_assert_stores_equal(&test_plugin->plugin.store, &plugin->store);
	const struct token *token = store_find_token_by_name(&plugin->store, "boiler-7");
	assert_non_null(token);
	assert_non_null(token->client_id);
	assert_string_equal(token->client_id, "boiler-7-dev");
	assert_null(store_find_token_by_name(&plugin->store, "free")->client_id);
	assert_int_equal(login_as(plugin, new_secret, "boiler-7-dev").verdict, LOGIN_ACCEPTED);
	assert_int_equal(login_as(plugin, new_secret, "intruder").verdict, LOGIN_CLIENT_ID_REFUSED);
	if(old_secret){
		assert_int_equal(login_as(plugin, old_secret, "boiler-7-dev").verdict, LOGIN_ACCEPTED);
		assert_int_equal(login_as(plugin, old_secret, "intruder").verdict, LOGIN_CLIENT_ID_REFUSED);
	}
	tokens_plugin_free(plugin);
	test_remove_dir(dir);
	free(dir);
}

static void journal_replay_and_snapshot_keep_the_client_id(void **state)
{
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;
	char *first = secret_of(test_command_ok(plugin, "alice", CREATE_BOUND));
	cJSON_Delete(test_command_ok(plugin, "alice", CREATE_UNBOUND));
	/* From the journal alone (createToken lines). */
	assert_false(test_file_exists(test_plugin->state_path));
	assert_restart_keeps_the_binding(test_plugin, first, NULL);

	/* A rotation line with a grace period, replayed. */
	char *second = secret_of(test_command_ok(plugin, "bob", "{\"command\": \"rotateToken\", \"name\": \"boiler-7\", "
			"\"graceSeconds\": 3600}"));
	assert_restart_keeps_the_binding(test_plugin, second, first);

	/* Folded into a snapshot: its token line. */
	tokens_plugin_snapshot(plugin);
	assert_false(persist_has_journal(plugin->persist));
	char *file = test_read_file(test_plugin->state_path, NULL);
	assert_non_null(file);
	test_assert_contains(file, "\"clientId\":\"boiler-7-dev\"");
	free(file);
	assert_restart_keeps_the_binding(test_plugin, second, first);
	free(first);
	free(second);
}

/* A state file: one role, and token "boiler-7" whose extra members are
 * given as JSON text ("" for none). */
static char *state_file_with(const char *extra)
{
	return test_format("{\"version\": 1, \"roles\": [{\"rolename\": \"sensors\", \"acls\": []}], \"tokens\": ["
			"{\"name\": \"boiler-7\", \"role\": \"sensors\", \"requestedBy\": \"init\", "
			"\"issuedAt\": \"2026-11-28T10:00:00Z\", \"validUntil\": \"2027-01-01T00:00:00Z\", \"lastUsed\": null, "
			"\"hash\": \"%064d\"%s}]}\n", 7, extra);
}

static bool load_state(const char *dir, const char *content, struct tokens_plugin **plugin, char *error, size_t length)
{
	char *path = test_path(dir, "tokens.json");
	test_write_file(path, content, strlen(content));
	*plugin = tokens_plugin_new(path, test_log, test_clock_now, error, length);
	free(path);
	return *plugin != NULL;
}

static void state_files_with_and_without_a_client_id_load(void **state)
{
	(void)state;
	char *dir = test_temp_dir();
	char error[1024];
	struct tokens_plugin *plugin;
	/* A file from before client ids: unbound, and shown without one. */
	char *old = state_file_with("");
	assert_true(load_state(dir, old, &plugin, error, sizeof(error)));
	free(old);
	const struct token *token = store_find_token_by_name(&plugin->store, "boiler-7");
	assert_null(token->client_id);
	cJSON *metadata = token_to_json(token);
	assert_bound(metadata, NULL);
	cJSON_Delete(metadata);
	tokens_plugin_free(plugin);

	char *bound = state_file_with(", \"clientId\": \"boiler-7-dev\"");
	assert_true(load_state(dir, bound, &plugin, error, sizeof(error)));
	free(bound);
	token = store_find_token_by_name(&plugin->store, "boiler-7");
	assert_non_null(token->client_id);
	assert_string_equal(token->client_id, "boiler-7-dev");
	tokens_plugin_free(plugin);
	test_remove_dir(dir);
	free(dir);
}

static void state_file_with_a_bad_client_id_is_refused(void **state)
{
	(void)state;
	static const struct bad_client_id cases[] = {
		{"\"\"", "'clientId' must not be empty"},
		{"\"site/boiler\"", "'clientId' must not hold '+', '#' or '/'"},
		{"\"a+\"", "'clientId' must not hold '+', '#' or '/'"},
		{"\"#\"", "'clientId' must not hold '+', '#' or '/'"},
		{"\"\\u0001\"", "'clientId' must be valid UTF-8 without control characters"},
		{"\"\xc3\x28\"", "'clientId' must be valid UTF-8 without control characters"},
		{"7", "'clientId' is not a string"},
		{"null", "'clientId' is not a string"},
	};
	char *dir = test_temp_dir();
	for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++){
		char *extra = test_format(", \"clientId\": %s", cases[i].json);
		char *content = state_file_with(extra);
		free(extra);
		char error[1024] = "";
		struct tokens_plugin *plugin;
		if(load_state(dir, content, &plugin, error, sizeof(error))){
			tokens_plugin_free(plugin);
			fail_msg("case %zu: a state file with clientId %s loaded", i, cases[i].json);
		}
		free(content);
		test_assert_contains(error, "tokens.json");
		test_assert_contains(error, "token \"boiler-7\": ");
		test_assert_contains(error, cases[i].fragment);
	}
	test_remove_dir(dir);
	free(dir);
}

/* A token line bound to client_id with current and previous secrets. */
static char *bound_token_line(const char *name, const char *client_id, const char *current, const char *previous)
{
	char current_hex[TOKEN_HASH_HEX_LEN + 1], previous_hex[TOKEN_HASH_HEX_LEN + 1];
	unsigned char hash[TOKEN_HASH_LEN];
	test_hash_of(current, hash);
	token_format_hash_to_hex(hash, current_hex);
	test_hash_of(previous, hash);
	token_format_hash_to_hex(hash, previous_hex);
	return test_format("{\"name\": \"%s\", \"role\": \"sensors\", \"requestedBy\": \"init\", "
			"\"issuedAt\": \"2026-11-28T10:00:00Z\", \"validUntil\": \"2027-01-01T00:00:00Z\", \"lastUsed\": null, "
			"\"hash\": \"%s\", \"clientId\": \"%s\", \"previousHash\": \"%s\", "
			"\"previousValidUntil\": \"2026-11-29T10:00:00Z\"}", name, current_hex, client_id, previous_hex);
}

/* A saved binding: {"clientId", "username", "hash"} with the hash of secret. */
static char *binding_line(const char *client_id, const char *secret)
{
	unsigned char hash[TOKEN_HASH_LEN];
	char hex[TOKEN_HASH_HEX_LEN + 1];
	test_hash_of(secret, hash);
	token_format_hash_to_hex(hash, hex);
	return test_format("{\"clientId\": \"%s\", \"username\": \"u\", \"hash\": \"%s\"}", client_id, hex);
}

static const struct session *offline_session(const struct tokens_plugin *plugin, const char *client_id)
{
	const struct session *session;
	HASH_FIND(hh_id, plugin->sessions.by_id, client_id, strlen(client_id), session);
	return session;
}

/* A saved binding of a persistent session is restored only for the
 * token's client id, whichever of its secrets it was made with (a
 * restored binding holds the session the broker restores with that id). */
static void restored_bindings_keep_to_the_client_id(void **state)
{
	(void)state;
	test_clock_set(test_time("2026-11-28T10:00:00Z"));
	char *seven = bound_token_line("boiler-7", "boiler-7-dev", "seven", "seven-before");
	char *eight = bound_token_line("boiler-8", "boiler-8-dev", "eight", "eight-before");
	const char *const bindings[][2] = {
		{"boiler-7-dev", "seven"},           /* restored: its client id, its current secret */
		{"boiler-8-dev", "eight-before"},    /* restored: its client id, its previous secret */
		{"intruder", "seven"},
		{"intruder-2", "eight-before"},
		{"boiler-7-dev ", "seven"},
		{"boiler-8", "eight"},
	};
	char *sessions = test_format("%s", "");
	for(size_t i = 0; i < sizeof(bindings) / sizeof(bindings[0]); i++){
		char *line = binding_line(bindings[i][0], bindings[i][1]);
		char *longer = test_format("%s%s%s", sessions, i ? ", " : "", line);
		free(line);
		free(sessions);
		sessions = longer;
	}
	char *content = test_format("{\"version\": 1, \"roles\": [{\"rolename\": \"sensors\", \"acls\": []}], "
			"\"tokens\": [%s, %s], \"sessions\": [%s]}\n", seven, eight, sessions);
	free(seven);
	free(eight);
	free(sessions);
	char *dir = test_temp_dir();
	char error[1024];
	struct tokens_plugin *plugin;
	if(!load_state(dir, content, &plugin, error, sizeof(error))){
		fail_msg("the state file does not load: %s", error);
	}
	free(content);
	assert_int_equal(plugin->sessions.offline, 2);
	const struct session *session = offline_session(plugin, "boiler-7-dev");
	assert_non_null(session);
	assert_string_equal(session->token->name, "boiler-7");
	assert_false(session->via_previous);
	session = offline_session(plugin, "boiler-8-dev");
	assert_non_null(session);
	assert_string_equal(session->token->name, "boiler-8");
	assert_true(session->via_previous);
	for(size_t i = 2; i < sizeof(bindings) / sizeof(bindings[0]); i++){
		assert_null(offline_session(plugin, bindings[i][0]));
	}
	test_assert_invariants(plugin);
	tokens_plugin_free(plugin);
	test_remove_dir(dir);
	free(dir);
}

#define CLIENT_ID_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		CLIENT_ID_TEST(created_with_a_client_id_shows_it_everywhere),
		CLIENT_ID_TEST(any_client_id_mqtt_can_carry_is_kept),
		CLIENT_ID_TEST(bad_client_ids_are_invalid_and_change_nothing),
		CLIENT_ID_TEST(bound_token_logs_in_only_with_its_client_id),
		CLIENT_ID_TEST(rotation_keeps_the_client_id_for_both_secrets),
		CLIENT_ID_TEST(a_session_of_another_client_id_breaks_an_invariant),
		CLIENT_ID_TEST(journal_replay_and_snapshot_keep_the_client_id),
		cmocka_unit_test(state_files_with_and_without_a_client_id_load),
		cmocka_unit_test(state_file_with_a_bad_client_id_is_refused),
		cmocka_unit_test(restored_bindings_keep_to_the_client_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
