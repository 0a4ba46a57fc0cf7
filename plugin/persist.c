/*
 * The JSON snapshot and journal backend. See include/persist.h for the
 * guarantees. Errors are returned as sentences naming the file, never
 * logged here, so the caller decides whether they stop the broker or fail
 * one command.
 *
 * The snapshot is written one role or token per line (still one JSON
 * document), so that loading a million tokens parses a million small
 * objects instead of building one huge tree; a file in any other valid
 * layout (edited by hand, say) is read as a whole document instead.
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
	off_t journal_size;        /* bytes of complete lines */
	bool journal_needs_trim;   /* bytes past journal_size must go before appending */
	int64_t sequence;          /* the last change recorded, in the snapshot or the journal */
	size_t journal_changes;
	size_t snapshot_after;     /* 0: as many changes as the store has items */
	size_t snapshot_retry_at;  /* after a failed snapshot: journal changes before the next try */
	const char *notice;
	struct persist_io io;
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
	int fd = open(persist->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if(fd < 0){
		snprintf(error, error_len, "cannot open lock file %s: %s", persist->lock_path, strerror(errno));
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

/* ---- reading ---- */

/* Reads the whole file; *missing is set when it does not exist. */
static char *read_file(const char *path, size_t *length, bool *missing, char *error, size_t error_len)
{
	*missing = false;
	FILE *file = fopen(path, "rbe");
	if(file == NULL){
		*missing = (errno == ENOENT);
		snprintf(error, error_len, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	struct stat info;
	char *content = NULL;
	if(fstat(fileno(file), &info) != 0 || !S_ISREG(info.st_mode)){
		snprintf(error, error_len, "%s is not a regular file", path);
	}else if((content = malloc((size_t)info.st_size + 1)) == NULL){
		snprintf(error, error_len, "%s: out of memory", path);
	}else if((*length = fread(content, 1, (size_t)info.st_size, file)) != (size_t)info.st_size){
		snprintf(error, error_len, "cannot read %s: %s", path, ferror(file) ? strerror(errno) : "file shrank");
		free(content);
		content = NULL;
	}else{
		content[*length] = '\0';
	}
	fclose(file);
	return content;
}

static bool load_snapshot(struct persist *persist, struct store *store, char *error, size_t error_len)
{
	return snapshot_read(persist->path, store, &persist->sequence, error, error_len);
}

/* Checked before any conversion: a double out of int64_t's range does not
 * convert. */
static bool is_sequence_number(const cJSON *item)
{
	return cJSON_IsNumber(item) && item->valuedouble >= 1 && item->valuedouble <= (double)JOURNAL_SEQUENCE_MAX
			&& item->valuedouble == (double)(int64_t)item->valuedouble;
}

static bool replay_line(struct persist *persist, struct store *store, char *line, size_t length,
		int64_t *previous, char *problem, size_t problem_len)
{
	cJSON *change = cJSON_ParseWithLengthOpts(line, length + 1, NULL, true);
	const cJSON *sequence = cJSON_GetObjectItemCaseSensitive(change, "seq");
	bool applied = false;
	if(change == NULL){
		snprintf(problem, problem_len, "not valid JSON");
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
		applied = *previous <= persist->sequence || journal_apply(store, change, problem, problem_len);
		if(applied && *previous > persist->sequence){
			persist->journal_changes += journal_change_count(change);
		}
	}
	cJSON_Delete(change);
	return applied;
}

static bool replay_journal(struct persist *persist, struct store *store, char *error, size_t error_len)
{
	size_t length = 0;
	bool missing;
	char *content = read_file(persist->journal_path, &length, &missing, error, error_len);
	if(content == NULL){
		return missing;
	}
	char problem[512];
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
		ok = replay_line(persist, store, line, (size_t)(newline - line), &previous, problem, sizeof(problem));
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

bool persist_load(struct persist *persist, struct store *store, char *error, size_t error_len)
{
	persist->sequence = 0;
	persist->journal_changes = 0;
	persist->notice = NULL;
	if(!load_snapshot(persist, store, error, error_len)){
		return false;
	}
	if(!replay_journal(persist, store, error, error_len)){
		store_clear(store);
		return false;
	}
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

static bool open_journal(struct persist *persist, char *error, size_t error_len)
{
	if(persist->journal_fd < 0){
		bool created = access(persist->journal_path, F_OK) != 0;
		persist->journal_fd = open(persist->journal_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if(persist->journal_fd < 0){
			snprintf(error, error_len, "cannot open journal %s: %s", persist->journal_path, strerror(errno));
			return false;
		}
		/* A new journal's name must survive a crash as well as its lines. */
		if(created && !sync_folder(persist)){
			snprintf(error, error_len, "cannot fsync the folder of %s: %s", persist->journal_path, strerror(errno));
			close(persist->journal_fd);
			persist->journal_fd = -1;
			unlink(persist->journal_path);
			return false;
		}
	}
	if(persist->journal_needs_trim){
		if(ftruncate(persist->journal_fd, persist->journal_size) != 0){
			snprintf(error, error_len, "cannot trim journal %s: %s", persist->journal_path, strerror(errno));
			return false;
		}
		persist->journal_needs_trim = false;
	}
	return true;
}

bool persist_record(struct persist *persist, cJSON *change, char *error, size_t error_len)
{
	if(!open_journal(persist, error, error_len)){
		return false;
	}
	int64_t sequence = persist->sequence + 1;
	if(!cJSON_AddNumberToObject(change, "seq", (double)sequence)){
		snprintf(error, error_len, "out of memory");
		return false;
	}
	char *line = cJSON_PrintUnformatted(change);
	cJSON_DeleteItemFromObjectCaseSensitive(change, "seq");
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
	size_t size = store_token_count(store) + store_role_count(store);
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

static void write_snapshot(struct snapshot_writer *writer, const struct store *store, int64_t sequence)
{
	char header[96];
	size_t role_count, token_count;
	struct role **roles = store_sorted_roles(store, &role_count);
	struct token **tokens = store_sorted_tokens(store, &token_count);
	if(roles == NULL || tokens == NULL){
		writer->failed = true;
		errno = ENOMEM;
	}else{
		snprintf(header, sizeof(header), "{\n\"version\": %d,\n\"journalSequence\": %lld,\n\"roles\": [\n",
				STATE_FORMAT_VERSION, (long long)sequence);
		writer_put(writer, header);
		for(size_t i = 0; i < role_count && !writer->failed; i++){
			writer_put_item(writer, role_to_json(roles[i]), i + 1 == role_count);
		}
		writer_put(writer, "],\n\"tokens\": [\n");
		for(size_t i = 0; i < token_count && !writer->failed; i++){
			writer_put_item(writer, token_state_to_json(store, tokens[i]), i + 1 == token_count);
		}
		writer_put(writer, "]\n}\n");
		writer_flush(writer);
	}
	free(roles);
	free(tokens);
}

/* The journal's changes are all in the new snapshot now. */
static void drop_journal(struct persist *persist)
{
	if(persist->journal_fd >= 0){
		close(persist->journal_fd);
		persist->journal_fd = -1;
	}
	/* A journal that cannot be removed keeps lines the snapshot holds:
	 * they go before the next append, which would otherwise follow them
	 * while journal_size counts from zero (and a failed append would then
	 * cut back into them, and into the changes after them). */
	bool removed = persist->io.unlink(persist->journal_path) == 0 || errno == ENOENT;
	sync_folder(persist);
	persist->journal_size = 0;
	persist->journal_needs_trim = !removed;
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
	const char *step = "create a temporary file";
	bool renamed = false;
	int fd = mkstemp(temp_path);   /* mode 0600 */
	if(fd >= 0){
		*writer = (struct snapshot_writer){.persist = persist, .fd = fd};
		write_snapshot(writer, store, persist->sequence);
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
	if(!sync_folder(persist)){
		/* Until the rename is durable, the journal must stay. */
		snprintf(error, error_len, "saved %s but could not fsync its folder: %s", persist->path, strerror(errno));
		postpone_snapshot(persist);
		return true;
	}
	drop_journal(persist);
	return true;
}
