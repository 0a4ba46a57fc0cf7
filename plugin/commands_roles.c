/*
 * Role commands: createRole, getRole, listRoles, deleteRole, addRoleACL,
 * removeRoleACL. ACLs have the dynamic-security plugin's shape.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "command.h"
#include "fields.h"
#include "metadata_json.h"

static struct role *find_target_role(struct command_context *context)
{
	const char *name;
	if(!field_string(context, "rolename", &name)){
		return NULL;
	}
	struct role *role = store_find_role(&context->plugin->store, name);
	if(role == NULL){
		command_fail(context, CODE_NOT_FOUND, "Role not found");
	}
	return role;
}

static bool acl_type_field(struct command_context *context, const cJSON *object, enum acl_type *type)
{
	const char *name;
	if(!field_string_in(context, object, "acltype", &name)){
		return false;
	}
	if(!acl_type_from_name(name, type)){
		return command_fail(context, CODE_INVALID, "Field 'acltype' must be one of publishClientSend, "
				"publishClientReceive, subscribeLiteral, subscribePattern, unsubscribeLiteral, unsubscribePattern");
	}
	return true;
}

static bool topic_field(struct command_context *context, const cJSON *object, const char **topic)
{
	if(!field_string_in(context, object, "topic", topic)){
		return false;
	}
	size_t length = strlen(*topic);
	int64_t max_bytes = context->plugin->limits.topic_bytes;
	if(max_bytes && (int64_t)length > max_bytes){
		return command_fail(context, CODE_LIMIT, "Field 'topic' is longer than %lld bytes", (long long)max_bytes);
	}
	if(!acl_topic_is_valid(*topic, ACL_TOPIC_NEW)){
		return command_fail(context, CODE_INVALID, "Field 'topic' must be a valid MQTT topic filter");
	}
	return true;
}

/* Reads {acltype, topic, priority?, allow} into a new ACL; NULL on error. */
static struct role_acl *acl_from_object(struct command_context *context, const cJSON *object)
{
	enum acl_type type;
	const char *topic;
	int64_t priority = 0;
	bool allow;

	if(!acl_type_field(context, object, &type)
			|| !topic_field(context, object, &topic)
			|| !field_optional_int_in(context, object, "priority", INT_MIN, INT_MAX, &priority)
			|| !field_bool_in(context, object, "allow", &allow)){
		return NULL;
	}
	struct role_acl *acl = role_acl_new(type, topic, (int)priority, allow);
	if(acl == NULL){
		command_fail(context, CODE_INTERNAL, "Out of memory");
	}
	return acl;
}

static bool acl_room(struct command_context *context, const struct role *role, size_t adding)
{
	int64_t max_acls = context->plugin->limits.acls_per_role;
	if(max_acls && (int64_t)(role->acl_count + adding) > max_acls){
		return command_fail(context, CODE_LIMIT, "A role may hold at most %lld ACLs", (long long)max_acls);
	}
	return true;
}

static bool add_acls_from_array(struct command_context *context, struct role *role, const cJSON *acls)
{
	const cJSON *item;
	if(!acl_room(context, role, (size_t)cJSON_GetArraySize(acls))){
		return false;
	}
	cJSON_ArrayForEach(item, acls){
		if(!cJSON_IsObject(item)){
			return command_fail(context, CODE_INVALID, "Field 'acls' must hold ACL objects");
		}
		struct role_acl *acl = acl_from_object(context, item);
		if(acl == NULL){
			return false;
		}
		if(role_find_acl(role, acl->type, acl->topic)){
			command_fail(context, CODE_INVALID, "Field 'acls' has two %s ACLs for topic '%s'",
					acl_type_name(acl->type), acl->topic);
			role_acl_free(acl);
			return false;
		}
		role_link_acl(role, acl);
	}
	return true;
}

