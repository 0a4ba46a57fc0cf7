/*
 * Persistence: how the store reaches the disk and comes back. The plugin
 * talks to it through three calls (load, save a change durably, close), so
 * that another backend can take the JSON file's place later.
 *
 * The JSON file backend writes the whole state to a temporary file in the
 * same folder, fsyncs it, renames it over the state file and fsyncs the
 * folder: a crash leaves either the old or the new file, never a mix. A
 * lock file beside it (<state_file>.lock) keeps a second broker away.
 */
#ifndef PERSIST_H
#define PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "store.h"

struct persist;

/* The system calls a save makes, replaceable so that tests can fail them. */
struct persist_io {
	ssize_t (*write)(int fd, const void *buffer, size_t count);
	int (*fsync)(int fd);
	int (*rename)(const char *from, const char *to);
};

/* Takes the lock. On failure returns NULL and a sentence in error. */
struct persist *persist_open(const char *path, char *error, size_t error_len);
void persist_close(struct persist *persist);
/* Also deletes the lock file (while still holding the lock). For tools
 * that run as another user than the broker, such as `mosquitto_ctrl
 * tokens init` as root: a lock file they leave behind would be one the
 * broker's user cannot open. */
void persist_close_removing_lock(struct persist *persist);

/* Reads the state into an empty store; a missing file is an empty store. */
bool persist_load(struct persist *persist, struct store *store, char *error, size_t error_len);

/* Makes the store's current state durable. On failure the file on disk is
 * unchanged, and the caller must undo its change in memory. */
bool persist_save(struct persist *persist, const struct store *store, char *error, size_t error_len);

void persist_set_io(struct persist *persist, const struct persist_io *io);

#endif
