/*
 * How replies look on a terminal. The list table has the seed console's
 * columns, one width per column for the whole list (also when it came in
 * pages); everything else prints one "Field: value" per line.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrl_module.h"

static const char *text_of(const cJSON *object, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
	if(cJSON_IsString(item)) return item->valuestring;
	if(cJSON_IsNull(item)) return "never";
	return "";
}

/* Terminal columns of a UTF-8 string, counted as code points. */
static int display_width(const char *text)
{
	int width = 0;
	for(; *text; text++){
		if(((unsigned char)*text & 0xC0) != 0x80) width++;
	}
	return width;
}

/* Pads every column but the last, so lines carry no trailing spaces. */
static void print_cell(const char *text, int width, bool last)
{
	if(last){
		printf("%s\n", text);
	}else{
		printf("%s%*s  ", text, width - display_width(text), "");
	}
}

/* The seed console's eight columns, then "Client id", shown only when a
 * listed token is bound to one (an unbound token's cell is empty). */
enum { COLUMN_COUNT = 9, SEED_COLUMNS = 8, CLIENT_ID_COLUMN = 8, SHORT_HASH = 12 };

static const char *const headers[COLUMN_COUNT] = {
	"Name", "Role", "Requested by", "Issue date", "Valid until", "Last used", "Hash", "Status", "Client id",
};

static void token_cells(const cJSON *token, const char *cells[COLUMN_COUNT], char short_hash[SHORT_HASH + 1])
{
	snprintf(short_hash, SHORT_HASH + 1, "%s", text_of(token, "hash"));
	cells[0] = text_of(token, "name");
	cells[1] = text_of(token, "role");
	cells[2] = text_of(token, "requestedBy");
	cells[3] = text_of(token, "issuedAt");
	cells[4] = text_of(token, "validUntil");
	cells[5] = text_of(token, "lastUsed");
	cells[6] = short_hash;
	cells[7] = strcmp(text_of(token, "status"), "valid") == 0 ? "Valid" : "Invalid";
	const cJSON *client_id = cJSON_GetObjectItemCaseSensitive(token, "clientId");
	cells[8] = cJSON_IsString(client_id) ? client_id->valuestring : "";
}

static void widen(int widths[COLUMN_COUNT], const char *const cells[COLUMN_COUNT])
{
	for(int c = 0; c < COLUMN_COUNT; c++){
		int width = display_width(cells[c]);
		if(width > widths[c]) widths[c] = width;
	}
}

/* columns: SEED_COLUMNS, or COLUMN_COUNT with the client ids. A row
 * without one ends at its status, so that no line has trailing blanks. */
static void print_row(const int widths[COLUMN_COUNT], const char *const cells[COLUMN_COUNT], int columns)
{
	if(columns > CLIENT_ID_COLUMN && cells[CLIENT_ID_COLUMN][0] == '\0'){
		columns = CLIENT_ID_COLUMN;
	}
	for(int c = 0; c < columns; c++){
		print_cell(cells[c], widths[c], c + 1 == columns);
	}
}

static void header_widths(int widths[COLUMN_COUNT])
{
	for(int c = 0; c < COLUMN_COUNT; c++) widths[c] = display_width(headers[c]);
}

static void print_footer(long long shown, long long total)
{
	printf("%lld of %lld token%s shown. Times are UTC.\n", shown, total, total == 1 ? "" : "s");
}

void ctrl_print_token_table(const cJSON *data)
{
	const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(data, "tokens");
	const cJSON *total = cJSON_GetObjectItemCaseSensitive(data, "totalCount");
	int widths[COLUMN_COUNT];
	int columns = SEED_COLUMNS;
	const cJSON *token;
	const char *cells[COLUMN_COUNT];
	char short_hash[SHORT_HASH + 1];

	header_widths(widths);
	cJSON_ArrayForEach(token, tokens){
		token_cells(token, cells, short_hash);
		widen(widths, cells);
		if(cells[CLIENT_ID_COLUMN][0]) columns = COLUMN_COUNT;
	}
	print_row(widths, headers, columns);
	cJSON_ArrayForEach(token, tokens){
		token_cells(token, cells, short_hash);
		print_row(widths, cells, columns);
	}
	print_footer(cJSON_GetArraySize(tokens), cJSON_IsNumber(total) ? total->valueint : 0);
}

/* ---- the rows of a list that came in pages ----
 * Kept as text, not as cJSON (which takes about 1 KB per token), so that a
 * store of a million tokens fits in a few hundred MB: each row is its nine
 * cells, NUL-terminated, one after another, in chunks that never move. */

enum { ROW_CHUNK_BYTES = 1 << 20 };

struct row_chunk {
	struct row_chunk *next;
	size_t capacity;
	size_t used;
	char text[];
};

struct token_rows {
	struct row_chunk *first;
	struct row_chunk *last;
	long long count;
	int widths[COLUMN_COUNT];
	bool any_client_id;   /* a row is bound to a client id: the column is shown */
};

