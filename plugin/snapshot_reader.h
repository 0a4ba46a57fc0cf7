/*
 * Reading a snapshot (the state file) into an empty store, and its
 * persistent sessions' bindings into an empty table.
 *
 * The snapshot writer puts one role, token or binding per line. For that
 * layout the reader maps the file, parses the token lines on two threads
 * (parsing only reads the roles) and then adds the tokens, in file order,
 * on one: a million tokens load in about two seconds. The bindings
 * ("sessions", after the tokens) are read one line at a time after them.
 * Any other valid layout (one line from `jq -c`, a pretty-printed file
 * edited by hand) is read the same way, one item at a time, after a scan
 * that finds where each starts and ends: never as one tree of the whole
 * document, which would cost five times the memory. Either way the file is
 * checked strictly and never written.
 */
#ifndef SNAPSHOT_READER_H
#define SNAPSHOT_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "session_records.h"
#include "state_folder.h"
#include "state_format.h"
#include "store.h"

/* What the snapshot says about its journal. */
struct snapshot_header {
	bool missing;               /* no snapshot file: an empty store */
	int64_t journal_sequence;   /* the last change it holds (0 if absent) */
	struct journal_ids ids;
};

/* Fills an empty store, and the empty table sessions with the bindings (a
 * file without "sessions" has none). A missing file is an empty store (true,
 * header->missing set). On failure, writes a sentence naming the file and
 * the problem, leaves the store and the table empty and returns false. */
bool snapshot_read(const char *path, struct store *store, struct session_records *sessions,
		struct snapshot_header *header, char *error, size_t error_len);

#endif
