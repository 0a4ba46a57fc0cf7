/*
 * Bindings of persistent MQTT sessions (clean session false, or an MQTT 5
 * session expiry) to the token they logged in with, as the state file keeps
 * them: per client id, the SHA-256 hash of the secret (never the secret)
 * and the username the client sent. A table of them is what loading found,
 * or the changes waiting for the next periodic save (docs/state-file.md).
 *
 * Each record is one allocation (the client id and the username live in
 * it), so that a table of a million bindings costs a million allocations,
 * not three million.
 */
#ifndef SESSION_RECORDS_H
#define SESSION_RECORDS_H

#include <stdbool.h>
#include <stddef.h>

/* store.h sets uthash up (HASH_NONFATAL_OOM): it must come first. */
#include "store.h"
#include "token_format.h"

/* The longest client id or username the state file keeps, in bytes (an
 * MQTT string's limit). */
#define SESSION_TEXT_MAX_BYTES 65535

/* A table of persistent sessions' bindings keyed by client id: what loading
 * found, or the changes waiting for the next periodic save. */
struct session_record {
	UT_hash_handle hh;
	bool bound;                           /* false: the binding ended (a change to save) */
	unsigned char hash[TOKEN_HASH_LEN];   /* of the secret the session logged in with; zero when !bound */
	char *username;                       /* NULL: the client sent none */
	char client_id[];
};

struct session_records {
	struct session_record *by_id;
};

void session_records_init(struct session_records *records);
void session_records_clear(struct session_records *records);
/* Insert or replace: the latest word on a client id wins. hash NULL records
 * that the binding ended. False when out of memory (the table is as before). */
bool session_records_put(struct session_records *records, const char *client_id, const char *username,
		const unsigned char *hash);
const struct session_record *session_records_find(const struct session_records *records, const char *client_id);
void session_records_remove(struct session_records *records, const char *client_id);
size_t session_records_count(const struct session_records *records);

/* The bound records sorted by client id (byte order), for a deterministic
 * snapshot; *count says how many. NULL when out of memory; the caller frees
 * the array (not the records). */
const struct session_record **session_records_sorted(const struct session_records *records, size_t *count);

#endif
