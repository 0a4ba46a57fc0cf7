/*
 * rotateToken (plugin/commands_tokens.c, SPEC section 4 "Beyond the seed",
 * docs/protocol.md) through control_handle_request, and what each secret
 * logs in as afterwards (login_answer_for, the authentication callback's
 * decision), on the fake clock:
 *
 *  - the new secret logs in as the same token; the old one stops at once,
 *    or at the end of its grace period (previousValidUntil), which never
 *    outlasts its own validUntil;
 *  - the token keeps its name and role; its validUntil is the one given or
 *    the same lifetime as before, counted from now;
 *  - a token that is not there (unknown, revoked, rotated away) is
 *    notFound, and nothing changes;
 *  - a second rotation during a grace period: the secret it replaces gets
 *    the grace, the older one stops (a token has one previous secret);
 *  - the rotation and its grace period come back after a restart, from the
 *    journal and from a snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "instance.h"
#include "login.h"
#include "token_format.h"
#include "test_support.h"

#define HOUR 3600
#define DAY 86400
/* test_plugin_new's clock. */
#define NOW_TEXT "2026-11-28T10:00:00Z"

static int setup(void **state)
{
	struct test_plugin *test_plugin = test_plugin_new();
	cJSON_Delete(test_command_ok(&test_plugin->plugin, "alice", "{\"command\": \"createRole\", \"rolename\": \"devices\", "
			"\"acls\": [{\"acltype\": \"publishClientSend\", \"topic\": \"d/#\", \"allow\": true}]}"));
	*state = test_plugin;
	return 0;
}


static char *copy_of(const char *text)
{
	char *copy = strdup(text);
	assert_non_null(copy);
	return copy;
}

/* createToken of name in role "devices", valid until valid_until; returns
 * the secret (malloc'd). */
static char *create_token(struct tokens_plugin *plugin, const char *name, const char *valid_until)
{
	return test_create_token(plugin, name, "devices", valid_until);
}

/* rotateToken of name by bob, with the further fields in more (either ""
 * or starting with a comma), which must succeed; returns its data. */
static cJSON *rotate(struct tokens_plugin *plugin, const char *name, const char *more)
{
	char *command = test_format("{\"command\": \"rotateToken\", \"name\": \"%s\"%s}", name, more);
	cJSON *data = test_command_ok(plugin, "bob", command);
	free(command);
	return data;
}

/* The same, returning only the new secret (malloc'd). */
static char *rotate_secret(struct tokens_plugin *plugin, const char *name, const char *more)
{
	cJSON *data = rotate(plugin, name, more);
	char *secret = copy_of(test_string(data, "token"));
	cJSON_Delete(data);
	return secret;
}

/* getToken by name, which must succeed; the caller deletes it. */
static cJSON *get_token(struct tokens_plugin *plugin, const char *name)
{
	char *command = test_format("{\"command\": \"getToken\", \"name\": \"%s\"}", name);
	cJSON *data = test_command_ok(plugin, "alice", command);
	free(command);
	return data;
}

static struct login_answer login_with(const struct tokens_plugin *plugin, const char *secret)
{
	unsigned char hash[TOKEN_HASH_LEN];
	token_format_hash(secret, hash);
	return login_answer_for(&plugin->store, hash, "rotation-test-client", test_clock_now());
}

/* The secret logs in now, as token name: with its current secret, or with
 * the previous one during a grace period. */
static void assert_logs_in(const struct tokens_plugin *plugin, const char *secret, const char *name, bool via_previous)
{
	struct login_answer answer = login_with(plugin, secret);
	if(answer.verdict != LOGIN_ACCEPTED){
		fail_msg("a secret of %s is refused (verdict %d) at %lld", name, answer.verdict, (long long)test_clock_now());
	}
	assert_string_equal(answer.token->name, name);
	assert_int_equal(answer.via_previous, via_previous);
}

/* No token has the secret now. */
static void assert_refused(const struct tokens_plugin *plugin, const char *secret)
{
	struct login_answer answer = login_with(plugin, secret);
	if(answer.verdict != LOGIN_UNKNOWN){
		fail_msg("a secret rotated away logs in as %s (verdict %d) at %lld", answer.token ? answer.token->name : "?",
				answer.verdict, (long long)test_clock_now());
	}
}

/* The member key of getToken's data, or NULL when it has none. */
static const char *shown(struct tokens_plugin *plugin, const char *name, const char *key, char *out, size_t size)
{
	cJSON *data = get_token(plugin, name);
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(data, key);
	const char *value = NULL;
	if(item){
		assert_true(cJSON_IsString(item) && strlen(item->valuestring) < size);
		value = strcpy(out, item->valuestring);
	}
	cJSON_Delete(data);
	return value;
}

