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

/* Which placeholder a whole level is (SPEC section 3), or -1. */
static int placeholder_of(const char *level, size_t length)
{
	if(length != 2 || level[0] != '%'){
		return -1;
	}
	switch(level[1]){
		case 't': return ACL_SUBJECT_TOKEN_NAME;
		case 'c': return ACL_SUBJECT_CLIENT_ID;
		case 'u': return ACL_SUBJECT_USERNAME;
		default: return -1;
	}
}

bool acl_topic_has_placeholder(const char *topic)
{
	for(const char *level = topic;;){
		size_t length = level_length(level);
		if(placeholder_of(level, length) >= 0){
			return true;
		}
		if(!next_level(&level, length)){
			return false;
		}
	}
}

/* A value that can stand for a level: not empty, and no '/', '+' or '#'
 * (which would let a client choose a name that reaches other levels or
 * matches like a wildcard). */
static void set_value(struct acl_subject *subject, int kind, const char *value)
{
	bool usable = value && value[0] != '\0' && strpbrk(value, "/+#") == NULL;
	subject->value[kind] = usable ? value : NULL;
	subject->length[kind] = usable ? strlen(value) : 0;
}

void acl_subject_init(struct acl_subject *subject, const char *token_name, const char *client_id,
		const char *username)
{
	set_value(subject, ACL_SUBJECT_TOKEN_NAME, token_name);
	set_value(subject, ACL_SUBJECT_CLIENT_ID, client_id);
	set_value(subject, ACL_SUBJECT_USERNAME, username);
}

static bool ends_level(char c)
{
	return c == '/' || c == '\0';
}

static bool is_whole_level(const char *level, char c)
{
	return level[0] == c && ends_level(level[1]);
}

/* Moves both cursors past a granted level of plain text or a placeholder
 * (which needs a subject with that value) and the requested level, if
 * they are equal as text; false if not. */
