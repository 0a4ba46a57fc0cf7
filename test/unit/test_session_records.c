/*
 * Persistent sessions' bindings in the state files (docs/state-file.md,
 * "sessions"): the table itself, the snapshot's "sessions" array and the
 * journal's "sessions" lines, through persist.h only. What a user relies
 * on:
 *
 *  - a binding saved is a binding loaded, through a snapshot or the
 *    journal (the latest word on a client id wins, an ended one is gone);
 *  - files written before bindings existed load as none, and a store
 *    without bindings is written as before;
 *  - a malformed binding is refused, naming the file and the problem;
 *  - a tool that loads and saves without a sink or a source keeps them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "persist.h"
#include "session_records.h"
#include "state_format.h"
#include "test_support.h"

#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* ---- helpers ---- */

static const unsigned char *hash_of(const char *text)
{
	static unsigned char hashes[16][TOKEN_HASH_LEN];
	static size_t next;
	unsigned char *hash = hashes[next++ % 16];
	test_hash_of(text, hash);
	return hash;
}

static void put(struct session_records *records, const char *client_id, const char *username, const char *secret)
{
	assert_true(session_records_put(records, client_id, username, secret ? hash_of(secret) : NULL));
}

/* Same client ids, each with the same binding (bound, hash, username). */
static void assert_records_equal(const struct session_records *expected, const struct session_records *actual)
{
	assert_int_equal(session_records_count(expected), session_records_count(actual));
	for(const struct session_record *want = expected->by_id; want; want = want->hh.next){
		const struct session_record *got = session_records_find(actual, want->client_id);
		if(got == NULL){
			fail_msg("client id \"%s\" is missing", want->client_id);
		}
		assert_int_equal(got->bound, want->bound);
		assert_memory_equal(got->hash, want->hash, TOKEN_HASH_LEN);
		if((want->username == NULL) != (got->username == NULL)
				|| (want->username && strcmp(want->username, got->username) != 0)){
			fail_msg("client id \"%s\": username \"%s\", not \"%s\"", want->client_id,
					got->username ? got->username : "(null)", want->username ? want->username : "(null)");
		}
	}
}

/* A source that writes a table's bound records, in table order. */
static void each_record(void *context, session_put_fn put_fn, void *writer)
{
	const struct session_records *records = context;
	for(const struct session_record *record = records->by_id; record; record = record->hh.next){
		if(record->bound){
			const struct session_view view = {record->client_id, record->username, record->hash};
			put_fn(writer, &view);
		}
	}
}

static void save(struct persist_fixture *fixture, const struct session_records *bindings)
{
	struct session_source source = {(void *)bindings, each_record};
	persist_set_session_source(fixture->persist, bindings ? &source : NULL);
	bool saved = persist_save(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error));
	persist_set_session_source(fixture->persist, NULL);
	if(!saved){
		fail_msg("persist_save: %s", fixture->error);
	}
}

/* As a restarted broker: a new persist loads the store and the bindings
 * (into loaded, emptied first), which must work. */
static void restart_and_load(struct persist_fixture *fixture, struct session_records *loaded)
{
	test_persist_reopen(fixture);
	store_clear(&fixture->store);
	persist_set_session_sink(fixture->persist, loaded);
	fixture->error[0] = '\0';
	if(!persist_load(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error))){
		fail_msg("persist_load: %s", fixture->error);
	}
	persist_set_session_sink(fixture->persist, NULL);
}

static void assert_restart_loads(struct persist_fixture *fixture, const struct session_records *expected)
{
	struct session_records loaded;
	session_records_init(&loaded);
	restart_and_load(fixture, &loaded);
	assert_records_equal(expected, &loaded);
	session_records_clear(&loaded);
}

/* Loading must fail, naming the file and problem, with nothing loaded and
 * the files as they were. */
static void assert_refused(struct persist_fixture *fixture, const char *file, const char *what, const char *problem)
{
	struct test_snapshot snapshot, journal;
	test_snapshot_take(&snapshot, fixture->path);
	test_snapshot_take(&journal, fixture->journal_path);
	struct session_records loaded;
	session_records_init(&loaded);
	put(&loaded, "left over", NULL, "x");
	test_persist_reopen(fixture);
	store_clear(&fixture->store);
	persist_set_session_sink(fixture->persist, &loaded);
	fixture->error[0] = '\0';
	if(persist_load(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error))){
		fail_msg("%s: loaded instead of refusing", what);
	}
	if(strstr(fixture->error, file) == NULL || strstr(fixture->error, problem) == NULL){
		fail_msg("%s: the error \"%s\" does not name %s and \"%s\"", what, fixture->error, file, problem);
	}
	assert_int_equal(session_records_count(&loaded), 0);
	assert_int_equal(store_token_count(&fixture->store), 0);
	test_snapshot_assert_unchanged(&snapshot, fixture->path);
	test_snapshot_assert_unchanged(&journal, fixture->journal_path);
	test_snapshot_free(&snapshot);
	test_snapshot_free(&journal);
	persist_set_session_sink(fixture->persist, NULL);
}

