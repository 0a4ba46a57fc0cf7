/*
 * The JSON snapshot and journal backend. See include/persist.h for the
 * guarantees. Errors are returned as sentences naming the file, never
 * logged here, so the caller decides whether they stop the broker or fail
 * one command.
 *
 * The snapshot is written one role, token or binding per line (still one
 * JSON document), so that loading a million tokens parses a million small
 * objects instead of building one huge tree; a file in any other valid
 * layout (edited by hand, say) is read one item at a time as well.
 *
 * The bindings of persistent sessions travel beside the store: loading
 * puts them into the sink (or a table of its own), a snapshot takes them
 * from the source (or that table), copying them into a table first so that
 * they are written sorted and once per client id.
 *
 * Every file of the state folder is opened without following a symbolic
 * link and without blocking, and only if it is a regular file
 * (state_open_regular): a link planted as the journal must not make the
 * broker write outside the folder, a FIFO must not hang its start.
 *
 * A snapshot and the journal that follows it share a random id: the
 * snapshot's "journalId" is carried by the journal's first line. A journal
 * with another id belongs to another state file, or to another copy of
 * this one, and is refused rather than skipped (and later deleted). The
 * snapshot also names the journal it folded in ("previousJournalId"), so
 * that the old journal a crash or a failed removal leaves behind still
 * loads.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "journal.h"
#include "persist.h"
#include "snapshot_reader.h"
#include "state_format.h"

#define PATH_SIZE 4096
#define SNAPSHOT_FLOOR 10000   /* journal changes before a snapshot is considered */
#define WRITE_BUFFER_SIZE 65536

struct persist {
	char path[PATH_SIZE];
	char journal_path[PATH_SIZE];
	char lock_path[PATH_SIZE];
	char folder[PATH_SIZE];
	int lock_fd;
	int journal_fd;            /* -1 until the first change after a snapshot */
	/* The journal file as it is on disk (whether this broker opened it yet
	 * or not): ours to append to and to remove, and the id its first line
	 * carries. */
	bool journal_exists;
	bool journal_has_lines;    /* complete lines, perhaps beyond journal_size until trimmed */
	dev_t journal_device;
	ino_t journal_inode;
	char journal_id[JOURNAL_ID_HEX_LEN + 1];    /* "": none (written before ids) */
	/* What a journal started now carries on its first line: the snapshot's
	 * id ("" for a snapshot written before ids, so that the pair stays an
	 * old pair until the next snapshot). */
	char snapshot_id[JOURNAL_ID_HEX_LEN + 1];
	off_t journal_size;        /* bytes of complete lines */
	bool journal_needs_trim;   /* bytes past journal_size must go before appending */
	int64_t sequence;          /* the last change recorded, in the snapshot or the journal */
	size_t journal_changes;
	size_t snapshot_after;     /* 0: as many changes as the store has items */
	size_t snapshot_retry_at;  /* after a failed snapshot: journal changes before the next try */
	const char *notice;
	struct persist_io io;
	/* Bindings of persistent sessions: loaded here without a sink, written
	 * from here without a source. */
	struct session_records sessions;
	struct session_records *session_sink;
	const struct session_source *session_source;
	size_t session_count;      /* bindings the last load or snapshot held, for the snapshot rule */
};

static const struct persist_io system_io = {
	.write = write,
	.fsync = fsync,
	.rename = rename,
	.unlink = unlink,
};

/* ---- opening and locking ---- */

static bool set_paths(struct persist *persist, const char *path)
{
	char copy[PATH_SIZE];
	if(snprintf(persist->path, PATH_SIZE, "%s", path) >= PATH_SIZE
			|| snprintf(persist->journal_path, PATH_SIZE, "%s.journal", path) >= PATH_SIZE
			|| snprintf(persist->lock_path, PATH_SIZE, "%s.lock", path) >= PATH_SIZE){
		return false;
	}
	snprintf(copy, sizeof(copy), "%s", path);
	snprintf(persist->folder, PATH_SIZE, "%s", dirname(copy));
	return true;
}

