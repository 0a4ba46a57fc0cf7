/*
 * The ordered index (include/order_index.h) against a reference: a sorted
 * array of the same tokens, whose status counts, ranks and neighbours are
 * found by brute force. Every step of every randomized run is followed by
 * order_index_problem and, on small indexes, a full comparison.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "order_index.h"
#include "store.h"
#include "test_support.h"

/* ---- failing allocations (linked with -Wl,--wrap, as test_oom) ---- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *pointer, size_t size);

static long allocations_left = -1;   /* -1: never fail */
static long failures;

static bool fails_now(void)
{
	if(allocations_left < 0){
		return false;
	}
	if(allocations_left-- == 0){
		failures++;
		return true;
	}
	return false;
}

void *__wrap_malloc(size_t size)
{
	return fails_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t count, size_t size)
{
	return fails_now() ? NULL : __real_calloc(count, size);
}

void *__wrap_realloc(void *pointer, size_t size)
{
	return fails_now() ? NULL : __real_realloc(pointer, size);
}

/* ---- tokens and orders ---- */

static uint64_t random_state = 88172645463325252u;

/* xorshift64: the same runs on every machine. */
static uint64_t random_next(void)
{
	random_state ^= random_state << 13;
	random_state ^= random_state >> 7;
	random_state ^= random_state << 17;
	return random_state;
}

static size_t random_below(size_t bound)
{
	return (size_t)(random_next() % bound);
}

static struct token *new_token(size_t number, int64_t issued_at, int64_t valid_until)
{
	char name[32];
	snprintf(name, sizeof(name), "t%08zu", number);
	unsigned char hash[TOKEN_HASH_LEN] = {0};
	struct token *token = token_new(name, "test", hash, issued_at, valid_until, TIME_NEVER);
	assert_non_null(token);
	return token;
}

static int compare_issued_then_name(const struct token *a, const struct token *b)
{
	if(a->issued_at != b->issued_at){
		return a->issued_at < b->issued_at ? -1 : 1;
	}
	return strcmp(a->name, b->name);
}

static int compare_name(const struct token *a, const struct token *b)
{
	return strcmp(a->name, b->name);
}

static int key_name(const struct token *token, const void *key)
{
	return strcmp(token->name, key);
}

/* Every name that starts with the prefix comes before the key: the lower
 * bound is the first name after them. */
static int key_after_prefix(const struct token *token, const void *key)
{
	const char *prefix = key;
	return strncmp(token->name, prefix, strlen(prefix)) <= 0 ? -1 : 1;
}

static int key_issued_at(const struct token *token, const void *key)
{
	int64_t issued_at = *(const int64_t *)key;
	return token->issued_at < issued_at ? -1 : token->issued_at > issued_at;
}

/* ---- the reference ---- */

struct reference {
	struct token **tokens;
	size_t count;
	size_t capacity;
	order_compare_fn compare;
	int64_t now;
};

static void reference_init(struct reference *reference, order_compare_fn compare, size_t capacity, int64_t now)
{
	reference->tokens = calloc(capacity, sizeof(*reference->tokens));
	assert_non_null(reference->tokens);
	reference->count = 0;
	reference->capacity = capacity;
	reference->compare = compare;
	reference->now = now;
}

static size_t reference_position(const struct reference *reference, const struct token *token)
{
	size_t position = 0;
	while(position < reference->count && reference->compare(reference->tokens[position], token) < 0){
		position++;
	}
	return position;
}

static void reference_insert(struct reference *reference, struct token *token)
{
	assert_true(reference->count < reference->capacity);
	size_t position = reference_position(reference, token);
	memmove(&reference->tokens[position + 1], &reference->tokens[position],
			(reference->count - position) * sizeof(reference->tokens[0]));
	reference->tokens[position] = token;
	reference->count++;
}

static void reference_remove_at(struct reference *reference, size_t position)
{
	memmove(&reference->tokens[position], &reference->tokens[position + 1],
			(reference->count - position - 1) * sizeof(reference->tokens[0]));
	reference->count--;
}

