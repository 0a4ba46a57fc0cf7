/*
 * Splitting and decoding a request path (see api_path.h).
 */
#include <stdbool.h>
#include <stdlib.h>

#include "api_path.h"

static int hex_value(char c)
{
	if(c >= '0' && c <= '9') return c - '0';
	if(c >= 'a' && c <= 'f') return c - 'a' + 10;
	if(c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Decodes raw[*at] (a '%' escape or a plain byte) into *out. */
static bool decode_byte(const char *raw, size_t length, size_t *at, char *out)
{
	if(raw[*at] != '%'){
		*out = raw[(*at)++];
		return true;
	}
	if(*at + 2 >= length){
		return false;
	}
	int high = hex_value(raw[*at + 1]);
	int low = high < 0 ? -1 : hex_value(raw[*at + 2]);
	if(low < 0 || (high == 0 && low == 0)){
		return false;
	}
	*out = (char)(high * 16 + low);
	*at += 3;
	return true;
}

enum api_path_result api_path_parse(const char *raw, size_t length, struct api_path *path)
{
	*path = (struct api_path){0};
	/* The leading '/' begins the first segment. */
	size_t at = length > 0 && raw[0] == '/' ? 1 : 0;
	char *decoded = malloc(length + 1);
	if(decoded == NULL){
		return API_PATH_NO_MEMORY;
	}
	size_t out = 0;
	path->segments[path->count++] = decoded;
	while(at < length){
		if(raw[at] == '/'){
			if(path->count == API_PATH_MAX_SEGMENTS){
				free(decoded);
				*path = (struct api_path){0};
				return API_PATH_TOO_DEEP;
			}
			decoded[out++] = '\0';
			path->segments[path->count++] = decoded + out;
			at++;
		}else if(!decode_byte(raw, length, &at, &decoded[out++])){
			free(decoded);
			*path = (struct api_path){0};
			return API_PATH_BAD_ESCAPE;
		}
	}
	decoded[out] = '\0';
	path->decoded = decoded;
	return API_PATH_OK;
}

void api_path_free(struct api_path *path)
{
	free(path->decoded);
	*path = (struct api_path){0};
}
