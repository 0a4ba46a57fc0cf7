/*
 * Snapshot reading. See plugin/snapshot_reader.h.
 *
 * The writer's layout, line by line:
 *
 *   {
 *   "version": 1,
 *   "journalSequence": 42,
 *   "roles": [
 *   {...role...},          one per line, a comma after all but the last
 *   ],
 *   "tokens": [
 *   {...token...},         likewise
 *   ],                     "]" when there are no bindings, and the file ends
 *   "sessions": [
 *   {"clientId":...},      one binding per line, likewise
 *   ]
 *   }
 *
 * Anything else goes to the item-by-item scan and, if that fails too, to
 * the whole-document path, which reports real errors (not JSON, wrong
 * types...) with their byte offset or entry.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "snapshot_reader.h"
#include "state_format.h"

enum outcome { READ_OK, NOT_OUR_LAYOUT, READ_INVALID };

struct text {
	const char *at;
	const char *end;
};

/* The next line, without its newline; false at the end or on a last line
 * without one. */
static bool next_line(struct text *text, struct text *line)
{
	const char *newline = text->at < text->end ? memchr(text->at, '\n', (size_t)(text->end - text->at)) : NULL;
	if(newline == NULL){
		return false;
	}
	line->at = text->at;
	line->end = newline;
	text->at = newline + 1;
	return true;
}

static bool line_is(const struct text *line, const char *expected)
{
	size_t length = strlen(expected);
	return (size_t)(line->end - line->at) == length && memcmp(line->at, expected, length) == 0;
}

/* Parses one item line; *more tells whether it ended with a comma. NULL
 * when the line is not a single JSON value. */
static cJSON *parse_item(struct text line, bool *more)
{
	*more = line.end > line.at && line.end[-1] == ',';
	if(*more){
		line.end--;
	}
	const char *parse_end = NULL;
	cJSON *item = cJSON_ParseWithLengthOpts(line.at, (size_t)(line.end - line.at), &parse_end, false);
	if(item && parse_end != line.end){
		cJSON_Delete(item);
		return NULL;
	}
	return item;
}

/* The header's members ("version", "journalSequence", the journal ids and
 * any unknown ones) as one small object, checked by the same functions as
 * any other layout. */
static enum outcome check_header(const cJSON *header, struct state_loader *loader, struct snapshot_header *out)
{
	if(cJSON_GetObjectItemCaseSensitive(header, "roles") || cJSON_GetObjectItemCaseSensitive(header, "tokens")
			|| cJSON_GetObjectItemCaseSensitive(header, "sessions")){
		return NOT_OUR_LAYOUT;   /* the whole-document path decides which one counts */
	}
	return state_check_header(loader, header, &out->journal_sequence)
		&& state_read_journal_ids(loader, header, &out->ids) ? READ_OK : READ_INVALID;
}

/* The lines between "{" and "\"roles\": [" are whole members, each ending
 * with a comma: wrapped in braces (the last comma dropped) they are the
 * header object. */
static enum outcome read_header(struct text *text, struct state_loader *loader, struct snapshot_header *out)
{
	static const char roles[] = "\n\"roles\": [\n";
	struct text line;
	if(!next_line(text, &line) || !line_is(&line, "{")){
		return NOT_OUR_LAYOUT;
	}
	size_t window = (size_t)(text->end - text->at) < 65536 ? (size_t)(text->end - text->at) : 65536;
	const char *found = window ? memmem(text->at - 1, window + 1, roles, sizeof(roles) - 1) : NULL;
	if(found == NULL || found <= text->at || found[-1] != ','){
		return NOT_OUR_LAYOUT;
	}
	size_t length = (size_t)(found - 1 - text->at);
	char *wrapped = malloc(length + 3);
	if(wrapped == NULL){
		return NOT_OUR_LAYOUT;   /* the other path reports it */
	}
	wrapped[0] = '{';
	memcpy(wrapped + 1, text->at, length);
	memcpy(wrapped + 1 + length, "}", 2);
	const char *parse_end = NULL;
	cJSON *header = cJSON_ParseWithLengthOpts(wrapped, length + 2, &parse_end, false);
	bool whole = header && parse_end == wrapped + length + 2;
	free(wrapped);
	enum outcome outcome = whole ? check_header(header, loader, out) : NOT_OUR_LAYOUT;
	cJSON_Delete(header);
	text->at = found + sizeof(roles) - 1;
	return outcome;
}