/* A restart as after a crash: the running instance's files closed as they
 * are (its journal not folded into the snapshot), then loaded by a new
 * instance as the plugin loads them at start-up. The caller frees it. */
static struct tokens_plugin *restarted(struct tokens_plugin *running, const char *state_path)
{
	persist_close(running->persist);
	running->persist = NULL;
	char error[1024] = "";
	struct tokens_plugin *plugin = tokens_plugin_new(state_path, test_log, test_clock_now, error, sizeof(error));
	if(plugin == NULL){
		fail_msg("the state does not load after the rotation: %s", error);
	}
	test_assert_invariants(plugin);
	return plugin;
}

/* ---- the secrets ---- */

static void without_grace_the_new_secret_logs_in_and_the_old_one_stops(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	char *old = create_token(plugin, "boiler-7", "2027-01-01T00:00:00Z");
	assert_logs_in(plugin, old, "boiler-7", false);

	cJSON *data = rotate(plugin, "boiler-7", "");
	char *new = copy_of(test_string(data, "token"));
	assert_int_equal(token_format_check(new), TOKEN_WELL_FORMED);
	assert_string_not_equal(new, old);
	assert_null(cJSON_GetObjectItemCaseSensitive(data, "previousValidUntil"));
	cJSON_Delete(data);

	assert_logs_in(plugin, new, "boiler-7", false);
	assert_refused(plugin, old);
	assert_null(store_find_previous(&plugin->store, store_find_token_by_name(&plugin->store, "boiler-7")));
	assert_int_equal(store_token_count(&plugin->store), 1);
	free(old);
	free(new);
}

static void with_grace_the_old_secret_logs_in_until_the_grace_ends(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	char *old = create_token(plugin, "boiler-7", "2027-01-01T00:00:00Z");
	int64_t rotated_at = test_clock_now();

	cJSON *data = rotate(plugin, "boiler-7", ", \"graceSeconds\": 3600");
	char *new = copy_of(test_string(data, "token"));
	assert_string_equal(test_string(data, "previousValidUntil"), "2026-11-28T11:00:00Z");
	cJSON_Delete(data);

	/* Both secrets, as the one token; getToken shows when the old one ends. */
	char until[64];
	assert_logs_in(plugin, new, "boiler-7", false);
	assert_logs_in(plugin, old, "boiler-7", true);
	assert_string_equal(shown(plugin, "boiler-7", "previousValidUntil", until, sizeof(until)), "2026-11-28T11:00:00Z");
	test_clock_set(rotated_at + HOUR - 1);
	assert_logs_in(plugin, old, "boiler-7", true);
	tokens_plugin_end_grace_periods(plugin, test_clock_now());   /* the tick: not yet */
	assert_logs_in(plugin, old, "boiler-7", true);

	/* At previousValidUntil the old secret is refused, the new one is not. */
	test_clock_set(rotated_at + HOUR);
	assert_refused(plugin, old);
	assert_logs_in(plugin, new, "boiler-7", false);
	assert_null(shown(plugin, "boiler-7", "previousValidUntil", until, sizeof(until)));
	/* And the tick forgets it. */
	struct token *token = store_find_token_by_name(&plugin->store, "boiler-7");
	assert_non_null(store_find_previous(&plugin->store, token));
	tokens_plugin_end_grace_periods(plugin, test_clock_now());
	assert_null(store_find_previous(&plugin->store, token));
	assert_true(test_log_find("tokens: the previous secret of boiler-7 has expired") >= 0);
	assert_refused(plugin, old);
	assert_logs_in(plugin, new, "boiler-7", false);
	free(old);
	free(new);
}

/* The grace period never outlasts the old secret's own validUntil, nor
 * the new one's. */
static void grace_ends_at_the_latest_at_either_validity(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	char *old = create_token(plugin, "boiler-7", "2026-11-28T10:30:00Z");
	cJSON *data = rotate(plugin, "boiler-7", ", \"graceSeconds\": 3600, \"validUntil\": \"2027-01-01T00:00:00Z\"");
	assert_string_equal(test_string(data, "previousValidUntil"), "2026-11-28T10:30:00Z");
	cJSON_Delete(data);
	test_clock_advance(30 * 60 - 1);
	assert_logs_in(plugin, old, "boiler-7", true);
	test_clock_advance(1);
	assert_refused(plugin, old);

	char *second = create_token(plugin, "boiler-8", "2027-01-01T00:00:00Z");
	data = rotate(plugin, "boiler-8", ", \"graceSeconds\": 3600, \"validUntil\": \"2026-11-28T10:40:00Z\"");
	assert_string_equal(test_string(data, "previousValidUntil"), "2026-11-28T10:40:00Z");
	cJSON_Delete(data);
	test_clock_set(test_time("2026-11-28T10:40:00Z") - 1);
	assert_logs_in(plugin, second, "boiler-8", true);
	test_clock_advance(1);
	assert_refused(plugin, second);
	free(old);
	free(second);
}

