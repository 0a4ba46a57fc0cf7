/*
 * The control protocol's request loop: parse the payload, run each command
 * through the table below, collect one response per command. The table is
 * where a reader starts; a new command is one row and one handler.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mosquitto.h>
#include <openssl/crypto.h>

#include "command.h"
#include "control.h"
#include "fields.h"
#include "fleet_member.h"
#include "journal.h"

static const struct {
	const char *name;
	command_handler handler;
} commands[] = {
	{"createToken", command_create_token},
	{"listTokens", command_list_tokens},
	{"getToken", command_get_token},
	{"revokeToken", command_revoke_token},
	{"rotateToken", command_rotate_token},
	{"createRole", command_create_role},
	{"getRole", command_get_role},
	{"listRoles", command_list_roles},
	{"deleteRole", command_delete_role},
	{"addRoleACL", command_add_role_acl},
	{"removeRoleACL", command_remove_role_acl},
};

static const char *const code_names[] = {
	[CODE_INVALID] = "invalid",
	[CODE_NOT_FOUND] = "notFound",
	[CODE_EXISTS] = "exists",
	[CODE_IN_USE] = "inUse",
	[CODE_LIMIT] = "limit",
	[CODE_STORAGE] = "storage",
	[CODE_INTERNAL] = "internal",
};

bool command_fail(struct command_context *context, enum command_code code, const char *format, ...)
{
	char message[512];
	va_list args;
	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);

	if(!context->failed){
		context->failed = true;
		cJSON_DeleteItemFromObjectCaseSensitive(context->response, "data");
		cJSON_AddStringToObject(context->response, "error", message);
		cJSON_AddStringToObject(context->response, "code", code_names[code]);
	}
	return false;
}

void command_reply(struct command_context *context, cJSON *data)
{
	if(data == NULL){
		command_fail(context, CODE_INTERNAL, "Out of memory");
		return;
	}
	if(!cJSON_AddItemToObject(context->response, "data", data)){
		cJSON_Delete(data);
		command_fail(context, CODE_INTERNAL, "Out of memory");
	}
}

bool command_apply(struct command_context *context, struct change *change)
{
	struct tokens_plugin *plugin = context->plugin;
	char error[512];
	cJSON *line = journal_encode(change);
	if(line == NULL){
		return command_fail(context, CODE_INTERNAL, "Out of memory");
	}
	/* Whatever may run out of memory happens before the record. */
	if(!change_prepare(&plugin->store, change)){
		cJSON_Delete(line);
		return command_fail(context, CODE_INTERNAL, "Out of memory");
	}
	enum record_outcome outcome = tokens_plugin_record(plugin, line, error, sizeof(error));
	cJSON_Delete(line);
	if(outcome == RECORD_BEHIND){
		change_abort(&plugin->store, change);
		context->behind = true;
		return command_fail(context, CODE_STORAGE, "Other brokers of the fleet kept changing the store at the same "
				"moment; nothing was changed, try again");
	}
	if(outcome == RECORD_UNKNOWN){
		change_abort(&plugin->store, change);
		plugin->log(MOSQ_LOG_ERR, "tokens: %s", error);
		return command_fail(context, CODE_STORAGE, "The database did not answer in time (%s): the change may "
				"have been made or not, and if it was this broker applies it from the database's log; look "
				"before trying again", error);
	}
	if(outcome != RECORDED){
		change_abort(&plugin->store, change);
		plugin->log(MOSQ_LOG_ERR, "tokens: %s", error);
		return command_fail(context, CODE_STORAGE, "The change could not be saved, nothing was changed: %s", error);
	}
	tokens_plugin_commit(plugin, change);
	context->changed = true;
	return true;
}

void command_log_change(struct command_context *context, const char *format, ...)
{
	char details[512];
	va_list args;
	va_start(args, format);
	vsnprintf(details, sizeof(details), format, args);
	va_end(args);
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(context->command, "command");
	context->plugin->log(MOSQ_LOG_NOTICE, "tokens: %s | %s | %s",
			context->requester, name->valuestring, details);
}

