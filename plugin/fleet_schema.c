/*
 * The fleet's PostgreSQL schema and its migrations (include/fleet_schema.h,
 * docs/postgresql.md). Each migration is one SQL text; a database records
 * the version it is at, and every connection that finds it older runs the
 * missing ones in a transaction holding an advisory lock.
 *
 * The tables mirror the state file: a token's row holds the state file's
 * token object (only its hash, never a secret), a role's row the state
 * file's role object, beside the columns constraints need (name unique,
 * role existing). The change log holds every state-changing command's
 * journal line under its sequence number, so that a broker that was away
 * can catch up on exactly what it missed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_schema.h"

/* pg_advisory_xact_lock's key: "mqtttkns" */
#define MIGRATION_LOCK "7310577138339983219"

static const char *const migrations[] = {
	/* 1: the tables, and the two functions brokers call. */
	"CREATE TABLE mosquitto_tokens_fleet ("
	"  id text NOT NULL CHECK (id ~ '^[0-9a-f]{32}$'),"
	"  created_at timestamptz NOT NULL DEFAULT now());"
	"INSERT INTO mosquitto_tokens_fleet (id) VALUES (replace(gen_random_uuid()::text, '-', ''));"
	"CREATE TABLE mosquitto_tokens_roles ("
	"  rolename text PRIMARY KEY,"
	"  role jsonb NOT NULL);"
	"CREATE TABLE mosquitto_tokens_tokens ("
	"  hash text PRIMARY KEY CHECK (hash ~ '^[0-9a-f]{64}$'),"
	"  name text NOT NULL UNIQUE,"
	"  rolename text NOT NULL REFERENCES mosquitto_tokens_roles (rolename),"
	"  token jsonb NOT NULL);"
	"CREATE TABLE mosquitto_tokens_changes ("
	"  seq bigint PRIMARY KEY CHECK (seq > 0),"
	"  change jsonb NOT NULL,"
	"  broker text NOT NULL,"
	"  made_at timestamptz NOT NULL DEFAULT now());"
	"CREATE FUNCTION mosquitto_tokens_behind(what text) RETURNS void LANGUAGE plpgsql AS $$"
	"BEGIN RAISE EXCEPTION '%', what USING ERRCODE = '" FLEET_SQLSTATE_BEHIND "'; END $$;"
	"CREATE FUNCTION mosquitto_tokens_apply(p_seq bigint, p_change jsonb, p_broker text)"
	" RETURNS void LANGUAGE plpgsql AS $$"
	"DECLARE"
	"  head bigint;"
	"  op text := p_change->>'op';"
	"  touched integer;"
	"BEGIN"
	"  SELECT coalesce(max(seq), 0) INTO head FROM mosquitto_tokens_changes;"
	"  IF p_seq <> head + 1 THEN"
	"    PERFORM mosquitto_tokens_behind(format('change %s is not the next one: the store is at change %s', p_seq, head));"
	"  END IF;"
	"  INSERT INTO mosquitto_tokens_changes (seq, change, broker) VALUES (p_seq, p_change, p_broker);"
	"  IF op = 'createToken' THEN"
	"    INSERT INTO mosquitto_tokens_tokens (hash, name, rolename, token) VALUES"
	"      (p_change->'token'->>'hash', p_change->'token'->>'name', p_change->'token'->>'role', p_change->'token');"
	"    touched := 1;"
	"  ELSIF op = 'rotateToken' THEN"
	"    DELETE FROM mosquitto_tokens_tokens WHERE hash = p_change->>'hash';"
	"    GET DIAGNOSTICS touched = ROW_COUNT;"
	"    INSERT INTO mosquitto_tokens_tokens (hash, name, rolename, token) VALUES"
	"      (p_change->'token'->>'hash', p_change->'token'->>'name', p_change->'token'->>'role', p_change->'token');"
	"  ELSIF op = 'revokeToken' THEN"
	"    DELETE FROM mosquitto_tokens_tokens WHERE hash = p_change->>'hash';"
	"    GET DIAGNOSTICS touched = ROW_COUNT;"
	"  ELSIF op = 'noticed' THEN"
	"    UPDATE mosquitto_tokens_tokens SET token = token - 'expiringNotified' - 'expiredNotified'"
	"      || CASE WHEN (p_change->>'expiring')::boolean THEN '{\"expiringNotified\": true}'::jsonb ELSE '{}'::jsonb END"
	"      || CASE WHEN (p_change->>'expired')::boolean THEN '{\"expiredNotified\": true}'::jsonb ELSE '{}'::jsonb END"
	"      WHERE hash = p_change->>'hash';"
	"    GET DIAGNOSTICS touched = ROW_COUNT;"
	"  ELSIF op = 'createRole' THEN"
	"    INSERT INTO mosquitto_tokens_roles (rolename, role) VALUES (p_change->'role'->>'rolename', p_change->'role');"
	"    touched := 1;"
	"  ELSIF op = 'deleteRole' THEN"
	"    DELETE FROM mosquitto_tokens_roles WHERE rolename = p_change->>'rolename';"
	"    GET DIAGNOSTICS touched = ROW_COUNT;"
	"  ELSIF op = 'addRoleACL' THEN"
	"    UPDATE mosquitto_tokens_roles SET role = jsonb_set(role, '{acls}',"
	"      coalesce(role->'acls', '[]'::jsonb) || jsonb_build_array(p_change->'acl'))"
	"      WHERE rolename = p_change->>'rolename';"
	"    GET DIAGNOSTICS touched = ROW_COUNT;"
	"  ELSIF op = 'removeRoleACL' THEN"
	"    UPDATE mosquitto_tokens_roles SET role = jsonb_set(role, '{acls}', coalesce("
	"      (SELECT jsonb_agg(acl ORDER BY position) FROM jsonb_array_elements(role->'acls') WITH ORDINALITY AS e(acl, position)"
	"        WHERE NOT (acl->>'acltype' = p_change->>'acltype' AND acl->>'topic' = p_change->>'topic')), '[]'::jsonb))"
	"      WHERE rolename = p_change->>'rolename';"
	"    GET DIAGNOSTICS touched = ROW_COUNT;"
	"  ELSE"
	"    RAISE EXCEPTION 'unknown change %', op USING ERRCODE = '22023';"
	"  END IF;"
	"  IF touched <> 1 THEN"
	"    PERFORM mosquitto_tokens_behind(format('change %s (%s) found nothing to change', p_seq, op));"
	"  END IF;"
	"  PERFORM pg_notify('" FLEET_CHANNEL "', p_seq::text);"
	"END $$;"
	/* lastUsed: only ever later, whichever broker saw the login. */
	"CREATE FUNCTION mosquitto_tokens_last_used(p_hashes text[], p_times text[])"
	" RETURNS void LANGUAGE sql AS $$"
	"  UPDATE mosquitto_tokens_tokens AS t SET token = jsonb_set(t.token, '{lastUsed}', to_jsonb(u.at))"
	"    FROM unnest(p_hashes, p_times) AS u(hash, at)"
	"    WHERE t.hash = u.hash AND (t.token->>'lastUsed' IS NULL OR t.token->>'lastUsed' < u.at)"
	"$$;",
};

