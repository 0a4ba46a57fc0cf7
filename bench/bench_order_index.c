/*
 * The ordered index (include/order_index.h) at 1M tokens, ordered by
 * issuedAt then name as listings are: a seek to a random rank, a page of 50
 * from a random rank (all tokens, and valid ones when half or 1% are
 * valid), inserts (appends in issuedAt order, and random), removals, a
 * build from a sorted array, a refresh after 1% of the tokens expired, and
 * the memory its nodes hold per token.
 *
 *   bench_order_index [--quick]    (--quick: 100k tokens)
 *
 * Wall clock; each figure is the best of 5 runs. The tokens are the
 * store's (token_new), scattered over the heap as the loader leaves them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "order_index.h"
#include "store.h"

#define RUNS 5
#define PAGE 50   /* the labels say 50 */
/* valid_until is spread over [NOW, NOW + 100 * STEP): moving the clock by
 * STEP expires 1% of the tokens. */
#define NOW 1800000000
#define STEP 1000

static uint64_t random_state = 88172645463325252u;

static uint64_t random_next(void)
{
	random_state ^= random_state << 13;
	random_state ^= random_state >> 7;
	random_state ^= random_state << 17;
	return random_state;
}

static double seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

static int by_issue_then_name(const struct token *a, const struct token *b)
{
	if(a->issued_at != b->issued_at){
		return a->issued_at < b->issued_at ? -1 : 1;
	}
	return strcmp(a->name, b->name);
}

