/*
 * Odd files in the state folder and journals that belong to another state
 * file (issue 13, items 6 and 7), and snapshots in any JSON layout (item 9):
 * FIFOs and symbolic links are refused with a sentence naming them, never
 * waited on or followed; a journal is loaded only beside the snapshot it
 * follows, and never appended to or deleted when it is not this broker's;
 * a state file re-written compactly or pretty-printed loads the same.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persist.h"
#include "state_format.h"
#include "test_support.h"

/* Opening a FIFO for reading blocks until a writer comes: the old code
 * hung there. The alarm turns a hang into a failed test. */
#define HANG_SECONDS 5



static bool try_load(struct persist_fixture *fixture, struct store *loaded)
{
	test_persist_reopen(fixture);
	store_init(loaded);
	fixture->error[0] = '\0';
	alarm(HANG_SECONDS);
	bool ok = persist_load(fixture->persist, loaded, fixture->error, sizeof(fixture->error));
	alarm(0);
	return ok;
}

/* The load must fail, naming path, with fragment in the sentence. */
static void assert_load_refused(struct persist_fixture *fixture, const char *path, const char *fragment)
{
	struct store loaded;
	if(try_load(fixture, &loaded)){
		store_clear(&loaded);
		fail_msg("loaded instead of refusing (%s)", path);
	}
	assert_int_equal(store_token_count(&loaded), 0);
	assert_int_equal(store_role_count(&loaded), 0);
	test_assert_contains(fixture->error, path);
	test_assert_contains(fixture->error, fragment);
}

static void load_ok(struct persist_fixture *fixture, struct store *loaded)
{
	if(!try_load(fixture, loaded)){
		fail_msg("persist_load: %s", fixture->error);
	}
}

static void record_role(struct persist_fixture *fixture, const char *name)
{
	struct role *role = test_add_role(&fixture->store, name);
	char *line = test_format("{\"op\":\"createRole\",\"role\":{\"rolename\":\"%s\",\"acls\":[]}}", role->name);
	cJSON *change = cJSON_Parse(line);
	free(line);
	test_persist_record(fixture, change);
}

/* A snapshot with one role and one token. */
static void write_snapshot(struct persist_fixture *fixture)
{
	struct role *role = test_add_role(&fixture->store, "sensors");
	test_add_token(&fixture->store, "boiler-7", role, 100, 200, TIME_NEVER);
	test_persist_save(fixture, &fixture->store);
}

static char *lock_path(const struct persist_fixture *fixture)
{
	return test_format("%s.lock", fixture->path);
}

/* ==== item 6: FIFOs and symbolic links ==== */

static void fifo_as_the_state_file_is_refused_at_once(void **state)
{
	struct persist_fixture *fixture = *state;
	assert_int_equal(mkfifo(fixture->path, 0600), 0);
	assert_load_refused(fixture, fixture->path, "not a regular file");
}

static void fifo_as_the_journal_is_refused_at_once(void **state)
{
	struct persist_fixture *fixture = *state;
	write_snapshot(fixture);
	assert_int_equal(mkfifo(fixture->journal_path, 0600), 0);
	assert_load_refused(fixture, fixture->journal_path, "not a regular file");
}

static void fifo_as_the_lock_file_is_refused(void **state)
{
	struct persist_fixture *fixture = *state;
	persist_close(fixture->persist);
	fixture->persist = NULL;
	char *lock = lock_path(fixture);
	assert_int_equal(unlink(lock), 0);
	assert_int_equal(mkfifo(lock, 0600), 0);
	alarm(HANG_SECONDS);
	struct persist *persist = persist_open(fixture->path, fixture->error, sizeof(fixture->error));
	alarm(0);
	persist_close(persist);
	assert_null(persist);
	test_assert_contains(fixture->error, lock);
	test_assert_contains(fixture->error, "not a regular file");
	assert_int_equal(unlink(lock), 0);
	free(lock);
	fixture->persist = persist_open(fixture->path, fixture->error, sizeof(fixture->error));
}

/* A link to a file outside the folder, which does not exist yet. */
static char *plant_dangling_link(const char *at, char **outside_dir)
{
	*outside_dir = test_temp_dir();
	char *target = test_path(*outside_dir, "planted");
	assert_int_equal(symlink(target, at), 0);
	return target;
}