static bool reference_has_status(const struct reference *reference, size_t position, enum order_status status)
{
	bool valid = reference->tokens[position]->valid_until > reference->now;
	return status == ORDER_ALL || (status == ORDER_VALID) == valid;
}

static size_t reference_status_count(const struct reference *reference, enum order_status status)
{
	size_t count = 0;
	for(size_t i = 0; i < reference->count; i++){
		count += reference_has_status(reference, i, status);
	}
	return count;
}

static void reference_free_tokens(struct reference *reference)
{
	for(size_t i = 0; i < reference->count; i++){
		token_free(reference->tokens[i]);
	}
	free(reference->tokens);
}

/* ---- checks ---- */

static const enum order_status statuses[] = {ORDER_ALL, ORDER_VALID, ORDER_INVALID};

static void assert_consistent(const struct order_index *index, const struct reference *reference)
{
	const char *problem = order_index_problem(index);
	if(problem != NULL){
		fail_msg("order_index_problem: %s", problem);
	}
	assert_int_equal(order_index_count(index), reference->count);
	for(size_t s = 0; s < 3; s++){
		assert_int_equal(order_index_status_count(index, statuses[s]), reference_status_count(reference, statuses[s]));
	}
	assert_true((order_index_bytes(index) == 0) == (reference->count == 0));
}

/* Walks every status forward from before the start and backward from past
 * the end, and seeks each rank. */
static void assert_same_as_reference(const struct order_index *index, const struct reference *reference)
{
	assert_consistent(index, reference);
	for(size_t s = 0; s < 3; s++){
		enum order_status status = statuses[s];
		struct order_cursor cursor = {.before_start = true};
		size_t rank = 0;
		for(size_t i = 0; i < reference->count; i++){
			if(!reference_has_status(reference, i, status)){
				continue;
			}
			assert_true(order_cursor_next(index, &cursor, status));
			assert_ptr_equal(order_cursor_token(&cursor), reference->tokens[i]);
			struct order_cursor sought;
			assert_true(order_index_seek(index, status, rank, &sought));
			assert_ptr_equal(order_cursor_token(&sought), reference->tokens[i]);
			rank++;
		}
		assert_false(order_cursor_next(index, &cursor, status));
		assert_null(order_cursor_token(&cursor));
		struct order_cursor beyond;
		assert_false(order_index_seek(index, status, rank, &beyond));
		for(size_t i = reference->count; i-- > 0;){
			if(!reference_has_status(reference, i, status)){
				continue;
			}
			assert_true(order_cursor_prev(index, &cursor, status));
			assert_ptr_equal(order_cursor_token(&cursor), reference->tokens[i]);
		}
		assert_false(order_cursor_prev(index, &cursor, status));
		assert_null(order_cursor_token(&cursor));
		struct order_cursor last;
		bool has_last = order_index_last(index, status, &last);
		assert_int_equal(has_last, rank > 0);
	}
}

/* ---- tests ---- */

static void empty_index_holds_nothing(void **state)
{
	(void)state;
	struct order_index index;
	order_index_init(&index, compare_name, 100);
	struct reference reference;
	reference_init(&reference, compare_name, 1, 100);
	assert_same_as_reference(&index, &reference);
	assert_null(order_index_find(&index, key_name, "x"));
	order_index_clear(&index);
	free(reference.tokens);
}

