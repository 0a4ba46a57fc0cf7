/*
 * The JSON files backend of include/persist.h: a snapshot
 * (snapshot_reader.c reads it, snapshot_writer.c writes it), the journal
 * of the changes since (journal_file.c, its lines journal.c's), and the
 * lock, in one folder (state_folder.c). This file ties them together: what
 * loading reads in which order, when a snapshot is due, and which journal
 * id each file carries. Errors are returned as sentences naming the file,
 * never logged here, so the caller decides whether they stop the broker or
 * fail one command.
 *
 * A snapshot and the journal that follows it share a random id: the
 * snapshot's "journalId" is carried by the journal's first line. A journal
 * with another id belongs to another state file, or to another copy of
 * this one, and is refused rather than skipped (and later deleted). The
 * snapshot also names the journal it folded in ("previousJournalId"), so
 * that the old journal a crash or a failed removal leaves behind still
 * loads.
 *
 * The bindings of persistent sessions travel beside the store: loading
 * puts them into the sink (or a table of its own), a snapshot takes them
 * from the source (or that table), copying them into a table first so that
 * they are written sorted and once per client id.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fold_child.h"
#include "journal.h"
#include "journal_file.h"
#include "persist.h"
#include "snapshot_reader.h"
#include "snapshot_writer.h"
#include "state_folder.h"
#include "state_format.h"

#define SNAPSHOT_FLOOR 10000   /* journal changes before a snapshot is considered */

/* A snapshot being written by a forked child (persist_fold_start): what
 * it covers, fixed when it was forked, and its temporary file, which only
 * this process ever renames. */
struct background_fold {
	struct fold_child child;
	char temp_path[STATE_PATH_SIZE + 16];
	char id[JOURNAL_ID_HEX_LEN + 1];          /* the new snapshot's journalId */
	char previous[JOURNAL_ID_HEX_LEN + 1];    /* the journal it folds in */
	bool has_previous;
	struct snapshot_ids ids;                  /* points into the above */
	const struct store *store;                /* read in the child only */
	off_t journal_offset;                     /* the journal's bytes the snapshot holds */
	size_t journal_changes;                   /* and its changes */
};

struct persist {
	char path[STATE_PATH_SIZE];
	char lock_path[STATE_PATH_SIZE];
	struct state_folder folder;
	int lock_fd;
	struct journal_file journal;
	/* What a journal started now carries on its first line: the snapshot's
	 * id ("" for a snapshot written before ids, so that the pair stays an
	 * old pair until the next snapshot). */
	char snapshot_id[JOURNAL_ID_HEX_LEN + 1];
	int64_t sequence;          /* the last change recorded, in the snapshot or the journal */
	size_t snapshot_after;     /* 0: as many changes as the store has items */
	size_t snapshot_retry_at;  /* after a failed snapshot: journal changes before the next try */
	const char *notice;
	/* Bindings of persistent sessions: loaded here without a sink, written
	 * from here without a source. */
	struct session_records sessions;
	struct session_records *session_sink;
	const struct session_source *session_source;
	size_t session_count;      /* bindings the last load or snapshot held, for the snapshot rule */
	struct background_fold fold;
	/* A fleet member's cache: which database store, and its last change
	 * the files hold ("fleetSeq" of the journal's lines). */
	char fleet_id[JOURNAL_ID_HEX_LEN + 1];
	int64_t fleet_sequence;
};

/* ---- opening and closing ---- */

static bool set_paths(struct persist *persist, const char *path)
{
	return snprintf(persist->path, sizeof(persist->path), "%s", path) < (int)sizeof(persist->path)
		&& snprintf(persist->lock_path, sizeof(persist->lock_path), "%s.lock", path) < (int)sizeof(persist->lock_path)
		&& journal_file_init(&persist->journal, path)
		&& state_folder_init(&persist->folder, path);
}

