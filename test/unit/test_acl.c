/* ACL evaluation: types, priorities, literal vs pattern, defaults, the
 * filter-covers-filter matcher used for subscribePattern, the placeholders
 * %t, %c and %u, and the topic rule for new and stored ACLs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "broker_api.h"

#include "acl.h"
#include "invariants.h"

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
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "a/b", NULL));
	/* Nothing it may subscribe to, so nothing it may receive. */
	assert_false(acl_allows(role, MOSQ_ACL_READ, "a/b", NULL));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "a/b", NULL));
	assert_true(acl_allows(role, MOSQ_ACL_UNSUBSCRIBE, "a/b", NULL));
	role_free(role);
}

static void test_publish_send_matches_filters(void **state)
{
	(void)state;
	const struct role_acl acls[] = {
		{.type = ACL_PUBLISH_CLIENT_SEND, .topic = "sensors/+/data", .allow = true},
	};
	struct role *role = role_with(acls, 1);
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "sensors/boiler/data", NULL));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "sensors/boiler/data/x", NULL));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "sensors/data", NULL));
	/* A send ACL grants no receiving. */
	assert_false(acl_allows(role, MOSQ_ACL_READ, "sensors/boiler/data", NULL));
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
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "a/open", NULL));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "a/secret", NULL));
	/* a/# (priority 0) outranks a/public (priority -1). */
	assert_false(acl_allows(role, MOSQ_ACL_READ, "a/public", NULL));
	assert_true(acl_allows(role, MOSQ_ACL_READ, "b/anything", NULL));
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
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "a/b", NULL));
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "a/b/c", NULL));
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
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "a/private/#", NULL));
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "a/private/x", NULL));
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "a/+/x", NULL));
	/* A literal ACL matches the filter string exactly, not as a pattern. */
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "b/+", NULL));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "b/x", NULL));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "#", NULL));
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
	assert_true(acl_allows(role, MOSQ_ACL_UNSUBSCRIBE, "a/b", NULL));
	assert_false(acl_allows(role, MOSQ_ACL_UNSUBSCRIBE, "locked/x", NULL));
	assert_true(acl_allows(role, MOSQ_ACL_UNSUBSCRIBE, "locked/open", NULL));
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
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "a/b", NULL));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "$CONTROL/tokens/v1", NULL));
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
	assert_true(acl_allows(role, MOSQ_ACL_READ, "plant/a/x", NULL));
	assert_false(acl_allows(role, MOSQ_ACL_READ, "plant/secret/x", NULL));    /* a deny pattern outranks */
	assert_false(acl_allows(role, MOSQ_ACL_READ, "plant/open", NULL));        /* a literal deny equal to it */
	assert_false(acl_allows(role, MOSQ_ACL_READ, "plant/quiet", NULL));       /* granted, but receive denied */
	assert_true(acl_allows(role, MOSQ_ACL_READ, "feeds/x/news", NULL));       /* a literal wildcard grant */
	assert_false(acl_allows(role, MOSQ_ACL_READ, "feeds/x/other", NULL));
	assert_false(acl_allows(role, MOSQ_ACL_READ, "other/topic", NULL));       /* nothing covers it */
	assert_false(acl_allows(role, MOSQ_ACL_READ, "$SYS/broker/uptime", NULL)); /* wildcards do not reach $ topics */
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
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "$share/g/jobs/#", NULL));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "jobs/#", NULL));
	assert_true(acl_allows(role, MOSQ_ACL_READ, "jobs/1", NULL));
	assert_true(acl_allows(role, MOSQ_ACL_READ, "tasks/7", NULL));
	assert_false(acl_allows(role, MOSQ_ACL_READ, "tasks/7/x", NULL));
	assert_false(acl_allows(role, MOSQ_ACL_READ, "other/1", NULL));
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

/* ---- placeholders: %t, %c, %u as whole levels ---- */

static struct acl_subject subject_of(const char *token_name, const char *client_id, const char *username)
{
	struct acl_subject subject;
	acl_subject_init(&subject, token_name, client_id, username);
	return subject;
}

/* One role for a fleet: each device under its own name only. */
static struct role *fleet_role(void)
{
	const struct role_acl acls[] = {
		{.type = ACL_PUBLISH_CLIENT_SEND, .topic = "devices/%t/#", .allow = true},
		{.type = ACL_PUBLISH_CLIENT_SEND, .topic = "clients/%c/status", .allow = true},
		{.type = ACL_PUBLISH_CLIENT_SEND, .topic = "users/%u", .allow = true},
		{.type = ACL_SUBSCRIBE_PATTERN, .topic = "devices/%t/commands/+", .allow = true},
		{.type = ACL_SUBSCRIBE_LITERAL, .topic = "inbox/%c", .allow = true},
		{.type = ACL_UNSUBSCRIBE_PATTERN, .topic = "devices/%t/#", .allow = false},
	};
	struct role *role = role_with(acls, sizeof(acls) / sizeof(acls[0]));
	assert_int_equal(role->placeholder_acls, 6);
	return role;
}

