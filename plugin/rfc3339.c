/*
 * RFC 3339 parsing and formatting without the C library's time zone state:
 * the civil-date arithmetic is Howard Hinnant's days-from-civil algorithm,
 * which is exact for the proleptic Gregorian calendar.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "rfc3339.h"

static int64_t days_from_civil(int64_t year, int month, int day)
{
	year -= month <= 2;
	int64_t era = (year >= 0 ? year : year - 399) / 400;
	int64_t year_of_era = year - era * 400;
	int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
	return era * 146097 + day_of_era - 719468;
}

static void civil_from_days(int64_t days, int *year, int *month, int *day)
{
	days += 719468;
	int64_t era = (days >= 0 ? days : days - 146096) / 146097;
	int64_t day_of_era = days - era * 146097;
	int64_t year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
	int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
	int64_t mp = (5 * day_of_year + 2) / 153;
	*day = (int)(day_of_year - (153 * mp + 2) / 5 + 1);
	*month = (int)(mp < 10 ? mp + 3 : mp - 9);
	*year = (int)(year_of_era + era * 400 + (*month <= 2));
}

static bool is_leap_year(int year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return (month == 2 && is_leap_year(year)) ? 29 : days[month - 1];
}

/* Reads exactly `width` decimal digits. */
static bool read_digits(const char **cursor, int width, int *value)
{
	int result = 0;
	for(int i = 0; i < width; i++){
		char c = (*cursor)[i];
		if(c < '0' || c > '9'){
			return false;
		}
		result = result * 10 + (c - '0');
	}
	*cursor += width;
	*value = result;
	return true;
}

static bool expect(const char **cursor, char wanted)
{
	if(**cursor != wanted){
		return false;
	}
	(*cursor)++;
	return true;
}

static bool read_offset(const char **cursor, int *offset_seconds)
{
	char sign = **cursor;
	if(sign == 'Z' || sign == 'z'){
		(*cursor)++;
		*offset_seconds = 0;
		return true;
	}
	if(sign != '+' && sign != '-'){
		return false;
	}
	(*cursor)++;
	int hours, minutes;
	if(!read_digits(cursor, 2, &hours) || !expect(cursor, ':')
			|| !read_digits(cursor, 2, &minutes) || hours > 23 || minutes > 59){
		return false;
	}
	*offset_seconds = (sign == '+' ? 1 : -1) * (hours * 3600 + minutes * 60);
	return true;
}

bool rfc3339_parse(const char *text, int64_t *seconds)
{
	const char *cursor = text;
	int year, month, day, hour, minute, second, offset;

	if(text == NULL
			|| !read_digits(&cursor, 4, &year) || !expect(&cursor, '-')
			|| !read_digits(&cursor, 2, &month) || !expect(&cursor, '-')
			|| !read_digits(&cursor, 2, &day)
			|| (*cursor != 'T' && *cursor != 't') || !(cursor++, true)
			|| !read_digits(&cursor, 2, &hour) || !expect(&cursor, ':')
			|| !read_digits(&cursor, 2, &minute) || !expect(&cursor, ':')
			|| !read_digits(&cursor, 2, &second)){
		return false;
	}
	if(*cursor == '.'){
		cursor++;
		if(*cursor < '0' || *cursor > '9'){
			return false;
		}
		while(*cursor >= '0' && *cursor <= '9'){
			cursor++;
		}
	}
	if(!read_offset(&cursor, &offset) || *cursor != '\0'){
		return false;
	}
	/* Second 60 is RFC 3339's leap second; it is counted as the next second. */
	if(month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)
			|| hour > 23 || minute > 59 || second > 60){
		return false;
	}
	int64_t result = days_from_civil(year, month, day) * 86400
		+ hour * 3600 + minute * 60 + second - offset;
	if(result < 0 || result > RFC3339_MAX){
		return false;
	}
	*seconds = result;
	return true;
}

void rfc3339_format(int64_t seconds, char out[RFC3339_LEN + 1])
{
	if(seconds < 0) seconds = 0;
	if(seconds > RFC3339_MAX) seconds = RFC3339_MAX;
	int year, month, day;
	int64_t days = seconds / 86400;
	int64_t rest = seconds % 86400;
	civil_from_days(days, &year, &month, &day);
	/* The clamp above keeps every field in range; the wide buffer only
	 * tells the compiler so. */
	char text[48];
	snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02dZ",
			year, month, day, (int)(rest / 3600), (int)(rest / 60 % 60), (int)(rest % 60));
	memcpy(out, text, RFC3339_LEN);
	out[RFC3339_LEN] = '\0';
}