static enum outcome read_roles(struct text *text, struct state_loader *loader)
{
	struct text line;
	bool more = false;
	for(int index = 0; next_line(text, &line); index++){
		if(line_is(&line, "],")){
			return !more && next_line(text, &line) && line_is(&line, "\"tokens\": [") ? READ_OK : NOT_OUR_LAYOUT;
		}
		if(index > 0 && !more){
			return NOT_OUR_LAYOUT;
		}
		cJSON *item = parse_item(line, &more);
		if(item == NULL){
			return NOT_OUR_LAYOUT;
		}
		bool loaded = state_load_role(loader, item, index);
		cJSON_Delete(item);
		if(!loaded){
			return READ_INVALID;
		}
	}
	return NOT_OUR_LAYOUT;
}

/* One thread's share of the tokens: lines of the writer's layout, or the
 * extents a scan found in any other. */
struct token_share {
	struct store *store;          /* read only: roles */
	struct text lines;
	const struct text *extents;   /* not NULL: parse these instead of lines */
	size_t extent_count;
	int first_index;
	bool ends_the_array;          /* its last line must have no comma */
	struct token **tokens;
	size_t count;
	size_t capacity;
	struct previous_secret *previous;   /* tokens in a rotation's grace period */
	size_t previous_count;
	enum outcome outcome;
	char problem[512];
};

static bool keep_previous(struct token_share *share, const struct previous_secret *previous)
{
	struct previous_secret *grown = realloc(share->previous, (share->previous_count + 1) * sizeof(*grown));
	if(grown == NULL){
		return false;
	}
	share->previous = grown;
	share->previous[share->previous_count++] = *previous;
	return true;
}

static bool keep_token(struct token_share *share, struct token *token)
{
	if(share->count == share->capacity){
		size_t capacity = share->capacity ? 2 * share->capacity : 4096;
		struct token **grown = realloc(share->tokens, capacity * sizeof(*grown));
		if(grown == NULL){
			return false;
		}
		share->tokens = grown;
		share->capacity = capacity;
	}
	share->tokens[share->count++] = token;
	return true;
}

/* Parses one token item (and deletes it); false on a problem, in
 * share->problem. */
static bool share_token(struct token_share *share, struct state_loader *loader, cJSON *item)
{
	struct previous_secret previous;
	struct token *token = state_parse_token(loader, item, share->first_index + (int)share->count, &previous);
	cJSON_Delete(item);
	if(token == NULL){
		return false;
	}
	if((previous.token && !keep_previous(share, &previous)) || !keep_token(share, token)){
		snprintf(share->problem, sizeof(share->problem), "out of memory");
		token_free(token);
		return false;
	}
	return true;
}

static void parse_lines(struct token_share *share, struct state_loader *loader)
{
	struct text line;
	bool more = true;
	while(share->outcome == READ_OK && next_line(&share->lines, &line)){
		if(!more){
			share->outcome = NOT_OUR_LAYOUT;   /* an item after the last */
			break;
		}
		cJSON *item = parse_item(line, &more);
		if(item == NULL){
			share->outcome = NOT_OUR_LAYOUT;
		}else if(!share_token(share, loader, item)){
			share->outcome = READ_INVALID;
		}
	}
	if(share->outcome == READ_OK && share->lines.at != share->lines.end){
		share->outcome = NOT_OUR_LAYOUT;   /* something after the last newline */
	}
	if(share->outcome == READ_OK && share->count > 0 && more == share->ends_the_array){
		share->outcome = NOT_OUR_LAYOUT;   /* a comma missing, or one too many at the end */
	}
}

