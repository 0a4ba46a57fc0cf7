/*
 * Routing and the REST API. Each API call becomes one control command,
 * sent with the bearer token, and the plugin's answer becomes an HTTP
 * status: the broker decides what the caller may do; the console has no
 * rights of its own and writes no secret anywhere.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "assets.h"
#include "http_api.h"
#include "token_format.h"

#define API_PREFIX "/api/"
/* Under API_PREFIX: one token, by hash. */
#define TOKEN_PATH_PREFIX "tokens/"
#define BEARER_PREFIX "Bearer "
/* Longer than any DNS name (253 bytes) with a port (":65535"). */
#define HOST_HEADER_MAX_BYTES 260

struct request_state {
	char *body;
	size_t length;
	bool too_large;
	bool started;          /* the headers have been checked */
	bool nul_in_path;      /* "%00": the decoded path would be cut short there */
	bool nul_in_query;
};

static const char *const page_policy =
	"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

static struct MHD_Response *make_response(const char *type, const void *body, size_t length, bool is_api)
{
	struct MHD_Response *response = MHD_create_response_from_buffer(length, (void *)body, MHD_RESPMEM_MUST_COPY);
	if(response == NULL){
		return NULL;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(response, "X-Frame-Options", "DENY");
	MHD_add_response_header(response, "Content-Security-Policy", page_policy);
	MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, is_api ? "no-store" : "no-cache");
	return response;
}

static enum MHD_Result send_response(struct MHD_Connection *connection, unsigned status, const char *type,
		const void *body, size_t length, bool is_api, const char *allow)
{
	struct MHD_Response *response = make_response(type, body, length, is_api);
	if(response == NULL){
		return MHD_NO;
	}
	if(allow){
		MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
	}
	if(status == MHD_HTTP_UNAUTHORIZED){
		MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	}
	enum MHD_Result result = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return result;
}

static enum MHD_Result send_text(struct MHD_Connection *connection, unsigned status, const char *type,
		const void *body, size_t length, bool is_api)
{
	return send_response(connection, status, type, body, length, is_api, NULL);
}

/* What send_json sends when it cannot build its reply. */
static const char out_of_memory_reply[] = "{\"error\":\"out of memory\",\"code\":\"internal\"}";

static enum MHD_Result send_json(struct MHD_Connection *connection, unsigned status, cJSON *body)
{
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	enum MHD_Result result = text
		? send_text(connection, status, "application/json", text, strlen(text), true)
		: send_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json",
				out_of_memory_reply, sizeof(out_of_memory_reply) - 1, true);
	/* A reply may hold a new token: wipe our copy. */
	if(text){
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
	return result;
}

/* 405, naming the methods the path takes. */
static enum MHD_Result send_wrong_method(struct MHD_Connection *connection, const char *allow)
{
	char body[128];
	int length = snprintf(body, sizeof(body), "{\"error\":\"Use %s\",\"code\":\"invalid\"}", allow);
	return send_response(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json", body, (size_t)length,
			true, allow);
}

static enum MHD_Result send_error(struct MHD_Connection *connection, unsigned status, const char *code,
		const char *message)
{
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "error", message);
	cJSON_AddStringToObject(body, "code", code);
	enum MHD_Result result = send_json(connection, status, body);
	cJSON_Delete(body);
	return result;
}

/* An error for a request refused on its headers alone: the connection is
 * closed after it, since what follows the headers cannot be trusted to be
 * the body they announce. */
static enum MHD_Result send_refusal(struct MHD_Connection *connection, unsigned status, const char *code,
		const char *message)
{
	char body[256];
	int length = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"code\":\"%s\"}", message, code);
	struct MHD_Response *response = make_response("application/json", body, (size_t)length, true);
	if(response == NULL){
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result result = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return result;
}

/* ---- the page ---- */

static enum MHD_Result send_asset(struct MHD_Connection *connection, const char *url)
{
	const struct asset *asset = asset_find(strcmp(url, "/") == 0 ? "/index.html" : url);
	if(asset == NULL){
		return send_error(connection, MHD_HTTP_NOT_FOUND, "notFound", "No such page");
	}
	return send_text(connection, MHD_HTTP_OK, asset->type, asset->data, asset->length, false);
}

