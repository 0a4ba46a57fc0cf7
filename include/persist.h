/*
 * Persistence: how the store reaches the disk and comes back. The plugin
 * uses four calls: load (persist_load); record one change durably
 * (persist_record); write a snapshot (persist_save, when
 * persist_wants_snapshot); close. They are the interface a second backend
 * implements in the JSON files' place; what is below them (the files, the
 * journal's lines, the snapshot's layout) is the JSON backend's own.
 *
 * The JSON backend keeps two files:
 *
 *  - the snapshot, <state_file>: the whole state (docs/state-file.md),
 *    written to a temporary file in the same folder, fsync'd, renamed over
 *    the old one, and the folder fsync'd: a crash leaves the old or the
 *    new file, never a mix. It records "journalSequence", the last change
 *    it contains.
 *  - the journal, <state_file>.journal: one JSON line per change since
 *    the snapshot, each with its sequence number, appended and fsync'd
 *    before the command's reply. A change costs one short append, however
 *    large the store.
 *
 * The snapshot's random "journalId" is on the journal's first line: a
 * journal of another snapshot is refused, never skipped and deleted. Every
 * file is opened without following links or blocking, and only if it is a
 * regular file.
 *
 * Loading reads the snapshot, then replays the journal lines whose
 * sequence is newer. A snapshot (at clean shutdown, or when the journal has
 * grown as large as the store) empties the journal; while the broker runs
 * it is written by a forked child (persist_fold_start) and installed by
 * persist_fold_poll, which rebases the journal's later lines onto it. A lock file,
 * <state_file>.lock, keeps a second broker away.
 *
 * Where each part lives: plugin/persist.c ties them together; journal.c
 * (the lines) and journal_file.c (the file); snapshot_reader.c and
 * snapshot_writer.c; state_folder.c (safe opening, fsyncs, the lock);
 * fold_child.c (the background fold's child).
 *
 * Beside the store, the files keep the bindings of persistent MQTT
 * sessions to the secret they logged in with (session_records.h): a
 * snapshot writes them all, a "sessions" journal line the ones made and
 * ended since (journal_sessions_of). They are advisory: loading keeps a
 * binding whose hash is no token's, for the plugin to drop.
 */
#ifndef PERSIST_H
#define PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cjson/cJSON.h>

#include "session_records.h"
#include "store.h"

struct persist;

/* The system calls that write, replaceable so that tests can fail them. */
struct persist_io {
	ssize_t (*write)(int fd, const void *buffer, size_t count);
	int (*fsync)(int fd);
	int (*rename)(const char *from, const char *to);
	int (*unlink)(const char *path);
};

/* Takes the lock. On failure returns NULL and a sentence in error. */
struct persist *persist_open(const char *path, char *error, size_t error_len);
void persist_close(struct persist *persist);
/* Also deletes the lock file (while still holding the lock). For tools
 * that run as another user than the broker, such as `mosquitto_ctrl
 * tokens init` as root: a lock file they leave behind would be one the
 * broker's user cannot open. */
void persist_close_removing_lock(struct persist *persist);

/* Reads the snapshot and replays the journal into an empty store; a
 * missing snapshot is an empty store. Files that cannot be read or break
 * the format are refused (and left as they are) with a sentence naming
 * the file, the line or entry, and the problem. The bindings go to the
 * session sink (see below), emptied first, and left empty on failure. */
bool persist_load(struct persist *persist, struct store *store, char *error, size_t error_len);
/* Something worth logging that loading did without failing (a change cut
 * short by a crash, never acknowledged, dropped from the journal's end), or
 * NULL. */
const char *persist_load_notice(const struct persist *persist);

/* Appends one change (see journal.h) and makes it durable. On failure
 * nothing is recorded, and the caller must undo the change in memory. */
bool persist_record(struct persist *persist, cJSON *change, char *error, size_t error_len);

/* Writes the store as a new snapshot and empties the journal. On failure
 * the files on disk are as before (the journal still holds every change).
 * The bindings written are the session source's (see below). */
