/*
 * ACL evaluation. A role keeps its ACLs per type, highest priority first
 * (store.h), so each check walks one short list and stops at the first
 * ACL that matches. Also the topic rule that commands and loading share.
 */
#include <string.h>
#include "broker_api.h"

#include "acl.h"

/* Length of the topic level starting at text (up to '/' or the end). */
static size_t level_length(const char *text)
{
	const char *slash = strchr(text, '/');
	return slash ? (size_t)(slash - text) : strlen(text);
}

static bool level_is(const char *level, size_t length, const char *wanted)
{
	return length == strlen(wanted) && memcmp(level, wanted, length) == 0;
}

/* Moves past the level of the given length and its '/', if any. Returns
 * false when there was no further level. */
static bool next_level(const char **cursor, size_t length)
{
	*cursor += length;
	if(**cursor == '/'){
		(*cursor)++;
		return true;
	}
	return false;
}

bool topic_filter_covers(const char *granted, const char *requested)
{
	/* MQTT: a filter starting with a wildcard does not match "$" topics. */
	if(requested[0] == '$' && (granted[0] == '+' || granted[0] == '#')){
		return false;
	}
	const char *g = granted, *r = requested;
	for(;;){
		size_t g_len = level_length(g), r_len = level_length(r);
		if(level_is(g, g_len, "#")){
			return true;
		}
		if(level_is(r, r_len, "#")){
			return false;   /* only "#" covers "#" */
		}
		if(!level_is(g, g_len, "+") && (level_is(r, r_len, "+") || g_len != r_len || memcmp(g, r, g_len) != 0)){
			return false;
		}
		bool g_more = next_level(&g, g_len);
		bool r_more = next_level(&r, r_len);
		if(!r_more){
			/* "a/#" also matches "a" itself. */
			return !g_more || strcmp(g, "#") == 0;
		}
		if(!g_more){
			return false;
		}
	}
}

static const struct role_acl *first_matching_topic(const struct role_acl *acl, const char *topic)
{
	for(; acl; acl = acl->next){
		bool matches = false;
		if(mosquitto_topic_matches_sub(acl->topic, topic, &matches) == MOSQ_ERR_SUCCESS && matches){
			return acl;
		}
	}
	return NULL;
}

static const struct role_acl *first_literal(const struct role_acl *acl, const char *filter)
{
	for(; acl; acl = acl->next){
		if(strcmp(acl->topic, filter) == 0){
			return acl;
		}
	}
	return NULL;
}

static const struct role_acl *first_covering(const struct role_acl *acl, const char *filter)
{
	for(; acl; acl = acl->next){
		if(topic_filter_covers(acl->topic, filter)){
			return acl;
		}
	}
	return NULL;
}

static bool decide(const struct role_acl *acl, bool default_allow)
{
	return acl ? acl->allow : default_allow;
}

static bool subscription_allows(const struct role *role, enum acl_type literal, enum acl_type pattern,
		const char *filter, bool default_allow)
{
	const struct role_acl *acl = first_literal(role->acls[literal], filter);
	if(acl == NULL){
		acl = first_covering(role->acls[pattern], filter);
	}
	return decide(acl, default_allow);
}

/* "$share/<group>/<filter>" grants read what <filter> covers: the broker
 * checks a shared subscription's filter whole, but its deliveries by the
 * message's own topic. NULL for a filter that is not shared. */
static const char *shared_filter(const char *filter)
{
	if(strncmp(filter, "$share/", 7) != 0){
		return NULL;
	}
	const char *slash = strchr(filter + 7, '/');
	return slash ? slash + 1 : NULL;
}

static const struct role_acl *first_shared_covering(const struct role_acl *acl, const char *topic)
{
	for(; acl; acl = acl->next){
		const char *filter = shared_filter(acl->topic);
		if(filter && topic_filter_covers(filter, topic)){
			return acl;
		}
	}
	return NULL;
}

/* Would the role let the session subscribe to this topic? The broker
 * delivers to whatever subscriptions a session holds, including ones it
 * never asked for (taken over with another client's session) or that a
 * role change has withdrawn since; so every delivery asks again. Literal
 * ACLs come first, as for a subscribe: one equal to the topic, else the
 * patterns by priority, else a literal wildcard filter that matches it
 * (so that a literal grant of "a/#" still receives "a/b"), else a grant
 * of a shared subscription whose filter covers it. */
static bool subscribe_grant_covers(const struct role *role, const char *topic)
{
	const struct role_acl *acl = first_literal(role->acls[ACL_SUBSCRIBE_LITERAL], topic);
	if(acl == NULL){
		acl = first_covering(role->acls[ACL_SUBSCRIBE_PATTERN], topic);
	}
	if(acl == NULL){
		acl = first_matching_topic(role->acls[ACL_SUBSCRIBE_LITERAL], topic);
	}
	if(acl == NULL){
		acl = first_shared_covering(role->acls[ACL_SUBSCRIBE_PATTERN], topic);
	}
	if(acl == NULL){
		acl = first_shared_covering(role->acls[ACL_SUBSCRIBE_LITERAL], topic);
	}
	return decide(acl, false);
}

static bool receive_allowed(const struct role *role, const char *topic)
{
	return subscribe_grant_covers(role, topic)
		&& decide(first_matching_topic(role->acls[ACL_PUBLISH_CLIENT_RECEIVE], topic), true);
}

bool acl_allows_http_api(const struct role *role, const char *path)
{
	return decide(first_matching_topic(role->acls[ACL_PUBLISH_CLIENT_RECEIVE], path), false);
}

bool acl_topic_is_valid(const char *topic, enum acl_topic_origin origin)
{
	if(origin == ACL_TOPIC_NEW){
		size_t length = strlen(topic);
		if(length == 0 || length > ACL_TOPIC_MAX_BYTES
				|| mosquitto_validate_utf8(topic, (int)length) != MOSQ_ERR_SUCCESS){
			return false;
		}
	}
	return mosquitto_sub_topic_check(topic) == MOSQ_ERR_SUCCESS;
}

bool acl_allows(const struct role *role, int access, const char *topic)
{
	switch(access){
		case MOSQ_ACL_WRITE:
			return decide(first_matching_topic(role->acls[ACL_PUBLISH_CLIENT_SEND], topic), false);
		case MOSQ_ACL_READ:
			return receive_allowed(role, topic);
		case MOSQ_ACL_SUBSCRIBE:
			return subscription_allows(role, ACL_SUBSCRIBE_LITERAL, ACL_SUBSCRIBE_PATTERN, topic, false);
		case MOSQ_ACL_UNSUBSCRIBE:
			return subscription_allows(role, ACL_UNSUBSCRIBE_LITERAL, ACL_UNSUBSCRIBE_PATTERN, topic, true);
		default:
			return false;
	}
}
