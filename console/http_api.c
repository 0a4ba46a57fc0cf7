/*
 * What every request goes through: the Host and framing checks, the body
 * (bounded), the caller's token, then the page or the REST API (whose
 * routes are api_routes.c's table). Each API call becomes one control
 * command, sent with the bearer token: the broker decides what the caller
 * may do; the console has no rights of its own and writes no secret
 * anywhere.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "api_routes.h"
#include "assets.h"
#include "http_api.h"
#include "http_reply.h"
#include "token_format.h"

#define API_PREFIX "/api/"
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
	char *raw_path;        /* as in the request line, escapes undecoded */
};

/* ---- the page ---- */

static enum MHD_Result send_asset(struct MHD_Connection *connection, const char *url)
{
	const struct asset *asset = asset_find(strcmp(url, "/") == 0 ? "/index.html" : url);
	if(asset == NULL){
		return reply_error(connection, MHD_HTTP_NOT_FOUND, "notFound", "No such page");
	}
	return reply_text(connection, MHD_HTTP_OK, asset->type, asset->data, asset->length, false);
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

/* ---- the API ---- */

static enum MHD_Result route_api(struct console *console, struct MHD_Connection *connection, const char *method,
		const struct request_state *state)
{
	struct api_path path;
	enum api_path_result parsed = api_path_parse(state->raw_path, strlen(state->raw_path), &path);
	if(parsed == API_PATH_NO_MEMORY){
		return reply_error(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "Out of memory");
	}
	if(parsed == API_PATH_BAD_ESCAPE){
		return reply_error(connection, MHD_HTTP_BAD_REQUEST, "invalid", "The path holds a malformed %-escape");
	}
	const struct api_route *route = parsed == API_PATH_OK ? api_route_find(&path) : NULL;
	enum MHD_Result result;
	const char *token = bearer_token(connection);
	if(route == NULL){
		result = reply_error(connection, MHD_HTTP_NOT_FOUND, "notFound", "No such API path");
	}else if(state->too_large){
		result = reply_error(connection, MHD_HTTP_CONTENT_TOO_LARGE, "invalid", "The request body is too large");
	}else if(token == NULL || token_format_check(token) != TOKEN_WELL_FORMED){
		result = reply_error(connection, MHD_HTTP_UNAUTHORIZED, "unauthorized",
				"An application token is required: Authorization: Bearer mqtk_...");
	}else{
		struct api_request request = {.console = console, .connection = connection, .token = token,
			.method = method, .body = state->body, .body_length = state->length};
		result = api_route_run(route, &path, &request);
	}
	api_path_free(&path);
	return result;
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
		*result = reply_refusal(connection, MHD_HTTP_BAD_REQUEST, "invalid", "More than one Host header");
	}else if(!console_host_allowed(&console->hosts, host)){
		*result = reply_refusal(connection, MHD_HTTP_MISDIRECTED_REQUEST, "misdirected",
				"The Host header does not name this console");
	}else if(counts.content_length > 1){
		*result = reply_refusal(connection, MHD_HTTP_BAD_REQUEST, "invalid", "More than one Content-Length header");
	}else if(counts.transfer_encoding > 0 && (counts.content_length > 0 || counts.transfer_encoding > 1 || !counts.chunked)){
		*result = reply_refusal(connection, MHD_HTTP_BAD_REQUEST, "invalid",
				"Transfer-Encoding must be chunked alone, without Content-Length");
	}else if(state->nul_in_path){
		*result = reply_refusal(connection, MHD_HTTP_NOT_FOUND, "notFound", "No such path");
	}else if(state->nul_in_query){
		*result = reply_refusal(connection, MHD_HTTP_BAD_REQUEST, "invalid", "The query holds a NUL character");
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
	if(state == NULL){
		return NULL;
	}
	uri = uri ? uri : "";
	const char *query = strchr(uri, '?');
	const char *nul = strstr(uri, "%00");
	state->nul_in_path = nul && (query == NULL || nul < query);
	state->nul_in_query = query && strstr(query, "%00");
	state->raw_path = strndup(uri, query ? (size_t)(query - uri) : strlen(uri));
	if(state->raw_path == NULL){
		free(state);
		return NULL;
	}
	return state;
}

static enum MHD_Result dispatch(struct console *console, struct MHD_Connection *connection, const char *url,
		const char *method, const struct request_state *state)
{
	if(strncmp(url, API_PREFIX, strlen(API_PREFIX)) == 0){
		return route_api(console, connection, method, state);
	}
	if(strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0){
		return reply_wrong_method(connection, "GET, HEAD");
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
		free(state->raw_path);
		free(state);
		*request_state = NULL;
	}
}