static command_handler find_handler(const char *name)
{
	for(size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++){
		if(strcmp(commands[i].name, name) == 0){
			return commands[i].handler;
		}
	}
	return NULL;
}

static cJSON *error_response(const char *command, const char *code, const char *message)
{
	cJSON *response = cJSON_CreateObject();
	if(response){
		cJSON_AddStringToObject(response, "command", command);
		cJSON_AddStringToObject(response, "error", message);
		cJSON_AddStringToObject(response, "code", code);
	}
	return response;
}

/* The command's name and correlationData, echoed before any check so
 * that even a refused command can be matched. */
static void echo_identity(const cJSON *command, cJSON *response)
{
	const cJSON *name_item = cJSON_GetObjectItemCaseSensitive(command, "command");
	bool name_usable = cJSON_IsString(name_item) && !strchr(name_item->valuestring, FIELD_NUL_MARKER);
	cJSON_AddStringToObject(response, "command", name_usable ? name_item->valuestring : "Unknown command");
	const cJSON *correlation_item = cJSON_GetObjectItemCaseSensitive(command, "correlationData");
	if(cJSON_IsString(correlation_item) && !strchr(correlation_item->valuestring, FIELD_NUL_MARKER)){
		cJSON_AddStringToObject(response, "correlationData", correlation_item->valuestring);
	}
}

/* A fleet member whose change another member's beat: it applies what it
 * missed and runs the command again on the store as it is now. */
static void run_handler(struct command_context *context, command_handler handler)
{
	for(int attempt = 1;; attempt++){
		handler(context);
		if(!context->behind || attempt == FLEET_COMMAND_ATTEMPTS){
			return;
		}
		char error[1024];
		if(!fleet_member_catch_up(context->plugin, error, sizeof(error))){
			return;   /* the reply says storage */
		}
		cJSON *child;
		while((child = context->response->child) != NULL){
			cJSON_Delete(cJSON_DetachItemViaPointer(context->response, child));
		}
		echo_identity(context->command, context->response);
		context->failed = false;
		context->behind = false;
	}
}

/* Returns whether the command changed the store. */
static bool run_command(struct tokens_plugin *plugin, const char *requester, int64_t now,
		const cJSON *command, cJSON *response, int64_t reply_room)
{
	struct command_context context = {
		.plugin = plugin, .requester = requester, .now = now,
		.command = command, .response = response, .reply_room = reply_room,
	};
	const char *name;
	const char *correlation = NULL;

	echo_identity(command, response);
	if(!field_string(&context, "command", &name)
			|| !field_optional_string(&context, "correlationData", &correlation)){
		return false;
	}
	command_handler handler = find_handler(name);
	if(handler == NULL){
		command_fail(&context, CODE_INVALID, "Unknown command '%s'", name);
		return false;
	}
	run_handler(&context, handler);
	/* Here, once the handler is done with the change it applied. */
	if(persist_wants_snapshot(plugin->persist, &plugin->store)){
		tokens_plugin_fold(plugin);
	}
	return context.changed;
}

/* Copies the payload, replacing each escaped NUL inside a string with
 * FIELD_NUL_MARKER: cJSON would otherwise end the string there silently. */
static char *mark_escaped_nuls(const char *payload, size_t length, size_t *marked_length)
{
	char *copy = malloc(length + 1);
	if(copy == NULL){
		return NULL;
	}
	bool in_string = false;
	size_t out = 0;
	for(size_t i = 0; i < length; i++){
		char c = payload[i];
		if(in_string && c == '\\' && i + 1 < length){
			if(i + 5 < length && payload[i + 1] == 'u' && memcmp(payload + i + 2, "0000", 4) == 0){
				copy[out++] = FIELD_NUL_MARKER;
				i += 5;
			}else{
				copy[out++] = c;
				copy[out++] = payload[++i];
			}
			continue;
		}
		if(c == '"'){
			in_string = !in_string;
		}
		copy[out++] = c;
	}
	copy[out] = '\0';
	*marked_length = out;
	return copy;
}