static bool pass_equal_level(const char **granted, const char **requested, const struct acl_subject *subject)
{
	const char *g = *granted, *r = *requested;
	int kind = g[0] == '%' && g[1] != '\0' && ends_level(g[2]) ? placeholder_of(g, 2) : -1;
	if(kind >= 0){
		const char *value = subject ? subject->value[kind] : NULL;
		size_t length = subject ? subject->length[kind] : 0;
		if(value == NULL || strncmp(r, value, length) != 0 || !ends_level(r[length])){
			return false;
		}
		*granted = g + 2;
		*requested = r + length;
		return true;
	}
	while(!ends_level(*g) && *g == *r){
		g++;
		r++;
	}
	if(!ends_level(*g) || !ends_level(*r)){
		return false;
	}
	*granted = g;
	*requested = r;
	return true;
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

/* MQTT: a filter starting with a wildcard does not match "$" topics. Nor
 * does one starting with a placeholder: a client that names itself
 * "$CONTROL" must not reach the control topic through "%c/#". */
static bool reaches_dollar_topic(const char *granted)
{
	return granted[0] == '+' || granted[0] == '#' || placeholder_of(granted, level_length(granted)) >= 0;
}

/* The rule above, for a requested "$" filter, also inside a shared
 * subscription: "$share/g/%c/#" must not grant "$share/g/$CONTROL/#". */
static bool dollar_guarded(const char *granted, const char *requested)
{
	if(requested[0] != '$'){
		return false;
	}
	if(reaches_dollar_topic(granted)){
		return true;
	}
	const char *shared_requested = shared_filter(requested), *shared_granted = shared_filter(granted);
	return shared_requested && shared_granted && shared_requested[0] == '$' && reaches_dollar_topic(shared_granted);
}

/* One pass over both filters, level by level; no level is measured
 * twice, since this runs for every ACL a check walks. */
static bool covers(const char *granted, const char *requested, const struct acl_subject *subject)
{
	if(dollar_guarded(granted, requested)){
		return false;
	}
	const char *g = granted, *r = requested;
	for(;;){
		if(is_whole_level(g, '#')){
			return true;
		}
		if(is_whole_level(r, '#')){
			return false;   /* only "#" covers "#" */
		}
		if(is_whole_level(g, '+')){
			g++;
			while(!ends_level(*r)) r++;
		}else if(is_whole_level(r, '+') || !pass_equal_level(&g, &r, subject)){
			return false;
		}
		if(*r == '\0'){
			/* "a/#" also matches "a" itself. */
			return *g == '\0' || strcmp(g, "/#") == 0;
		}
		if(*g == '\0'){
			return false;
		}
		g++;
		r++;
	}
}

bool topic_filter_covers(const char *granted, const char *requested)
{
	return covers(granted, requested, NULL);
}

/* A literal ACL with placeholders equals the requested filter once they
 * are substituted. */
static bool literal_equals(const char *granted, const char *requested, const struct acl_subject *subject)
{
	if(dollar_guarded(granted, requested)){
		return false;
	}
	const char *g = granted, *r = requested;
	for(;;){
		if(!pass_equal_level(&g, &r, subject) || *g != *r){
			return false;
		}
		if(*g == '\0'){
			return true;
		}
		g++;
		r++;
	}
}

static bool acl_matches_topic(const struct role_acl *acl, const char *topic, const struct acl_subject *subject)
{
	if(acl->has_placeholder){
		return covers(acl->topic, topic, subject);
	}
	bool matches = false;
	return mosquitto_topic_matches_sub(acl->topic, topic, &matches) == MOSQ_ERR_SUCCESS && matches;
}

static const struct role_acl *first_matching_topic(const struct role_acl *acl, const char *topic,
		const struct acl_subject *subject)
{
	for(; acl; acl = acl->next){
		if(acl_matches_topic(acl, topic, subject)){
			return acl;
		}
	}
	return NULL;
}

static const struct role_acl *first_literal(const struct role_acl *acl, const char *filter,
		const struct acl_subject *subject)
{
	for(; acl; acl = acl->next){
		if(acl->has_placeholder ? literal_equals(acl->topic, filter, subject) : strcmp(acl->topic, filter) == 0){
			return acl;
		}
	}
	return NULL;
}

static const struct role_acl *first_covering(const struct role_acl *acl, const char *filter,
		const struct acl_subject *subject)
{
	for(; acl; acl = acl->next){
		if(covers(acl->topic, filter, subject)){
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
		const char *filter, const struct acl_subject *subject, bool default_allow)
{
	const struct role_acl *acl = first_literal(role->acls[literal], filter, subject);
	if(acl == NULL){
		acl = first_covering(role->acls[pattern], filter, subject);
	}
	return decide(acl, default_allow);
}

static const struct role_acl *first_shared_covering(const struct role_acl *acl, const char *topic,
		const struct acl_subject *subject)
{
	for(; acl; acl = acl->next){
		const char *filter = shared_filter(acl->topic);
		if(filter && covers(filter, topic, subject)){
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
static bool subscribe_grant_covers(const struct role *role, const char *topic, const struct acl_subject *subject)
{
	const struct role_acl *acl = first_literal(role->acls[ACL_SUBSCRIBE_LITERAL], topic, subject);
	if(acl == NULL){
		acl = first_covering(role->acls[ACL_SUBSCRIBE_PATTERN], topic, subject);
	}
	if(acl == NULL){
		acl = first_matching_topic(role->acls[ACL_SUBSCRIBE_LITERAL], topic, subject);
	}
	if(acl == NULL){
		acl = first_shared_covering(role->acls[ACL_SUBSCRIBE_PATTERN], topic, subject);
	}
	if(acl == NULL){
		acl = first_shared_covering(role->acls[ACL_SUBSCRIBE_LITERAL], topic, subject);
	}
	return decide(acl, false);
}

static bool receive_allowed(const struct role *role, const char *topic, const struct acl_subject *subject)
{
	return subscribe_grant_covers(role, topic, subject)
		&& decide(first_matching_topic(role->acls[ACL_PUBLISH_CLIENT_RECEIVE], topic, subject), true);
}

bool acl_allows_http_api(const struct role *role, const char *path, const struct acl_subject *subject)
{
	return decide(first_matching_topic(role->acls[ACL_PUBLISH_CLIENT_RECEIVE], path, subject), false);
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

bool acl_allows(const struct role *role, int access, const char *topic, const struct acl_subject *subject)
{
	switch(access){
		case MOSQ_ACL_WRITE:
			return decide(first_matching_topic(role->acls[ACL_PUBLISH_CLIENT_SEND], topic, subject), false);
		case MOSQ_ACL_READ:
			return receive_allowed(role, topic, subject);
		case MOSQ_ACL_SUBSCRIBE:
			return subscription_allows(role, ACL_SUBSCRIBE_LITERAL, ACL_SUBSCRIBE_PATTERN, topic, subject, false);
		case MOSQ_ACL_UNSUBSCRIBE:
			return subscription_allows(role, ACL_UNSUBSCRIBE_LITERAL, ACL_UNSUBSCRIBE_PATTERN, topic, subject, true);
		default:
			return false;
	}
}
