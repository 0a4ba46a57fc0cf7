/*
 * The PostgreSQL link of a fleet member (fleet.h): one non-blocking libpq
 * connection, its reconnection with backoff, and the few queries the
 * plugin makes. The SQL the queries call is fleet_schema.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet.h"
#include "rfc3339.h"
#include "state_format.h"

#define LOAD_BATCH "10000"        /* rows per FETCH while loading */
#define LAST_USED_BATCH 10000     /* lastUsed times per query */

enum link_state { LINK_DOWN, LINK_CONNECTING, LINK_IDLE, LINK_BUSY };
enum busy_with { BUSY_LISTEN, BUSY_FETCH, BUSY_LAST_USED };

/* A lastUsed time waiting for the database, the latest per token. */
struct pending_use {
	char hash[TOKEN_HASH_HEX_LEN + 1];
	char at[RFC3339_LEN + 1];
	UT_hash_handle hh;
};

struct fleet {
	char *conninfo;
	char *member;
	int64_t timeout_ms;
	PGconn *conn;
	enum link_state state;
	enum busy_with busy;
	bool announced_up;            /* link_up was reported for this connection */
	bool down_reported;           /* link_down was reported since the last up */
	char down_reason[512];
	int64_t retry_at_ms;
	int64_t connect_deadline_ms;  /* a connection on its way is given up then */
	int64_t backoff_ms;
	int64_t fetched_at_ms;
	bool fetch_wanted;
	int64_t fetch_after;          /* what the fetch on its way asked for */
	int64_t busy_deadline_ms;     /* the tick's query on its way must be answered by then */
	struct fleet_events events;
	bool has_events;
	char id[FLEET_ID_HEX_LEN + 1];
	struct pending_use *pending_uses;
	struct pending_use **sent_uses;   /* on their way, freed when answered */
	size_t sent_count;
};

static int64_t monotonic_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

bool fleet_conninfo_is_valid(const char *conninfo)
{
	char *message = NULL;
	PQconninfoOption *options = PQconninfoParse(conninfo, &message);
	PQconninfoFree(options);
	PQfreemem(message);
	return options != NULL;
}

void fleet_set_events(struct fleet *fleet, const struct fleet_events *events)
{
	fleet->events = *events;
	fleet->has_events = true;
}

struct fleet *fleet_new(const char *conninfo, const char *member, int64_t timeout_ms)
{
	struct fleet *fleet = calloc(1, sizeof(*fleet));
	if(fleet == NULL){
		return NULL;
	}
	fleet->conninfo = strdup(conninfo);
	fleet->member = strdup(member);
	if(fleet->conninfo == NULL || fleet->member == NULL){
		fleet_free(fleet);
		return NULL;
	}
	fleet->timeout_ms = timeout_ms;
	fleet->backoff_ms = FLEET_BACKOFF_FIRST_MS;
	snprintf(fleet->down_reason, sizeof(fleet->down_reason), "not connected yet");
	return fleet;
}

static void free_uses(struct pending_use **uses, size_t count)
{
	for(size_t i = 0; i < count; i++){
		free(uses[i]);
	}
	free(uses);
}

static void drop_sent_uses(struct fleet *fleet)
{
	free_uses(fleet->sent_uses, fleet->sent_count);
	fleet->sent_uses = NULL;
	fleet->sent_count = 0;
}

void fleet_free(struct fleet *fleet)
{
	if(fleet == NULL){
		return;
	}
	if(fleet->conn){
		PQfinish(fleet->conn);
	}
	struct pending_use *use, *next;
	HASH_ITER(hh, fleet->pending_uses, use, next){
		HASH_DEL(fleet->pending_uses, use);
		free(use);
	}
	drop_sent_uses(fleet);
	free(fleet->conninfo);
	free(fleet->member);
	free(fleet);
}

bool fleet_is_up(const struct fleet *fleet)
{
	return fleet->state == LINK_IDLE || fleet->state == LINK_BUSY;
}

const char *fleet_id(const struct fleet *fleet)
{
	return fleet->id;
}

/* ---- losing and making the connection ---- */

/* Times sent but not confirmed go back to wait: a later time of the same
 * token, queued meanwhile, wins. */
