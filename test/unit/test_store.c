/*
 * The in-memory store: token and role indexes, role token counts, sorted
 * listings, ACL order, name rules, ACL type names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "test_support.h"

static int setup_store(void **state)
{
	struct store *store = malloc(sizeof(*store));
	assert_non_null(store);
	store_init(store);
	*state = store;
	return 0;
}

static int teardown_store(void **state)
{
	struct store *store = *state;
	store_clear(store);
	free(store);
	return 0;
}

static void link_and_find_tokens(void **state)
{
	struct store *store = *state;
	struct role *reader = test_add_role(store, "reader");
	struct role *writer = test_add_role(store, "writer");

	struct token *bot = test_add_token(store, "ci-bot", reader, 100, 200, TIME_NEVER);
	struct token *sensor = test_add_token(store, "sensor", reader, 100, 200, 150);
	struct token *admin = test_add_token(store, "admin", writer, 100, 200, TIME_NEVER);
	assert_int_equal(store_token_count(store), 3);
	assert_int_equal(store_role_count(store), 2);

	unsigned char hash[TOKEN_HASH_LEN];
	test_hash_of("secret-of-sensor", hash);
	assert_ptr_equal(store_find_token_by_hash(store, hash), sensor);
	assert_ptr_equal(store_find_token_by_name(store, "sensor"), sensor);
	assert_ptr_equal(store_find_token_by_name(store, "ci-bot"), bot);
	assert_ptr_equal(store_find_token_by_name(store, "admin"), admin);
	assert_ptr_equal(sensor->role, reader);
	assert_ptr_equal(admin->role, writer);
	assert_string_equal(sensor->requested_by, "tester");
	assert_int_equal(sensor->last_used, 150);

	/* Lookups are exact: no prefix, case or neighbour matches. */
	assert_null(store_find_token_by_name(store, "sens"));
	assert_null(store_find_token_by_name(store, "Sensor"));
	assert_null(store_find_token_by_name(store, "sensor "));
	assert_null(store_find_token_by_name(store, ""));
	hash[TOKEN_HASH_LEN - 1] ^= 1;
	assert_null(store_find_token_by_hash(store, hash));

	assert_ptr_equal(store_find_role(store, "reader"), reader);
	assert_null(store_find_role(store, "Reader"));
	assert_null(store_find_role(store, "read"));
}

static void token_new_copies_its_strings(void **state)
{
	(void)state;
	char name[] = "ci-bot", requester[] = "alice";
	unsigned char hash[TOKEN_HASH_LEN];
	test_hash_of("x", hash);
	struct token *token = token_new(name, requester, hash, 1, 2, 3);
	assert_non_null(token);
	name[0] = 'X';
	requester[0] = 'X';
	hash[0] ^= 0xff;
	assert_string_equal(token->name, "ci-bot");
	assert_string_equal(token->requested_by, "alice");
	assert_memory_not_equal(token->hash, hash, TOKEN_HASH_LEN);
	assert_int_equal(token->issued_at, 1);
	assert_int_equal(token->valid_until, 2);
	assert_int_equal(token->last_used, 3);
	token_free(token);
}

static void unlink_removes_from_both_indexes_and_counts(void **state)
{
	struct store *store = *state;
	struct role *reader = test_add_role(store, "reader");
	struct token *bot = test_add_token(store, "ci-bot", reader, 100, 200, TIME_NEVER);
	test_add_token(store, "sensor", reader, 100, 200, TIME_NEVER);
	assert_int_equal(reader->token_count, 2);

	store_unlink_token(store, bot);
	assert_int_equal(store_token_count(store), 1);
	assert_int_equal(reader->token_count, 1);
	assert_null(store_find_token_by_name(store, "ci-bot"));
	assert_null(store_find_token_by_hash(store, bot->hash));
	assert_non_null(store_find_token_by_name(store, "sensor"));

	/* Linked back (as a failed revoke does), it is found again. */
	store_link_token(store, bot, reader);
	assert_int_equal(reader->token_count, 2);
	assert_ptr_equal(store_find_token_by_name(store, "ci-bot"), bot);
	assert_ptr_equal(store_find_token_by_hash(store, bot->hash), bot);

	store_unlink_token(store, bot);
	token_free(bot);
	assert_int_equal(reader->token_count, 1);
}