/* ---- the caller's token ---- */

static const char *bearer_token(struct MHD_Connection *connection)
{
	const char *header = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if(header && strncasecmp(header, BEARER_PREFIX, strlen(BEARER_PREFIX)) == 0){
		return header + strlen(BEARER_PREFIX);
	}
	/* Accepted for compatibility, discouraged: URLs end up in logs. */
	return MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "token");
}

/* ---- the control command and its answer ---- */

static unsigned status_of_code(const char *code)
{
	if(strcmp(code, "notFound") == 0) return MHD_HTTP_NOT_FOUND;
	if(strcmp(code, "exists") == 0) return MHD_HTTP_CONFLICT;
	return MHD_HTTP_BAD_REQUEST;
}

static enum MHD_Result answer(struct console *console, struct MHD_Connection *connection, const char *token,
		cJSON *command, unsigned success_status)
{
	cJSON *request = cJSON_CreateObject();
	cJSON *commands = cJSON_AddArrayToObject(request, "commands");
	char *payload = NULL;
	if(commands && cJSON_AddItemToArray(commands, command)){
		payload = cJSON_PrintUnformatted(request);
	}else{
		cJSON_Delete(command);
	}
	cJSON_Delete(request);
	if(payload == NULL){
		return send_error(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "Out of memory");
	}
	char *reply_text = NULL;
	enum broker_outcome outcome = broker_pool_request(console->pool, token, payload, &reply_text);
	free(payload);
	switch(outcome){
		case BROKER_REFUSED_LOGIN:
			return send_error(connection, MHD_HTTP_UNAUTHORIZED, "unauthorized", "The broker refused this token");
		case BROKER_FORBIDDEN:
			return send_error(connection, MHD_HTTP_FORBIDDEN, "forbidden",
					"This token's role may not use the control topic");
		case BROKER_UNREACHABLE:
			return send_error(connection, MHD_HTTP_BAD_GATEWAY, "unreachable", "The broker cannot be reached");
		case BROKER_TIMEOUT:
			return send_error(connection, MHD_HTTP_GATEWAY_TIMEOUT, "timeout", "The broker did not answer in time");
		case BROKER_FAILED:
			return send_error(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
					"The console could not send the request");
		case BROKER_REPLIED:
			break;
	}
	cJSON *reply = cJSON_Parse(reply_text);
	OPENSSL_cleanse(reply_text, strlen(reply_text));
	free(reply_text);
	const cJSON *response = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "responses"), 0);
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(response, "error");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(response, "code");
	enum MHD_Result result;
	if(!cJSON_IsObject(response)){
		result = send_error(connection, MHD_HTTP_BAD_GATEWAY, "internal", "The broker's answer is not a tokens reply");
	}else if(cJSON_IsString(error)){
		const char *code_text = cJSON_IsString(code) ? code->valuestring : "internal";
		result = send_error(connection, status_of_code(code_text), code_text, error->valuestring);
	}else{
		cJSON *data = cJSON_GetObjectItemCaseSensitive(response, "data");
		result = data ? send_json(connection, success_status, data)
			: send_text(connection, success_status, "application/json", "{}", sizeof("{}") - 1, true);
	}
	cJSON_Delete(reply);
	return result;
}

/* ---- the API's routes ---- */

static cJSON *command_named(const char *name)
{
	cJSON *command = cJSON_CreateObject();
	cJSON_AddStringToObject(command, "command", name);
	return command;
}

/* Query numbers are passed on as numbers, so the plugin checks them. */
static bool add_query(struct MHD_Connection *connection, cJSON *command, const char *key, bool numeric)
{
	const char *value = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, key);
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

static enum MHD_Result list_tokens(struct console *console, struct MHD_Connection *connection, const char *token)
{
	cJSON *command = command_named("listTokens");
	if(!add_query(connection, command, "status", false) || !add_query(connection, command, "count", true)
			|| !add_query(connection, command, "offset", true)){
		cJSON_Delete(command);
		return send_error(connection, MHD_HTTP_BAD_REQUEST, "invalid", "count and offset must be numbers");
	}
	return answer(console, connection, token, command, MHD_HTTP_OK);
}

