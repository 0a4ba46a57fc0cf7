/*
 * Token and role metadata as the protocol shows it. See
 * plugin/metadata_json.h. Used by the replies (commands_tokens.c,
 * commands_roles.c), the events (events.c) and the state file's writers
 * (state_format.c's token lines, the role and ACL lines of the snapshot
 * and the journal).
 */
#include "metadata_json.h"
#include "rfc3339.h"

cJSON *metadata_add_time(cJSON *object, const char *key, int64_t seconds)
{
	char text[RFC3339_LEN + 1];
	rfc3339_format(seconds, text);
	return cJSON_AddStringToObject(object, key, text);
}

cJSON *token_to_json(const struct token *token)
{
	char hash_hex[TOKEN_HASH_HEX_LEN + 1];
	cJSON *object = cJSON_CreateObject();

	token_format_hash_to_hex(token->hash, hash_hex);
	if(object == NULL
			|| !cJSON_AddStringToObject(object, "name", token->name)
			|| !cJSON_AddStringToObject(object, "role", token->role->name)
			|| !cJSON_AddStringToObject(object, "requestedBy", token->requested_by)
			|| !metadata_add_time(object, "issuedAt", token->issued_at)
			|| !metadata_add_time(object, "validUntil", token->valid_until)
			|| !(token->last_used == TIME_NEVER
				? cJSON_AddNullToObject(object, "lastUsed")
				: metadata_add_time(object, "lastUsed", token->last_used))
			|| !cJSON_AddStringToObject(object, "hash", hash_hex)
			|| (token->client_id && !cJSON_AddStringToObject(object, "clientId", token->client_id))){
		cJSON_Delete(object);
		return NULL;
	}
	return object;
}

cJSON *role_acl_to_json(const struct role_acl *acl)
{
	cJSON *object = cJSON_CreateObject();
	if(object == NULL
			|| !cJSON_AddStringToObject(object, "acltype", acl_type_name(acl->type))
			|| !cJSON_AddStringToObject(object, "topic", acl->topic)
			|| !cJSON_AddNumberToObject(object, "priority", acl->priority)
			|| !cJSON_AddBoolToObject(object, "allow", acl->allow)){
		cJSON_Delete(object);
		return NULL;
	}
	return object;
}

cJSON *role_to_json(const struct role *role)
{
	cJSON *object = cJSON_CreateObject();
	cJSON *acls = cJSON_CreateArray();
	if(object == NULL || acls == NULL
			|| !cJSON_AddStringToObject(object, "rolename", role->name)
			|| !cJSON_AddItemToObject(object, "acls", acls)){
		cJSON_Delete(object);
		cJSON_Delete(acls);
		return NULL;
	}
	for(int type = 0; type < ACL_TYPE_COUNT; type++){
		for(const struct role_acl *acl = role->acls[type]; acl; acl = acl->next){
			cJSON *item = role_acl_to_json(acl);
			if(item == NULL || !cJSON_AddItemToArray(acls, item)){
				cJSON_Delete(item);
				cJSON_Delete(object);
				return NULL;
			}
		}
	}
	return object;
}
