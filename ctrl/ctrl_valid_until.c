/*
 * validUntil on the command line: a duration from now or an RFC 3339 time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrl_module.h"
#include "rfc3339.h"

static const struct {
	char suffix;
	int64_t seconds;
} units[] = {
	{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400},
};

bool ctrl_parse_duration(const char *text, int64_t *seconds)
{
	char *end;
	if(text[0] < '0' || text[0] > '9'){
		return false;
	}
	long long count = strtoll(text, &end, 10);
	if(end == text || end[0] == '\0' || end[1] != '\0' || count <= 0 || count > 100LL * 366 * 86400){
		return false;
	}
	for(size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++){
		if(units[i].suffix == end[0]){
			*seconds = count * units[i].seconds;
			return true;
		}
	}
	return false;
}

bool ctrl_parse_valid_until(const char *text, int64_t now, char out[RFC3339_LEN + 1])
{
	int64_t when, duration;
	if(ctrl_parse_duration(text, &duration)){
		when = now + duration;
	}else if(!rfc3339_parse(text, &when)){
		return false;
	}
	if(when > RFC3339_MAX){
		return false;
	}
	rfc3339_format(when, out);
	return true;
}
