/*
 * A whole store into or out of the fleet's database (fleet_transfer.h).
 * The import is a broker's commit repeated: each role and token becomes
 * the journal line of the change that creates it (changes.h, journal.h),
 * applied by mosquitto_tokens_apply, so nothing here knows the tables'
 * layout. The export is fleet_load_store, the plugin's own full load.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changes.h"
#include "fleet.h"
#include "fleet_transfer.h"
#include "journal.h"

/* The server's notices ("relation already exists, skipping") are not the
 * operator's business. */
static void ignore_notice(void *context, const char *message)
{
	(void)context;
	(void)message;
}

PGconn *fleet_transfer_connect(const char *conninfo, int timeout_seconds, char store_id[FLEET_ID_HEX_LEN + 1],
		char *error, size_t error_len)
{
	if(!fleet_conninfo_is_valid(conninfo)){
		/* libpq's own message would quote the string, a password with it. */
		snprintf(error, error_len, "the connection string is not one libpq can read (see \"Connection Strings\" "
				"in PostgreSQL's libpq documentation)");
		return NULL;
	}
	char timeout[16];
	snprintf(timeout, sizeof(timeout), "%d", timeout_seconds);
	/* Keywords are read in order, the last value winning: the conninfo
	 * (expanded from dbname) comes second so that its own
	 * connect_timeout, if it has one, is the one used. */
	const char *const keywords[] = {"connect_timeout", "dbname", NULL};
	const char *const values[] = {timeout, conninfo, NULL};
	PGconn *conn = PQconnectdbParams(keywords, values, 1);
	char problem[768];
	if(conn == NULL || PQstatus(conn) != CONNECTION_OK){
		fleet_error_text(conn, NULL, problem, sizeof(problem));
		snprintf(error, error_len, "cannot connect to the database: %s", conn ? problem : "out of memory");
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, ignore_notice, NULL);
	if(!fleet_schema_migrate(conn, store_id, problem, sizeof(problem))){
		snprintf(error, error_len, "the database's schema: %s", problem);
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static bool run(PGconn *conn, const char *sql, char *error, size_t error_len)
{
	PGresult *result = PQexec(conn, sql);
	ExecStatusType status = PQresultStatus(result);
	bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
	if(!ok){
		fleet_error_text(conn, result, error, error_len);
	}
	PQclear(result);
	return ok;
}

/* Read under the lock, so that no broker's change can come between the
 * check and the import. */
static bool store_is_empty(PGconn *conn, char *error, size_t error_len)
{
	PGresult *result = PQexec(conn, "SELECT (SELECT count(*) FROM mosquitto_tokens_changes), "
			"(SELECT count(*) FROM mosquitto_tokens_roles), (SELECT count(*) FROM mosquitto_tokens_tokens)");
	if(PQresultStatus(result) != PGRES_TUPLES_OK || PQntuples(result) != 1){
		fleet_error_text(conn, result, error, error_len);
		PQclear(result);
		return false;
	}
	const char *changes = PQgetvalue(result, 0, 0), *roles = PQgetvalue(result, 0, 1), *tokens = PQgetvalue(result, 0, 2);
	bool empty = strcmp(changes, "0") == 0 && strcmp(roles, "0") == 0 && strcmp(tokens, "0") == 0;
	if(!empty){
		snprintf(error, error_len, "the database's store is not empty (%s changes, %s roles, %s tokens): only an "
				"empty store is filled, so nothing was changed", changes, roles, tokens);
	}
	PQclear(result);
	return empty;
}

/* Commits the change as the next number, as fleet_commit does. */
static bool apply(PGconn *conn, int64_t *sequence, const struct change *change, const char *member,
		char *error, size_t error_len)
{
	cJSON *line = journal_encode(change);
	char *text = line ? cJSON_PrintUnformatted(line) : NULL;
	cJSON_Delete(line);
	if(text == NULL){
		snprintf(error, error_len, "out of memory");
		return false;
	}
	char number[24];
	snprintf(number, sizeof(number), "%" PRId64, *sequence + 1);
	const char *values[] = {number, text, member};
	PGresult *result = PQexecParams(conn, "SELECT mosquitto_tokens_apply($1::bigint, $2::jsonb, $3)", 3, NULL,
			values, NULL, NULL, 0);
	free(text);
	bool ok = PQresultStatus(result) == PGRES_TUPLES_OK;
	if(ok){
		(*sequence)++;
	}else{
		char problem[512];
		fleet_error_text(conn, result, problem, sizeof(problem));
		snprintf(error, error_len, "change %s: %s", number, problem);
	}
	PQclear(result);
	return ok;
}

/* The changes below borrow the store's roles and tokens: they are only
 * encoded, never prepared or released, so the store keeps them. */
static bool apply_roles(PGconn *conn, const struct store *store, const char *member, int64_t *sequence,
		char *error, size_t error_len)
{
	size_t count;
	struct role **roles = store_sorted_roles(store, &count);
	bool ok = roles != NULL;
	if(!ok){
		snprintf(error, error_len, "out of memory");
	}
	for(size_t i = 0; ok && i < count; i++){
		struct change change = change_create_role(roles[i]);
		ok = apply(conn, sequence, &change, member, error, error_len);
	}
	free(roles);
	return ok;
}

/* In the order they were issued, so that the log reads as a history. */
static bool apply_tokens(PGconn *conn, const struct store *store, const char *member, int64_t *sequence,
		char *error, size_t error_len)
{
	size_t count;
	struct token **tokens = store_sorted_tokens(store, &count);
	bool ok = tokens != NULL;
	if(!ok){
		snprintf(error, error_len, "out of memory");
	}
	for(size_t i = 0; ok && i < count; i++){
		struct change change = change_create_token(tokens[i]);
		ok = apply(conn, sequence, &change, member, error, error_len);
	}
	free(tokens);
	return ok;
}

bool fleet_transfer_import(PGconn *conn, const struct store *store, const char *member, size_t *changes,
		char *error, size_t error_len)
{
	*changes = 0;
	if(!run(conn, "BEGIN", error, error_len)){
		return false;
	}
	/* EXCLUSIVE conflicts with the row lock every mosquitto_tokens_apply
	 * takes to insert into the log: brokers wait until the commit. */
	int64_t sequence = 0;
	bool ok = run(conn, "LOCK TABLE mosquitto_tokens_changes IN EXCLUSIVE MODE", error, error_len)
		&& store_is_empty(conn, error, error_len)
		&& apply_roles(conn, store, member, &sequence, error, error_len)
		&& apply_tokens(conn, store, member, &sequence, error, error_len)
		&& run(conn, "COMMIT", error, error_len);
	if(!ok){
		char ignored[256];
		run(conn, "ROLLBACK", ignored, sizeof(ignored));
		return false;
	}
	*changes = (size_t)sequence;
	return true;
}

bool fleet_transfer_export(const char *conninfo, int64_t timeout_ms, struct store *store, int64_t *sequence,
		char store_id[FLEET_ID_HEX_LEN + 1], char *error, size_t error_len)
{
	struct fleet *fleet = fleet_new(conninfo, "mosquitto_ctrl", timeout_ms);
	if(fleet == NULL){
		snprintf(error, error_len, "out of memory");
		return false;
	}
	char problem[768];
	bool connected = fleet_connect_now(fleet, problem, sizeof(problem));
	if(!connected){
		snprintf(error, error_len, "cannot connect to the database: %s", problem);
	}
	bool ok = connected && fleet_load_store(fleet, store, sequence, error, error_len);
	if(ok){
		snprintf(store_id, FLEET_ID_HEX_LEN + 1, "%s", fleet_id(fleet));
	}
	fleet_free(fleet);
	return ok;
}
