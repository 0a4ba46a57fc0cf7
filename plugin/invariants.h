/*
 * What must hold of the store and of the plugin instance between any two
 * callbacks, checked as a whole: after every load (a state that breaks
 * one is refused like a corrupt file), after every request in the unit
 * tests, and after every input in the fuzzers. A bug that leaves a second
 * copy of something (a secret that outlives its token, a connection bound
 * to a freed token) shows here, before an attacker finds it.
 *
 * Each check walks everything once: O(n), never on the login or ACL path.
 * On a break it writes a sentence naming the item into problem.
 */
#ifndef INVARIANTS_H
#define INVARIANTS_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"
#include "instance.h"

/* Both indexes hold the same tokens; every token's role is linked and
 * counts it; a bound token's client id is a valid one, in the token's own
 * record; every ACL is in its type's list, highest priority first;
 * every previous secret belongs to a linked token and is nobody's current
 * secret. */
bool invariants_check_store(const struct store *store, char *problem, size_t problem_len);

/* The store, and: every connection bound to a token is on that token's
 * list and the token is linked (a connection through a previous secret
 * only while that secret lives; to a bound token only with its client
 * id); the expiry and notice queues hold linked tokens at the positions
 * they record, in heap order; the counters match what they count. */
bool invariants_check_plugin(const struct tokens_plugin *plugin, char *problem, size_t problem_len);

#endif
