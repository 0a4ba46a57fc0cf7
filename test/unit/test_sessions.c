/*
 * Token-bound sessions (plugin/sessions.c): connected and offline, the
 * ways an offline binding ends, and why a context that merely looks like
 * an offline session (a reused pointer, a client id taken by another
 * login) never inherits its token's rights.
 */
#include "test_support.h"

#include <string.h>

#include "invariants.h"
#include "sessions.h"

/* Fake broker contexts: their addresses are all the plugin ever sees. */
static char context_memory[4];
#define DEVICE ((const struct mosquitto *)&context_memory[0])
#define OTHER ((const struct mosquitto *)&context_memory[1])
#define THIRD ((const struct mosquitto *)&context_memory[2])

/* What mosquitto_client_id would answer: NULL once the session is over. */
static const char *broker_ids[3];

static const char *fake_client_id(const struct mosquitto *client)
{
	return broker_ids[(const char *)client - context_memory];
}

struct fixture {
	struct test_plugin *test_plugin;
	struct sessions *sessions;
	struct token *token;
	struct token *other_token;
};

static int setup(void **state)
{
	struct fixture *fixture = calloc(1, sizeof(*fixture));
	fixture->test_plugin = test_plugin_new();
	struct tokens_plugin *plugin = &fixture->test_plugin->plugin;
	fixture->sessions = &plugin->sessions;
	struct role *role = test_add_role(&plugin->store, "devices");
	int64_t now = test_clock_now();
	fixture->token = test_add_token(&plugin->store, "boiler-7", role, now, now + 86400, 0);
	fixture->other_token = test_add_token(&plugin->store, "boiler-8", role, now, now + 86400, 0);
	broker_ids[0] = broker_ids[1] = broker_ids[2] = "boiler-7";
	*state = fixture;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fixture = *state;
	test_plugin_free(fixture->test_plugin);
	free(fixture);
	return 0;
}

static void check(const struct fixture *fixture)
{
	test_assert_invariants(&fixture->test_plugin->plugin);
}

/* A login of client_id on client with the fixture's token. */
static void log_in(struct fixture *fixture, const struct mosquitto *client, struct token *token,
		const char *client_id, bool persists)
{
	struct session_login login = {client_id, "boiler-7", token->hash, false, persists, persists};
	assert_true(sessions_bind(fixture->sessions, client, token, &login));
	assert_true(expiry_add(&fixture->test_plugin->plugin.expiry, token));
	check(fixture);
}

/* A context as the broker shows it: connected (or once connected) ones
 * have an address, those restored from its persistence do not. */
static struct session_context context_as(const struct mosquitto *client, const char *client_id, const char *username,
		bool restored)
{
	return (struct session_context){client, client_id, username, restored};
}

static void depart(struct fixture *fixture, const struct mosquitto *client, const char *client_id, bool rechecking)
{
	const struct session_context context = context_as(client, client_id, "boiler-7", false);
	sessions_depart(fixture->sessions, &context, DEPARTURE_ASK_AT_TICK, rechecking);
}

static void leave(struct fixture *fixture, const struct mosquitto *client)
{
	depart(fixture, client, fake_client_id(client), false);
	sessions_settle_departed(fixture->sessions, fake_client_id);
	check(fixture);
}

static struct session *offline_as(struct sessions *sessions, const struct mosquitto *client, const char *username,
		bool restored)
{
	const struct session_context context = context_as(client, fake_client_id(client), username, restored);
	return sessions_find_offline(sessions, &context);
}

static struct session *offline_of(struct fixture *fixture, const struct mosquitto *client)
{
	return offline_as(fixture->sessions, client, "boiler-7", false);
}

static void test_persistent_session_stays_bound_offline(void **state)
{
	struct fixture *fixture = *state;
	log_in(fixture, DEVICE, fixture->token, "boiler-7", true);
	leave(fixture, DEVICE);

	assert_null(sessions_find(fixture->sessions, DEVICE));
	struct session *offline = offline_of(fixture, DEVICE);
	assert_non_null(offline);
	assert_ptr_equal(offline->token, fixture->token);
	assert_int_equal(fixture->sessions->offline, 1);
	assert_int_equal(fixture->sessions->attached, 0);
	/* Another context with the same id, or another username, is not it. */
	assert_null(offline_of(fixture, OTHER));
	assert_null(offline_as(fixture->sessions, DEVICE, "mallory", false));
	assert_null(offline_as(fixture->sessions, DEVICE, NULL, false));
}

