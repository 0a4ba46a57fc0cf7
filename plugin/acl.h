/*
 * Role ACL evaluation (SPEC section 3), with the dynamic-security plugin's
 * ACL types, priorities and defaults, and the rule for the topic an ACL
 * may hold. Pure functions of a role and a request: no allocation, no
 * I/O, so the broker's per-message check stays cheap and can be tested
 * without a broker.
 */
#ifndef ACL_H
#define ACL_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

/* What the placeholders of an ACL's topic stand for, for the connection
 * being checked (SPEC section 3): a level that is exactly "%t" is the
 * token's name, "%c" the client id, "%u" the username. A value that is
 * missing, empty, or holds '/', '+' or '#' matches no placeholder level;
 * a placeholder that is not a whole level is plain text. Like a wildcard,
 * a placeholder as the first level never matches a topic starting with
 * '$'. The strings are borrowed for the check. */
enum acl_subject_field { ACL_SUBJECT_TOKEN_NAME, ACL_SUBJECT_CLIENT_ID, ACL_SUBJECT_USERNAME, ACL_SUBJECT_FIELDS };
struct acl_subject {
	const char *value[ACL_SUBJECT_FIELDS];   /* NULL: matches nothing */
	size_t length[ACL_SUBJECT_FIELDS];
};
void acl_subject_init(struct acl_subject *subject, const char *token_name, const char *client_id,
		const char *username);
/* Whether some whole level of topic is a placeholder. */
bool acl_topic_has_placeholder(const char *topic);

/* access is one of the broker's MOSQ_ACL_READ, _WRITE, _SUBSCRIBE,
 * _UNSUBSCRIBE. topic is the published topic, or the requested filter.
 * READ (a message on its way to the session) needs both a subscribe grant
 * that covers the topic and publishClientReceive (default allow): no
 * subscription a session holds widens what its role lets it read.
 * subject gives the placeholders' values (NULL: none matches); a literal
 * subscribe ACL with placeholders compares after substitution. */
bool acl_allows(const struct role *role, int access, const char *topic, const struct acl_subject *subject);

/* True when every topic that `requested` can match is matched by `granted`
 * (both MQTT topic filters): "a/#" covers "a/+/b", "a/+" does not cover "a/#".
 * A placeholder level in granted matches nothing here. */
bool topic_filter_covers(const char *granted, const char *requested);

/* Mosquitto 2.1's HTTP API (its http_api listener) checks a read of the
 * URL's path: only a publishClientReceive ACL whose topic matches the path
 * and allows lets a token read it (say "/api/v1/#"); by default, no. */
bool acl_allows_http_api(const struct role *role, const char *path, const struct acl_subject *subject);

/* MQTT's longest string: no filter can be longer. */
#define ACL_TOPIC_MAX_BYTES 65535

/* Where an ACL's topic comes from: the rule depends on it. */
enum acl_topic_origin {
	ACL_TOPIC_NEW,       /* createRole, addRoleACL */
	ACL_TOPIC_STORED,    /* the state file, and the journal's replay */
};

/* Whether an ACL may hold this topic filter. A stored one needs only
 * libmosquitto's filter check ('+' and '#' whole levels, '#' last, at
 * most 65535 bytes; in the broker, also at most its number of levels),
 * which is all that loading has ever asked: a state file that loaded
 * before an upgrade must load after it, since a refused file stops the
 * broker and so locks every client of the fleet out, and a file written
 * by hand or by another tool may hold a filter no command accepts (a
 * control character, invalid UTF-8, an empty filter where libmosquitto
 * allows one). A new one must also be 1 to 65535 bytes of valid UTF-8
 * without control characters or noncharacters (libmosquitto's UTF-8
 * check). Names do the same: name_problem and new_name_problem (store.h). */
bool acl_topic_is_valid(const char *topic, enum acl_topic_origin origin);

#endif
