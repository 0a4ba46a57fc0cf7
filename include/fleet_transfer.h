/*
 * Moving a whole store between a state file and the fleet's PostgreSQL
 * database (docs/postgresql.md, "Moving between the file and the
 * database"): what `mosquitto_ctrl tokens init <postgres>`, `import` and
 * `export` share. Here in include/ because ctrl/ uses it; the plugin does
 * not.
 *
 * An import writes a store as the changes that would have made it, one
 * createRole per role then one createToken per token (journal.h's lines),
 * each through mosquitto_tokens_apply as a broker's change goes, in one
 * transaction: the tables, the change log and what every broker replays
 * agree by construction. It only ever fills an empty store.
 */
#ifndef FLEET_TRANSFER_H
#define FLEET_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "fleet_schema.h"
#include "store.h"

/* Connects (blocking, giving up after timeout_seconds unless the
 * conninfo sets its own connect_timeout) and creates or migrates the
 * schema. conninfo is a libpq URI or keyword/value string. NULL, with a
 * sentence in error, on failure. PQfinish the result. */
PGconn *fleet_transfer_connect(const char *conninfo, int timeout_seconds, char store_id[FLEET_ID_HEX_LEN + 1],
		char *error, size_t error_len);

/* Writes every role, then every token, of store into the database's store
 * as changes 1 to *changes, member naming the writer in the change log.
 * One transaction, holding an exclusive lock on the change log so that no
 * broker commits meanwhile; refused when the database already holds any
 * change, role or token (nothing is changed then). What a createToken line
 * does not carry is left behind: a rotated token's previous secret. */
bool fleet_transfer_import(PGconn *conn, const struct store *store, const char *member, size_t *changes,
		char *error, size_t error_len);

/* Reads the database's whole store into an empty store, from one
 * consistent view, with the number of the last change it holds; waits at
 * most timeout_ms for each answer. */
bool fleet_transfer_export(const char *conninfo, int64_t timeout_ms, struct store *store, int64_t *sequence,
		char store_id[FLEET_ID_HEX_LEN + 1], char *error, size_t error_len);

#endif
