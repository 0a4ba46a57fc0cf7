/*
 * A fleet member's cache (docs/postgresql.md, "The cache"): the state file
 * records which database store it copies and how far, through a snapshot
 * and the journal's "fleetSeq", so that a restarted member fetches
 * exactly the changes it misses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "persist.h"
#include "state_format.h"
#include "test_support.h"

#define FLEET_A "0123456789abcdef0123456789abcdef"

static cJSON *create_role_line(const char *name, int64_t fleet_sequence)
{
	char *text = test_format("{\"op\": \"createRole\", \"role\": {\"rolename\": \"%s\", \"acls\": []}}", name);
	cJSON *line = cJSON_Parse(text);
	free(text);
	assert_non_null(line);
	if(fleet_sequence){
		cJSON_AddNumberToObject(line, "fleetSeq", (double)fleet_sequence);
	}
	return line;
}

/* "role-8" and so on, in a buffer of its own per call site's loop. */
static const char *test_format_static(int64_t number)
{
	static char name[32];
	snprintf(name, sizeof(name), "role-%lld", (long long)number);
	return name;
}

/* Restarts as a broker would and checks the position the cache says it
 * has; returns how many roles the loaded store holds. */
static size_t assert_position_after_restart(struct persist_fixture *fixture, const char *id, int64_t sequence)
{
	struct store loaded;
	test_persist_restart_and_load(fixture, &loaded);
	const char *loaded_id;
	int64_t loaded_sequence;
	persist_fleet_position(fixture->persist, &loaded_id, &loaded_sequence);
	assert_string_equal(loaded_id, id);
	assert_int_equal(loaded_sequence, sequence);
	size_t roles = store_role_count(&loaded);
	store_clear(&loaded);
	return roles;
}

static void a_snapshot_keeps_the_position(void **state)
{
	struct persist_fixture *fixture = *state;
	test_add_role(&fixture->store, "dev");
	persist_set_fleet_position(fixture->persist, FLEET_A, 41);
	test_persist_save(fixture, &fixture->store);
	assert_position_after_restart(fixture, FLEET_A, 41);
	cJSON *document = test_read_json(fixture->path);
	assert_string_equal(cJSON_GetObjectItem(document, "fleetId")->valuestring, FLEET_A);
	cJSON_Delete(document);
}

static void journal_lines_move_the_position_and_local_lines_do_not(void **state)
{
	struct persist_fixture *fixture = *state;
	persist_set_fleet_position(fixture->persist, FLEET_A, 7);
	test_persist_save(fixture, &fixture->store);
	test_persist_record(fixture, create_role_line("eight", 8));
	test_persist_record(fixture, create_role_line("nine", 9));
	test_persist_record(fixture, create_role_line("local", 0));   /* a line of this broker only */
	assert_int_equal(assert_position_after_restart(fixture, FLEET_A, 9), 3);
}

static void a_file_without_a_position_is_no_cache(void **state)
{
	struct persist_fixture *fixture = *state;
	test_persist_save(fixture, &fixture->store);
	assert_position_after_restart(fixture, "", 0);
	cJSON *document = test_read_json(fixture->path);
	assert_null(cJSON_GetObjectItem(document, "fleetId"));
	cJSON_Delete(document);
}

/* A fleetSeq that does not move forward means lines out of the database's
 * order: applying them would apply a change twice, or skip one. */
static void a_journal_whose_fleet_sequence_goes_back_is_refused(void **state)
{
	struct persist_fixture *fixture = *state;
	persist_set_fleet_position(fixture->persist, FLEET_A, 7);
	test_persist_save(fixture, &fixture->store);
	test_persist_record(fixture, create_role_line("eight", 8));
	test_persist_record(fixture, create_role_line("again", 8));
	test_persist_restart_and_refuse(fixture);
	test_assert_contains(fixture->error, "'fleetSeq' is not a whole number after the last one");
}

static void a_snapshot_with_a_bad_position_is_refused(void **state)
{
	struct persist_fixture *fixture = *state;
	static const char *const headers[] = {
		"\"fleetId\": \"XYZ\", \"fleetSequence\": 1",
		"\"fleetId\": \"" FLEET_A "\", \"fleetSequence\": -1",
		"\"fleetId\": \"" FLEET_A "\", \"fleetSequence\": 1.5",
	};
	static const char *const problems[] = {"'fleetId'", "'fleetSequence'", "'fleetSequence'"};
	for(size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++){
		char *text = test_format("{\"version\": 1, %s, \"roles\": [], \"tokens\": []}", headers[i]);
		test_write_file(fixture->path, text, strlen(text));
		free(text);
		test_persist_restart_and_refuse(fixture);
		test_assert_contains(fixture->error, problems[i]);
	}
}

/* The others' changes are written without an fsync each, and made
 * durable once per batch: a failing fsync shows at the sync, and a crash
 * before it may lose only the batch's last lines, fetched again. */
static void lazy_lines_wait_for_the_sync(void **state)
{
	struct persist_fixture *fixture = *state;
	persist_set_fleet_position(fixture->persist, FLEET_A, 7);
	test_persist_save(fixture, &fixture->store);
	test_persist_record(fixture, create_role_line("eight", 8));   /* the journal's creation is synced */
	persist_set_io(fixture->persist, &test_io_fsync_eio);
	test_io_calls = 0;
	for(int64_t sequence = 9; sequence <= 11; sequence++){
		cJSON *line = create_role_line(test_format_static(sequence), sequence);
		assert_true(persist_record_lazily(fixture->persist, line, fixture->error, sizeof(fixture->error)));
		cJSON_Delete(line);
	}
	assert_int_equal(test_io_calls, 0);
	assert_false(persist_sync(fixture->persist, fixture->error, sizeof(fixture->error)));
	test_assert_contains(fixture->error, "fsync failed");
	assert_int_equal(test_io_calls, 1);
	persist_set_io(fixture->persist, NULL);
	assert_true(persist_sync(fixture->persist, fixture->error, sizeof(fixture->error)));
	assert_int_equal(assert_position_after_restart(fixture, FLEET_A, 11), 4);
}

#define PERSIST_TEST(f) cmocka_unit_test_setup_teardown(f, test_persist_setup, test_persist_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		PERSIST_TEST(a_snapshot_keeps_the_position),
		PERSIST_TEST(journal_lines_move_the_position_and_local_lines_do_not),
		PERSIST_TEST(a_file_without_a_position_is_no_cache),
		PERSIST_TEST(a_journal_whose_fleet_sequence_goes_back_is_refused),
		PERSIST_TEST(a_snapshot_with_a_bad_position_is_refused),
		PERSIST_TEST(lazy_lines_wait_for_the_sync),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
