/*
 * Helpers shared by the unit tests: a plugin instance with a fake clock and
 * a logger that captures every line, temporary folders, file snapshots,
 * persist I/O that fails on demand, store builders and a JSON request helper
 * that runs control_handle_request.
 *
 * Every helper that cannot do its job fails the running test (cmocka), so a
 * test never goes on with half-built fixtures.
 */
#ifndef TEST_SUPPORT_H
#define TEST_SUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "persist.h"
#include "store.h"
#include "instance.h"

/* ---- formatting ---- */

/* A malloc'd printf result; the caller frees it. */
char *test_format(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* ---- fake clock ---- */

void test_clock_set(int64_t seconds);
void test_clock_advance(int64_t seconds);
/* The plugin's clock (tokens_clock_fn). */
int64_t test_clock_now(void);
/* Parses an RFC 3339 time, failing the test if it is not one. */
int64_t test_time(const char *rfc3339);

/* ---- captured log ---- */

/* The plugin's logger (tokens_log_fn): records each line and its level. */
void test_log(int level, const char *format, ...) __attribute__((format(printf, 2, 3)));
void test_log_reset(void);
/* Every captured line, each followed by '\n'. */
const char *test_log_text(void);
size_t test_log_count(void);
const char *test_log_line(size_t index);
int test_log_level(size_t index);
/* Index of the first line that starts with prefix, or -1. */
int test_log_find(const char *prefix);

/* ---- temporary folders and files ---- */

/* Creates a new empty folder; the caller frees the returned path. */
char *test_temp_dir(void);
/* Removes the folder and everything in it. */
void test_remove_dir(const char *dir);
char *test_path(const char *dir, const char *name);
void test_write_file(const char *path, const char *content, size_t length);
/* The file's bytes (NUL-terminated for convenience), or NULL if it does not exist. */
char *test_read_file(const char *path, size_t *length);
/* The same for a file that must exist: fails the test if it does not. */
char *test_read_existing(const char *path, size_t *length);
/* The file as one JSON document, failing the test if it does not exist or
 * is not JSON. The caller deletes it. */
cJSON *test_read_json(const char *path);
bool test_file_exists(const char *path);
/* Rewrites a snapshot in the writer's layout as it was before journal
 * ids: without its "journalId" and "previousJournalId" lines. */
void test_strip_journal_ids(const char *path);
/* How many entries of dir have fragment in their name. */
size_t test_count_entries_containing(const char *dir, const char *fragment);

struct test_snapshot {
	bool exists;
	char *content;
	size_t length;
};
void test_snapshot_take(struct test_snapshot *snapshot, const char *path);
/* Fails the test unless the file is byte for byte what the snapshot saw. */
void test_snapshot_assert_unchanged(const struct test_snapshot *snapshot, const char *path);
void test_snapshot_free(struct test_snapshot *snapshot);

/* ---- persist I/O that fails on demand ---- */

/* Each fails one system call of a save and passes the others through to the
 * real ones; test_io_calls counts the calls of the failing kind. */
extern const struct persist_io test_io_write_enospc;   /* write: -1, ENOSPC */
extern const struct persist_io test_io_fsync_eio;      /* fsync: -1, EIO */
extern const struct persist_io test_io_rename_eacces;  /* rename: -1, EACCES */
extern const struct persist_io test_io_short_writes;   /* write: one byte at a time (no failure) */
extern const struct persist_io test_io_unlink_eio;     /* unlink: -1, EIO */
extern int test_io_calls;

/* ---- a persist backend in a temporary folder ---- */

struct persist_fixture {
	char *dir;           /* a fresh temporary folder */
	char *path;          /* <dir>/tokens.json, not created yet */
	char *journal_path;  /* <dir>/tokens.json.journal */
	struct persist *persist;
	struct store store;  /* the state as the plugin holds it in memory */
	char error[2048];
};

/* Closes and opens the fixture's persist again, as a restarted broker. */
void test_persist_reopen(struct persist_fixture *fixture);
/* persist_save of store, which must succeed. */
void test_persist_save(struct persist_fixture *fixture, const struct store *store);
/* persist_record of one change (deleted afterwards), which must not be
 * NULL and must be recorded. */
void test_persist_record(struct persist_fixture *fixture, cJSON *change);
/* As a restarted broker: reopens, then loads into loaded (initialised
 * here), which must work. The caller clears loaded. */
void test_persist_restart_and_load(struct persist_fixture *fixture, struct store *loaded);
/* Restarts and loads into a new store, which must equal fixture->store. */
void test_assert_restart_gives_the_same_store(struct persist_fixture *fixture);
/* Restarts; loading must fail, leave the new store empty and say why in
 * fixture->error. */
void test_persist_restart_and_refuse(struct persist_fixture *fixture);
/* The "journalSequence" of the snapshot at fixture->path. */
int64_t test_persist_snapshot_sequence(const struct persist_fixture *fixture);
/* Fails the test unless text contains fragment. */
void test_assert_contains(const char *text, const char *fragment);

/* cmocka setup and teardown: *state is a struct persist_fixture. */
int test_persist_setup(void **state);
int test_persist_teardown(void **state);

/* ---- store builders ---- */

struct role *test_add_role(struct store *store, const char *name);
struct role_acl *test_add_acl(struct role *role, enum acl_type type, const char *topic, int priority, bool allow);
/* The token's hash is the SHA-256 of "secret-of-<name>". */
struct token *test_add_token(struct store *store, const char *name, struct role *role,
		int64_t issued_at, int64_t valid_until, int64_t last_used);
void test_hash_of(const char *text, unsigned char hash[TOKEN_HASH_LEN]);

/* The store as one state document (version, roles, tokens), built item by
 * item with the snapshot writer's serialisers: what a saved file holds,
 * less its journal fields and bindings. */
cJSON *test_state_json(const struct store *store);

/* ---- a plugin instance ---- */

struct test_plugin {
	struct tokens_plugin plugin;
	char *dir;         /* a fresh temporary folder */
	char *state_path;  /* <dir>/tokens.json, not created yet */
	char *journal_path;  /* <dir>/tokens.json.journal, where changes go first */
};

/* An empty store, a real JSON file persist in a new temporary folder, the
 * fake clock (set to 2026-11-28T10:00:00Z) and the captured log (emptied). */
struct test_plugin *test_plugin_new(void);
void test_plugin_free(struct test_plugin *test_plugin);
/* For cmocka groups whose state is a test_plugin: frees it, and the plugin
 * inside it. */
int test_plugin_teardown(void **state);
struct tokens_plugin *test_plugin_of(void **state);

/* ---- control requests ---- */

/* Runs control_handle_request on payload; returns the reply document
 * after checking it has a "responses" array. The caller deletes it. */
cJSON *test_request(struct tokens_plugin *plugin, const char *requester, const char *payload);
/* Fails the test unless invariants_check_plugin holds (test_request
 * checks it after every request). */
void test_assert_invariants(const struct tokens_plugin *plugin);
/* Runs {"commands": [command_json]}, checks there is exactly one response
 * and returns it detached. The caller deletes it. */
cJSON *test_command(struct tokens_plugin *plugin, const char *requester, const char *command_json);
/* Runs a command that must succeed; returns its "data" detached (NULL when
 * the command returns none). The caller deletes it. */
cJSON *test_command_ok(struct tokens_plugin *plugin, const char *requester, const char *command_json);

/* Runs a createToken of name in role, valid until valid_until (RFC 3339),
 * requested by "alice", which must succeed; returns the secret (malloc'd). */
char *test_create_token(struct tokens_plugin *plugin, const char *name, const char *role, const char *valid_until);

/* The string member key of object, failing the test if it is not a string. */
const char *test_string(const cJSON *object, const char *key);
/* Fails the test if the response carries an error. */
void test_assert_success(const cJSON *response);
/* Fails the test unless the response is an error with this code whose
 * sentence contains fragment (when fragment is not NULL), and no data. */
void test_assert_error(const cJSON *response, const char *code, const char *fragment);

/* Same roles (names, ACLs in order, token counts) and same tokens (every
 * field, client id, previous secret and notice marks included, both
 * indexes); fails the test otherwise. */
void test_assert_stores_equal(const struct store *expected, const struct store *actual);

#endif