static void dangling_link_as_the_journal_is_refused_and_not_followed(void **state)
{
	struct persist_fixture *fixture = *state;
	write_snapshot(fixture);
	char *outside;
	char *target = plant_dangling_link(fixture->journal_path, &outside);
	assert_load_refused(fixture, fixture->journal_path, "symbolic link");
	assert_false(test_file_exists(target));
	test_remove_dir(outside);
	free(outside);
	free(target);
}

static void link_planted_as_the_journal_while_running_is_not_followed(void **state)
{
	struct persist_fixture *fixture = *state;
	struct store loaded;
	load_ok(fixture, &loaded);   /* no snapshot, no journal */
	char *outside;
	char *target = plant_dangling_link(fixture->journal_path, &outside);
	cJSON *change = cJSON_Parse("{\"op\":\"createRole\",\"role\":{\"rolename\":\"r\",\"acls\":[]}}");
	assert_false(persist_record(fixture->persist, change, fixture->error, sizeof(fixture->error)));
	cJSON_Delete(change);
	test_assert_contains(fixture->error, fixture->journal_path);
	assert_false(test_file_exists(target));
	/* A snapshot leaves someone else's file where it is. */
	test_persist_save(fixture, &loaded);
	struct stat info;
	assert_int_equal(lstat(fixture->journal_path, &info), 0);
	assert_true(S_ISLNK(info.st_mode));
	assert_false(test_file_exists(target));
	store_clear(&loaded);
	test_remove_dir(outside);
	free(outside);
	free(target);
}

static void symlink_as_the_state_file_is_refused(void **state)
{
	struct persist_fixture *fixture = *state;
	write_snapshot(fixture);
	char *real = test_format("%s.real", fixture->path);
	assert_int_equal(rename(fixture->path, real), 0);
	assert_int_equal(symlink(real, fixture->path), 0);
	assert_load_refused(fixture, fixture->path, "symbolic link");
	free(real);
}

static void symlink_as_the_lock_file_is_refused(void **state)
{
	struct persist_fixture *fixture = *state;
	persist_close(fixture->persist);
	fixture->persist = NULL;
	char *lock = lock_path(fixture);
	char *outside;
	assert_int_equal(unlink(lock), 0);
	char *target = plant_dangling_link(lock, &outside);
	struct persist *persist = persist_open(fixture->path, fixture->error, sizeof(fixture->error));
	persist_close(persist);
	assert_null(persist);
	test_assert_contains(fixture->error, lock);
	test_assert_contains(fixture->error, "symbolic link");
	assert_false(test_file_exists(target));
	assert_int_equal(unlink(lock), 0);
	fixture->persist = persist_open(fixture->path, fixture->error, sizeof(fixture->error));
	test_remove_dir(outside);
	free(outside);
	free(target);
	free(lock);
}

/* ==== item 7: a journal belongs to its snapshot ==== */

/* Another state file's journal, whose changes (seq 1) all look older than
 * this snapshot's: the old code skipped them silently and deleted them at
 * the next snapshot. */
static void journal_of_another_state_file_is_refused_and_kept(void **state)
{
	struct persist_fixture *fixture = *state;
	record_role(fixture, "one");
	record_role(fixture, "two");
	test_persist_save(fixture, &fixture->store);   /* journalSequence 2 */

	char *other_dir = test_temp_dir();
	char *other_path = test_path(other_dir, "tokens.json");
	char *other_journal = test_path(other_dir, "tokens.json.journal");
	struct persist *other = persist_open(other_path, fixture->error, sizeof(fixture->error));
	assert_non_null(other);
	struct store other_store;
	store_init(&other_store);
	assert_true(persist_load(other, &other_store, fixture->error, sizeof(fixture->error)));
	cJSON *change = cJSON_Parse("{\"op\":\"createRole\",\"role\":{\"rolename\":\"theirs\",\"acls\":[]}}");
	assert_true(persist_record(other, change, fixture->error, sizeof(fixture->error)));
	cJSON_Delete(change);
	persist_close(other);
	store_clear(&other_store);

	size_t length;
	char *journal = test_read_file(other_journal, &length);
	assert_non_null(journal);
	test_write_file(fixture->journal_path, journal, length);
	struct test_snapshot snapshot_before, journal_before;
	test_snapshot_take(&snapshot_before, fixture->path);
	test_snapshot_take(&journal_before, fixture->journal_path);
	assert_load_refused(fixture, fixture->journal_path, "does not belong to state file");
	test_assert_contains(fixture->error, fixture->path);
	test_snapshot_assert_unchanged(&snapshot_before, fixture->path);
	test_snapshot_assert_unchanged(&journal_before, fixture->journal_path);
	test_snapshot_free(&snapshot_before);
	test_snapshot_free(&journal_before);
	free(journal);
	test_remove_dir(other_dir);
	free(other_dir);
	free(other_path);
	free(other_journal);
}