/* A reply of one error response, for a request refused whole. */
static cJSON *refusal(const char *code, const char *message)
{
	cJSON *reply = cJSON_CreateObject();
	cJSON *responses = cJSON_AddArrayToObject(reply, "responses");
	if(responses == NULL || !cJSON_AddItemToArray(responses, error_response("Unknown command", code, message))){
		cJSON_Delete(reply);
		return NULL;
	}
	return reply;
}

/* The request as a document, or NULL when it is not JSON. */
static cJSON *parse_request(const char *payload, size_t payload_len)
{
	size_t marked_len = 0;
	/* A raw NUL byte is never valid JSON; cJSON would end the text there. */
	if(payload_len > 0 && memchr(payload, '\0', payload_len) != NULL){
		return NULL;
	}
	char *marked = mark_escaped_nuls(payload, payload_len, &marked_len);
	/* Nothing may follow the document (the +1 covers the NUL that proves it). */
	cJSON *request = marked ? cJSON_ParseWithLengthOpts(marked, marked_len + 1, NULL, true) : NULL;
	free(marked);
	return request;
}

/* How many bytes the response adds to the reply (with its comma). The
 * text may hold a new secret: wiped before it is freed. */
static int64_t response_size(const cJSON *response)
{
	char *text = cJSON_PrintUnformatted(response);
	size_t length = text ? strlen(text) : 0;
	int64_t size = text ? (int64_t)length + 1 : INT64_MAX;
	if(text){
		OPENSSL_cleanse(text, length);
	}
	free(text);
	return size;
}

/* Room kept for each command after the current one: its minimal refusal
 * (minimal_refusal below, with its comma) always fits. */
#define REFUSAL_BYTES 160

static void minimal_refusal(cJSON *response)
{
	while(response->child){
		cJSON_Delete(cJSON_DetachItemViaPointer(response, response->child));
	}
	cJSON_AddStringToObject(response, "command", "Unknown command");
	cJSON_AddStringToObject(response, "error", "The reply is full: this command was not run");
	cJSON_AddStringToObject(response, "code", code_names[CODE_LIMIT]);
}

/* An answer the reply has no room for is replaced by a refusal that keeps
 * the command's name and correlationData when they fit. Only commands
 * that changed nothing get here: the others are not run without room. */
static void refuse_for_size(cJSON *response, const char *sentence, int64_t room)
{
	cJSON_DeleteItemFromObjectCaseSensitive(response, "data");
	cJSON_DeleteItemFromObjectCaseSensitive(response, "error");
	cJSON_DeleteItemFromObjectCaseSensitive(response, "code");
	cJSON_AddStringToObject(response, "error", sentence);
	cJSON_AddStringToObject(response, "code", code_names[CODE_LIMIT]);
	if(response_size(response) > room){
		minimal_refusal(response);
	}
}

/* Room a command needs before it may run: enough for any answer of a
 * command that changes something, its requester's name and its own name
 * and correlationData echoed (six bytes per byte at worst, escaped). */
static int64_t reserve_for(const char *requester, const cJSON *command)
{
	int64_t echoed = 0;
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(command, "command");
	const cJSON *correlation = cJSON_GetObjectItemCaseSensitive(command, "correlationData");
	echoed += cJSON_IsString(name) ? (int64_t)strlen(name->valuestring) : 0;
	echoed += cJSON_IsString(correlation) ? (int64_t)strlen(correlation->valuestring) : 0;
	return 4096 + 6 * ((int64_t)strlen(requester) + echoed);
}

/* One response that fits in room bytes (a refusal when the answer does
 * not); returns its size. */
