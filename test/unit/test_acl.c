/* ACL evaluation: types, priorities, literal vs pattern, defaults, the
 * filter-covers-filter matcher used for subscribePattern, and the topic
 * rule for new and stored ACLs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "broker_api.h"

#include "acl.h"

static struct role *role_with(const struct role_acl *acls, size_t count)
{
	struct role *role = role_new("test");
	assert_non_null(role);
	for(size_t i = 0; i < count; i++){
		struct role_acl *acl = role_acl_new(acls[i].type, acls[i].topic, acls[i].priority, acls[i].allow);
		assert_non_null(acl);
		role_link_acl(role, acl);
	}
	return role;
}

static void test_defaults_without_acls(void **state)
{
	(void)state;
	struct role *role = role_new("empty");
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "a/b"));
	/* Nothing it may subscribe to, so nothing it may receive. */
	assert_false(acl_allows(role, MOSQ_ACL_READ, "a/b"));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "a/b"));
	assert_true(acl_allows(role, MOSQ_ACL_UNSUBSCRIBE, "a/b"));
	role_free(role);
}

static void test_publish_send_matches_filters(void **state)
{
	(void)state;
	const struct role_acl acls[] = {
		{.type = ACL_PUBLISH_CLIENT_SEND, .topic = "sensors/+/data", .allow = true},
	};
	struct role *role = role_with(acls, 1);
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "sensors/boiler/data"));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "sensors/boiler/data/x"));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "sensors/data"));
	/* A send ACL grants no receiving. */
	assert_false(acl_allows(role, MOSQ_ACL_READ, "sensors/boiler/data"));
	role_free(role);
}

static void test_highest_priority_decides(void **state)
{
	(void)state;
	const struct role_acl acls[] = {
		{.type = ACL_PUBLISH_CLIENT_SEND, .topic = "a/#", .priority = 1, .allow = true},
		{.type = ACL_PUBLISH_CLIENT_SEND, .topic = "a/secret", .priority = 5, .allow = false},
		{.type = ACL_PUBLISH_CLIENT_RECEIVE, .topic = "a/#", .priority = 0, .allow = false},
		{.type = ACL_PUBLISH_CLIENT_RECEIVE, .topic = "a/public", .priority = -1, .allow = true},
		{.type = ACL_SUBSCRIBE_PATTERN, .topic = "#", .allow = true},
	};
	struct role *role = role_with(acls, 5);
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "a/open"));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "a/secret"));
	/* a/# (priority 0) outranks a/public (priority -1). */
	assert_false(acl_allows(role, MOSQ_ACL_READ, "a/public"));
	assert_true(acl_allows(role, MOSQ_ACL_READ, "b/anything"));
	role_free(role);
}

static void test_equal_priority_first_added_wins(void **state)
{
	(void)state;
	const struct role_acl acls[] = {
		{.type = ACL_PUBLISH_CLIENT_SEND, .topic = "a/+", .allow = false},
		{.type = ACL_PUBLISH_CLIENT_SEND, .topic = "a/#", .allow = true},
	};
	struct role *role = role_with(acls, 2);
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "a/b"));
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "a/b/c"));
	role_free(role);
}

static void test_subscribe_literal_before_pattern(void **state)
{
	(void)state;
	const struct role_acl acls[] = {
		{.type = ACL_SUBSCRIBE_PATTERN, .topic = "a/#", .priority = 100, .allow = true},
		{.type = ACL_SUBSCRIBE_LITERAL, .topic = "a/private/#", .priority = 0, .allow = false},
		{.type = ACL_SUBSCRIBE_LITERAL, .topic = "b/+", .allow = true},
	};
	struct role *role = role_with(acls, 3);
	/* The literal ACL decides first, whatever the priorities. */
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "a/private/#"));
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "a/private/x"));
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "a/+/x"));
	/* A literal ACL matches the filter string exactly, not as a pattern. */
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "b/+"));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "b/x"));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "#"));
	role_free(role);
}

static void test_unsubscribe_uses_its_own_types(void **state)
{
	(void)state;
	const struct role_acl acls[] = {
		{.type = ACL_SUBSCRIBE_PATTERN, .topic = "#", .allow = false},
		{.type = ACL_UNSUBSCRIBE_PATTERN, .topic = "locked/#", .allow = false},
		{.type = ACL_UNSUBSCRIBE_LITERAL, .topic = "locked/open", .allow = true},
	};
	struct role *role = role_with(acls, 3);
	assert_true(acl_allows(role, MOSQ_ACL_UNSUBSCRIBE, "a/b"));
	assert_false(acl_allows(role, MOSQ_ACL_UNSUBSCRIBE, "locked/x"));
	assert_true(acl_allows(role, MOSQ_ACL_UNSUBSCRIBE, "locked/open"));
	role_free(role);
}