/* cJSON ends a string at an escaped NUL ("\u0000"), and the command would
 * go on with what came before it (a token bound to a shorter client id,
 * say). Each becomes a 0xFF byte instead, never valid UTF-8, which the
 * plugin refuses in any field, naming the field. In place: the text only
 * gets shorter. Returns the new length. */
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

/* The request body as JSON (escaped NULs marked), or NULL. */
/* NULL (so a 400) for a body with a raw NUL byte, which is not JSON and
 * would end a string early in cJSON (a token bound to a shorter client
 * id), as the control topic refuses one too. */
static cJSON *parse_body(const struct request_state *state)
{
	if(state->body == NULL || memchr(state->body, '\0', state->length) != NULL){
		return NULL;
	}
	char *text = malloc(state->length + 1);
	if(text == NULL){
		return NULL;
	}
	memcpy(text, state->body, state->length);
	cJSON *body = cJSON_ParseWithLength(text, mark_escaped_nuls(text, state->length));
	free(text);
	return body;
}

static enum MHD_Result create_token(struct console *console, struct MHD_Connection *connection, const char *token,
		const struct request_state *state)
{
	cJSON *body = parse_body(state);
	if(!cJSON_IsObject(body)){
		cJSON_Delete(body);
		return send_error(connection, MHD_HTTP_BAD_REQUEST, "invalid",
				"The body must be a JSON object with name, role and validUntil (and optionally clientId)");
	}
	cJSON *command = command_named("createToken");
	static const char *const fields[] = {"name", "role", "validUntil", "clientId"};
	for(size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++){
		cJSON *field = cJSON_DetachItemFromObjectCaseSensitive(body, fields[i]);
		if(field){
			cJSON_AddItemToObject(command, fields[i], field);
		}
	}
	cJSON_Delete(body);
	return answer(console, connection, token, command, MHD_HTTP_CREATED);
}

static enum MHD_Result on_token(struct console *console, struct MHD_Connection *connection, const char *token,
		const char *method, const char *hash)
{
	unsigned char digest[TOKEN_HASH_LEN];
	bool is_delete = strcmp(method, MHD_HTTP_METHOD_DELETE) == 0;
	if(!is_delete && strcmp(method, MHD_HTTP_METHOD_GET) != 0){
		return send_wrong_method(connection, "GET, DELETE");
	}
	if(!token_format_hash_from_hex(hash, digest)){
		return send_error(connection, MHD_HTTP_NOT_FOUND, "notFound", "Token not found");
	}
	cJSON *command = command_named(is_delete ? "revokeToken" : "getToken");
	cJSON_AddStringToObject(command, "hash", hash);
	return answer(console, connection, token, command, MHD_HTTP_OK);
}

static enum MHD_Result route_api(struct console *console, struct MHD_Connection *connection, const char *url,
		const char *method, const struct request_state *state)
{
	const char *path = url + strlen(API_PREFIX);
	bool is_token_path = strncmp(path, TOKEN_PATH_PREFIX, strlen(TOKEN_PATH_PREFIX)) == 0;
	bool known = strcmp(path, "tokens") == 0 || strcmp(path, "roles") == 0 || is_token_path;
	if(!known){
		return send_error(connection, MHD_HTTP_NOT_FOUND, "notFound", "No such API path");
	}
	if(state->too_large){
		return send_error(connection, MHD_HTTP_CONTENT_TOO_LARGE, "invalid", "The request body is too large");
	}
	const char *token = bearer_token(connection);
	if(token == NULL || token_format_check(token) != TOKEN_WELL_FORMED){
		return send_error(connection, MHD_HTTP_UNAUTHORIZED, "unauthorized",
				"An application token is required: Authorization: Bearer mqtk_...");
	}
	if(is_token_path){
		return on_token(console, connection, token, method, path + strlen(TOKEN_PATH_PREFIX));
	}
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
	if(strcmp(path, "roles") == 0){
		return get ? answer(console, connection, token, command_named("listRoles"), MHD_HTTP_OK)
			: send_wrong_method(connection, "GET");
	}
	if(get){
		return list_tokens(console, connection, token);
	}
	if(strcmp(method, MHD_HTTP_METHOD_POST) == 0){
		return create_token(console, connection, token, state);
	}
	return send_wrong_method(connection, "GET, POST");
}