/* 2.1 says which it is; its contexts are not read at the tick (they may
 * be freed by then): the client-id function answers NULL to prove it. */
static const char *freed_context(const struct mosquitto *client)
{
	(void)client;
	fail_msg("a context was read at the tick");
	return NULL;
}

static void depart_as_2_1(struct fixture *fixture, const struct mosquitto *client, enum session_departure departure)
{
	const struct session_context context = context_as(client, "boiler-7", "boiler-7", false);
	sessions_depart(fixture->sessions, &context, departure, false);
}

static void test_on_2_1_client_offline_keeps_the_session_without_reading_the_context(void **state)
{
	struct fixture *fixture = *state;
	log_in(fixture, DEVICE, fixture->token, "boiler-7", true);
	depart_as_2_1(fixture, DEVICE, DEPARTURE_SESSION_STAYS);
	sessions_settle_departed(fixture->sessions, freed_context);
	check(fixture);
	assert_non_null(offline_of(fixture, DEVICE));
	/* Its session's end, reported later, ends the binding. */
	depart_as_2_1(fixture, DEVICE, DEPARTURE_SESSION_ENDS);
	assert_null(offline_of(fixture, DEVICE));
	check(fixture);
}

static void test_on_2_1_a_session_that_ends_before_the_tick_is_unbound(void **state)
{
	struct fixture *fixture = *state;
	log_in(fixture, DEVICE, fixture->token, "boiler-7", true);
	depart_as_2_1(fixture, DEVICE, DEPARTURE_SESSION_STAYS);
	depart_as_2_1(fixture, DEVICE, DEPARTURE_SESSION_ENDS);
	sessions_settle_departed(fixture->sessions, freed_context);
	check(fixture);
	assert_null(offline_of(fixture, DEVICE));
	assert_null(fixture->token->sessions);
}

static void test_clean_session_ends_with_its_connection(void **state)
{
	struct fixture *fixture = *state;
	log_in(fixture, DEVICE, fixture->token, "boiler-7", false);
	leave(fixture, DEVICE);
	assert_null(offline_of(fixture, DEVICE));
	assert_int_equal(fixture->sessions->offline, 0);
	assert_null(fixture->token->sessions);
}

static void test_session_the_broker_ended_is_unbound(void **state)
{
	struct fixture *fixture = *state;
	log_in(fixture, DEVICE, fixture->token, "boiler-7", true);
	broker_ids[0] = NULL;   /* the broker gave up the session: no client id */
	leave(fixture, DEVICE);
	assert_int_equal(fixture->sessions->offline, 0);
	assert_null(fixture->token->sessions);
}

static void test_next_token_login_with_the_id_decides(void **state)
{
	struct fixture *fixture = *state;
	log_in(fixture, DEVICE, fixture->token, "boiler-7", true);
	leave(fixture, DEVICE);
	log_in(fixture, OTHER, fixture->other_token, "boiler-7", true);

	assert_null(offline_of(fixture, DEVICE));
	assert_null(fixture->token->sessions);
	assert_ptr_equal(sessions_find(fixture->sessions, OTHER)->token, fixture->other_token);
	const struct session_record *saved = session_records_find(&fixture->sessions->changes, "boiler-7");
	assert_non_null(saved);
	assert_true(saved->bound);
	assert_memory_equal(saved->hash, fixture->other_token->hash, TOKEN_HASH_LEN);
}

static void test_returning_device_costs_no_save(void **state)
{
	struct fixture *fixture = *state;
	log_in(fixture, DEVICE, fixture->token, "boiler-7", true);
	leave(fixture, DEVICE);
	session_records_clear(&fixture->sessions->changes);   /* as after a save */
	log_in(fixture, OTHER, fixture->token, "boiler-7", true);
	assert_int_equal(session_records_count(&fixture->sessions->changes), 0);
	assert_null(offline_of(fixture, DEVICE));
	assert_non_null(sessions_find(fixture->sessions, OTHER));
}

