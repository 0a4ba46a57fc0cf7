/*
 * Lifecycle events and metrics (plugin/events.c, README "Events and expiry
 * warnings" and "Metrics"): what a subscriber to $CONTROL/tokens/v1/events
 * or $SYS/broker/tokens/# receives, field by field; that no secret ever
 * leaves; and when the expiry notices are sent (once each).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "token_format.h"
#include "test_support.h"

#define DAY 86400
#define WARNING_DAYS 7   /* test_plugin_new's notice queue lead */
#define EVENTS "$CONTROL/tokens/v1/events"

/* ---- captured publishes ---- */

#define MAX_MESSAGES 64

struct message {
	char *topic;
	char *payload;
	bool retain;
};

static struct message messages[MAX_MESSAGES];
static size_t message_count;

static void capture_publish(const char *topic, const char *payload, bool retain)
{
	assert_true(message_count < MAX_MESSAGES);
	messages[message_count].topic = strdup(topic);
	messages[message_count].payload = strdup(payload);
	assert_non_null(messages[message_count].topic);
	assert_non_null(messages[message_count].payload);
	messages[message_count].retain = retain;
	message_count++;
}

static void messages_reset(void)
{
	for(size_t i = 0; i < message_count; i++){
		free(messages[i].topic);
		free(messages[i].payload);
	}
	memset(messages, 0, sizeof(messages));
	message_count = 0;
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct test_plugin *test_plugin = test_plugin_new();
	test_plugin->plugin.publish = capture_publish;
	messages_reset();
	*state = test_plugin;
	return 0;
}

static int teardown(void **state)
{
	messages_reset();
	test_plugin_free(*state);
	return 0;
}


static const char *journal_path_of(void **state)
{
	return ((struct test_plugin *)*state)->journal_path;
}

/* The event message at index, parsed; checks its topic and that it is
 * not retained. The caller deletes it. */
static cJSON *event_at(size_t index)
{
	assert_true(index < message_count);
	assert_string_equal(messages[index].topic, EVENTS);
	assert_false(messages[index].retain);
	cJSON *event = cJSON_Parse(messages[index].payload);
	if(event == NULL || !cJSON_IsObject(event)){
		fail_msg("event payload is not a JSON object: %s", messages[index].payload);
	}
	return event;
}

static void hex_of(const unsigned char hash[TOKEN_HASH_LEN], char hex[TOKEN_HASH_HEX_LEN + 1])
{
	token_format_hash_to_hex(hash, hex);
}

static void assert_keys(const cJSON *object, const char *const *keys, size_t count)
{
	assert_int_equal(cJSON_GetArraySize(object), count);
	for(size_t i = 0; i < count; i++){
		if(!cJSON_HasObjectItem(object, keys[i])){
			fail_msg("missing key \"%s\"", keys[i]);
		}
	}
}

static void assert_no_message_contains(const char *fragment)
{
	for(size_t i = 0; i < message_count; i++){
		if(strstr(messages[i].payload, fragment) || strstr(messages[i].topic, fragment)){
			fail_msg("message %zu on %s carries \"%s\": %s", i, messages[i].topic, fragment, messages[i].payload);
		}
	}
}

/* ---- event payloads ---- */