/* Random inserts and removals, with some appends, checked at every step. */
static void random_inserts_and_removals_match_the_reference(void **state)
{
	(void)state;
	enum { STEPS = 6000, POOL = 3000 };
	int64_t now = 1000;
	struct order_index index;
	order_index_init(&index, compare_issued_then_name, now);
	struct reference reference;
	reference_init(&reference, compare_issued_then_name, POOL, now);
	int64_t latest = 0;
	for(size_t step = 0; step < STEPS; step++){
		bool grow = reference.count == 0 || (reference.count < POOL && random_below(100) < (step < STEPS / 2 ? 70 : 35));
		if(grow){
			bool append = random_below(2) == 0;
			int64_t issued_at = append ? ++latest : (int64_t)random_below((size_t)latest + 1);
			struct token *token = new_token(step, issued_at, now - 500 + (int64_t)random_below(1000));
			assert_true(order_index_insert(&index, token));
			reference_insert(&reference, token);
		}else{
			size_t position = random_below(reference.count);
			struct token *token = reference.tokens[position];
			order_index_remove(&index, token);
			reference_remove_at(&reference, position);
			token_free(token);
		}
		if(reference.count < 300 || step % 97 == 0){
			assert_same_as_reference(&index, &reference);
		}else{
			assert_consistent(&index, &reference);
		}
	}
	order_index_clear(&index);
	assert_int_equal(order_index_bytes(&index), 0);
	assert_null(order_index_problem(&index));
	reference_free_tokens(&reference);
}

/* lower_bound and find against the reference, for a name and its prefix
 * range on a name-ordered index, and for issued_at on the other order. */
static void assert_lower_bound(const struct order_index *index, const struct reference *reference,
		order_key_fn key_fn, const void *key)
{
	size_t expected = 0, valid_before = 0;
	while(expected < reference->count && key_fn(reference->tokens[expected], key) < 0){
		valid_before += reference_has_status(reference, expected, ORDER_VALID);
		expected++;
	}
	struct order_cursor cursor;
	size_t rank_all, rank_valid;
	order_index_lower_bound(index, key_fn, key, &cursor, &rank_all, &rank_valid);
	assert_int_equal(rank_all, expected);
	assert_int_equal(rank_valid, valid_before);
	assert_ptr_equal(order_cursor_token(&cursor), expected < reference->count ? reference->tokens[expected] : NULL);
	struct token *found = order_index_find(index, key_fn, key);
	bool exact = expected < reference->count && key_fn(reference->tokens[expected], key) == 0;
	assert_ptr_equal(found, exact ? reference->tokens[expected] : NULL);
}

static void lower_bounds_and_prefix_ranges_match_the_reference(void **state)
{
	(void)state;
	enum { COUNT = 2000 };
	struct order_index by_name, by_issue;
	order_index_init(&by_name, compare_name, 1000);
	order_index_init(&by_issue, compare_issued_then_name, 1000);
	struct reference names, issues;
	reference_init(&names, compare_name, COUNT, 1000);
	reference_init(&issues, compare_issued_then_name, COUNT, 1000);
	for(size_t i = 0; i < COUNT; i++){
		struct token *token = new_token(random_below(COUNT * 10), (int64_t)random_below(500),
				500 + (int64_t)random_below(1000));
		if(order_index_find(&by_name, key_name, token->name) != NULL){
			token_free(token);
			continue;
		}
		assert_true(order_index_insert(&by_name, token));
		assert_true(order_index_insert(&by_issue, token));
		reference_insert(&names, token);
		reference_insert(&issues, token);
	}
	assert_same_as_reference(&by_name, &names);
	assert_same_as_reference(&by_issue, &issues);
	for(size_t i = 0; i < 3000; i++){
		char key[32];
		snprintf(key, sizeof(key), "t%08zu", random_below(COUNT * 10));
		size_t prefix_length = 1 + random_below(8);
		assert_lower_bound(&by_name, &names, key_name, key);
		key[prefix_length] = '\0';
		assert_lower_bound(&by_name, &names, key_name, key);
		assert_lower_bound(&by_name, &names, key_after_prefix, key);
		int64_t issued_at = (int64_t)random_below(520) - 10;
		assert_lower_bound(&by_issue, &issues, key_issued_at, &issued_at);
	}
	order_index_clear(&by_name);
	order_index_clear(&by_issue);
	free(issues.tokens);
	reference_free_tokens(&names);
}

