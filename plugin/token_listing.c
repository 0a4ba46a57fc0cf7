#include <stdlib.h>
#include <string.h>

#include "token_listing.h"
#include "token_orders.h"

/* A page read from the end holds its tokens until it is complete. */
#define BACKWARD_PAGE_MAX 10000

/* The names with a prefix: a run of the name order. */
struct prefix_range {
	const char *prefix;
	size_t length;
	struct order_cursor first;
	size_t count;    /* names with the prefix */
	size_t valid;    /* of them, valid */
};

/* Negative up to the last name with the prefix, positive after it. */
static int after_prefix_key(const struct token *token, const void *key)
{
	const struct prefix_range *range = key;
	return strncmp(token->name, range->prefix, range->length) > 0 ? 1 : -1;
}

static void find_prefix_range(const struct order_index *by_name, struct prefix_range *range)
{
	size_t first_all, first_valid, end_all, end_valid;
	struct order_cursor end;
	order_index_lower_bound(by_name, token_name_key, range->prefix, &range->first, &first_all, &first_valid);
	order_index_lower_bound(by_name, after_prefix_key, range, &end, &end_all, &end_valid);
	range->count = end_all - first_all;
	range->valid = end_valid - first_valid;
}

static bool has_prefix(const struct token *token, const struct prefix_range *range)
{
	return strncmp(token->name, range->prefix, range->length) == 0;
}

static bool has_status(const struct token *token, enum order_status status, int64_t now)
{
	return status == ORDER_ALL || (status == ORDER_VALID) == (token->valid_until > now);
}

static size_t of_status(size_t all, size_t valid, enum order_status status)
{
	return status == ORDER_ALL ? all : status == ORDER_VALID ? valid : all - valid;
}

static size_t smaller(size_t a, size_t b)
{
	return a < b ? a : b;
}

static enum listing_outcome list_in_order(const struct order_index *base, const struct token_query *query,
		token_visit_fn visit, void *context)
{
	struct order_cursor cursor;
	bool more = order_index_seek(base, query->status, query->offset, &cursor);
	for(size_t listed = 0; more && listed < query->limit; listed++){
		if(!visit(context, order_cursor_token(&cursor))){
			return LISTING_STOPPED;
		}
		more = listed + 1 < query->limit && order_cursor_next(base, &cursor, query->status);
	}
	return LISTING_DONE;
}

static int compare_issue(const void *a, const void *b)
{
	return token_order_by_issue(*(const struct token *const *)a, *(const struct token *const *)b);
}

static enum listing_outcome visit_all(const struct token *const *tokens, size_t count, token_visit_fn visit,
		void *context)
{
	for(size_t i = 0; i < count; i++){
		if(!visit(context, tokens[i])){
			return LISTING_STOPPED;
		}
	}
	return LISTING_DONE;
}

/* Few names have the prefix: read them all, keep the matches, sort them. */
static enum listing_outcome list_small_range(const struct store *store, const struct prefix_range *range,
		const struct role *role, const struct token_query *query, token_visit_fn visit, void *context, size_t *total)
{
	const struct token **chosen = malloc((range->count ? range->count : 1) * sizeof(*chosen));
	if(chosen == NULL){
		return LISTING_NO_MEMORY;
	}
	size_t count = 0;
	struct order_cursor cursor = range->first;
	for(size_t i = 0; i < range->count; i++){
		const struct token *token = order_cursor_token(&cursor);
		if((role == NULL || token->role == role) && has_status(token, query->status, query->now)){
			chosen[count++] = token;
		}
		order_cursor_next(&store->by_name, &cursor, ORDER_ALL);
	}
	qsort(chosen, count, sizeof(*chosen), compare_issue);
	*total = count;
	enum listing_outcome outcome = query->offset >= count ? LISTING_DONE
		: visit_all(chosen + query->offset, smaller(query->limit, count - query->offset), visit, context);
	free(chosen);
	return outcome;
}

/* Keeps the memo only if it was left by the same filters on the same store. */
static void memo_prepare(struct listing_memo *memo, const struct store *store, const struct order_index *base,
		const struct token_query *query)
{
	size_t status_count = order_index_status_count(base, query->status);
	if(memo->valid && memo->generation == store->generation && memo->base == base && memo->status == query->status
			&& memo->status_count == status_count && strcmp(memo->prefix, query->name_prefix) == 0){
		return;
	}
	*memo = (struct listing_memo){.valid = true, .generation = store->generation, .base = base,
		.status = query->status, .status_count = status_count};
	snprintf(memo->prefix, sizeof(memo->prefix), "%s", query->name_prefix);
}

/* A role's tokens with a wide prefix: counted along the shorter of the
 * name run and the role's own order. */
