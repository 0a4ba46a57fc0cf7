/*
 * The state folder's files: safe opening, whole writes, folder syncs and
 * the lock. See plugin/state_folder.h.
 *
 * Every file of the state folder is opened without following a symbolic
 * link and without blocking, and only if it is a regular file: a link
 * planted as the journal must not make the broker write outside the
 * folder, a FIFO must not hang its start.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state_folder.h"

static const struct persist_io system_io = {
	.write = write,
	.fsync = fsync,
	.rename = rename,
	.unlink = unlink,
};

bool state_folder_init(struct state_folder *folder, const char *state_path)
{
	char copy[STATE_PATH_SIZE];
	if(snprintf(copy, sizeof(copy), "%s", state_path) >= (int)sizeof(copy)){
		return false;
	}
	snprintf(folder->path, sizeof(folder->path), "%s", dirname(copy));
	folder->io = system_io;
	return true;
}

void state_folder_set_io(struct state_folder *folder, const struct persist_io *io)
{
	folder->io = io ? *io : system_io;
}

int state_open_regular(const char *path, int flags, mode_t mode, const char *kind, char *error, size_t error_len)
{
	int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
	int saved = errno;
	struct stat info;
	if(fd < 0 && saved == ELOOP){
		snprintf(error, error_len, "%s %s is a symbolic link; the state folder's files must be "
				"regular files (links are not followed)", kind, path);
	}else if(fd < 0 && saved == ENXIO){
		/* Opening a FIFO without a reader for writing. */
		snprintf(error, error_len, "%s %s is not a regular file", kind, path);
	}else if(fd < 0){
		snprintf(error, error_len, "cannot open %s %s: %s", kind, path, strerror(saved));
	}else if(fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)){
		snprintf(error, error_len, "%s %s is not a regular file", kind, path);
		saved = EINVAL;
	}else if(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0){
		saved = errno;
		snprintf(error, error_len, "cannot open %s %s: %s", kind, path, strerror(saved));
	}else{
		return fd;
	}
	if(fd >= 0){
		close(fd);
	}
	errno = saved;
	return -1;
}

bool state_write_all(const struct state_folder *folder, int fd, const char *data, size_t length)
{
	while(length > 0){
		ssize_t written = folder->io.write(fd, data, length);
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

bool state_sync_folder(const struct state_folder *folder)
{
	int fd = open(folder->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if(fd < 0){
		return false;
	}
	bool ok = folder->io.fsync(fd) == 0;
	int saved = errno;
	close(fd);
	errno = saved;
	return ok;
}

int state_lock(const char *lock_path, const char *state_path, char *error, size_t error_len)
{
	int fd = state_open_regular(lock_path, O_RDWR | O_CREAT, 0600, "lock file", error, error_len);
	if(fd < 0){
		return -1;
	}
	if(flock(fd, LOCK_EX | LOCK_NB) != 0){
		int saved = errno;
		close(fd);
		if(saved == EWOULDBLOCK){
			snprintf(error, error_len, "state file %s is already in use by another broker "
					"(%s is locked); two brokers must not share one state file", state_path, lock_path);
		}else{
			snprintf(error, error_len, "cannot lock %s: %s", lock_path, strerror(saved));
		}
		return -1;
	}
	return fd;
}

static void *close_descriptor(void *fd)
{
	close((int)(intptr_t)fd);
	return NULL;
}

void state_close_in_background(int fd)
{
	if(fd < 0){
		return;
	}
	pthread_t thread;
	pthread_attr_t attributes;
	bool started = false;
	if(pthread_attr_init(&attributes) == 0){
		started = pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED) == 0
			&& pthread_create(&thread, &attributes, close_descriptor, (void *)(intptr_t)fd) == 0;
		pthread_attr_destroy(&attributes);
	}
	if(!started){
		close(fd);
	}
}
