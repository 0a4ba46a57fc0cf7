/*
 * RFC 3339 times as the protocol and the state file use them: UTC, second
 * precision out; numeric offsets and fractional seconds (dropped) in.
 * Years 1970 to 9999.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rfc3339.h"
#include "test_support.h"

#define T_2027 1798761600LL        /* 2027-01-01T00:00:00Z */
#define T_2024_LEAP 1709164800LL   /* 2024-02-29T00:00:00Z */
#define T_2000_LEAP 951827696LL    /* 2000-02-29T12:34:56Z */

static void assert_parses(const char *text, int64_t expected)
{
	int64_t seconds = -12345;
	if(!rfc3339_parse(text, &seconds)){
		fail_msg("\"%s\" was refused", text);
	}
	if(seconds != expected){
		fail_msg("\"%s\" parsed as %lld, expected %lld", text, (long long)seconds, (long long)expected);
	}
}

static void assert_refused(const char *text)
{
	int64_t seconds = -12345;
	if(rfc3339_parse(text, &seconds)){
		fail_msg("\"%s\" was accepted as %lld", text, (long long)seconds);
	}
}

/* The C library's opinion, with no time zone involved. */
static void oracle_format(int64_t seconds, char out[64])
{
	time_t value = (time_t)seconds;
	struct tm broken;
	assert_non_null(gmtime_r(&value, &broken));
	assert_int_equal(strftime(out, 64, "%Y-%m-%dT%H:%M:%SZ", &broken), RFC3339_LEN);
}

static void parses_utc(void **state)
{
	(void)state;
	assert_parses("2027-01-01T00:00:00Z", T_2027);
	assert_parses("2026-11-28T10:00:00Z", 1795860000LL);
	assert_parses("1970-01-01T00:00:00Z", 0);
	assert_parses("1970-01-01T00:00:01Z", 1);
	assert_parses("2038-01-19T03:14:08Z", 2147483648LL);  /* past 32-bit time_t */
	/* Lowercase separators are allowed by RFC 3339. */
	assert_parses("2027-01-01t00:00:00z", T_2027);
	assert_parses("2027-01-01t00:00:00Z", T_2027);
	assert_parses("2027-01-01T00:00:00z", T_2027);
}

static void parses_numeric_offsets(void **state)
{
	(void)state;
	assert_parses("2027-01-01T02:00:00+02:00", T_2027);
	assert_parses("2026-12-31T18:30:00-05:30", T_2027);
	assert_parses("2027-01-01T00:00:00+00:00", T_2027);
	assert_parses("2027-01-01T00:00:00-00:00", T_2027);
	assert_parses("2027-01-01T23:59:00+23:59", T_2027);
	assert_parses("2026-12-31T00:01:00-23:59", T_2027);
	/* An offset moves the date across a month and a leap day. */
	assert_parses("2024-02-28T23:00:00-01:00", T_2024_LEAP);
	assert_parses("2024-02-29T05:45:00+05:45", T_2024_LEAP);
}

static void drops_fractional_seconds(void **state)
{
	(void)state;
	assert_parses("2027-01-01T00:00:00.0Z", T_2027);
	assert_parses("2027-01-01T00:00:00.5Z", T_2027);
	/* Dropped, not rounded. */
	assert_parses("2027-01-01T00:00:00.999999999Z", T_2027);
	assert_parses("2027-01-01T00:00:00.123456789012345678901234567890Z", T_2027);
	assert_parses("2027-01-01T02:00:00.75+02:00", T_2027);
	/* A dot must be followed by digits, and only one fraction. */
	assert_refused("2027-01-01T00:00:00.Z");
	assert_refused("2027-01-01T00:00:00.+02:00");
	assert_refused("2027-01-01T00:00:00.5.5Z");
	assert_refused("2027-01-01T00:00:00,5Z");
	assert_refused("2027-01-01T00:00:00.5");
}