#define MIGRATION_COUNT ((int)(sizeof(migrations) / sizeof(migrations[0])))
_Static_assert(MIGRATION_COUNT == FLEET_SCHEMA_VERSION, "one migration per schema version");

void fleet_error_text(PGconn *conn, const PGresult *result, char *error, size_t error_len)
{
	const char *text = result ? PQresultErrorMessage(result) : NULL;
	if(text == NULL || text[0] == '\0'){
		text = conn ? PQerrorMessage(conn) : "no connection";
	}
	snprintf(error, error_len, "%s", text[0] ? text : "unknown database error");
	for(char *at = error; *at; at++){
		if(*at == '\n' || *at == '\r'){
			*at = (at[1] == '\0') ? '\0' : ' ';
		}
	}
}

/* The statements run through the caller's executor. */
struct executor {
	fleet_exec_fn exec;
	void *context;
	PGconn *conn;
};

static bool run(const struct executor *executor, const char *sql, char *error, size_t error_len)
{
	PGresult *result = executor->exec(executor->context, sql);
	ExecStatusType status = PQresultStatus(result);
	bool ok = result && (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK);
	if(!ok){
		fleet_error_text(executor->conn, result, error, error_len);
	}
	PQclear(result);
	return ok;
}

/* One row of one column, as text; NULL on error (written into error). */
static char *single_value(const struct executor *executor, const char *sql, char *error, size_t error_len)
{
	PGresult *result = executor->exec(executor->context, sql);
	char *value = NULL;
	if(result && PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1 && PQnfields(result) == 1){
		value = strdup(PQgetvalue(result, 0, 0));
		if(value == NULL){
			snprintf(error, error_len, "out of memory");
		}
	}else if(result && PQresultStatus(result) == PGRES_TUPLES_OK){
		snprintf(error, error_len, "%s: not exactly one value", sql);
	}else{
		fleet_error_text(executor->conn, result, error, error_len);
	}
	PQclear(result);
	return value;
}

