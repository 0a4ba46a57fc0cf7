/*
 * When do tokens with live connections expire? A binary min-heap of those
 * tokens by validUntil, so the tick looks at one token to know whether any
 * connection is due to be closed, instead of scanning the store. A token
 * enters when its first connection is bound and leaves when it is due,
 * revoked or freed; each token records its slot for O(log n) removal.
 */
#ifndef EXPIRY_H
#define EXPIRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct expiry_queue {
	struct token **heap;
	size_t count;
	size_t capacity;
};

void expiry_init(struct expiry_queue *queue);
void expiry_clear(struct expiry_queue *queue);
/* No-op when the token is already queued; false when out of memory. */
bool expiry_add(struct expiry_queue *queue, struct token *token);
/* No-op when the token is not queued. */
void expiry_remove(struct expiry_queue *queue, struct token *token);
/* Removes and returns a token whose validUntil is at or before now, or NULL. */
struct token *expiry_pop_due(struct expiry_queue *queue, int64_t now);

#endif