/* ---- the token ---- */

static void the_token_keeps_its_name_and_role_and_its_lifetime(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	free(create_token(plugin, "boiler-7", "2026-12-28T10:00:00Z"));   /* a 30-day lifetime */
	struct token *before = store_find_token_by_name(&plugin->store, "boiler-7");
	struct role *role = before->role;
	tokens_plugin_mark_used(plugin, before, test_clock_now());
	test_clock_advance(DAY);

	/* Without validUntil: the same lifetime, from now. */
	cJSON *data = rotate(plugin, "boiler-7", "");
	assert_string_equal(test_string(data, "name"), "boiler-7");
	assert_string_equal(test_string(data, "role"), "devices");
	assert_string_equal(test_string(data, "requestedBy"), "bob");
	assert_string_equal(test_string(data, "issuedAt"), "2026-11-29T10:00:00Z");
	assert_string_equal(test_string(data, "validUntil"), "2026-12-29T10:00:00Z");
	assert_string_equal(test_string(data, "lastUsed"), NOW_TEXT);
	assert_string_equal(test_string(data, "status"), "valid");
	cJSON_Delete(data);
	struct token *after = store_find_token_by_name(&plugin->store, "boiler-7");
	assert_ptr_equal(after->role, role);
	assert_int_equal(role->token_count, 1);
	assert_int_equal(store_token_count(&plugin->store), 1);

	/* With one: that one. */
	data = rotate(plugin, "boiler-7", ", \"validUntil\": \"2027-06-01T00:00:00Z\"");
	assert_string_equal(test_string(data, "validUntil"), "2027-06-01T00:00:00Z");
	assert_string_equal(test_string(data, "role"), "devices");
	cJSON_Delete(data);
	char until[64];
	assert_string_equal(shown(plugin, "boiler-7", "validUntil", until, sizeof(until)), "2027-06-01T00:00:00Z");
	assert_string_equal(shown(plugin, "boiler-7", "role", until, sizeof(until)), "devices");
}

/* ---- what cannot be rotated ---- */

static void rotating_a_token_that_is_not_there_is_not_found(void **state)
{
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;
	char *revoked = create_token(plugin, "revoked", "2027-01-01T00:00:00Z");
	unsigned char hash[TOKEN_HASH_LEN];
	char revoked_hex[TOKEN_HASH_HEX_LEN + 1], old_hex[TOKEN_HASH_HEX_LEN + 1];
	token_format_hash(revoked, hash);
	token_format_hash_to_hex(hash, revoked_hex);
	cJSON_Delete(test_command_ok(plugin, "alice", "{\"command\": \"revokeToken\", \"name\": \"revoked\"}"));
	char *old = create_token(plugin, "boiler-7", "2027-01-01T00:00:00Z");
	token_format_hash(old, hash);
	token_format_hash_to_hex(hash, old_hex);
	char *new = rotate_secret(plugin, "boiler-7", ", \"graceSeconds\": 3600");

	struct test_snapshot journal;
	test_snapshot_take(&journal, test_plugin->journal_path);
	char *commands[] = {
		test_format("{\"command\": \"rotateToken\", \"name\": \"never-made\"}"),
		test_format("{\"command\": \"rotateToken\", \"name\": \"revoked\"}"),
		test_format("{\"command\": \"rotateToken\", \"hash\": \"%s\"}", revoked_hex),
		/* A secret in its grace period is not a token's hash. */
		test_format("{\"command\": \"rotateToken\", \"hash\": \"%s\", \"graceSeconds\": 60}", old_hex),
	};
	for(size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++){
		cJSON *response = test_command(plugin, "bob", commands[i]);
		test_assert_error(response, "notFound", "Token not found");
		cJSON_Delete(response);
		free(commands[i]);
	}
	test_snapshot_assert_unchanged(&journal, test_plugin->journal_path);
	test_snapshot_free(&journal);
	assert_int_equal(store_token_count(&plugin->store), 1);
	assert_refused(plugin, revoked);
	assert_logs_in(plugin, old, "boiler-7", true);
	assert_logs_in(plugin, new, "boiler-7", false);
	free(revoked);
	free(old);
	free(new);
}