/* The clock forward and back, on indexes of several sizes. */
static void refresh_follows_the_clock_both_ways(void **state)
{
	(void)state;
	const size_t sizes[] = {1, 5, 64, 65, 1000, 20000};
	for(size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++){
		struct order_index index;
		order_index_init(&index, compare_issued_then_name, 0);
		struct reference reference;
		reference_init(&reference, compare_issued_then_name, sizes[z], 0);
		for(size_t i = 0; i < sizes[z]; i++){
			struct token *token = new_token(i, (int64_t)i, (int64_t)random_below(10000));
			assert_true(order_index_insert(&index, token));
			reference_insert(&reference, token);
		}
		for(int step = 0; step < 40; step++){
			int64_t now = (int64_t)random_below(11000) - 500;
			order_index_refresh(&index, now);
			reference.now = now;
			if(sizes[z] <= 1000){
				assert_same_as_reference(&index, &reference);
			}else{
				assert_consistent(&index, &reference);
			}
		}
		order_index_clear(&index);
		reference_free_tokens(&reference);
	}
}

/* ---- larger trees (several levels of branches) ---- */

static struct token **many_tokens(size_t count)
{
	struct token **tokens = malloc(count * sizeof(*tokens));
	assert_non_null(tokens);
	for(size_t i = 0; i < count; i++){
		/* issued_at repeats so that the name breaks ties. */
		tokens[i] = new_token(i, (int64_t)(i / 3), (int64_t)random_below(100000));
	}
	return tokens;
}

static void shuffle(struct token **tokens, size_t count)
{
	for(size_t i = count; i > 1; i--){
		size_t j = random_below(i);
		struct token *swap = tokens[i - 1];
		tokens[i - 1] = tokens[j];
		tokens[j] = swap;
	}
}

static int qsort_issued_then_name(const void *a, const void *b)
{
	return compare_issued_then_name(*(struct token *const *)a, *(struct token *const *)b);
}

/* A reference that borrows an array already sorted. */
static struct reference sorted_reference(struct token **tokens, size_t count, int64_t now)
{
	qsort(tokens, count, sizeof(tokens[0]), qsort_issued_then_name);
	struct reference reference = {tokens, count, count, compare_issued_then_name, now};
	return reference;
}

static void assert_no_problem(const struct order_index *index)
{
	const char *problem = order_index_problem(index);
	if(problem != NULL){
		fail_msg("order_index_problem: %s", problem);
	}
}

/* Removes every token in a random order, checking along the way (merges,
 * borrows and root collapses at every level). */
static void remove_all(struct order_index *index, struct token **tokens, size_t count)
{
	shuffle(tokens, count);
	for(size_t i = 0; i < count; i++){
		order_index_remove(index, tokens[i]);
		if(count - i < 3000 || i % 4999 == 0){
			assert_no_problem(index);
			assert_int_equal(order_index_count(index), count - i - 1);
		}
	}
	assert_int_equal(order_index_bytes(index), 0);
	assert_no_problem(index);
}