static void test_filter_covers_filter(void **state)
{
	(void)state;
	assert_true(topic_filter_covers("a/#", "a/+/b"));
	assert_true(topic_filter_covers("a/#", "a/#"));
	assert_true(topic_filter_covers("a/#", "a"));
	assert_true(topic_filter_covers("#", "a/b/#"));
	assert_true(topic_filter_covers("a/+", "a/b"));
	assert_true(topic_filter_covers("a/+", "a/+"));
	assert_true(topic_filter_covers("+/+/c", "x/+/c"));
	assert_true(topic_filter_covers("a/b", "a/b"));
	assert_true(topic_filter_covers("a//b", "a//b"));
	assert_true(topic_filter_covers("a/+/#", "a/b/c/d"));

	assert_false(topic_filter_covers("a/+", "a/#"));
	assert_false(topic_filter_covers("a/+", "a/b/c"));
	assert_false(topic_filter_covers("a/+", "a"));
	assert_false(topic_filter_covers("a/b", "a/+"));
	assert_false(topic_filter_covers("a/b", "a/bc"));
	assert_false(topic_filter_covers("a/bc", "a/b"));
	assert_false(topic_filter_covers("a/b/c", "a/b"));
	assert_false(topic_filter_covers("a/+/#", "a"));
	assert_false(topic_filter_covers("a/+/#", "a/#"));
	assert_false(topic_filter_covers("b/#", "a/#"));
	/* Wildcards at the first level never reach "$" topics. */
	assert_false(topic_filter_covers("#", "$SYS/#"));
	assert_false(topic_filter_covers("+/broker", "$SYS/broker"));
	assert_true(topic_filter_covers("$SYS/#", "$SYS/broker/+"));
}

static void test_publish_wildcards_do_not_reach_dollar_topics(void **state)
{
	(void)state;
	const struct role_acl acls[] = {
		{.type = ACL_PUBLISH_CLIENT_SEND, .topic = "#", .allow = true},
	};
	struct role *role = role_with(acls, 1);
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "a/b"));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "$CONTROL/tokens/v1"));
	role_free(role);
}

/* A delivery needs a subscribe grant that covers the topic, whatever
 * subscription brought it (issue 12: taken-over sessions, withdrawn
 * rights), and publishClientReceive. */
static void test_receiving_needs_a_subscribe_grant(void **state)
{
	(void)state;
	const struct role_acl acls[] = {
		{.type = ACL_SUBSCRIBE_PATTERN, .topic = "plant/#", .allow = true},
		{.type = ACL_SUBSCRIBE_PATTERN, .topic = "plant/secret/#", .priority = 5, .allow = false},
		{.type = ACL_SUBSCRIBE_LITERAL, .topic = "plant/open", .allow = false},
		{.type = ACL_SUBSCRIBE_LITERAL, .topic = "feeds/+/news", .allow = true},
		{.type = ACL_PUBLISH_CLIENT_RECEIVE, .topic = "plant/quiet", .allow = false},
	};
	struct role *role = role_with(acls, 5);
	assert_true(acl_allows(role, MOSQ_ACL_READ, "plant/a/x"));
	assert_false(acl_allows(role, MOSQ_ACL_READ, "plant/secret/x"));    /* a deny pattern outranks */
	assert_false(acl_allows(role, MOSQ_ACL_READ, "plant/open"));        /* a literal deny equal to it */
	assert_false(acl_allows(role, MOSQ_ACL_READ, "plant/quiet"));       /* granted, but receive denied */
	assert_true(acl_allows(role, MOSQ_ACL_READ, "feeds/x/news"));       /* a literal wildcard grant */
	assert_false(acl_allows(role, MOSQ_ACL_READ, "feeds/x/other"));
	assert_false(acl_allows(role, MOSQ_ACL_READ, "other/topic"));       /* nothing covers it */
	assert_false(acl_allows(role, MOSQ_ACL_READ, "$SYS/broker/uptime")); /* wildcards do not reach $ topics */
	role_free(role);
}

/* A shared subscription is checked by its whole filter on subscribe, but
 * its deliveries by the message's topic. */
