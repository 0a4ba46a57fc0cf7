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
 *   {"op": "sessions", "bound": [{"clientId": ..., "username": ... or null, "hash": "<64 hex>"}, ...],
 *    "ended": ["<client id>", ...]}
 *
 * The first line of a journal also carries "journalId", the id of the
 * snapshot it follows (docs/state-file.md); journal_file.c adds and checks it.
 *
 * The changes are those of changes.h: a command's change and its replay
 * are applied by the same function.
 */
#ifndef JOURNAL_H
#define JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "changes.h"
#include "session_records.h"
#include "store.h"

/* The change's journal line (without "seq"); NULL when out of memory. */
cJSON *journal_encode(const struct change *change);
/* The inverse: reads a line into a change that fits the store as it is
 * (the token or role it acts on exists, what it adds is new), ready for
 * change_apply, and owning what it adds. On a line that does not fit,
 * writes why into problem and returns false, the store untouched. A
 * lastUsed line is not a change: see journal_apply. */
bool journal_decode(struct store *store, const cJSON *line, struct change *change,
		char *problem, size_t problem_len);

/* The lastUsed change of many tokens at once, its list written as one
 * piece of text rather than a tree of three nodes per token: the lazy
 * save of 100,000 logins must not stall the broker. NULL when out of
 * memory. */
cJSON *journal_last_used_of(const struct token *const *tokens, size_t count);
/* A "sessions" change: the bindings made and ended since the last save
 * (records with bound false are ended), the first limit of them in the
 * table's order. NULL when out of memory. Like
 * lastUsed, its lists are written as text, not as a tree per binding. */
cJSON *journal_sessions_of(const struct session_records *changes, size_t limit);
/* How many changes one record holds (lastUsed and sessions hold many: one
 * per token, one per binding made or ended). */
size_t journal_change_count(const cJSON *change);

/* Replays one line: decodes it and applies it with change_apply, as a
 * command would have (lastUsed lines set the times they carry). On a line
 * that does not fit the store (unknown op, missing token or role,
 * duplicate), writes why into problem and returns false; replay stops at
 * the first problem and the store is discarded. */
bool journal_apply(struct store *store, const cJSON *change, char *problem, size_t problem_len);
/* Replays a line of any kind: a "sessions" line into sessions (latest
 * wins, an ended binding removed; a hash of no token is kept, bindings are
 * advisory), any other with journal_apply. A malformed sessions line (a
 * wrong type, a bad hash, an empty client id, a client id twice) is
 * refused like any other, before any of it is applied. */
bool journal_replay(struct store *store, struct session_records *sessions, const cJSON *line,
		char *problem, size_t problem_len);

#endif
