/*
 * The JSON state file backend. See include/persist.h for the guarantees.
 * Errors are returned as sentences naming the file, never logged here, so
 * the caller decides whether they stop the broker or fail one command.
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
#include <cjson/cJSON.h>

#include "persist.h"
#include "state_format.h"

struct persist {
	char *path;
	char *folder;
	int lock_fd;
	struct persist_io io;
};

static const struct persist_io system_io = {
	.write = write,
	.fsync = fsync,
	.rename = rename,
};

static char *folder_of(const char *path)
{
	char *copy = strdup(path);
	if(copy == NULL){
		return NULL;
	}
	char *folder = strdup(dirname(copy));
	free(copy);
	return folder;
}

static int take_lock(const char *path, char *error, size_t error_len)
{
	char lock_path[4096];
	if(snprintf(lock_path, sizeof(lock_path), "%s.lock", path) >= (int)sizeof(lock_path)){
		snprintf(error, error_len, "state file path %s is too long", path);
		return -1;
	}
	int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if(fd < 0){
		snprintf(error, error_len, "cannot open lock file %s: %s", lock_path, strerror(errno));
		return -1;
	}
	if(flock(fd, LOCK_EX | LOCK_NB) != 0){
		int saved = errno;
		close(fd);
		if(saved == EWOULDBLOCK){
			snprintf(error, error_len, "state file %s is already in use by another broker "
					"(%s is locked); two brokers must not share one state file", path, lock_path);
		}else{
			snprintf(error, error_len, "cannot lock %s: %s", lock_path, strerror(saved));
		}
		return -1;
	}
	return fd;
}

struct persist *persist_open(const char *path, char *error, size_t error_len)
{
	struct persist *persist = calloc(1, sizeof(*persist));
	if(persist) persist->lock_fd = -1;
	if(persist == NULL || (persist->path = strdup(path)) == NULL
			|| (persist->folder = folder_of(path)) == NULL){
		snprintf(error, error_len, "out of memory");
		persist_close(persist);
		return NULL;
	}
	persist->io = system_io;
	persist->lock_fd = take_lock(path, error, error_len);
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
	if(persist->lock_fd >= 0){
		close(persist->lock_fd);
	}
	free(persist->path);
	free(persist->folder);
	free(persist);
}

void persist_close_removing_lock(struct persist *persist)
{
	if(persist && persist->lock_fd >= 0){
		char lock_path[4096];
		snprintf(lock_path, sizeof(lock_path), "%s.lock", persist->path);
		unlink(lock_path);
	}
	persist_close(persist);
}

void persist_set_io(struct persist *persist, const struct persist_io *io)
{
	persist->io = io ? *io : system_io;
}

/* Reads the whole file; *missing is set when it does not exist. */
static char *read_file(const char *path, size_t *length, bool *missing, char *error, size_t error_len)
{
	*missing = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if(fd < 0){
		*missing = (errno == ENOENT);
		snprintf(error, error_len, "cannot open state file %s: %s", path, strerror(errno));
		return NULL;
	}
	struct stat info;
	char *content = NULL;
	if(fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)){
		snprintf(error, error_len, "state file %s is not a regular file", path);
	}else if((content = malloc((size_t)info.st_size + 1)) == NULL){
		snprintf(error, error_len, "state file %s: out of memory", path);
	}else{
		size_t done = 0;
		while(done < (size_t)info.st_size){
			ssize_t got = read(fd, content + done, (size_t)info.st_size - done);
			if(got <= 0){
				snprintf(error, error_len, "cannot read state file %s: %s", path,
						got < 0 ? strerror(errno) : "file shrank while reading");
				free(content);
				content = NULL;
				break;
			}
			done += (size_t)got;
		}
		if(content){
			content[done] = '\0';
			*length = done;
		}
	}
	close(fd);
	return content;
}

bool persist_load(struct persist *persist, struct store *store, char *error, size_t error_len)
{
	size_t length = 0;
	bool missing;
	char *content = read_file(persist->path, &length, &missing, error, error_len);
	if(content == NULL){
		return missing;
	}
	const char *parse_end = NULL;
	/* The length includes the terminating NUL: cJSON looks for it inside
	 * the buffer to prove nothing follows the document. */
	cJSON *document = cJSON_ParseWithLengthOpts(content, length + 1, &parse_end, true);
	if(document == NULL){
		snprintf(error, error_len, "state file %s is not valid JSON (at byte %ld)",
				persist->path, parse_end ? (long)(parse_end - content) : 0L);
		free(content);
		return false;
	}
	char problem[512];
	bool loaded = state_from_json(document, store, problem, sizeof(problem));
	if(!loaded){
		snprintf(error, error_len, "state file %s: %s", persist->path, problem);
	}
	cJSON_Delete(document);
	free(content);
	return loaded;
}

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

static char *render_state(const struct store *store)
{
	cJSON *document = state_to_json(store);
	if(document == NULL){
		return NULL;
	}
	char *text = cJSON_Print(document);
	cJSON_Delete(document);
	return text;
}

bool persist_save(struct persist *persist, const struct store *store, char *error, size_t error_len)
{
	error[0] = '\0';
	char *text = render_state(store);
	if(text == NULL){
		snprintf(error, error_len, "cannot save %s: out of memory", persist->path);
		return false;
	}
	char temp_path[4096];
	snprintf(temp_path, sizeof(temp_path), "%s.tmp.XXXXXX", persist->path);
	const char *step = "create a temporary file";
	bool renamed = false;
	int fd = mkstemp(temp_path);   /* mode 0600 */
	if(fd >= 0){
		step = "write";
		if(write_all(persist, fd, text, strlen(text)) && write_all(persist, fd, "\n", 1)){
			step = "fsync";
			if(persist->io.fsync(fd) == 0){
				step = "rename";
				renamed = persist->io.rename(temp_path, persist->path) == 0;
			}
		}
	}
	int saved = errno;
	if(fd >= 0){
		close(fd);
		if(!renamed) unlink(temp_path);
	}
	free(text);
	if(!renamed){
		snprintf(error, error_len, "cannot save %s: %s failed: %s", persist->path, step, strerror(saved));
		return false;
	}
	/* After the rename the new state is the file and cannot be undone: a
	 * failed folder sync is left in error for the caller to log, and the
	 * save counts as done. */
	if(!sync_folder(persist)){
		snprintf(error, error_len, "saved %s but could not fsync its folder: %s", persist->path, strerror(errno));
	}
	return true;
}