static void record_text(struct persist_fixture *fixture, const char *line)
{
	cJSON *change = cJSON_Parse(line);
	if(change == NULL){
		fail_msg("test line is not JSON: %s", line);
	}
	test_persist_record(fixture, change);
}

/* Replaces the first from in the file by to. */
static void edit_file(const char *path, const char *from, const char *to)
{
	char *text = test_read_file(path, NULL);
	assert_non_null(text);
	char *at = strstr(text, from);
	if(at == NULL){
		fail_msg("%s does not hold \"%s\"", path, from);
	}
	*at = '\0';
	char *edited = test_format("%s%s%s", text, to, at + strlen(from));
	test_write_file(path, edited, strlen(edited));
	free(edited);
	free(text);
}

/* ---- the table ---- */

static void table_inserts_replaces_and_removes(void **state)
{
	(void)state;
	struct session_records records;
	session_records_init(&records);
	assert_int_equal(session_records_count(&records), 0);
	assert_null(session_records_find(&records, "a"));
	put(&records, "a", "user-a", "secret-1");
	put(&records, "b", NULL, "secret-2");
	put(&records, "c", "", NULL);
	assert_int_equal(session_records_count(&records), 3);

	const struct session_record *a = session_records_find(&records, "a");
	assert_true(a->bound);
	assert_string_equal(a->username, "user-a");
	assert_memory_equal(a->hash, hash_of("secret-1"), TOKEN_HASH_LEN);
	assert_null(session_records_find(&records, "b")->username);
	const struct session_record *c = session_records_find(&records, "c");
	assert_false(c->bound);
	assert_string_equal(c->username, "");
	static const unsigned char zero[TOKEN_HASH_LEN];
	assert_memory_equal(c->hash, zero, TOKEN_HASH_LEN);

	/* The latest word wins: an end, then a new binding. */
	put(&records, "a", NULL, NULL);
	assert_int_equal(session_records_count(&records), 3);
	assert_false(session_records_find(&records, "a")->bound);
	put(&records, "a", "other", "secret-3");
	a = session_records_find(&records, "a");
	assert_true(a->bound);
	assert_string_equal(a->username, "other");
	assert_memory_equal(a->hash, hash_of("secret-3"), TOKEN_HASH_LEN);

	session_records_remove(&records, "b");
	session_records_remove(&records, "not there");
	assert_null(session_records_find(&records, "b"));
	assert_int_equal(session_records_count(&records), 2);
	session_records_clear(&records);
	assert_int_equal(session_records_count(&records), 0);
	put(&records, "again", NULL, "s");   /* usable after clear */
	session_records_clear(&records);
}

static void sorted_gives_bound_records_in_byte_order(void **state)
{
	(void)state;
	struct session_records records;
	session_records_init(&records);
	const char *ids[] = {"é-device", "b", "B", "a-long-one", "a", "ended", "Z9"};
	for(size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++){
		put(&records, ids[i], NULL, strcmp(ids[i], "ended") == 0 ? NULL : ids[i]);
	}
	size_t count;
	const struct session_record **sorted = session_records_sorted(&records, &count);
	assert_non_null(sorted);
	const char *expected[] = {"B", "Z9", "a", "a-long-one", "b", "é-device"};
	assert_int_equal(count, 6);
	for(size_t i = 0; i < count; i++){
		assert_string_equal(sorted[i]->client_id, expected[i]);
	}
	free(sorted);
	session_records_clear(&records);
	sorted = session_records_sorted(&records, &count);
	assert_non_null(sorted);
	assert_int_equal(count, 0);
	free(sorted);
}

/* ---- the snapshot ---- */

/* Client ids and usernames a JSON writer must escape, or that look like
 * the layout's own lines. */
static void fill_bindings(struct session_records *bindings)
{
	put(bindings, "boiler-7", "boiler-7", "secret-of-boiler-7");
	put(bindings, "no-username", NULL, "secret-of-boiler-7");
	put(bindings, "empty-username", "", "secret-2");
	put(bindings, "quote\"back\\slash", "tab\there", "secret-3");
	put(bindings, "],\n\"sessions\": [", "{\"clientId\":", "secret-4");
	put(bindings, "Größe ✓ 😀", "ünïcode", "secret-5");
	put(bindings, "a, b [c] {d}", "e, f", "no token has this");
}

static void fill_store(struct store *store)
{
	struct role *role = test_add_role(store, "sensors");
	test_add_token(store, "boiler-7", role, 1, 2, TIME_NEVER);
}

