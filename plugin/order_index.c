/*
 * The ordered index: a counted B+tree. See include/order_index.h for the
 * ideas. Internal nodes ("branches") keep, per child, its first token (to
 * descend by comparison without touching the child) and its summary (to
 * descend by rank and to skip subtrees without a token of some status).
 * Every node knows its parent, so a cursor (a leaf and a slot) can climb to
 * skip a run of tokens of the other status.
 */
#include <stdlib.h>
#include <string.h>

#include "order_index.h"
#include "store.h"

#define LEAF_MAX 64
#define LEAF_FIRST_CAPACITY 4
#define BRANCH_MAX 64
/* A node holds at least a quarter of its maximum unless it is the root or
 * the last of its level (where appends start new nodes). */
#define LEAF_MIN (LEAF_MAX / 4)
#define BRANCH_MIN (BRANCH_MAX / 4)
/* Every branch but the root has at least 2 children... and all but the last
 * of a level at least 16: 64 levels are far more than 2^64 tokens need. */
#define MAX_HEIGHT 64

struct order_node {
	struct order_branch *parent;
	unsigned count;
	unsigned capacity;   /* leaves only: here it costs no padding */
};

struct order_leaf {
	struct order_node node;
	struct order_leaf *prev;
	struct order_leaf *next;
	struct token *tokens[];
};

struct order_branch {
	struct order_node node;
	struct order_node *children[BRANCH_MAX];
	struct token *first[BRANCH_MAX];
	struct order_summary sums[BRANCH_MAX];
};

/* The way down to a position, from the root (depth 0) to the leaf. */
struct order_path {
	struct order_branch *branches[MAX_HEIGHT];
	unsigned slots[MAX_HEIGHT];
	struct order_leaf *leaf;
	unsigned slot;   /* the first slot of the leaf at or after the position */
};

/* Where a descent goes: to the first token that is not "before" the target. */
struct order_target {
	const struct order_index *index;
	const struct token *token;   /* by the comparator, or */
	order_key_fn key_fn;         /* by a key */
	const void *key;
	bool after_token;            /* past the token itself (to find it) */
};

static struct order_leaf *as_leaf(struct order_node *node)
{
	return (struct order_leaf *)node;
}

static struct order_branch *as_branch(struct order_node *node)
{
	return (struct order_branch *)node;
}

/* ---- summaries ---- */

static const struct order_summary empty_summary = {0, 0, INT64_MAX, INT64_MIN};

static bool is_valid(int64_t now, const struct token *token)
{
	return token->valid_until > now;
}

static bool has_status(int64_t now, const struct token *token, enum order_status status)
{
	return status == ORDER_ALL || (status == ORDER_VALID) == is_valid(now, token);
}

static size_t status_count(const struct order_summary *summary, enum order_status status)
{
	switch(status){
		case ORDER_VALID: return summary->valid;
		case ORDER_INVALID: return summary->count - summary->valid;
		default: return summary->count;
	}
}

static void summary_add(struct order_summary *summary, const struct token *token, int64_t now)
{
	summary->count++;
	if(is_valid(now, token)){
		summary->valid++;
		if(token->valid_until < summary->min_valid_until){
			summary->min_valid_until = token->valid_until;
		}
	}else if(token->valid_until > summary->max_invalid_until){
		summary->max_invalid_until = token->valid_until;
	}
}

static void summary_merge(struct order_summary *summary, const struct order_summary *other)
{
	summary->count += other->count;
	summary->valid += other->valid;
	if(other->min_valid_until < summary->min_valid_until){
		summary->min_valid_until = other->min_valid_until;
	}
	if(other->max_invalid_until > summary->max_invalid_until){
		summary->max_invalid_until = other->max_invalid_until;
	}
}

/* Some token counted valid has expired by now, or one counted invalid is
 * valid again (the clock went back). */
static bool summary_is_stale(const struct order_summary *summary, int64_t now)
{
	return summary->min_valid_until <= now || summary->max_invalid_until > now;
}

static struct order_summary leaf_summary(const struct order_leaf *leaf, int64_t now)
{
	struct order_summary summary = empty_summary;
	for(unsigned i = 0; i < leaf->node.count; i++){
		summary_add(&summary, leaf->tokens[i], now);
	}
	return summary;
}

static struct order_summary branch_summary(const struct order_branch *branch)
{
	struct order_summary summary = empty_summary;
	for(unsigned i = 0; i < branch->node.count; i++){
		summary_merge(&summary, &branch->sums[i]);
	}
	return summary;
}

/* level 0: a leaf. */
static struct order_summary node_summary(const struct order_node *node, unsigned level, int64_t now)
{
	return level == 0 ? leaf_summary((const struct order_leaf *)node, now)
		: branch_summary((const struct order_branch *)node);
}

static struct token *node_first(struct order_node *node, unsigned level)
{
	return level == 0 ? as_leaf(node)->tokens[0] : as_branch(node)->first[0];
}

/* ---- nodes ---- */

