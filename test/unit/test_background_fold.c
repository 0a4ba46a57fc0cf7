/*
 * The background fold (docs/state-file.md, "Folding in the background"): a
 * forked child writes the snapshot of the store as it was when the fold
 * started, while changes go on being recorded; the parent installs it and
 * rebases the journal onto it. What these tests check through persist.h
 * (and the rebase's one pure function):
 *
 *  - the snapshot holds the store as it was at the start, never a change
 *    made while it was written, and its journalSequence says so;
 *  - the changes made meanwhile survive in the rebased journal, whose
 *    first line carries the new snapshot's id; a restart loads them all;
 *  - a fold that fails (in the child, or in installing) leaves files that
 *    load into the same store, and no temporary file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal.h"
#include "journal_file.h"
#include "persist.h"
#include "rfc3339.h"
#include "test_support.h"

#define OLD_ID "0123456789abcdef0123456789abcdef"
#define NEW_ID "fedcba9876543210fedcba9876543210"

/* ---- the rebase's text ---- */

static void rebased_first_line_carries_the_new_id_and_the_rest_is_untouched(void **state)
{
	(void)state;
	const char *tail = "{\"op\":\"deleteRole\",\"rolename\":\"a\",\"seq\":7,\"journalId\":\"" OLD_ID "\"}\n"
		"{\"op\":\"deleteRole\",\"rolename\":\"b\",\"seq\":8}\n";
	size_t length = 0;
	char *text = journal_rebased_text(tail, strlen(tail), NEW_ID, &length);
	assert_non_null(text);
	assert_int_equal(length, strlen(text));
	assert_string_equal(text, "{\"op\":\"deleteRole\",\"rolename\":\"a\",\"seq\":7,\"journalId\":\"" NEW_ID "\"}\n"
			"{\"op\":\"deleteRole\",\"rolename\":\"b\",\"seq\":8}\n");
	free(text);
}

static void rebased_first_line_gains_an_id_it_did_not_have(void **state)
{
	(void)state;
	const char *tail = "{\"op\":\"deleteRole\",\"rolename\":\"b\",\"seq\":8}\n{\"op\":\"x\",\"seq\":9}\n";
	size_t length = 0;
	char *text = journal_rebased_text(tail, strlen(tail), NEW_ID, &length);
	assert_non_null(text);
	assert_string_equal(text, "{\"op\":\"deleteRole\",\"rolename\":\"b\",\"seq\":8,\"journalId\":\"" NEW_ID "\"}\n"
			"{\"op\":\"x\",\"seq\":9}\n");
	free(text);
	/* An empty id (a journal before ids) takes it away. */
	text = journal_rebased_text(tail, strlen(tail), "", &length);
	assert_non_null(text);
	assert_string_equal(text, tail);
	free(text);
}

static void rebase_of_a_line_that_is_not_an_object_fails(void **state)
{
	(void)state;
	size_t length = 0;
	assert_null(journal_rebased_text("[1,2]\n", 6, NEW_ID, &length));
	assert_null(journal_rebased_text("{\"op\":\n", 7, NEW_ID, &length));
}

/* ---- folding a persist in a temporary folder ---- */

static struct role *dev_role(struct persist_fixture *fixture)
{
	struct role *role = store_find_role(&fixture->store, "dev");
	if(role == NULL){
		role = test_add_role(&fixture->store, "dev");
		struct change change = change_create_role(role);
		test_persist_record(fixture, journal_encode(&change));
	}
	return role;
}

static void create_token(struct persist_fixture *fixture, const char *name)
{
	int64_t t = test_time("2026-11-28T10:00:00Z");
	struct token *token = test_add_token(&fixture->store, name, dev_role(fixture), t, RFC3339_MAX, TIME_NEVER);
	struct change change = change_create_token(token);
	test_persist_record(fixture, journal_encode(&change));
}

/* Polls until the fold is over, as the tick does; returns how it ended. */
static enum persist_fold_state finish_fold(struct persist_fixture *fixture)
{
	const struct timespec pause = {0, 2 * 1000 * 1000};
	for(int i = 0; i < 5000; i++){
		enum persist_fold_state state = persist_fold_poll(fixture->persist, fixture->error, sizeof(fixture->error));
		if(state != PERSIST_FOLD_RUNNING){
			return state;
		}
		nanosleep(&pause, NULL);
	}
	fail_msg("the background fold did not finish in 10 s");
	return PERSIST_FOLD_FAILED;
}

static bool snapshot_has_token(const struct persist_fixture *fixture, const char *name)
{
	cJSON *document = test_read_json(fixture->path);
	bool found = false;
	const cJSON *token;
	cJSON_ArrayForEach(token, cJSON_GetObjectItemCaseSensitive(document, "tokens")){
		const cJSON *item = cJSON_GetObjectItemCaseSensitive(token, "name");
		found = found || (cJSON_IsString(item) && strcmp(item->valuestring, name) == 0);
	}
	cJSON_Delete(document);
	return found;
}

static char *snapshot_id(const struct persist_fixture *fixture)
{
	cJSON *document = test_read_json(fixture->path);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(document, "journalId");
	assert_true(cJSON_IsString(id));
	char *copy = strdup(id->valuestring);
	cJSON_Delete(document);
	return copy;
}

