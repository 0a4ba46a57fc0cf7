/*
 * The state folder's files (the snapshot, its journal, the lock): what
 * the snapshot writer and the journal file both need to open, write and
 * make durable a file there, and the lock that keeps a second broker away.
 *
 * Every write goes through the persist_io system calls (persist.h), so
 * that tests can fail any of them.
 */
#ifndef STATE_FOLDER_H
#define STATE_FOLDER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "persist.h"

#define STATE_PATH_SIZE 4096

struct state_folder {
	char path[STATE_PATH_SIZE];
	struct persist_io io;
};

/* The folder of the state file at state_path; false when the path is too
 * long. The system calls are the real ones until persist_set_io. */
bool state_folder_init(struct state_folder *folder, const char *state_path);
void state_folder_set_io(struct state_folder *folder, const struct persist_io *io);

/* Opens one of the state folder's files the one safe way: never through a
 * symbolic link (O_NOFOLLOW), never waiting on a FIFO or device
 * (O_NONBLOCK, cleared again once open), and only if it is a regular file;
 * O_CLOEXEC is added to flags too. kind names the file in the sentence
 * written to error ("state file", "journal", "lock file"). Returns the
 * descriptor, or -1 with errno set (ENOENT: it does not exist). */
int state_open_regular(const char *path, int flags, mode_t mode, const char *kind, char *error, size_t error_len);

/* Writes all of data, through short writes and EINTR; false with errno. */
bool state_write_all(const struct state_folder *folder, int fd, const char *data, size_t length);
/* Makes the folder's entries (a new name, a rename, a removal) durable. */
bool state_sync_folder(const struct state_folder *folder);

/* Closes fd (-1: nothing) on a short-lived thread of its own: the last
 * close of a replaced snapshot frees its blocks, which takes milliseconds
 * for a large one. Closed at once if no thread can be started. */
void state_close_in_background(int fd);

/* Takes the lock file lock_path for the state file state_path (named in
 * the sentence when another broker holds it). Returns its descriptor, the
 * lock held until it is closed, or -1 with a sentence in error. */
int state_lock(const char *lock_path, const char *state_path, char *error, size_t error_len);

#endif
