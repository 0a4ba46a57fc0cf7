/*
 * Control replies waiting for the tick (replies.h): a reply leaves only
 * for the connection that asked, in order, and is dropped when that
 * connection goes or another login with its client id is still there at
 * the tick; a login that was refused (and so disconnected) takes nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "mqtt_api.h"

#include "replies.h"

static char connection_a, connection_b, connection_c;
#define A ((const struct mosquitto *)&connection_a)
#define B ((const struct mosquitto *)&connection_b)
#define C ((const struct mosquitto *)&connection_c)

static char sent[8][160];
static int sent_count;
static int failing_sends;

static int record_send(const char *client_id, const char *topic, const char *payload, mosquitto_property *properties)
{
	snprintf(sent[sent_count++], sizeof(sent[0]), "%s %s %s%s", client_id, topic, payload,
			properties ? " +properties" : "");
	mosquitto_property_free_all(&properties);
	if(failing_sends > 0){
		failing_sends--;
		return MOSQ_ERR_NOMEM;
	}
	return MOSQ_ERR_SUCCESS;
}

static size_t send_all(struct replies *replies, size_t *taken_over)
{
	return replies_send(replies, record_send, taken_over);
}

static int setup(void **state)
{
	static struct replies replies;
	replies_init(&replies);
	sent_count = 0;
	failing_sends = 0;
	*state = &replies;
	return 0;
}

static int teardown(void **state)
{
	replies_clear(*state);
	return 0;
}

static mosquitto_property *correlation(void)
{
	mosquitto_property *properties = NULL;
	assert_int_equal(mosquitto_property_add_binary(&properties, MQTT_PROP_CORRELATION_DATA, "42", 2), MOSQ_ERR_SUCCESS);
	return properties;
}

static void replies_leave_in_order_at_the_tick(void **state)
{
	struct replies *replies = *state;
	assert_true(replies_hold(replies, A, "a", "$CONTROL/tokens/v1/response", "{\"first\"}", NULL));
	assert_true(replies_hold(replies, B, "b", "answers/b", "{\"second\"}", correlation()));
	assert_int_equal(sent_count, 0);
	size_t taken_over;
	assert_int_equal(send_all(replies, &taken_over), 0);
	assert_int_equal(taken_over, 0);
	assert_int_equal(sent_count, 2);
	assert_string_equal(sent[0], "a $CONTROL/tokens/v1/response {\"first\"}");
	assert_string_equal(sent[1], "b answers/b {\"second\"} +properties");
	assert_int_equal(replies->count, 0);
	assert_int_equal(send_all(replies, &taken_over), 0);
	assert_int_equal(sent_count, 2);
}

static void a_connection_that_leaves_takes_its_replies_with_it(void **state)
{
	struct replies *replies = *state;
	assert_true(replies_hold(replies, A, "a", "t", "{\"secret for a\"}", correlation()));
	assert_true(replies_hold(replies, B, "b", "t", "{\"for b\"}", NULL));
	assert_true(replies_hold(replies, A, "a", "t", "{\"more for a\"}", NULL));
	assert_int_equal(replies_connection_gone(replies, A), 2);
	assert_int_equal(replies_connection_gone(replies, A), 0);
	size_t taken_over;
	send_all(replies, &taken_over);
	assert_int_equal(sent_count, 1);
	assert_string_equal(sent[0], "b t {\"for b\"}");
}

static void a_login_with_the_client_id_still_there_at_the_tick_takes_it_away(void **state)
{
	struct replies *replies = *state;
	size_t taken_over;
	assert_true(replies_hold(replies, A, "victim", "t", "{\"secret\"}", NULL));
	assert_true(replies_hold(replies, B, "other", "t", "{\"for other\"}", NULL));
	/* The requester's own connection logging in again (a SIGHUP re-check),
	 * and logins with other ids, contend for nothing. */
	assert_true(replies_note_login(replies, A, "victim"));
	assert_true(replies_note_login(replies, C, "victim2"));
	assert_true(replies_note_login(replies, C, NULL));
	assert_int_equal(replies->contender_count, 0);
	/* A login with the id on another connection that is still there at the
	 * tick: the reply goes to nobody. */
	assert_true(replies_note_login(replies, C, "victim"));
	assert_int_equal(send_all(replies, &taken_over), 0);
	assert_int_equal(taken_over, 1);
	assert_int_equal(sent_count, 1);
	assert_string_equal(sent[0], "other t {\"for other\"}");
	assert_int_equal(replies->contender_count, 0);
}

static void a_refused_login_with_the_client_id_takes_nothing(void **state)
{
	struct replies *replies = *state;
	size_t taken_over;
	assert_true(replies_hold(replies, A, "victim", "t", "{\"secret\"}", NULL));
	assert_true(replies_note_login(replies, C, "victim"));
	assert_true(replies_note_login(replies, B, "victim"));
	/* Both were refused: the broker disconnects them before the tick. */
	assert_int_equal(replies_connection_gone(replies, C), 0);
	assert_int_equal(replies_connection_gone(replies, B), 0);
	assert_int_equal(send_all(replies, &taken_over), 0);
	assert_int_equal(taken_over, 0);
	assert_int_equal(sent_count, 1);
	assert_string_equal(sent[0], "victim t {\"secret\"}");
}

static void failed_sends_are_counted_and_nothing_is_kept(void **state)
{
	struct replies *replies = *state;
	assert_true(replies_hold(replies, A, "a", "t", "{\"one\"}", correlation()));
	assert_true(replies_hold(replies, A, "a", "t", "{\"two\"}", NULL));
	failing_sends = 1;
	size_t taken_over;
	assert_int_equal(send_all(replies, &taken_over), 1);
	assert_int_equal(sent_count, 2);
	assert_int_equal(replies->count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(replies_leave_in_order_at_the_tick, setup, teardown),
		cmocka_unit_test_setup_teardown(a_connection_that_leaves_takes_its_replies_with_it, setup, teardown),
		cmocka_unit_test_setup_teardown(a_login_with_the_client_id_still_there_at_the_tick_takes_it_away, setup, teardown),
		cmocka_unit_test_setup_teardown(a_refused_login_with_the_client_id_takes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(failed_sends_are_counted_and_nothing_is_kept, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