static void changes_made_during_the_fold_survive_in_the_rebased_journal(void **state)
{
	struct persist_fixture *fixture = *state;
	create_token(fixture, "before-1");
	create_token(fixture, "before-2");
	int64_t sequence_at_start = 3;   /* the role and two tokens */

	assert_true(persist_fold_start(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	assert_true(persist_fold_running(fixture->persist));
	assert_false(persist_wants_snapshot(fixture->persist, &fixture->store));
	/* Meanwhile, in the parent: a change in memory and in the journal. */
	create_token(fixture, "during");
	assert_int_equal(finish_fold(fixture), PERSIST_FOLD_INSTALLED);
	assert_string_equal(fixture->error, "");

	/* The snapshot is the store at the start, and says so. */
	assert_true(snapshot_has_token(fixture, "before-2"));
	assert_false(snapshot_has_token(fixture, "during"));
	assert_int_equal(test_persist_snapshot_sequence(fixture), sequence_at_start);
	/* The journal holds only the change after it, under the snapshot's id. */
	size_t length;
	char *journal = test_read_existing(fixture->journal_path, &length);
	char *id = snapshot_id(fixture);
	char *expected_id = test_format("\"journalId\":\"%s\"", id);
	test_assert_contains(journal, "\"name\":\"during\"");
	test_assert_contains(journal, expected_id);
	assert_null(strstr(journal, "before-"));
	assert_int_equal(test_count_entries_containing(fixture->dir, ".tmp."), 0);
	free(journal);
	free(id);
	free(expected_id);

	/* And later changes follow it. */
	create_token(fixture, "after");
	test_assert_restart_gives_the_same_store(fixture);
}

static void fold_with_no_change_meanwhile_removes_the_journal(void **state)
{
	struct persist_fixture *fixture = *state;
	create_token(fixture, "only");
	assert_true(persist_fold_start(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	assert_int_equal(finish_fold(fixture), PERSIST_FOLD_INSTALLED);
	assert_false(test_file_exists(fixture->journal_path));
	assert_false(persist_has_journal(fixture->persist));
	test_assert_restart_gives_the_same_store(fixture);
}

static void fold_whose_child_cannot_write_leaves_the_journal_in_charge(void **state)
{
	struct persist_fixture *fixture = *state;
	create_token(fixture, "kept");
	struct test_snapshot journal;
	test_snapshot_take(&journal, fixture->journal_path);
	persist_set_io(fixture->persist, &test_io_write_enospc);   /* the child inherits it */
	assert_true(persist_fold_start(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	persist_set_io(fixture->persist, NULL);

	assert_int_equal(finish_fold(fixture), PERSIST_FOLD_FAILED);
	test_assert_contains(fixture->error, "write failed: No space left on device");
	assert_false(test_file_exists(fixture->path));
	test_snapshot_assert_unchanged(&journal, fixture->journal_path);
	assert_int_equal(test_count_entries_containing(fixture->dir, ".tmp."), 0);
	/* Retried once the journal has doubled, not at the next change. */
	persist_set_snapshot_after(fixture->persist, 1);
	assert_false(persist_wants_snapshot(fixture->persist, &fixture->store));
	create_token(fixture, "next");
	create_token(fixture, "next-2");
	assert_false(persist_wants_snapshot(fixture->persist, &fixture->store));
	create_token(fixture, "next-3");
	assert_true(persist_wants_snapshot(fixture->persist, &fixture->store));
	test_snapshot_free(&journal);
	test_assert_restart_gives_the_same_store(fixture);
}

static void fold_whose_journal_cannot_be_rebased_keeps_the_old_journal(void **state)
{
	/* The state a crash between installing the snapshot and rebasing the
	 * journal leaves: the new snapshot beside the whole old journal. */
	struct persist_fixture *fixture = *state;
	create_token(fixture, "before");
	assert_true(persist_fold_start(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	create_token(fixture, "during");
	struct test_snapshot journal;
	test_snapshot_take(&journal, fixture->journal_path);
	/* The child has its own copy of the real calls; only the parent's
	 * rebase writes fail. */
	persist_set_io(fixture->persist, &test_io_write_enospc);
	enum persist_fold_state ended = finish_fold(fixture);
	persist_set_io(fixture->persist, NULL);

	assert_int_equal(ended, PERSIST_FOLD_INSTALLED);
	test_assert_contains(fixture->error, "the journal keeps the changes it folded in");
	assert_true(snapshot_has_token(fixture, "before"));
	test_snapshot_assert_unchanged(&journal, fixture->journal_path);
	assert_int_equal(test_count_entries_containing(fixture->dir, ".tmp."), 0);
	test_snapshot_free(&journal);
	create_token(fixture, "after");
	test_assert_restart_gives_the_same_store(fixture);
}

static void save_during_a_fold_replaces_it(void **state)
{
	struct persist_fixture *fixture = *state;
	create_token(fixture, "before");
	assert_true(persist_fold_start(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	assert_false(persist_fold_start(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	create_token(fixture, "during");
	test_persist_save(fixture, &fixture->store);

	assert_false(persist_fold_running(fixture->persist));
	assert_int_equal(persist_fold_poll(fixture->persist, fixture->error, sizeof(fixture->error)), PERSIST_FOLD_IDLE);
	assert_true(snapshot_has_token(fixture, "during"));
	assert_false(test_file_exists(fixture->journal_path));
	assert_int_equal(test_count_entries_containing(fixture->dir, ".tmp."), 0);
	test_assert_restart_gives_the_same_store(fixture);
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_persist_setup, test_persist_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rebased_first_line_carries_the_new_id_and_the_rest_is_untouched),
		cmocka_unit_test(rebased_first_line_gains_an_id_it_did_not_have),
		cmocka_unit_test(rebase_of_a_line_that_is_not_an_object_fails),
		T(changes_made_during_the_fold_survive_in_the_rebased_journal),
		T(fold_with_no_change_meanwhile_removes_the_journal),
		T(fold_whose_child_cannot_write_leaves_the_journal_in_charge),
		T(fold_whose_journal_cannot_be_rebased_keeps_the_old_journal),
		T(save_during_a_fold_replaces_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