static void role_counts_its_tokens(void **state)
{
	struct store *store = *state;
	struct role *reader = test_add_role(store, "reader");
	struct role *writer = test_add_role(store, "writer");
	assert_int_equal(reader->token_count, 0);
	for(int i = 0; i < 5; i++){
		char name[16];
		snprintf(name, sizeof(name), "token-%d", i);
		test_add_token(store, name, i % 2 ? writer : reader, 100, 200, TIME_NEVER);
	}
	assert_int_equal(reader->token_count, 3);
	assert_int_equal(writer->token_count, 2);
	store_clear(store);
	assert_int_equal(store_token_count(store), 0);
	assert_int_equal(store_role_count(store), 0);
}

static void tokens_are_listed_by_issue_time_then_name(void **state)
{
	struct store *store = *state;
	struct role *role = test_add_role(store, "reader");
	/* Added in an order that is neither sorted nor reversed. */
	test_add_token(store, "m", role, 300, 900, TIME_NEVER);
	test_add_token(store, "b", role, 200, 900, TIME_NEVER);
	test_add_token(store, "z", role, 100, 900, TIME_NEVER);
	test_add_token(store, "a", role, 300, 900, TIME_NEVER);
	test_add_token(store, "B", role, 200, 900, TIME_NEVER);
	test_add_token(store, "late", role, 4000000000LL, 4000000001LL, TIME_NEVER);
	test_add_token(store, "c", role, 200, 900, TIME_NEVER);

	static const char *const expected[] = {"z", "B", "b", "c", "a", "m", "late"};
	size_t count = 99;
	struct token **tokens = store_sorted_tokens(store, &count);
	assert_non_null(tokens);
	assert_int_equal(count, 7);
	for(size_t i = 0; i < count; i++){
		assert_string_equal(tokens[i]->name, expected[i]);
	}
	free(tokens);
}

static void empty_store_lists_nothing(void **state)
{
	struct store *store = *state;
	size_t count = 99;
	struct token **tokens = store_sorted_tokens(store, &count);
	assert_non_null(tokens);
	assert_int_equal(count, 0);
	free(tokens);
	count = 99;
	struct role **roles = store_sorted_roles(store, &count);
	assert_non_null(roles);
	assert_int_equal(count, 0);
	free(roles);
}

static void roles_are_listed_by_name(void **state)
{
	struct store *store = *state;
	static const char *const names[] = {"writer", "admin", "reader", "Zeta", "alpha", "a"};
	static const char *const expected[] = {"Zeta", "a", "admin", "alpha", "reader", "writer"};
	for(size_t i = 0; i < 6; i++){
		test_add_role(store, names[i]);
	}
	size_t count = 0;
	struct role **roles = store_sorted_roles(store, &count);
	assert_non_null(roles);
	assert_int_equal(count, 6);
	for(size_t i = 0; i < count; i++){
		assert_string_equal(roles[i]->name, expected[i]);
	}
	free(roles);

	struct role *admin = store_find_role(store, "admin");
	store_unlink_role(store, admin);
	assert_null(store_find_role(store, "admin"));
	assert_int_equal(store_role_count(store), 5);
	store_link_role(store, admin);
	assert_ptr_equal(store_find_role(store, "admin"), admin);
}

/* The topics of one ACL list, joined by spaces. */
static char *acl_order(const struct role *role, enum acl_type type)
{
	char *text = calloc(1, 1024);
	assert_non_null(text);
	for(const struct role_acl *acl = role->acls[type]; acl; acl = acl->next){
		assert_int_equal(acl->type, type);
		strcat(text, text[0] ? " " : "");
		strcat(text, acl->topic);
	}
	return text;
}

static void assert_acl_order(const struct role *role, enum acl_type type, const char *expected)
{
	char *order = acl_order(role, type);
	if(strcmp(order, expected) != 0){
		fail_msg("ACL order is \"%s\", expected \"%s\"", order, expected);
	}
	free(order);
}