void command_create_role(struct command_context *context)
{
	struct store *store = &context->plugin->store;
	const char *name;
	if(!field_name(context, "rolename", ROLENAME_MAX_CHARS, &name)){
		return;
	}
	const cJSON *acls = NULL;
	if(!field_optional_array(context, "acls", &acls)){
		return;
	}
	if(store_find_role(store, name)){
		command_fail(context, CODE_EXISTS, "Role already exists");
		return;
	}
	struct role *role = role_new(name);
	if(role == NULL){
		command_fail(context, CODE_INTERNAL, "Out of memory");
		return;
	}
	if(!add_acls_from_array(context, role, acls)){
		role_free(role);
		return;
	}
	struct change change = change_create_role(role);
	if(command_apply(context, &change)){
		command_log_change(context, "rolename=%s acls=%zu", role->name, role->acl_count);
	}
	change_release(&change);
}

void command_get_role(struct command_context *context)
{
	struct role *role = find_target_role(context);
	if(role){
		command_reply(context, role_to_json(role));
	}
}

/* Bytes the role takes in a reply; false when it would pass the room. */
static bool fits(cJSON *item, int64_t room, int64_t *used)
{
	if(room == 0){
		return true;
	}
	char *text = cJSON_PrintUnformatted(item);
	*used += text ? (int64_t)strlen(text) + 1 : room + 1;
	free(text);
	return *used <= room;
}

void command_list_roles(struct command_context *context)
{
	size_t count;
	struct role **roles = store_sorted_roles(&context->plugin->store, &count);
	cJSON *data = cJSON_CreateObject();
	cJSON *list = cJSON_AddArrayToObject(data, "roles");
	bool ok = roles && list && cJSON_AddNumberToObject(data, "totalCount", (double)count);
	bool too_large = false;
	int64_t used = 0, room = context->reply_room > 128 ? context->reply_room - 128 : context->reply_room ? 1 : 0;
	for(size_t i = 0; ok && i < count; i++){
		cJSON *item = role_to_json(roles[i]);
		too_large = item && !fits(item, room, &used);
		ok = item && !too_large && cJSON_AddItemToArray(list, item);
		if(!ok) cJSON_Delete(item);
	}
	free(roles);
	if(!ok){
		cJSON_Delete(data);
		data = NULL;
	}
	if(too_large){
		command_fail(context, CODE_LIMIT, "The roles would make the reply larger than plugin_opt_max_reply_bytes "
				"allows: read them one at a time with getRole");
		return;
	}
	command_reply(context, data);
}

void command_delete_role(struct command_context *context)
{
	struct role *role = find_target_role(context);
	if(role == NULL){
		return;
	}
	if(role->token_count > 0){
		command_fail(context, CODE_IN_USE, "Role is used by %zu token%s; revoke them first",
				role->token_count, role->token_count == 1 ? "" : "s");
		return;
	}
	struct change change = change_delete_role(role);
	if(command_apply(context, &change)){
		command_log_change(context, "rolename=%s", role->name);
	}
	change_release(&change);
}

void command_add_role_acl(struct command_context *context)
{
	struct role *role = find_target_role(context);
	if(role == NULL){
		return;
	}
	if(!acl_room(context, role, 1)){
		return;
	}
	struct role_acl *acl = acl_from_object(context, context->command);
	if(acl == NULL){
		return;
	}
	if(role_find_acl(role, acl->type, acl->topic)){
		command_fail(context, CODE_EXISTS, "The role already has a %s ACL for this topic", acl_type_name(acl->type));
		role_acl_free(acl);
		return;
	}
	struct change change = change_add_role_acl(role, acl);
	if(command_apply(context, &change)){
		command_log_change(context, "rolename=%s acltype=%s topic=%s priority=%d allow=%s",
				role->name, acl_type_name(acl->type), acl->topic, acl->priority, acl->allow ? "true" : "false");
	}
	change_release(&change);
}

void command_remove_role_acl(struct command_context *context)
{
	enum acl_type type;
	const char *topic;
	struct role *role = find_target_role(context);
	if(role == NULL
			|| !acl_type_field(context, context->command, &type)
			|| !field_string(context, "topic", &topic)){
		return;
	}
	struct role_acl *acl = role_find_acl(role, type, topic);
	if(acl == NULL){
		command_fail(context, CODE_NOT_FOUND, "ACL not found");
		return;
	}
	struct change change = change_remove_role_acl(role, acl);
	if(command_apply(context, &change)){
		command_log_change(context, "rolename=%s acltype=%s topic=%s", role->name, acl_type_name(type), topic);
	}
	change_release(&change);
}
