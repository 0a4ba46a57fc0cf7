/*
 * An API call's control command and its answer (see api_command.h). The
 * console adds no rights and keeps no secret: the command goes out with
 * the caller's token, and the reply's text is wiped once parsed.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "api_command.h"
#include "http_reply.h"

cJSON *api_command_named(const char *name)
{
	cJSON *command = cJSON_CreateObject();
	if(command && cJSON_AddStringToObject(command, "command", name) == NULL){
		cJSON_Delete(command);
		return NULL;
	}
	return command;
}

bool api_add_query(const struct api_request *request, cJSON *command, const char *key, bool numeric)
{
	const char *value = MHD_lookup_connection_value(request->connection, MHD_GET_ARGUMENT_KIND, key);
	if(value == NULL){
		return true;
	}
	if(!numeric){
		return cJSON_AddStringToObject(command, key, value) != NULL;
	}
	char *end;
	double number = strtod(value, &end);
	return end != value && *end == '\0' && cJSON_AddNumberToObject(command, key, number) != NULL;
}

/* Each escaped NUL becomes a 0xFF byte, never valid UTF-8. In place: the
 * text only gets shorter. Returns the new length. */
static size_t mark_escaped_nuls(char *text, size_t length)
{
	bool in_string = false;
	size_t out = 0;
	for(size_t i = 0; i < length; i++){
		char c = text[i];
		if(in_string && c == '\\' && i + 1 < length){
			if(i + 5 < length && text[i + 1] == 'u' && memcmp(text + i + 2, "0000", 4) == 0){
				text[out++] = '\xff';
				i += 5;
			}else{
				text[out++] = c;
				text[out++] = text[++i];
			}
			continue;
		}
		if(c == '"'){
			in_string = !in_string;
		}
		text[out++] = c;
	}
	return out;
}

/* A raw NUL is not JSON and would end a string early in cJSON, as the
 * control topic refuses one too. */
cJSON *api_parse_body(const struct api_request *request)
{
	if(request->body == NULL || memchr(request->body, '\0', request->body_length) != NULL){
		return NULL;
	}
	char *text = malloc(request->body_length + 1);
	if(text == NULL){
		return NULL;
	}
	memcpy(text, request->body, request->body_length);
	size_t length = mark_escaped_nuls(text, request->body_length);
	text[length] = '\0';
	/* Nothing but white space may follow the value ('{...} trailing' is
	 * not JSON): cJSON checks that only up to a NUL within the length. */
	cJSON *body = cJSON_ParseWithLengthOpts(text, length + 1, NULL, true);
	OPENSSL_cleanse(text, request->body_length);
	free(text);
	return body;
}

static bool take_fields(cJSON *body, cJSON *command, const char *const *fields)
{
	for(size_t i = 0; fields[i]; i++){
		cJSON *field = cJSON_DetachItemFromObjectCaseSensitive(body, fields[i]);
		if(field && !cJSON_AddItemToObject(command, fields[i], field)){
			cJSON_Delete(field);
			return false;
		}
	}
	return true;
}

enum MHD_Result api_out_of_memory(const struct api_request *request)
{
	return reply_error(request->connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "Out of memory");
}

cJSON *api_command_from_body(const struct api_request *request, const char *name, const char *const *fields,
		bool optional, const char *expected, enum MHD_Result *result)
{
	bool absent = request->body == NULL || request->body_length == 0;
	cJSON *body = optional && absent ? cJSON_CreateObject() : api_parse_body(request);
	if(body == NULL && optional && absent){
		*result = api_out_of_memory(request);
		return NULL;
	}
	if(!cJSON_IsObject(body)){
		cJSON_Delete(body);
		*result = reply_error(request->connection, MHD_HTTP_BAD_REQUEST, "invalid", expected);
		return NULL;
	}
	cJSON *command = api_command_named(name);
	if(command == NULL || !take_fields(body, command, fields)){
		cJSON_Delete(body);
		cJSON_Delete(command);
		*result = api_out_of_memory(request);
		return NULL;
	}
	cJSON_Delete(body);
	return command;
}

static unsigned status_of_code(const char *code)
{
	if(strcmp(code, "notFound") == 0) return MHD_HTTP_NOT_FOUND;
	/* Both are a conflict with what the store holds: a taken name, a role
	 * still in use. */
	if(strcmp(code, "exists") == 0 || strcmp(code, "inUse") == 0) return MHD_HTTP_CONFLICT;
	return MHD_HTTP_BAD_REQUEST;
}