static char *journal_id_of_snapshot(const struct persist_fixture *fixture)
{
	cJSON *document = test_read_json(fixture->path);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(document, "journalId");
	char *copy = cJSON_IsString(id) ? strdup(id->valuestring) : NULL;
	cJSON_Delete(document);
	return copy;
}

static char *first_journal_line(const struct persist_fixture *fixture)
{
	char *text = test_read_file(fixture->journal_path, NULL);
	assert_non_null(text);
	char *newline = strchr(text, '\n');
	assert_non_null(newline);
	*newline = '\0';
	return text;
}

static void journal_carries_its_snapshot_id_on_its_first_line(void **state)
{
	struct persist_fixture *fixture = *state;
	write_snapshot(fixture);
	char *id = journal_id_of_snapshot(fixture);
	assert_non_null(id);
	assert_true(journal_id_is_valid(id));
	struct store loaded;
	load_ok(fixture, &loaded);
	store_clear(&loaded);
	record_role(fixture, "first");
	record_role(fixture, "second");
	char *first = first_journal_line(fixture);
	char *expected = test_format("\"journalId\":\"%s\"", id);
	test_assert_contains(first, expected);
	char *text = test_read_file(fixture->journal_path, NULL);
	assert_int_equal(strstr(text, "journalId") - text, strstr(first, "journalId") - first);
	assert_null(strstr(strchr(text, '\n') + 1, "journalId"));   /* only the first line */
	load_ok(fixture, &loaded);
	test_assert_stores_equal(&fixture->store, &loaded);
	store_clear(&loaded);
	free(text);
	free(expected);
	free(first);
	free(id);
}

static void snapshot_with_an_id_refuses_a_journal_without_one(void **state)
{
	struct persist_fixture *fixture = *state;
	write_snapshot(fixture);
	const char *line = "{\"op\":\"createRole\",\"role\":{\"rolename\":\"r\",\"acls\":[]},\"seq\":1}\n";
	test_write_file(fixture->journal_path, line, strlen(line));
	assert_load_refused(fixture, fixture->journal_path, "does not belong to state file");
	assert_true(test_file_exists(fixture->journal_path));
}

static void journal_id_on_a_later_line_is_refused(void **state)
{
	struct persist_fixture *fixture = *state;
	write_snapshot(fixture);
	char *id = journal_id_of_snapshot(fixture);
	char *journal = test_format(
			"{\"op\":\"createRole\",\"role\":{\"rolename\":\"a\",\"acls\":[]},\"seq\":1,\"journalId\":\"%s\"}\n"
			"{\"op\":\"createRole\",\"role\":{\"rolename\":\"b\",\"acls\":[]},\"seq\":2,\"journalId\":\"%s\"}\n", id, id);
	test_write_file(fixture->journal_path, journal, strlen(journal));
	assert_load_refused(fixture, "line 2", "'journalId' is only on the first line");
	free(journal);
	free(id);
}

static void malformed_journal_ids_are_refused(void **state)
{
	struct persist_fixture *fixture = *state;
	write_snapshot(fixture);
	const char *line = "{\"op\":\"createRole\",\"role\":{\"rolename\":\"r\",\"acls\":[]},\"seq\":1,\"journalId\":\"XYZ\"}\n";
	test_write_file(fixture->journal_path, line, strlen(line));
	assert_load_refused(fixture, fixture->journal_path, "'journalId' is not 32 lowercase hex digits");
	assert_int_equal(unlink(fixture->journal_path), 0);
	static const char *const snapshots[] = {
		"{\"version\": 1, \"journalId\": 7, \"roles\": [], \"tokens\": []}",
		"{\"version\": 1, \"journalId\": \"\", \"roles\": [], \"tokens\": []}",
		"{\"version\": 1, \"previousJournalId\": \"0123\", \"roles\": [], \"tokens\": []}",
		("{\n\"version\": 1,\n\"journalSequence\": 0,\n\"journalId\": \"ABCDEF0123456789abcdef0123456789\",\n"
			"\"roles\": [\n],\n\"tokens\": [\n]\n}\n"),
	};
	for(size_t i = 0; i < sizeof(snapshots) / sizeof(snapshots[0]); i++){
		test_write_file(fixture->path, snapshots[i], strlen(snapshots[i]));
		assert_load_refused(fixture, fixture->path, "ournalId' is not 32 lowercase hex digits");
	}
}