static int take_lock(const struct persist *persist, char *error, size_t error_len)
{
	int fd = state_open_regular(persist->lock_path, O_RDWR | O_CREAT, 0600, "lock file", error, error_len);
	if(fd < 0){
		return -1;
	}
	if(flock(fd, LOCK_EX | LOCK_NB) != 0){
		int saved = errno;
		close(fd);
		if(saved == EWOULDBLOCK){
			snprintf(error, error_len, "state file %s is already in use by another broker "
					"(%s is locked); two brokers must not share one state file", persist->path, persist->lock_path);
		}else{
			snprintf(error, error_len, "cannot lock %s: %s", persist->lock_path, strerror(saved));
		}
		return -1;
	}
	return fd;
}

/* A new random id, as hex. */
static bool new_journal_id(char id[JOURNAL_ID_HEX_LEN + 1])
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

struct persist *persist_open(const char *path, char *error, size_t error_len)
{
	struct persist *persist = calloc(1, sizeof(*persist));
	if(persist == NULL){
		snprintf(error, error_len, "out of memory");
		return NULL;
	}
	persist->lock_fd = -1;
	persist->journal_fd = -1;
	persist->io = system_io;
	if(!set_paths(persist, path)){
		snprintf(error, error_len, "state file path %s is too long", path);
		persist_close(persist);
		return NULL;
	}
	persist->lock_fd = take_lock(persist, error, error_len);
	if(persist->lock_fd < 0){
		persist_close(persist);
		return NULL;
	}
	/* Until a load says which snapshot there is, as if there were none. */
	if(!new_journal_id(persist->snapshot_id)){
		snprintf(error, error_len, "cannot open %s: the random number generator failed", path);
		persist_close(persist);
		return NULL;
	}
	return persist;
}

void persist_close(struct persist *persist)
{
	if(persist == NULL){
		return;
	}
	if(persist->journal_fd >= 0){
		close(persist->journal_fd);
	}
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
	persist->io = io ? *io : system_io;
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

/* ---- reading ---- */

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
static char *read_journal(struct persist *persist, size_t *length, bool *missing, char *error, size_t error_len)
{
	int fd = state_open_regular(persist->journal_path, O_RDONLY, 0, "journal", error, error_len);
	*missing = fd < 0 && errno == ENOENT;
	if(fd < 0){
		return NULL;
	}
	struct stat info;
	char *content = NULL;
	if(fstat(fd, &info) != 0){
		snprintf(error, error_len, "cannot read journal %s: %s", persist->journal_path, strerror(errno));
	}else if((content = malloc((size_t)info.st_size + 1)) == NULL){
		snprintf(error, error_len, "%s: out of memory", persist->journal_path);
	}else if(!read_all(fd, content, (size_t)info.st_size)){
		snprintf(error, error_len, "cannot read journal %s: %s", persist->journal_path, strerror(errno));
		free(content);
		content = NULL;
	}else{
		*length = (size_t)info.st_size;
		content[*length] = '\0';
		persist->journal_exists = true;
		persist->journal_device = info.st_dev;
		persist->journal_inode = info.st_ino;
	}
	close(fd);
	return content;
}

static bool load_snapshot(struct persist *persist, struct store *store, struct snapshot_header *header,
		char *error, size_t error_len)
{
	bool loaded = snapshot_read(persist->path, store, loaded_sessions(persist), header, error, error_len);
	persist->sequence = header->journal_sequence;
	memcpy(persist->snapshot_id, header->ids.id, sizeof(persist->snapshot_id));
	return loaded;
}

/* Whether a journal whose first line carries id may follow this snapshot:
 * the snapshot's own, or the one it folded in (left by a crash or a failed
 * removal; its lines are skipped by their seq). Without a snapshot any
 * journal is the whole history. */
static bool journal_belongs(const struct snapshot_header *header, const char *id)
{
	return header->missing || strcmp(id, header->ids.id) == 0
		|| (header->ids.has_previous && strcmp(id, header->ids.previous) == 0);
}

/* Reads the first line's "journalId" into persist->journal_id and checks
 * that the journal belongs to the snapshot. */
static bool check_journal_id(struct persist *persist, const struct snapshot_header *header, const cJSON *first,
		char *problem, size_t problem_len)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(first, "journalId");
	if(id && !(cJSON_IsString(id) && journal_id_is_valid(id->valuestring))){
		snprintf(problem, problem_len, "'journalId' is not %d lowercase hex digits", JOURNAL_ID_HEX_LEN);
		return false;
	}
	snprintf(persist->journal_id, sizeof(persist->journal_id), "%s", id ? id->valuestring : "");
	if(!journal_belongs(header, persist->journal_id)){
		snprintf(problem, problem_len, "the journal does not belong to state file %s: its journalId is %s, "
				"the state file's is %s%s%s (a journal from another state file, or from another copy of this one; "
				"nothing was loaded or removed)", persist->path,
				persist->journal_id[0] ? persist->journal_id : "missing",
				header->ids.id[0] ? header->ids.id : "missing",
				header->ids.has_previous ? " and it folded in " : "",
				header->ids.has_previous ? (header->ids.previous[0] ? header->ids.previous : "a journal without one") : "");
		return false;
	}
	return true;
}