static size_t leaf_bytes(unsigned capacity)
{
	return sizeof(struct order_leaf) + capacity * sizeof(struct token *);
}

static struct order_leaf *leaf_new(struct order_index *index, unsigned capacity)
{
	struct order_leaf *leaf = malloc(leaf_bytes(capacity));
	if(leaf != NULL){
		memset(leaf, 0, sizeof(*leaf));
		leaf->node.capacity = capacity;
		index->bytes += leaf_bytes(capacity);
	}
	return leaf;
}

static struct order_branch *branch_new(struct order_index *index)
{
	struct order_branch *branch = malloc(sizeof(*branch));
	if(branch != NULL){
		branch->node.parent = NULL;
		branch->node.count = 0;
		index->bytes += sizeof(*branch);
	}
	return branch;
}

static void node_free(struct order_index *index, struct order_node *node, unsigned level)
{
	index->bytes -= level == 0 ? leaf_bytes(as_leaf(node)->node.capacity) : sizeof(struct order_branch);
	free(node);
}

static void subtree_free(struct order_index *index, struct order_node *node, unsigned level)
{
	if(level > 0){
		struct order_branch *branch = as_branch(node);
		for(unsigned i = 0; i < branch->node.count; i++){
			subtree_free(index, branch->children[i], level - 1);
		}
	}
	node_free(index, node, level);
}

/* Moves count entries of src from src_slot to dst at dst_slot (dst has room
 * and its entries from dst_slot on are shifted right by the caller). */
static void branch_copy_entries(struct order_branch *dst, unsigned dst_slot, const struct order_branch *src,
		unsigned src_slot, unsigned count)
{
	memmove(&dst->children[dst_slot], &src->children[src_slot], count * sizeof(dst->children[0]));
	memmove(&dst->first[dst_slot], &src->first[src_slot], count * sizeof(dst->first[0]));
	memmove(&dst->sums[dst_slot], &src->sums[src_slot], count * sizeof(dst->sums[0]));
	for(unsigned i = 0; i < count; i++){
		dst->children[dst_slot + i]->parent = dst;
	}
}

/* Opens (gap > 0) or closes (gap < 0) room at slot. */
static void branch_shift(struct order_branch *branch, unsigned slot, int gap)
{
	unsigned moved = branch->node.count - slot;
	branch_copy_entries(branch, (unsigned)((int)slot + gap), branch, slot, moved);
	branch->node.count = (unsigned)((int)branch->node.count + gap);
}

static void branch_put(struct order_branch *branch, unsigned slot, struct order_node *child, unsigned child_level,
		const struct order_summary *summary)
{
	branch->children[slot] = child;
	branch->first[slot] = node_first(child, child_level);
	branch->sums[slot] = *summary;
	child->parent = branch;
}

static void leaf_shift(struct order_leaf *leaf, unsigned slot, int gap)
{
	unsigned moved = leaf->node.count - slot;
	memmove(&leaf->tokens[(int)slot + gap], &leaf->tokens[slot], moved * sizeof(leaf->tokens[0]));
	leaf->node.count = (unsigned)((int)leaf->node.count + gap);
}

static unsigned child_slot(const struct order_branch *branch, const struct order_node *child)
{
	unsigned slot = 0;
	while(branch->children[slot] != child){
		slot++;
	}
	return slot;
}

/* ---- descent ---- */

static bool is_before(const struct order_target *target, const struct token *token)
{
	if(target->key_fn != NULL){
		return target->key_fn(token, target->key) < 0;
	}
	int order = target->index->compare(token, target->token);
	return target->after_token ? order <= 0 : order < 0;
}

/* The last child whose first token is before the target (or the first). */
static unsigned branch_slot_of(const struct order_branch *branch, const struct order_target *target)
{
	unsigned low = 1, high = branch->node.count;
	while(low < high){
		unsigned middle = low + (high - low) / 2;
		if(is_before(target, branch->first[middle])){
			low = middle + 1;
		}else{
			high = middle;
		}
	}
	return low - 1;
}

static unsigned leaf_slot_of(const struct order_leaf *leaf, const struct order_target *target)
{
	unsigned low = 0, high = leaf->node.count;
	while(low < high){
		unsigned middle = low + (high - low) / 2;
		if(is_before(target, leaf->tokens[middle])){
			low = middle + 1;
		}else{
			high = middle;
		}
	}
	return low;
}

static void descend(const struct order_index *index, const struct order_target *target, struct order_path *path)
{
	struct order_node *node = index->root;
	for(unsigned depth = 0; depth < index->height; depth++){
		struct order_branch *branch = as_branch(node);
		path->branches[depth] = branch;
		path->slots[depth] = branch_slot_of(branch, target);
		node = branch->children[path->slots[depth]];
	}
	path->leaf = as_leaf(node);
	path->slot = leaf_slot_of(path->leaf, target);
}