struct persist *persist_open(const char *path, char *error, size_t error_len)
{
	struct persist *persist = calloc(1, sizeof(*persist));
	if(persist == NULL){
		snprintf(error, error_len, "out of memory");
		return NULL;
	}
	persist->lock_fd = -1;
	persist->journal.fd = -1;
	if(!set_paths(persist, path)){
		snprintf(error, error_len, "state file path %s is too long", path);
		persist_close(persist);
		return NULL;
	}
	persist->lock_fd = state_lock(persist->lock_path, persist->path, error, error_len);
	if(persist->lock_fd < 0){
		persist_close(persist);
		return NULL;
	}
	/* Until a load says which snapshot there is, as if there were none. */
	if(!journal_id_generate(persist->snapshot_id)){
		snprintf(error, error_len, "cannot open %s: the random number generator failed", path);
		persist_close(persist);
		return NULL;
	}
	return persist;
}

static void fold_abandon(struct persist *persist);

void persist_close(struct persist *persist)
{
	if(persist == NULL){
		return;
	}
	fold_abandon(persist);
	journal_file_close(&persist->journal);
	if(persist->lock_fd >= 0){
		close(persist->lock_fd);
	}
	session_records_clear(&persist->sessions);
	free(persist);
}

void persist_close_removing_lock(struct persist *persist)
{
	if(persist && persist->lock_fd >= 0){
		unlink(persist->lock_path);
	}
	persist_close(persist);
}

void persist_set_io(struct persist *persist, const struct persist_io *io)
{
	state_folder_set_io(&persist->folder, io);
}

const char *persist_load_notice(const struct persist *persist)
{
	return persist->notice;
}

void persist_set_session_sink(struct persist *persist, struct session_records *loaded)
{
	persist->session_sink = loaded;
}

void persist_set_session_source(struct persist *persist, const struct session_source *source)
{
	persist->session_source = source;
}

static struct session_records *loaded_sessions(struct persist *persist)
{
	return persist->session_sink ? persist->session_sink : &persist->sessions;
}

/* ---- loading ---- */

/* What a journal started from now on carries: the snapshot's id; without
 * a snapshot, the id of the journal there is, or a new one. */
static bool choose_snapshot_id(struct persist *persist, const struct snapshot_header *header,
		char *error, size_t error_len)
{
	if(!header->missing){
		memcpy(persist->snapshot_id, header->ids.id, sizeof(persist->snapshot_id));
		return true;
	}
	if(persist->journal.has_lines){
		memcpy(persist->snapshot_id, persist->journal.id, sizeof(persist->snapshot_id));
		return true;
	}
	if(!journal_id_generate(persist->snapshot_id)){
		snprintf(error, error_len, "cannot load %s: the random number generator failed", persist->path);
		return false;
	}
	return true;
}

bool persist_load(struct persist *persist, struct store *store, char *error, size_t error_len)
{
	struct snapshot_header header;
	struct session_records *sessions = loaded_sessions(persist);
	persist->notice = NULL;
	persist->session_count = 0;
	session_records_clear(sessions);
	if(!snapshot_read(persist->path, store, sessions, &header, error, error_len)){
		return false;
	}
	struct journal_load load = {
		.state_path = persist->path, .snapshot = &header, .store = store, .sessions = sessions,
		.sequence = header.journal_sequence, .fleet_sequence = header.ids.fleet_sequence,
	};
	bool loaded = journal_file_replay(&persist->journal, &load, error, error_len);
	persist->sequence = load.sequence;
	memcpy(persist->fleet_id, header.ids.fleet_id, sizeof(persist->fleet_id));
	persist->fleet_sequence = load.fleet_sequence;
	persist->notice = load.notice;
	if(!loaded || !choose_snapshot_id(persist, &header, error, error_len)){
		store_clear(store);
		session_records_clear(sessions);
		return false;
	}
	persist->session_count = session_records_count(sessions);
	return true;
}

/* ---- recording ---- */

