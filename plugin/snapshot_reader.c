/*
 * Snapshot reading. See include/snapshot_reader.h.
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
 *   ]
 *   }
 *
 * Anything else sends the reader to the whole-document path, which reports
 * real errors (not JSON, wrong types...) with their byte offset or entry.
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

static enum outcome read_header(struct text *text, int64_t *journal_sequence)
{
	struct text line;
	char number[24];
	static const char prefix[] = "\"journalSequence\": ";
	if(!next_line(text, &line) || !line_is(&line, "{")
			|| !next_line(text, &line) || !line_is(&line, "\"version\": 1,")
			|| !next_line(text, &line)){
		return NOT_OUR_LAYOUT;
	}
	size_t length = (size_t)(line.end - line.at);
	size_t digits = length - (sizeof(prefix) - 1) - 1;
	if(length < sizeof(prefix) + 1 || length - sizeof(prefix) + 1 > sizeof(number)
			|| memcmp(line.at, prefix, sizeof(prefix) - 1) != 0 || line.end[-1] != ','){
		return NOT_OUR_LAYOUT;
	}
	memcpy(number, line.at + sizeof(prefix) - 1, digits);
	number[digits] = '\0';
	char *end;
	long long value = strtoll(number, &end, 10);
	if(digits == 0 || *end != '\0' || value < 0 || value > JOURNAL_SEQUENCE_MAX
			|| number[0] == '-' || number[0] == '+'){
		return NOT_OUR_LAYOUT;
	}
	*journal_sequence = value;
	return next_line(text, &line) && line_is(&line, "\"roles\": [") ? READ_OK : NOT_OUR_LAYOUT;
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

/* One thread's share of the token lines. */
struct token_share {
	struct store *store;          /* read only: roles */
	struct text lines;
	int first_index;
	bool ends_the_array;          /* its last line must have no comma */
	struct token **tokens;
	size_t count;
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

static void *parse_share(void *argument)
{
	struct token_share *share = argument;
	struct state_loader loader;
	struct text line;
	bool more = true;
	size_t capacity = 0;
	state_loader_init(&loader, share->store, share->problem, sizeof(share->problem));
	share->outcome = READ_OK;
	while(share->outcome == READ_OK && next_line(&share->lines, &line)){
		if(!more){
			share->outcome = NOT_OUR_LAYOUT;   /* an item after the last */
			break;
		}
		cJSON *item = parse_item(line, &more);
		if(item == NULL){
			share->outcome = NOT_OUR_LAYOUT;
			break;
		}
		struct previous_secret previous;
		struct token *token = state_parse_token(&loader, item, share->first_index + (int)share->count, &previous);
		cJSON_Delete(item);
		if(token && previous.token && !keep_previous(share, &previous)){
			snprintf(share->problem, sizeof(share->problem), "out of memory");
			token_free(token);
			token = NULL;
		}
		if(token && share->count == capacity){
			capacity = capacity ? 2 * capacity : 4096;
			struct token **grown = realloc(share->tokens, capacity * sizeof(*grown));
			if(grown == NULL){
				snprintf(share->problem, sizeof(share->problem), "out of memory");
				token_free(token);
				token = NULL;
			}else{
				share->tokens = grown;
			}
		}
		if(token == NULL){
			share->outcome = READ_INVALID;
			break;
		}
		share->tokens[share->count++] = token;
	}
	if(share->outcome == READ_OK && share->lines.at != share->lines.end){
		share->outcome = NOT_OUR_LAYOUT;   /* something after the last newline */
	}
	if(share->outcome == READ_OK && share->count > 0 && more == share->ends_the_array){
		share->outcome = NOT_OUR_LAYOUT;   /* a comma missing, or one too many at the end */
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

/* Parses the token lines in two halves at once, then adds them in order. */
static enum outcome read_tokens(struct text *text, struct state_loader *loader, char *problem, size_t problem_len)
{
	static const char tail[] = "]\n}\n";
	size_t size = (size_t)(text->end - text->at);
	if(size < sizeof(tail) - 1 || memcmp(text->end - (sizeof(tail) - 1), tail, sizeof(tail) - 1) != 0){
		return NOT_OUR_LAYOUT;
	}
	const char *lines_end = text->end - (sizeof(tail) - 1);
	/* The last token must end its own line, or a share would miss it. */
	if(lines_end > text->at && lines_end[-1] != '\n'){
		return NOT_OUR_LAYOUT;
	}
	const char *middle = text->at + (size_t)(lines_end - text->at) / 2;
	const char *split = memchr(middle, '\n', (size_t)(lines_end - middle));
	split = split ? split + 1 : lines_end;

	struct token_share shares[2] = {
		{.store = loader->store, .lines = {text->at, split}, .first_index = 0, .ends_the_array = split == lines_end},
		{.store = loader->store, .lines = {split, lines_end}, .ends_the_array = true},
	};
	shares[1].first_index = (int)count_lines(text->at, split);
	pthread_t helper;
	bool threaded = pthread_create(&helper, NULL, parse_share, &shares[1]) == 0;
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

static enum outcome read_layout(struct text text, struct store *store, int64_t *journal_sequence,
		char *problem, size_t problem_len)
{
	struct state_loader loader;
	state_loader_init(&loader, store, problem, problem_len);
	enum outcome outcome = read_header(&text, journal_sequence);
	if(outcome == READ_OK){
		outcome = read_roles(&text, &loader);
	}
	if(outcome == READ_OK){
		outcome = read_tokens(&text, &loader, problem, problem_len);
	}
	return outcome;
}

static bool read_document(const char *path, struct text text, struct store *store, int64_t *journal_sequence,
		char *error, size_t error_len)
{
	const char *parse_end = NULL;
	cJSON *document = cJSON_ParseWithLengthOpts(text.at, (size_t)(text.end - text.at), &parse_end, false);
	/* Only whitespace may follow the document. */
	while(document && parse_end < text.end
			&& (*parse_end == ' ' || *parse_end == '\t' || *parse_end == '\r' || *parse_end == '\n')){
		parse_end++;
	}
	if(document == NULL || parse_end != text.end){
		snprintf(error, error_len, "state file %s is not valid JSON (at byte %ld)",
				path, parse_end ? (long)(parse_end - text.at) : 0L);
		cJSON_Delete(document);
		return false;
	}
	char problem[512];
	struct state_loader loader;
	state_loader_init(&loader, store, problem, sizeof(problem));
	bool loaded = state_from_json(document, store, problem, sizeof(problem))
		&& state_check_header(&loader, document, journal_sequence);
	if(!loaded){
		snprintf(error, error_len, "state file %s: %s", path, problem);
		store_clear(store);
	}
	cJSON_Delete(document);
	return loaded;
}

bool snapshot_read(const char *path, struct store *store, int64_t *journal_sequence,
		char *error, size_t error_len)
{
	*journal_sequence = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if(fd < 0){
		snprintf(error, error_len, "cannot open state file %s: %s", path, strerror(errno));
		return errno == ENOENT;
	}
	struct stat info;
	if(fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)){
		snprintf(error, error_len, "state file %s is not a regular file", path);
		close(fd);
		return false;
	}
	if(info.st_size == 0){
		close(fd);
		snprintf(error, error_len, "state file %s is not valid JSON (it is empty)", path);
		return false;
	}
	void *map = mmap(NULL, (size_t)info.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if(map == MAP_FAILED){
		snprintf(error, error_len, "cannot read state file %s: %s", path, strerror(errno));
		return false;
	}
	struct text text = {map, (const char *)map + info.st_size};
	char problem[512];
	enum outcome outcome = read_layout(text, store, journal_sequence, problem, sizeof(problem));
	bool loaded = outcome == READ_OK;
	if(outcome == READ_INVALID){
		snprintf(error, error_len, "state file %s: %s", path, problem);
	}
	if(outcome != READ_OK){
		store_clear(store);
	}
	if(outcome == NOT_OUR_LAYOUT){
		loaded = read_document(path, text, store, journal_sequence, error, error_len);
	}
	munmap(map, (size_t)info.st_size);
	return loaded;
}
