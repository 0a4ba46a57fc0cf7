/*
 * What the libFuzzer harnesses share: a scratch folder on tmpfs (so that
 * fsync costs nothing and the disk is never worn), file helpers, and the
 * oracle that two stores hold the same state. A broken expectation aborts,
 * which libFuzzer reports as a crash with the input that caused it.
 */
#ifndef FUZZ_SUPPORT_H
#define FUZZ_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "persist.h"
#include "store.h"
#include "instance.h"

/* A new empty folder, under /dev/shm when there is one; lives until exit. */
const char *fuzz_scratch_dir(void);
/* The state file and its journal, in the scratch folder. */
const char *fuzz_state_path(void);
const char *fuzz_journal_path(void);
void fuzz_write_file(const char *path, const void *bytes, size_t length);
/* Removes the file if it exists. */
void fuzz_remove(const char *path);
/* The file's bytes (malloc'd) and length; NULL when it does not exist. */
unsigned char *fuzz_read_file(const char *path, size_t *length);

/* Aborts, printing the formatted sentence. */
void fuzz_fail(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Aborts unless both stores hold the same roles and tokens (as the state
 * file would write them). */
void fuzz_assert_same_state(const struct store *expected, const struct store *actual, const char *when);
/* Aborts unless the instance's invariants hold (invariants.h). */
void fuzz_assert_invariants(const struct tokens_plugin *plugin, const char *when);
/* Aborts unless every hash that either store knows, as a token's secret
 * or a previous one, logs in the same way with both (login.h). */
void fuzz_assert_same_logins(const struct store *expected, const struct store *actual, int64_t now, const char *when);

/* The plugin's logger and clock for harnesses: silent, and always
 * 2026-11-28T10:00:00Z. */
void fuzz_log(int level, const char *format, ...);
int64_t fuzz_clock(void);

/* Persist I/O whose every call of one kind fails. */
extern const struct persist_io fuzz_io_write_fails;   /* ENOSPC */
extern const struct persist_io fuzz_io_fsync_fails;   /* EIO */
extern const struct persist_io fuzz_io_rename_fails;  /* EACCES */
extern const struct persist_io fuzz_io_unlink_fails;  /* EIO */

#endif