static void requeue_sent_uses(struct fleet *fleet)
{
	for(size_t i = 0; i < fleet->sent_count; i++){
		struct pending_use *use = fleet->sent_uses[i], *queued = NULL;
		HASH_FIND_STR(fleet->pending_uses, use->hash, queued);
		if(queued != NULL){
			continue;   /* freed with the array below */
		}
		memset(&use->hh, 0, sizeof(use->hh));
		HASH_ADD_STR(fleet->pending_uses, hash, use);
		if(use->hh.tbl != NULL){   /* out of memory: store.h */
			fleet->sent_uses[i] = NULL;
		}
	}
	drop_sent_uses(fleet);
}

/* reason may be the connection's own message: copied before it is freed. */
static void link_lost(struct fleet *fleet, const char *reason)
{
	if(reason != fleet->down_reason){
		snprintf(fleet->down_reason, sizeof(fleet->down_reason), "%s", reason);
	}
	if(fleet->conn){
		PQfinish(fleet->conn);
		fleet->conn = NULL;
	}
	requeue_sent_uses(fleet);
	fleet->state = LINK_DOWN;
	fleet->announced_up = false;
	fleet->retry_at_ms = monotonic_ms() + fleet->backoff_ms;
	fleet->backoff_ms = fleet->backoff_ms * 2 > FLEET_BACKOFF_MAX_MS ? FLEET_BACKOFF_MAX_MS : fleet->backoff_ms * 2;
	for(char *at = fleet->down_reason; *at; at++){
		if(*at == '\n' || *at == '\r'){
			*at = at[1] ? ' ' : '\0';
		}
	}
}

/* Waits until the socket is ready for what libpq asked, at most until
 * deadline; false on timeout or error. */
static bool wait_socket(PGconn *conn, bool for_write, int64_t deadline_ms)
{
	struct pollfd entry = {.fd = PQsocket(conn), .events = for_write ? POLLOUT : POLLIN};
	for(;;){
		int64_t left = deadline_ms - monotonic_ms();
		if(left <= 0 || entry.fd < 0){
			return false;
		}
		int ready = poll(&entry, 1, (int)left);
		if(ready > 0){
			return true;
		}
		if(ready < 0 && errno != EINTR){
			return false;
		}
	}
}

/* Sends what libpq holds and waits for the last result of the query on
 * its way (NULL, and the link lost, on timeout or a broken connection). */
static PGresult *wait_result(struct fleet *fleet, int64_t deadline_ms)
{
	PGresult *last = NULL;
	for(;;){
		int flushed = PQflush(fleet->conn);
		if(flushed < 0){
			break;
		}
		if(flushed == 0 && !PQisBusy(fleet->conn)){
			PGresult *result = PQgetResult(fleet->conn);
			if(result == NULL){
				return last;
			}
			/* The first error is the one that tells. */
			if(last && PQresultStatus(last) == PGRES_FATAL_ERROR){
				PQclear(result);
			}else{
				PQclear(last);
				last = result;
			}
			continue;
		}
		if(!wait_socket(fleet->conn, flushed == 1, deadline_ms) || !PQconsumeInput(fleet->conn)){
			break;
		}
	}
	PQclear(last);
	char reason[512];
	snprintf(reason, sizeof(reason), "%s", PQstatus(fleet->conn) == CONNECTION_BAD
			? PQerrorMessage(fleet->conn) : "no answer from the database in time");
	link_lost(fleet, reason);
	return NULL;
}

static void finish_busy(struct fleet *fleet, PGresult *result);

/* The query on its way from the tick, if any, is answered. What a fetch
 * brought is dropped, not applied: the caller may hold a prepared change
 * (changes.h) that another member's change must not cross. It comes
 * again: a commit that finds itself behind catches up, and so does every
 * control request first. */
static bool settle(struct fleet *fleet, int64_t deadline_ms)
{
	if(fleet->state != LINK_BUSY){
		return fleet->state == LINK_IDLE;
	}
	PGresult *result = wait_result(fleet, deadline_ms);
	if(fleet->state == LINK_DOWN){
		return false;
	}
	fleet->state = LINK_IDLE;
	if(fleet->busy == BUSY_FETCH){
		fleet->fetch_wanted = true;
	}else{
		finish_busy(fleet, result);
	}
	PQclear(result);
	return true;
}

/* One query and its answer, waiting at most the timeout. *sent (may be
 * NULL) says whether it reached libpq: an answer missing after that
 * leaves its outcome unknown. */
