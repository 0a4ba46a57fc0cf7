/*
 * Token and role metadata as the protocol shows it: the JSON objects that
 * replies (createToken, rotateToken, getToken, listTokens, getRole,
 * listRoles) and
 * lifecycle events carry, and that the state file and the journal reuse
 * for their role and ACL lines and as the base of a token line
 * (state_format.h adds what only the file keeps). One serialiser, so that a
 * reply, an event and a saved role cannot disagree about a field.
 */
#ifndef METADATA_JSON_H
#define METADATA_JSON_H

#include <stdint.h>
#include <cjson/cJSON.h>

#include "store.h"

/* The token's metadata: name, role, requestedBy, issuedAt, validUntil,
 * lastUsed (null if never), hash, and clientId only when it is bound to
 * one; no "status", which depends on the time of asking (callers add it).
 * NULL when out of memory. */
cJSON *token_to_json(const struct token *token);
/* {"acltype", "topic", "priority", "allow"}: the dynamic-security plugin's
 * shape. */
cJSON *role_acl_to_json(const struct role_acl *acl);
/* {"rolename", "acls": [...]}: the ACLs type by type, each type's in the
 * order the role keeps them. */
cJSON *role_to_json(const struct role *role);

/* Adds key: seconds as an RFC 3339 time, the form every time in metadata
 * takes; NULL when out of memory. */
cJSON *metadata_add_time(cJSON *object, const char *key, int64_t seconds);

#endif
