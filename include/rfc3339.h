/*
 * RFC 3339 times, as the protocol and the state file use them: seconds since
 * the Unix epoch in, "YYYY-MM-DDTHH:MM:SSZ" out. Input may carry fractional
 * seconds (dropped) and a numeric offset. Years 1970 to 9999 only.
 */
#ifndef RFC3339_H
#define RFC3339_H

#include <stdbool.h>
#include <stdint.h>

#define RFC3339_LEN 20
#define RFC3339_MAX 253402300799LL /* 9999-12-31T23:59:59Z */

bool rfc3339_parse(const char *text, int64_t *seconds);
void rfc3339_format(int64_t seconds, char out[RFC3339_LEN + 1]);

#endif