static PGresult *query_sending(struct fleet *fleet, const char *sql, int count, const char *const *values,
		bool *sent_out, char *error, size_t error_len)
{
	if(sent_out){
		*sent_out = false;
	}
	int64_t deadline = monotonic_ms() + fleet->timeout_ms;
	if(!settle(fleet, deadline)){
		snprintf(error, error_len, "the database is not reachable (%s)", fleet->down_reason);
		return NULL;
	}
	/* Without parameters, the simple protocol: a migration is several
	 * statements in one text. */
	int sent = count == 0 ? PQsendQuery(fleet->conn, sql)
		: PQsendQueryParams(fleet->conn, sql, count, NULL, values, NULL, NULL, 0);
	if(!sent){
		link_lost(fleet, PQerrorMessage(fleet->conn));
		snprintf(error, error_len, "the database is not reachable (%s)", fleet->down_reason);
		return NULL;
	}
	if(sent_out){
		*sent_out = true;
	}
	PGresult *result = wait_result(fleet, deadline);
	if(result == NULL){
		snprintf(error, error_len, "the database did not answer (%s)", fleet->down_reason);
	}
	return result;
}

static PGresult *query_now(struct fleet *fleet, const char *sql, int count, const char *const *values,
		char *error, size_t error_len)
{
	return query_sending(fleet, sql, count, values, NULL, error, error_len);
}

static bool query_ok(struct fleet *fleet, PGresult *result, char *error, size_t error_len)
{
	ExecStatusType status = PQresultStatus(result);
	if(result && (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)){
		return true;
	}
	if(result){
		fleet_error_text(fleet->conn, result, error, error_len);
	}
	return false;
}

static bool run_now(struct fleet *fleet, const char *sql, char *error, size_t error_len)
{
	PGresult *result = query_now(fleet, sql, 0, NULL, error, error_len);
	bool ok = query_ok(fleet, result, error, error_len);
	PQclear(result);
	return ok;
}

/* The server's notices ("relation already exists, skipping") would go to
 * the broker's stderr, unasked. */
static void ignore_notice(void *context, const char *message)
{
	(void)context;
	(void)message;
}

static PGresult *exec_bounded(void *context, const char *sql)
{
	char ignored[512];
	return query_now(context, sql, 0, NULL, ignored, sizeof(ignored));
}

/* A new connection is ready: the schema is brought up to date and the
 * channel listened to, each statement waited for at most the timeout (a
 * database that accepts and then hangs must not hold the broker). */
static bool start_using(struct fleet *fleet, char *error, size_t error_len)
{
	PQsetNoticeProcessor(fleet->conn, ignore_notice, NULL);
	if(PQsetnonblocking(fleet->conn, 1) != 0){
		fleet_error_text(fleet->conn, NULL, error, error_len);
		return false;
	}
	fleet->state = LINK_IDLE;
	PGconn *conn = fleet->conn;
	if(!fleet_schema_migrate_with(exec_bounded, fleet, conn, fleet->id, error, error_len)){
		if(fleet->state == LINK_DOWN){
			snprintf(error, error_len, "%s", fleet->down_reason);
		}
		return false;
	}
	if(!run_now(fleet, "LISTEN " FLEET_CHANNEL, error, error_len)){
		return false;
	}
	fleet->backoff_ms = FLEET_BACKOFF_FIRST_MS;
	fleet->fetch_wanted = true;
	return true;
}

bool fleet_connect_now(struct fleet *fleet, char *error, size_t error_len)
{
	error[0] = '\0';
	if(fleet_is_up(fleet)){
		return true;
	}
	if(fleet->conn){
		PQfinish(fleet->conn);
	}
	int64_t deadline = monotonic_ms() + fleet->timeout_ms;
	fleet->conn = PQconnectStart(fleet->conninfo);
	PostgresPollingStatusType polling = PGRES_POLLING_WRITING;
	while(fleet->conn && PQstatus(fleet->conn) != CONNECTION_BAD
			&& polling != PGRES_POLLING_OK && polling != PGRES_POLLING_FAILED){
		if(!wait_socket(fleet->conn, polling == PGRES_POLLING_WRITING, deadline)){
			snprintf(error, error_len, "no connection within %" PRId64 " ms", fleet->timeout_ms);
			break;
		}
		polling = PQconnectPoll(fleet->conn);
	}
	if(error[0] == '\0' && (fleet->conn == NULL || polling != PGRES_POLLING_OK)){
		fleet_error_text(fleet->conn, NULL, error, error_len);
	}
	if(error[0] != '\0' || !start_using(fleet, error, error_len)){
		link_lost(fleet, error);
		return false;
	}
	return true;
}