static void test_shared_subscription_grants_receive_their_filter(void **state)
{
	(void)state;
	const struct role_acl acls[] = {
		{.type = ACL_SUBSCRIBE_PATTERN, .topic = "$share/+/jobs/#", .allow = true},
		{.type = ACL_SUBSCRIBE_LITERAL, .topic = "$share/workers/tasks/+", .allow = true},
	};
	struct role *role = role_with(acls, 2);
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "$share/g/jobs/#"));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "jobs/#"));
	assert_true(acl_allows(role, MOSQ_ACL_READ, "jobs/1"));
	assert_true(acl_allows(role, MOSQ_ACL_READ, "tasks/7"));
	assert_false(acl_allows(role, MOSQ_ACL_READ, "tasks/7/x"));
	assert_false(acl_allows(role, MOSQ_ACL_READ, "other/1"));
	role_free(role);
}

static void assert_topic(const char *topic, bool new_ok, bool stored_ok)
{
	if(acl_topic_is_valid(topic, ACL_TOPIC_NEW) != new_ok || acl_topic_is_valid(topic, ACL_TOPIC_STORED) != stored_ok){
		fail_msg("topic \"%s\": expected new %s, stored %s", topic, new_ok ? "valid" : "invalid",
				stored_ok ? "valid" : "invalid");
	}
}

/* Both rules: the filters every ACL may hold, and those none may. */
static void test_topic_rule_filters(void **state)
{
	(void)state;
	static const char *const valid[] = {
		"a", "a/b", "a/#", "#", "+", "+/+", "a/+/b", "$SYS/#", "$share/g/a/#", "/", "//", "a b", " ",
		"caf\xc3\xa9/+", "\xe2\x80\x8b", "\xf0\x9f\x8c\xa1",
	};
	for(size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++){
		assert_topic(valid[i], true, true);
	}
	static const char *const invalid[] = {"a#", "a+", "a/#/b", "#/a", "a/b+", "+a", "##"};
	for(size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++){
		assert_topic(invalid[i], false, false);
	}
	/* 65535 bytes is the longest either takes. */
	char *long_topic = malloc(ACL_TOPIC_MAX_BYTES + 2);
	assert_non_null(long_topic);
	memset(long_topic, 'a', ACL_TOPIC_MAX_BYTES + 1);
	long_topic[ACL_TOPIC_MAX_BYTES + 1] = '\0';
	assert_topic(long_topic, false, false);
	long_topic[ACL_TOPIC_MAX_BYTES] = '\0';
	assert_topic(long_topic, true, true);
	free(long_topic);
}

/* Where the rules differ: a stored ACL keeps loading with a filter that no
 * command accepts (acl.h says why). */
static void test_stored_topics_keep_what_new_ones_may_not_have(void **state)
{
	(void)state;
	static const char *const stored_only[] = {
		"a\tb", "\x01", "a/\x1f", "a\x7f",          /* C0 and DEL */
		"\xc2\x80", "a\xc2\x9f",                     /* C1 */
		"\xef\xbf\xbf", "\xef\xbf\xbe", "\xef\xb7\x90",  /* noncharacters U+FFFF, U+FFFE, U+FDD0 */
		"\xff", "a\x80", "\xc3", "\xc0\xaf",         /* invalid UTF-8: a lone byte, truncated, overlong */
		"\xed\xa0\x80", "\xf4\x90\x80\x80",        /* a surrogate, past U+10FFFF */
		"a/\x01/#",
	};
	for(size_t i = 0; i < sizeof(stored_only) / sizeof(stored_only[0]); i++){
		assert_topic(stored_only[i], false, true);
	}
	/* The empty filter: never a new one; a stored one as libmosquitto
	 * says (Debian 12's 2.0.11 accepts it, 2.0.22 and 2.1 do not). */
	assert_false(acl_topic_is_valid("", ACL_TOPIC_NEW));
	assert_int_equal(acl_topic_is_valid("", ACL_TOPIC_STORED), mosquitto_sub_topic_check("") == MOSQ_ERR_SUCCESS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_without_acls),
		cmocka_unit_test(test_publish_send_matches_filters),
		cmocka_unit_test(test_highest_priority_decides),
		cmocka_unit_test(test_equal_priority_first_added_wins),
		cmocka_unit_test(test_subscribe_literal_before_pattern),
		cmocka_unit_test(test_unsubscribe_uses_its_own_types),
		cmocka_unit_test(test_filter_covers_filter),
		cmocka_unit_test(test_publish_wildcards_do_not_reach_dollar_topics),
		cmocka_unit_test(test_receiving_needs_a_subscribe_grant),
		cmocka_unit_test(test_shared_subscription_grants_receive_their_filter),
		cmocka_unit_test(test_topic_rule_filters),
		cmocka_unit_test(test_stored_topics_keep_what_new_ones_may_not_have),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