struct token_rows *ctrl_token_rows_new(void)
{
	struct token_rows *rows = calloc(1, sizeof(*rows));
	if(rows){
		header_widths(rows->widths);
	}
	return rows;
}

/* Room for length more bytes at the end of the last chunk. */
static char *row_room(struct token_rows *rows, size_t length)
{
	struct row_chunk *last = rows->last;
	if(last == NULL || last->capacity - last->used < length){
		size_t capacity = length > ROW_CHUNK_BYTES ? length : ROW_CHUNK_BYTES;
		struct row_chunk *chunk = malloc(sizeof(*chunk) + capacity);
		if(chunk == NULL){
			return NULL;
		}
		chunk->next = NULL;
		chunk->capacity = capacity;
		chunk->used = 0;
		if(last) last->next = chunk;
		else rows->first = chunk;
		rows->last = chunk;
	}
	return rows->last->text + rows->last->used;
}

static bool add_row(struct token_rows *rows, const char *const cells[COLUMN_COUNT])
{
	size_t lengths[COLUMN_COUNT];
	size_t length = 0;
	for(int c = 0; c < COLUMN_COUNT; c++){
		lengths[c] = strlen(cells[c]) + 1;
		length += lengths[c];
	}
	char *out = row_room(rows, length);
	if(out == NULL){
		return false;
	}
	for(int c = 0; c < COLUMN_COUNT; c++){
		memcpy(out, cells[c], lengths[c]);
		out += lengths[c];
	}
	rows->last->used += length;
	rows->count++;
	widen(rows->widths, cells);
	rows->any_client_id |= cells[CLIENT_ID_COLUMN][0] != '\0';
	return true;
}

bool ctrl_token_rows_add(struct token_rows *rows, const cJSON *tokens)
{
	const cJSON *token;
	const char *cells[COLUMN_COUNT];
	char short_hash[SHORT_HASH + 1];
	cJSON_ArrayForEach(token, tokens){
		token_cells(token, cells, short_hash);
		if(!add_row(rows, cells)){
			return false;
		}
	}
	return true;
}

long long ctrl_token_rows_count(const struct token_rows *rows)
{
	return rows->count;
}

void ctrl_token_rows_print(const struct token_rows *rows, long long total)
{
	const char *cells[COLUMN_COUNT];
	int columns = rows->any_client_id ? COLUMN_COUNT : SEED_COLUMNS;
	print_row(rows->widths, headers, columns);
	for(const struct row_chunk *chunk = rows->first; chunk; chunk = chunk->next){
		for(const char *at = chunk->text; at < chunk->text + chunk->used;){
			for(int c = 0; c < COLUMN_COUNT; c++){
				cells[c] = at;
				at += strlen(at) + 1;
			}
			print_row(rows->widths, cells, columns);
		}
	}
	print_footer(rows->count, total);
}

void ctrl_token_rows_free(struct token_rows *rows)
{
	if(rows == NULL){
		return;
	}
	for(struct row_chunk *chunk = rows->first, *next; chunk; chunk = next){
		next = chunk->next;
		free(chunk);
	}
	free(rows);
}

void ctrl_print_token(const cJSON *data)
{
	printf("Name:         %s\n", text_of(data, "name"));
	printf("Role:         %s\n", text_of(data, "role"));
	const cJSON *client_id = cJSON_GetObjectItemCaseSensitive(data, "clientId");
	if(cJSON_IsString(client_id)){
		printf("Client id:    %s\n", client_id->valuestring);
	}
	printf("Requested by: %s\n", text_of(data, "requestedBy"));
	printf("Issue date:   %s\n", text_of(data, "issuedAt"));
	printf("Valid until:  %s\n", text_of(data, "validUntil"));
	printf("Last used:    %s\n", text_of(data, "lastUsed"));
	printf("Hash:         %s\n", text_of(data, "hash"));
	printf("Status:       %s\n", strcmp(text_of(data, "status"), "valid") == 0 ? "Valid" : "Invalid");
}

/* text in single quotes for a POSIX shell ('\'' for each quote). */
static void print_shell_quoted(const char *text)
{
	putchar('\'');
	for(; *text; text++){
		if(*text == '\'') fputs("'\\''", stdout);
		else putchar(*text);
	}
	putchar('\'');
}

void ctrl_print_created_token(const cJSON *data)
{
	ctrl_print_token(data);
	printf("\nToken (shown only this once; copy it now, it cannot be shown again):\n\n    %s\n\n",
			text_of(data, "token"));
	/* A bound token logs in only with its client id: the example uses it. */
	const cJSON *client_id = cJSON_GetObjectItemCaseSensitive(data, "clientId");
	printf("Clients log in with it as their MQTT password%s, for example:\n    mosquitto_sub",
			cJSON_IsString(client_id) ? " and that client id" : "");
	if(cJSON_IsString(client_id)){
		fputs(" -i ", stdout);
		print_shell_quoted(client_id->valuestring);
	}
	fputs(" -u ", stdout);
	print_shell_quoted(text_of(data, "name"));
	printf(" -P '<token>' -t '#'\n");
}