static void event_with_by_and_previous_hash_has_every_field(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	struct role *role = test_add_role(&plugin->store, "reader");
	struct token *token = test_add_token(&plugin->store, "ci-bot", role,
			test_time("2026-11-01T08:00:00Z"), test_time("2027-01-01T00:00:00Z"), TIME_NEVER);
	unsigned char previous[TOKEN_HASH_LEN];
	test_hash_of("secret-of-old", previous);

	events_publish(plugin, "tokenRotated", token, "alice", previous);

	assert_int_equal(message_count, 1);
	cJSON *event = event_at(0);
	static const char *const keys[] = {"name", "role", "requestedBy", "issuedAt", "validUntil", "lastUsed",
		"hash", "status", "event", "at", "by", "previousHash"};
	assert_keys(event, keys, sizeof(keys) / sizeof(keys[0]));
	char hex[TOKEN_HASH_HEX_LEN + 1], previous_hex[TOKEN_HASH_HEX_LEN + 1];
	hex_of(token->hash, hex);
	hex_of(previous, previous_hex);
	assert_string_equal(test_string(event, "name"), "ci-bot");
	assert_string_equal(test_string(event, "role"), "reader");
	assert_string_equal(test_string(event, "requestedBy"), "tester");
	assert_string_equal(test_string(event, "issuedAt"), "2026-11-01T08:00:00Z");
	assert_string_equal(test_string(event, "validUntil"), "2027-01-01T00:00:00Z");
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(event, "lastUsed")));
	assert_string_equal(test_string(event, "hash"), hex);
	assert_string_equal(test_string(event, "status"), "valid");
	assert_string_equal(test_string(event, "event"), "tokenRotated");
	assert_string_equal(test_string(event, "at"), "2026-11-28T10:00:00Z");
	assert_string_equal(test_string(event, "by"), "alice");
	assert_string_equal(test_string(event, "previousHash"), previous_hex);
	cJSON_Delete(event);
	assert_no_message_contains("secret-of-");
}

static void event_without_by_has_no_by_nor_previous_hash(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	struct role *role = test_add_role(&plugin->store, "reader");
	/* Expired an hour ago, last used yesterday. */
	struct token *token = test_add_token(&plugin->store, "old-bot", role,
			test_time("2026-01-01T00:00:00Z"), test_time("2026-11-28T09:00:00Z"), test_time("2026-11-27T12:30:00Z"));

	events_publish(plugin, "tokenExpired", token, NULL, NULL);

	assert_int_equal(message_count, 1);
	cJSON *event = event_at(0);
	static const char *const keys[] = {"name", "role", "requestedBy", "issuedAt", "validUntil", "lastUsed",
		"hash", "status", "event", "at"};
	assert_keys(event, keys, sizeof(keys) / sizeof(keys[0]));
	assert_string_equal(test_string(event, "lastUsed"), "2026-11-27T12:30:00Z");
	assert_string_equal(test_string(event, "status"), "invalid");
	assert_string_equal(test_string(event, "event"), "tokenExpired");
	assert_string_equal(test_string(event, "at"), "2026-11-28T10:00:00Z");
	cJSON_Delete(event);
}

/* At validUntil exactly the token no longer logs in: "invalid". */
static void status_turns_invalid_at_valid_until(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	struct role *role = test_add_role(&plugin->store, "reader");
	int64_t now = test_clock_now();
	struct token *token = test_add_token(&plugin->store, "edge", role, now - DAY, now + 1, TIME_NEVER);

	events_publish(plugin, "tokenCreated", token, "alice", NULL);
	test_clock_advance(1);
	events_publish(plugin, "tokenCreated", token, "alice", NULL);

	assert_int_equal(message_count, 2);
	cJSON *before = event_at(0), *at = event_at(1);
	assert_string_equal(test_string(before, "status"), "valid");
	assert_string_equal(test_string(at, "status"), "invalid");
	assert_string_equal(test_string(at, "at"), "2026-11-28T10:00:01Z");
	cJSON_Delete(before);
	cJSON_Delete(at);
}

/* Through the control commands: one event each, with "by", and the
 * secrets that createToken and rotateToken return are in none of them. */
