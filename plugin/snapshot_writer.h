/*
 * Writing a snapshot (the state file, docs/state-file.md): the whole
 * store and the persistent sessions' bindings, one role, token or binding
 * per line (still one JSON document), the layout snapshot_reader.c reads
 * fastest: loading a million tokens then parses a million small objects
 * instead of one huge tree.
 *
 * The snapshot is written to a new temporary file in the same folder,
 * fsync'd and renamed over the old one: a crash leaves the old file or the
 * new one, never a mix. Syncing the folder after the rename is the
 * caller's, because until it succeeds the journal must stay.
 */
#ifndef SNAPSHOT_WRITER_H
#define SNAPSHOT_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session_records.h"
#include "state_folder.h"
#include "store.h"

/* The header's journal fields. */
struct snapshot_ids {
	int64_t sequence;       /* "journalSequence": the last change the snapshot holds */
	const char *id;         /* "journalId": what the journal after it will carry */
	const char *previous;   /* "previousJournalId": the journal it folds in ("": one without an id); NULL: none */
	const char *fleet_id;   /* "fleetId" and "fleetSequence" of a fleet member's cache; NULL: none */
	int64_t fleet_sequence;
};

/* Writes store and the bindings in sessions (sorted by client id) as the
 * state file at path, and renames it into place. On failure the old file
 * is untouched, the temporary one removed, and error holds a sentence
 * naming the file and the step that failed. */
bool snapshot_write(const struct state_folder *folder, const char *path, const struct store *store,
		const struct session_records *sessions, const struct snapshot_ids *ids, char *error, size_t error_len);

/* The same document written to fd (a temporary file of the folder) and
 * fsync'd, without renaming anything: for the background fold, whose
 * child writes and whose parent alone decides what replaces the state
 * file (plugin/persist.c). path only names the file in error. */
bool snapshot_write_to_fd(const struct state_folder *folder, int fd, const char *path, const struct store *store,
		const struct session_records *sessions, const struct snapshot_ids *ids, char *error, size_t error_len);
/* Creates <path>.tmp.XXXXXX with a new name (O_EXCL, mode 0600, never a
 * link or anything already there), its name in temp_path; the descriptor,
 * or -1 with errno. */
int snapshot_create_temporary(const char *path, char *temp_path, size_t temp_path_size);

#endif