/* A whole JSON value that fills the extent exactly, or NULL. */
static cJSON *parse_extent(const struct text *extent)
{
	const char *parse_end = NULL;
	cJSON *item = cJSON_ParseWithLengthOpts(extent->at, (size_t)(extent->end - extent->at), &parse_end, false);
	if(item && parse_end != extent->end){
		cJSON_Delete(item);
		return NULL;
	}
	return item;
}

static void parse_extents(struct token_share *share, struct state_loader *loader)
{
	for(size_t i = 0; i < share->extent_count && share->outcome == READ_OK; i++){
		cJSON *item = parse_extent(&share->extents[i]);
		if(item == NULL){
			share->outcome = NOT_OUR_LAYOUT;   /* not JSON: the whole-document path says where */
		}else if(!share_token(share, loader, item)){
			share->outcome = READ_INVALID;
		}
	}
}

static void *parse_share(void *argument)
{
	struct token_share *share = argument;
	struct state_loader loader;
	state_loader_init(&loader, share->store, share->problem, sizeof(share->problem));
	share->outcome = READ_OK;
	if(share->extents){
		parse_extents(share, &loader);
	}else{
		parse_lines(share, &loader);
	}
	return NULL;
}

static size_t count_lines(const char *at, const char *end)
{
	size_t lines = 0;
	while((at = memchr(at, '\n', (size_t)(end - at))) != NULL){
		lines++;
		at++;
	}
	return lines;
}

/* Frees the tokens not handed to the store. */
static void free_share(struct token_share *share)
{
	for(size_t i = 0; i < share->count; i++){
		token_free(share->tokens[i]);
	}
	free(share->tokens);
	free(share->previous);
}

/* Parses both shares at once (the second on a helper thread), then adds
 * their tokens in file order and their previous secrets, and frees what
 * is left. */
static enum outcome add_shares(struct token_share shares[2], struct state_loader *loader,
		char *problem, size_t problem_len)
{
	pthread_t helper;
	pthread_attr_t attributes;
	/* The same stack on every libc: musl's default is 128 KiB, and deeply
	 * nested JSON takes tens of KB to parse. */
	bool threaded = pthread_attr_init(&attributes) == 0;
	if(threaded){
		threaded = pthread_attr_setstacksize(&attributes, (size_t)1 << 20) == 0
			&& pthread_create(&helper, &attributes, parse_share, &shares[1]) == 0;
		pthread_attr_destroy(&attributes);
	}
	parse_share(&shares[0]);
	if(threaded){
		pthread_join(helper, NULL);
	}else{
		parse_share(&shares[1]);
	}
	enum outcome outcome = shares[0].outcome != READ_OK ? shares[0].outcome : shares[1].outcome;
	if(outcome == READ_INVALID){
		snprintf(problem, problem_len, "%s", shares[0].outcome == READ_INVALID ? shares[0].problem : shares[1].problem);
	}
	for(int s = 0; s < 2 && outcome == READ_OK; s++){
		for(size_t i = 0; i < shares[s].count && outcome == READ_OK; i++){
			struct token *token = shares[s].tokens[i];
			shares[s].tokens[i] = NULL;   /* added, or freed by state_add_token */
			if(!state_add_token(loader, token, shares[s].first_index + (int)i)){
				outcome = READ_INVALID;
			}
		}
	}
	if(outcome == READ_OK && !state_order_tokens(loader)){
		outcome = READ_INVALID;
	}
	for(int s = 0; s < 2; s++){
		for(size_t i = 0; i < shares[s].previous_count && outcome == READ_OK; i++){
			if(!state_add_previous(loader, &shares[s].previous[i])){
				outcome = READ_INVALID;
			}
		}
	}
	free_share(&shares[0]);
	free_share(&shares[1]);
	return outcome;
}

