/* The expiry schedule: tokens come out in validUntil order, only when due,
 * and removal from the middle keeps the order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <cmocka.h>

#include "expiry.h"

static struct token *token_at(int64_t valid_until)
{
	static const unsigned char hash[TOKEN_HASH_LEN];
	struct token *token = token_new("t", "test", hash, 0, valid_until, TIME_NEVER);
	assert_non_null(token);
	return token;
}

static void test_nothing_due_before_valid_until(void **state)
{
	(void)state;
	struct expiry_queue queue;
	expiry_init(&queue);
	struct token *token = token_at(100);
	assert_true(expiry_add(&queue, token));
	assert_null(expiry_pop_due(&queue, 99));
	assert_ptr_equal(expiry_pop_due(&queue, 100), token);
	assert_null(expiry_pop_due(&queue, 1000));
	assert_int_equal(token->expiry_slot, 0);
	expiry_clear(&queue);
	token_free(token);
}

static void test_pops_in_order_and_adds_once(void **state)
{
	(void)state;
	struct expiry_queue queue;
	expiry_init(&queue);
	enum { COUNT = 500 };
	struct token *tokens[COUNT];
	srand(7);
	for(int i = 0; i < COUNT; i++){
		tokens[i] = token_at(rand() % 10000);
		assert_true(expiry_add(&queue, tokens[i]));
		assert_true(expiry_add(&queue, tokens[i]));   /* no duplicate */
	}
	assert_int_equal(queue.count, COUNT);
	int64_t previous = -1;
	int popped = 0;
	struct token *token;
	while((token = expiry_pop_due(&queue, 10000)) != NULL){
		assert_true(token->valid_until >= previous);
		previous = token->valid_until;
		popped++;
	}
	assert_int_equal(popped, COUNT);
	for(int i = 0; i < COUNT; i++){
		token_free(tokens[i]);
	}
	expiry_clear(&queue);
}

static void test_remove_from_the_middle(void **state)
{
	(void)state;
	struct expiry_queue queue;
	expiry_init(&queue);
	enum { COUNT = 200 };
	struct token *tokens[COUNT];
	for(int i = 0; i < COUNT; i++){
		tokens[i] = token_at((i * 7919) % COUNT);
		assert_true(expiry_add(&queue, tokens[i]));
	}
	for(int i = 0; i < COUNT; i += 3){
		expiry_remove(&queue, tokens[i]);
		assert_int_equal(tokens[i]->expiry_slot, 0);
		expiry_remove(&queue, tokens[i]);   /* idempotent */
	}
	int64_t previous = -1;
	int popped = 0;
	struct token *token;
	while((token = expiry_pop_due(&queue, COUNT)) != NULL){
		assert_true(token->valid_until >= previous);
		previous = token->valid_until;
		popped++;
	}
	assert_int_equal(popped, COUNT - (COUNT + 2) / 3);
	for(int i = 0; i < COUNT; i++){
		token_free(tokens[i]);
	}
	expiry_clear(&queue);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_due_before_valid_until),
		cmocka_unit_test(test_pops_in_order_and_adds_once),
		cmocka_unit_test(test_remove_from_the_middle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