/* The branch at depth is the last of its level. */
static bool path_is_rightmost(const struct order_path *path, unsigned depth)
{
	for(unsigned d = 0; d < depth; d++){
		if(path->slots[d] + 1 != path->branches[d]->node.count){
			return false;
		}
	}
	return true;
}

/* ---- init, clear, count ---- */

void order_index_init(struct order_index *index, order_compare_fn compare, int64_t now)
{
	memset(index, 0, sizeof(*index));
	index->compare = compare;
	index->now = now;
	index->total = empty_summary;
}

void order_index_clear(struct order_index *index)
{
	if(index->root != NULL){
		subtree_free(index, index->root, index->height);
	}
	order_index_init(index, index->compare, index->now);
}

size_t order_index_count(const struct order_index *index)
{
	return index->total.count;
}

size_t order_index_status_count(const struct order_index *index, enum order_status status)
{
	return status_count(&index->total, status);
}

size_t order_index_bytes(const struct order_index *index)
{
	return index->bytes;
}

/* ---- insert ---- */

static bool insert_first(struct order_index *index, struct token *token)
{
	struct order_leaf *leaf = leaf_new(index, LEAF_FIRST_CAPACITY);
	if(leaf == NULL){
		return false;
	}
	leaf->tokens[0] = token;
	leaf->node.count = 1;
	index->root = &leaf->node;
	index->first_leaf = index->last_leaf = leaf;
	summary_add(&index->total, token, index->now);
	return true;
}

/* The only leaf, full below LEAF_MAX: twice as large. */
static bool grow_root_leaf(struct order_index *index, struct order_path *path)
{
	unsigned capacity = path->leaf->node.capacity * 2;
	struct order_leaf *grown = realloc(path->leaf, leaf_bytes(capacity));
	if(grown == NULL){
		return false;
	}
	index->bytes += leaf_bytes(capacity) - leaf_bytes(grown->node.capacity);
	grown->node.capacity = capacity;
	index->root = &grown->node;
	index->first_leaf = index->last_leaf = grown;
	path->leaf = grown;
	return true;
}

/* What a split needs, allocated before anything changes. */
struct split_nodes {
	struct order_leaf *leaf;
	struct order_branch *branches[MAX_HEIGHT + 1];
	unsigned branch_count;
	unsigned branches_used;
};

static bool allocate_split(struct order_index *index, const struct order_path *path, struct split_nodes *nodes)
{
	/* A new node for each full branch from the bottom up, and a new root
	 * when they are all full (or there is none). */
	unsigned needed = 0;
	unsigned depth = index->height;
	while(depth > 0 && path->branches[depth - 1]->node.count == BRANCH_MAX){
		needed++;
		depth--;
	}
	if(depth == 0){
		needed++;
	}
	nodes->branch_count = 0;
	nodes->branches_used = 0;
	nodes->leaf = leaf_new(index, LEAF_MAX);
	bool complete = nodes->leaf != NULL;
	while(complete && nodes->branch_count < needed){
		struct order_branch *branch = branch_new(index);
		complete = branch != NULL;
		if(complete){
			nodes->branches[nodes->branch_count++] = branch;
		}
	}
	if(!complete){
		if(nodes->leaf != NULL){
			node_free(index, &nodes->leaf->node, 0);
		}
		for(unsigned i = 0; i < nodes->branch_count; i++){
			node_free(index, &nodes->branches[i]->node, 1);
		}
	}
	return complete;
}

/* Splits the full leaf into it and right, with token at slot. An append
 * (after the last token) leaves the leaf full and right holding the token;
 * otherwise both get half. */
static void split_leaf(struct order_index *index, struct order_leaf *leaf, struct order_leaf *right, unsigned slot,
		struct token *token)
{
	bool append = leaf->next == NULL && slot == leaf->node.count;
	unsigned keep = append ? leaf->node.count : (leaf->node.count + 2) / 2;
	struct order_leaf *target = leaf;
	if(slot >= keep){
		target = right;
		slot -= keep;
	}else{
		keep--;
	}
	right->node.count = leaf->node.count - keep;
	memcpy(right->tokens, &leaf->tokens[keep], right->node.count * sizeof(right->tokens[0]));
	leaf->node.count = keep;
	leaf_shift(target, slot, 1);
	target->tokens[slot] = token;
	right->prev = leaf;
	right->next = leaf->next;
	if(leaf->next != NULL){
		leaf->next->prev = right;
	}else{
		index->last_leaf = right;
	}
	leaf->next = right;
}

/* The same for a full branch receiving (child, summary) at slot. */
static void split_branch(struct order_branch *branch, struct order_branch *right, unsigned slot, bool rightmost,
		struct order_node *child, unsigned child_level, const struct order_summary *summary)
{
	bool append = rightmost && slot == branch->node.count;
	unsigned keep = append ? branch->node.count : (branch->node.count + 2) / 2;
	struct order_branch *target = branch;
	if(slot >= keep){
		target = right;
		slot -= keep;
	}else{
		keep--;
	}
	right->node.count = 0;
	branch_copy_entries(right, 0, branch, keep, branch->node.count - keep);
	right->node.count = branch->node.count - keep;
	branch->node.count = keep;
	branch_shift(target, slot, 1);
	branch_put(target, slot, child, child_level, summary);
}

