/*
 * listTokens' pages (SPEC section 4): the tokens that pass the status, role
 * and name-prefix filters, in issuedAt-then-name order, from an offset, with
 * their exact total, read from the store's orders (token_orders.h) instead
 * of a sort of the whole store.
 *
 * Costs, with n tokens and count asked for:
 * - no prefix (any status, any role): O(log n + count);
 * - a prefix that few names have (LISTING_SMALL_RANGE or fewer, whatever
 *   the other filters): those names are read and sorted, O(log n + m log m);
 * - a prefix many names have: the issue order is walked, skipping names
 *   without the prefix. The total comes from the name order in O(log n)
 *   (with a role filter too: counted once per store change and kept). A
 *   walk resumes where the previous page ended, and a page nearer the end
 *   is walked from the end, so paging through a list costs each page about
 *   count * n / m when the matches are spread through the issue order; a
 *   jump into the middle of a long list costs up to offset * n / m once,
 *   and matches bunched in one stretch of the order (a batch created at
 *   once) can make one page walk up to half of it.
 */
#ifndef TOKEN_LISTING_H
#define TOKEN_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Names with a prefix up to this many: sorted instead of walked. */
#define LISTING_SMALL_RANGE 2048
/* The longest prefix a name can have: a longer one matches nothing. */
#define LISTING_PREFIX_MAX (NAME_MAX_CHARS * 4)

struct token_query {
	enum order_status status;
	const char *role;          /* exact role name; NULL: any */
	const char *name_prefix;   /* NULL or "": any */
	int64_t now;
	size_t offset, limit;
};

/* Where the last walk of a wide prefix ended, so that the next page goes on
 * from there; it holds only while nothing in the store changed. */
struct listing_memo {
	bool valid;
	uint64_t generation;
	const struct order_index *base;
	enum order_status status;
	size_t status_count;       /* the base's count of that status then: a token that expired since breaks it */
	char prefix[LISTING_PREFIX_MAX + 1];
	bool has_position;
	size_t next_match;         /* matches before the cursor */
	struct order_cursor cursor;
	bool has_total;
	size_t total;
};

/* Receives the page's tokens in order; false stops the listing. */
typedef bool (*token_visit_fn)(void *context, const struct token *token);

enum listing_outcome { LISTING_DONE, LISTING_STOPPED, LISTING_NO_MEMORY };

enum listing_outcome token_listing_page(struct store *store, struct listing_memo *memo,
		const struct token_query *query, token_visit_fn visit, void *context, size_t *total);

#endif
