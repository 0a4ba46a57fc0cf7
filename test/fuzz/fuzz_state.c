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
 * were and the store empty; an accepted one, saved as a new snapshot,
 * loads back into the same state.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "invariants.h"
#include "persist.h"
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

/* Saves what was loaded as a new snapshot and loads that again. */
static void check_round_trip(struct persist *persist, const struct store *loaded)
{
	char error[1024] = "";
	if(!persist_save(persist, loaded, error, sizeof(error))){
		fuzz_fail("saving a loaded state failed: %s", error);
	}
	persist_close(persist);
	struct persist *again = open_persist();
	struct store reloaded;
	store_init(&reloaded);
	if(!persist_load(again, &reloaded, error, sizeof(error))){
		fuzz_fail("a saved state does not load: %s", error);
	}
	fuzz_assert_same_state(loaded, &reloaded, "saved and loaded again");
	fuzz_assert_same_logins(loaded, &reloaded, fuzz_clock(), "saved and loaded again");
	store_clear(&reloaded);
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
	char error[1024] = "";
	if(persist_load(persist, &store, error, sizeof(error))){
		/* Anything the loader accepts must be a store that holds together. */
		char problem[512];
		if(!invariants_check_store(&store, problem, sizeof(problem))){
			fuzz_fail("a load was accepted but breaks an invariant: %s", problem);
		}
		check_round_trip(persist, &store);
	}else{
		if(store_token_count(&store) != 0 || store_role_count(&store) != 0){
			fuzz_fail("a refused load left items in the store");
		}
		assert_file_is(fuzz_state_path(), data, snapshot_length, has_snapshot);
		assert_file_is(fuzz_journal_path(), journal, journal_length, has_journal);
		persist_close(persist);
	}
	store_clear(&store);
	return 0;
}