static void bindings_round_trip_through_a_snapshot(void **state)
{
	struct persist_fixture *fixture = *state;
	fill_store(&fixture->store);
	struct session_records bindings;
	session_records_init(&bindings);
	fill_bindings(&bindings);
	save(fixture, &bindings);
	assert_restart_loads(fixture, &bindings);

	/* Only the hash, never a secret; "sessions" after "tokens". */
	char *text = test_read_file(fixture->path, NULL);
	assert_null(strstr(text, "secret-"));
	assert_non_null(strstr(text, "\n],\n\"sessions\": [\n{\"clientId\":\"Gr"));
	assert_true(strstr(text, "\"tokens\": [") < strstr(text, "\"sessions\": ["));
	cJSON *document = cJSON_Parse(text);
	free(text);
	const cJSON *sessions = cJSON_GetObjectItemCaseSensitive(document, "sessions");
	assert_int_equal(cJSON_GetArraySize(sessions), 7);
	/* Sorted by client id, byte order. */
	const char *previous = "";
	const cJSON *item;
	cJSON_ArrayForEach(item, sessions){
		const char *client_id = test_string(item, "clientId");
		assert_true(strcmp(previous, client_id) < 0);
		previous = client_id;
		assert_int_equal(strlen(test_string(item, "hash")), 64);
	}
	cJSON_Delete(document);

	/* With no tokens at all, too. */
	store_clear(&fixture->store);
	save(fixture, &bindings);
	assert_restart_loads(fixture, &bindings);
	assert_int_equal(store_token_count(&fixture->store), 0);
	session_records_clear(&bindings);
}

static void snapshots_are_the_same_whatever_the_order_of_the_source(void **state)
{
	struct persist_fixture *fixture = *state;
	fill_store(&fixture->store);
	struct session_records forward, backward;
	session_records_init(&forward);
	session_records_init(&backward);
	for(int i = 0; i < 50; i++){
		char id[16];
		snprintf(id, sizeof(id), "device-%02d", i);
		put(&forward, id, id, id);
		snprintf(id, sizeof(id), "device-%02d", 49 - i);
		put(&backward, id, id, id);
	}
	save(fixture, &forward);
	test_strip_journal_ids(fixture->path);
	char *first = test_read_file(fixture->path, NULL);
	save(fixture, &backward);
	test_strip_journal_ids(fixture->path);
	char *second = test_read_file(fixture->path, NULL);
	assert_string_equal(first, second);
	free(first);
	free(second);
	session_records_clear(&forward);
	session_records_clear(&backward);
}

/* A source that gives the same client id twice, and views the file could
 * not keep. */
static void each_odd_view(void *context, session_put_fn put_fn, void *writer)
{
	(void)context;
	char *long_text = malloc(SESSION_TEXT_MAX_BYTES + 2);
	assert_non_null(long_text);
	memset(long_text, 'x', SESSION_TEXT_MAX_BYTES + 1);
	long_text[SESSION_TEXT_MAX_BYTES + 1] = '\0';
	const struct session_view views[] = {
		{"twice", "first", hash_of("1")},
		{"", NULL, hash_of("2")},
		{"no hash", NULL, NULL},
		{long_text, NULL, hash_of("3")},
		{"long username", long_text, hash_of("4")},
		{"twice", "second", hash_of("5")},
		{long_text + 1, long_text + 1, hash_of("6")},   /* the longest there may be */
	};
	for(size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++){
		put_fn(writer, &views[i]);
	}
	free(long_text);   /* written after each returns: persist copied them */
}