/* From the tick: one step of a connection on its way. */
static void connect_step(struct fleet *fleet, int64_t now_ms)
{
	if(fleet->state == LINK_DOWN){
		if(now_ms < fleet->retry_at_ms){
			return;
		}
		fleet->conn = PQconnectStart(fleet->conninfo);
		if(fleet->conn == NULL || PQstatus(fleet->conn) == CONNECTION_BAD){
			link_lost(fleet, fleet->conn ? PQerrorMessage(fleet->conn) : "out of memory");
			return;
		}
		fleet->state = LINK_CONNECTING;
		fleet->connect_deadline_ms = now_ms + fleet->timeout_ms;
	}
	if(now_ms >= fleet->connect_deadline_ms){
		char reason[96];
		snprintf(reason, sizeof(reason), "no connection within %" PRId64 " ms", fleet->timeout_ms);
		link_lost(fleet, reason);
		return;
	}
	struct pollfd entry = {.fd = PQsocket(fleet->conn), .events = POLLIN | POLLOUT};
	if(entry.fd >= 0 && poll(&entry, 1, 0) == 0){
		return;
	}
	char error[512] = "";
	switch(PQconnectPoll(fleet->conn)){
	case PGRES_POLLING_OK:
		if(!start_using(fleet, error, sizeof(error))){
			link_lost(fleet, error);
		}
		return;
	case PGRES_POLLING_FAILED:
		link_lost(fleet, PQerrorMessage(fleet->conn));
		return;
	default:
		return;
	}
}

/* ---- loading ---- */

/* Rows of a cursor, in batches, each handed to load_row. */
static bool load_rows(struct fleet *fleet, struct state_loader *loader, const char *declare, bool roles,
		char *error, size_t error_len)
{
	if(!run_now(fleet, declare, error, error_len)){
		return false;
	}
	int index = 0;
	for(;;){
		PGresult *result = query_now(fleet, "FETCH " LOAD_BATCH " FROM load_cursor", 0, NULL, error, error_len);
		if(!query_ok(fleet, result, error, error_len)){
			PQclear(result);
			return false;
		}
		int rows = PQntuples(result);
		for(int row = 0; row < rows; row++, index++){
			cJSON *item = cJSON_Parse(PQgetvalue(result, row, 0));
			bool loaded = item && (roles ? state_load_role(loader, item, index) : state_load_token(loader, item, index));
			cJSON_Delete(item);
			if(!loaded){
				snprintf(error, error_len, "the database's %s %d does not load: %s", roles ? "role" : "token",
						index, item ? loader->problem : "not JSON, or out of memory");
				PQclear(result);
				return false;
			}
		}
		PQclear(result);
		if(rows == 0){
			return run_now(fleet, "CLOSE load_cursor", error, error_len);
		}
	}
}

static bool read_head(struct fleet *fleet, int64_t *sequence, char *error, size_t error_len)
{
	PGresult *result = query_now(fleet, "SELECT coalesce(max(seq), 0) FROM mosquitto_tokens_changes", 0, NULL,
			error, error_len);
	bool ok = query_ok(fleet, result, error, error_len) && PQntuples(result) == 1;
	if(ok){
		*sequence = strtoll(PQgetvalue(result, 0, 0), NULL, 10);
	}
	PQclear(result);
	return ok;
}