/* Parses the token lines in two halves at once, then adds them in order. */
static enum outcome read_tokens(struct text lines, struct state_loader *loader, char *problem, size_t problem_len)
{
	const char *middle = lines.at + (size_t)(lines.end - lines.at) / 2;
	const char *split = memchr(middle, '\n', (size_t)(lines.end - middle));
	split = split ? split + 1 : lines.end;

	struct token_share shares[2] = {
		{.store = loader->store, .lines = {lines.at, split}, .first_index = 0, .ends_the_array = split == lines.end},
		{.store = loader->store, .lines = {split, lines.end}, .ends_the_array = true},
	};
	shares[1].first_index = (int)count_lines(lines.at, split);
	return add_shares(shares, loader, problem, problem_len);
}

/* The start of the line that ends just before end (at a newline), within
 * [at, end). */
static const char *line_start(const char *at, const char *end)
{
	const char *newline = end > at ? memrchr(at, '\n', (size_t)(end - at)) : NULL;
	return newline ? newline + 1 : at;
}

/* Splits the item lines after "tokens": [ into the tokens' and the
 * bindings'. The writer puts "sessions" last, each binding on a line that
 * starts {"clientId":, so walking back over those from the end finds the
 * lines "\"sessions\": [" and "]," that close the tokens; a file without
 * bindings costs one line's look. Without them every line is a token's (and
 * a line that is not ends the fast path). */
static void split_sessions(struct text items, struct text *tokens, struct text *sessions)
{
	static const char binding[] = "{\"clientId\":";
	*tokens = items;
	*sessions = (struct text){items.end, items.end};
	const char *end = items.end;   /* just past the newline of the line looked at */
	while(end > items.at){
		struct text line = {line_start(items.at, end - 1), end - 1};
		if((size_t)(line.end - line.at) >= sizeof(binding) - 1 && memcmp(line.at, binding, sizeof(binding) - 1) == 0){
			end = line.at;
			continue;
		}
		if(line_is(&line, "\"sessions\": [") && line.at > items.at){
			struct text close = {line_start(items.at, line.at - 1), line.at - 1};
			if(line_is(&close, "],")){
				*tokens = (struct text){items.at, close.at};
				*sessions = (struct text){line.end + 1, items.end};
			}
		}
		return;
	}
}

/* The bindings' lines, one at a time. */
static enum outcome read_session_lines(struct text lines, struct state_loader *loader, struct session_records *sessions)
{
	struct text line;
	bool more = false;
	for(int index = 0; next_line(&lines, &line); index++){
		if(index > 0 && !more){
			return NOT_OUR_LAYOUT;   /* an item after the last */
		}
		cJSON *item = parse_item(line, &more);
		if(item == NULL){
			return NOT_OUR_LAYOUT;
		}
		bool loaded = state_load_session(loader, sessions, item, index);
		cJSON_Delete(item);
		if(!loaded){
			return READ_INVALID;
		}
	}
	return more ? NOT_OUR_LAYOUT : READ_OK;   /* a comma after the last */
}

/* Everything after "tokens": [ : the tokens, the optional bindings, the
 * closing lines. */
static enum outcome read_items_after_roles(struct text *text, struct state_loader *loader,
		struct session_records *sessions, char *problem, size_t problem_len)
{
	static const char tail[] = "]\n}\n";
	size_t size = (size_t)(text->end - text->at);
	if(size < sizeof(tail) - 1 || memcmp(text->end - (sizeof(tail) - 1), tail, sizeof(tail) - 1) != 0){
		return NOT_OUR_LAYOUT;
	}
	const char *lines_end = text->end - (sizeof(tail) - 1);
	/* The last item must end its own line, or a share would miss it. */
	if(lines_end > text->at && lines_end[-1] != '\n'){
		return NOT_OUR_LAYOUT;
	}
	struct text tokens, bindings;
	split_sessions((struct text){text->at, lines_end}, &tokens, &bindings);
	enum outcome outcome = read_tokens(tokens, loader, problem, problem_len);
	return outcome == READ_OK ? read_session_lines(bindings, loader, sessions) : outcome;
}

