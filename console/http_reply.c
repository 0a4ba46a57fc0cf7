/*
 * The console's HTTP answers (see http_reply.h). The page's Content
 * Security Policy goes on every answer, the API's too: a JSON body opened
 * as a document then runs nothing.
 */
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>

#include "http_reply.h"

static const char *const page_policy =
	"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/* What reply_json sends when it cannot build its reply. */
static const char out_of_memory_reply[] = "{\"error\":\"out of memory\",\"code\":\"internal\"}";

struct MHD_Response *reply_make(const char *type, const void *body, size_t length, bool is_api)
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
	struct MHD_Response *response = reply_make(type, body, length, is_api);
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

enum MHD_Result reply_text(struct MHD_Connection *connection, unsigned status, const char *type,
		const void *body, size_t length, bool is_api)
{
	return send_response(connection, status, type, body, length, is_api, NULL);
}

enum MHD_Result reply_json(struct MHD_Connection *connection, unsigned status, cJSON *body)
{
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	enum MHD_Result result = text
		? reply_text(connection, status, "application/json", text, strlen(text), true)
		: reply_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json",
				out_of_memory_reply, sizeof(out_of_memory_reply) - 1, true);
	if(text){
		OPENSSL_cleanse(text, strlen(text));
		cJSON_free(text);
	}
	return result;
}

enum MHD_Result reply_wrong_method(struct MHD_Connection *connection, const char *allow)
{
	char body[128];
	int length = snprintf(body, sizeof(body), "{\"error\":\"Use %s\",\"code\":\"invalid\"}", allow);
	return send_response(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json", body, (size_t)length,
			true, allow);
}

enum MHD_Result reply_error(struct MHD_Connection *connection, unsigned status, const char *code,
		const char *message)
{
	cJSON *body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "error", message);
	cJSON_AddStringToObject(body, "code", code);
	enum MHD_Result result = reply_json(connection, status, body);
	cJSON_Delete(body);
	return result;
}

/* What follows the headers cannot be trusted to be the body they announce. */
enum MHD_Result reply_refusal(struct MHD_Connection *connection, unsigned status, const char *code,
		const char *message)
{
	char body[256];
	int length = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"code\":\"%s\"}", message, code);
	struct MHD_Response *response = reply_make("application/json", body, (size_t)length, true);
	if(response == NULL){
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result result = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return result;
}