static void command_events_never_carry_the_secret(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	cJSON_Delete(test_command_ok(plugin, "alice", "{\"command\": \"createRole\", \"rolename\": \"reader\"}"));
	assert_int_equal(message_count, 0);

	cJSON *created = test_command_ok(plugin, "alice", "{\"command\": \"createToken\", \"name\": \"ci-bot\", "
			"\"role\": \"reader\", \"validUntil\": \"2027-01-01T00:00:00Z\"}");
	char *secret = strdup(test_string(created, "token"));
	assert_non_null(secret);
	cJSON_Delete(created);
	assert_int_equal(message_count, 1);
	cJSON *event = event_at(0);
	assert_string_equal(test_string(event, "event"), "tokenCreated");
	assert_string_equal(test_string(event, "name"), "ci-bot");
	assert_string_equal(test_string(event, "by"), "alice");
	assert_string_equal(test_string(event, "requestedBy"), "alice");
	assert_false(cJSON_HasObjectItem(event, "previousHash"));
	unsigned char hash[TOKEN_HASH_LEN];
	test_hash_of(secret, hash);
	char created_hex[TOKEN_HASH_HEX_LEN + 1];
	hex_of(hash, created_hex);
	assert_string_equal(test_string(event, "hash"), created_hex);
	cJSON_Delete(event);

	cJSON *rotated = test_command_ok(plugin, "bob", "{\"command\": \"rotateToken\", \"name\": \"ci-bot\"}");
	char *new_secret = strdup(test_string(rotated, "token"));
	assert_non_null(new_secret);
	cJSON_Delete(rotated);
	assert_int_equal(message_count, 2);
	event = event_at(1);
	assert_string_equal(test_string(event, "event"), "tokenRotated");
	assert_string_equal(test_string(event, "by"), "bob");
	assert_string_equal(test_string(event, "previousHash"), created_hex);
	test_hash_of(new_secret, hash);
	char rotated_hex[TOKEN_HASH_HEX_LEN + 1];
	hex_of(hash, rotated_hex);
	assert_string_equal(test_string(event, "hash"), rotated_hex);
	cJSON_Delete(event);

	cJSON_Delete(test_command_ok(plugin, "carol", "{\"command\": \"revokeToken\", \"name\": \"ci-bot\"}"));
	assert_int_equal(message_count, 3);
	event = event_at(2);
	assert_string_equal(test_string(event, "event"), "tokenRevoked");
	assert_string_equal(test_string(event, "by"), "carol");
	assert_string_equal(test_string(event, "hash"), rotated_hex);
	cJSON_Delete(event);

	events_publish_metrics(plugin);
	assert_int_equal(message_count, 10);
	assert_no_message_contains(secret);
	assert_no_message_contains(new_secret);
	free(secret);
	free(new_secret);
}

/* ---- expiry notices ---- */

static size_t count_events(const char *name)
{
	size_t count = 0;
	for(size_t i = 0; i < message_count; i++){
		cJSON *event = event_at(i);
		const cJSON *kind = cJSON_GetObjectItemCaseSensitive(event, "event");
		if(cJSON_IsString(kind) && strcmp(kind->valuestring, name) == 0){
			count++;
		}
		cJSON_Delete(event);
	}
	return count;
}

/* Moves the fake clock to t and runs the notices as the tick does. */
static void tick_at(struct tokens_plugin *plugin, int64_t t)
{
	test_clock_set(t);
	events_send_due_notices(plugin, test_clock_now());
}

/* A token of a new role "reader", never used, its notices scheduled as a
 * created token's are. */
static struct token *scheduled_token(struct tokens_plugin *plugin, const char *name, int64_t issued_at,
		int64_t valid_until)
{
	struct role *role = test_add_role(&plugin->store, "reader");
	struct token *token = test_add_token(&plugin->store, name, role, issued_at, valid_until, TIME_NEVER);
	tokens_plugin_schedule_notices(plugin, token);
	return token;
}

/* The event at index is a kind event whose key is value. */
static void assert_event(size_t index, const char *kind, const char *key, const char *value)
{
	cJSON *event = event_at(index);
	assert_string_equal(test_string(event, "event"), kind);
	assert_string_equal(test_string(event, key), value);
	cJSON_Delete(event);
}

