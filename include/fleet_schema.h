/*
 * The PostgreSQL schema a fleet of brokers shares (docs/postgresql.md):
 * created and migrated by whoever connects first, the plugin or
 * `mosquitto_ctrl tokens init`, under an advisory lock so that brokers
 * starting together do not race. The tables hold only hashes.
 *
 * Every state-changing command reaches the database as one call of
 * mosquitto_tokens_apply(seq, change, broker): the change is the journal
 * line of journal.h, seq must be the next number of the change log (a
 * broker that is behind is told so with SQLSTATE 40001 and catches up
 * first), and the same transaction updates the tables and notifies
 * FLEET_CHANNEL with the new number.
 */
#ifndef FLEET_SCHEMA_H
#define FLEET_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>

#define FLEET_SCHEMA_VERSION 1
#define FLEET_CHANNEL "mosquitto_tokens"
#define FLEET_ID_HEX_LEN 32
/* SQLSTATE of a change that is not the next one, or whose target was
 * changed meanwhile: catch up, then try again. */
#define FLEET_SQLSTATE_BEHIND "40001"

/* Creates the tables and functions, or brings them up to
 * FLEET_SCHEMA_VERSION, in one transaction; refuses a database whose
 * schema is newer than this build. Fills fleet_id with the store's id. On
 * failure writes a sentence into error. conn must be idle, in blocking
 * mode. */
bool fleet_schema_migrate(PGconn *conn, char fleet_id[FLEET_ID_HEX_LEN + 1], char *error, size_t error_len);
/* The same with each statement run by exec (NULL: no answer; the error is
 * then conn's): a broker bounds its waits, a tool may wait. */
typedef PGresult *(*fleet_exec_fn)(void *context, const char *sql);
bool fleet_schema_migrate_with(fleet_exec_fn exec, void *context, PGconn *conn,
		char fleet_id[FLEET_ID_HEX_LEN + 1], char *error, size_t error_len);

/* The text of the error of a failed result or connection, on one line. */
void fleet_error_text(PGconn *conn, const PGresult *result, char *error, size_t error_len);

#endif