bool fleet_load_store(struct fleet *fleet, struct store *store, int64_t *sequence, char *error, size_t error_len)
{
	char problem[1024];
	struct state_loader loader;
	state_loader_init(&loader, store, problem, sizeof(problem));
	if(!run_now(fleet, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", error, error_len)){
		return false;
	}
	bool ok = read_head(fleet, sequence, error, error_len)
		&& load_rows(fleet, &loader, "DECLARE load_cursor NO SCROLL CURSOR FOR "
				"SELECT role::text FROM mosquitto_tokens_roles ORDER BY rolename COLLATE \"C\"", true, error, error_len)
		&& load_rows(fleet, &loader, "DECLARE load_cursor NO SCROLL CURSOR FOR "
				"SELECT token::text FROM mosquitto_tokens_tokens ORDER BY name COLLATE \"C\"", false, error, error_len);
	if(ok && !state_order_tokens(&loader)){
		snprintf(error, error_len, "the database's tokens do not load: %s", problem);
		ok = false;
	}
	char ignored[256];
	if(!run_now(fleet, ok ? "COMMIT" : "ROLLBACK", ok ? error : ignored, ok ? error_len : sizeof(ignored))){
		ok = false;
	}
	if(!ok){
		store_clear(store);
	}
	return ok;
}

bool fleet_log_bounds(struct fleet *fleet, int64_t *first, int64_t *last, char *error, size_t error_len)
{
	PGresult *result = query_now(fleet, "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0) "
			"FROM mosquitto_tokens_changes", 0, NULL, error, error_len);
	bool ok = query_ok(fleet, result, error, error_len) && PQntuples(result) == 1;
	if(ok){
		*first = strtoll(PQgetvalue(result, 0, 0), NULL, 10);
		*last = strtoll(PQgetvalue(result, 0, 1), NULL, 10);
	}
	PQclear(result);
	return ok;
}

/* ---- committing ---- */

/* Another member's change took the number: the function's own refusal,
 * or two commits of one number at once (the second finds the first's row
 * once it commits). A clash on a token's name or hash would mean a store
 * that differs from the database's: a failure, not a race to retry. */
static bool is_behind(const PGresult *result)
{
	const char *state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
	const char *constraint = PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME);
	return state && (strcmp(state, FLEET_SQLSTATE_BEHIND) == 0
		|| (strcmp(state, "23505") == 0 && constraint && strcmp(constraint, "mosquitto_tokens_changes_pkey") == 0));
}

enum fleet_commit fleet_commit(struct fleet *fleet, int64_t sequence, const cJSON *change,
		char *error, size_t error_len)
{
	char number[24];
	snprintf(number, sizeof(number), "%" PRId64, sequence);
	char *text = cJSON_PrintUnformatted(change);
	if(text == NULL){
		snprintf(error, error_len, "out of memory");
		return FLEET_FAILED;
	}
	const char *values[] = {number, text, fleet->member};
	bool sent;
	PGresult *result = query_sending(fleet, "SELECT mosquitto_tokens_apply($1::bigint, $2::jsonb, $3)", 3, values,
			&sent, error, error_len);
	free(text);
	if(query_ok(fleet, result, error, error_len)){
		PQclear(result);
		return FLEET_COMMITTED;
	}
	if(result == NULL){
		return sent ? FLEET_UNKNOWN : FLEET_FAILED;
	}
	bool behind = is_behind(result);
	PQclear(result);
	return behind ? FLEET_BEHIND : FLEET_FAILED;
}

/* ---- fetching changes ---- */

#define FETCH_SQL "SELECT seq, change::text FROM mosquitto_tokens_changes WHERE seq > $1::bigint " \
	"ORDER BY seq LIMIT " "1000"
_Static_assert(FLEET_FETCH_BATCH == 1000, "FETCH_SQL's limit");

/* Hands each row to change; returns how many were applied, -1 when one
 * was refused. */
static int apply_rows(PGresult *result, fleet_change_fn change, void *context)
{
	int rows = PQntuples(result);
	for(int row = 0; row < rows; row++){
		int64_t sequence = strtoll(PQgetvalue(result, row, 0), NULL, 10);
		cJSON *item = cJSON_Parse(PQgetvalue(result, row, 1));
		bool applied = item && change(context, sequence, item);
		cJSON_Delete(item);
		if(!applied){
			return -1;
		}
	}
	return rows;
}