static void test_other_logins_leave_the_binding_alone(void **state)
{
	struct fixture *fixture = *state;
	log_in(fixture, DEVICE, fixture->token, "boiler-7", true);
	leave(fixture, DEVICE);
	/* A login with the id on another context may still be refused: it
	 * takes nothing, and ends nothing (its takeover, if it is let in,
	 * is reported as the old context's disconnect). */
	sessions_note_login(fixture->sessions, OTHER, "boiler-7");
	assert_non_null(offline_of(fixture, DEVICE));
	assert_null(offline_of(fixture, OTHER));
	depart(fixture, DEVICE, "boiler-7", false);
	assert_null(offline_of(fixture, DEVICE));
	check(fixture);
}

static void test_login_on_the_same_pointer_is_a_new_context(void **state)
{
	struct fixture *fixture = *state;
	log_in(fixture, DEVICE, fixture->token, "boiler-7", true);
	leave(fixture, DEVICE);
	/* The broker freed the session without a word and reused its memory. */
	sessions_note_login(fixture->sessions, DEVICE, "boiler-7");
	assert_null(offline_of(fixture, DEVICE));
	assert_int_equal(fixture->sessions->offline, 0);
	check(fixture);
}

static void restore(struct fixture *fixture, const char *client_id)
{
	struct session_login login = {client_id, "boiler-7", fixture->token->hash, false, true, true};
	assert_true(sessions_restore(fixture->sessions, fixture->token, &login));
	assert_true(expiry_add(&fixture->test_plugin->plugin.expiry, fixture->token));
	check(fixture);
}

static void test_restored_binding_adopts_the_restored_context_with_its_id(void **state)
{
	struct fixture *fixture = *state;
	restore(fixture, "boiler-7");
	assert_null(offline_as(fixture->sessions, DEVICE, "someone-else", true));
	struct session *offline = offline_as(fixture->sessions, DEVICE, "boiler-7", true);
	assert_non_null(offline);
	assert_ptr_equal(offline->client, DEVICE);
	assert_null(offline_as(fixture->sessions, OTHER, "boiler-7", true));
	assert_non_null(offline_of(fixture, DEVICE));
}

static void test_restored_binding_never_adopts_a_connection(void **state)
{
	struct fixture *fixture = *state;
	restore(fixture, "boiler-7");
	/* An anonymous or password_file login with the id and the username,
	 * before and after a refused one: it has an address. */
	sessions_note_login(fixture->sessions, OTHER, "boiler-7");
	assert_null(offline_of(fixture, OTHER));
	sessions_note_login(fixture->sessions, THIRD, "boiler-7");
	assert_null(offline_of(fixture, OTHER));
	assert_null(offline_of(fixture, THIRD));
	assert_non_null(offline_as(fixture->sessions, DEVICE, "boiler-7", true));
}

static void test_recheck_ends_bindings_whose_session_is_gone(void **state)
{
	struct fixture *fixture = *state;
	log_in(fixture, DEVICE, fixture->token, "boiler-7", true);
	leave(fixture, DEVICE);
	broker_ids[1] = "boiler-8";
	log_in(fixture, OTHER, fixture->token, "boiler-8", true);
	leave(fixture, OTHER);
	broker_ids[2] = "boiler-9";
	log_in(fixture, THIRD, fixture->token, "boiler-9", true);
	leave(fixture, THIRD);
	assert_int_equal(fixture->sessions->offline, 3);

	sessions_start_recheck(fixture->sessions);
	const struct session_context device = context_as(DEVICE, "boiler-7", "boiler-7", false);
	assert_non_null(sessions_note_recheck(fixture->sessions, &device));
	/* The re-check refuses a session it cannot check, and says so with a
	 * disconnect: the session is still there. */
	depart(fixture, OTHER, "boiler-8", true);
	assert_int_equal(sessions_end_unmet(fixture->sessions), 1);
	check(fixture);
	assert_non_null(offline_of(fixture, DEVICE));
	assert_non_null(offline_of(fixture, OTHER));
	assert_null(offline_of(fixture, THIRD));
}