static void add_root(struct order_index *index, struct order_branch *root, struct order_node *left,
		struct order_node *right)
{
	unsigned level = index->height;
	struct order_summary left_summary = node_summary(left, level, index->now);
	struct order_summary right_summary = node_summary(right, level, index->now);
	root->node.count = 2;
	branch_put(root, 0, left, level, &left_summary);
	branch_put(root, 1, right, level, &right_summary);
	index->root = &root->node;
	index->height++;
}

static void insert_with_split(struct order_index *index, struct order_path *path, struct token *token,
		struct split_nodes *nodes)
{
	split_leaf(index, path->leaf, nodes->leaf, path->slot, token);
	struct order_node *left = &path->leaf->node;
	struct order_node *right = &nodes->leaf->node;
	for(unsigned depth = index->height; depth-- > 0;){
		struct order_branch *branch = path->branches[depth];
		unsigned slot = path->slots[depth];
		unsigned child_level = index->height - depth - 1;
		if(right == NULL){
			summary_add(&branch->sums[slot], token, index->now);
			branch->first[slot] = node_first(branch->children[slot], child_level);
			continue;
		}
		struct order_summary right_summary = node_summary(right, child_level, index->now);
		branch->sums[slot] = node_summary(left, child_level, index->now);
		branch->first[slot] = node_first(left, child_level);
		if(branch->node.count < BRANCH_MAX){
			branch_shift(branch, slot + 1, 1);
			branch_put(branch, slot + 1, right, child_level, &right_summary);
			right = NULL;
		}else{
			struct order_branch *new_branch = nodes->branches[nodes->branches_used++];
			split_branch(branch, new_branch, slot + 1, path_is_rightmost(path, depth), right, child_level,
					&right_summary);
			left = &branch->node;
			right = &new_branch->node;
		}
	}
	if(right != NULL){
		add_root(index, nodes->branches[nodes->branches_used++], left, right);
	}
	summary_add(&index->total, token, index->now);
}

static void insert_in_leaf(struct order_index *index, struct order_path *path, struct token *token)
{
	leaf_shift(path->leaf, path->slot, 1);
	path->leaf->tokens[path->slot] = token;
	bool first_changed = path->slot == 0;
	for(unsigned depth = index->height; depth-- > 0;){
		struct order_branch *branch = path->branches[depth];
		unsigned slot = path->slots[depth];
		summary_add(&branch->sums[slot], token, index->now);
		if(first_changed){
			branch->first[slot] = token;
			first_changed = slot == 0;
		}
	}
	summary_add(&index->total, token, index->now);
}

bool order_index_insert(struct order_index *index, struct token *token)
{
	if(index->root == NULL){
		return insert_first(index, token);
	}
	struct order_path path;
	struct order_target target = {.index = index, .token = token};
	descend(index, &target, &path);
	if(path.leaf->node.count == path.leaf->node.capacity){
		if(path.leaf->node.capacity < LEAF_MAX){
			if(!grow_root_leaf(index, &path)){
				return false;
			}
		}else{
			struct split_nodes nodes;
			if(!allocate_split(index, &path, &nodes)){
				return false;
			}
			insert_with_split(index, &path, token, &nodes);
			return true;
		}
	}
	insert_in_leaf(index, &path, token);
	return true;
}

/* ---- remove ---- */

/* The summary lost token: exact without a rescan unless token held its
 * minimum or maximum. */
static void summary_remove(struct order_summary *summary, const struct token *token, int64_t now,
		const struct order_node *node, unsigned level)
{
	bool valid = is_valid(now, token);
	bool was_bound = valid ? token->valid_until == summary->min_valid_until
		: token->valid_until == summary->max_invalid_until;
	if(was_bound){
		*summary = node_summary(node, level, now);
		return;
	}
	summary->count--;
	summary->valid -= valid;
}

/* The branch's first token changed: so did its ancestors' while it is
 * their first child. */
static void propagate_first(struct order_branch *branch)
{
	struct order_node *node = &branch->node;
	while(node->parent != NULL){
		unsigned slot = child_slot(node->parent, node);
		node->parent->first[slot] = branch->first[0];
		if(slot != 0){
			break;
		}
		node = &node->parent->node;
	}
}

/* Entry slot of branch goes, and its node with it. */
static void drop_entry(struct order_index *index, struct order_branch *branch, unsigned slot, unsigned child_level)
{
	struct order_node *child = branch->children[slot];
	if(child_level == 0){
		struct order_leaf *leaf = as_leaf(child);
		if(leaf->prev != NULL){
			leaf->prev->next = leaf->next;
		}else{
			index->first_leaf = leaf->next;
		}
		if(leaf->next != NULL){
			leaf->next->prev = leaf->prev;
		}else{
			index->last_leaf = leaf->prev;
		}
	}
	node_free(index, child, child_level);
	branch_shift(branch, slot + 1, -1);
	if(slot == 0 && branch->node.count > 0){
		propagate_first(branch);
	}
}