static void expiring_is_sent_once_at_warning_days_before_valid_until(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	int64_t valid_until = test_time("2026-12-28T10:00:00Z");
	int64_t warning_at = valid_until - WARNING_DAYS * DAY;   /* 2026-12-21T10:00:00Z */
	struct token *token = scheduled_token(plugin, "ci-bot", test_clock_now(), valid_until);

	tick_at(plugin, test_clock_now());
	tick_at(plugin, warning_at - 1);
	assert_int_equal(message_count, 0);
	assert_false(token->expiring_noticed);

	tick_at(plugin, warning_at);
	assert_int_equal(message_count, 1);
	cJSON *event = event_at(0);
	assert_string_equal(test_string(event, "event"), "tokenExpiring");
	assert_string_equal(test_string(event, "name"), "ci-bot");
	assert_string_equal(test_string(event, "at"), "2026-12-21T10:00:00Z");
	assert_string_equal(test_string(event, "validUntil"), "2026-12-28T10:00:00Z");
	assert_string_equal(test_string(event, "status"), "valid");
	assert_false(cJSON_HasObjectItem(event, "by"));
	cJSON_Delete(event);
	assert_true(token->expiring_noticed);
	assert_false(token->expired_noticed);
	assert_int_equal(plugin->expired_tokens, 0);

	/* Not again: same second, a day later, the last second before expiry. */
	tick_at(plugin, warning_at);
	tick_at(plugin, warning_at + DAY);
	tick_at(plugin, valid_until - 1);
	assert_int_equal(message_count, 1);

	tick_at(plugin, valid_until);
	assert_int_equal(message_count, 2);
	event = event_at(1);
	assert_string_equal(test_string(event, "event"), "tokenExpired");
	assert_string_equal(test_string(event, "at"), "2026-12-28T10:00:00Z");
	assert_string_equal(test_string(event, "status"), "invalid");
	cJSON_Delete(event);
	assert_true(token->expired_noticed);
	assert_int_equal(plugin->expired_tokens, 1);

	tick_at(plugin, valid_until + 1);
	tick_at(plugin, valid_until + 365 * DAY);
	assert_int_equal(message_count, 2);
	assert_int_equal(count_events("tokenExpiring"), 1);
	assert_int_equal(count_events("tokenExpired"), 1);
	assert_int_equal(plugin->expired_tokens, 1);
}

/* The marks go to the journal first, so a restart does not send them again. */
static void notices_are_recorded_in_the_journal(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	int64_t valid_until = test_clock_now() + 3 * DAY;
	struct token *token = scheduled_token(plugin, "ci-bot", test_clock_now(), valid_until);
	char hex[TOKEN_HASH_HEX_LEN + 1];
	hex_of(token->hash, hex);

	tick_at(plugin, test_clock_now());
	tick_at(plugin, valid_until);
	assert_int_equal(message_count, 2);

	size_t length;
	char *journal = test_read_file(journal_path_of(state), &length);
	assert_non_null(journal);
	size_t noticed = 0;
	for(char *line = strtok(journal, "\n"); line; line = strtok(NULL, "\n")){
		cJSON *change = cJSON_Parse(line);
		const cJSON *op = cJSON_GetObjectItemCaseSensitive(change, "op");
		if(cJSON_IsString(op) && strcmp(op->valuestring, "noticed") == 0){
			assert_string_equal(test_string(change, "hash"), hex);
			assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(change, "expiring")));
			assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(change, "expired")), noticed == 1);
			noticed++;
		}
		cJSON_Delete(change);
	}
	free(journal);
	assert_int_equal(noticed, 2);
}

static size_t published;

static void count_publish(const char *topic, const char *payload, bool retain)
{
	(void)topic;
	(void)payload;
	(void)retain;
	published++;
}

/* A backlog (tokens that expired while the broker was down) goes out a
 * bounded batch a tick: each notice costs a journal fsync. */