static void test_closing_a_token_ends_its_offline_sessions(void **state)
{
	struct fixture *fixture = *state;
	log_in(fixture, DEVICE, fixture->token, "boiler-7", true);
	leave(fixture, DEVICE);
	broker_ids[1] = "boiler-8";
	log_in(fixture, OTHER, fixture->token, "boiler-8", true);

	struct sessions_closed closed = sessions_close_token(fixture->sessions, fixture->token, NULL);
	assert_int_equal(closed.connected, 1);
	assert_int_equal(closed.offline, 1);
	check(fixture);
	assert_null(offline_of(fixture, DEVICE));
	assert_int_equal(fixture->sessions->offline, 0);
	const struct session_record *saved = session_records_find(&fixture->sessions->changes, "boiler-7");
	assert_non_null(saved);
	assert_false(saved->bound);
}

static void test_rotation_moves_offline_sessions_and_grace_end_closes_them(void **state)
{
	struct fixture *fixture = *state;
	log_in(fixture, DEVICE, fixture->token, "boiler-7", true);
	leave(fixture, DEVICE);
	sessions_move(fixture->token, fixture->other_token);
	struct session *offline = offline_of(fixture, DEVICE);
	assert_ptr_equal(offline->token, fixture->other_token);
	assert_true(offline->via_previous);

	struct sessions_closed closed = sessions_close_previous(fixture->sessions, fixture->other_token);
	assert_int_equal(closed.offline, 1);
	assert_null(offline_of(fixture, DEVICE));
}

static void count_binding(void *writer, const struct session *session)
{
	(void)session;
	(*(size_t *)writer)++;
}

static void three_go_offline(struct fixture *fixture, struct token *last_token)
{
	const char *ids[3] = {"boiler-7", "boiler-8", "boiler-9"};
	const struct mosquitto *clients[3] = {DEVICE, OTHER, THIRD};
	for(int i = 0; i < 3; i++){
		broker_ids[i] = ids[i];
		log_in(fixture, clients[i], i == 2 ? last_token : fixture->token, ids[i], true);
		depart(fixture, clients[i], ids[i], false);
	}
	assert_int_equal(sessions_settle_departed(fixture->sessions, fake_client_id), 1);
	check(fixture);
}

static void test_a_token_beyond_its_bound_loses_its_oldest_offline_session(void **state)
{
	struct fixture *fixture = *state;
	fixture->sessions->max_offline_per_token = 2;
	three_go_offline(fixture, fixture->token);
	assert_null(offline_of(fixture, DEVICE));
	assert_non_null(offline_of(fixture, OTHER));
	assert_non_null(offline_of(fixture, THIRD));
}

static void test_beyond_the_bound_for_all_new_offline_sessions_are_not_kept(void **state)
{
	struct fixture *fixture = *state;
	fixture->sessions->max_offline = 2;
	/* Another token's churn ends none of the bindings already kept. */
	three_go_offline(fixture, fixture->other_token);
	assert_non_null(offline_of(fixture, DEVICE));
	assert_non_null(offline_of(fixture, OTHER));
	assert_null(offline_of(fixture, THIRD));
}

static void test_a_login_taking_over_a_connected_id_keeps_the_saved_binding(void **state)
{
	struct fixture *fixture = *state;
	log_in(fixture, DEVICE, fixture->token, "boiler-7", true);
	session_records_clear(&fixture->sessions->changes);   /* as after a save */
	log_in(fixture, OTHER, fixture->token, "boiler-7", true);
	/* The broker closes the old connection and gives its session up. */
	broker_ids[0] = NULL;
	leave(fixture, DEVICE);
	const struct session_record *saved = session_records_find(&fixture->sessions->changes, "boiler-7");
	assert_non_null(saved);
	assert_true(saved->bound);
}

