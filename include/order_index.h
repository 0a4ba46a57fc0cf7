/*
 * An ordered index of tokens: a counted B+tree of `struct token *` in one
 * order, which its comparator decides (issued_at then name, or name...).
 * It answers "the k-th token", "the k-th valid token", "where does this key
 * fall and how many tokens come before it" in O(log n), so that a listing
 * can page through a million tokens without sorting them.
 *
 * The index never owns the tokens. A token's place depends on the fields the
 * comparator reads, and its validity on valid_until: the caller removes a
 * token before changing any of them and inserts it again after.
 *
 * Validity is counted as of the last refresh: a token is valid when its
 * valid_until > index->now. Every internal entry keeps, for its subtree, how
 * many tokens it holds, how many of them are valid, the earliest valid_until
 * among the valid ones (when the next one expires) and the latest among the
 * invalid ones (for a clock that goes back), so a refresh visits only the
 * subtrees where something changed status.
 *
 * Leaves hold up to 64 tokens and are doubly linked. A tree of one leaf
 * grows that leaf 4 -> 8 -> ... -> 64, so that the many small indexes (one
 * per role) stay small; an empty index holds no node. Appends (inserting
 * after the last token) leave the left leaf full, so an index built in
 * order is nearly full. Removals merge or borrow so that every node but the
 * root and the last of its level stays at least a quarter full.
 */
#ifndef ORDER_INDEX_H
#define ORDER_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct token;
struct order_node;
struct order_leaf;

/* <0, >0; 0 only for the same token. */
typedef int (*order_compare_fn)(const struct token *a, const struct token *b);
/* A token against a search key, in the index's order: monotonic over it. */
typedef int (*order_key_fn)(const struct token *token, const void *key);

/* Valid: token->valid_until > the index's now. */
enum order_status { ORDER_ALL, ORDER_VALID, ORDER_INVALID };

/* What a subtree holds, as of the last refresh. */
struct order_summary {
	size_t count;
	size_t valid;
	int64_t min_valid_until;     /* INT64_MAX when none is valid */
	int64_t max_invalid_until;   /* INT64_MIN when none is invalid */
};

/* Embedded by value; everything but compare and now is the index's own. */
struct order_index {
	order_compare_fn compare;
	int64_t now;
	struct order_node *root;        /* NULL when empty */
	unsigned height;                /* levels of internal nodes above the leaves */
	struct order_leaf *first_leaf;
	struct order_leaf *last_leaf;
	struct order_summary total;
	size_t bytes;
};

/* A token's position, or past the end / before the start: a plain value,
 * usable while the index is not changed (a refresh does not move tokens). */
struct order_cursor {
	struct order_leaf *leaf;   /* NULL: past the end or before the start */
	unsigned slot;
	bool before_start;
};

/* Empty; allocates nothing. */
void order_index_init(struct order_index *index, order_compare_fn compare, int64_t now);
/* Frees its nodes, never the tokens; leaves it empty and reusable. */
void order_index_clear(struct order_index *index);
/* False when out of memory: the index is unchanged. */
bool order_index_insert(struct order_index *index, struct token *token);
/* The token is in it; never allocates, never fails. */
void order_index_remove(struct order_index *index, const struct token *token);
/* The index is empty; tokens are already in order and distinct. O(n), full
 * leaves. False when out of memory: the index is empty. */
bool order_index_build(struct order_index *index, struct token *const *tokens, size_t count);
size_t order_index_count(const struct order_index *index);

/* Counts validity as valid_until > now from here on; costs O(log n) per
 * token that changed status. The clock may go back. */
void order_index_refresh(struct order_index *index, int64_t now);
/* As of the last refresh, O(1). */
size_t order_index_status_count(const struct order_index *index, enum order_status status);

/* The rank-th (0-based) token of that status, O(log n); false (cursor past
 * the end) when rank >= that count. */
bool order_index_seek(const struct order_index *index, enum order_status status, size_t rank,
		struct order_cursor *cursor);
/* The last token of that status; false (cursor past the end) when none. */
bool order_index_last(const struct order_index *index, enum order_status status, struct order_cursor *cursor);
/* The cursor at the first token with key_fn(token, key) >= 0 (possibly past
 * the end); *rank_all and *rank_valid (either may be NULL) get how many
 * tokens and valid tokens come before it. */
void order_index_lower_bound(const struct order_index *index, order_key_fn key_fn, const void *key,
		struct order_cursor *cursor, size_t *rank_all, size_t *rank_valid);
/* The token with key_fn(token, key) == 0, or NULL. */
struct token *order_index_find(const struct order_index *index, order_key_fn key_fn, const void *key);

/* NULL when past the end or before the start. */
struct token *order_cursor_token(const struct order_cursor *cursor);
/* To the next token of that status (from before the start: the first);
 * false when none, and then the cursor is past the end. */
bool order_cursor_next(const struct order_index *index, struct order_cursor *cursor, enum order_status status);
/* To the previous one (from past the end: the last); false when none, and
 * then the cursor is before the start. */
bool order_cursor_prev(const struct order_index *index, struct order_cursor *cursor, enum order_status status);

/* Memory its nodes hold. */
size_t order_index_bytes(const struct order_index *index);
/* NULL when every invariant holds (strict order, counts, validity
 * aggregates, fill, leaf links); a short static text otherwise. O(n). */
const char *order_index_problem(const struct order_index *index);

#endif
