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
	int64_t (*due)(const struct expiry_queue *queue, const struct token *token);
	uint32_t *(*slot)(struct token *token);
	int64_t lead;
};

/* Tokens with live connections, due at validUntil (token->expiry_slot). */
void expiry_init(struct expiry_queue *queue);
/* Tokens whose expiry notices are not all sent, due `lead` seconds before
 * validUntil (tokenExpiring) and then at validUntil (tokenExpired)
 * (token->notice_slot). The same heap, another key. */
void expiry_init_notices(struct expiry_queue *queue, int64_t lead);
void expiry_clear(struct expiry_queue *queue);
/* No-op when the token is already queued; false when out of memory. */
bool expiry_add(struct expiry_queue *queue, struct token *token);
/* No-op when the token is not queued. */
void expiry_remove(struct expiry_queue *queue, struct token *token);
/* Removes and returns a token due at or before now, or NULL. */
struct token *expiry_pop_due(struct expiry_queue *queue, int64_t now);
/* Filling a large queue at once: add unordered, then heapify (O(n)). */
bool expiry_add_unordered(struct expiry_queue *queue, struct token *token);
void expiry_heapify(struct expiry_queue *queue);

#endif