static enum outcome read_layout(struct text text, struct store *store, struct session_records *sessions,
		struct snapshot_header *header, char *problem, size_t problem_len)
{
	struct state_loader loader;
	state_loader_init(&loader, store, problem, problem_len);
	enum outcome outcome = read_header(&text, &loader, header);
	if(outcome == READ_OK){
		outcome = read_roles(&text, &loader);
	}
	if(outcome == READ_OK){
		outcome = read_items_after_roles(&text, &loader, sessions, problem, problem_len);
	}
	return outcome;
}

/* ---- any other layout, one item at a time ---- */

/* Where the top level's members are. The scan checks the document's outer
 * structure (the object, the arrays, their commas); each item is then
 * parsed, and so checked, on its own. */
enum scanned_array { SCANNED_ROLES, SCANNED_TOKENS, SCANNED_SESSIONS, SCANNED_ARRAYS };

static const char *const scanned_array_names[SCANNED_ARRAYS] = {"roles", "tokens", "sessions"};

struct scanned_items {
	struct text *extents;   /* each item's */
	size_t count;
	bool seen;
};

struct scan {
	cJSON *header;          /* every member but the arrays of items, parsed */
	struct scanned_items arrays[SCANNED_ARRAYS];   /* "sessions" is optional */
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *skip_space(const char *at, const char *end)
{
	while(at < end && is_space(*at)){
		at++;
	}
	return at;
}

/* Past the string that starts at at (on its '"'), or NULL. */
static const char *skip_string(const char *at, const char *end)
{
	for(at++; at < end; at++){
		if(*at == '\\'){
			at++;
		}else if(*at == '"'){
			return at + 1;
		}
	}
	return NULL;
}

/* Past the value that starts at at: brackets are matched outside strings,
 * a scalar runs to the next delimiter. NULL when it does not end. Only
 * where it ends: cJSON checks what is inside. */
static const char *skip_value(const char *at, const char *end)
{
	size_t depth = 0;
	do{
		if(at >= end){
			return NULL;
		}
		if(*at == '"'){
			at = skip_string(at, end);
			if(at == NULL){
				return NULL;
			}
		}else if(*at == '{' || *at == '['){
			depth++;
			at++;
		}else if(*at == '}' || *at == ']'){
			if(depth == 0){
				return NULL;
			}
			depth--;
			at++;
		}else if(depth == 0){
			while(at < end && *at != ',' && *at != '}' && *at != ']' && !is_space(*at)){
				at++;
			}
			return at;
		}else{
			at++;
		}
	}while(depth > 0);
	return at;
}

static bool add_extent(struct text **extents, size_t *count, size_t *capacity, struct text extent)
{
	if(*count == *capacity){
		size_t grown_capacity = *capacity ? 2 * *capacity : 256;
		struct text *grown = realloc(*extents, grown_capacity * sizeof(*grown));
		if(grown == NULL){
			return false;
		}
		*extents = grown;
		*capacity = grown_capacity;
	}
	(*extents)[(*count)++] = extent;
	return true;
}

/* The items of the array that starts at *at (on its '['); *at ends past
 * its ']'. */
static bool scan_array(const char **at, const char *end, struct text **extents, size_t *count)
{
	size_t capacity = 0;
	const char *p = skip_space(*at + 1, end);
	if(p < end && *p == ']'){
		*at = p + 1;
		return true;
	}
	while(p < end){
		const char *item_end = skip_value(p, end);
		if(item_end == NULL || item_end == p || !add_extent(extents, count, &capacity, (struct text){p, item_end})){
			return false;
		}
		p = skip_space(item_end, end);
		if(p < end && *p == ']'){
			*at = p + 1;
			return true;
		}
		if(p >= end || *p != ','){
			return false;
		}
		p = skip_space(p + 1, end);
	}
	return false;
}

static struct scanned_items *scanned_array(struct scan *scan, const char *key)
{
	for(int a = 0; a < SCANNED_ARRAYS; a++){
		if(strcmp(key, scanned_array_names[a]) == 0){
			return &scan->arrays[a];
		}
	}
	return NULL;
}

/* One member: its key, then its value (an array of items for "roles",
 * "tokens" and "sessions", anything else into the header). */
static bool scan_member(const char **at, const char *end, struct scan *scan)
{
	const char *key_end = *at < end && **at == '"' ? skip_string(*at, end) : NULL;
	cJSON *key = key_end ? parse_extent(&(struct text){*at, key_end}) : NULL;
	const char *value = key ? skip_space(key_end, end) : NULL;
	bool ok = false;
	if(value && value < end && *value == ':'){
		value = skip_space(value + 1, end);
		struct scanned_items *items = scanned_array(scan, key->valuestring);
		if(items){
			/* A second one, or one that is no array: the whole-document
			 * path says what counts, and what is wrong. */
			ok = !items->seen && value < end && *value == '['
				&& scan_array(&value, end, &items->extents, &items->count);
			items->seen = true;
		}else{
			const char *value_end = skip_value(value, end);
			cJSON *item = value_end ? parse_extent(&(struct text){value, value_end}) : NULL;
			ok = item != NULL;
			if(ok && !cJSON_AddItemToObject(scan->header, key->valuestring, item)){
				cJSON_Delete(item);
				ok = false;
			}
			value = value_end;
		}
		*at = value;
	}
	cJSON_Delete(key);
	return ok;
}

static bool scan_document(struct text text, struct scan *scan)
{
	const char *at = skip_space(text.at, text.end);
	if(at >= text.end || *at != '{' || (scan->header = cJSON_CreateObject()) == NULL){
		return false;
	}
	at = skip_space(at + 1, text.end);
	if(at < text.end && *at == '}'){
		return false;   /* no "version": the whole-document path says so */
	}
	while(scan_member(&at, text.end, scan)){
		at = skip_space(at, text.end);
		if(at < text.end && *at == '}'){
			return skip_space(at + 1, text.end) == text.end && scan->arrays[SCANNED_ROLES].seen
				&& scan->arrays[SCANNED_TOKENS].seen;
		}
		if(at >= text.end || *at != ','){
			return false;
		}
		at = skip_space(at + 1, text.end);
	}
	return false;
}

/* Roles or bindings, one extent at a time (sessions NULL: roles). */
static enum outcome load_scanned(const struct scanned_items *items, struct state_loader *loader,
		struct session_records *sessions)
{
	for(size_t i = 0; i < items->count; i++){
		cJSON *item = parse_extent(&items->extents[i]);
		if(item == NULL){
			return NOT_OUR_LAYOUT;
		}
		bool loaded = sessions ? state_load_session(loader, sessions, item, (int)i)
			: state_load_role(loader, item, (int)i);
		cJSON_Delete(item);
		if(!loaded){
			return READ_INVALID;
		}
	}
	return READ_OK;
}

static enum outcome read_items(struct text text, struct store *store, struct session_records *sessions,
		struct snapshot_header *header, char *problem, size_t problem_len)
{
	struct scan scan = {0};
	struct state_loader loader;
	state_loader_init(&loader, store, problem, problem_len);
	enum outcome outcome = scan_document(text, &scan) ? check_header(scan.header, &loader, header) : NOT_OUR_LAYOUT;
	if(outcome == READ_OK){
		outcome = load_scanned(&scan.arrays[SCANNED_ROLES], &loader, NULL);
	}
	const struct scanned_items *tokens = &scan.arrays[SCANNED_TOKENS];
	if(outcome == READ_OK && tokens->count > 0){
		size_t half = tokens->count / 2;
		struct token_share shares[2] = {
			{.store = store, .extents = tokens->extents, .extent_count = half, .first_index = 0},
			{.store = store, .extents = tokens->extents + half, .extent_count = tokens->count - half,
				.first_index = (int)half},
		};
		outcome = add_shares(shares, &loader, problem, problem_len);
	}
	if(outcome == READ_OK){
		outcome = load_scanned(&scan.arrays[SCANNED_SESSIONS], &loader, sessions);
	}
	cJSON_Delete(scan.header);
	for(int a = 0; a < SCANNED_ARRAYS; a++){
		free(scan.arrays[a].extents);
	}
	return outcome;
}

/* ---- the whole document at once: what reports a file that is not JSON ---- */

static bool read_document(const char *path, struct text text, struct store *store, struct session_records *sessions,
		struct snapshot_header *header, char *error, size_t error_len)
{
	const char *parse_end = NULL;
	cJSON *document = cJSON_ParseWithLengthOpts(text.at, (size_t)(text.end - text.at), &parse_end, false);
	/* Only whitespace may follow the document. */
	while(document && parse_end < text.end && is_space(*parse_end)){
		parse_end++;
	}
	if(document == NULL || parse_end != text.end){
		snprintf(error, error_len, "state file %s is not valid JSON (at byte %ld)",
				path, parse_end ? (long)(parse_end - text.at) : 0L);
		cJSON_Delete(document);
		return false;
	}
	char problem[1024];
	struct state_loader loader;
	state_loader_init(&loader, store, problem, sizeof(problem));
	bool loaded = state_from_json(document, store, problem, sizeof(problem))
		&& state_check_header(&loader, document, &header->journal_sequence)
		&& state_read_journal_ids(&loader, document, &header->ids)
		&& state_load_sessions(&loader, sessions, document);
	if(!loaded){
		snprintf(error, error_len, "state file %s: %s", path, problem);
		store_clear(store);
		session_records_clear(sessions);
	}
	cJSON_Delete(document);
	return loaded;
}

/* ---- reading ---- */

static bool read_mapped(const char *path, struct text text, struct store *store, struct session_records *sessions,
		struct snapshot_header *header, char *error, size_t error_len)
{
	char problem[1024];
	enum outcome outcome = read_layout(text, store, sessions, header, problem, sizeof(problem));
	if(outcome == NOT_OUR_LAYOUT){
		store_clear(store);
		session_records_clear(sessions);
		outcome = read_items(text, store, sessions, header, problem, sizeof(problem));
	}
	if(outcome == READ_INVALID){
		snprintf(error, error_len, "state file %s: %s", path, problem);
	}
	if(outcome != READ_OK){
		store_clear(store);
		session_records_clear(sessions);
	}
	if(outcome == NOT_OUR_LAYOUT){
		/* Something the scan did not expect: the whole document decides,
		 * and says where a file that is not JSON goes wrong. */
		*header = (struct snapshot_header){0};
		return read_document(path, text, store, sessions, header, error, error_len);
	}
	return outcome == READ_OK;
}

bool snapshot_read(const char *path, struct store *store, struct session_records *sessions,
		struct snapshot_header *header, char *error, size_t error_len)
{
	*header = (struct snapshot_header){0};
	int fd = state_open_regular(path, O_RDONLY, 0, "state file", error, error_len);
	if(fd < 0){
		header->missing = errno == ENOENT;
		return header->missing;
	}
	struct stat info;
	if(fstat(fd, &info) != 0){
		snprintf(error, error_len, "cannot read state file %s: %s", path, strerror(errno));
		close(fd);
		return false;
	}
	if(info.st_size == 0){
		close(fd);
		snprintf(error, error_len, "state file %s is not valid JSON (it is empty)", path);
		return false;
	}
	void *map = mmap(NULL, (size_t)info.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int saved = errno;
	close(fd);
	if(map == MAP_FAILED){
		snprintf(error, error_len, "cannot read state file %s: %s", path, strerror(saved));
		return false;
	}
	struct text text = {map, (const char *)map + info.st_size};
	bool loaded = read_mapped(path, text, store, sessions, header, error, error_len);
	munmap(map, (size_t)info.st_size);
	return loaded;
}