/* Moves count entries from the start of right to the end of left, or
 * (count < 0) from the end of left to the start of right. */
static void move_entries(struct order_node *left, struct order_node *right, int count, unsigned level)
{
	if(level == 0){
		struct order_leaf *l = as_leaf(left), *r = as_leaf(right);
		if(count > 0){
			memcpy(&l->tokens[l->node.count], r->tokens, (unsigned)count * sizeof(l->tokens[0]));
			l->node.count += (unsigned)count;
			leaf_shift(r, (unsigned)count, -count);
		}else{
			leaf_shift(r, 0, -count);
			l->node.count -= (unsigned)-count;
			memcpy(r->tokens, &l->tokens[l->node.count], (unsigned)-count * sizeof(l->tokens[0]));
		}
		return;
	}
	struct order_branch *l = as_branch(left), *r = as_branch(right);
	if(count > 0){
		branch_copy_entries(l, l->node.count, r, 0, (unsigned)count);
		l->node.count += (unsigned)count;
		branch_shift(r, (unsigned)count, -count);
	}else{
		branch_shift(r, 0, -count);
		l->node.count -= (unsigned)-count;
		branch_copy_entries(r, 0, l, l->node.count, (unsigned)-count);
	}
}

/* The child at slot is below a quarter full and has a sibling in branch:
 * merge the two if they fit in one node, else share evenly. */
static void rebalance_child(struct order_index *index, struct order_branch *branch, unsigned slot,
		unsigned child_level)
{
	unsigned left_slot = slot + 1 < branch->node.count ? slot : slot - 1;
	struct order_node *left = branch->children[left_slot];
	struct order_node *right = branch->children[left_slot + 1];
	unsigned maximum = child_level == 0 ? LEAF_MAX : BRANCH_MAX;
	unsigned total = left->count + right->count;
	if(total <= maximum){
		move_entries(left, right, (int)right->count, child_level);
		summary_merge(&branch->sums[left_slot], &branch->sums[left_slot + 1]);
		drop_entry(index, branch, left_slot + 1, child_level);
		return;
	}
	move_entries(left, right, (int)(total / 2) - (int)left->count, child_level);
	branch->sums[left_slot] = node_summary(left, child_level, index->now);
	branch->sums[left_slot + 1] = node_summary(right, child_level, index->now);
	branch->first[left_slot + 1] = node_first(right, child_level);
}

static bool is_underfull(const struct order_node *node, unsigned level, bool last_of_level)
{
	unsigned minimum = level == 0 ? LEAF_MIN : BRANCH_MIN;
	return node->count == 0 || (node->count < minimum && !last_of_level);
}

static void collapse_root(struct order_index *index)
{
	while(index->height > 0 && index->root->count == 1){
		struct order_node *child = as_branch(index->root)->children[0];
		node_free(index, index->root, index->height);
		child->parent = NULL;
		index->root = child;
		index->height--;
	}
	if(index->height == 0 && index->root->count == 0){
		node_free(index, index->root, 0);
		index->root = NULL;
		index->first_leaf = index->last_leaf = NULL;
	}
}

static void rebalance_path(struct order_index *index, const struct order_path *path)
{
	for(unsigned depth = index->height; depth-- > 0;){
		struct order_branch *branch = path->branches[depth];
		unsigned slot = path->slots[depth];
		unsigned child_level = index->height - depth - 1;
		struct order_node *child = branch->children[slot];
		if(!is_underfull(child, child_level, path_is_rightmost(path, depth + 1))){
			break;
		}
		if(child->count == 0){
			drop_entry(index, branch, slot, child_level);
		}else{
			rebalance_child(index, branch, slot, child_level);
		}
	}
	collapse_root(index);
}

void order_index_remove(struct order_index *index, const struct token *token)
{
	struct order_path path;
	struct order_target target = {.index = index, .token = token, .after_token = true};
	descend(index, &target, &path);
	struct order_leaf *leaf = path.leaf;
	unsigned slot = path.slot - 1;
	leaf_shift(leaf, slot + 1, -1);
	bool first_changed = slot == 0 && leaf->node.count > 0;
	struct order_node *child = &leaf->node;
	for(unsigned depth = index->height; depth-- > 0;){
		struct order_branch *branch = path.branches[depth];
		unsigned child_slot_in_branch = path.slots[depth];
		unsigned child_level = index->height - depth - 1;
		summary_remove(&branch->sums[child_slot_in_branch], token, index->now, child, child_level);
		if(first_changed){
			branch->first[child_slot_in_branch] = node_first(child, child_level);
			first_changed = child_slot_in_branch == 0;
		}
		child = &branch->node;
	}
	summary_remove(&index->total, token, index->now, index->root, index->height);
	rebalance_path(index, &path);
}