static void acls_are_ordered_by_priority_then_insertion(void **state)
{
	struct store *store = *state;
	struct role *role = test_add_role(store, "r");
	test_add_acl(role, ACL_PUBLISH_CLIENT_SEND, "p0-first", 0, true);
	test_add_acl(role, ACL_PUBLISH_CLIENT_SEND, "p5-first", 5, false);
	test_add_acl(role, ACL_PUBLISH_CLIENT_SEND, "pminus1", -1, true);
	test_add_acl(role, ACL_PUBLISH_CLIENT_SEND, "p5-second", 5, true);
	test_add_acl(role, ACL_PUBLISH_CLIENT_SEND, "p10", 10, true);
	test_add_acl(role, ACL_PUBLISH_CLIENT_SEND, "p0-second", 0, false);
	test_add_acl(role, ACL_PUBLISH_CLIENT_SEND, "p5-third", 5, true);
	/* Other types keep their own lists. */
	test_add_acl(role, ACL_SUBSCRIBE_PATTERN, "s1", 1, true);
	test_add_acl(role, ACL_SUBSCRIBE_PATTERN, "s2", 2, true);

	assert_acl_order(role, ACL_PUBLISH_CLIENT_SEND, "p10 p5-first p5-second p5-third p0-first p0-second pminus1");
	assert_acl_order(role, ACL_SUBSCRIBE_PATTERN, "s2 s1");
	assert_acl_order(role, ACL_PUBLISH_CLIENT_RECEIVE, "");
	assert_int_equal(role->acl_count, 9);

	struct role_acl *found = role_find_acl(role, ACL_PUBLISH_CLIENT_SEND, "p5-second");
	assert_non_null(found);
	assert_int_equal(found->priority, 5);
	assert_true(found->allow);
	found = role_find_acl(role, ACL_PUBLISH_CLIENT_SEND, "p5-first");
	assert_non_null(found);
	assert_false(found->allow);
	/* Found by type and topic together. */
	assert_null(role_find_acl(role, ACL_PUBLISH_CLIENT_RECEIVE, "p10"));
	assert_null(role_find_acl(role, ACL_SUBSCRIBE_PATTERN, "p10"));
	assert_null(role_find_acl(role, ACL_PUBLISH_CLIENT_SEND, "p1"));
}

static void unlink_and_relink_restores_the_exact_position(void **state)
{
	struct store *store = *state;
	struct role *role = test_add_role(store, "r");
	static const char *const topics[] = {"a", "b", "c", "d", "e", "f"};
	static const int priorities[] = {3, 3, 1, 1, 1, 0};
	for(size_t i = 0; i < 6; i++){
		test_add_acl(role, ACL_SUBSCRIBE_LITERAL, topics[i], priorities[i], true);
	}
	const char *full = "a b c d e f";
	assert_acl_order(role, ACL_SUBSCRIBE_LITERAL, full);

	static const char *const removed_order[] = {
		"b c d e f", "a c d e f", "a b d e f", "a b c e f", "a b c d f", "a b c d e",
	};
	for(size_t i = 0; i < 6; i++){
		struct role_acl *acl = role_find_acl(role, ACL_SUBSCRIBE_LITERAL, topics[i]);
		assert_non_null(acl);
		struct role_acl *previous = role_unlink_acl(role, acl);
		assert_int_equal(role->acl_count, 5);
		assert_acl_order(role, ACL_SUBSCRIBE_LITERAL, removed_order[i]);
		assert_null(role_find_acl(role, ACL_SUBSCRIBE_LITERAL, topics[i]));
		if(i == 0){
			assert_null(previous);
		}else{
			assert_string_equal(previous->topic, topics[i - 1]);
		}
		role_relink_acl(role, acl, previous);
		assert_int_equal(role->acl_count, 6);
		/* Not re-sorted: back where it was, among equal priorities too. */
		assert_acl_order(role, ACL_SUBSCRIBE_LITERAL, full);
	}
}