/* Collects the body (bounded); false when it is too large. */
static void take_upload(struct request_state *state, const char *data, size_t size)
{
	if(state->too_large || state->length + size > MAX_BODY_BYTES){
		state->too_large = true;
		return;
	}
	char *grown = realloc(state->body, state->length + size + 1);
	if(grown == NULL){
		state->too_large = true;
		return;
	}
	memcpy(grown + state->length, data, size);
	state->body = grown;
	state->length += size;
	state->body[state->length] = '\0';
}

/* ---- what is checked before anything else: the Host and the framing ---- */

static bool is_loopback(const char *address)
{
	static const char loopback_v4[] = "127.";
	return strncmp(address, loopback_v4, sizeof(loopback_v4) - 1) == 0;
}

static bool is_any(const char *address)
{
	return strcmp(address, "0.0.0.0") == 0;
}

static bool is_ip_literal(const char *name, size_t length)
{
	char copy[INET6_ADDRSTRLEN + 2];   /* the longest IPv6 text, bracketed */
	struct in6_addr address;           /* room for an IPv4 one too */
	if(length >= sizeof(copy)){
		return false;
	}
	bool bracketed = length >= 2 && name[0] == '[' && name[length - 1] == ']';
	memcpy(copy, bracketed ? name + 1 : name, bracketed ? length - 2 : length);
	copy[bracketed ? length - 2 : length] = '\0';
	return bracketed ? inet_pton(AF_INET6, copy, &address) == 1 : inet_pton(AF_INET, copy, &address) == 1;
}

static bool same_name(const char *name, size_t length, const char *wanted)
{
	return strlen(wanted) == length && strncasecmp(name, wanted, length) == 0;
}

/* ":<listen port>" or nothing. */
static bool port_matches(const char *rest, int listen_port)
{
	if(*rest == '\0'){
		return true;
	}
	if(rest[0] != ':' || rest[1] < '0' || rest[1] > '9' || strlen(rest) > strlen(":65535")){
		return false;
	}
	char *end;
	long port = strtol(rest + 1, &end, 10);
	return *end == '\0' && port == listen_port;
}

static bool name_allowed(const struct allowed_hosts *hosts, const char *name, size_t length)
{
	if(same_name(name, length, hosts->listen_address)){
		return true;
	}
	bool loopback = is_loopback(hosts->listen_address) || is_any(hosts->listen_address);
	if(loopback && same_name(name, length, "localhost")){
		return true;
	}
	/* On every address the console cannot know which one the client used;
	 * a rebinding page's Host is a name, never an address. */
	if(is_any(hosts->listen_address) && is_ip_literal(name, length)){
		return true;
	}
	for(size_t i = 0; i < hosts->name_count; i++){
		if(same_name(name, length, hosts->names[i])){
			return true;
		}
	}
	return false;
}

bool console_host_allowed(const struct allowed_hosts *hosts, const char *host)
{
	if(host == NULL || *host == '\0' || strlen(host) > HOST_HEADER_MAX_BYTES){
		return false;
	}
	for(size_t i = 0; i < hosts->name_count; i++){
		if(strcasecmp(host, hosts->names[i]) == 0){
			return true;   /* a name given with its port */
		}
	}
	const char *rest;
	if(host[0] == '['){
		const char *close = strchr(host, ']');
		if(close == NULL){
			return false;
		}
		rest = close + 1;
	}else{
		rest = strchr(host, ':');
		rest = rest ? rest : host + strlen(host);
	}
	return port_matches(rest, hosts->listen_port) && name_allowed(hosts, host, (size_t)(rest - host));
}

struct header_counts {
	unsigned host;
	unsigned content_length;
	unsigned transfer_encoding;
	bool chunked;
};