/* A pair written before ids (neither has one) loads; the next snapshot
 * gives the pair an id. */
static void old_pair_without_ids_loads_and_the_next_snapshot_adds_one(void **state)
{
	struct persist_fixture *fixture = *state;
	write_snapshot(fixture);
	test_strip_journal_ids(fixture->path);
	assert_null(journal_id_of_snapshot(fixture));
	const char *line = "{\"op\":\"createRole\",\"role\":{\"rolename\":\"old\",\"acls\":[]},\"seq\":1}\n";
	test_write_file(fixture->journal_path, line, strlen(line));
	test_add_role(&fixture->store, "old");
	struct store loaded;
	load_ok(fixture, &loaded);
	test_assert_stores_equal(&fixture->store, &loaded);
	store_clear(&loaded);
	/* Appended without an id: the pair stays an old pair until a snapshot. */
	record_role(fixture, "appended");
	load_ok(fixture, &loaded);
	test_assert_stores_equal(&fixture->store, &loaded);
	test_persist_save(fixture, &loaded);
	store_clear(&loaded);
	char *id = journal_id_of_snapshot(fixture);
	assert_non_null(id);
	assert_false(test_file_exists(fixture->journal_path));
	record_role(fixture, "new");
	char *first = first_journal_line(fixture);
	test_assert_contains(first, id);
	load_ok(fixture, &loaded);
	test_assert_stores_equal(&fixture->store, &loaded);
	store_clear(&loaded);
	free(first);
	free(id);
}

/* A journal that appears where there was none is someone else's: not
 * appended to, not deleted by the next snapshot. */
static void journal_that_appears_while_running_is_left_alone(void **state)
{
	struct persist_fixture *fixture = *state;
	write_snapshot(fixture);
	struct store loaded;
	load_ok(fixture, &loaded);
	const char *foreign = "{\"op\":\"createRole\",\"role\":{\"rolename\":\"x\",\"acls\":[]},\"seq\":1}\n";
	test_write_file(fixture->journal_path, foreign, strlen(foreign));
	struct test_snapshot before;
	test_snapshot_take(&before, fixture->journal_path);
	cJSON *change = cJSON_Parse("{\"op\":\"createRole\",\"role\":{\"rolename\":\"r\",\"acls\":[]}}");
	assert_false(persist_record(fixture->persist, change, fixture->error, sizeof(fixture->error)));
	cJSON_Delete(change);
	test_assert_contains(fixture->error, fixture->journal_path);
	test_persist_save(fixture, &loaded);
	test_snapshot_assert_unchanged(&before, fixture->journal_path);
	test_snapshot_free(&before);
	store_clear(&loaded);
}

/* ==== item 9: any layout ==== */

static void fill(struct store *store, int count)
{
	struct role *admin = test_add_role(store, "admin");
	struct role *sensors = test_add_role(store, "sensors");
	test_add_acl(sensors, ACL_PUBLISH_CLIENT_SEND, "sensors/+/data", 5, true);
	test_add_acl(admin, ACL_SUBSCRIBE_LITERAL, "$CONTROL/tokens/v1/response", 0, true);
	for(int i = 0; i < count; i++){
		char name[32];
		snprintf(name, sizeof(name), "device \"%d\" é", i);
		test_add_token(store, name, i % 3 ? sensors : admin, 1000 + i, 100000 + i, i % 2 ? TIME_NEVER : 5000 + i);
	}
}

static void write_layout(const struct persist_fixture *fixture, const cJSON *document, bool pretty)
{
	char *text = pretty ? cJSON_Print(document) : cJSON_PrintUnformatted(document);
	assert_non_null(text);
	test_write_file(fixture->path, text, strlen(text));
	free(text);
}