static void name_rules(void **state)
{
	(void)state;
	char name[256];

	assert_null(name_problem("ci-bot", NAME_MAX_CHARS));
	assert_null(name_problem("a", NAME_MAX_CHARS));
	assert_null(name_problem("two words", NAME_MAX_CHARS));
	assert_null(name_problem("Größe-Ü", NAME_MAX_CHARS));
	assert_non_null(name_problem("", NAME_MAX_CHARS));
	assert_non_null(strstr(name_problem("", NAME_MAX_CHARS), "empty"));

	/* 30 characters pass, 31 do not: ASCII. */
	memset(name, 'x', 30);
	name[30] = '\0';
	assert_null(name_problem(name, NAME_MAX_CHARS));
	strcat(name, "x");
	assert_non_null(name_problem(name, NAME_MAX_CHARS));
	assert_non_null(strstr(name_problem(name, NAME_MAX_CHARS), "too long"));

	/* Counted in code points, not bytes: 2-, 3- and 4-byte characters. */
	static const char *const wide[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	for(size_t w = 0; w < 3; w++){
		name[0] = '\0';
		for(int i = 0; i < 30; i++){
			strcat(name, wide[w]);
		}
		if(name_problem(name, NAME_MAX_CHARS) != NULL){
			fail_msg("30 characters of %zu bytes were refused: %s", strlen(wide[w]),
					name_problem(name, NAME_MAX_CHARS));
		}
		strcat(name, wide[w]);
		if(name_problem(name, NAME_MAX_CHARS) == NULL){
			fail_msg("31 characters of %zu bytes were accepted", strlen(wide[w]));
		}
	}
	/* Mixed: 29 ASCII + one 4-byte character is 30 characters. */
	memset(name, 'y', 29);
	strcpy(name + 29, "\xf0\x9f\x98\x80");
	assert_null(name_problem(name, NAME_MAX_CHARS));
	strcat(name, "y");
	assert_non_null(name_problem(name, NAME_MAX_CHARS));

	/* The role name limit is its own. */
	memset(name, 'r', 64);
	name[64] = '\0';
	assert_null(name_problem(name, ROLENAME_MAX_CHARS));
	assert_non_null(name_problem(name, NAME_MAX_CHARS));
	strcat(name, "r");
	assert_non_null(name_problem(name, ROLENAME_MAX_CHARS));

	/* Control characters: C0 (tab, newline, ESC, 0x01, 0x1f), DEL, C1 (U+0080, U+0085, U+009F). */
	static const char *const controls[] = {
		"a\tb", "a\nb", "a\rb", "a\x1b[31mb", "\x01", "a\x1f", "a\x7f", "\x7fz",
		"a\xc2\x80z", "a\xc2\x85z", "a\xc2\x9fz",
	};
	for(size_t i = 0; i < sizeof(controls) / sizeof(controls[0]); i++){
		const char *problem = name_problem(controls[i], NAME_MAX_CHARS);
		if(problem == NULL){
			fail_msg("control character case %zu was accepted", i);
		}
		assert_non_null(strstr(problem, "control"));
	}
	/* U+00A0 (no-break space) is not a control character. */
	assert_null(name_problem("a\xc2\xa0z", NAME_MAX_CHARS));

	/* Invalid UTF-8: lone continuation, truncated sequence, overlong, surrogate, 0xff. */
	static const char *const invalid[] = {
		"a\x80", "a\xc3", "\xe2\x82", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "a\xffz", "\xf8\x88\x80\x80\x80",
	};
	for(size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++){
		const char *problem = name_problem(invalid[i], NAME_MAX_CHARS);
		if(problem == NULL){
			fail_msg("invalid UTF-8 case %zu was accepted", i);
		}
		assert_non_null(strstr(problem, "UTF-8"));
	}

	/* Leading and trailing spaces. */
	assert_non_null(name_problem(" ci-bot", NAME_MAX_CHARS));
	assert_non_null(name_problem("ci-bot ", NAME_MAX_CHARS));
	assert_non_null(name_problem(" ", NAME_MAX_CHARS));
	assert_non_null(strstr(name_problem("ci-bot ", NAME_MAX_CHARS), "space"));
}

/* Names that look like another, or like none (issue 13): format
 * characters, separators, Unicode white space at the ends, a leading
 * combining mark, spellings other than NFC. */
static void look_alike_names_are_refused(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *problem;
	} refused[] = {
		{"admin\xe2\x80\x8b", "format"},              /* U+200B zero-width space */
		{"\xef\xbb\xbf" "admin", "format"},           /* U+FEFF byte order mark */
		{"\xe2\x80\xae" "nimda", "format"},           /* U+202E right-to-left override */
		{"ad\xc2\xadmin", "format"},                  /* U+00AD soft hyphen */
		{"\xc2\xa0", "space"},                        /* a single U+00A0 no-break space */
		{"\xe3\x80\x80x\xe3\x80\x80", "space"},       /* U+3000 ideographic space at both ends */
		{"x\xe2\x80\x83", "space"},                   /* U+2003 em space at the end */
		{"a\xe2\x80\xa8" "b", "separator"},            /* U+2028 line separator */
		{"a\xe2\x80\xa9" "b", "separator"},            /* U+2029 paragraph separator */
		{"\xcc\x81\xcc\x81", "combining"},             /* combining acute accents only */
		{"Cafe\xcc\x81", "NFC"},                      /* e + combining acute: NFC is U+00E9 */
		{"\xe2\x84\xab", "NFC"},                      /* U+212B angstrom sign: NFC is U+00C5 */
		{"admin\xe3\x85\xa4", "format"},              /* U+3164 Hangul filler */
		{"admin\xcd\x8f", "format"},                   /* U+034F combining grapheme joiner */
		{"admin\xef\xb8\x8f", "format"},              /* U+FE0F variation selector */
		{"\xef\xbe\xa0", "format"},                   /* U+FFA0 halfwidth Hangul filler */
	};
	/* Names stored before this rule still load: only new names meet it. */
	assert_null(name_problem("Cafe\xcc\x81", NAME_MAX_CHARS));
	assert_null(name_problem("admin\xe2\x80\x8b", NAME_MAX_CHARS));
	for(size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++){
		const char *problem = new_name_problem(refused[i].name, NAME_MAX_CHARS);
		if(problem == NULL || strstr(problem, refused[i].problem) == NULL){
			fail_msg("case %zu: expected a problem about %s, got %s", i, refused[i].problem,
					problem ? problem : "none");
		}
	}
	/* Still fine: composed letters, a no-break space inside, other scripts, emoji. */
	static const char *const accepted[] = {
		"Caf\xc3\xa9", "a\xc2\xa0z", "\xe6\x9d\xb1\xe4\xba\xac", "\xd0\x9c\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0",
		"sensor \xf0\x9f\x8c\xa1",
	};
	for(size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++){
		const char *problem = new_name_problem(accepted[i], NAME_MAX_CHARS);
		if(problem){
			fail_msg("case %zu was refused: %s", i, problem);
		}
	}
}

