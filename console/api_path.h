/*
 * A request's path as the API reads it: split at '/' first, then each
 * segment percent-decoded on its own, so that a role name may hold any
 * character, '/' included, as "%2F" ("/api/roles/team%2Fa/acls" is the
 * role "team/a"). libmicrohttpd's own url has the escapes decoded already,
 * which would make "%2F" a separator; so this works on the path as it
 * came in the request line. '+' is a plus sign, never a space.
 */
#ifndef API_PATH_H
#define API_PATH_H

#include <stddef.h>

/* "api", the resource, a hash or role name, and "rotate" or "acls". */
#define API_PATH_MAX_SEGMENTS 4

struct api_path {
	char *decoded;        /* one buffer: the segments, each ended by a NUL */
	const char *segments[API_PATH_MAX_SEGMENTS];
	size_t count;
};

enum api_path_result {
	API_PATH_OK,
	API_PATH_TOO_DEEP,     /* more segments than any route has */
	API_PATH_BAD_ESCAPE,   /* '%' without two hex digits, or "%00" */
	API_PATH_NO_MEMORY,
};

/* `raw` is the path of the request line (from its '/' to before any '?'),
 * `length` bytes. On API_PATH_OK, free the path with api_path_free. */
enum api_path_result api_path_parse(const char *raw, size_t length, struct api_path *path);
void api_path_free(struct api_path *path);

#endif
