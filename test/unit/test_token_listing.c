/*
 * listTokens' pages from the store's orders (token_listing.c), against a
 * reference that filters and sorts every token: small and wide name
 * prefixes, role and status filters, pages read forwards (resuming where
 * the last one ended), backwards and at random, across store changes and
 * the clock passing validUntil.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "test_support.h"
#include "token_listing.h"
#include "token_orders.h"
#include "invariants.h"

#define ROLE_COUNT 3
#define WIDE_PREFIX "device-"   /* given to most names: more than LISTING_SMALL_RANGE */

struct listing_fixture {
	struct store store;
	struct listing_memo memo;
	struct role *roles[ROLE_COUNT];
	unsigned seed;
	int64_t now;
	size_t next_name;
};

static unsigned next_random(struct listing_fixture *fixture)
{
	fixture->seed = fixture->seed * 1103515245u + 12345u;
	return (fixture->seed >> 8) & 0xffffff;
}

static const char *const prefixes[] = {WIDE_PREFIX, WIDE_PREFIX, WIDE_PREFIX, "dev-", "ops/", "\xc3\xa9"};

static struct token *add_random_token(struct listing_fixture *fixture)
{
	char *name = test_format("%s%05zu", prefixes[next_random(fixture) % 6], fixture->next_name++);
	struct role *role = fixture->roles[next_random(fixture) % ROLE_COUNT];
	int64_t issued = 1000 + next_random(fixture) % 50;
	int64_t until = fixture->now - 100 + (int64_t)(next_random(fixture) % 400);
	struct token *token = test_add_token(&fixture->store, name, role, issued, until, TIME_NEVER);
	free(name);
	return token;
}

static int setup_listing(void **state)
{
	struct listing_fixture *fixture = calloc(1, sizeof(*fixture));
	assert_non_null(fixture);
	store_init(&fixture->store);
	fixture->seed = 18;
	fixture->now = 5000;
	for(int i = 0; i < ROLE_COUNT; i++){
		char *name = test_format("role-%d", i);
		fixture->roles[i] = test_add_role(&fixture->store, name);
		free(name);
	}
	for(int i = 0; i < 6000; i++){
		add_random_token(fixture);
	}
	*state = fixture;
	return 0;
}

static int teardown_listing(void **state)
{
	struct listing_fixture *fixture = *state;
	store_clear(&fixture->store);
	free(fixture);
	return 0;
}

struct collected {
	const struct token **tokens;
	size_t count, capacity;
};

static bool collect(void *context, const struct token *token)
{
	struct collected *collected = context;
	if(collected->count == collected->capacity){
		collected->capacity = collected->capacity ? 2 * collected->capacity : 64;
		collected->tokens = realloc(collected->tokens, collected->capacity * sizeof(*collected->tokens));
		assert_non_null(collected->tokens);
	}
	collected->tokens[collected->count++] = token;
	return true;
}

static bool matches(const struct token_query *query, const struct token *token)
{
	bool valid = token->valid_until > query->now;
	return (query->status == ORDER_ALL || (query->status == ORDER_VALID) == valid)
		&& (query->role == NULL || strcmp(query->role, token->role->name) == 0)
		&& (query->name_prefix == NULL || strncmp(token->name, query->name_prefix, strlen(query->name_prefix)) == 0);
}

/* Every match, sorted: what the page must be a slice of. */
static struct collected reference(const struct store *store, const struct token_query *query)
{
	struct collected all = {0};
	size_t count;
	struct token **sorted = store_sorted_tokens(store, &count);
	assert_non_null(sorted);
	for(size_t i = 0; i < count; i++){
		if(i > 0){
			assert_true(token_order_by_issue(sorted[i - 1], sorted[i]) < 0);
		}
		if(matches(query, sorted[i])){
			collect(&all, sorted[i]);
		}
	}
	free(sorted);
	return all;
}

static void check_page(struct listing_fixture *fixture, struct token_query query)
{
	query.now = fixture->now;
	struct collected wanted = reference(&fixture->store, &query);
	struct collected got = {0};
	size_t total = 12345;
	assert_int_equal(token_listing_page(&fixture->store, &fixture->memo, &query, collect, &got, &total), LISTING_DONE);
	assert_int_equal(total, wanted.count);
	size_t from = query.offset < wanted.count ? query.offset : wanted.count;
	size_t expected = wanted.count - from < query.limit ? wanted.count - from : query.limit;
	if(got.count != expected){
		fail_msg("prefix %s role %s status %d offset %zu limit %zu: %zu tokens, wanted %zu",
				query.name_prefix ? query.name_prefix : "-", query.role ? query.role : "-", (int)query.status,
				query.offset, query.limit, got.count, expected);
	}
	for(size_t i = 0; i < got.count; i++){
		assert_ptr_equal(got.tokens[i], wanted.tokens[from + i]);
	}
	free(wanted.tokens);
	free(got.tokens);
}

static const char *const queried_prefixes[] = {NULL, "", WIDE_PREFIX, "device-0", "dev", "dev-", "ops/", "\xc3\xa9",
	"x", "device-00001"};
static const char *const queried_roles[] = {NULL, "role-1", "no-such-role"};

