/*
 * libFuzzer harness for loading the state: the snapshot reader and the
 * journal replay. The input is the two files' bytes, the snapshot first,
 * then, after a line "--- journal ---", the journal:
 *
 *     {"version": 1, "roles": [], "tokens": []}
 *     --- journal ---
 *     {"op":"createRole","role":{"rolename":"r","acls":[]},"seq":1}
 *
 * Without the line the whole input is the snapshot and there is no
 * journal; an empty snapshot part means no snapshot file.
 *
 * What must hold: a refused load leaves both files byte for byte as they
 * were and the store and the persistent sessions' bindings empty; an
 * accepted one, saved as a new snapshot (the bindings through a session
 * source), loads back into the same state and the same bindings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "invariants.h"
#include "persist.h"
#include "session_records.h"
#include "store.h"
#include "fuzz_support.h"

#define JOURNAL_SEPARATOR "\n--- journal ---\n"

static void write_or_remove(const char *path, const uint8_t *bytes, size_t length, bool exists)
{
	if(exists){
		fuzz_write_file(path, bytes, length);
	}else{
		fuzz_remove(path);
	}
}

static void assert_file_is(const char *path, const uint8_t *bytes, size_t length, bool exists)
{
	size_t actual_length = 0;
	unsigned char *actual = fuzz_read_file(path, &actual_length);
	if((actual != NULL) != exists || (exists && (actual_length != length || memcmp(actual, bytes, length) != 0))){
		fuzz_fail("a refused load changed %s", path);
	}
	free(actual);
}

static struct persist *open_persist(void)
{
	char error[1024] = "";
	struct persist *persist = persist_open(fuzz_state_path(), error, sizeof(error));
	if(persist == NULL){
		fuzz_fail("persist_open: %s", error);
	}
	return persist;
}

/* A session source over a loaded table, as the plugin's is over its
 * sessions. */
static void each_loaded(void *context, session_put_fn put, void *writer)
{
	const struct session_records *records = context;
	for(const struct session_record *record = records->by_id; record; record = record->hh.next){
		if(!record->bound){
			fuzz_fail("a loaded binding of \"%s\" is not bound", record->client_id);
		}
		put(writer, &(struct session_view){record->client_id, record->username, record->hash});
	}
}

static bool same_text(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static void assert_same_bindings(const struct session_records *expected, const struct session_records *actual)
{
	if(session_records_count(expected) != session_records_count(actual)){
		fuzz_fail("saved and loaded again: %zu bindings, not %zu", session_records_count(actual),
				session_records_count(expected));
	}
	for(const struct session_record *want = expected->by_id; want; want = want->hh.next){
		const struct session_record *got = session_records_find(actual, want->client_id);
		if(got == NULL || memcmp(got->hash, want->hash, TOKEN_HASH_LEN) != 0
				|| !same_text(got->username, want->username)){
			fuzz_fail("saved and loaded again: the binding of \"%s\" differs", want->client_id);
		}
	}
}

/* Saves what was loaded as a new snapshot and loads that again. */
static void check_round_trip(struct persist *persist, const struct store *loaded,
		const struct session_records *bindings)
{
	char error[1024] = "";
	struct session_source source = {(void *)bindings, each_loaded};
	persist_set_session_source(persist, &source);
	if(!persist_save(persist, loaded, error, sizeof(error))){
		fuzz_fail("saving a loaded state failed: %s", error);
	}
	persist_close(persist);
	struct persist *again = open_persist();
	struct store reloaded;
	store_init(&reloaded);
	struct session_records rebound;
	session_records_init(&rebound);
	persist_set_session_sink(again, &rebound);
	if(!persist_load(again, &reloaded, error, sizeof(error))){
		fuzz_fail("a saved state does not load: %s", error);
	}
	fuzz_assert_same_state(loaded, &reloaded, "saved and loaded again");
	fuzz_assert_same_logins(loaded, &reloaded, fuzz_clock(), "saved and loaded again");
	assert_same_bindings(bindings, &rebound);
	store_clear(&reloaded);
	session_records_clear(&rebound);
	persist_close(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *separator = memmem(data, size, JOURNAL_SEPARATOR, strlen(JOURNAL_SEPARATOR));
	size_t snapshot_length = separator ? (size_t)(separator - data) : size;
	const uint8_t *journal = separator ? separator + strlen(JOURNAL_SEPARATOR) : NULL;
	size_t journal_length = separator ? size - snapshot_length - strlen(JOURNAL_SEPARATOR) : 0;
	bool has_snapshot = snapshot_length > 0;
	bool has_journal = journal != NULL;

	write_or_remove(fuzz_state_path(), data, snapshot_length, has_snapshot);
	write_or_remove(fuzz_journal_path(), journal, journal_length, has_journal);

	struct persist *persist = open_persist();
	struct store store;
	store_init(&store);
	struct session_records bindings;
	session_records_init(&bindings);
	persist_set_session_sink(persist, &bindings);
	char error[1024] = "";
	if(persist_load(persist, &store, error, sizeof(error))){
		/* Anything the loader accepts must be a store that holds together. */
		char problem[512];
		if(!invariants_check_store(&store, problem, sizeof(problem))){
			fuzz_fail("a load was accepted but breaks an invariant: %s", problem);
		}
		check_round_trip(persist, &store, &bindings);
	}else{
		if(store_token_count(&store) != 0 || store_role_count(&store) != 0){
			fuzz_fail("a refused load left items in the store");
		}
		if(session_records_count(&bindings) != 0){
			fuzz_fail("a refused load left bindings");
		}
		assert_file_is(fuzz_state_path(), data, snapshot_length, has_snapshot);
		assert_file_is(fuzz_journal_path(), journal, journal_length, has_journal);
		persist_close(persist);
	}
	store_clear(&store);
	session_records_clear(&bindings);
	return 0;
}