void ctrl_print_rotated(const cJSON *data)
{
	ctrl_print_created_token(data);
	const char *until = text_of(data, "previousValidUntil");
	if(until[0]){
		printf("\nThe previous token keeps working until %s (UTC); its connections are closed then.\n", until);
	}else{
		printf("\nThe previous token no longer works; its connections are being closed.\n");
	}
}

void ctrl_print_revoked(const cJSON *data)
{
	const cJSON *disconnected = cJSON_GetObjectItemCaseSensitive(data, "disconnected");
	const cJSON *ended = cJSON_GetObjectItemCaseSensitive(data, "offlineSessionsEnded");
	int count = cJSON_IsNumber(disconnected) ? disconnected->valueint : 0;
	int offline = cJSON_IsNumber(ended) ? ended->valueint : 0;
	printf("Revoked token %s (hash %s); %d connection%s closed", text_of(data, "name"),
			text_of(data, "hash"), count, count == 1 ? "" : "s");
	if(offline > 0){
		printf(", %d offline session%s ended", offline, offline == 1 ? "" : "s");
	}
	printf(".\n");
}

/* An ACL line's columns: "allow" or "deny", the longest acltype
 * (publishClientReceive), and room for most topics. */
enum { ALLOW_WIDTH = 5, ACLTYPE_WIDTH = 20, TOPIC_WIDTH = 40 };

static void print_acls(const cJSON *role)
{
	const cJSON *acl;
	cJSON_ArrayForEach(acl, cJSON_GetObjectItemCaseSensitive(role, "acls")){
		const cJSON *priority = cJSON_GetObjectItemCaseSensitive(acl, "priority");
		printf("    %-*s %-*s %-*s priority %d\n",
				ALLOW_WIDTH, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(acl, "allow")) ? "allow" : "deny",
				ACLTYPE_WIDTH, text_of(acl, "acltype"), TOPIC_WIDTH, text_of(acl, "topic"),
				cJSON_IsNumber(priority) ? priority->valueint : 0);
	}
}

void ctrl_print_role(const cJSON *data)
{
	printf("Role: %s\n", text_of(data, "rolename"));
	if(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(data, "acls")) == 0){
		printf("    (no ACLs: may not publish or subscribe)\n");
	}
	print_acls(data);
}

void ctrl_print_roles(const cJSON *data)
{
	const cJSON *role;
	cJSON_ArrayForEach(role, cJSON_GetObjectItemCaseSensitive(data, "roles")){
		ctrl_print_role(role);
	}
	const cJSON *total = cJSON_GetObjectItemCaseSensitive(data, "totalCount");
	printf("%d role%s.\n", cJSON_IsNumber(total) ? total->valueint : 0,
			cJSON_IsNumber(total) && total->valueint == 1 ? "" : "s");
}

const cJSON *ctrl_reply_response(const cJSON *reply)
{
	const cJSON *response = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "responses"), 0);
	return cJSON_IsObject(response) ? response : NULL;
}

/* Mosquitto 2.1 itself answers a $CONTROL topic that no plugin serves
 * with {"error": "endpoint not available"}; a broker's answer is shown
 * only up to this many bytes. */
#define BROKER_ERROR_SHOWN 200

void ctrl_print_not_a_reply(const cJSON *reply)
{
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(reply, "error");
	if(cJSON_IsString(error) && cJSON_GetObjectItemCaseSensitive(reply, "responses") == NULL){
		fprintf(stderr, "Error: the broker answered \"%.*s\": nothing there serves " CONTROL_TOPIC ". "
				"Is the mosquitto_tokens plugin loaded?\n", BROKER_ERROR_SHOWN, error->valuestring);
		return;
	}
	fprintf(stderr, "Error: the broker's reply is not a tokens plugin response\n");
}

bool ctrl_print_response_error(const cJSON *response)
{
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(response, "error");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(response, "code");
	if(!cJSON_IsString(error)){
		return false;
	}
	fprintf(stderr, "Error: %s%s%s%s\n", error->valuestring, cJSON_IsString(code) ? " (" : "",
			cJSON_IsString(code) ? code->valuestring : "", cJSON_IsString(code) ? ")" : "");
	return true;
}

int ctrl_print_reply(const struct subcommand *sub, const void *payload, size_t length)
{
	cJSON *reply = cJSON_ParseWithLength(payload, length);
	const cJSON *response = ctrl_reply_response(reply);
	int status = 0;
	if(response == NULL){
		ctrl_print_not_a_reply(reply);
		status = 1;
	}else if(ctrl_print_response_error(response)){
		status = 1;
	}else{
		sub->print(cJSON_GetObjectItemCaseSensitive(response, "data"));
	}
	cJSON_Delete(reply);
	return status;
}
