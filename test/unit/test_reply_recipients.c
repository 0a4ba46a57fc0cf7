/*
 * Who may receive a control reply on Mosquitto 2.1 (reply_recipients.h):
 * an expected reply is written only to the connection that asked, once;
 * the same reply on its way to another connection with the client id is
 * refused; every other message passes; and what is never written is
 * forgotten after REPLY_WATCH_SECONDS or beyond the limit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "reply_recipients.h"

static char connection_a, connection_b;
#define A ((const struct mosquitto *)&connection_a)
#define B ((const struct mosquitto *)&connection_b)

#define TOPIC "$CONTROL/tokens/v1/response"
#define SECRET_REPLY "{\"responses\":[{\"command\":\"createToken\",\"data\":{\"token\":\"mqtk_x\"}}]}"
#define NOW 1000

static int setup(void **state)
{
	static struct reply_recipients recipients;
	reply_recipients_init(&recipients, 0);
	*state = &recipients;
	return 0;
}

static int teardown(void **state)
{
	reply_recipients_clear(*state);
	return 0;
}

static void expect_reply(struct reply_recipients *recipients, const struct mosquitto *requester, const char *client_id,
		const char *payload, int64_t now)
{
	assert_true(reply_recipients_expect(recipients, requester, client_id, TOPIC, payload, strlen(payload), now));
}

static enum reply_recipient written(struct reply_recipients *recipients, const struct mosquitto *to,
		const char *client_id, const char *topic, const char *payload)
{
	return reply_recipients_check(recipients, to, client_id, topic, payload, strlen(payload));
}

static void a_reply_reaches_its_requester_once(void **state)
{
	struct reply_recipients *recipients = *state;
	expect_reply(recipients, A, "dev", SECRET_REPLY, NOW);
	assert_int_equal(written(recipients, A, "dev", TOPIC, SECRET_REPLY), REPLY_TO_REQUESTER);
	assert_int_equal(recipients->count, 0);
	assert_null(recipients->topics);
	assert_null(recipients->by_digest);
	/* Used up: the same bytes again are not a reply any more. */
	assert_int_equal(written(recipients, B, "dev", TOPIC, SECRET_REPLY), REPLY_NOT_EXPECTED);
}

static void a_connection_that_took_the_client_id_over_is_refused(void **state)
{
	struct reply_recipients *recipients = *state;
	expect_reply(recipients, A, "dev", SECRET_REPLY, NOW);
	assert_int_equal(written(recipients, B, "dev", TOPIC, SECRET_REPLY), REPLY_TO_ANOTHER);
	assert_int_equal(recipients->count, 0);
	assert_int_equal(written(recipients, A, "dev", TOPIC, SECRET_REPLY), REPLY_NOT_EXPECTED);
}

static void other_messages_pass(void **state)
{
	struct reply_recipients *recipients = *state;
	expect_reply(recipients, A, "dev", SECRET_REPLY, NOW);
	assert_int_equal(written(recipients, B, "dev", "sensors/temp", SECRET_REPLY), REPLY_NOT_EXPECTED);
	assert_int_equal(written(recipients, B, "dev", TOPIC, "{\"responses\":[]}"), REPLY_NOT_EXPECTED);
	assert_int_equal(written(recipients, B, "other", TOPIC, SECRET_REPLY), REPLY_NOT_EXPECTED);
	assert_int_equal(reply_recipients_check(recipients, B, NULL, TOPIC, SECRET_REPLY, strlen(SECRET_REPLY)),
			REPLY_NOT_EXPECTED);
	assert_int_equal(recipients->count, 1);
}

static void the_client_id_and_topic_boundary_counts(void **state)
{
	struct reply_recipients *recipients = *state;
	assert_true(reply_recipients_expect(recipients, A, "ab", "c", "p", 1, NOW));
	assert_true(reply_recipients_expect(recipients, A, "a", "bc", "p", 1, NOW));
	assert_int_equal(written(recipients, B, "a", "c", "p"), REPLY_NOT_EXPECTED);
	assert_int_equal(written(recipients, B, "ab", "c", "p"), REPLY_TO_ANOTHER);
	assert_int_equal(written(recipients, A, "a", "bc", "p"), REPLY_TO_REQUESTER);
	assert_int_equal(recipients->count, 0);
}