/* ---- twice ---- */

/* SPEC and docs/protocol.md speak of "the old secret": the one a rotation
 * replaces. A token has one previous secret, so a second rotation during
 * a grace period ends the first one's grace at once. */
static void a_second_rotation_during_the_grace_gives_it_to_the_secret_it_replaces(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	char *first = create_token(plugin, "boiler-7", "2027-01-01T00:00:00Z");
	char *second = rotate_secret(plugin, "boiler-7", ", \"graceSeconds\": 3600");
	test_clock_advance(10 * 60);
	cJSON *data = rotate(plugin, "boiler-7", ", \"graceSeconds\": 3600");
	char *third = copy_of(test_string(data, "token"));
	assert_string_equal(test_string(data, "previousValidUntil"), "2026-11-28T11:10:00Z");
	cJSON_Delete(data);

	assert_refused(plugin, first);
	assert_logs_in(plugin, second, "boiler-7", true);
	assert_logs_in(plugin, third, "boiler-7", false);
	test_clock_set(test_time("2026-11-28T11:10:00Z") - 1);
	assert_refused(plugin, first);
	assert_logs_in(plugin, second, "boiler-7", true);
	test_clock_advance(1);
	assert_refused(plugin, second);
	assert_logs_in(plugin, third, "boiler-7", false);

	/* A second rotation without grace ends the grace it found. */
	char *fourth = rotate_secret(plugin, "boiler-7", ", \"graceSeconds\": 3600");
	char *fifth = rotate_secret(plugin, "boiler-7", "");
	assert_refused(plugin, third);
	assert_refused(plugin, fourth);
	assert_logs_in(plugin, fifth, "boiler-7", false);
	assert_null(store_find_previous(&plugin->store, store_find_token_by_name(&plugin->store, "boiler-7")));
	free(first);
	free(second);
	free(third);
	free(fourth);
	free(fifth);
}

/* ---- a restart ---- */

static void the_rotation_and_its_grace_survive_a_restart(void **state)
{
	struct test_plugin *test_plugin = *state;
	struct tokens_plugin *plugin = &test_plugin->plugin;
	char *old = create_token(plugin, "boiler-7", "2027-01-01T00:00:00Z");
	char *new = rotate_secret(plugin, "boiler-7", ", \"graceSeconds\": 3600");
	test_clock_advance(HOUR / 2);

	/* From the journal, as after a crash. */
	struct tokens_plugin *replayed = restarted(plugin, test_plugin->state_path);
	assert_int_equal(store_token_count(&replayed->store), 1);
	test_assert_stores_equal(&plugin->store, &replayed->store);
	assert_logs_in(replayed, new, "boiler-7", false);
	assert_logs_in(replayed, old, "boiler-7", true);
	char until[64];
	assert_string_equal(shown(replayed, "boiler-7", "previousValidUntil", until, sizeof(until)), "2026-11-28T11:00:00Z");
	assert_string_equal(shown(replayed, "boiler-7", "role", until, sizeof(until)), "devices");

	/* From a snapshot. */
	tokens_plugin_snapshot(replayed);
	size_t journal_length = 0;
	free(test_read_file(test_plugin->journal_path, &journal_length));
	assert_int_equal(journal_length, 0);   /* all in the snapshot */
	struct tokens_plugin *reloaded = restarted(replayed, test_plugin->state_path);
	test_assert_stores_equal(&replayed->store, &reloaded->store);
	assert_logs_in(reloaded, new, "boiler-7", false);
	assert_logs_in(reloaded, old, "boiler-7", true);

	/* The grace still ends when it said. */
	test_clock_set(test_time("2026-11-28T11:00:00Z"));
	assert_refused(reloaded, old);
	assert_logs_in(reloaded, new, "boiler-7", false);
	tokens_plugin_free(reloaded);
	tokens_plugin_free(replayed);
	free(old);
	free(new);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, test_plugin_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(without_grace_the_new_secret_logs_in_and_the_old_one_stops),
		T(with_grace_the_old_secret_logs_in_until_the_grace_ends),
		T(grace_ends_at_the_latest_at_either_validity),
		T(the_token_keeps_its_name_and_role_and_its_lifetime),
		T(rotating_a_token_that_is_not_there_is_not_found),
		T(a_second_rotation_during_the_grace_gives_it_to_the_secret_it_replaces),
		T(the_rotation_and_its_grace_survive_a_restart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
