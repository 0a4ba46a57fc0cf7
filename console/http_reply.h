/*
 * Every HTTP answer the console sends: the security headers on each, JSON
 * bodies, and the error body {"error": sentence, "code": word} of SPEC
 * section 8. A JSON reply may hold a new token: the text is wiped once
 * libmicrohttpd has its copy.
 */
#ifndef HTTP_REPLY_H
#define HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>

/* is_api: no-store (the API) rather than no-cache (the page). */
struct MHD_Response *reply_make(const char *type, const void *body, size_t length, bool is_api);
enum MHD_Result reply_text(struct MHD_Connection *connection, unsigned status, const char *type,
		const void *body, size_t length, bool is_api);
enum MHD_Result reply_json(struct MHD_Connection *connection, unsigned status, cJSON *body);
enum MHD_Result reply_error(struct MHD_Connection *connection, unsigned status, const char *code,
		const char *message);
/* 405, naming the methods the path takes in its Allow header. */
enum MHD_Result reply_wrong_method(struct MHD_Connection *connection, const char *allow);
/* An error for a request refused on its headers alone: the connection is
 * closed after it. */
enum MHD_Result reply_refusal(struct MHD_Connection *connection, unsigned status, const char *code,
		const char *message);

#endif