static enum MHD_Result count_header(void *data, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	struct header_counts *counts = data;
	if(strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0){
		counts->host++;
	}else if(strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0){
		counts->content_length++;
	}else if(strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0){
		counts->transfer_encoding++;
		counts->chunked = value && strcasecmp(value, "chunked") == 0;
	}
	return MHD_YES;
}

/* True when the request may go on; otherwise its refusal is queued and
 * *result is what to return to libmicrohttpd. Only the first of repeated headers would be seen by
 * libmicrohttpd, and a proxy in front may have read another: such a request
 * could be read as two different ones, so it is refused. */
static bool check_headers(const struct console *console, struct MHD_Connection *connection,
		const struct request_state *state, enum MHD_Result *result)
{
	struct header_counts counts = {0};
	MHD_get_connection_values(connection, MHD_HEADER_KIND, count_header, &counts);
	const char *host = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	if(counts.host > 1){
		*result = send_refusal(connection, MHD_HTTP_BAD_REQUEST, "invalid", "More than one Host header");
	}else if(!console_host_allowed(&console->hosts, host)){
		*result = send_refusal(connection, MHD_HTTP_MISDIRECTED_REQUEST, "misdirected",
				"The Host header does not name this console");
	}else if(counts.content_length > 1){
		*result = send_refusal(connection, MHD_HTTP_BAD_REQUEST, "invalid", "More than one Content-Length header");
	}else if(counts.transfer_encoding > 0 && (counts.content_length > 0 || counts.transfer_encoding > 1 || !counts.chunked)){
		*result = send_refusal(connection, MHD_HTTP_BAD_REQUEST, "invalid",
				"Transfer-Encoding must be chunked alone, without Content-Length");
	}else if(state->nul_in_path){
		*result = send_refusal(connection, MHD_HTTP_NOT_FOUND, "notFound", "No such path");
	}else if(state->nul_in_query){
		*result = send_refusal(connection, MHD_HTTP_BAD_REQUEST, "invalid", "The query holds a NUL character");
	}else{
		return true;
	}
	return false;
}

void *console_request_started(void *console, const char *uri, struct MHD_Connection *connection)
{
	(void)console;
	(void)connection;
	struct request_state *state = calloc(1, sizeof(*state));
	if(state && uri){
		const char *query = strchr(uri, '?');
		const char *nul = strstr(uri, "%00");
		state->nul_in_path = nul && (query == NULL || nul < query);
		state->nul_in_query = query && strstr(query, "%00");
	}
	return state;
}

static enum MHD_Result dispatch(struct console *console, struct MHD_Connection *connection, const char *url,
		const char *method, const struct request_state *state)
{
	if(strncmp(url, API_PREFIX, strlen(API_PREFIX)) == 0){
		return route_api(console, connection, url, method, state);
	}
	if(strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0){
		return send_wrong_method(connection, "GET, HEAD");
	}
	return send_asset(connection, url);
}

enum MHD_Result console_handle_request(void *data, struct MHD_Connection *connection, const char *url,
		const char *method, const char *version, const char *upload_data, size_t *upload_data_size,
		void **request_state)
{
	(void)version;
	struct console *console = data;
	struct request_state *state = *request_state;
	if(state == NULL){
		return MHD_NO;   /* console_request_started ran out of memory */
	}
	if(!state->started){
		state->started = true;
		enum MHD_Result refusal = MHD_YES;
		return check_headers(console, connection, state, &refusal) ? MHD_YES : refusal;
	}
	if(*upload_data_size > 0){
		take_upload(state, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* The request has arrived: the broker's time is not the client's. */
	guard_set_busy(console->guard, connection, true);
	enum MHD_Result result = dispatch(console, connection, url, method, state);
	guard_set_busy(console->guard, connection, false);
	return result;
}

void console_request_completed(void *console, struct MHD_Connection *connection, void **request_state,
		enum MHD_RequestTerminationCode code)
{
	(void)code;
	guard_request_done(((struct console *)console)->guard, connection);
	struct request_state *state = *request_state;
	if(state){
		if(state->body){
			OPENSSL_cleanse(state->body, state->length);
			free(state->body);
		}
		free(state);
		*request_state = NULL;
	}
}