/* Checked before any conversion: a double out of int64_t's range does not
 * convert. */
static bool is_sequence_number(const cJSON *item)
{
	return cJSON_IsNumber(item) && item->valuedouble >= 1 && item->valuedouble <= (double)JOURNAL_SEQUENCE_MAX
			&& item->valuedouble == (double)(int64_t)item->valuedouble;
}

static bool replay_line(struct persist *persist, struct store *store, const struct snapshot_header *header,
		char *line, size_t length, int64_t *previous, char *problem, size_t problem_len)
{
	cJSON *change = cJSON_ParseWithLengthOpts(line, length + 1, NULL, true);
	const cJSON *sequence = cJSON_GetObjectItemCaseSensitive(change, "seq");
	bool first = !persist->journal_has_lines;
	bool applied = false;
	if(change == NULL){
		snprintf(problem, problem_len, "not valid JSON");
	}else if(first && !check_journal_id(persist, header, change, problem, problem_len)){
		applied = false;
	}else if(!first && cJSON_GetObjectItemCaseSensitive(change, "journalId")){
		snprintf(problem, problem_len, "'journalId' is only on the first line");
	}else if(!is_sequence_number(sequence) || (*previous && (int64_t)sequence->valuedouble != *previous + 1)){
		snprintf(problem, problem_len, "'seq' is missing or not increasing by one");
	}else if((int64_t)sequence->valuedouble > persist->sequence + 1 && *previous <= persist->sequence){
		/* The first new change must follow the snapshot's last. */
		snprintf(problem, problem_len, "'seq' %lld skips changes %lld to %lld: they are in neither the snapshot "
				"nor the journal", (long long)sequence->valuedouble, (long long)(persist->sequence + 1),
				(long long)sequence->valuedouble - 1);
	}else{
		*previous = (int64_t)sequence->valuedouble;
		/* Changes the snapshot already holds (a crash between writing it
		 * and removing the journal) are skipped. */
		applied = *previous <= persist->sequence
			|| journal_replay(store, loaded_sessions(persist), change, problem, problem_len);
		if(applied && *previous > persist->sequence){
			persist->journal_changes += journal_change_count(change);
		}
		persist->journal_has_lines = true;
	}
	cJSON_Delete(change);
	return applied;
}

static bool replay_journal(struct persist *persist, struct store *store, const struct snapshot_header *header,
		char *error, size_t error_len)
{
	size_t length = 0;
	bool missing;
	char *content = read_journal(persist, &length, &missing, error, error_len);
	if(content == NULL){
		return missing;
	}
	char problem[PATH_SIZE + 1024];   /* may name the state file */
	int64_t previous = 0;
	int line_number = 1;
	char *line = content, *end = content + length;
	bool ok = true;
	while(ok && line < end){
		char *newline = memchr(line, '\n', (size_t)(end - line));
		if(newline == NULL){
			/* A last line without its newline was being written when the
			 * broker stopped: its command was never acknowledged. */
			persist->journal_needs_trim = true;
			persist->notice = "the journal's last change was cut short by a crash and is dropped "
				"(it had not been acknowledged)";
			break;
		}
		*newline = '\0';
		ok = replay_line(persist, store, header, line, (size_t)(newline - line), &previous, problem, sizeof(problem));
		if(!ok){
			snprintf(error, error_len, "journal %s line %d: %s", persist->journal_path, line_number, problem);
		}
		line = newline + 1;
		line_number++;
	}
	persist->journal_size = (off_t)(line - content);
	if(previous > persist->sequence){
		persist->sequence = previous;
	}
	free(content);
	return ok;
}

