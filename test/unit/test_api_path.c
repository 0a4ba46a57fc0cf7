/*
 * The console's path splitting (console/api_path.c): split at '/' first,
 * then each segment percent-decoded on its own, so "%2F" is part of a name
 * and never a separator; malformed escapes and "%00" are refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "api_path.h"

static void assert_segments(const char *raw, size_t count, const char *const *expected)
{
	struct api_path path;
	assert_int_equal(api_path_parse(raw, strlen(raw), &path), API_PATH_OK);
	assert_int_equal(path.count, count);
	for(size_t i = 0; i < count; i++){
		assert_string_equal(path.segments[i], expected[i]);
	}
	api_path_free(&path);
}

static void assert_refused(const char *raw, size_t length, enum api_path_result expected)
{
	struct api_path path;
	assert_int_equal(api_path_parse(raw, length, &path), expected);
	assert_null(path.decoded);
	assert_int_equal(path.count, 0);
	api_path_free(&path);
}

static void splits_then_decodes(void **state)
{
	(void)state;
	assert_segments("/api/roles/team%2Fa/acls", 4, (const char *const[]){"api", "roles", "team/a", "acls"});
	assert_segments("/api/roles/%74eam%2fa", 3, (const char *const[]){"api", "roles", "team/a"});
	assert_segments("/api/roles/r%C3%B4le%20x+y", 3, (const char *const[]){"api", "roles", "r\xc3\xb4le x+y"});
	assert_segments("/api/roles/%25%32%46", 3, (const char *const[]){"api", "roles", "%2F"});
}

static void keeps_empty_segments(void **state)
{
	(void)state;
	assert_segments("/api/", 2, (const char *const[]){"api", ""});
	assert_segments("/api/roles//acls", 4, (const char *const[]){"api", "roles", "", "acls"});
	assert_segments("/", 1, (const char *const[]){""});
	assert_segments("", 1, (const char *const[]){""});
}

static void refuses_malformed_escapes(void **state)
{
	(void)state;
	const char *const bad[] = {"/api/roles/%", "/api/roles/%4", "/api/roles/%zz", "/api/roles/%4g", "/api/%00/x",
		"/api/roles/a%"};
	for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++){
		assert_refused(bad[i], strlen(bad[i]), API_PATH_BAD_ESCAPE);
	}
	/* The length bounds the escape: "%41" cut after "%4" is malformed. */
	assert_refused("/a%41", 4, API_PATH_BAD_ESCAPE);
}

static void refuses_deep_paths(void **state)
{
	(void)state;
	assert_refused("/api/roles/r/acls/x", strlen("/api/roles/r/acls/x"), API_PATH_TOO_DEEP);
	assert_refused("/a/b/c/d/", strlen("/a/b/c/d/"), API_PATH_TOO_DEEP);
	assert_segments("/a/b/c/d", 4, (const char *const[]){"a", "b", "c", "d"});
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(splits_then_decodes),
		cmocka_unit_test(keeps_empty_segments),
		cmocka_unit_test(refuses_malformed_escapes),
		cmocka_unit_test(refuses_deep_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