static void a_backlog_of_notices_is_spread_over_ticks(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	plugin->publish = count_publish;
	published = 0;
	struct role *role = test_add_role(&plugin->store, "reader");
	int64_t now = test_clock_now();
	size_t backlog = 2 * NOTICES_PER_TICK + 7;
	for(size_t i = 0; i < backlog; i++){
		char *name = test_format("expired-%zu", i);
		struct token *token = test_add_token(&plugin->store, name, role, now - 10 * DAY, now - DAY, TIME_NEVER);
		tokens_plugin_schedule_notices(plugin, token);
		free(name);
	}
	events_send_due_notices(plugin, now);
	assert_int_equal(published, NOTICES_PER_TICK);
	events_send_due_notices(plugin, now);
	assert_int_equal(published, 2 * NOTICES_PER_TICK);
	events_send_due_notices(plugin, now);
	events_send_due_notices(plugin, now);
	assert_int_equal(published, backlog);
	assert_int_equal(plugin->expired_tokens, backlog);
}

/* Created (or rotated) inside the warning window: tokenExpiring at once. */
static void token_inside_the_window_is_warned_at_once(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	int64_t valid_until = test_clock_now() + 2 * DAY;
	scheduled_token(plugin, "short", test_clock_now(), valid_until);

	tick_at(plugin, test_clock_now());
	assert_int_equal(message_count, 1);
	assert_event(0, "tokenExpiring", "at", "2026-11-28T10:00:00Z");
	tick_at(plugin, valid_until - 1);
	assert_int_equal(message_count, 1);
}

/* Expired while the broker was down: no warning, only tokenExpired. */
static void token_expired_while_down_gets_only_expired(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	int64_t valid_until = test_clock_now() - DAY;
	struct token *token = scheduled_token(plugin, "stale", valid_until - 30 * DAY, valid_until);

	tick_at(plugin, test_clock_now());
	assert_int_equal(message_count, 1);
	assert_event(0, "tokenExpired", "status", "invalid");
	assert_true(token->expiring_noticed);
	assert_true(token->expired_noticed);
	assert_int_equal(plugin->expired_tokens, 1);

	tick_at(plugin, test_clock_now() + DAY);
	assert_int_equal(message_count, 1);
}

/* A token whose warning was sent before a restart (the mark came back
 * from the state file) gets only tokenExpired, at validUntil. */
static void warning_sent_before_a_restart_is_not_repeated(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	struct role *role = test_add_role(&plugin->store, "reader");
	int64_t valid_until = test_clock_now() + 3 * DAY;
	struct token *token = test_add_token(&plugin->store, "warned", role, test_clock_now(), valid_until, TIME_NEVER);
	token->expiring_noticed = true;
	assert_true(tokens_plugin_start_notices(plugin, WARNING_DAYS * DAY));

	tick_at(plugin, test_clock_now());
	tick_at(plugin, valid_until - 1);
	assert_int_equal(message_count, 0);
	tick_at(plugin, valid_until);
	assert_int_equal(message_count, 1);
	assert_int_equal(count_events("tokenExpired"), 1);
}

/* The warning lead is the configured one, not a fixed 7 days. */
static void warning_follows_the_configured_days(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	struct role *role = test_add_role(&plugin->store, "reader");
	int64_t valid_until = test_clock_now() + 10 * DAY;
	test_add_token(&plugin->store, "ci-bot", role, test_clock_now(), valid_until, TIME_NEVER);
	assert_true(tokens_plugin_start_notices(plugin, 2 * DAY));

	tick_at(plugin, valid_until - 2 * DAY - 1);
	assert_int_equal(message_count, 0);
	tick_at(plugin, valid_until - 2 * DAY);
	assert_int_equal(message_count, 1);
	assert_event(0, "tokenExpiring", "at", "2026-12-06T10:00:00Z");
}

/* ---- metrics ---- */

static void assert_metric(size_t index, const char *name, const char *value)
{
	assert_true(index < message_count);
	char *topic = test_format("$SYS/broker/tokens/%s", name);
	assert_string_equal(messages[index].topic, topic);
	free(topic);
	assert_string_equal(messages[index].payload, value);
	assert_true(messages[index].retain);
}