static void test_only_restorable_sessions_with_short_ids_are_saved(void **state)
{
	struct fixture *fixture = *state;
	struct session_login clean_start = {"boiler-7", "boiler-7", fixture->token->hash, false, true, false};
	assert_true(sessions_bind(fixture->sessions, DEVICE, fixture->token, &clean_start));
	char long_id[SESSION_SAVED_TEXT_MAX + 2];
	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	struct session_login long_login = {long_id, "boiler-7", fixture->token->hash, false, true, true};
	assert_true(sessions_bind(fixture->sessions, OTHER, fixture->token, &long_login));
	assert_true(expiry_add(&fixture->test_plugin->plugin.expiry, fixture->token));
	check(fixture);
	assert_int_equal(session_records_count(&fixture->sessions->changes), 0);
	size_t count = 0;
	sessions_each_binding(fixture->sessions, count_binding, &count);
	assert_int_equal(count, 0);
}

static void test_snapshot_keeps_sessions_that_may_be_restored(void **state)
{
	struct fixture *fixture = *state;
	log_in(fixture, DEVICE, fixture->token, "boiler-7", true);     /* connected, persists */
	broker_ids[1] = "boiler-8";
	log_in(fixture, OTHER, fixture->token, "boiler-8", false);     /* connected, clean */
	broker_ids[2] = "boiler-9";
	log_in(fixture, THIRD, fixture->token, "boiler-9", true);
	leave(fixture, THIRD);                                         /* offline */
	size_t count = 0;
	sessions_each_binding(fixture->sessions, count_binding, &count);
	assert_int_equal(count, 2);
}

/* ---- the instance: revoke replies, restarts ---- */

/* A token created by command (so that the state files hold it), with an
 * offline persistent session on DEVICE. */
static struct token *token_with_offline_session(struct tokens_plugin *plugin, const char *name)
{
	cJSON *data = test_command_ok(plugin, "admin", "{\"command\": \"createRole\", \"rolename\": \"fleet\"}");
	cJSON_Delete(data);
	char *command = test_format("{\"command\": \"createToken\", \"name\": \"%s\", \"role\": \"fleet\", "
			"\"validUntil\": \"2027-01-01T00:00:00Z\"}", name);
	data = test_command_ok(plugin, "admin", command);
	free(command);
	cJSON_Delete(data);
	struct token *token = store_find_token_by_name(&plugin->store, name);
	assert_non_null(token);
	struct session_login login = {"boiler-7", "boiler-7", token->hash, false, true, true};
	assert_true(sessions_bind(&plugin->sessions, DEVICE, token, &login));
	assert_true(expiry_add(&plugin->expiry, token));
	const struct session_context context = context_as(DEVICE, "boiler-7", "boiler-7", false);
	sessions_depart(&plugin->sessions, &context, DEPARTURE_ASK_AT_TICK, false);
	sessions_settle_departed(&plugin->sessions, fake_client_id);
	test_assert_invariants(plugin);
	assert_int_equal(plugin->sessions.offline, 1);
	return token;
}

static void test_revoke_reports_offline_sessions_ended(void **state)
{
	struct fixture *fixture = *state;
	struct tokens_plugin *plugin = &fixture->test_plugin->plugin;
	token_with_offline_session(plugin, "boiler-9");
	cJSON *data = test_command_ok(plugin, "admin", "{\"command\": \"revokeToken\", \"name\": \"boiler-9\"}");
	assert_int_equal(cJSON_GetObjectItem(data, "disconnected")->valueint, 0);
	assert_int_equal(cJSON_GetObjectItem(data, "offlineSessionsEnded")->valueint, 1);
	cJSON_Delete(data);
	assert_int_equal(plugin->sessions.offline, 0);
	assert_null(offline_as(&plugin->sessions, DEVICE, "boiler-7", false));
}

/* The instance a restart gives: the live one lets go of the files. */
static struct tokens_plugin *restarted(struct fixture *fixture)
{
	struct tokens_plugin *live = &fixture->test_plugin->plugin;
	persist_close(live->persist);
	live->persist = NULL;
	char error[1024];
	struct tokens_plugin *plugin = tokens_plugin_new(fixture->test_plugin->state_path, test_log, test_clock_now,
			error, sizeof(error));
	if(plugin == NULL){
		fail_msg("the files do not load: %s", error);
	}
	test_assert_invariants(plugin);
	return plugin;
}