static void two_hundred_thousand_tokens(void **state)
{
	(void)state;
	enum { COUNT = 200000 };
	int64_t now = 50000;
	struct token **tokens = many_tokens(COUNT);
	struct order_index random_built, appended, built;
	order_index_init(&random_built, compare_issued_then_name, now);
	order_index_init(&appended, compare_issued_then_name, now);
	order_index_init(&built, compare_issued_then_name, now);

	shuffle(tokens, COUNT);
	for(size_t i = 0; i < COUNT; i++){
		assert_true(order_index_insert(&random_built, tokens[i]));
		if(i % 9999 == 0){
			assert_no_problem(&random_built);
		}
	}
	struct reference reference = sorted_reference(tokens, COUNT, now);
	for(size_t i = 0; i < COUNT; i++){
		assert_true(order_index_insert(&appended, tokens[i]));
	}
	assert_true(order_index_build(&built, tokens, COUNT));
	assert_same_as_reference(&random_built, &reference);
	assert_same_as_reference(&appended, &reference);
	assert_same_as_reference(&built, &reference);
	printf("bytes per token: random inserts %.2f, appends %.2f, build %.2f\n",
			(double)order_index_bytes(&random_built) / COUNT, (double)order_index_bytes(&appended) / COUNT,
			(double)order_index_bytes(&built) / COUNT);
	/* Appends fill leaves as build does; random inserts leave them 50-100%. */
	assert_true(order_index_bytes(&appended) < order_index_bytes(&built) * 101 / 100);
	assert_true(order_index_bytes(&random_built) > order_index_bytes(&built) * 110 / 100);

	/* 1% of the valid expire, then the clock goes back past them all. */
	order_index_refresh(&random_built, now + 500);
	reference.now = now + 500;
	assert_same_as_reference(&random_built, &reference);
	order_index_refresh(&random_built, 10);
	reference.now = 10;
	assert_same_as_reference(&random_built, &reference);

	remove_all(&random_built, tokens, COUNT);
	order_index_clear(&appended);
	order_index_clear(&built);
	for(size_t i = 0; i < COUNT; i++){
		token_free(tokens[i]);
	}
	free(tokens);
}

/* Long runs of one status: next and prev skip them by the counts. */
static void cursors_skip_long_runs_of_the_other_status(void **state)
{
	(void)state;
	enum { COUNT = 30000 };
	struct token **tokens = malloc(COUNT * sizeof(*tokens));
	assert_non_null(tokens);
	for(size_t i = 0; i < COUNT; i++){
		bool valid = i % 4001 == 7 || i == COUNT - 1 || (i > 20000 && i < 20100);
		tokens[i] = new_token(i, (int64_t)i, valid ? 2000 : 500);
	}
	struct order_index index;
	order_index_init(&index, compare_issued_then_name, 1000);
	assert_true(order_index_build(&index, tokens, COUNT));
	struct reference reference = {tokens, COUNT, COUNT, compare_issued_then_name, 1000};
	assert_same_as_reference(&index, &reference);
	/* And the other way round. */
	order_index_refresh(&index, 3000);
	reference.now = 3000;
	assert_same_as_reference(&index, &reference);
	order_index_refresh(&index, 1000);
	reference.now = 1000;
	struct order_cursor cursor;
	assert_true(order_index_seek(&index, ORDER_VALID, 0, &cursor));
	assert_ptr_equal(order_cursor_token(&cursor), tokens[7]);
	assert_true(order_cursor_next(&index, &cursor, ORDER_VALID));
	assert_ptr_equal(order_cursor_token(&cursor), tokens[4008]);
	assert_true(order_cursor_prev(&index, &cursor, ORDER_INVALID));
	assert_ptr_equal(order_cursor_token(&cursor), tokens[4007]);
	assert_true(order_index_last(&index, ORDER_INVALID, &cursor));
	assert_ptr_equal(order_cursor_token(&cursor), tokens[COUNT - 2]);
	order_index_clear(&index);
	reference_free_tokens(&reference);
}

/* Build at every size around a leaf and a branch boundary, then keeps
 * changing what it built. */