/* ---- build ---- */

static unsigned first_capacity_for(size_t count)
{
	unsigned capacity = LEAF_FIRST_CAPACITY;
	while(capacity < count){
		capacity *= 2;
	}
	return capacity;
}

/* nodes[0..count) become leaves holding the tokens, full but the last. */
static bool build_leaves(struct order_index *index, struct token *const *tokens, size_t count,
		struct order_node **nodes, size_t leaf_count)
{
	unsigned capacity = count <= LEAF_MAX ? first_capacity_for(count) : LEAF_MAX;
	struct order_leaf *previous = NULL;
	for(size_t i = 0; i < leaf_count; i++){
		struct order_leaf *leaf = leaf_new(index, capacity);
		if(leaf == NULL){
			for(size_t j = 0; j < i; j++){
				node_free(index, nodes[j], 0);
			}
			return false;
		}
		size_t start = i * LEAF_MAX;
		leaf->node.count = (unsigned)(count - start < LEAF_MAX ? count - start : LEAF_MAX);
		memcpy(leaf->tokens, &tokens[start], leaf->node.count * sizeof(leaf->tokens[0]));
		leaf->prev = previous;
		if(previous != NULL){
			previous->next = leaf;
		}else{
			index->first_leaf = leaf;
		}
		previous = leaf;
		nodes[i] = &leaf->node;
	}
	index->last_leaf = previous;
	return true;
}

/* Groups nodes[0..*count) of level into branches, in place. */
static bool build_level(struct order_index *index, struct order_node **nodes, size_t *count, unsigned level)
{
	size_t branch_count = (*count + BRANCH_MAX - 1) / BRANCH_MAX;
	for(size_t i = 0; i < branch_count; i++){
		struct order_branch *branch = branch_new(index);
		if(branch == NULL){
			for(size_t j = 0; j < i; j++){
				subtree_free(index, nodes[j], level + 1);
			}
			for(size_t j = i * BRANCH_MAX; j < *count; j++){
				subtree_free(index, nodes[j], level);
			}
			return false;
		}
		size_t start = i * BRANCH_MAX;
		unsigned children = (unsigned)(*count - start < BRANCH_MAX ? *count - start : BRANCH_MAX);
		for(unsigned c = 0; c < children; c++){
			struct order_node *child = nodes[start + c];
			struct order_summary summary = node_summary(child, level, index->now);
			branch_put(branch, c, child, level, &summary);
		}
		branch->node.count = children;
		nodes[i] = &branch->node;
	}
	*count = branch_count;
	return true;
}

bool order_index_build(struct order_index *index, struct token *const *tokens, size_t count)
{
	if(count == 0){
		return true;
	}
	size_t leaf_count = (count + LEAF_MAX - 1) / LEAF_MAX;
	struct order_node **nodes = malloc(leaf_count * sizeof(*nodes));
	if(nodes == NULL){
		return false;
	}
	bool built = build_leaves(index, tokens, count, nodes, leaf_count);
	unsigned level = 0;
	size_t node_count = leaf_count;
	while(built && node_count > 1){
		built = build_level(index, nodes, &node_count, level);
		level++;
	}
	if(built){
		index->root = nodes[0];
		index->height = level;
		index->total = node_summary(index->root, level, index->now);
	}else{
		order_index_init(index, index->compare, index->now);
	}
	free(nodes);
	return built;
}

/* ---- refresh ---- */

static void refresh_node(int64_t now, struct order_node *node, unsigned level, struct order_summary *summary)
{
	if(!summary_is_stale(summary, now)){
		return;
	}
	if(level > 0){
		struct order_branch *branch = as_branch(node);
		for(unsigned i = 0; i < branch->node.count; i++){
			refresh_node(now, branch->children[i], level - 1, &branch->sums[i]);
		}
	}
	*summary = node_summary(node, level, now);
}

void order_index_refresh(struct order_index *index, int64_t now)
{
	index->now = now;
	if(index->root != NULL){
		refresh_node(now, index->root, index->height, &index->total);
	}
}

/* ---- positions ---- */

static void set_past_end(struct order_cursor *cursor)
{
	cursor->leaf = NULL;
	cursor->slot = 0;
	cursor->before_start = false;
}

static void set_before_start(struct order_cursor *cursor)
{
	set_past_end(cursor);
	cursor->before_start = true;
}

static void set_at(struct order_cursor *cursor, struct order_leaf *leaf, unsigned slot)
{
	cursor->leaf = leaf;
	cursor->slot = slot;
	cursor->before_start = false;
}

struct token *order_cursor_token(const struct order_cursor *cursor)
{
	return cursor->leaf == NULL ? NULL : cursor->leaf->tokens[cursor->slot];
}