static void check_every_filter_at(struct listing_fixture *fixture, size_t offset, size_t limit)
{
	for(size_t p = 0; p < sizeof(queried_prefixes) / sizeof(queried_prefixes[0]); p++){
		for(size_t r = 0; r < sizeof(queried_roles) / sizeof(queried_roles[0]); r++){
			for(int status = ORDER_ALL; status <= ORDER_INVALID; status++){
				check_page(fixture, (struct token_query){.status = (enum order_status)status,
					.role = queried_roles[r], .name_prefix = queried_prefixes[p], .offset = offset, .limit = limit});
			}
		}
	}
}

static void every_filter_first_middle_and_last_pages(void **state)
{
	struct listing_fixture *fixture = *state;
	check_every_filter_at(fixture, 0, SIZE_MAX);
	check_every_filter_at(fixture, 0, 50);
	check_every_filter_at(fixture, 700, 50);
	check_every_filter_at(fixture, 1300, 25);
	check_every_filter_at(fixture, 5990, 50);
	check_every_filter_at(fixture, 100000, 5);
}

/* Each page of a wide prefix, forwards then backwards: the walk resumes,
 * or starts from the end, and every page is still the reference's slice. */
static void paging_through_a_wide_prefix(void **state)
{
	struct listing_fixture *fixture = *state;
	const char *roles[] = {NULL, "role-2"};
	for(size_t r = 0; r < 2; r++){
		for(int status = ORDER_ALL; status <= ORDER_INVALID; status++){
			struct token_query query = {.status = (enum order_status)status, .role = roles[r],
				.name_prefix = WIDE_PREFIX, .limit = 37};
			for(query.offset = 0; query.offset < 4000; query.offset += 37){
				check_page(fixture, query);
			}
			for(size_t page = 0; page < 60; page++){
				query.offset = 4000 - 37 * page;
				check_page(fixture, query);
			}
		}
	}
}

static void random_pages_between_changes(void **state)
{
	struct listing_fixture *fixture = *state;
	for(int round = 0; round < 300; round++){
		unsigned what = next_random(fixture) % 10;
		if(what == 0){
			add_random_token(fixture);
		}else if(what == 1){
			size_t count;
			struct token **tokens = store_sorted_tokens(&fixture->store, &count);
			struct token *victim = tokens[next_random(fixture) % count];
			free(tokens);
			store_unlink_token(&fixture->store, victim);
			token_free(victim);
		}else if(what == 2){
			fixture->now += next_random(fixture) % 20;   /* some tokens turn invalid */
		}
		struct token_query query = {.status = (enum order_status)(next_random(fixture) % 3),
			.role = queried_roles[next_random(fixture) % 3],
			.name_prefix = queried_prefixes[next_random(fixture) % 10],
			.offset = next_random(fixture) % 4500, .limit = 1 + next_random(fixture) % 80};
		check_page(fixture, query);
		query.offset += query.limit;   /* the next page, as a console's "next" asks */
		check_page(fixture, query);
	}
	char problem[256];
	assert_true(invariants_check_store(&fixture->store, problem, sizeof(problem)));
}

/* The clock going back makes expired tokens valid again. */
static void the_clock_going_back(void **state)
{
	struct listing_fixture *fixture = *state;
	check_every_filter_at(fixture, 0, 40);
	fixture->now -= 150;
	check_every_filter_at(fixture, 0, 40);
	fixture->now += 400;
	check_every_filter_at(fixture, 10, 40);
}

static bool stop_after_three(void *context, const struct token *token)
{
	(void)token;
	return ++*(size_t *)context < 3;
}

static void a_visitor_stops_the_listing(void **state)
{
	struct listing_fixture *fixture = *state;
	const char *listed_prefixes[] = {NULL, WIDE_PREFIX, "ops/"};
	for(size_t p = 0; p < 3; p++){
		size_t visited = 0, total;
		struct token_query query = {.name_prefix = listed_prefixes[p], .limit = 10, .now = fixture->now};
		assert_int_equal(token_listing_page(&fixture->store, &fixture->memo, &query, stop_after_three, &visited, &total),
				LISTING_STOPPED);
		assert_int_equal(visited, 3);
	}
	/* The stopped walk left nothing to resume from wrongly. */
	check_page(fixture, (struct token_query){.name_prefix = WIDE_PREFIX, .offset = 3, .limit = 10});
}

static void a_prefix_longer_than_any_name(void **state)
{
	struct listing_fixture *fixture = *state;
	char prefix[LISTING_PREFIX_MAX + 2];
	memset(prefix, 'd', sizeof(prefix) - 1);
	prefix[sizeof(prefix) - 1] = '\0';
	check_page(fixture, (struct token_query){.name_prefix = prefix, .limit = 10});
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(every_filter_first_middle_and_last_pages, setup_listing, teardown_listing),
		cmocka_unit_test_setup_teardown(paging_through_a_wide_prefix, setup_listing, teardown_listing),
		cmocka_unit_test_setup_teardown(random_pages_between_changes, setup_listing, teardown_listing),
		cmocka_unit_test_setup_teardown(the_clock_going_back, setup_listing, teardown_listing),
		cmocka_unit_test_setup_teardown(a_visitor_stops_the_listing, setup_listing, teardown_listing),
		cmocka_unit_test_setup_teardown(a_prefix_longer_than_any_name, setup_listing, teardown_listing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