static void binary_payloads_are_compared_whole(void **state)
{
	struct reply_recipients *recipients = *state;
	const char payload[] = {'a', '\0', 'b'};
	const char other[] = {'a', '\0', 'c'};
	assert_true(reply_recipients_expect(recipients, A, "dev", TOPIC, payload, sizeof(payload), NOW));
	assert_int_equal(reply_recipients_check(recipients, B, "dev", TOPIC, other, sizeof(other)), REPLY_NOT_EXPECTED);
	assert_int_equal(reply_recipients_check(recipients, B, "dev", TOPIC, payload, 1), REPLY_NOT_EXPECTED);
	assert_int_equal(reply_recipients_check(recipients, B, "dev", TOPIC, payload, sizeof(payload)), REPLY_TO_ANOTHER);
}

/* Two connections with one client id asked the same thing: each reply
 * goes to its own requester whatever the order, and the old one's reply
 * does not reach the new one. */
static void identical_replies_are_told_apart_by_their_requesters(void **state)
{
	struct reply_recipients *recipients = *state;
	expect_reply(recipients, A, "dev", "{\"same\"}", NOW);
	expect_reply(recipients, B, "dev", "{\"same\"}", NOW);
	assert_int_equal(recipients->count, 2);
	assert_int_equal(written(recipients, B, "dev", TOPIC, "{\"same\"}"), REPLY_TO_REQUESTER);
	assert_int_equal(written(recipients, B, "dev", TOPIC, "{\"same\"}"), REPLY_TO_ANOTHER);
	assert_int_equal(recipients->count, 0);
	assert_null(recipients->by_digest);
}

static void replies_never_written_are_forgotten_after_the_watch(void **state)
{
	struct reply_recipients *recipients = *state;
	expect_reply(recipients, A, "a", "{\"old\"}", NOW);
	expect_reply(recipients, A, "a", "{\"new\"}", NOW + 5);
	assert_int_equal(reply_recipients_expire(recipients, NOW + REPLY_WATCH_SECONDS), 0);
	assert_int_equal(reply_recipients_expire(recipients, NOW + REPLY_WATCH_SECONDS + 1), 1);
	assert_int_equal(written(recipients, B, "a", TOPIC, "{\"old\"}"), REPLY_NOT_EXPECTED);
	assert_int_equal(written(recipients, B, "a", TOPIC, "{\"new\"}"), REPLY_TO_ANOTHER);
	assert_int_equal(reply_recipients_expire(recipients, NOW + 100), 0);
	assert_null(recipients->oldest);
	assert_null(recipients->newest);
}

static void beyond_the_limit_the_oldest_is_forgotten(void **state)
{
	struct reply_recipients *recipients = *state;
	recipients->max = 2;
	expect_reply(recipients, A, "a", "{\"1\"}", NOW);
	expect_reply(recipients, A, "a", "{\"2\"}", NOW);
	expect_reply(recipients, A, "a", "{\"3\"}", NOW);
	assert_int_equal(recipients->count, 2);
	assert_int_equal(recipients->forgotten_early, 1);
	assert_int_equal(written(recipients, B, "a", TOPIC, "{\"1\"}"), REPLY_NOT_EXPECTED);
	assert_int_equal(written(recipients, B, "a", TOPIC, "{\"2\"}"), REPLY_TO_ANOTHER);
	assert_int_equal(written(recipients, A, "a", TOPIC, "{\"3\"}"), REPLY_TO_REQUESTER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_reply_reaches_its_requester_once, setup, teardown),
		cmocka_unit_test_setup_teardown(a_connection_that_took_the_client_id_over_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(other_messages_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(the_client_id_and_topic_boundary_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(binary_payloads_are_compared_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(identical_replies_are_told_apart_by_their_requesters, setup, teardown),
		cmocka_unit_test_setup_teardown(replies_never_written_are_forgotten_after_the_watch, setup, teardown),
		cmocka_unit_test_setup_teardown(beyond_the_limit_the_oldest_is_forgotten, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
