/*
 * Reading a snapshot (the state file) into an empty store.
 *
 * The snapshot writer puts one role or token per line. For that layout the
 * reader maps the file, parses the token lines on two threads (parsing only
 * reads the roles) and then adds the tokens, in file order, on one: a
 * million tokens load in about two seconds. Any other valid JSON document
 * (a file edited by hand) is read as a whole, more slowly. Either way the
 * file is checked strictly and never written.
 */
#ifndef SNAPSHOT_READER_H
#define SNAPSHOT_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Fills an empty store. A missing file is an empty store (true, *missing
 * set). On failure, writes a sentence naming the file and the problem,
 * leaves the store empty and returns false. */
bool snapshot_read(const char *path, struct store *store, int64_t *journal_sequence,
		char *error, size_t error_len);

#endif