/* What a journal started from now on carries: the snapshot's id; without
 * a snapshot, the id of the journal there is, or a new one. */
static bool choose_snapshot_id(struct persist *persist, const struct snapshot_header *header,
		char *error, size_t error_len)
{
	if(!header->missing){
		return true;
	}
	if(persist->journal_has_lines){
		memcpy(persist->snapshot_id, persist->journal_id, sizeof(persist->snapshot_id));
		return true;
	}
	if(!new_journal_id(persist->snapshot_id)){
		snprintf(error, error_len, "cannot load %s: the random number generator failed", persist->path);
		return false;
	}
	return true;
}

bool persist_load(struct persist *persist, struct store *store, char *error, size_t error_len)
{
	struct snapshot_header header;
	persist->sequence = 0;
	persist->journal_changes = 0;
	persist->journal_exists = false;
	persist->journal_has_lines = false;
	persist->journal_id[0] = '\0';
	persist->notice = NULL;
	persist->session_count = 0;
	struct session_records *sessions = loaded_sessions(persist);
	session_records_clear(sessions);
	if(!load_snapshot(persist, store, &header, error, error_len)){
		return false;
	}
	if(!replay_journal(persist, store, &header, error, error_len)
			|| !choose_snapshot_id(persist, &header, error, error_len)){
		store_clear(store);
		session_records_clear(sessions);
		return false;
	}
	persist->session_count = session_records_count(sessions);
	return true;
}

/* ---- writing ---- */

static bool write_all(struct persist *persist, int fd, const char *data, size_t length)
{
	while(length > 0){
		ssize_t written = persist->io.write(fd, data, length);
		if(written < 0 && errno == EINTR){
			continue;
		}
		if(written <= 0){
			if(written == 0) errno = EIO;
			return false;
		}
		data += written;
		length -= (size_t)written;
	}
	return true;
}