static void build_then_change(void **state)
{
	(void)state;
	const size_t sizes[] = {0, 1, 3, 4, 5, 63, 64, 65, 128, 129, 4095, 4096, 4097, 5000};
	for(size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++){
		size_t count = sizes[z];
		struct reference reference;
		reference_init(&reference, compare_issued_then_name, count + 200, 1000);
		for(size_t i = 0; i < count; i++){
			reference.tokens[i] = new_token(i, (int64_t)(2 * i), (int64_t)random_below(2000));
		}
		reference.count = count;
		struct order_index index;
		order_index_init(&index, compare_issued_then_name, 1000);
		assert_true(order_index_build(&index, reference.tokens, count));
		assert_same_as_reference(&index, &reference);
		for(size_t step = 0; step < 400; step++){
			if(reference.count > 0 && random_below(2) == 0){
				size_t position = random_below(reference.count);
				struct token *token = reference.tokens[position];
				order_index_remove(&index, token);
				reference_remove_at(&reference, position);
				token_free(token);
			}else if(reference.count < reference.capacity){
				struct token *token = new_token(100000 + step, (int64_t)random_below(2 * count + 2),
						(int64_t)random_below(2000));
				assert_true(order_index_insert(&index, token));
				reference_insert(&reference, token);
			}
			if(count < 200 || step % 50 == 0){
				assert_same_as_reference(&index, &reference);
			}else{
				assert_consistent(&index, &reference);
			}
		}
		order_index_clear(&index);
		reference_free_tokens(&reference);
	}
}

/* Small indexes stay small: the one leaf grows 4 -> 8 -> ... -> 64. */
static void a_small_index_is_small(void **state)
{
	(void)state;
	struct order_index index;
	order_index_init(&index, compare_issued_then_name, 0);
	assert_int_equal(order_index_bytes(&index), 0);
	struct token *tokens[65];
	size_t previous_bytes = 0;
	for(size_t i = 0; i < 65; i++){
		tokens[i] = new_token(i, (int64_t)i, 10);
		assert_true(order_index_insert(&index, tokens[i]));
		size_t bytes = order_index_bytes(&index);
		if(i == 4 || i == 8 || i == 16 || i == 32 || i == 64){
			assert_true(bytes > previous_bytes);
		}else if(i > 0){
			assert_int_equal(bytes, previous_bytes);
		}
		if(i == 0 || i == 63){
			printf("%zu token(s): %zu bytes\n", i + 1, bytes);
		}
		previous_bytes = bytes;
	}
	for(size_t i = 0; i < 65; i++){
		order_index_remove(&index, tokens[i]);
		assert_no_problem(&index);
		token_free(tokens[i]);
	}
	assert_int_equal(order_index_bytes(&index), 0);
}

/* ---- out of memory ---- */

/* Every token in order, by cursor: what "unchanged" compares. */
static struct token **contents(const struct order_index *index)
{
	size_t count = order_index_count(index);
	struct token **tokens = malloc((count + 1) * sizeof(*tokens));
	assert_non_null(tokens);
	struct order_cursor cursor = {.before_start = true};
	for(size_t i = 0; i < count; i++){
		assert_true(order_cursor_next(index, &cursor, ORDER_ALL));
		tokens[i] = order_cursor_token(&cursor);
	}
	return tokens;
}

/* Inserts token with the Nth allocation failing, for N = 0, 1, ... until
 * it works: each failure leaves the index as it was. Returns how many
 * allocations failed. */
static long insert_failing_each_allocation(struct order_index *index, struct token *token)
{
	size_t count = order_index_count(index);
	size_t bytes = order_index_bytes(index);
	size_t valid = order_index_status_count(index, ORDER_VALID);
	struct token **before = contents(index);
	long failed = 0;
	for(long n = 0;; n++){
		long failures_before = failures;
		allocations_left = n;
		bool inserted = order_index_insert(index, token);
		allocations_left = -1;
		if(inserted){
			assert_int_equal(failures, failures_before);
			break;
		}
		assert_int_equal(failures, failures_before + 1);
		failed++;
		assert_no_problem(index);
		assert_int_equal(order_index_count(index), count);
		assert_int_equal(order_index_bytes(index), bytes);
		assert_int_equal(order_index_status_count(index, ORDER_VALID), valid);
		struct token **after = contents(index);
		assert_memory_equal(before, after, count * sizeof(before[0]));
		free(after);
	}
	free(before);
	assert_no_problem(index);
	assert_int_equal(order_index_count(index), count + 1);
	return failed;
}

/* The first token, each growth of the one leaf, the first split (a leaf
 * and a new root), a split of a full root (a leaf, a branch and a root),
 * a split in the middle of a full tree, and then random inserts. */