static void a_snapshot_keeps_what_it_can_load(void **state)
{
	struct persist_fixture *fixture = *state;
	struct session_source source = {NULL, each_odd_view};
	persist_set_session_source(fixture->persist, &source);
	assert_true(persist_save(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	struct session_records loaded;
	session_records_init(&loaded);
	restart_and_load(fixture, &loaded);
	assert_int_equal(session_records_count(&loaded), 2);
	const struct session_record *twice = session_records_find(&loaded, "twice");
	assert_string_equal(twice->username, "second");
	assert_memory_equal(twice->hash, hash_of("5"), TOKEN_HASH_LEN);
	const struct session_record *longest = loaded.by_id;
	if(longest == twice){
		longest = longest->hh.next;
	}
	assert_int_equal(strlen(longest->client_id), SESSION_TEXT_MAX_BYTES);
	assert_int_equal(strlen(longest->username), SESSION_TEXT_MAX_BYTES);
	session_records_clear(&loaded);
}

static void without_bindings_the_file_is_as_before(void **state)
{
	struct persist_fixture *fixture = *state;
	fill_store(&fixture->store);
	struct session_records none;
	session_records_init(&none);
	save(fixture, &none);
	char *text = test_read_file(fixture->path, NULL);
	assert_null(strstr(text, "sessions"));
	assert_non_null(strstr(text, "\n]\n}\n"));
	free(text);
	save(fixture, NULL);
	text = test_read_file(fixture->path, NULL);
	assert_null(strstr(text, "sessions"));
	free(text);
}

static void files_without_sessions_load_as_no_bindings(void **state)
{
	struct persist_fixture *fixture = *state;
	/* Written by hand, or by a plugin before bindings were kept. */
	const char *old = "{\"version\": 1, \"roles\": [{\"rolename\": \"admin\", \"acls\": []}], \"tokens\": []}\n";
	test_write_file(fixture->path, old, strlen(old));
	struct session_records loaded;
	session_records_init(&loaded);
	put(&loaded, "left over", NULL, "x");   /* a sink is emptied first */
	restart_and_load(fixture, &loaded);
	assert_int_equal(session_records_count(&loaded), 0);
	assert_int_equal(store_role_count(&fixture->store), 1);

	/* The writer's layout of before, too. */
	save(fixture, NULL);
	restart_and_load(fixture, &loaded);
	assert_int_equal(session_records_count(&loaded), 0);

	/* And no snapshot at all. */
	remove(fixture->path);
	restart_and_load(fixture, &loaded);
	assert_int_equal(session_records_count(&loaded), 0);
	session_records_clear(&loaded);
}

/* ---- other layouts ---- */

static void rewrite_snapshot(struct persist_fixture *fixture, char *(*print)(const cJSON *))
{
	cJSON *document = test_read_json(fixture->path);
	char *printed = print(document);
	cJSON_Delete(document);
	assert_non_null(printed);
	test_write_file(fixture->path, printed, strlen(printed));
	free(printed);
}

static void every_layout_loads_the_same_bindings(void **state)
{
	struct persist_fixture *fixture = *state;
	fill_store(&fixture->store);
	struct session_records bindings;
	session_records_init(&bindings);
	fill_bindings(&bindings);
	save(fixture, &bindings);
	rewrite_snapshot(fixture, cJSON_Print);             /* pretty-printed */
	assert_restart_loads(fixture, &bindings);
	rewrite_snapshot(fixture, cJSON_PrintUnformatted);  /* one line, as from jq -c */
	assert_restart_loads(fixture, &bindings);

	/* The writer's layout with the keys of a binding in another order. */
	save(fixture, &bindings);
	edit_file(fixture->path, "{\"clientId\":\"boiler-7\",\"username\":\"boiler-7\",",
			"{\"username\":\"boiler-7\",\"clientId\":\"boiler-7\",");
	assert_restart_loads(fixture, &bindings);

	/* "sessions" before the roles, in the writer's layout otherwise. */
	const char *early = "{\n\"version\": 1,\n\"sessions\": [{\"clientId\": \"a\", \"username\": null, \"hash\": \"" HASH_A "\"}],\n"
		"\"roles\": [\n],\n\"tokens\": [\n]\n}\n";
	test_write_file(fixture->path, early, strlen(early));
	session_records_clear(&bindings);
	unsigned char hash_a[TOKEN_HASH_LEN];
	assert_true(token_format_hash_from_hex(HASH_A, hash_a));
	assert_true(session_records_put(&bindings, "a", NULL, hash_a));
	assert_restart_loads(fixture, &bindings);

	/* An empty "sessions" array in the writer's layout. */
	fill_store(&fixture->store);
	save(fixture, NULL);
	edit_file(fixture->path, "\n]\n}\n", "\n],\n\"sessions\": [\n]\n}\n");
	session_records_clear(&bindings);
	assert_restart_loads(fixture, &bindings);
	assert_int_equal(store_token_count(&fixture->store), 1);
}

/* ---- snapshots the loader refuses ---- */

#define BINDING(id, username, hash) "{\"clientId\": " id ", \"username\": " username ", \"hash\": " hash "}"
#define GOOD_HASH "\"" HASH_A "\""
#define WITH_SESSIONS(items) "{\"version\": 1, \"roles\": [], \"tokens\": [], \"sessions\": [" items "]}\n"

struct refusal {
	const char *what;
	const char *content;
	const char *problem;
};

static const struct refusal refused_snapshots[] = {
	{"duplicate clientId", WITH_SESSIONS(BINDING("\"a\"", "null", GOOD_HASH) ", " BINDING("\"a\"", "\"u\"", GOOD_HASH)),
		"session \"a\": duplicate clientId"},
	{"empty clientId", WITH_SESSIONS(BINDING("\"\"", "null", GOOD_HASH)), "session 0: 'clientId' is empty"},
	{"clientId a number", WITH_SESSIONS(BINDING("7", "null", GOOD_HASH)), "session 0: 'clientId' is not a string"},
	{"clientId null", WITH_SESSIONS(BINDING("null", "null", GOOD_HASH)), "session 0: 'clientId' is not a string"},
	{"clientId missing", WITH_SESSIONS("{\"username\": null, \"hash\": " GOOD_HASH "}"), "session 0: 'clientId' is missing"},
	{"username a number", WITH_SESSIONS(BINDING("\"a\"", "3", GOOD_HASH)),
		"session \"a\": 'username' is not a string or null"},
	{"username missing", WITH_SESSIONS("{\"clientId\": \"a\", \"hash\": " GOOD_HASH "}"), "session \"a\": 'username' is missing"},
	{"hash uppercase", WITH_SESSIONS(BINDING("\"a\"", "null", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"")),
		"session \"a\": 'hash' is not 64 lowercase hex digits"},
	{"hash short", WITH_SESSIONS(BINDING("\"a\"", "null", "\"aaaa\"")), "session \"a\": 'hash' is not 64 lowercase hex digits"},
	{"hash missing", WITH_SESSIONS("{\"clientId\": \"a\", \"username\": null}"), "session \"a\": 'hash' is missing"},
	{"binding not an object", WITH_SESSIONS("[\"a\"]"), "session 0: not an object"},
	{"sessions not an array", "{\"version\": 1, \"roles\": [], \"tokens\": [], \"sessions\": {}}", "'sessions' is not an array"},
	{"second binding bad", WITH_SESSIONS(BINDING("\"a\"", "null", GOOD_HASH) ", " BINDING("\"\"", "null", GOOD_HASH)),
		"session 1: 'clientId' is empty"},
	{"control characters named safely", WITH_SESSIONS(BINDING("\"a\\nb\"", "null", "\"x\"")),
		"session \"a\\x0ab\": 'hash' is not 64"},
};

static void malformed_bindings_are_refused(void **state)
{
	struct persist_fixture *fixture = *state;
	for(size_t i = 0; i < sizeof(refused_snapshots) / sizeof(refused_snapshots[0]); i++){
		const struct refusal *c = &refused_snapshots[i];
		test_write_file(fixture->path, c->content, strlen(c->content));
		assert_refused(fixture, fixture->path, c->what, c->problem);
		/* Pretty-printed, the same. */
		cJSON *document = cJSON_Parse(c->content);
		char *pretty = cJSON_Print(document);
		cJSON_Delete(document);
		test_write_file(fixture->path, pretty, strlen(pretty));
		free(pretty);
		assert_refused(fixture, fixture->path, c->what, c->problem);
	}
}

static void too_long_texts_are_refused(void **state)
{
	struct persist_fixture *fixture = *state;
	char *long_text = malloc(SESSION_TEXT_MAX_BYTES + 2);
	assert_non_null(long_text);
	memset(long_text, 'x', SESSION_TEXT_MAX_BYTES + 1);
	long_text[SESSION_TEXT_MAX_BYTES + 1] = '\0';
	char *content = test_format(WITH_SESSIONS(BINDING("\"%s\"", "null", GOOD_HASH)), long_text);
	test_write_file(fixture->path, content, strlen(content));
	free(content);
	assert_refused(fixture, fixture->path, "long clientId", "session 0: 'clientId' is longer than 65535 bytes");
	content = test_format(WITH_SESSIONS(BINDING("\"a\"", "\"%s\"", GOOD_HASH)), long_text);
	test_write_file(fixture->path, content, strlen(content));
	free(content);
	assert_refused(fixture, fixture->path, "long username", "session \"a\": 'username' is longer than 65535 bytes");
	free(long_text);
}

/* The same problems on the writer's own layout (its line-by-line path). */
static void malformed_binding_lines_are_refused(void **state)
{
	struct persist_fixture *fixture = *state;
	fill_store(&fixture->store);
	struct session_records bindings;
	session_records_init(&bindings);
	fill_bindings(&bindings);
	char hash_hex[TOKEN_HASH_HEX_LEN + 1];
	token_format_hash_to_hex(hash_of("secret-of-boiler-7"), hash_hex);
	/* The token has the same hash: the binding's follows its username. */
	char *not_hex = test_format("\"username\":\"boiler-7\",\"hash\":\"G%s", hash_hex + 1);
	char *lower = test_format("\"username\":\"boiler-7\",\"hash\":\"%s", hash_hex);
	const struct {
		const char *what, *from, *to, *problem;
	} edits[] = {
		{"empty clientId", "\"clientId\":\"boiler-7\"", "\"clientId\":\"\"", "'clientId' is empty"},
		{"duplicate clientId", "\"clientId\":\"boiler-7\"", "\"clientId\":\"no-username\"",
			"session \"no-username\": duplicate clientId"},
		{"username a number", "\"username\":null", "\"username\":5", "'username' is not a string or null"},
		{"hash not lowercase", lower, not_hex, "session \"boiler-7\": 'hash' is not 64 lowercase hex digits"},
		{"clientId an object", "\"clientId\":\"boiler-7\"", "\"clientId\":{}", "'clientId' is not a string"},
	};
	for(size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++){
		save(fixture, &bindings);
		edit_file(fixture->path, edits[i].from, edits[i].to);
		assert_refused(fixture, fixture->path, edits[i].what, edits[i].problem);
		fill_store(&fixture->store);
	}
	free(not_hex);
	free(lower);
	session_records_clear(&bindings);
}

/* ---- the journal ---- */

/* Records the changes as the periodic save does, and empties them. */
static void record_changes(struct persist_fixture *fixture, struct session_records *changes)
{
	cJSON *change = journal_sessions_of(changes, SIZE_MAX);
	assert_non_null(change);
	assert_int_equal(journal_change_count(change), session_records_count(changes));
	test_persist_record(fixture, change);
	session_records_clear(changes);
}

/* Applies changes to the bindings as loading must: latest wins, an end
 * removes. */
static void apply(struct session_records *bindings, const struct session_records *changes)
{
	for(const struct session_record *record = changes->by_id; record; record = record->hh.next){
		if(record->bound){
			assert_true(session_records_put(bindings, record->client_id, record->username, record->hash));
		}else{
			session_records_remove(bindings, record->client_id);
		}
	}
}

/* A restart whose loaded bindings the test does not look at. */
static void restart_dropping_bindings(struct persist_fixture *fixture)
{
	struct session_records ignored;
	session_records_init(&ignored);
	restart_and_load(fixture, &ignored);
	session_records_clear(&ignored);
}

/* The sample store and bindings (into bindings, which the caller clears)
 * in a snapshot, and a restart that reads it: the journal lines that
 * follow belong to it. */
static void saved_and_restarted(struct persist_fixture *fixture, struct session_records *bindings)
{
	fill_store(&fixture->store);
	session_records_init(bindings);
	fill_bindings(bindings);
	save(fixture, bindings);
	restart_dropping_bindings(fixture);
}

static void bindings_round_trip_through_journal_lines(void **state)
{
	struct persist_fixture *fixture = *state;
	struct session_records bindings, changes;
	session_records_init(&changes);
	saved_and_restarted(fixture, &bindings);

	/* Bound, then ended, then bound again; an end of one never bound. */
	put(&changes, "new-one", "n", "s1");
	put(&changes, "boiler-7", NULL, NULL);
	put(&changes, "never bound", NULL, NULL);
	apply(&bindings, &changes);
	record_changes(fixture, &changes);
	put(&changes, "new-one", NULL, NULL);
	put(&changes, "boiler-7", "boiler-7", "s2");
	put(&changes, "quote\"back\\slash", NULL, "s3");   /* a new username, a new secret */
	apply(&bindings, &changes);
	record_changes(fixture, &changes);
	put(&changes, "new-one", "again", "s4");
	apply(&bindings, &changes);
	record_changes(fixture, &changes);
	assert_restart_loads(fixture, &bindings);

	/* Replayed on no snapshot at all, from a journal alone. */
	remove(fixture->path);
	test_persist_reopen(fixture);
	assert_true(persist_load(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	session_records_clear(&bindings);
	put(&changes, "only", NULL, "s5");
	apply(&bindings, &changes);
	remove(fixture->journal_path);
	test_persist_reopen(fixture);
	store_clear(&fixture->store);
	assert_true(persist_load(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	record_changes(fixture, &changes);
	assert_restart_loads(fixture, &bindings);
	session_records_clear(&bindings);
}

static void a_sessions_line_has_the_documented_shape(void **state)
{
	struct persist_fixture *fixture = *state;
	assert_true(persist_load(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	struct session_records changes;
	session_records_init(&changes);
	put(&changes, "boiler-7", NULL, "secret-of-boiler-7");
	put(&changes, "boiler-8", NULL, NULL);
	put(&changes, "with, comma [and] {braces} \"quotes\"", "u", "x");
	put(&changes, "ended, with \\ comma", NULL, NULL);
	record_changes(fixture, &changes);

	char *text = test_read_file(fixture->journal_path, NULL);
	assert_null(strstr(text, "secret-of"));
	cJSON *line = cJSON_Parse(text);
	free(text);
	assert_string_equal(test_string(line, "op"), "sessions");
	assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(line, "seq")));
	const cJSON *bound = cJSON_GetObjectItemCaseSensitive(line, "bound");
	const cJSON *ended = cJSON_GetObjectItemCaseSensitive(line, "ended");
	assert_int_equal(cJSON_GetArraySize(bound), 2);
	assert_int_equal(cJSON_GetArraySize(ended), 2);
	const cJSON *first = cJSON_GetArrayItem(bound, 0);
	assert_string_equal(test_string(first, "clientId"), "boiler-7");
	assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(first, "username")));
	char hash_hex[TOKEN_HASH_HEX_LEN + 1];
	token_format_hash_to_hex(hash_of("secret-of-boiler-7"), hash_hex);
	assert_string_equal(test_string(first, "hash"), hash_hex);
	assert_string_equal(cJSON_GetArrayItem(ended, 0)->valuestring, "boiler-8");
	/* Counted as four changes, as recorded and as replayed. */
	assert_int_equal(journal_change_count(line), 4);
	cJSON_Delete(line);

	/* An empty change is no change. */
	cJSON *empty = journal_sessions_of(&changes, SIZE_MAX);
	assert_int_equal(journal_change_count(empty), 0);
	cJSON_Delete(empty);
}

/* Starts a journal holding the one line given (persist adds "seq"). */
static void write_journal_line(struct persist_fixture *fixture, const char *line)
{
	remove(fixture->path);
	remove(fixture->journal_path);
	test_persist_reopen(fixture);
	store_clear(&fixture->store);
	assert_true(persist_load(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	record_text(fixture, line);
}

#define SESSIONS_LINE(bound, ended) "{\"op\": \"sessions\", \"bound\": [" bound "], \"ended\": [" ended "]}"

static const struct refusal refused_lines[] = {
	{"bound not an array", "{\"op\": \"sessions\", \"bound\": {}, \"ended\": []}", "'bound' and 'ended' must be arrays"},
	{"ended missing", "{\"op\": \"sessions\", \"bound\": []}", "'bound' and 'ended' must be arrays"},
	{"bad hash", SESSIONS_LINE(BINDING("\"a\"", "null", "\"xyz\""), ""), "session \"a\": 'hash' is not 64"},
	{"empty client id", SESSIONS_LINE(BINDING("\"\"", "null", GOOD_HASH), ""), "session 0: 'clientId' is empty"},
	{"username a number", SESSIONS_LINE(BINDING("\"a\"", "1", GOOD_HASH), ""), "'username' is not a string or null"},
	{"ended a number", SESSIONS_LINE("", "\"a\", 5"), "'ended' item 1 is not a string"},
	{"ended empty", SESSIONS_LINE("", "\"\""), "'ended' item 0 is empty"},
	{"bound twice", SESSIONS_LINE(BINDING("\"a\"", "null", GOOD_HASH) "," BINDING("\"a\"", "null", GOOD_HASH), ""),
		"session \"a\": duplicate clientId"},
	{"bound and ended", SESSIONS_LINE(BINDING("\"a\"", "null", GOOD_HASH), "\"a\""), "session \"a\": duplicate clientId"},
};

static void malformed_sessions_lines_are_refused(void **state)
{
	struct persist_fixture *fixture = *state;
	for(size_t i = 0; i < sizeof(refused_lines) / sizeof(refused_lines[0]); i++){
		write_journal_line(fixture, refused_lines[i].content);
		char *where = test_format("%s line 1: ", fixture->journal_path);
		assert_refused(fixture, where, refused_lines[i].what, refused_lines[i].problem);
		free(where);
	}
	/* A hash of no token is advisory, not malformed. */
	write_journal_line(fixture, SESSIONS_LINE(BINDING("\"a\"", "\"u\"", GOOD_HASH), "\"b\""));
	struct session_records expected;
	session_records_init(&expected);
	unsigned char hash_a[TOKEN_HASH_LEN];
	assert_true(token_format_hash_from_hex(HASH_A, hash_a));
	assert_true(session_records_put(&expected, "a", "u", hash_a));
	assert_restart_loads(fixture, &expected);
	session_records_clear(&expected);
}

/* ---- tools that set neither a sink nor a source ---- */

static void a_tool_that_loads_and_saves_keeps_the_bindings(void **state)
{
	struct persist_fixture *fixture = *state;
	struct session_records bindings, changes;
	session_records_init(&changes);
	saved_and_restarted(fixture, &bindings);
	put(&changes, "boiler-7", NULL, NULL);
	put(&changes, "from the journal", "j", "s");
	apply(&bindings, &changes);
	record_changes(fixture, &changes);

	/* mosquitto_ctrl, say: load, change the store, save. */
	test_persist_reopen(fixture);
	store_clear(&fixture->store);
	assert_true(persist_load(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	test_add_role(&fixture->store, "added by the tool");
	assert_true(persist_save(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	assert_false(test_file_exists(fixture->journal_path));
	assert_restart_loads(fixture, &bindings);
	assert_non_null(store_find_role(&fixture->store, "added by the tool"));

	/* Twice over, with nothing loaded in between but the snapshot. */
	test_persist_reopen(fixture);
	store_clear(&fixture->store);
	assert_true(persist_load(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	assert_true(persist_save(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	assert_restart_loads(fixture, &bindings);
	session_records_clear(&bindings);
}

/* ---- when to snapshot ---- */

static void each_binding_made_or_ended_is_a_change(void **state)
{
	struct persist_fixture *fixture = *state;
	assert_true(persist_load(fixture->persist, &fixture->store, fixture->error, sizeof(fixture->error)));
	persist_set_snapshot_after(fixture->persist, 3);
	struct session_records changes;
	session_records_init(&changes);
	put(&changes, "a", NULL, "s");
	put(&changes, "b", NULL, NULL);
	record_changes(fixture, &changes);
	assert_false(persist_wants_snapshot(fixture->persist, &fixture->store));   /* 2 */
	put(&changes, "c", NULL, NULL);
	record_changes(fixture, &changes);
	assert_true(persist_wants_snapshot(fixture->persist, &fixture->store));    /* 3 */

	/* Replayed lines count the same. */
	restart_dropping_bindings(fixture);
	persist_set_snapshot_after(fixture->persist, 3);
	assert_true(persist_wants_snapshot(fixture->persist, &fixture->store));
	persist_set_snapshot_after(fixture->persist, 4);
	assert_false(persist_wants_snapshot(fixture->persist, &fixture->store));
}

/* Records the end of count bindings no one made (ghost-<first>...). */
static void record_ghost_ends(struct persist_fixture *fixture, int first, int count)
{
	struct session_records changes;
	session_records_init(&changes);
	for(int i = first; i < first + count; i++){
		char id[16];
		snprintf(id, sizeof(id), "ghost-%05d", i);
		put(&changes, id, NULL, NULL);
	}
	record_changes(fixture, &changes);
}

/* A snapshot costs as much as its bindings too: with more items than the
 * floor, as many changes as tokens, roles and bindings. */
static void bindings_count_as_items_of_the_store(void **state)
{
	struct persist_fixture *fixture = *state;
	fill_store(&fixture->store);   /* 2 items */
	struct session_records bindings;
	session_records_init(&bindings);
	for(int i = 0; i < 11998; i++){
		char id[16];
		snprintf(id, sizeof(id), "device-%05d", i);
		put(&bindings, id, NULL, "s");
	}
	save(fixture, &bindings);   /* 12,000 items */
	record_ghost_ends(fixture, 0, 10000);
	assert_false(persist_wants_snapshot(fixture->persist, &fixture->store));   /* 10,000 */
	record_ghost_ends(fixture, 10000, 1999);
	assert_false(persist_wants_snapshot(fixture->persist, &fixture->store));   /* 11,999 */
	record_ghost_ends(fixture, 11999, 1);
	assert_true(persist_wants_snapshot(fixture->persist, &fixture->store));    /* 12,000 */

	/* After a restart, the bindings loaded count. */
	assert_restart_loads(fixture, &bindings);
	assert_true(persist_wants_snapshot(fixture->persist, &fixture->store));
	save(fixture, &bindings);
	assert_false(persist_wants_snapshot(fixture->persist, &fixture->store));
	record_ghost_ends(fixture, 0, 11999);
	assert_false(persist_wants_snapshot(fixture->persist, &fixture->store));
	session_records_clear(&bindings);
}

/* Client ids are the client's choice: quotes, backslashes, commas and
 * brackets inside them are not items of the lists. */
static void changes_are_counted_whatever_the_client_ids_hold(void **state)
{
	(void)state;
	static const char *const ids[] = {"a\"],[\"b", "c\\", "\\\"", ",,,", "{[}]", "\\", "plain"};
	struct session_records changes;
	session_records_init(&changes);
	for(size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++){
		assert_true(session_records_put(&changes, ids[i], i % 2 ? ids[i] : NULL, i % 3 ? hash_of(ids[i]) : NULL));
	}
	cJSON *line = journal_sessions_of(&changes, SIZE_MAX);
	assert_int_equal(journal_change_count(line), sizeof(ids) / sizeof(ids[0]));
	char *text = cJSON_PrintUnformatted(line);
	cJSON *parsed = cJSON_Parse(text);
	assert_non_null(parsed);
	assert_int_equal(journal_change_count(parsed), sizeof(ids) / sizeof(ids[0]));
	cJSON *first_three = journal_sessions_of(&changes, 3);
	assert_int_equal(journal_change_count(first_three), 3);
	cJSON_Delete(first_three);
	cJSON_Delete(parsed);
	free(text);
	cJSON_Delete(line);
	session_records_clear(&changes);
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_persist_setup, test_persist_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_inserts_replaces_and_removes),
		cmocka_unit_test(changes_are_counted_whatever_the_client_ids_hold),
		cmocka_unit_test(sorted_gives_bound_records_in_byte_order),
		T(bindings_round_trip_through_a_snapshot),
		T(snapshots_are_the_same_whatever_the_order_of_the_source),
		T(a_snapshot_keeps_what_it_can_load),
		T(without_bindings_the_file_is_as_before),
		T(files_without_sessions_load_as_no_bindings),
		T(every_layout_loads_the_same_bindings),
		T(malformed_bindings_are_refused),
		T(too_long_texts_are_refused),
		T(malformed_binding_lines_are_refused),
		T(bindings_round_trip_through_journal_lines),
		T(a_sessions_line_has_the_documented_shape),
		T(malformed_sessions_lines_are_refused),
		T(a_tool_that_loads_and_saves_keeps_the_bindings),
		T(each_binding_made_or_ended_is_a_change),
		T(bindings_count_as_items_of_the_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