static void acl_type_names_round_trip(void **state)
{
	(void)state;
	static const char *const names[ACL_TYPE_COUNT] = {
		[ACL_PUBLISH_CLIENT_SEND] = "publishClientSend",
		[ACL_PUBLISH_CLIENT_RECEIVE] = "publishClientReceive",
		[ACL_SUBSCRIBE_LITERAL] = "subscribeLiteral",
		[ACL_SUBSCRIBE_PATTERN] = "subscribePattern",
		[ACL_UNSUBSCRIBE_LITERAL] = "unsubscribeLiteral",
		[ACL_UNSUBSCRIBE_PATTERN] = "unsubscribePattern",
	};
	for(int i = 0; i < ACL_TYPE_COUNT; i++){
		assert_string_equal(acl_type_name((enum acl_type)i), names[i]);
		enum acl_type type = ACL_TYPE_COUNT;
		assert_true(acl_type_from_name(names[i], &type));
		assert_int_equal(type, i);
	}
	enum acl_type type;
	assert_false(acl_type_from_name("", &type));
	assert_false(acl_type_from_name("publishclientsend", &type));
	assert_false(acl_type_from_name("publishClientSend ", &type));
	assert_false(acl_type_from_name("publish", &type));
	assert_false(acl_type_from_name("subscribe", &type));
}

#define STORE_TEST(f) cmocka_unit_test_setup_teardown(f, setup_store, teardown_store)

int main(void)
{
	const struct CMUnitTest tests[] = {
		STORE_TEST(link_and_find_tokens),
		cmocka_unit_test(token_new_copies_its_strings),
		STORE_TEST(unlink_removes_from_both_indexes_and_counts),
		STORE_TEST(role_counts_its_tokens),
		STORE_TEST(tokens_are_listed_by_issue_time_then_name),
		STORE_TEST(empty_store_lists_nothing),
		STORE_TEST(roles_are_listed_by_name),
		STORE_TEST(acls_are_ordered_by_priority_then_insertion),
		STORE_TEST(unlink_and_relink_restores_the_exact_position),
		cmocka_unit_test(name_rules),
		cmocka_unit_test(look_alike_names_are_refused),
		cmocka_unit_test(acl_type_names_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
