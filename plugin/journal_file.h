/*
 * The journal file, <state_file>.journal: the changes of journal.h since
 * the last snapshot, one JSON line each with its sequence number ("seq"),
 * appended and fsync'd before the command's reply, replayed on the
 * snapshot at load, and removed once a snapshot holds them.
 *
 * The first line carries "journalId", the id of the snapshot the journal
 * follows (or of the one it folded in, left by a crash or a failed
 * removal): a journal of another snapshot is refused, never skipped and
 * deleted. A journal this broker did not read or write is never appended
 * to or removed: one that appears where there was none was put there by
 * someone else, one that is another file now was replaced.
 *
 * A last line without its newline was being written when the broker
 * stopped (its command was never acknowledged): loading drops it, and the
 * next append cuts it off first.
 */
#ifndef JOURNAL_FILE_H
#define JOURNAL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cjson/cJSON.h>

#include "session_records.h"
#include "snapshot_reader.h"
#include "state_folder.h"
#include "store.h"

struct journal_file {
	char path[STATE_PATH_SIZE];
	int fd;                    /* -1 until the first change after a load or snapshot */
	/* The file as it is on disk (whether this broker opened it yet or
	 * not): ours to append to and to remove, and the id its first line
	 * carries. */
	bool exists;
	bool has_lines;            /* complete lines, perhaps beyond size until trimmed */
	dev_t device;
	ino_t inode;
	char id[JOURNAL_ID_HEX_LEN + 1];    /* "": none (written before ids) */
	off_t size;                /* bytes of complete lines */
	bool needs_trim;           /* bytes past size must go before appending */
	size_t changes;            /* changes it holds that the snapshot does not */
	/* Its name came from a rename whose folder fsync failed: the folder is
	 * synced before the next line counts (else a crash could bring back
	 * the file it replaced, without that line). */
	bool name_unsynced;
	bool lines_unsynced;       /* lines appended without their fsync (journal_file_append_lazily) */
};

/* The journal of the state file at state_path; false when the path is too
 * long. */
bool journal_file_init(struct journal_file *journal, const char *state_path);
void journal_file_close(struct journal_file *journal);

/* A new random journal id (JOURNAL_ID_HEX_LEN lowercase hex digits). */
bool journal_id_generate(char id[JOURNAL_ID_HEX_LEN + 1]);

/* What loading replays the journal onto. */
struct journal_load {
	const char *state_path;                  /* named when the journal is another snapshot's */
	const struct snapshot_header *snapshot;  /* the snapshot loaded, which the journal must follow */
	struct store *store;
	struct session_records *sessions;        /* "sessions" lines go here */
	int64_t sequence;                        /* in: the snapshot's last change; out: the journal's */
	int64_t fleet_sequence;                  /* in: the snapshot's fleetSequence; out: the last "fleetSeq" */
	const char *notice;                      /* out: a torn last line dropped, or NULL */
};

/* Replays the lines newer than load->sequence (older ones are in the
 * snapshot already) and remembers which file it read. A missing journal
 * has no changes (true). On a line that is not valid, not in sequence, or
 * does not fit the store: false, with a sentence naming the journal, the
 * line and the problem. */
bool journal_file_replay(struct journal_file *journal, struct journal_load *load, char *error, size_t error_len);

/* Appends change as line sequence, the first line carrying snapshot_id
 * ("": none), and makes it durable (a new journal's name too). On failure
 * the journal is as before (what part of the line reached the file is cut
 * off, now or before the next append). */
bool journal_file_append(struct journal_file *journal, const struct state_folder *folder, cJSON *change,
		int64_t sequence, const char *snapshot_id, char *error, size_t error_len);

/* The same without the fsync, for a fleet member's cache, whose every
 * line the database also holds: a crash may lose the last of them, never
 * a middle one, and the member fetches them again. journal_file_sync
 * makes them durable (the next journal_file_append does too). */
bool journal_file_append_lazily(struct journal_file *journal, const struct state_folder *folder, cJSON *change,
		int64_t sequence, const char *snapshot_id, char *error, size_t error_len);
bool journal_file_sync(struct journal_file *journal, const struct state_folder *folder, char *error, size_t error_len);

/* True while the journal holds changes (or bytes still to be cut). */
bool journal_file_has_changes(const struct journal_file *journal);

/* After a snapshot that holds every change: removes the journal, unless
 * it is not the file this broker read or wrote (then a sentence naming the
 * state file saved at state_path is left in error; error is untouched
 * otherwise). A journal that cannot be removed is emptied before the next
 * append. */
void journal_file_drop(struct journal_file *journal, const struct state_folder *folder, const char *state_path,
		char *error, size_t error_len);

/* After a background fold's snapshot, which holds every change up to the
 * byte offset from of this journal (and changes_before of its changes),
 * has been installed and its folder synced: the lines after from become
 * the journal, their first line carrying id (the new snapshot's), written
 * as a new file and renamed over this one, so that at every moment the
 * journal's path names a file the installed snapshot accepts (the old one,
 * its id the snapshot's previousJournalId, or the new one). No line after
 * from: the journal is removed (journal_file_drop). On failure the journal
 * is as before, which the new snapshot accepts too, and error says why. */
bool journal_file_rebase(struct journal_file *journal, const struct state_folder *folder, off_t from,
		size_t changes_before, const char *id, const char *state_path, char *error, size_t error_len);

/* The journal lines tail (length bytes, complete lines) with the first
 * one's "journalId" set to id (removed for ""), the others byte for byte;
 * NULL when the first line is not a JSON object or out of memory. The
 * result is malloc'd, its length in *rebased_length. */
char *journal_rebased_text(const char *tail, size_t length, const char *id, size_t *rebased_length);

#endif