static void test_placeholders_stand_for_the_subject(void **state)
{
	(void)state;
	struct role *role = fleet_role();
	struct acl_subject one = subject_of("boiler-1", "client-1", "user-1");
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "devices/boiler-1/temp", &one));
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "devices/boiler-1", &one));         /* "#" covers the parent */
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "devices/boiler-2/temp", &one));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "devices/%t/temp", &one));         /* not the text "%t" */
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "clients/client-1/status", &one));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "clients/client-2/status", &one));
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "users/user-1", &one));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "users/user-1/x", &one));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "users/user-2", &one));
	/* A prefix or an extension of the value is another level. */
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "devices/boiler-10/temp", &one));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "devices/boiler-/temp", &one));
	role_free(role);
}

static void test_placeholder_patterns_cover_filters(void **state)
{
	(void)state;
	struct role *role = fleet_role();
	struct acl_subject one = subject_of("boiler-1", "client-1", "user-1");
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "devices/boiler-1/commands/+", &one));
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "devices/boiler-1/commands/reset", &one));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "devices/boiler-2/commands/+", &one));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "devices/+/commands/+", &one));   /* every device's */
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "devices/#", &one));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "devices/boiler-1/commands/#", &one));
	/* Deliveries follow the same grant. */
	assert_true(acl_allows(role, MOSQ_ACL_READ, "devices/boiler-1/commands/reset", &one));
	assert_false(acl_allows(role, MOSQ_ACL_READ, "devices/boiler-2/commands/reset", &one));
	/* An unsubscribe pattern with a placeholder. */
	assert_false(acl_allows(role, MOSQ_ACL_UNSUBSCRIBE, "devices/boiler-1/x", &one));
	assert_true(acl_allows(role, MOSQ_ACL_UNSUBSCRIBE, "devices/boiler-2/x", &one));
	role_free(role);
}

/* A literal ACL compares after substitution: it equals one filter only. */
static void test_placeholder_literals_compare_after_substitution(void **state)
{
	(void)state;
	struct role *role = fleet_role();
	struct acl_subject one = subject_of("boiler-1", "client-1", "user-1");
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "inbox/client-1", &one));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "inbox/client-2", &one));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "inbox/+", &one));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "inbox/#", &one));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "inbox/client-1/x", &one));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "inbox", &one));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "inbox/%c", &one));
	assert_true(acl_allows(role, MOSQ_ACL_READ, "inbox/client-1", &one));
	assert_false(acl_allows(role, MOSQ_ACL_READ, "inbox/client-2", &one));
	role_free(role);
}

/* Client ids and usernames are the client's choice: one that is empty or
 * holds '+', '#' or '/' must not widen the grant to other levels. */
static void test_hostile_values_match_no_placeholder(void **state)
{
	(void)state;
	struct role *role = fleet_role();
	const char *hostile[] = {"", "+", "#", "a/b", "client-2/status", "a+", "#b", "/"};
	for(size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++){
		struct acl_subject bad = subject_of(hostile[i], hostile[i], hostile[i]);
		const char *topics[] = {"devices//temp", "devices/+/temp", "devices/a/b/temp", "clients/client-2/status",
			"clients//status", "clients/a/b/status", "users/", "users/a/b", "users/+", "users/#", "users/a+",
			"users/#b", "users//"};
		for(size_t j = 0; j < sizeof(topics) / sizeof(topics[0]); j++){
			if(acl_allows(role, MOSQ_ACL_WRITE, topics[j], &bad)){
				fail_msg("value \"%s\" let \"%s\" through", hostile[i], topics[j]);
			}
		}
		assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "inbox/+", &bad));
		assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "inbox/#", &bad));
		assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "devices/+/commands/+", &bad));
		assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "devices/#", &bad));
	}
	/* Missing values (no username) match nothing either. */
	struct acl_subject missing = subject_of("boiler-1", "client-1", NULL);
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "users/", &missing));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "users/(null)", &missing));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "devices/boiler-1/x", NULL));
	role_free(role);
}

static void test_long_and_unusual_values_match_exactly(void **state)
{
	(void)state;
	struct role *role = fleet_role();
	size_t length = 65535;
	char *long_id = malloc(length + 1);
	char *topic = malloc(length + 32);
	assert_non_null(long_id);
	assert_non_null(topic);
	memset(long_id, 'x', length);
	long_id[length] = '\0';
	struct acl_subject subject = subject_of("boiler-1", long_id, "\xff\xfe");
	snprintf(topic, length + 32, "clients/%s/status", long_id);
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, topic, &subject));
	topic[length + 7] = 'y';   /* the id's last byte */
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, topic, &subject));
	snprintf(topic, length + 32, "clients/%.*s/status", (int)(length - 1), long_id);
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, topic, &subject));
	/* Invalid UTF-8 is compared as bytes (the broker refuses such topics). */
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "users/\xff\xfe", &subject));
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "users/\xff", &subject));
	free(long_id);
	free(topic);
	role_free(role);
}