static void every_layout_loads_the_same_store(void **state)
{
	struct persist_fixture *fixture = *state;
	fill(&fixture->store, 301);
	test_persist_save(fixture, &fixture->store);
	cJSON *document = test_read_json(fixture->path);
	for(int pretty = 0; pretty < 2; pretty++){
		write_layout(fixture, document, pretty);
		struct store loaded;
		load_ok(fixture, &loaded);
		test_assert_stores_equal(&fixture->store, &loaded);
		store_clear(&loaded);
	}
	/* Members in another order, unknown ones among them, "tokens" first. */
	cJSON *reordered = cJSON_CreateObject();
	assert_non_null(reordered);
	cJSON_AddItemToObject(reordered, "tokens", cJSON_DetachItemFromObject(document, "tokens"));
	cJSON_AddStringToObject(reordered, "comment", "written by a script, [brackets] {and} \"quotes\"");
	cJSON_AddItemToObject(reordered, "roles", cJSON_DetachItemFromObject(document, "roles"));
	cJSON_AddItemToObject(reordered, "extra", cJSON_Parse("[{\"a\":[1,2,{\"b\":null}]},true,-1.5e3]"));
	cJSON_AddItemToObject(reordered, "journalSequence", cJSON_DetachItemFromObject(document, "journalSequence"));
	cJSON_AddItemToObject(reordered, "version", cJSON_DetachItemFromObject(document, "version"));
	cJSON_AddItemToObject(reordered, "journalId", cJSON_DetachItemFromObject(document, "journalId"));
	write_layout(fixture, reordered, false);
	struct store loaded;
	load_ok(fixture, &loaded);
	test_assert_stores_equal(&fixture->store, &loaded);
	store_clear(&loaded);
	cJSON_Delete(reordered);
	cJSON_Delete(document);
}

static void every_layout_reports_problems_the_same(void **state)
{
	struct persist_fixture *fixture = *state;
	static const struct {
		const char *text;
		const char *problem;
	} cases[] = {
		{"{\"version\":1,\"roles\":[],\"tokens\":[{\"name\":1}]}", "token 0"},
		{"{\"version\":2,\"roles\":[],\"tokens\":[]}", "'version' is not supported"},
		{"{\"roles\":[],\"tokens\":[],\"version\":1,\"version\":2}", ""},
		{"{\"version\":1,\"roles\":[],\"tokens\":[],}", "not valid JSON"},
		{"{\"version\":1,\"roles\":[],\"tokens\":[{]}", "not valid JSON"},
		{"{\"version\":1,\"roles\":[],\"tokens\":[1 2]}", "not valid JSON"},
		{"{\"version\":1,\"roles\":{},\"tokens\":[]}", "'roles' is not an array"},
		{"{\"version\":1,\"roles\":[]}", "'tokens' is missing"},
		{"{\"version\":1,\"roles\":[],\"tokens\":[]} x", "not valid JSON"},
		{"{\"version\":1,\"roles\":[],\"roles\":[{}],\"tokens\":[]}", ""},
	};
	for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++){
		test_write_file(fixture->path, cases[i].text, strlen(cases[i].text));
		struct store loaded;
		bool ok = try_load(fixture, &loaded);
		if(cases[i].problem[0] == '\0'){
			/* A duplicate member: the first one counts, as cJSON reads it. */
			assert_true(ok);
			store_clear(&loaded);
			continue;
		}
		if(ok){
			store_clear(&loaded);
			fail_msg("case %zu loaded", i);
		}
		test_assert_contains(fixture->error, cases[i].problem);
	}
}

/* ==== item 8: a missing file is told by open's errno ==== */

static void missing_snapshot_and_journal_are_an_empty_store(void **state)
{
	struct persist_fixture *fixture = *state;
	struct store loaded;
	load_ok(fixture, &loaded);
	assert_int_equal(store_token_count(&loaded), 0);
	store_clear(&loaded);
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_persist_setup, test_persist_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(fifo_as_the_state_file_is_refused_at_once),
		T(fifo_as_the_journal_is_refused_at_once),
		T(fifo_as_the_lock_file_is_refused),
		T(dangling_link_as_the_journal_is_refused_and_not_followed),
		T(link_planted_as_the_journal_while_running_is_not_followed),
		T(symlink_as_the_state_file_is_refused),
		T(symlink_as_the_lock_file_is_refused),
		T(journal_of_another_state_file_is_refused_and_kept),
		T(journal_carries_its_snapshot_id_on_its_first_line),
		T(snapshot_with_an_id_refuses_a_journal_without_one),
		T(journal_id_on_a_later_line_is_refused),
		T(malformed_journal_ids_are_refused),
		T(old_pair_without_ids_loads_and_the_next_snapshot_adds_one),
		T(journal_that_appears_while_running_is_left_alone),
		T(every_layout_loads_the_same_store),
		T(every_layout_reports_problems_the_same),
		T(missing_snapshot_and_journal_are_an_empty_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
