/*
 * Escaping client-chosen text for the log. See plugin/log_text.h.
 */
#include <stdio.h>
#include <string.h>

#include "log_text.h"

static int passes(unsigned char c)
{
	return c > ' ' && c < 0x7f && c != '\\';
}

const char *log_text_escape(const char *text, char out[LOG_TEXT_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	if(text == NULL){
		return strcpy(out, "(none)");
	}
	size_t o = 0, i = 0;
	for(; text[i] && i < LOG_TEXT_MAX_INPUT; i++){
		unsigned char c = (unsigned char)text[i];
		if(passes(c)){
			out[o++] = (char)c;
		}else{
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0xf];
		}
	}
	if(text[i]){
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}