static void metrics_are_retained_decimal_numbers(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	struct role *role = test_add_role(&plugin->store, "reader");
	int64_t now = test_clock_now();
	test_add_token(&plugin->store, "a", role, now, now + 30 * DAY, TIME_NEVER);
	test_add_token(&plugin->store, "b", role, now, now + 30 * DAY, now);
	test_add_token(&plugin->store, "gone", role, now - 30 * DAY, now - DAY, TIME_NEVER);
	assert_true(tokens_plugin_start_notices(plugin, WARNING_DAYS * DAY));
	tick_at(plugin, now);   /* tokenExpired for "gone" */
	assert_int_equal(message_count, 1);
	messages_reset();
	plugin->sessions.attached = 4;
	plugin->sessions.offline = 2;
	plugin->logins_accepted = 12345678901ULL;
	plugin->logins_refused = 7;

	events_publish_metrics(plugin);

	assert_int_equal(message_count, 7);
	assert_metric(0, "total", "3");
	assert_metric(1, "valid", "2");
	assert_metric(2, "invalid", "1");
	assert_metric(3, "connections", "4");
	assert_metric(4, "sessions/offline", "2");
	assert_metric(5, "logins/accepted", "12345678901");
	assert_metric(6, "logins/refused", "7");
	assert_no_message_contains("secret-of-");
	plugin->sessions.attached = 0;
	plugin->sessions.offline = 0;
}

/* An empty store publishes zeros, not nothing. */
static void metrics_of_an_empty_store_are_zero(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	events_publish_metrics(plugin);
	assert_int_equal(message_count, 7);
	static const char *const names[] = {"total", "valid", "invalid", "connections", "sessions/offline",
		"logins/accepted", "logins/refused"};
	for(size_t i = 0; i < 7; i++){
		assert_metric(i, names[i], "0");
	}
}

/* A token expiring between two refreshes moves from valid to invalid. */
static void metrics_follow_expiry(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	int64_t now = test_clock_now();
	scheduled_token(plugin, "soon", now, now + DAY);

	events_publish_metrics(plugin);
	assert_metric(1, "valid", "1");
	assert_metric(2, "invalid", "0");
	tick_at(plugin, now + DAY);
	messages_reset();
	events_publish_metrics(plugin);
	assert_metric(0, "total", "1");
	assert_metric(1, "valid", "0");
	assert_metric(2, "invalid", "1");
}

/* ---- no publisher ---- */

/* Without a publisher nothing is sent, but the notices are still marked
 * (and counted) so they are not owed forever. */
static void without_a_publisher_notices_are_still_marked(void **state)
{
	struct tokens_plugin *plugin = test_plugin_of(state);
	plugin->publish = NULL;
	int64_t now = test_clock_now();
	struct token *token = scheduled_token(plugin, "stale", now - 30 * DAY, now - DAY);

	events_publish(plugin, "tokenCreated", token, "alice", NULL);
	events_publish_metrics(plugin);
	tick_at(plugin, now);
	assert_int_equal(message_count, 0);
	assert_true(token->expired_noticed);
	assert_int_equal(plugin->expired_tokens, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(event_with_by_and_previous_hash_has_every_field, setup, teardown),
		cmocka_unit_test_setup_teardown(event_without_by_has_no_by_nor_previous_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(status_turns_invalid_at_valid_until, setup, teardown),
		cmocka_unit_test_setup_teardown(command_events_never_carry_the_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(expiring_is_sent_once_at_warning_days_before_valid_until, setup, teardown),
		cmocka_unit_test_setup_teardown(a_backlog_of_notices_is_spread_over_ticks, setup, teardown),
		cmocka_unit_test_setup_teardown(notices_are_recorded_in_the_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(token_inside_the_window_is_warned_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(token_expired_while_down_gets_only_expired, setup, teardown),
		cmocka_unit_test_setup_teardown(warning_sent_before_a_restart_is_not_repeated, setup, teardown),
		cmocka_unit_test_setup_teardown(warning_follows_the_configured_days, setup, teardown),
		cmocka_unit_test_setup_teardown(metrics_are_retained_decimal_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(metrics_of_an_empty_store_are_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(metrics_follow_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(without_a_publisher_notices_are_still_marked, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