/* The seed console's scripts read `issueDate`. It goes right after
 * `issuedAt`, for a reader of the JSON: added last, then the members
 * between them moved behind it (names stay with the items). False when
 * out of memory. */
static bool add_issue_date(cJSON *token)
{
	cJSON *issued = cJSON_GetObjectItemCaseSensitive(token, "issuedAt");
	if(!cJSON_IsString(issued) || cJSON_GetObjectItemCaseSensitive(token, "issueDate")){
		return true;
	}
	cJSON *copy = cJSON_CreateString(issued->valuestring);
	if(copy == NULL || !cJSON_AddItemToObject(token, "issueDate", copy)){
		cJSON_Delete(copy);
		return false;
	}
	for(cJSON *member = issued->next; member != copy; ){
		cJSON *next = member->next;
		cJSON_AddItemToArray(token, cJSON_DetachItemViaPointer(token, member));
		member = next;
	}
	return true;
}

/* The data of a token command: one token object, or a page of them. */
static bool add_issue_dates(cJSON *data)
{
	cJSON *tokens = cJSON_GetObjectItemCaseSensitive(data, "tokens");
	if(!cJSON_IsArray(tokens)){
		return add_issue_date(data);
	}
	cJSON *token;
	cJSON_ArrayForEach(token, tokens){
		if(!add_issue_date(token)){
			return false;
		}
	}
	return true;
}

static enum MHD_Result answer_reply(struct MHD_Connection *connection, cJSON *reply, unsigned success_status)
{
	const cJSON *response = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "responses"), 0);
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(response, "error");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(response, "code");
	if(!cJSON_IsObject(response)){
		return reply_error(connection, MHD_HTTP_BAD_GATEWAY, "internal", "The broker's answer is not a tokens reply");
	}
	if(cJSON_IsString(error)){
		const char *code_text = cJSON_IsString(code) ? code->valuestring : "internal";
		return reply_error(connection, status_of_code(code_text), code_text, error->valuestring);
	}
	cJSON *data = cJSON_GetObjectItemCaseSensitive(response, "data");
	if(data == NULL){
		return reply_text(connection, success_status, "application/json", "{}", sizeof("{}") - 1, true);
	}
	if(!add_issue_dates(data)){
		return reply_error(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "Out of memory");
	}
	return reply_json(connection, success_status, data);
}

/* {"commands": [command]} as text, or NULL; the command is taken. */
static char *request_text(cJSON *command)
{
	cJSON *request = cJSON_CreateObject();
	cJSON *commands = cJSON_AddArrayToObject(request, "commands");
	char *payload = NULL;
	if(command && commands && cJSON_AddItemToArray(commands, command)){
		payload = cJSON_PrintUnformatted(request);
	}else{
		cJSON_Delete(command);
	}
	cJSON_Delete(request);
	return payload;
}

static enum MHD_Result answer_outcome(struct MHD_Connection *connection, enum broker_outcome outcome)
{
	switch(outcome){
		case BROKER_REFUSED_LOGIN:
			return reply_error(connection, MHD_HTTP_UNAUTHORIZED, "unauthorized", "The broker refused this token");
		case BROKER_FORBIDDEN:
			return reply_error(connection, MHD_HTTP_FORBIDDEN, "forbidden",
					"This token's role may not use the control topic");
		case BROKER_UNREACHABLE:
			return reply_error(connection, MHD_HTTP_BAD_GATEWAY, "unreachable", "The broker cannot be reached");
		case BROKER_TIMEOUT:
			return reply_error(connection, MHD_HTTP_GATEWAY_TIMEOUT, "timeout", "The broker did not answer in time");
		default:
			return reply_error(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
					"The console could not send the request");
	}
}

enum MHD_Result api_answer(const struct api_request *request, cJSON *command, unsigned success_status)
{
	char *payload = request_text(command);
	if(payload == NULL){
		return reply_error(request->connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "Out of memory");
	}
	char *reply_text_in = NULL;
	enum broker_outcome outcome = broker_pool_request(request->console->pool, request->token, payload,
			&reply_text_in);
	OPENSSL_cleanse(payload, strlen(payload));
	cJSON_free(payload);
	if(outcome != BROKER_REPLIED){
		return answer_outcome(request->connection, outcome);
	}
	cJSON *reply = cJSON_Parse(reply_text_in);
	OPENSSL_cleanse(reply_text_in, strlen(reply_text_in));
	free(reply_text_in);
	enum MHD_Result result = answer_reply(request->connection, reply, success_status);
	cJSON_Delete(reply);
	return result;
}
