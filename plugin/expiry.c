/*
 * The expiry queue: a binary min-heap on validUntil. See plugin/expiry.h.
 */
#include <stdlib.h>
#include <string.h>

#include "expiry.h"

static int64_t valid_until_of(const struct expiry_queue *queue, const struct token *token)
{
	(void)queue;
	return token->valid_until;
}

static uint32_t *expiry_slot_of(struct token *token)
{
	return &token->expiry_slot;
}

/* tokenExpiring is due `lead` seconds before validUntil, then tokenExpired. */
static int64_t next_notice_of(const struct expiry_queue *queue, const struct token *token)
{
	return token->expiring_noticed ? token->valid_until : token->valid_until - queue->lead;
}

static uint32_t *notice_slot_of(struct token *token)
{
	return &token->notice_slot;
}

void expiry_init(struct expiry_queue *queue)
{
	memset(queue, 0, sizeof(*queue));
	queue->due = valid_until_of;
	queue->slot = expiry_slot_of;
}

void expiry_init_notices(struct expiry_queue *queue, int64_t lead)
{
	memset(queue, 0, sizeof(*queue));
	queue->due = next_notice_of;
	queue->slot = notice_slot_of;
	queue->lead = lead;
}

void expiry_clear(struct expiry_queue *queue)
{
	for(size_t i = 0; i < queue->count; i++){
		*queue->slot(queue->heap[i]) = 0;
	}
	free(queue->heap);
	queue->heap = NULL;
	queue->count = queue->capacity = 0;
}

static void place(struct expiry_queue *queue, size_t index, struct token *token)
{
	queue->heap[index] = token;
	*queue->slot(token) = (uint32_t)(index + 1);
}

static void sift_up(struct expiry_queue *queue, size_t index)
{
	struct token *token = queue->heap[index];
	while(index > 0){
		size_t parent = (index - 1) / 2;
		if(queue->due(queue, queue->heap[parent]) <= queue->due(queue, token)){
			break;
		}
		place(queue, index, queue->heap[parent]);
		index = parent;
	}
	place(queue, index, token);
}

static void sift_down(struct expiry_queue *queue, size_t index)
{
	struct token *token = queue->heap[index];
	for(;;){
		size_t child = 2 * index + 1;
		if(child >= queue->count){
			break;
		}
		if(child + 1 < queue->count && queue->due(queue, queue->heap[child + 1]) < queue->due(queue, queue->heap[child])){
			child++;
		}
		if(queue->due(queue, token) <= queue->due(queue, queue->heap[child])){
			break;
		}
		place(queue, index, queue->heap[child]);
		index = child;
	}
	place(queue, index, token);
}

bool expiry_add(struct expiry_queue *queue, struct token *token)
{
	if(*queue->slot(token)){
		return true;
	}
	if(!expiry_add_unordered(queue, token)){
		return false;
	}
	sift_up(queue, queue->count - 1);
	return true;
}

void expiry_remove(struct expiry_queue *queue, struct token *token)
{
	if(*queue->slot(token) == 0){
		return;
	}
	size_t index = *queue->slot(token) - 1;
	*queue->slot(token) = 0;
	struct token *last = queue->heap[--queue->count];
	if(index == queue->count){
		return;
	}
	place(queue, index, last);
	sift_down(queue, index);
	sift_up(queue, *queue->slot(last) - 1);
}

struct token *expiry_pop_due(struct expiry_queue *queue, int64_t now)
{
	if(queue->count == 0 || queue->due(queue, queue->heap[0]) > now){
		return NULL;
	}
	struct token *due = queue->heap[0];
	expiry_remove(queue, due);
	return due;
}

bool expiry_add_unordered(struct expiry_queue *queue, struct token *token)
{
	if(queue->count == queue->capacity){
		size_t capacity = queue->capacity ? 2 * queue->capacity : 64;
		struct token **grown = realloc(queue->heap, capacity * sizeof(*grown));
		if(grown == NULL){
			return false;
		}
		queue->heap = grown;
		queue->capacity = capacity;
	}
	place(queue, queue->count++, token);
	return true;
}

void expiry_heapify(struct expiry_queue *queue)
{
	for(size_t i = queue->count / 2; i-- > 0;){
		sift_down(queue, i);
	}
}