/* In issuedAt order, several tokens per second. */
static struct token **tokens_in_order(size_t count)
{
	struct token **tokens = malloc(count * sizeof(*tokens));
	unsigned char hash[TOKEN_HASH_LEN] = {0};
	if(tokens == NULL){
		return NULL;
	}
	for(size_t i = 0; i < count; i++){
		char name[32];
		snprintf(name, sizeof(name), "device-%07zu", i);
		int64_t valid_until = NOW + (int64_t)(random_next() % (100 * STEP));
		tokens[i] = token_new(name, "bench", hash, NOW - (int64_t)(count - i) / 4, valid_until, TIME_NEVER);
		if(tokens[i] == NULL){
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
	}
	return tokens;
}

static struct token **shuffled_copy(struct token *const *tokens, size_t count)
{
	struct token **copy = malloc(count * sizeof(*copy));
	if(copy == NULL){
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	memcpy(copy, tokens, count * sizeof(*copy));
	for(size_t i = count; i > 1; i--){
		size_t j = random_next() % i;
		struct token *swap = copy[i - 1];
		copy[i - 1] = copy[j];
		copy[j] = swap;
	}
	return copy;
}

static void must(bool done, const char *what)
{
	if(!done){
		fprintf(stderr, "%s failed\n", what);
		exit(1);
	}
}

/* ns per seek (and page of PAGE when page is true) of that status. */
static double seek_ns(const struct order_index *index, enum order_status status, bool page, long calls)
{
	size_t count = order_index_status_count(index, status);
	uintptr_t sink = 0;
	double best = 1e30;
	for(int run = 0; run < RUNS; run++){
		double started = seconds();
		for(long i = 0; i < calls; i++){
			struct order_cursor cursor;
			order_index_seek(index, status, random_next() % (count - PAGE), &cursor);
			sink += (uintptr_t)order_cursor_token(&cursor);
			for(int p = 1; page && p < PAGE; p++){
				order_cursor_next(index, &cursor, status);
				sink += (uintptr_t)order_cursor_token(&cursor);
			}
		}
		double elapsed = seconds() - started;
		best = elapsed < best ? elapsed : best;
	}
	if(sink == 1){
		puts("");   /* keeps the loop */
	}
	return best * 1e9 / (double)calls;
}

/* Inserts every token in that order into a new index: ns per insert, and
 * the index's bytes per token. */
static double insert_ns(struct token *const *tokens, size_t count, double *bytes_per_token)
{
	double best = 1e30;
	for(int run = 0; run < RUNS; run++){
		struct order_index index;
		order_index_init(&index, by_issue_then_name, NOW);
		double started = seconds();
		for(size_t i = 0; i < count; i++){
			must(order_index_insert(&index, tokens[i]), "insert");
		}
		double elapsed = seconds() - started;
		best = elapsed < best ? elapsed : best;
		*bytes_per_token = (double)order_index_bytes(&index) / (double)count;
		order_index_clear(&index);
	}
	return best * 1e9 / (double)count;
}

/* Removes a tenth of the tokens in a random order: ns per removal. */
static double remove_ns(struct token *const *sorted, struct token *const *shuffled, size_t count)
{
	double best = 1e30;
	for(int run = 0; run < RUNS; run++){
		struct order_index index;
		order_index_init(&index, by_issue_then_name, NOW);
		must(order_index_build(&index, sorted, count), "build");
		double started = seconds();
		for(size_t i = 0; i < count / 10; i++){
			order_index_remove(&index, shuffled[i]);
		}
		double elapsed = seconds() - started;
		best = elapsed < best ? elapsed : best;
		order_index_clear(&index);
	}
	return best * 1e9 / (double)(count / 10);
}

static double build_ms(struct token *const *sorted, size_t count, double *bytes_per_token)
{
	double best = 1e30;
	for(int run = 0; run < RUNS; run++){
		struct order_index index;
		order_index_init(&index, by_issue_then_name, NOW);
		double started = seconds();
		must(order_index_build(&index, sorted, count), "build");
		double elapsed = seconds() - started;
		best = elapsed < best ? elapsed : best;
		*bytes_per_token = (double)order_index_bytes(&index) / (double)count;
		order_index_clear(&index);
	}
	return best * 1e3;
}

/* One refresh after 1% of the tokens expired (and one with the clock back). */
static double refresh_ms(struct order_index *index, int64_t to, int64_t back)
{
	double best = 1e30;
	for(int run = 0; run < RUNS; run++){
		double started = seconds();
		order_index_refresh(index, to);
		double elapsed = seconds() - started;
		best = elapsed < best ? elapsed : best;
		order_index_refresh(index, back);
	}
	return best * 1e3;
}

static void report(const char *what, double value, const char *unit)
{
	printf("%-40s %9.*f %s\n", what, strcmp(unit, "ms") == 0 ? 2 : 0, value, unit);
}

/* The same tokens with 1% of them valid as of the index's now: a page
 * of valid ones crosses about 80 leaves. */
static void page_of_sparse_valid(struct order_index *index, long calls)
{
	order_index_refresh(index, NOW + 99 * STEP);
	report("page of 50 valid tokens, 1% valid", seek_ns(index, ORDER_VALID, true, calls / 10), "ns");
	order_index_refresh(index, NOW + 50 * STEP);
}

int main(int argc, char *argv[])
{
	bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	size_t count = quick ? 100000 : 1000000;
	long calls = quick ? 20000 : 200000;
	struct token **sorted = tokens_in_order(count);
	must(sorted != NULL, "tokens");
	struct token **shuffled = shuffled_copy(sorted, count);

	struct order_index index;
	order_index_init(&index, by_issue_then_name, NOW + 50 * STEP);
	must(order_index_build(&index, sorted, count), "build");
	printf("order index, %zu tokens (issuedAt then name), best of %d runs\n", count, RUNS);
	report("seek to a random rank", seek_ns(&index, ORDER_ALL, false, calls), "ns");
	report("seek to a random valid rank (half valid)", seek_ns(&index, ORDER_VALID, false, calls), "ns");
	report("page of 50 from a random rank", seek_ns(&index, ORDER_ALL, true, calls), "ns");
	report("page of 50 valid tokens, half valid", seek_ns(&index, ORDER_VALID, true, calls), "ns");
	page_of_sparse_valid(&index, calls);
	report("refresh after 1% expired", refresh_ms(&index, NOW + 51 * STEP, NOW + 50 * STEP), "ms");
	order_index_clear(&index);

	double append_bytes, random_bytes, build_bytes;
	report("insert, appends", insert_ns(sorted, count, &append_bytes), "ns");
	report("insert, random order", insert_ns(shuffled, count, &random_bytes), "ns");
	report("remove (a tenth, random order)", remove_ns(sorted, shuffled, count), "ns");
	report("build from a sorted array", build_ms(sorted, count, &build_bytes), "ms");
	printf("bytes per token: appends %.2f, random inserts %.2f, build %.2f\n", append_bytes, random_bytes,
			build_bytes);
	for(size_t i = 0; i < count; i++){
		token_free(sorted[i]);
	}
	free(sorted);
	free(shuffled);
	return 0;
}
