/*
 * The expiry queue: a binary min-heap on validUntil. See include/expiry.h.
 */
#include <stdlib.h>
#include <string.h>

#include "expiry.h"

void expiry_init(struct expiry_queue *queue)
{
	memset(queue, 0, sizeof(*queue));
}

void expiry_clear(struct expiry_queue *queue)
{
	for(size_t i = 0; i < queue->count; i++){
		queue->heap[i]->expiry_slot = 0;
	}
	free(queue->heap);
	expiry_init(queue);
}

static void place(struct expiry_queue *queue, size_t index, struct token *token)
{
	queue->heap[index] = token;
	token->expiry_slot = (uint32_t)(index + 1);
}

static void sift_up(struct expiry_queue *queue, size_t index)
{
	struct token *token = queue->heap[index];
	while(index > 0){
		size_t parent = (index - 1) / 2;
		if(queue->heap[parent]->valid_until <= token->valid_until){
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
		if(child + 1 < queue->count && queue->heap[child + 1]->valid_until < queue->heap[child]->valid_until){
			child++;
		}
		if(token->valid_until <= queue->heap[child]->valid_until){
			break;
		}
		place(queue, index, queue->heap[child]);
		index = child;
	}
	place(queue, index, token);
}

bool expiry_add(struct expiry_queue *queue, struct token *token)
{
	if(token->expiry_slot){
		return true;
	}
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
	sift_up(queue, queue->count - 1);
	return true;
}

void expiry_remove(struct expiry_queue *queue, struct token *token)
{
	if(token->expiry_slot == 0){
		return;
	}
	size_t index = token->expiry_slot - 1;
	token->expiry_slot = 0;
	struct token *last = queue->heap[--queue->count];
	if(index == queue->count){
		return;
	}
	place(queue, index, last);
	sift_down(queue, index);
	sift_up(queue, last->expiry_slot - 1);
}

struct token *expiry_pop_due(struct expiry_queue *queue, int64_t now)
{
	if(queue->count == 0 || queue->heap[0]->valid_until > now){
		return NULL;
	}
	struct token *due = queue->heap[0];
	expiry_remove(queue, due);
	return due;
}
