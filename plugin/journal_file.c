/*
 * The journal file: reading and replaying it, appending a change, cutting
 * off a torn line, removing it after a snapshot. See plugin/journal_file.h;
 * the lines themselves are plugin/journal.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "journal.h"
#include "journal_file.h"
#include "state_format.h"

bool journal_file_init(struct journal_file *journal, const char *state_path)
{
	*journal = (struct journal_file){.fd = -1};
	return snprintf(journal->path, sizeof(journal->path), "%s.journal", state_path) < (int)sizeof(journal->path);
}

void journal_file_close(struct journal_file *journal)
{
	if(journal->fd >= 0){
		close(journal->fd);
		journal->fd = -1;
	}
}

bool journal_id_generate(char id[JOURNAL_ID_HEX_LEN + 1])
{
	unsigned char bytes[JOURNAL_ID_HEX_LEN / 2];
	if(RAND_bytes(bytes, sizeof(bytes)) != 1){
		return false;
	}
	for(size_t i = 0; i < sizeof(bytes); i++){
		snprintf(id + 2 * i, 3, "%02x", bytes[i]);
	}
	return true;
}

bool journal_file_has_changes(const struct journal_file *journal)
{
	return journal->size > 0 || journal->needs_trim;
}

static void remember_file(struct journal_file *journal, const struct stat *info)
{
	journal->exists = true;
	journal->device = info->st_dev;
	journal->inode = info->st_ino;
}

/* ---- reading and replaying ---- */

static bool read_all(int fd, char *content, size_t size)
{
	size_t done = 0;
	while(done < size){
		ssize_t got = read(fd, content + done, size - done);
		if(got < 0 && errno == EINTR){
			continue;
		}
		if(got <= 0){
			if(got == 0) errno = EIO;   /* it shrank */
			return false;
		}
		done += (size_t)got;
	}
	return true;
}

/* Reads the whole journal, and remembers which file it is; *missing is set
 * when it does not exist. */
static char *read_journal(struct journal_file *journal, size_t *length, bool *missing, char *error, size_t error_len)
{
	int fd = state_open_regular(journal->path, O_RDONLY, 0, "journal", error, error_len);
	*missing = fd < 0 && errno == ENOENT;
	if(fd < 0){
		return NULL;
	}
	struct stat info;
	char *content = NULL;
	if(fstat(fd, &info) != 0){
		snprintf(error, error_len, "cannot read journal %s: %s", journal->path, strerror(errno));
	}else if((content = malloc((size_t)info.st_size + 1)) == NULL){
		snprintf(error, error_len, "%s: out of memory", journal->path);
	}else if(!read_all(fd, content, (size_t)info.st_size)){
		snprintf(error, error_len, "cannot read journal %s: %s", journal->path, strerror(errno));
		free(content);
		content = NULL;
	}else{
		*length = (size_t)info.st_size;
		content[*length] = '\0';
		remember_file(journal, &info);
	}
	close(fd);
	return content;
}

/* Whether a journal whose first line carries id may follow this snapshot:
 * the snapshot's own, or the one it folded in (left by a crash or a failed
 * removal; its lines are skipped by their seq). Without a snapshot any
 * journal is the whole history. */
static bool journal_belongs(const struct snapshot_header *snapshot, const char *id)
{
	return snapshot->missing || strcmp(id, snapshot->ids.id) == 0
		|| (snapshot->ids.has_previous && strcmp(id, snapshot->ids.previous) == 0);
}

/* Reads the first line's "journalId" into journal->id and checks that the
 * journal belongs to the snapshot. */
static bool check_journal_id(struct journal_file *journal, const struct journal_load *load, const cJSON *first,
		char *problem, size_t problem_len)
{
	const struct snapshot_header *snapshot = load->snapshot;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(first, "journalId");
	if(id && !(cJSON_IsString(id) && journal_id_is_valid(id->valuestring))){
		snprintf(problem, problem_len, "'journalId' is not %d lowercase hex digits", JOURNAL_ID_HEX_LEN);
		return false;
	}
	snprintf(journal->id, sizeof(journal->id), "%s", id ? id->valuestring : "");
	if(!journal_belongs(snapshot, journal->id)){
		snprintf(problem, problem_len, "the journal does not belong to state file %s: its journalId is %s, "
				"the state file's is %s%s%s (a journal from another state file, or from another copy of this one; "
				"nothing was loaded or removed)", load->state_path,
				journal->id[0] ? journal->id : "missing",
				snapshot->ids.id[0] ? snapshot->ids.id : "missing",
				snapshot->ids.has_previous ? " and it folded in " : "",
				snapshot->ids.has_previous ? (snapshot->ids.previous[0] ? snapshot->ids.previous : "a journal without one") : "");
		return false;
	}
	return true;
}