static size_t count_in_role(const struct store *store, const struct order_index *base,
		const struct prefix_range *range, const struct token_query *query)
{
	size_t count = 0;
	struct order_cursor cursor;
	if(range->count <= order_index_status_count(base, query->status)){
		const struct role *role = store_find_role(store, query->role);
		cursor = range->first;
		for(size_t i = 0; i < range->count; i++){
			const struct token *token = order_cursor_token(&cursor);
			count += token->role == role && has_status(token, query->status, query->now);
			order_cursor_next(&store->by_name, &cursor, ORDER_ALL);
		}
		return count;
	}
	for(bool more = order_index_seek(base, query->status, 0, &cursor); more;
			more = order_cursor_next(base, &cursor, query->status)){
		count += has_prefix(order_cursor_token(&cursor), range);
	}
	return count;
}

static enum listing_outcome walk_forward(struct listing_memo *memo, const struct order_index *base,
		const struct prefix_range *range, const struct token_query *query, size_t limit,
		token_visit_fn visit, void *context)
{
	struct order_cursor cursor;
	size_t match = 0;
	bool more;
	if(memo->has_position && memo->next_match <= query->offset){
		cursor = memo->cursor;
		match = memo->next_match;
		more = true;
	}else{
		more = order_index_seek(base, query->status, 0, &cursor);
	}
	size_t listed = 0;
	while(more && listed < limit){
		const struct token *token = order_cursor_token(&cursor);
		if(has_prefix(token, range)){
			if(match >= query->offset){
				if(!visit(context, token)){
					memo->has_position = false;
					return LISTING_STOPPED;
				}
				listed++;
			}
			match++;
		}
		more = order_cursor_next(base, &cursor, query->status);
	}
	memo->has_position = more;
	memo->cursor = cursor;
	memo->next_match = match;
	return LISTING_DONE;
}

/* The page whose last token has after_page matches after it, read from the end. */
static enum listing_outcome walk_backward(const struct order_index *base, const struct prefix_range *range,
		enum order_status status, size_t after_page, size_t limit, token_visit_fn visit, void *context)
{
	const struct token **page = malloc((limit ? limit : 1) * sizeof(*page));
	if(page == NULL){
		return LISTING_NO_MEMORY;
	}
	struct order_cursor cursor;
	size_t seen = 0, collected = 0;
	for(bool more = order_index_last(base, status, &cursor); more && collected < limit;
			more = order_cursor_prev(base, &cursor, status)){
		const struct token *token = order_cursor_token(&cursor);
		if(has_prefix(token, range) && seen++ >= after_page){
			page[limit - 1 - collected++] = token;
		}
	}
	enum listing_outcome outcome = visit_all(page + limit - collected, collected, visit, context);
	free(page);
	return outcome;
}

/* Many names have the prefix: walk the issue order (or the role's), from
 * where the last page ended, from the start or from the end. */
static enum listing_outcome list_wide_range(const struct store *store, struct listing_memo *memo,
		const struct order_index *base, const struct prefix_range *range, const struct token_query *query,
		token_visit_fn visit, void *context, size_t *total)
{
	memo_prepare(memo, store, base, query);
	if(query->role == NULL){
		*total = of_status(range->count, range->valid, query->status);
	}else{
		if(!memo->has_total){
			memo->total = count_in_role(store, base, range, query);
			memo->has_total = true;
		}
		*total = memo->total;
	}
	if(query->offset >= *total){
		return LISTING_DONE;
	}
	size_t limit = smaller(query->limit, *total - query->offset);
	size_t after_page = *total - query->offset - limit;
	size_t from_memo = memo->has_position && memo->next_match <= query->offset ? query->offset - memo->next_match
		: query->offset;
	if(after_page < from_memo && limit <= BACKWARD_PAGE_MAX){
		return walk_backward(base, range, query->status, after_page, limit, visit, context);
	}
	return walk_forward(memo, base, range, query, limit, visit, context);
}

enum listing_outcome token_listing_page(struct store *store, struct listing_memo *memo,
		const struct token_query *query, token_visit_fn visit, void *context, size_t *total)
{
	*total = 0;
	struct order_index *base = &store->by_issue;
	const struct role *role = NULL;
	if(query->role){
		struct role *found = store_find_role(store, query->role);
		if(found == NULL){
			return LISTING_DONE;
		}
		role = found;
		base = &found->tokens;
	}
	order_index_refresh(base, query->now);
	if(query->name_prefix == NULL || query->name_prefix[0] == '\0'){
		*total = order_index_status_count(base, query->status);
		return list_in_order(base, query, visit, context);
	}
	struct prefix_range range = {.prefix = query->name_prefix, .length = strlen(query->name_prefix)};
	if(range.length > LISTING_PREFIX_MAX){
		return LISTING_DONE;
	}
	order_index_refresh(&store->by_name, query->now);
	find_prefix_range(&store->by_name, &range);
	if(range.count <= LISTING_SMALL_RANGE){
		return list_small_range(store, &range, role, query, visit, context, total);
	}
	return list_wide_range(store, memo, base, &range, query, visit, context, total);
}
