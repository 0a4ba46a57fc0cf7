/*
 * The role endpoints: list, get, create and delete a role, add and remove
 * one of its ACLs. The role name comes from the path, percent-decoded
 * (api_path.h); a body's own "rolename" is ignored there. The plugin
 * checks every name, ACL and field.
 */
#include "api_routes.h"
#include "http_reply.h"

enum MHD_Result roles_list(const struct api_request *request, const char *name)
{
	(void)name;
	cJSON *command = api_command_named("listRoles");
	return command ? api_answer(request, command, MHD_HTTP_OK) : api_out_of_memory(request);
}

enum MHD_Result roles_create(const struct api_request *request, const char *name)
{
	(void)name;
	static const char *const fields[] = {"rolename", "acls", NULL};
	enum MHD_Result result;
	cJSON *command = api_command_from_body(request, "createRole", fields, false,
			"The body must be a JSON object with rolename (and optionally acls)", &result);
	return command ? api_answer(request, command, MHD_HTTP_CREATED) : result;
}

/* Adds the path's role name to a command made (or not: NULL) before. */
static enum MHD_Result answer_for_role(const struct api_request *request, cJSON *command, const char *rolename,
		unsigned success_status)
{
	if(command == NULL || cJSON_AddStringToObject(command, "rolename", rolename) == NULL){
		cJSON_Delete(command);
		return api_out_of_memory(request);
	}
	return api_answer(request, command, success_status);
}

enum MHD_Result roles_get(const struct api_request *request, const char *rolename)
{
	return answer_for_role(request, api_command_named("getRole"), rolename, MHD_HTTP_OK);
}

enum MHD_Result roles_delete(const struct api_request *request, const char *rolename)
{
	return answer_for_role(request, api_command_named("deleteRole"), rolename, MHD_HTTP_OK);
}

enum MHD_Result roles_add_acl(const struct api_request *request, const char *rolename)
{
	static const char *const fields[] = {"acltype", "topic", "priority", "allow", NULL};
	enum MHD_Result result;
	cJSON *command = api_command_from_body(request, "addRoleACL", fields, false,
			"The body must be an ACL object: acltype, topic, allow (and optionally priority)", &result);
	return command ? answer_for_role(request, command, rolename, MHD_HTTP_CREATED) : result;
}

enum MHD_Result roles_remove_acl(const struct api_request *request, const char *rolename)
{
	static const char *const fields[] = {"acltype", "topic", NULL};
	enum MHD_Result result;
	cJSON *command = api_command_from_body(request, "removeRoleACL", fields, false,
			"The body must be a JSON object with acltype and topic", &result);
	return command ? answer_for_role(request, command, rolename, MHD_HTTP_OK) : result;
}