bool fleet_fetch_now(struct fleet *fleet, int64_t after, size_t batches, fleet_change_fn change, void *context,
		char *error, size_t error_len)
{
	for(size_t batch = 1;; batch++){
		char number[24];
		snprintf(number, sizeof(number), "%" PRId64, after);
		const char *values[] = {number};
		PGresult *result = query_now(fleet, FETCH_SQL, 1, values, error, error_len);
		if(!query_ok(fleet, result, error, error_len)){
			PQclear(result);
			return false;
		}
		int rows = PQntuples(result);
		if(rows > 0){
			after = strtoll(PQgetvalue(result, rows - 1, 0), NULL, 10);
		}
		int applied = apply_rows(result, change, context);
		PQclear(result);
		if(applied < 0){
			snprintf(error, error_len, "a change from the database could not be applied");
			return false;
		}
		if(rows < FLEET_FETCH_BATCH || batch == batches){
			if(rows == FLEET_FETCH_BATCH){
				fleet->fetch_wanted = true;   /* the tick goes on */
			}
			return true;
		}
	}
}

/* ---- lastUsed ---- */

static bool queue_use(struct fleet *fleet, const char *hash, const char *at)
{
	struct pending_use *use = NULL;
	HASH_FIND_STR(fleet->pending_uses, hash, use);
	if(use){
		if(strcmp(at, use->at) > 0){
			snprintf(use->at, sizeof(use->at), "%s", at);
		}
		return true;
	}
	if(strlen(hash) != TOKEN_HASH_HEX_LEN || strlen(at) != RFC3339_LEN){
		return true;   /* not a time the database could compare: never sent */
	}
	use = calloc(1, sizeof(*use));
	if(use == NULL){
		return false;
	}
	memcpy(use->hash, hash, sizeof(use->hash));
	memcpy(use->at, at, sizeof(use->at));
	HASH_ADD_STR(fleet->pending_uses, hash, use);
	if(use->hh.tbl == NULL){
		free(use);
		return false;
	}
	return true;
}

bool fleet_save_last_used(struct fleet *fleet, const char *const *hashes, const char *const *times, size_t count)
{
	for(size_t i = 0; i < count; i++){
		if(!queue_use(fleet, hashes[i], times[i])){
			return false;
		}
	}
	return true;
}

/* "{a,b,c}": hashes and times hold no character an array literal quotes. */
static char *array_literal(struct pending_use **uses, size_t count, bool times)
{
	size_t each = (times ? RFC3339_LEN : TOKEN_HASH_HEX_LEN) + 1;
	char *text = malloc(count * each + 3);
	if(text == NULL){
		return NULL;
	}
	char *at = text;
	*at++ = '{';
	for(size_t i = 0; i < count; i++){
		const char *value = times ? uses[i]->at : uses[i]->hash;
		memcpy(at, value, each - 1);
		at += each - 1;
		*at++ = i + 1 < count ? ',' : '}';
	}
	if(count == 0){
		*at++ = '}';
	}
	*at = '\0';
	return text;
}

static int by_hash(const void *a, const void *b)
{
	return strcmp((*(struct pending_use *const *)a)->hash, (*(struct pending_use *const *)b)->hash);
}

/* Sends up to a batch of the waiting times, in the order of their hashes:
 * two members' batches then take the rows' locks in one order and never
 * deadlock. */
static bool send_last_used(struct fleet *fleet)
{
	size_t count = HASH_COUNT(fleet->pending_uses);
	count = count < LAST_USED_BATCH ? count : LAST_USED_BATCH;
	struct pending_use **uses = malloc(count * sizeof(*uses));
	if(uses == NULL){
		return false;
	}
	struct pending_use *use, *next;
	size_t taken = 0;
	HASH_ITER(hh, fleet->pending_uses, use, next){
		if(taken == count){
			break;
		}
		HASH_DEL(fleet->pending_uses, use);
		uses[taken++] = use;
	}
	qsort(uses, count, sizeof(*uses), by_hash);
	char *hashes = array_literal(uses, count, false), *times = array_literal(uses, count, true);
	const char *values[] = {hashes, times};
	bool sent = hashes && times && PQsendQueryParams(fleet->conn,
			"SELECT mosquitto_tokens_last_used($1::text[], $2::text[])", 2, NULL, values, NULL, NULL, 0);
	free(hashes);
	free(times);
	fleet->sent_uses = uses;
	fleet->sent_count = count;
	if(!sent){
		requeue_sent_uses(fleet);
	}
	return sent;
}

/* ---- the tick ---- */

static void become_busy(struct fleet *fleet, enum busy_with busy, int64_t now_ms)
{
	fleet->state = LINK_BUSY;
	fleet->busy = busy;
	fleet->busy_deadline_ms = now_ms + fleet->timeout_ms;
}

