/*
 * The console's HTTP side: the page at / and the REST API of SPEC section
 * 8, each API request carried out with the caller's own token through the
 * broker pool. libmicrohttpd calls console_handle_request for every
 * request (several times for one with a body).
 */
#ifndef HTTP_API_H
#define HTTP_API_H

#include <microhttpd.h>

#include "broker_link.h"

#define MAX_BODY_BYTES 16384

struct console {
	struct broker_pool *pool;
};

enum MHD_Result console_handle_request(void *console, struct MHD_Connection *connection, const char *url,
		const char *method, const char *version, const char *upload_data, size_t *upload_data_size,
		void **request_state);
void console_request_completed(void *console, struct MHD_Connection *connection, void **request_state,
		enum MHD_RequestTerminationCode code);

#endif