bool persist_save(struct persist *persist, const struct store *store, char *error, size_t error_len);

/* The same snapshot, written in the background by a forked child from a
 * copy-on-write view of store as it is now, while the caller goes on
 * recording changes (docs/state-file.md, "Folding in the background").
 * False with a sentence when it cannot start (retried like a failed
 * snapshot). store must stay the same object; it is read in the child
 * only. */
bool persist_fold_start(struct persist *persist, const struct store *store, char *error, size_t error_len);
bool persist_fold_running(const struct persist *persist);
enum persist_fold_state {
	PERSIST_FOLD_IDLE,       /* none running */
	PERSIST_FOLD_RUNNING,
	PERSIST_FOLD_INSTALLED,  /* the new snapshot is the state file (error may hold a warning) */
	PERSIST_FOLD_FAILED,     /* the files are as before; error says why; retried later */
};
/* Never blocks: reaps a finished child and installs its snapshot. A
 * persist_save or persist_close while a fold runs kills it first (the
 * files are then as if it never ran). */
enum persist_fold_state persist_fold_poll(struct persist *persist, char *error, size_t error_len);

/* A binding as a snapshot writes it; the strings and the hash are read
 * during the call only. */
struct session_view { const char *client_id; const char *username; const unsigned char *hash; };
typedef void (*session_put_fn)(void *writer, const struct session_view *view);
/* The bindings a snapshot writes: each calls put once per binding. They
 * are written sorted by client id whatever the order; when a client id
 * comes twice the later one is written, and a view the file could not keep
 * (no hash, an empty client id, a client id or username longer than
 * SESSION_TEXT_MAX_BYTES) is left out rather than make the snapshot one
 * that does not load. */
struct session_source { void *context; void (*each)(void *context, session_put_fn put, void *writer); };
/* Where persist_load puts the saved bindings: the snapshot's, then the
 * journal's changes (latest wins, an ended binding removed). NULL (the
 * default): a table inside the persist, freed by persist_close. */
void persist_set_session_sink(struct persist *persist, struct session_records *loaded);
/* Where persist_save reads the bindings it writes. NULL (the default): the
 * table inside the persist, so that a tool that loads and saves (and sets
 * neither) keeps them untouched. Both pointers are borrowed. */
void persist_set_session_source(struct persist *persist, const struct session_source *source);

/* True when the journal holds as many changes as the store has items (at
 * least a floor): snapshotting then keeps a change's cost amortised O(1)
 * and start-up replay short. The bindings count as items too (as many as
 * the last load or snapshot held), and each binding a "sessions" line makes
 * or ends as a change. */
bool persist_wants_snapshot(const struct persist *persist, const struct store *store);
/* A fixed number of journal changes after which to snapshot instead (0:
 * the default rule above). */
void persist_set_snapshot_after(struct persist *persist, size_t changes);

/* persist_record without the fsync, for what the database holds too (a
 * fleet member's cache of the others' changes): a crash may lose the last
 * of them, which the member fetches again. persist_sync, or the next
 * persist_record, makes them durable. */
bool persist_record_lazily(struct persist *persist, cJSON *change, char *error, size_t error_len);
bool persist_sync(struct persist *persist, char *error, size_t error_len);

/* A fleet member's cache (docs/postgresql.md): the database store it
 * copies ("" for none) and the number of the last of its changes the
 * files hold. A recorded change carrying "fleetSeq" moves the number; a
 * snapshot writes both in its header ("fleetId", "fleetSequence"). */
void persist_fleet_position(const struct persist *persist, const char **fleet_id, int64_t *sequence);
void persist_set_fleet_position(struct persist *persist, const char *fleet_id, int64_t sequence);

/* True while the journal holds changes the snapshot does not. */
bool persist_has_journal(const struct persist *persist);

void persist_set_io(struct persist *persist, const struct persist_io *io);

#endif