/* Checked before any conversion: a double out of int64_t's range does not
 * convert. */
static bool is_sequence_number(const cJSON *item)
{
	return state_is_sequence_number(item, false);
}

/* A fleet member's cache: the database's number of the change, if the
 * line is one of its changes. */
static bool read_fleet_sequence(struct journal_load *load, const cJSON *change, char *problem, size_t problem_len)
{
	const cJSON *sequence = cJSON_GetObjectItemCaseSensitive(change, "fleetSeq");
	if(sequence == NULL){
		return true;
	}
	if(!is_sequence_number(sequence) || (int64_t)sequence->valuedouble <= load->fleet_sequence){
		snprintf(problem, problem_len, "'fleetSeq' is not a whole number after the last one");
		return false;
	}
	load->fleet_sequence = (int64_t)sequence->valuedouble;
	return true;
}

static bool replay_line(struct journal_file *journal, struct journal_load *load, char *line, size_t length,
		int64_t *previous, char *problem, size_t problem_len)
{
	cJSON *change = cJSON_ParseWithLengthOpts(line, length + 1, NULL, true);
	const cJSON *sequence = cJSON_GetObjectItemCaseSensitive(change, "seq");
	bool first = !journal->has_lines;
	bool applied = false;
	if(change == NULL){
		snprintf(problem, problem_len, "not valid JSON");
	}else if(first && !check_journal_id(journal, load, change, problem, problem_len)){
		applied = false;
	}else if(!first && cJSON_GetObjectItemCaseSensitive(change, "journalId")){
		snprintf(problem, problem_len, "'journalId' is only on the first line");
	}else if(!is_sequence_number(sequence) || (*previous && (int64_t)sequence->valuedouble != *previous + 1)){
		snprintf(problem, problem_len, "'seq' is missing or not increasing by one");
	}else if((int64_t)sequence->valuedouble > load->sequence + 1 && *previous <= load->sequence){
		/* The first new change must follow the snapshot's last. */
		snprintf(problem, problem_len, "'seq' %lld skips changes %lld to %lld: they are in neither the snapshot "
				"nor the journal", (long long)sequence->valuedouble, (long long)(load->sequence + 1),
				(long long)sequence->valuedouble - 1);
	}else{
		*previous = (int64_t)sequence->valuedouble;
		/* Changes the snapshot already holds (a crash between writing it
		 * and removing the journal) are skipped. */
		applied = *previous <= load->sequence
			|| (read_fleet_sequence(load, change, problem, problem_len)
				&& journal_replay(load->store, load->sessions, change, problem, problem_len));
		if(applied && *previous > load->sequence){
			journal->changes += journal_change_count(change);
		}
		journal->has_lines = true;
	}
	cJSON_Delete(change);
	return applied;
}

bool journal_file_replay(struct journal_file *journal, struct journal_load *load, char *error, size_t error_len)
{
	journal->exists = false;
	journal->has_lines = false;
	journal->id[0] = '\0';
	journal->changes = 0;
	load->notice = NULL;
	size_t length = 0;
	bool missing;
	char *content = read_journal(journal, &length, &missing, error, error_len);
	if(content == NULL){
		return missing;
	}
	char problem[STATE_PATH_SIZE + 1024];   /* may name the state file */
	int64_t previous = 0;
	int line_number = 1;
	char *line = content, *end = content + length;
	bool ok = true;
	while(ok && line < end){
		char *newline = memchr(line, '\n', (size_t)(end - line));
		if(newline == NULL){
			journal->needs_trim = true;
			load->notice = "the journal's last change was cut short by a crash and is dropped "
				"(it had not been acknowledged)";
			break;
		}
		*newline = '\0';
		ok = replay_line(journal, load, line, (size_t)(newline - line), &previous, problem, sizeof(problem));
		if(!ok){
			snprintf(error, error_len, "journal %s line %d: %s", journal->path, line_number, problem);
		}
		line = newline + 1;
		line_number++;
	}
	journal->size = (off_t)(line - content);
	if(previous > load->sequence){
		load->sequence = previous;
	}
	free(content);
	return ok;
}

