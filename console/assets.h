/*
 * The page's files, compiled into the daemon (see the Makefile: they are
 * generated from console/page/ with xxd), so that the console is one file.
 */
#ifndef ASSETS_H
#define ASSETS_H

#include <stddef.h>

struct asset {
	const char *path;          /* "/index.html" */
	const char *type;          /* its Content-Type */
	const unsigned char *data;
	size_t length;
};

/* NULL for a path that is not one of the page's files. */
const struct asset *asset_find(const char *path);

#endif