static void assert_restored_on(struct tokens_plugin *plugin, const char *token_name)
{
	assert_int_equal(plugin->sessions.offline, 1);
	/* A connection never takes it; the context the broker restored does. */
	sessions_note_login(&plugin->sessions, OTHER, "boiler-7");
	assert_null(offline_as(&plugin->sessions, OTHER, "boiler-7", false));
	struct session *restored = offline_as(&plugin->sessions, THIRD, "boiler-7", true);
	assert_non_null(restored);
	assert_string_equal(restored->token->name, token_name);
	test_assert_invariants(plugin);
}

static void test_binding_saved_by_the_periodic_save_survives_a_restart(void **state)
{
	struct fixture *fixture = *state;
	struct tokens_plugin *live = &fixture->test_plugin->plugin;
	tokens_plugin_keep_sessions(live);
	token_with_offline_session(live, "boiler-9");
	tokens_plugin_save_sessions(live);
	assert_int_equal(session_records_count(&live->sessions.changes), 0);

	struct tokens_plugin *plugin = restarted(fixture);
	assert_restored_on(plugin, "boiler-9");
	tokens_plugin_free(plugin);
}

static void test_binding_in_a_snapshot_survives_a_restart(void **state)
{
	struct fixture *fixture = *state;
	struct tokens_plugin *live = &fixture->test_plugin->plugin;
	tokens_plugin_keep_sessions(live);
	token_with_offline_session(live, "boiler-9");
	tokens_plugin_snapshot(live);
	assert_false(persist_has_journal(live->persist));

	struct tokens_plugin *plugin = restarted(fixture);
	assert_restored_on(plugin, "boiler-9");
	tokens_plugin_free(plugin);
}

static void test_binding_of_a_revoked_token_is_not_restored(void **state)
{
	struct fixture *fixture = *state;
	struct tokens_plugin *live = &fixture->test_plugin->plugin;
	tokens_plugin_keep_sessions(live);
	struct token *token = token_with_offline_session(live, "boiler-9");
	tokens_plugin_save_sessions(live);
	/* Revoked behind the plugin's back: only the journal's revoke line
	 * says so, not a sessions line. */
	struct sessions_closed closed = sessions_close_token(&live->sessions, token, NULL);
	assert_int_equal(closed.offline, 1);
	session_records_clear(&live->sessions.changes);
	cJSON *data = test_command_ok(live, "admin", "{\"command\": \"revokeToken\", \"name\": \"boiler-9\"}");
	cJSON_Delete(data);

	struct tokens_plugin *plugin = restarted(fixture);
	assert_int_equal(plugin->sessions.offline, 0);
	tokens_plugin_free(plugin);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_persistent_session_stays_bound_offline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_2_1_client_offline_keeps_the_session_without_reading_the_context,
				setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_2_1_a_session_that_ends_before_the_tick_is_unbound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clean_session_ends_with_its_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_the_broker_ended_is_unbound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_next_token_login_with_the_id_decides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_returning_device_costs_no_save, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_logins_leave_the_binding_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_on_the_same_pointer_is_a_new_context, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restored_binding_adopts_the_restored_context_with_its_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restored_binding_never_adopts_a_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recheck_ends_bindings_whose_session_is_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_closing_a_token_ends_its_offline_sessions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_moves_offline_sessions_and_grace_end_closes_them, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_token_beyond_its_bound_loses_its_oldest_offline_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_beyond_the_bound_for_all_new_offline_sessions_are_not_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_login_taking_over_a_connected_id_keeps_the_saved_binding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_only_restorable_sessions_with_short_ids_are_saved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_keeps_sessions_that_may_be_restored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revoke_reports_offline_sessions_ended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binding_saved_by_the_periodic_save_survives_a_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binding_in_a_snapshot_survives_a_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binding_of_a_revoked_token_is_not_restored, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