/* ---- appending ---- */

static int open_journal_file(struct journal_file *journal, char *error, size_t error_len)
{
	if(!journal->exists){
		/* O_EXCL: nothing that is there already, not even a dangling link. */
		int fd = open(journal->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
		if(fd < 0){
			snprintf(error, error_len, errno == EEXIST
					? "cannot start journal %s: something else is there now (%s), left alone"
					: "cannot open journal %s: %s",
					journal->path, strerror(errno));
		}
		return fd;
	}
	int fd = state_open_regular(journal->path, O_WRONLY | O_APPEND, 0, "journal", error, error_len);
	struct stat info;
	if(fd >= 0 && (fstat(fd, &info) != 0 || info.st_dev != journal->device || info.st_ino != journal->inode)){
		snprintf(error, error_len, "journal %s was replaced by another file since the broker read it; "
				"left alone", journal->path);
		close(fd);
		fd = -1;
	}
	return fd;
}

static bool open_for_append(struct journal_file *journal, const struct state_folder *folder,
		char *error, size_t error_len)
{
	bool created = !journal->exists;
	journal->fd = open_journal_file(journal, error, error_len);
	if(journal->fd < 0){
		return false;
	}
	struct stat info;
	if(created && fstat(journal->fd, &info) == 0){
		remember_file(journal, &info);
	}
	/* A new journal's name must survive a crash as well as its lines. */
	if(created && (!journal->exists || !state_sync_folder(folder))){
		snprintf(error, error_len, "cannot fsync the folder of %s: %s", journal->path, strerror(errno));
		journal_file_close(journal);
		unlink(journal->path);
		journal->exists = false;
		return false;
	}
	return true;
}

static bool cut_torn_line(struct journal_file *journal, char *error, size_t error_len)
{
	if(ftruncate(journal->fd, journal->size) != 0){
		snprintf(error, error_len, "cannot trim journal %s: %s", journal->path, strerror(errno));
		return false;
	}
	journal->needs_trim = false;
	if(journal->size == 0){
		journal->has_lines = false;
		journal->id[0] = '\0';
	}
	return true;
}

static bool ready_to_append(struct journal_file *journal, const struct state_folder *folder,
		char *error, size_t error_len)
{
	if(journal->fd < 0 && !open_for_append(journal, folder, error, error_len)){
		return false;
	}
	if(journal->name_unsynced){
		if(!state_sync_folder(folder)){
			snprintf(error, error_len, "cannot fsync the folder of %s: %s", journal->path, strerror(errno));
			return false;
		}
		journal->name_unsynced = false;
	}
	return !journal->needs_trim || cut_torn_line(journal, error, error_len);
}

/* The change as its line: with "seq", and on the first line "journalId";
 * NULL when out of memory. The change is left as it was given. */
static char *line_of(const struct journal_file *journal, cJSON *change, int64_t sequence, const char *snapshot_id)
{
	bool carries_id = journal->size == 0 && snapshot_id[0] != '\0';
	char *line = NULL;
	if(cJSON_AddNumberToObject(change, "seq", (double)sequence)
			&& (!carries_id || cJSON_AddStringToObject(change, "journalId", snapshot_id))){
		line = cJSON_PrintUnformatted(change);
	}
	cJSON_DeleteItemFromObjectCaseSensitive(change, "seq");
	if(carries_id){
		cJSON_DeleteItemFromObjectCaseSensitive(change, "journalId");
	}
	return line;
}

static bool append_line(struct journal_file *journal, const struct state_folder *folder, cJSON *change,
		int64_t sequence, const char *snapshot_id, bool durable, char *error, size_t error_len)
{
	if(!ready_to_append(journal, folder, error, error_len)){
		return false;
	}
	char *line = line_of(journal, change, sequence, snapshot_id);
	if(line == NULL){
		snprintf(error, error_len, "out of memory");
		return false;
	}
	size_t length = strlen(line);
	line[length] = '\n';   /* replaces the NUL; the length is known */
	const char *step = "write";
	bool written = state_write_all(folder, journal->fd, line, length + 1);
	if(written && durable){
		step = "fsync";
		written = folder->io.fsync(journal->fd) == 0;
	}
	int saved = errno;
	free(line);
	if(!written){
		/* Take back what part of the line reached the file; if even that
		 * fails, the next append tries again first. */
		if(ftruncate(journal->fd, journal->size) != 0){
			journal->needs_trim = true;
		}
		snprintf(error, error_len, "cannot record the change in %s: %s failed: %s",
				journal->path, step, strerror(saved));
		return false;
	}
	if(journal->size == 0){
		memcpy(journal->id, snapshot_id, sizeof(journal->id));
	}
	journal->size += (off_t)(length + 1);
	journal->has_lines = true;
	journal->changes += journal_change_count(change);
	journal->lines_unsynced = !durable;
	return true;
}

bool journal_file_append(struct journal_file *journal, const struct state_folder *folder, cJSON *change,
		int64_t sequence, const char *snapshot_id, char *error, size_t error_len)
{
	return append_line(journal, folder, change, sequence, snapshot_id, true, error, error_len);
}

bool journal_file_append_lazily(struct journal_file *journal, const struct state_folder *folder, cJSON *change,
		int64_t sequence, const char *snapshot_id, char *error, size_t error_len)
{
	return append_line(journal, folder, change, sequence, snapshot_id, false, error, error_len);
}

bool journal_file_sync(struct journal_file *journal, const struct state_folder *folder, char *error, size_t error_len)
{
	if(!journal->lines_unsynced || journal->fd < 0){
		return true;
	}
	if(folder->io.fsync(journal->fd) != 0){
		snprintf(error, error_len, "cannot make %s durable: fsync failed: %s", journal->path, strerror(errno));
		return false;
	}
	journal->lines_unsynced = false;
	return true;
}

/* ---- removing ---- */

/* True when the journal's path still names the file this broker read or
 * wrote (what is removed must be what the snapshot folded in). */
static bool journal_is_ours(const struct journal_file *journal)
{
	struct stat info;
	return lstat(journal->path, &info) == 0 && info.st_dev == journal->device && info.st_ino == journal->inode;
}

void journal_file_drop(struct journal_file *journal, const struct state_folder *folder, const char *state_path,
		char *error, size_t error_len)
{
	journal_file_close(journal);
	bool removed = true;
	if(journal->exists && !journal_is_ours(journal)){
		/* Not the journal this snapshot folded in: someone else's file,
		 * never deleted. The next change refuses to append to it. */
		snprintf(error, error_len, "saved %s; %s is not the journal this broker wrote and is left alone",
				state_path, journal->path);
	}else if(journal->exists){
		/* A journal that cannot be removed keeps lines the snapshot holds:
		 * they go before the next append, which would otherwise follow them
		 * while size counts from zero (and a failed append would then cut
		 * back into them, and into the changes after them). */
		removed = folder->io.unlink(journal->path) == 0 || errno == ENOENT;
		state_sync_folder(folder);
	}
	journal->size = 0;
	journal->needs_trim = !removed;
	journal->exists = !removed;
	if(removed){
		journal->has_lines = false;
		journal->id[0] = '\0';
	}
	journal->changes = 0;
}

/* ---- rebasing after a background fold ---- */

char *journal_rebased_text(const char *tail, size_t length, const char *id, size_t *rebased_length)
{
	const char *newline = memchr(tail, '\n', length);
	size_t first_length = newline ? (size_t)(newline - tail) : length;
	cJSON *first = cJSON_ParseWithLength(tail, first_length);
	char *line = NULL;
	if(cJSON_IsObject(first)){
		cJSON_DeleteItemFromObjectCaseSensitive(first, "journalId");
		if(id[0] == '\0' || cJSON_AddStringToObject(first, "journalId", id)){
			line = cJSON_PrintUnformatted(first);
		}
	}
	cJSON_Delete(first);
	if(line == NULL){
		return NULL;
	}
	size_t line_length = strlen(line);
	size_t rest = length - first_length;   /* from the first newline on */
	char *text = malloc(line_length + rest + 1);
	if(text){
		memcpy(text, line, line_length);
		memcpy(text + line_length, tail + first_length, rest);
		text[line_length + rest] = '\0';
		*rebased_length = line_length + rest;
	}
	free(line);
	return text;
}

/* The journal's complete lines from byte from on, read from the file this
 * broker writes (never another one put at its path); NULL with error. */
static char *read_tail(const struct journal_file *journal, off_t from, size_t *length, char *error, size_t error_len)
{
	int fd = state_open_regular(journal->path, O_RDONLY, 0, "journal", error, error_len);
	if(fd < 0){
		return NULL;
	}
	struct stat info;
	size_t size = (size_t)(journal->size - from);
	char *tail = NULL;
	if(fstat(fd, &info) != 0 || info.st_dev != journal->device || info.st_ino != journal->inode){
		snprintf(error, error_len, "journal %s was replaced by another file since the broker read it; "
				"left alone", journal->path);
	}else if((tail = malloc(size + 1)) == NULL){
		snprintf(error, error_len, "%s: out of memory", journal->path);
	}else if(pread(fd, tail, size, from) != (ssize_t)size){
		snprintf(error, error_len, "cannot read journal %s: %s", journal->path, strerror(errno));
		free(tail);
		tail = NULL;
	}else{
		*length = size;
	}
	close(fd);
	return tail;
}

/* Writes text as a new file beside the journal, fsync'd; its descriptor
 * (O_APPEND, for the appends after the rename) and name, or -1. */
static int write_rebased(const struct journal_file *journal, const struct state_folder *folder, const char *text,
		size_t length, char *temp_path, size_t temp_path_size, char *error, size_t error_len)
{
	snprintf(temp_path, temp_path_size, "%s.tmp.XXXXXX", journal->path);
	int fd = mkostemp(temp_path, O_APPEND | O_CLOEXEC);
	const char *step = "create";
	if(fd >= 0){
		step = "write";
		if(state_write_all(folder, fd, text, length)){
			step = "fsync";
			if(folder->io.fsync(fd) == 0){
				return fd;
			}
		}
	}
	snprintf(error, error_len, "cannot rebase journal %s: %s failed: %s", journal->path, step, strerror(errno));
	if(fd >= 0){
		close(fd);
		unlink(temp_path);
	}
	return -1;
}

/* The journal is now the rebased file open as fd, holding length bytes. */
static void adopt_rebased(struct journal_file *journal, int fd, size_t length, size_t changes_before, const char *id)
{
	struct stat info;
	journal_file_close(journal);
	journal->fd = fd;
	if(fstat(fd, &info) == 0){
		remember_file(journal, &info);
	}
	journal->size = (off_t)length;
	journal->has_lines = true;
	journal->needs_trim = false;
	snprintf(journal->id, sizeof(journal->id), "%s", id);
	journal->changes = journal->changes > changes_before ? journal->changes - changes_before : 0;
}

bool journal_file_rebase(struct journal_file *journal, const struct state_folder *folder, off_t from,
		size_t changes_before, const char *id, const char *state_path, char *error, size_t error_len)
{
	error[0] = '\0';
	if(journal->size <= from){
		journal_file_drop(journal, folder, state_path, error, error_len);
		return error[0] == '\0';
	}
	size_t length = 0, rebased_length = 0;
	char *tail = read_tail(journal, from, &length, error, error_len);
	char *text = tail ? journal_rebased_text(tail, length, id, &rebased_length) : NULL;
	free(tail);
	if(tail && text == NULL){
		snprintf(error, error_len, "cannot rebase journal %s: its line at byte %lld is not a JSON object "
				"(or out of memory)", journal->path, (long long)from);
	}
	if(text == NULL){
		return false;
	}
	char temp_path[STATE_PATH_SIZE + 16];
	int fd = write_rebased(journal, folder, text, rebased_length, temp_path, sizeof(temp_path), error, error_len);
	free(text);
	if(fd < 0){
		return false;
	}
	bool ours = journal_is_ours(journal);
	if(!ours || folder->io.rename(temp_path, journal->path) != 0){
		if(ours){
			snprintf(error, error_len, "cannot rebase journal %s: rename failed: %s", journal->path, strerror(errno));
		}else{
			snprintf(error, error_len, "cannot rebase journal %s: it is not the journal this broker wrote; "
					"left alone", journal->path);
		}
		close(fd);
		unlink(temp_path);
		return false;
	}
	adopt_rebased(journal, fd, rebased_length, changes_before, id);
	if(!state_sync_folder(folder)){
		journal->name_unsynced = true;
		snprintf(error, error_len, "rebased journal %s but could not fsync its folder (retried before the "
				"next change): %s", journal->path, strerror(errno));
	}
	return true;
}