static bool sync_folder(struct persist *persist)
{
	int fd = open(persist->folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if(fd < 0){
		return false;
	}
	bool ok = persist->io.fsync(fd) == 0;
	int saved = errno;
	close(fd);
	errno = saved;
	return ok;
}

/* A journal this broker did not read or write is never appended to: one
 * that appears where there was none was put there by someone else, one
 * that is another file now was replaced. */
static int open_journal_file(struct persist *persist, char *error, size_t error_len)
{
	if(!persist->journal_exists){
		/* O_EXCL: nothing that is there already, not even a dangling link. */
		int fd = open(persist->journal_path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
		if(fd < 0){
			snprintf(error, error_len, errno == EEXIST
					? "cannot start journal %s: something else is there now (%s), left alone"
					: "cannot open journal %s: %s",
					persist->journal_path, strerror(errno));
		}
		return fd;
	}
	int fd = state_open_regular(persist->journal_path, O_WRONLY | O_APPEND, 0, "journal", error, error_len);
	struct stat info;
	if(fd >= 0 && (fstat(fd, &info) != 0 || info.st_dev != persist->journal_device
			|| info.st_ino != persist->journal_inode)){
		snprintf(error, error_len, "journal %s was replaced by another file since the broker read it; "
				"left alone", persist->journal_path);
		close(fd);
		fd = -1;
	}
	return fd;
}

static bool open_journal(struct persist *persist, char *error, size_t error_len)
{
	if(persist->journal_fd < 0){
		bool created = !persist->journal_exists;
		persist->journal_fd = open_journal_file(persist, error, error_len);
		if(persist->journal_fd < 0){
			return false;
		}
		struct stat info;
		if(created && fstat(persist->journal_fd, &info) == 0){
			persist->journal_exists = true;
			persist->journal_device = info.st_dev;
			persist->journal_inode = info.st_ino;
		}
		/* A new journal's name must survive a crash as well as its lines. */
		if(created && (!persist->journal_exists || !sync_folder(persist))){
			snprintf(error, error_len, "cannot fsync the folder of %s: %s", persist->journal_path, strerror(errno));
			close(persist->journal_fd);
			persist->journal_fd = -1;
			unlink(persist->journal_path);
			persist->journal_exists = false;
			return false;
		}
	}
	if(persist->journal_needs_trim){
		if(ftruncate(persist->journal_fd, persist->journal_size) != 0){
			snprintf(error, error_len, "cannot trim journal %s: %s", persist->journal_path, strerror(errno));
			return false;
		}
		persist->journal_needs_trim = false;
		if(persist->journal_size == 0){
			persist->journal_has_lines = false;
			persist->journal_id[0] = '\0';
		}
	}
	return true;
}

/* The journal's first line carries the id of the snapshot it follows. */
static bool add_journal_id(struct persist *persist, cJSON *change)
{
	return persist->journal_size > 0 || persist->snapshot_id[0] == '\0'
		|| cJSON_AddStringToObject(change, "journalId", persist->snapshot_id) != NULL;
}

bool persist_record(struct persist *persist, cJSON *change, char *error, size_t error_len)
{
	if(!open_journal(persist, error, error_len)){
		return false;
	}
	int64_t sequence = persist->sequence + 1;
	bool first = persist->journal_size == 0;
	if(!cJSON_AddNumberToObject(change, "seq", (double)sequence) || !add_journal_id(persist, change)){
		cJSON_DeleteItemFromObjectCaseSensitive(change, "seq");
		snprintf(error, error_len, "out of memory");
		return false;
	}
	char *line = cJSON_PrintUnformatted(change);
	cJSON_DeleteItemFromObjectCaseSensitive(change, "seq");
	cJSON_DeleteItemFromObjectCaseSensitive(change, "journalId");
	if(line == NULL){
		snprintf(error, error_len, "out of memory");
		return false;
	}
	size_t length = strlen(line);
	line[length] = '\n';   /* replaces the NUL; the length is known */
	const char *step = "write";
	bool written = write_all(persist, persist->journal_fd, line, length + 1);
	if(written){
		step = "fsync";
		written = persist->io.fsync(persist->journal_fd) == 0;
	}
	int saved = errno;
	free(line);
	if(!written){
		/* Take back what part of the line reached the file; if even that
		 * fails, the next append tries again first. */
		if(ftruncate(persist->journal_fd, persist->journal_size) != 0){
			persist->journal_needs_trim = true;
		}
		snprintf(error, error_len, "cannot record the change in %s: %s failed: %s",
				persist->journal_path, step, strerror(saved));
		return false;
	}
	persist->journal_size += (off_t)(length + 1);
	if(first){
		memcpy(persist->journal_id, persist->snapshot_id, sizeof(persist->journal_id));
	}
	persist->journal_has_lines = true;
	persist->sequence = sequence;
	persist->journal_changes += journal_change_count(change);
	return true;
}

void persist_set_snapshot_after(struct persist *persist, size_t changes)
{
	persist->snapshot_after = changes;
}

bool persist_wants_snapshot(const struct persist *persist, const struct store *store)
{
	if(persist->journal_changes < persist->snapshot_retry_at){
		return false;
	}
	if(persist->snapshot_after){
		return persist->journal_changes >= persist->snapshot_after;
	}
	size_t size = store_token_count(store) + store_role_count(store) + persist->session_count;
	return persist->journal_changes >= (size > SNAPSHOT_FLOOR ? size : SNAPSHOT_FLOOR);
}

bool persist_has_journal(const struct persist *persist)
{
	return persist->journal_size > 0 || persist->journal_needs_trim;
}

/* Buffered writes through persist->io, so that tests can fail them. */
struct snapshot_writer {
	struct persist *persist;
	int fd;
	bool failed;
	size_t used;
	char buffer[WRITE_BUFFER_SIZE];
};

static void writer_flush(struct snapshot_writer *writer)
{
	if(!writer->failed && writer->used > 0){
		writer->failed = !write_all(writer->persist, writer->fd, writer->buffer, writer->used);
	}
	writer->used = 0;
}

static void writer_put(struct snapshot_writer *writer, const char *text)
{
	size_t length = strlen(text);
	if(writer->used + length > WRITE_BUFFER_SIZE){
		writer_flush(writer);
	}
	if(length > WRITE_BUFFER_SIZE){
		writer->failed = writer->failed || !write_all(writer->persist, writer->fd, text, length);
		return;
	}
	memcpy(writer->buffer + writer->used, text, length);
	writer->used += length;
}

/* One item per line; NULL json means out of memory. */
static void writer_put_item(struct snapshot_writer *writer, cJSON *json, bool last)
{
	char *text = json ? cJSON_PrintUnformatted(json) : NULL;
	cJSON_Delete(json);
	if(text == NULL){
		writer->failed = true;
		errno = ENOMEM;
		return;
	}
	writer_put(writer, text);
	writer_put(writer, last ? "\n" : ",\n");
	free(text);
}

/* The header's lines: the journal ids after journalSequence. */
static void write_header(struct snapshot_writer *writer, int64_t sequence, const char *id)
{
	char header[256];
	const struct persist *persist = writer->persist;
	int length = snprintf(header, sizeof(header), "{\n\"version\": %d,\n\"journalSequence\": %lld,\n"
			"\"journalId\": \"%s\",\n", STATE_FORMAT_VERSION, (long long)sequence, id);
	/* The journal this snapshot folds in: the one on disk, or else the
	 * id the next one would carry if this snapshot's rename is lost. */
	const char *previous = persist->journal_has_lines ? persist->journal_id : persist->snapshot_id;
	if((persist->journal_has_lines || previous[0]) && length > 0 && (size_t)length < sizeof(header)){
		snprintf(header + length, sizeof(header) - (size_t)length, "\"previousJournalId\": \"%s\",\n", previous);
	}
	writer_put(writer, header);
	writer_put(writer, "\"roles\": [\n");
}

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

/* The bindings to write, sorted; NULL (errno ENOMEM) when out of memory.
 * copied holds the source's, to be cleared by the caller. */
static const struct session_record **sessions_to_write(struct persist *persist, struct session_records *copied,
		size_t *count)
{
	const struct session_records *records = &persist->sessions;
	if(persist->session_source){
		struct session_copy copy = {.records = copied};
		persist->session_source->each(persist->session_source->context, copy_session, &copy);
		if(copy.failed){
			errno = ENOMEM;
			return NULL;
		}
		records = copied;
	}
	const struct session_record **sorted = session_records_sorted(records, count);
	if(sorted == NULL){
		errno = ENOMEM;
	}
	return sorted;
}

/* After the tokens: "sessions", only when there are bindings, so that a
 * store without any is written as before they existed. */
static void write_sessions(struct snapshot_writer *writer, const struct session_record **sessions, size_t count)
{
	if(count == 0){
		writer_put(writer, "]\n}\n");
		return;
	}
	writer_put(writer, "],\n\"sessions\": [\n");
	for(size_t i = 0; i < count && !writer->failed; i++){
		const struct session_record *record = sessions[i];
		writer_put_item(writer, state_session_to_json(record->client_id, record->username, record->hash),
				i + 1 == count);
	}
	writer_put(writer, "]\n}\n");
}

/* Returns how many bindings it wrote. */
static size_t write_snapshot(struct snapshot_writer *writer, const struct store *store, int64_t sequence,
		const char *id)
{
	size_t role_count, token_count, session_count = 0;
	struct session_records copied;
	session_records_init(&copied);
	struct role **roles = store_sorted_roles(store, &role_count);
	struct token **tokens = store_sorted_tokens(store, &token_count);
	const struct session_record **sessions = sessions_to_write(writer->persist, &copied, &session_count);
	if(roles == NULL || tokens == NULL || sessions == NULL){
		writer->failed = true;
		errno = ENOMEM;
	}else{
		write_header(writer, sequence, id);
		for(size_t i = 0; i < role_count && !writer->failed; i++){
			writer_put_item(writer, role_to_json(roles[i]), i + 1 == role_count);
		}
		writer_put(writer, "],\n\"tokens\": [\n");
		for(size_t i = 0; i < token_count && !writer->failed; i++){
			writer_put_item(writer, token_state_to_json(store, tokens[i]), i + 1 == token_count);
		}
		write_sessions(writer, sessions, session_count);
		writer_flush(writer);
	}
	free(roles);
	free(tokens);
	free(sessions);
	session_records_clear(&copied);
	return session_count;
}

/* True when the journal's path still names the file this broker read or
 * wrote (what is removed must be what the snapshot folded in). */
static bool journal_is_ours(const struct persist *persist)
{
	struct stat info;
	return lstat(persist->journal_path, &info) == 0 && info.st_dev == persist->journal_device
		&& info.st_ino == persist->journal_inode;
}

/* The journal's changes are all in the new snapshot now. */
static void drop_journal(struct persist *persist, char *error, size_t error_len)
{
	if(persist->journal_fd >= 0){
		close(persist->journal_fd);
		persist->journal_fd = -1;
	}
	bool removed = true;
	if(persist->journal_exists && !journal_is_ours(persist)){
		/* Not the journal this snapshot folded in: someone else's file,
		 * never deleted. The next change refuses to append to it. */
		snprintf(error, error_len, "saved %s; %s is not the journal this broker wrote and is left alone",
				persist->path, persist->journal_path);
	}else if(persist->journal_exists){
		/* A journal that cannot be removed keeps lines the snapshot holds:
		 * they go before the next append, which would otherwise follow them
		 * while journal_size counts from zero (and a failed append would
		 * then cut back into them, and into the changes after them). */
		removed = persist->io.unlink(persist->journal_path) == 0 || errno == ENOENT;
		sync_folder(persist);
	}
	persist->journal_size = 0;
	persist->journal_needs_trim = !removed;
	persist->journal_exists = !removed;
	if(removed){
		persist->journal_has_lines = false;
		persist->journal_id[0] = '\0';
	}
	persist->journal_changes = 0;
	persist->snapshot_retry_at = 0;
}

/* A snapshot costs as much as the whole store, and a disk that failed one
 * may fail the next: trying again only once the journal has doubled keeps
 * the cost per change bounded (it would otherwise be paid after every
 * command while the fault lasts). */
static void postpone_snapshot(struct persist *persist)
{
	persist->snapshot_retry_at = 2 * persist->journal_changes + 1;
}

bool persist_save(struct persist *persist, const struct store *store, char *error, size_t error_len)
{
	char temp_path[PATH_SIZE + 16];
	snprintf(temp_path, sizeof(temp_path), "%s.tmp.XXXXXX", persist->path);
	struct snapshot_writer *writer = malloc(sizeof(*writer));
	if(writer == NULL){
		snprintf(error, error_len, "cannot save %s: out of memory", persist->path);
		return false;
	}
	char id[JOURNAL_ID_HEX_LEN + 1];
	if(!new_journal_id(id)){
		free(writer);
		snprintf(error, error_len, "cannot save %s: the random number generator failed", persist->path);
		return false;
	}
	const char *step = "create a temporary file";
	bool renamed = false;
	size_t written_sessions = 0;
	/* O_EXCL with a new name: never a link or anything already there. */
	int fd = mkostemp(temp_path, O_CLOEXEC);   /* mode 0600 */
	if(fd >= 0){
		*writer = (struct snapshot_writer){.persist = persist, .fd = fd};
		written_sessions = write_snapshot(writer, store, persist->sequence, id);
		step = "write";
		if(!writer->failed){
			step = "fsync";
			if(persist->io.fsync(fd) == 0){
				step = "rename";
				renamed = persist->io.rename(temp_path, persist->path) == 0;
			}
		}
	}
	int saved = errno;
	free(writer);
	if(fd >= 0){
		close(fd);
		if(!renamed) unlink(temp_path);
	}
	if(!renamed){
		snprintf(error, error_len, "cannot save %s: %s failed: %s", persist->path, step, strerror(saved));
		postpone_snapshot(persist);
		return false;
	}
	/* After the rename the new snapshot is the state and cannot be undone:
	 * a failed folder sync is reported in error, but the save counts. */
	error[0] = '\0';
	persist->session_count = written_sessions;
	if(!sync_folder(persist)){
		/* Until the rename is durable, the journal must stay. */
		/* ... and a journal started now carries the old id, which both
		 * snapshots accept (the new one names it as folded in). */
		snprintf(error, error_len, "saved %s but could not fsync its folder: %s", persist->path, strerror(errno));
		postpone_snapshot(persist);
		return true;
	}
	memcpy(persist->snapshot_id, id, sizeof(persist->snapshot_id));
	drop_journal(persist, error, error_len);
	return true;
}