static bool record_line(struct persist *persist, cJSON *change, bool durable, char *error, size_t error_len)
{
	int64_t sequence = persist->sequence + 1;
	bool appended = durable
		? journal_file_append(&persist->journal, &persist->folder, change, sequence, persist->snapshot_id,
			error, error_len)
		: journal_file_append_lazily(&persist->journal, &persist->folder, change, sequence, persist->snapshot_id,
			error, error_len);
	if(!appended){
		return false;
	}
	persist->sequence = sequence;
	const cJSON *fleet_sequence = cJSON_GetObjectItemCaseSensitive(change, "fleetSeq");
	if(cJSON_IsNumber(fleet_sequence)){
		persist->fleet_sequence = (int64_t)fleet_sequence->valuedouble;
	}
	return true;
}

bool persist_record(struct persist *persist, cJSON *change, char *error, size_t error_len)
{
	return record_line(persist, change, true, error, error_len);
}

bool persist_record_lazily(struct persist *persist, cJSON *change, char *error, size_t error_len)
{
	return record_line(persist, change, false, error, error_len);
}

bool persist_sync(struct persist *persist, char *error, size_t error_len)
{
	return journal_file_sync(&persist->journal, &persist->folder, error, error_len);
}

void persist_fleet_position(const struct persist *persist, const char **fleet_id, int64_t *sequence)
{
	*fleet_id = persist->fleet_id;
	*sequence = persist->fleet_sequence;
}

void persist_set_fleet_position(struct persist *persist, const char *fleet_id, int64_t sequence)
{
	snprintf(persist->fleet_id, sizeof(persist->fleet_id), "%s", fleet_id);
	persist->fleet_sequence = sequence;
}

static struct snapshot_ids ids_of(const struct persist *persist, const char *id, const char *previous)
{
	return (struct snapshot_ids){persist->sequence, id, previous,
		persist->fleet_id[0] ? persist->fleet_id : NULL, persist->fleet_sequence};
}

bool persist_has_journal(const struct persist *persist)
{
	return journal_file_has_changes(&persist->journal);
}

/* ---- when to snapshot ---- */

void persist_set_snapshot_after(struct persist *persist, size_t changes)
{
	persist->snapshot_after = changes;
}

bool persist_wants_snapshot(const struct persist *persist, const struct store *store)
{
	size_t changes = persist->journal.changes;
	if(changes < persist->snapshot_retry_at || fold_child_running(&persist->fold.child)){
		return false;
	}
	if(persist->snapshot_after){
		return changes >= persist->snapshot_after;
	}
	size_t size = store_token_count(store) + store_role_count(store) + persist->session_count;
	return changes >= (size > SNAPSHOT_FLOOR ? size : SNAPSHOT_FLOOR);
}

/* A snapshot costs as much as the whole store, and a disk that failed one
 * may fail the next: trying again only once the journal has doubled keeps
 * the cost per change bounded (it would otherwise be paid after every
 * command while the fault lasts). */
static void postpone_snapshot(struct persist *persist)
{
	persist->snapshot_retry_at = 2 * persist->journal.changes + 1;
}

/* ---- saving ---- */

/* A source's binding, copied (what the view points to may not outlive the
 * call); one the reader would refuse is left out. */
struct session_copy {
	struct session_records *records;
	bool failed;
};

static bool view_is_keepable(const struct session_view *view)
{
	size_t id_length = view->client_id ? strlen(view->client_id) : 0;
	return view->hash && id_length > 0 && id_length <= SESSION_TEXT_MAX_BYTES
		&& (view->username == NULL || strlen(view->username) <= SESSION_TEXT_MAX_BYTES);
}

static void copy_session(void *writer, const struct session_view *view)
{
	struct session_copy *copy = writer;
	if(!copy->failed && view_is_keepable(view)
			&& !session_records_put(copy->records, view->client_id, view->username, view->hash)){
		copy->failed = true;
	}
}

/* The bindings to write: the source's, copied into copied, or else the
 * table loaded; NULL when out of memory. */
static const struct session_records *sessions_to_write(const struct persist *persist, struct session_records *copied)
{
	if(persist->session_source == NULL){
		return &persist->sessions;
	}
	struct session_copy copy = {.records = copied};
	persist->session_source->each(persist->session_source->context, copy_session, &copy);
	return copy.failed ? NULL : copied;
}