static void send_fetch(struct fleet *fleet, int64_t after, int64_t now_ms)
{
	char number[24];
	snprintf(number, sizeof(number), "%" PRId64, after);
	const char *values[] = {number};
	if(!PQsendQueryParams(fleet->conn, FETCH_SQL, 1, NULL, values, NULL, NULL, 0)){
		link_lost(fleet, PQerrorMessage(fleet->conn));
		return;
	}
	become_busy(fleet, BUSY_FETCH, now_ms);
	fleet->fetch_after = after;
	fleet->fetched_at_ms = now_ms;
	fleet->fetch_wanted = false;
}

static void drain_notifications(struct fleet *fleet)
{
	PGnotify *notification;
	while((notification = PQnotifies(fleet->conn)) != NULL){
		fleet->fetch_wanted = true;
		PQfreemem(notification);
	}
}

/* The query from the tick has its answer: use it. */
static void finish_busy(struct fleet *fleet, PGresult *result)
{
	bool ok = PQresultStatus(result) == PGRES_TUPLES_OK;
	const struct fleet_events *events = &fleet->events;
	if(fleet->busy == BUSY_LAST_USED){
		if(ok){
			drop_sent_uses(fleet);
		}else{
			requeue_sent_uses(fleet);
		}
		return;
	}
	if(fleet->busy != BUSY_FETCH){
		return;
	}
	if(!ok || !fleet->has_events || fleet->fetch_after != events->applied(events->context)){
		fleet->fetch_wanted = true;   /* a command applied changes meanwhile: ask again */
		return;
	}
	int applied = apply_rows(result, events->change, events->context);
	/* A full batch: there is more. */
	fleet->fetch_wanted = applied == FLEET_FETCH_BATCH;
}

static void read_answers(struct fleet *fleet, int64_t now_ms)
{
	if(PQflush(fleet->conn) < 0 || !PQconsumeInput(fleet->conn)){
		link_lost(fleet, PQerrorMessage(fleet->conn));
		return;
	}
	drain_notifications(fleet);
	while(fleet->state == LINK_BUSY && !PQisBusy(fleet->conn)){
		PGresult *result = PQgetResult(fleet->conn);
		if(result == NULL){
			fleet->state = LINK_IDLE;
			break;
		}
		finish_busy(fleet, result);
		PQclear(result);
	}
	if(fleet->state == LINK_BUSY && now_ms >= fleet->busy_deadline_ms){
		char reason[96];
		snprintf(reason, sizeof(reason), "no answer from the database within %" PRId64 " ms", fleet->timeout_ms);
		link_lost(fleet, reason);
	}
}

static void report_link(struct fleet *fleet)
{
	const struct fleet_events *events = &fleet->events;
	if(fleet->state == LINK_DOWN){
		if(!fleet->down_reported && events->link_down){
			events->link_down(events->context, fleet->down_reason);
		}
		fleet->down_reported = true;
	}else if(fleet->state != LINK_CONNECTING && !fleet->announced_up){
		fleet->announced_up = true;
		fleet->down_reported = false;
		if(events->link_up){
			events->link_up(events->context);
		}
	}
}

void fleet_poll(struct fleet *fleet)
{
	int64_t now = monotonic_ms();
	if(!fleet->has_events){
		return;
	}
	if(fleet->state == LINK_DOWN || fleet->state == LINK_CONNECTING){
		connect_step(fleet, now);
	}
	report_link(fleet);
	if(!fleet_is_up(fleet)){
		return;
	}
	read_answers(fleet, now);
	report_link(fleet);
	if(fleet->state != LINK_IDLE){
		return;
	}
	if(fleet->fetch_wanted || now - fleet->fetched_at_ms >= FLEET_POLL_MS){
		send_fetch(fleet, fleet->events.applied(fleet->events.context), now);
	}else if(fleet->pending_uses && send_last_used(fleet)){
		become_busy(fleet, BUSY_LAST_USED, now);
	}
}

void fleet_flush_last_used(struct fleet *fleet)
{
	int64_t deadline = monotonic_ms() + fleet->timeout_ms;
	while(fleet->pending_uses && settle(fleet, deadline) && send_last_used(fleet)){
		become_busy(fleet, BUSY_LAST_USED, monotonic_ms());
		if(!settle(fleet, deadline)){
			return;
		}
	}
}