static void knows_leap_years(void **state)
{
	(void)state;
	assert_parses("2024-02-29T00:00:00Z", T_2024_LEAP);
	assert_parses("2000-02-29T12:34:56Z", T_2000_LEAP);   /* divisible by 400 */
	assert_parses("2024-03-01T00:00:00Z", T_2024_LEAP + 86400);
	assert_parses("2023-03-01T00:00:00Z", T_2024_LEAP - 365 * 86400);
	assert_refused("2023-02-29T00:00:00Z");
	assert_refused("1900-02-29T00:00:00Z");   /* divisible by 100, not 400 (and before 1970) */
	assert_refused("2100-02-29T00:00:00Z");   /* divisible by 100, not 400 */
	assert_parses("2100-02-28T00:00:00Z", 4107456000LL);
	assert_refused("2024-02-30T00:00:00Z");
}

static void checks_field_bounds(void **state)
{
	(void)state;
	assert_refused("2027-00-01T00:00:00Z");
	assert_refused("2027-13-01T00:00:00Z");
	assert_refused("2027-01-00T00:00:00Z");
	assert_refused("2027-01-32T00:00:00Z");
	assert_refused("2027-04-31T00:00:00Z");
	assert_refused("2027-06-31T00:00:00Z");
	assert_refused("2027-09-31T00:00:00Z");
	assert_refused("2027-11-31T00:00:00Z");
	assert_parses("2027-12-31T00:00:00Z", T_2027 + 364 * 86400);
	assert_refused("2027-01-01T24:00:00Z");
	assert_refused("2027-01-01T00:60:00Z");
	assert_refused("2027-01-01T00:00:61Z");
	assert_refused("2027-01-01T99:99:99Z");
	assert_parses("2027-01-01T23:59:59Z", T_2027 + 86399);
	/* Second 60 is RFC 3339's leap second; it reads as the next second. */
	assert_parses("2026-12-31T23:59:60Z", T_2027);
}

static void refuses_garbage(void **state)
{
	(void)state;
	static const char *const garbage[] = {
		"",
		"2027",
		"2027-01-01",
		"2027-01-01T",
		"2027-01-01T00:00",
		"2027-01-01T00:00Z",
		"2027-01-01T00:00:00",          /* no offset */
		"2027-01-01T00:00:00ZZ",
		"2027-01-01T00:00:00Zjunk",
		"2027-01-01T00:00:00Z ",
		" 2027-01-01T00:00:00Z",
		"2027-01-01 00:00:00Z",         /* space instead of T */
		"2027-01-01_00:00:00Z",
		"2027-01-01T00:00:00 Z",
		"2027-01-01T00:00:00+0200",     /* offset without colon */
		"2027-01-01T00:00:00+02",
		"2027-01-01T00:00:00+2:00",
		"2027-01-01T00:00:00+02:0",
		"2027-01-01T00:00:00+24:00",
		"2027-01-01T00:00:00+02:60",
		"2027-01-01T00:00:00-24:00",
		"2027-01-01T00:00:00UTC",
		"2027-01-01T00:00:00GMT",
		"2027/01/01T00:00:00Z",
		"2027-1-01T00:00:00Z",
		"2027-01-1T00:00:00Z",
		"2027-01-01T0:00:00Z",
		"27-01-01T00:00:00Z",
		"+2027-01-01T00:00:00Z",
		"20270101T000000Z",
		"2027-01-01T00:00:00+02:00Z",
		"2027-0a-01T00:00:00Z",
		"1798761600",
		"now",
	};
	for(size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++){
		assert_refused(garbage[i]);
	}
	assert_false(rfc3339_parse(NULL, &(int64_t){0}));
}

static void refuses_times_before_1970(void **state)
{
	(void)state;
	assert_refused("1969-12-31T23:59:59Z");
	assert_refused("0000-01-01T00:00:00Z");
	assert_refused("1900-01-01T00:00:00Z");
	/* An offset that pushes a 1970 time before the epoch. */
	assert_refused("1970-01-01T00:00:00+00:01");
	assert_refused("1970-01-01T00:59:59+01:00");
	assert_parses("1970-01-01T01:00:00+01:00", 0);
}

static void accepts_up_to_9999(void **state)
{
	(void)state;
	assert_parses("9999-12-31T23:59:59Z", RFC3339_MAX);
	assert_parses("9999-12-31T23:59:59.999Z", RFC3339_MAX);
	assert_parses("9999-12-31T22:59:59-01:00", RFC3339_MAX);
	/* An offset that pushes it past 9999. */
	assert_refused("9999-12-31T23:59:59-00:01");
	assert_refused("9999-12-31T23:59:60Z");
}