/* The journal the new snapshot folds in: the one on disk, or else the id
 * the next one would carry if this snapshot's rename is lost. */
static const char *folded_journal_id(const struct persist *persist)
{
	if(persist->journal.has_lines){
		return persist->journal.id;
	}
	return persist->snapshot_id[0] ? persist->snapshot_id : NULL;
}

static bool write_snapshot(struct persist *persist, const struct store *store, const char *id,
		size_t *session_count, char *error, size_t error_len)
{
	struct session_records copied;
	session_records_init(&copied);
	const struct session_records *sessions = sessions_to_write(persist, &copied);
	const struct snapshot_ids ids = ids_of(persist, id, folded_journal_id(persist));
	bool written = false;
	if(sessions == NULL){
		snprintf(error, error_len, "cannot save %s: out of memory", persist->path);
	}else{
		*session_count = session_records_count(sessions);
		written = snapshot_write(&persist->folder, persist->path, store, sessions, &ids, error, error_len);
	}
	session_records_clear(&copied);
	return written;
}

bool persist_save(struct persist *persist, const struct store *store, char *error, size_t error_len)
{
	/* Never two folds at once: this one holds every change the
	 * background's would, and more. */
	fold_abandon(persist);
	char id[JOURNAL_ID_HEX_LEN + 1];
	if(!journal_id_generate(id)){
		snprintf(error, error_len, "cannot save %s: the random number generator failed", persist->path);
		return false;
	}
	size_t session_count = 0;
	if(!write_snapshot(persist, store, id, &session_count, error, error_len)){
		postpone_snapshot(persist);
		return false;
	}
	/* After the rename the new snapshot is the state and cannot be undone:
	 * a failed folder sync is reported in error, but the save counts. */
	error[0] = '\0';
	persist->session_count = session_count;
	if(!state_sync_folder(&persist->folder)){
		/* Until the rename is durable, the journal must stay, and a journal
		 * started now carries the old id, which both snapshots accept (the
		 * new one names it as folded in). */
		snprintf(error, error_len, "saved %s but could not fsync its folder: %s", persist->path, strerror(errno));
		postpone_snapshot(persist);
		return true;
	}
	memcpy(persist->snapshot_id, id, sizeof(persist->snapshot_id));
	journal_file_drop(&persist->journal, &persist->folder, persist->path, error, error_len);
	persist->snapshot_retry_at = 0;
	return true;
}

/* ---- folding in the background ---- */

/* In the child: the bindings copied and the snapshot written to fd. */
static void write_fold_snapshot(void *context, int fd, struct fold_report *report)
{
	struct persist *persist = context;
	struct session_records copied;
	session_records_init(&copied);
	const struct session_records *sessions = sessions_to_write(persist, &copied);
	if(sessions == NULL){
		snprintf(report->error, sizeof(report->error), "cannot save %.3900s: out of memory", persist->path);
	}else{
		report->value = session_records_count(sessions);
		report->ok = snapshot_write_to_fd(&persist->folder, fd, persist->path, persist->fold.store, sessions,
				&persist->fold.ids, report->error, sizeof(report->error));
	}
	session_records_clear(&copied);
}

/* What the snapshot covers: every change recorded until now. */
static void fix_fold_view(struct persist *persist, const struct store *store)
{
	struct background_fold *fold = &persist->fold;
	const char *previous = folded_journal_id(persist);
	fold->has_previous = previous != NULL;
	snprintf(fold->previous, sizeof(fold->previous), "%s", previous ? previous : "");
	fold->ids = ids_of(persist, fold->id, fold->has_previous ? fold->previous : NULL);
	fold->store = store;
	fold->journal_offset = persist->journal.size;
	fold->journal_changes = persist->journal.changes;
}

