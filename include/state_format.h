/*
 * The state file's JSON shape (SPEC section 5) and the token and role
 * objects it shares with the protocol. Converting in either direction is
 * kept apart from file I/O so that it can be tested and fuzzed on its own.
 */
#ifndef STATE_FORMAT_H
#define STATE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "store.h"

#define STATE_FORMAT_VERSION 1

/* The token's metadata as the state file keeps it (no "status"). */
cJSON *token_to_json(const struct token *token);
cJSON *role_acl_to_json(const struct role_acl *acl);
cJSON *role_to_json(const struct role *role);

cJSON *state_to_json(const struct store *store);

/* Fills an empty store from a state document. On a format problem it writes
 * a sentence naming the entry and the field into problem, leaves the store
 * empty and returns false. */
bool state_from_json(const cJSON *document, struct store *store, char *problem, size_t problem_len);

#endif