static void formats_utc_with_second_precision(void **state)
{
	(void)state;
	char text[RFC3339_LEN + 8];

	memset(text, '#', sizeof(text));
	rfc3339_format(0, text);
	assert_string_equal(text, "1970-01-01T00:00:00Z");
	assert_int_equal(text[RFC3339_LEN + 1], '#');   /* nothing written past the NUL */

	rfc3339_format(T_2027, text);
	assert_string_equal(text, "2027-01-01T00:00:00Z");
	rfc3339_format(T_2000_LEAP, text);
	assert_string_equal(text, "2000-02-29T12:34:56Z");
	rfc3339_format(T_2024_LEAP - 1, text);
	assert_string_equal(text, "2024-02-28T23:59:59Z");
	rfc3339_format(1795860000LL, text);
	assert_string_equal(text, "2026-11-28T10:00:00Z");
	rfc3339_format(2147483648LL, text);
	assert_string_equal(text, "2038-01-19T03:14:08Z");

	memset(text, '#', sizeof(text));
	rfc3339_format(RFC3339_MAX, text);
	assert_string_equal(text, "9999-12-31T23:59:59Z");
	assert_int_equal(text[RFC3339_LEN + 1], '#');
}

static void round_trips_and_agrees_with_gmtime(void **state)
{
	(void)state;
	char text[RFC3339_LEN + 1], expected[64];
	/* About 100000 instants spread over 1970..9999, plus the edges of days,
	 * years and leap days. */
	static const int64_t edges[] = {
		0, 1, 59, 60, 86399, 86400, 951782399, 951782400, 951868800, 978307199, 978307200,
		T_2024_LEAP - 1, T_2024_LEAP, T_2024_LEAP + 86399, T_2024_LEAP + 86400,
		4107456000LL, 4107542400LL, RFC3339_MAX - 1, RFC3339_MAX,
	};
	size_t checked = 0;
	for(size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++){
		oracle_format(edges[i], expected);
		rfc3339_format(edges[i], text);
		assert_string_equal(text, expected);
		assert_parses(text, edges[i]);
		checked++;
	}
	for(int64_t seconds = 0; seconds <= RFC3339_MAX; seconds += 2534023LL + 17){
		oracle_format(seconds, expected);
		rfc3339_format(seconds, text);
		if(strcmp(text, expected) != 0){
			fail_msg("%lld formatted as %s, expected %s", (long long)seconds, text, expected);
		}
		assert_parses(text, seconds);
		checked++;
	}
	assert_true(checked > 100000);
}

static void parses_offsets_like_gmtime(void **state)
{
	(void)state;
	static const int offsets_minutes[] = {-23 * 60 - 59, -12 * 60, -5 * 60 - 30, -1, 1, 60, 5 * 60 + 45, 14 * 60, 23 * 60 + 59};
	for(int64_t seconds = 200000; seconds <= RFC3339_MAX - 200000; seconds += 97654321LL * 7){
		for(size_t i = 0; i < sizeof(offsets_minutes) / sizeof(offsets_minutes[0]); i++){
			int minutes = offsets_minutes[i];
			char local[64];
			oracle_format(seconds + minutes * 60, local);
			local[19] = '\0';   /* drop the Z */
			char *text = test_format("%s%c%02d:%02d", local, minutes < 0 ? '-' : '+',
					abs(minutes) / 60, abs(minutes) % 60);
			assert_parses(text, seconds);
			free(text);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_utc),
		cmocka_unit_test(parses_numeric_offsets),
		cmocka_unit_test(drops_fractional_seconds),
		cmocka_unit_test(knows_leap_years),
		cmocka_unit_test(checks_field_bounds),
		cmocka_unit_test(refuses_garbage),
		cmocka_unit_test(refuses_times_before_1970),
		cmocka_unit_test(accepts_up_to_9999),
		cmocka_unit_test(formats_utc_with_second_precision),
		cmocka_unit_test(round_trips_and_agrees_with_gmtime),
		cmocka_unit_test(parses_offsets_like_gmtime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