bool persist_fold_start(struct persist *persist, const struct store *store, char *error, size_t error_len)
{
	struct background_fold *fold = &persist->fold;
	if(fold_child_running(&fold->child)){
		snprintf(error, error_len, "a background fold is already running");
		return false;
	}
	if(!journal_id_generate(fold->id)){
		snprintf(error, error_len, "cannot save %s: the random number generator failed", persist->path);
		postpone_snapshot(persist);
		return false;
	}
	int fd = snapshot_create_temporary(persist->path, fold->temp_path, sizeof(fold->temp_path));
	if(fd < 0){
		snprintf(error, error_len, "cannot save %s: create a temporary file failed: %s", persist->path, strerror(errno));
		postpone_snapshot(persist);
		return false;
	}
	fix_fold_view(persist, store);
	bool started = fold_child_start(&fold->child, fd, write_fold_snapshot, persist, error, error_len);
	close(fd);
	if(!started){
		unlink(fold->temp_path);
		postpone_snapshot(persist);
	}
	return started;
}

bool persist_fold_running(const struct persist *persist)
{
	return fold_child_running(&persist->fold.child);
}

static void fold_abandon(struct persist *persist)
{
	if(fold_child_running(&persist->fold.child)){
		fold_child_kill(&persist->fold.child);
		unlink(persist->fold.temp_path);
	}
}

/* The child's snapshot replaces the state file, then the journal is
 * rebased onto it: each step leaves files that load with every change
 * (docs/state-file.md, "Folding in the background"). */
static enum persist_fold_state install_fold(struct persist *persist, size_t session_count, char *error, size_t error_len)
{
	struct background_fold *fold = &persist->fold;
	/* Held across the rename, so that freeing the old snapshot's blocks
	 * (about 18 ms for 100 MB) happens off the broker's thread. */
	int old_snapshot = open(persist->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	bool renamed = persist->folder.io.rename(fold->temp_path, persist->path) == 0;
	int saved = errno;
	state_close_in_background(old_snapshot);
	if(!renamed){
		snprintf(error, error_len, "cannot save %s: rename failed: %s", persist->path, strerror(saved));
		unlink(fold->temp_path);
		postpone_snapshot(persist);
		return PERSIST_FOLD_FAILED;
	}
	persist->session_count = session_count;
	if(!state_sync_folder(&persist->folder)){
		/* As for persist_save: the journal stays whole, and keeps its id,
		 * which both snapshots accept. */
		snprintf(error, error_len, "saved %s but could not fsync its folder: %s", persist->path, strerror(errno));
		postpone_snapshot(persist);
		return PERSIST_FOLD_INSTALLED;
	}
	memcpy(persist->snapshot_id, fold->id, sizeof(persist->snapshot_id));
	persist->snapshot_retry_at = 0;
	char problem[STATE_PATH_SIZE + 256];
	if(!journal_file_rebase(&persist->journal, &persist->folder, fold->journal_offset, fold->journal_changes,
			fold->id, persist->path, problem, sizeof(problem))){
		/* The old journal stays, its id the new snapshot's previous one:
		 * it loads, and its lines up to the snapshot are skipped. */
		snprintf(error, error_len, "saved %s; the journal keeps the changes it folded in: %s", persist->path, problem);
		return PERSIST_FOLD_INSTALLED;
	}
	snprintf(error, error_len, "%s", problem);
	return PERSIST_FOLD_INSTALLED;
}

enum persist_fold_state persist_fold_poll(struct persist *persist, char *error, size_t error_len)
{
	error[0] = '\0';
	struct fold_report report;
	switch(fold_child_poll(&persist->fold.child, &report)){
	case FOLD_CHILD_NONE:
		return PERSIST_FOLD_IDLE;
	case FOLD_CHILD_RUNNING:
		return PERSIST_FOLD_RUNNING;
	case FOLD_CHILD_SUCCEEDED:
		return install_fold(persist, (size_t)report.value, error, error_len);
	case FOLD_CHILD_FAILED:
		break;
	}
	snprintf(error, error_len, "%s", report.error);
	unlink(persist->fold.temp_path);
	postpone_snapshot(persist);
	return PERSIST_FOLD_FAILED;
}