static int64_t answer_within(struct tokens_plugin *plugin, const char *requester, int64_t now,
		const cJSON *command, cJSON *response, int64_t room)
{
	if(!cJSON_IsObject(command)){
		cJSON_AddStringToObject(response, "command", "Unknown command");
		cJSON_AddStringToObject(response, "error", "A command must be a JSON object");
		cJSON_AddStringToObject(response, "code", "invalid");
		return response_size(response);
	}
	if(room && room - REFUSAL_BYTES < reserve_for(requester, command)){
		echo_identity(command, response);
		refuse_for_size(response, "The reply is full (plugin_opt_max_reply_bytes): this command was not run; "
				"send it in another request", room);
		return response_size(response);
	}
	bool changed = run_command(plugin, requester, now, command, response, room ? room - REFUSAL_BYTES : 0);
	int64_t size = room ? response_size(response) : 0;
	if(room && size > room && !changed){
		char sentence[200];
		snprintf(sentence, sizeof(sentence), "The answer would make the reply larger than %lld bytes "
				"(plugin_opt_max_reply_bytes): ask for less at a time (listTokens takes 'count' and 'offset')",
				(long long)plugin->limits.reply_bytes);
		refuse_for_size(response, sentence, room);
		size = response_size(response);
	}
	return size;
}

/* The reply never outgrows plugin_opt_max_reply_bytes: each command may
 * use what the ones before left, less a refusal's room for each command
 * after it, so that every command still gets its response. */
static void run_commands(struct tokens_plugin *plugin, const char *requester, const cJSON *commands_item,
		cJSON *responses)
{
	int64_t now = plugin->now();
	int64_t max_reply = plugin->limits.reply_bytes;
	int64_t used = (int64_t)strlen("{\"responses\":[]}");
	int64_t after = cJSON_GetArraySize(commands_item);
	const cJSON *command;
	cJSON_ArrayForEach(command, commands_item){
		cJSON *response = cJSON_CreateObject();
		if(response == NULL){
			break;
		}
		cJSON_AddItemToArray(responses, response);
		after--;
		int64_t room = max_reply ? max_reply - used - after * REFUSAL_BYTES : 0;
		used += answer_within(plugin, requester, now, command, response, room);
	}
}

cJSON *control_handle_request(struct tokens_plugin *plugin, const char *requester,
		const char *payload, size_t payload_len)
{
	const struct tokens_limits *limits = &plugin->limits;
	char message[128];
	/* Before anything is copied or parsed: a huge request costs its size
	 * once (the broker's copy), never a document tree many times larger. */
	if(limits->request_bytes && (int64_t)payload_len > limits->request_bytes){
		snprintf(message, sizeof(message), "The request is larger than %lld bytes", (long long)limits->request_bytes);
		return refusal("limit", message);
	}
	cJSON *request = parse_request(payload, payload_len);
	const cJSON *commands_item = cJSON_GetObjectItemCaseSensitive(request, "commands");
	cJSON *reply = NULL;
	if(!cJSON_IsArray(commands_item)){
		reply = refusal("invalid", request ? "The payload has no 'commands' array" : "The payload is not valid JSON");
	}else if(limits->commands && cJSON_GetArraySize(commands_item) > limits->commands){
		snprintf(message, sizeof(message), "A request may hold at most %lld commands", (long long)limits->commands);
		reply = refusal("limit", message);
	}else{
		reply = cJSON_CreateObject();
		cJSON *responses = cJSON_AddArrayToObject(reply, "responses");
		if(responses == NULL){
			cJSON_Delete(reply);
			reply = NULL;
		}else{
			/* A fleet member answers from the store as the database has
			 * it now: a role created on another member a moment ago is
			 * there (without the database, from memory). */
			fleet_member_refresh(plugin);
			run_commands(plugin, requester, commands_item, responses);
		}
	}
	cJSON_Delete(request);
	return reply;
}
