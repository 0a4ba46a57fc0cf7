/*
 * The journal's changes: what a command records so that replaying it on
 * the last snapshot gives the same store. One JSON object per change, with
 * "op" naming it (the persistence backend adds "seq"):
 *
 *   {"op": "createToken", "token": {...state file token...}}
 *   {"op": "rotateToken", "hash": "<old hash>", "token": {...the token now...}}
 *   {"op": "noticed", "hash": "<64 hex>", "expiring": true, "expired": false}
 *   {"op": "revokeToken", "hash": "<64 hex>"}
 *   {"op": "createRole", "role": {"rolename": ..., "acls": [...]}}
 *   {"op": "deleteRole", "rolename": ...}
 *   {"op": "addRoleACL", "rolename": ..., "acl": {...}}
 *   {"op": "removeRoleACL", "rolename": ..., "acltype": ..., "topic": ...}
 *   {"op": "lastUsed", "tokens": [["<64 hex>", "<time>"], ...]}
 *
 * Builders return NULL when out of memory.
 */
#ifndef JOURNAL_H
#define JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "store.h"

cJSON *journal_create_token(const struct store *store, const struct token *token);
/* Recorded before the rotation is applied in memory: the replacement
 * record and its previous secret (NULL: none) are given. */
cJSON *journal_rotate_token(const unsigned char old_hash[TOKEN_HASH_LEN], const struct token *replacement,
		const struct previous_secret *previous);
cJSON *journal_noticed(const struct token *token);
cJSON *journal_revoke_token(const struct token *token);
cJSON *journal_create_role(const struct role *role);
cJSON *journal_delete_role(const struct role *role);
cJSON *journal_add_role_acl(const struct role *role, const struct role_acl *acl);
cJSON *journal_remove_role_acl(const struct role *role, const struct role_acl *acl);
/* An empty lastUsed change; journal_add_last_used appends one token. */
cJSON *journal_last_used(void);
bool journal_add_last_used(cJSON *change, const struct token *token);
/* How many changes to the store one record holds (lastUsed holds many). */
size_t journal_change_count(const cJSON *change);

/* Applies one recorded change to the store. On a change that does not fit
 * the store (unknown op, missing token or role, duplicate), writes why into
 * problem and returns false; the store may then be half changed and is to
 * be discarded (replay stops at the first problem). */
bool journal_apply(struct store *store, const cJSON *change, char *problem, size_t problem_len);

#endif
