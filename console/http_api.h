/*
 * The console's HTTP side: the page at / and the REST API of SPEC section
 * 8, each API request carried out with the caller's own token through the
 * broker pool. libmicrohttpd calls console_handle_request for every
 * request (several times for one with a body).
 */
#ifndef HTTP_API_H
#define HTTP_API_H

#include <stdbool.h>
#include <stddef.h>
#include <microhttpd.h>

#include "broker_link.h"
#include "guard.h"

#define MAX_BODY_BYTES 16384

/* The names a request's Host header may give (a DNS-rebinding page's
 * requests carry its own name): the listen address, "localhost" when
 * listening on loopback (or on every address), any IP literal when
 * listening on every address, and the names of --allowed-host; each with
 * or without ":<listen port>". A name given with a port matches only
 * exactly. */
struct allowed_hosts {
	const char *listen_address;     /* "127.0.0.1", or "0.0.0.0" for every address */
	int listen_port;
	const char *const *names;       /* --allowed-host values */
	size_t name_count;
};

struct console {
	struct broker_pool *pool;
	struct guard *guard;            /* NULL: no limits (see guard.h) */
	struct allowed_hosts hosts;
};

bool console_host_allowed(const struct allowed_hosts *hosts, const char *host);

/* MHD_OPTION_URI_LOG_CALLBACK: sees the request line's path before
 * libmicrohttpd decodes it, and makes the request's state. */
void *console_request_started(void *console, const char *uri, struct MHD_Connection *connection);

enum MHD_Result console_handle_request(void *console, struct MHD_Connection *connection, const char *url,
		const char *method, const char *version, const char *upload_data, size_t *upload_data_size,
		void **request_state);
void console_request_completed(void *console, struct MHD_Connection *connection, void **request_state,
		enum MHD_RequestTerminationCode code);

#endif