static void every_allocation_of_insert_may_fail(void **state)
{
	(void)state;
	enum { FULL = 64 * 64 };
	struct token **tokens = malloc((FULL + 1) * sizeof(*tokens));
	assert_non_null(tokens);
	for(size_t i = 0; i <= FULL; i++){
		tokens[i] = new_token(i, (int64_t)(2 * i), (int64_t)(i % 7));
	}
	struct order_index index;
	order_index_init(&index, compare_issued_then_name, 3);
	long failed = 0;
	for(size_t i = 0; i <= 64; i++){
		failed += insert_failing_each_allocation(&index, tokens[i]);
	}
	assert_int_equal(failed, 1 + 4 + 2);   /* the leaf, 4 -> ... -> 64, then a leaf and a root */
	order_index_clear(&index);
	assert_true(order_index_build(&index, tokens, FULL));
	/* A full root over full leaves: a leaf, a branch and a new root. */
	assert_int_equal(insert_failing_each_allocation(&index, tokens[FULL]), 3);
	struct token *middle = new_token(FULL + 1, 2 * 2000 + 1, 5);
	/* Into a full leaf under a full branch (the root has room): two. */
	assert_int_equal(insert_failing_each_allocation(&index, middle), 2);
	struct token *more[300];
	for(size_t i = 0; i < 300; i++){
		more[i] = new_token(FULL + 2 + i, (int64_t)random_below(2 * FULL), (int64_t)random_below(7));
		insert_failing_each_allocation(&index, more[i]);
	}
	order_index_clear(&index);
	for(size_t i = 0; i <= FULL; i++){
		token_free(tokens[i]);
	}
	for(size_t i = 0; i < 300; i++){
		token_free(more[i]);
	}
	token_free(middle);
	free(tokens);
}

/* Build with the Nth allocation failing leaves the index empty. */
static void every_allocation_of_build_may_fail(void **state)
{
	(void)state;
	const size_t sizes[] = {1, 64, 65, 5000, 64 * 64 * 2 + 1};
	enum { LARGEST = 64 * 64 * 2 + 1 };
	struct token **tokens = malloc(LARGEST * sizeof(*tokens));
	assert_non_null(tokens);
	for(size_t i = 0; i < LARGEST; i++){
		tokens[i] = new_token(i, (int64_t)i, (int64_t)(i % 5));
	}
	for(size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++){
		struct order_index index;
		order_index_init(&index, compare_issued_then_name, 2);
		long n = 0;
		for(;; n++){
			long failures_before = failures;
			allocations_left = n;
			bool built = order_index_build(&index, tokens, sizes[z]);
			allocations_left = -1;
			if(built){
				assert_int_equal(failures, failures_before);
				break;
			}
			assert_int_equal(failures, failures_before + 1);
			assert_int_equal(order_index_count(&index), 0);
			assert_int_equal(order_index_bytes(&index), 0);
			assert_no_problem(&index);
		}
		assert_no_problem(&index);
		assert_int_equal(order_index_count(&index), sizes[z]);
		assert_true(n >= 2);
		order_index_clear(&index);
	}
	for(size_t i = 0; i < LARGEST; i++){
		token_free(tokens[i]);
	}
	free(tokens);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_index_holds_nothing),
		cmocka_unit_test(random_inserts_and_removals_match_the_reference),
		cmocka_unit_test(lower_bounds_and_prefix_ranges_match_the_reference),
		cmocka_unit_test(refresh_follows_the_clock_both_ways),
		cmocka_unit_test(two_hundred_thousand_tokens),
		cmocka_unit_test(cursors_skip_long_runs_of_the_other_status),
		cmocka_unit_test(build_then_change),
		cmocka_unit_test(a_small_index_is_small),
		cmocka_unit_test(every_allocation_of_insert_may_fail),
		cmocka_unit_test(every_allocation_of_build_may_fail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