/* A placeholder is a whole level or plain text; and like a wildcard, a
 * first-level one never reaches a "$" topic, whatever the client calls
 * itself. */
static void test_placeholder_edges(void **state)
{
	(void)state;
	const struct role_acl acls[] = {
		{.type = ACL_PUBLISH_CLIENT_SEND, .topic = "%c/#", .allow = true},
		{.type = ACL_PUBLISH_CLIENT_SEND, .topic = "a/x%c/%cx/%%c/%C/%", .allow = true},
		{.type = ACL_SUBSCRIBE_PATTERN, .topic = "%u/+", .allow = true},
		{.type = ACL_SUBSCRIBE_LITERAL, .topic = "%t", .allow = true},
	};
	struct role *role = role_with(acls, 4);
	assert_int_equal(role->placeholder_acls, 3);
	struct acl_subject dollar = subject_of("$SYS", "$CONTROL", "$SYS");
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "$CONTROL/tokens/v1", &dollar));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "$SYS/broker", &dollar));
	assert_false(acl_allows(role, MOSQ_ACL_READ, "$SYS/broker", &dollar));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "$SYS", &dollar));
	struct acl_subject plain = subject_of("name", "dev", "me");
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "dev/x", &plain));
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "dev", &plain));
	assert_true(acl_allows(role, MOSQ_ACL_WRITE, "a/x%c/%cx/%%c/%C/%", &plain));   /* plain text */
	assert_false(acl_allows(role, MOSQ_ACL_WRITE, "a/xdev/devx/%dev/%C/%", &plain));
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "me/+", &plain));
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "name", &plain));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "name/x", &plain));
	assert_true(acl_topic_has_placeholder("%t"));
	assert_true(acl_topic_has_placeholder("a/%u"));
	assert_false(acl_topic_has_placeholder("a/%x/%%/%c%"));
	assert_false(acl_topic_has_placeholder(""));
	/* Removing the ACLs takes the count back. */
	struct role_acl *literal = role->acls[ACL_SUBSCRIBE_LITERAL];
	role_unlink_acl(role, literal);
	role_acl_free(literal);
	assert_int_equal(role->placeholder_acls, 2);
	role_free(role);
}

/* The count decides whether a check builds the client's values at all: a
 * wrong one would make the role's placeholders match nothing. */
static void test_invariants_check_the_placeholder_count(void **state)
{
	(void)state;
	struct store store;
	store_init(&store);
	struct role *role = fleet_role();
	store_link_role(&store, role);
	char problem[256];
	assert_true(invariants_check_store(&store, problem, sizeof(problem)));
	role->placeholder_acls--;
	assert_false(invariants_check_store(&store, problem, sizeof(problem)));
	assert_non_null(strstr(problem, "placeholders"));
	role->placeholder_acls++;
	role->acls[ACL_SUBSCRIBE_LITERAL]->has_placeholder = false;
	assert_false(invariants_check_store(&store, problem, sizeof(problem)));
	store_clear(&store);
}

/* Inside a shared subscription too: the group's filter starts at its own
 * first level. */
static void test_shared_placeholders_do_not_reach_dollar_topics(void **state)
{
	(void)state;
	const struct role_acl acls[] = {
		{.type = ACL_SUBSCRIBE_PATTERN, .topic = "$share/g/%c/#", .allow = true},
		{.type = ACL_SUBSCRIBE_LITERAL, .topic = "$share/h/%c", .allow = true},
		{.type = ACL_SUBSCRIBE_PATTERN, .topic = "$share/w/+/#", .allow = true},
	};
	struct role *role = role_with(acls, 3);
	struct acl_subject dollar = subject_of("t", "$CONTROL", "u");
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "$share/g/$CONTROL/#", &dollar));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "$share/h/$CONTROL", &dollar));
	assert_false(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "$share/w/$SYS/#", &dollar));
	assert_false(acl_allows(role, MOSQ_ACL_READ, "$CONTROL/tokens/v1/response", &dollar));
	struct acl_subject plain = subject_of("t", "dev", "u");
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "$share/g/dev/#", &plain));
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "$share/h/dev", &plain));
	assert_true(acl_allows(role, MOSQ_ACL_SUBSCRIBE, "$share/w/x/#", &plain));
	assert_true(acl_allows(role, MOSQ_ACL_READ, "dev/x", &plain));
	role_free(role);
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
		cmocka_unit_test(test_placeholders_stand_for_the_subject),
		cmocka_unit_test(test_placeholder_patterns_cover_filters),
		cmocka_unit_test(test_placeholder_literals_compare_after_substitution),
		cmocka_unit_test(test_hostile_values_match_no_placeholder),
		cmocka_unit_test(test_long_and_unusual_values_match_exactly),
		cmocka_unit_test(test_placeholder_edges),
		cmocka_unit_test(test_invariants_check_the_placeholder_count),
		cmocka_unit_test(test_shared_placeholders_do_not_reach_dollar_topics),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