bool order_index_seek(const struct order_index *index, enum order_status status, size_t rank,
		struct order_cursor *cursor)
{
	if(rank >= status_count(&index->total, status)){
		set_past_end(cursor);
		return false;
	}
	struct order_node *node = index->root;
	for(unsigned level = index->height; level > 0; level--){
		struct order_branch *branch = as_branch(node);
		unsigned i = 0;
		for(size_t here; rank >= (here = status_count(&branch->sums[i], status)); i++){
			rank -= here;
		}
		node = branch->children[i];
	}
	struct order_leaf *leaf = as_leaf(node);
	unsigned slot = 0;
	if(status == ORDER_ALL){
		slot = (unsigned)rank;
	}else{
		for(;; slot++){
			if(has_status(index->now, leaf->tokens[slot], status) && rank-- == 0){
				break;
			}
		}
	}
	set_at(cursor, leaf, slot);
	return true;
}

/* The first (or last) token of that status under node, which has one. */
static void descend_to_end(const struct order_index *index, struct order_node *node, unsigned level,
		enum order_status status, bool last, struct order_cursor *cursor)
{
	for(; level > 0; level--){
		struct order_branch *branch = as_branch(node);
		unsigned i = last ? branch->node.count - 1 : 0;
		while(status_count(&branch->sums[i], status) == 0){
			i = last ? i - 1 : i + 1;
		}
		node = branch->children[i];
	}
	struct order_leaf *leaf = as_leaf(node);
	unsigned slot = last ? leaf->node.count - 1 : 0;
	while(!has_status(index->now, leaf->tokens[slot], status)){
		slot = last ? slot - 1 : slot + 1;
	}
	set_at(cursor, leaf, slot);
}

bool order_index_last(const struct order_index *index, enum order_status status, struct order_cursor *cursor)
{
	if(status_count(&index->total, status) == 0){
		set_past_end(cursor);
		return false;
	}
	descend_to_end(index, index->root, index->height, status, true, cursor);
	return true;
}

static bool first_of_status(const struct order_index *index, enum order_status status, struct order_cursor *cursor)
{
	if(status_count(&index->total, status) == 0){
		set_past_end(cursor);
		return false;
	}
	descend_to_end(index, index->root, index->height, status, false, cursor);
	return true;
}

/* Climbs from leaf to the nearest subtree after it (forward) or before it
 * holding a token of that status, skipping the others by their counts. */
static bool climb_to_neighbour(const struct order_index *index, struct order_leaf *leaf, enum order_status status,
		bool forward, struct order_cursor *cursor)
{
	struct order_node *node = &leaf->node;
	for(unsigned level = 0; node->parent != NULL; level++){
		struct order_branch *branch = node->parent;
		unsigned slot = child_slot(branch, node);
		if(forward){
			for(unsigned i = slot + 1; i < branch->node.count; i++){
				if(status_count(&branch->sums[i], status) > 0){
					descend_to_end(index, branch->children[i], level, status, false, cursor);
					return true;
				}
			}
		}else{
			for(unsigned i = slot; i-- > 0;){
				if(status_count(&branch->sums[i], status) > 0){
					descend_to_end(index, branch->children[i], level, status, true, cursor);
					return true;
				}
			}
		}
		node = &branch->node;
	}
	return false;
}

bool order_cursor_next(const struct order_index *index, struct order_cursor *cursor, enum order_status status)
{
	if(cursor->leaf == NULL){
		return cursor->before_start && first_of_status(index, status, cursor);
	}
	struct order_leaf *leaf = cursor->leaf;
	for(unsigned slot = cursor->slot + 1; slot < leaf->node.count; slot++){
		if(has_status(index->now, leaf->tokens[slot], status)){
			cursor->slot = slot;
			return true;
		}
	}
	if(status == ORDER_ALL && leaf->next != NULL){
		set_at(cursor, leaf->next, 0);
		return true;
	}
	if(climb_to_neighbour(index, leaf, status, true, cursor)){
		return true;
	}
	set_past_end(cursor);
	return false;
}

bool order_cursor_prev(const struct order_index *index, struct order_cursor *cursor, enum order_status status)
{
	if(cursor->leaf == NULL){
		if(cursor->before_start || !order_index_last(index, status, cursor)){
			set_before_start(cursor);
			return false;
		}
		return true;
	}
	struct order_leaf *leaf = cursor->leaf;
	for(unsigned slot = cursor->slot; slot-- > 0;){
		if(has_status(index->now, leaf->tokens[slot], status)){
			cursor->slot = slot;
			return true;
		}
	}
	if(status == ORDER_ALL && leaf->prev != NULL){
		set_at(cursor, leaf->prev, leaf->prev->node.count - 1);
		return true;
	}
	if(climb_to_neighbour(index, leaf, status, false, cursor)){
		return true;
	}
	set_before_start(cursor);
	return false;
}