/* The version the database is at; 0 for a new database, -1 on error. */
static int schema_version(const struct executor *executor, char *error, size_t error_len)
{
	if(!run(executor, "CREATE TABLE IF NOT EXISTS mosquitto_tokens_schema (version integer NOT NULL)", error, error_len)){
		return -1;
	}
	char *value = single_value(executor, "SELECT coalesce(max(version), 0) FROM mosquitto_tokens_schema",
			error, error_len);
	int version = value ? atoi(value) : -1;
	free(value);
	return version;
}

static bool read_fleet_id(const struct executor *executor, char fleet_id[FLEET_ID_HEX_LEN + 1],
		char *error, size_t error_len)
{
	char *value = single_value(executor, "SELECT id FROM mosquitto_tokens_fleet", error, error_len);
	bool ok = value && strlen(value) == FLEET_ID_HEX_LEN;
	if(ok){
		memcpy(fleet_id, value, FLEET_ID_HEX_LEN + 1);
	}else if(value){
		snprintf(error, error_len, "the table mosquitto_tokens_fleet holds no valid id");
	}
	free(value);
	return ok;
}

static bool migrate_locked(const struct executor *executor, char fleet_id[FLEET_ID_HEX_LEN + 1],
		char *error, size_t error_len)
{
	int version = schema_version(executor, error, error_len);
	if(version < 0){
		return false;
	}
	if(version > FLEET_SCHEMA_VERSION){
		snprintf(error, error_len, "the database's schema is version %d, newer than this plugin's %d "
				"(upgrade the plugin)", version, FLEET_SCHEMA_VERSION);
		return false;
	}
	for(int next = version + 1; next <= FLEET_SCHEMA_VERSION; next++){
		char record[96];
		snprintf(record, sizeof(record), "INSERT INTO mosquitto_tokens_schema (version) VALUES (%d)", next);
		char problem[512];
		if(!run(executor, migrations[next - 1], problem, sizeof(problem))
				|| !run(executor, record, problem, sizeof(problem))){
			snprintf(error, error_len, "migrating the schema to version %d: %s", next, problem);
			return false;
		}
	}
	return read_fleet_id(executor, fleet_id, error, error_len);
}

/* A schema at this version needs nothing, not even the right to create
 * a table: a database user with only data rights may run the brokers. */
static bool is_current(const struct executor *executor, char fleet_id[FLEET_ID_HEX_LEN + 1],
		char *error, size_t error_len)
{
	char *exists = single_value(executor, "SELECT to_regclass('mosquitto_tokens_schema') IS NOT NULL", error, error_len);
	bool found = exists && strcmp(exists, "t") == 0;
	free(exists);
	char *version = found ? single_value(executor, "SELECT coalesce(max(version), 0) FROM mosquitto_tokens_schema",
			error, error_len) : NULL;
	bool current = version && atoi(version) == FLEET_SCHEMA_VERSION;
	free(version);
	return current && read_fleet_id(executor, fleet_id, error, error_len);
}

bool fleet_schema_migrate_with(fleet_exec_fn exec, void *context, PGconn *conn,
		char fleet_id[FLEET_ID_HEX_LEN + 1], char *error, size_t error_len)
{
	const struct executor executor = {exec, context, conn};
	if(is_current(&executor, fleet_id, error, error_len)){
		return true;
	}
	if(!run(&executor, "BEGIN", error, error_len)){
		return false;
	}
	bool ok = run(&executor, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")", error, error_len)
		&& migrate_locked(&executor, fleet_id, error, error_len)
		&& run(&executor, "COMMIT", error, error_len);
	if(!ok){
		char ignored[64];
		run(&executor, "ROLLBACK", ignored, sizeof(ignored));
	}
	return ok;
}

static PGresult *exec_waiting(void *context, const char *sql)
{
	return PQexec(context, sql);
}

bool fleet_schema_migrate(PGconn *conn, char fleet_id[FLEET_ID_HEX_LEN + 1], char *error, size_t error_len)
{
	return fleet_schema_migrate_with(exec_waiting, conn, conn, fleet_id, error, error_len);
}
