#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "token_orders.h"

/* A rotation links the replacement beside the old record for a moment
 * (changes.c): two records of one name, told apart by address. */
static int by_address(const struct token *a, const struct token *b)
{
	uintptr_t left = (uintptr_t)a, right = (uintptr_t)b;
	return left < right ? -1 : left > right;
}

int token_order_by_name(const struct token *a, const struct token *b)
{
	int by_name = strcmp(a->name, b->name);
	return by_name ? by_name : by_address(a, b);
}

int token_order_by_issue(const struct token *a, const struct token *b)
{
	if(a->issued_at != b->issued_at){
		return a->issued_at < b->issued_at ? -1 : 1;
	}
	return token_order_by_name(a, b);
}

int token_name_key(const struct token *token, const void *name)
{
	return strcmp(token->name, name);
}

void token_orders_init(struct store *store)
{
	order_index_init(&store->by_issue, token_order_by_issue, 0);
	order_index_init(&store->by_name, token_order_by_name, 0);
}

void token_orders_clear(struct store *store)
{
	order_index_clear(&store->by_issue);
	order_index_clear(&store->by_name);
	free(store->added);
	store->added = NULL;
	store->added_count = store->added_capacity = 0;
	store->generation++;
}

bool token_orders_insert(struct store *store, struct token *token, struct role *role)
{
	if(!order_index_insert(&store->by_issue, token)){
		return false;
	}
	if(!order_index_insert(&store->by_name, token)){
		order_index_remove(&store->by_issue, token);
		return false;
	}
	if(!order_index_insert(&role->tokens, token)){
		order_index_remove(&store->by_name, token);
		order_index_remove(&store->by_issue, token);
		return false;
	}
	store->generation++;
	return true;
}

void token_orders_remove(struct store *store, struct token *token)
{
	order_index_remove(&store->by_issue, token);
	order_index_remove(&store->by_name, token);
	order_index_remove(&token->role->tokens, token);
	store->generation++;
}

struct token *token_orders_find_name(const struct store *store, const char *name)
{
	return order_index_find(&store->by_name, token_name_key, name);
}

bool token_orders_keep_added(struct store *store, struct token *token)
{
	if(store->added_count == store->added_capacity){
		size_t capacity = store->added_capacity ? 2 * store->added_capacity : 1024;
		struct token **grown = realloc(store->added, capacity * sizeof(*grown));
		if(grown == NULL){
			return false;
		}
		store->added = grown;
		store->added_capacity = capacity;
	}
	store->added[store->added_count++] = token;
	return true;
}

static int compare_names(const void *a, const void *b)
{
	return token_order_by_name(*(const struct token *const *)a, *(const struct token *const *)b);
}

/* Sorted in place by name (a file the plugin wrote already is: checked in
 * one pass); the first token whose name the one before it has, or NULL. */
static struct token *sort_by_name(struct token **tokens, size_t count)
{
	size_t i = 1;
	while(i < count && compare_names(&tokens[i - 1], &tokens[i]) < 0){
		i++;
	}
	if(i < count){
		qsort(tokens, count, sizeof(*tokens), compare_names);
	}
	for(i = 1; i < count; i++){
		if(strcmp(tokens[i - 1]->name, tokens[i]->name) == 0){
			return tokens[i];
		}
	}
	return NULL;
}

/* Issue order from name order: the name's rank breaks ties of issuedAt, so
 * the sort compares integers only and never reads a name. */
struct issue_key {
	int64_t issued_at;
	size_t name_rank;
};

static int compare_issue_keys(const void *a, const void *b)
{
	const struct issue_key *left = a, *right = b;
	if(left->issued_at != right->issued_at){
		return left->issued_at < right->issued_at ? -1 : 1;
	}
	return left->name_rank < right->name_rank ? -1 : left->name_rank > right->name_rank;
}

/* by_name order in, by_issue order out (a new array; NULL when out of memory). */
static struct token **in_issue_order(struct token *const *by_name, size_t count)
{
	struct issue_key *keys = malloc((count ? count : 1) * sizeof(*keys));
	struct token **ordered = malloc((count ? count : 1) * sizeof(*ordered));
	if(keys == NULL || ordered == NULL){
		free(keys);
		free(ordered);
		return NULL;
	}
	bool sorted = true;
	for(size_t i = 0; i < count; i++){
		keys[i] = (struct issue_key){by_name[i]->issued_at, i};
		sorted = sorted && (i == 0 || keys[i - 1].issued_at <= keys[i].issued_at);
	}
	if(!sorted){
		qsort(keys, count, sizeof(*keys), compare_issue_keys);
	}
	for(size_t i = 0; i < count; i++){
		ordered[i] = by_name[keys[i].name_rank];
	}
	free(keys);
	return ordered;
}

/* Each role's tokens, in issue order, built at once: one pass hands every
 * role its slice of one array. */
static bool build_roles(struct store *store, struct token *const *by_issue, size_t count)
{
	size_t start = 0;
	for(struct role *role = store->roles; role; role = role->hh.next){
		role->build_start = start;
		role->build_fill = 0;
		start += role->token_count;
	}
	struct token **slices = malloc((count ? count : 1) * sizeof(*slices));
	if(slices == NULL){
		return false;
	}
	for(size_t i = 0; i < count; i++){
		struct role *role = by_issue[i]->role;
		slices[role->build_start + role->build_fill++] = by_issue[i];
	}
	bool built = true;
	for(struct role *role = store->roles; role && built; role = role->hh.next){
		built = order_index_build(&role->tokens, slices + role->build_start, role->build_fill);
	}
	free(slices);
	return built;
}

/* Into orders that already hold tokens, one at a time. */
static enum store_added insert_added(struct store *store, struct token **taken)
{
	for(size_t i = 0; i < store->added_count; i++){
		struct token *token = store->added[i];
		if(token_orders_find_name(store, token->name)){
			*taken = token;
			return STORE_NAME_TAKEN;
		}
		if(!token_orders_insert(store, token, token->role)){
			return STORE_NO_MEMORY;
		}
	}
	return STORE_ADDED;
}

static enum store_added build_added(struct store *store, struct token **taken)
{
	struct token **by_name = store->added;
	size_t count = store->added_count;
	*taken = sort_by_name(by_name, count);
	if(*taken){
		return STORE_NAME_TAKEN;
	}
	struct token **by_issue = in_issue_order(by_name, count);
	bool built = by_issue
		&& order_index_build(&store->by_name, by_name, count)
		&& order_index_build(&store->by_issue, by_issue, count)
		&& build_roles(store, by_issue, count);
	free(by_issue);
	return built ? STORE_ADDED : STORE_NO_MEMORY;
}

/* On failure the added tokens may be in some orders and not others: the
 * caller clears the store (a load fails whole). */
enum store_added token_orders_build_added(struct store *store, struct token **taken)
{
	*taken = NULL;
	enum store_added outcome = order_index_count(&store->by_issue) == 0 ? build_added(store, taken)
		: insert_added(store, taken);
	free(store->added);
	store->added = NULL;
	store->added_count = store->added_capacity = 0;
	store->generation++;
	return outcome;
}