void order_index_lower_bound(const struct order_index *index, order_key_fn key_fn, const void *key,
		struct order_cursor *cursor, size_t *rank_all, size_t *rank_valid)
{
	size_t all = 0, valid = 0;
	set_past_end(cursor);
	if(index->root != NULL){
		struct order_target target = {.index = index, .key_fn = key_fn, .key = key};
		struct order_node *node = index->root;
		for(unsigned level = index->height; level > 0; level--){
			struct order_branch *branch = as_branch(node);
			unsigned slot = branch_slot_of(branch, &target);
			for(unsigned i = 0; i < slot; i++){
				all += branch->sums[i].count;
				valid += branch->sums[i].valid;
			}
			node = branch->children[slot];
		}
		struct order_leaf *leaf = as_leaf(node);
		unsigned slot = leaf_slot_of(leaf, &target);
		for(unsigned i = 0; i < slot; i++){
			valid += is_valid(index->now, leaf->tokens[i]);
		}
		all += slot;
		if(slot < leaf->node.count){
			set_at(cursor, leaf, slot);
		}else if(leaf->next != NULL){
			set_at(cursor, leaf->next, 0);
		}
	}
	if(rank_all != NULL){
		*rank_all = all;
	}
	if(rank_valid != NULL){
		*rank_valid = valid;
	}
}

struct token *order_index_find(const struct order_index *index, order_key_fn key_fn, const void *key)
{
	struct order_cursor cursor;
	order_index_lower_bound(index, key_fn, key, &cursor, NULL, NULL);
	struct token *token = order_cursor_token(&cursor);
	return token != NULL && key_fn(token, key) == 0 ? token : NULL;
}

/* ---- invariants ---- */

struct check_walk {
	const struct order_index *index;
	const struct token *previous;   /* the last token seen, in order */
	struct order_leaf *previous_leaf;
	size_t bytes;
};

static const char *check_leaf(struct check_walk *walk, struct order_leaf *leaf, bool last_of_level, bool is_root)
{
	const struct order_index *index = walk->index;
	if(is_root ? leaf->node.capacity < LEAF_FIRST_CAPACITY || leaf->node.capacity > LEAF_MAX
			|| (leaf->node.capacity & (leaf->node.capacity - 1)) != 0 : leaf->node.capacity != LEAF_MAX){
		return "leaf capacity";
	}
	if(leaf->node.count > leaf->node.capacity || leaf->node.count == 0
			|| (!is_root && is_underfull(&leaf->node, 0, last_of_level))){
		return "leaf fill";
	}
	if(leaf->prev != walk->previous_leaf || (walk->previous_leaf != NULL && walk->previous_leaf->next != leaf)
			|| (walk->previous_leaf == NULL && index->first_leaf != leaf)){
		return "leaf links";
	}
	if(last_of_level && (leaf->next != NULL || index->last_leaf != leaf)){
		return "last leaf link";
	}
	for(unsigned i = 0; i < leaf->node.count; i++){
		if(walk->previous != NULL && (index->compare(walk->previous, leaf->tokens[i]) >= 0
				|| index->compare(leaf->tokens[i], walk->previous) <= 0)){
			return "order";
		}
		walk->previous = leaf->tokens[i];
	}
	walk->previous_leaf = leaf;
	walk->bytes += leaf_bytes(leaf->node.capacity);
	return NULL;
}

static const char *check_node(struct check_walk *walk, struct order_node *node, unsigned level, bool last_of_level,
		bool is_root)
{
	if(level == 0){
		return check_leaf(walk, as_leaf(node), last_of_level, is_root);
	}
	struct order_branch *branch = as_branch(node);
	walk->bytes += sizeof(*branch);
	if(branch->node.count > BRANCH_MAX || (is_root ? branch->node.count < 2
			: is_underfull(node, level, last_of_level))){
		return "branch fill";
	}
	for(unsigned i = 0; i < branch->node.count; i++){
		struct order_node *child = branch->children[i];
		if(child->parent != branch){
			return "parent link";
		}
		const char *problem = check_node(walk, child, level - 1, last_of_level && i + 1 == branch->node.count,
				false);
		if(problem != NULL){
			return problem;
		}
		if(branch->first[i] != node_first(child, level - 1)){
			return "first token of a child";
		}
		struct order_summary summary = node_summary(child, level - 1, walk->index->now);
		if(memcmp(&summary, &branch->sums[i], sizeof(summary)) != 0){
			return "counts or validity aggregates";
		}
	}
	return NULL;
}

const char *order_index_problem(const struct order_index *index)
{
	if(index->root == NULL){
		bool empty = index->height == 0 && index->first_leaf == NULL && index->last_leaf == NULL
			&& index->bytes == 0 && memcmp(&index->total, &empty_summary, sizeof(empty_summary)) == 0;
		return empty ? NULL : "empty index with state";
	}
	if(index->root->parent != NULL){
		return "root has a parent";
	}
	struct check_walk walk = {.index = index};
	const char *problem = check_node(&walk, index->root, index->height, true, true);
	if(problem != NULL){
		return problem;
	}
	struct order_summary total = node_summary(index->root, index->height, index->now);
	if(memcmp(&total, &index->total, sizeof(total)) != 0){
		return "total counts";
	}
	return walk.bytes == index->bytes ? NULL : "bytes";
}
