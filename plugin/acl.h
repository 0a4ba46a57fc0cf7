/*
 * Role ACL evaluation (SPEC section 3), with the dynamic-security plugin's
 * ACL types, priorities and defaults. Pure functions of a role and a
 * request: no allocation, no I/O, so the broker's per-message check stays
 * cheap and can be tested without a broker.
 */
#ifndef ACL_H
#define ACL_H

#include <stdbool.h>

#include "store.h"

/* access is one of the broker's MOSQ_ACL_READ, _WRITE, _SUBSCRIBE,
 * _UNSUBSCRIBE. topic is the published topic, or the requested filter.
 * READ (a message on its way to the session) needs both a subscribe grant
 * that covers the topic and publishClientReceive (default allow): no
 * subscription a session holds widens what its role lets it read. */
bool acl_allows(const struct role *role, int access, const char *topic);

/* True when every topic that `requested` can match is matched by `granted`
 * (both MQTT topic filters): "a/#" covers "a/+/b", "a/+" does not cover "a/#". */
bool topic_filter_covers(const char *granted, const char *requested);

/* Mosquitto 2.1's HTTP API (its http_api listener) checks a read of the
 * URL's path: only a publishClientReceive ACL whose topic matches the path
 * and allows lets a token read it (say "/api/v1/#"); by default, no. */
bool acl_allows_http_api(const struct role *role, const char *path);

#endif
