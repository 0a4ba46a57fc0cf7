/*
 * The orders the store keeps its tokens in besides the hash table (store.h):
 * by issuedAt then name, by name, and each role's tokens by issuedAt then
 * name. Each is a counted B+tree (order_index.h), so listTokens finds any
 * page in O(log n) and counts valid and invalid tokens without a scan.
 * Link and unlink keep all three in step; a load puts a million tokens in
 * order at once.
 */
#ifndef TOKEN_ORDERS_H
#define TOKEN_ORDERS_H

#include "store.h"

int token_order_by_issue(const struct token *a, const struct token *b);
int token_order_by_name(const struct token *a, const struct token *b);
/* The key function of a search by name (key: the name, a C string). */
int token_name_key(const struct token *token, const void *name);

void token_orders_init(struct store *store);
void token_orders_clear(struct store *store);
/* All or nothing: false when out of memory (in no order then). */
bool token_orders_insert(struct store *store, struct token *token, struct role *role);
void token_orders_remove(struct store *store, struct token *token);
struct token *token_orders_find_name(const struct store *store, const char *name);

/* Loading: keep a token for token_orders_build_added; false when out of memory. */
bool token_orders_keep_added(struct store *store, struct token *token);
enum store_added token_orders_build_added(struct store *store, struct token **taken);

#endif
