/*
 * `tokens list [--status S] [--role R] [--name-prefix P] [--count N] [--offset N]`
 * (see ctrl_list.h). The filters are the plugin's (listTokens' status, role
 * and namePrefix): each page is asked for with them, so --count and
 * --offset count the tokens that pass them.
 *
 * mosquitto_ctrl makes one request per run and hands the module the first
 * reply, and a reply holds at most plugin_opt_max_reply_bytes (1 MB by
 * default). So the module connects by itself (ctrl_session.c, configured
 * by mosquitto_ctrl's own functions) and asks for LIST_PAGE_TOKENS tokens at a
 * time, from --offset on, until it has --count tokens or totalCount, or a
 * page comes back empty. The rows are kept as text and printed as one
 * table at the end, so the columns line up as they did for one reply.
 *
 * Pages are asked for by offset: a token revoked while the list is being
 * read shifts the later ones by one, and one of them may be missed. New
 * tokens sort last (issuedAt is now), so they do not disturb it.
 *
 * A mosquitto_ctrl without client_opts_set and client_connect gets one
 * request with a count, and a note when more tokens exist.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrl_list.h"
#include "ctrl_session.h"

/* A token's metadata is about 400 bytes: 500 of them are a fifth of the
 * default reply limit, and 1.2 million tokens take 2,400 round trips. */
#define LIST_PAGE_TOKENS 500
/* As long as mosquitto_ctrl waits for its one reply. */
#define REPLY_WAIT_MS 10000
/* "list-page-" and any page number. */
#define PAGE_CORRELATION_BYTES 32

/* ---- arguments ---- */

static bool parse_count(const char *option, const char *text, int minimum, long *out)
{
	char *end;
	long value = strtol(text, &end, 10);
	/* The most listTokens takes for count and offset. */
	if(end == text || *end != '\0' || value < minimum || value > INT32_MAX){
		fprintf(stderr, "Error: %s needs a whole number of at least %d, not \"%s\"\n", option, minimum, text);
		return false;
	}
	*out = value;
	return true;
}

bool ctrl_parse_list_options(int argc, char *argv[], struct list_options *options)
{
	*options = (struct list_options){.status = NULL, .role = NULL, .name_prefix = NULL, .count = -1, .offset = 0};
	for(int i = 0; i < argc; i += 2){
		if(i + 1 >= argc){
			fprintf(stderr, "Error: %s needs a value\n", argv[i]);
			return false;
		}
		const char *value = argv[i + 1];
		if(strcmp(argv[i], "--status") == 0){
			if(strcmp(value, "valid") && strcmp(value, "invalid") && strcmp(value, "all")){
				fprintf(stderr, "Error: --status is valid, invalid or all, not \"%s\"\n", value);
				return false;
			}
			options->status = value;
		}else if(strcmp(argv[i], "--role") == 0){
			/* An unknown role lists nothing; an empty one is no role name at all. */
			if(value[0] == '\0'){
				fprintf(stderr, "Error: --role needs a role name, not \"\"\n");
				return false;
			}
			options->role = value;
		}else if(strcmp(argv[i], "--name-prefix") == 0){
			options->name_prefix = value;   /* "" is a prefix of every name */
		}else if(strcmp(argv[i], "--count") == 0){
			if(!parse_count("--count", value, 1, &options->count)) return false;
		}else if(strcmp(argv[i], "--offset") == 0){
			if(!parse_count("--offset", value, 0, &options->offset)) return false;
		}else{
			fprintf(stderr, "Error: unknown option \"%s\"\n", argv[i]);
			return false;
		}
	}
	return true;
}

static bool add_list_fields(cJSON *command, const struct list_options *options, long count, long offset)
{
	return (options->status == NULL || cJSON_AddStringToObject(command, "status", options->status))
		&& (options->role == NULL || cJSON_AddStringToObject(command, "role", options->role))
		&& (options->name_prefix == NULL || cJSON_AddStringToObject(command, "namePrefix", options->name_prefix))
		&& (count < 0 || cJSON_AddNumberToObject(command, "count", (double)count))
		&& (offset == 0 || cJSON_AddNumberToObject(command, "offset", (double)offset));
}

/* The fields as the user gave them, for the request of one reply. */
bool ctrl_build_list(int argc, char *argv[], cJSON *command)
{
	struct list_options options;
	return ctrl_parse_list_options(argc, argv, &options)
		&& add_list_fields(command, &options, options.count, options.offset);
}

/* ---- the pager ---- */

bool ctrl_list_pager_init(struct list_pager *pager, const struct list_options *options, int page_size)
{
	*pager = (struct list_pager){
		.options = *options, .next_offset = options->offset, .page_size = page_size,
	};
	pager->rows = ctrl_token_rows_new();
	return pager->rows != NULL;
}

void ctrl_list_pager_free(struct list_pager *pager)
{
	ctrl_token_rows_free(pager->rows);
	pager->rows = NULL;
}

static void page_correlation(const struct list_pager *pager, char out[PAGE_CORRELATION_BYTES])
{
	snprintf(out, PAGE_CORRELATION_BYTES, "list-page-%u", pager->page);
}

/* Tokens still wanted by --count, capped at a page. */
static long page_count(const struct list_pager *pager)
{
	long count = pager->page_size;
	if(pager->options.count >= 0){
		long long left = pager->options.count - ctrl_token_rows_count(pager->rows);
		if(left < count) count = left > 1 ? (long)left : 1;
	}
	return count;
}

/* {"commands": [{"command": "listTokens", ...}]}, malloc'd; NULL when out of memory. */
static char *list_request(const struct list_options *options, long count, long offset, const char *correlation)
{
	cJSON *request = cJSON_CreateObject();
	cJSON *commands = cJSON_AddArrayToObject(request, "commands");
	cJSON *command = cJSON_CreateObject();
	char *payload = NULL;
	if(commands && command && cJSON_AddItemToArray(commands, command)){
		if(cJSON_AddStringToObject(command, "command", "listTokens")
				&& (correlation == NULL || cJSON_AddStringToObject(command, "correlationData", correlation))
				&& add_list_fields(command, options, count, offset)){
			payload = cJSON_PrintUnformatted(request);
		}
	}else{
		cJSON_Delete(command);
	}
	cJSON_Delete(request);
	return payload;
}

char *ctrl_list_page_request(struct list_pager *pager)
{
	char correlation[PAGE_CORRELATION_BYTES];
	pager->page++;
	page_correlation(pager, correlation);
	return list_request(&pager->options, page_count(pager), pager->next_offset, correlation);
}

/* A response that names another request's correlationData is not ours;
 * one without any is (an error about the request as a whole may lack it). */
static bool answers_latest(const struct list_pager *pager, const cJSON *response)
{
	const cJSON *correlation = cJSON_GetObjectItemCaseSensitive(response, "correlationData");
	char expected[PAGE_CORRELATION_BYTES];
	page_correlation(pager, expected);
	return !cJSON_IsString(correlation) || strcmp(correlation->valuestring, expected) == 0;
}

static enum page_outcome take_data(struct list_pager *pager, const cJSON *data)
{
	const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(data, "tokens");
	const cJSON *total = cJSON_GetObjectItemCaseSensitive(data, "totalCount");
	if(!cJSON_IsArray(tokens) || !cJSON_IsNumber(total) || !(total->valuedouble >= 0)
			|| total->valuedouble > (double)INT32_MAX){
		ctrl_print_not_a_reply(NULL);
		return PAGE_ERROR;
	}
	if(!ctrl_token_rows_add(pager->rows, tokens)){
		fprintf(stderr, "Error: out of memory after %lld tokens\n", ctrl_token_rows_count(pager->rows));
		return PAGE_ERROR;
	}
	int received = cJSON_GetArraySize(tokens);
	pager->next_offset += received;
	pager->total = (long long)total->valuedouble;
	bool counted = pager->options.count >= 0 && ctrl_token_rows_count(pager->rows) >= pager->options.count;
	return received == 0 || pager->next_offset >= pager->total || counted ? PAGE_LAST : PAGE_MORE;
}

/* A page too large for the broker's reply limit (plugin_opt_max_reply_bytes
 * set low, or long requester names) is asked for again, half as large. */
static bool halved_after_limit(struct list_pager *pager, const cJSON *response)
{
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(response, "code");
	if(!cJSON_IsString(code) || strcmp(code->valuestring, "limit") != 0 || pager->page_size <= 1){
		return false;
	}
	pager->page_size /= 2;
	return true;
}

enum page_outcome ctrl_list_take_page(struct list_pager *pager, const char *payload, size_t length)
{
	cJSON *reply = cJSON_ParseWithLength(payload, length);
	const cJSON *response = ctrl_reply_response(reply);
	enum page_outcome outcome;
	if(response == NULL){
		ctrl_print_not_a_reply(reply);
		outcome = PAGE_ERROR;
	}else if(!answers_latest(pager, response)){
		outcome = PAGE_NOT_OURS;
	}else if(halved_after_limit(pager, response)){
		outcome = PAGE_MORE;
	}else if(ctrl_print_response_error(response)){
		outcome = PAGE_ERROR;
	}else{
		outcome = take_data(pager, cJSON_GetObjectItemCaseSensitive(response, "data"));
	}
	cJSON_Delete(reply);
	return outcome;
}

/* ---- over the module's own connection ---- */

static const char *what_happened(enum ctrl_wait wait)
{
	switch(wait){
		case CTRL_UNREACHABLE: return "could not connect to it";
		case CTRL_REFUSED: return "it refused the login";
		case CTRL_NOT_SUBSCRIBED: return "this client may not subscribe to " RESPONSE_TOPIC;
		case CTRL_NOT_PUBLISHED: return "this client may not publish to " CONTROL_TOPIC;
		case CTRL_LOST: return "it closed the connection";
		case CTRL_NO_MEMORY: return "out of memory";
		default: return "no reply in time";
	}
}

/* Why the first request got nothing: mosquitto_ctrl's old catch-all only
 * when nothing at all answered. */
static void say_no_first_reply(enum ctrl_wait wait, const char *broker)
{
	if(wait != CTRL_TIMEOUT){
		fprintf(stderr, "Error: no reply from the broker at %s: %s.\n", broker, what_happened(wait));
		return;
	}
	fprintf(stderr, "Error: no reply from the broker at %s within %d s. Is the mosquitto_tokens plugin loaded, "
			"and may this client publish to %s and subscribe to %s?\n",
			broker, REPLY_WAIT_MS / 1000, CONTROL_TOPIC, RESPONSE_TOPIC);
}

/* The broker answered before: this page's silence is not a missing plugin. */
static void say_no_later_reply(enum ctrl_wait wait, const char *broker, const struct list_pager *pager)
{
	long long have = ctrl_token_rows_count(pager->rows);
	if(wait == CTRL_TIMEOUT){
		fprintf(stderr, "Error: the broker at %s did not answer the request for the tokens from offset %ld "
				"within %d s (%lld of %lld tokens had come); nothing is printed\n",
				broker, pager->next_offset, REPLY_WAIT_MS / 1000, have, pager->total);
	}else{
		fprintf(stderr, "Error: the list stopped after %lld of %lld tokens from the broker at %s: %s; "
				"nothing is printed\n", have, pager->total, broker, what_happened(wait));
	}
}

/* Asks for the next page and waits for its answer. */
static enum ctrl_wait fetch_page(struct ctrl_session *session, struct list_pager *pager, int64_t deadline,
		enum page_outcome *outcome)
{
	char *request = ctrl_list_page_request(pager);
	if(request == NULL){
		return CTRL_NO_MEMORY;
	}
	enum ctrl_wait wait = ctrl_session_publish(session, CONTROL_TOPIC, request);
	free(request);
	*outcome = PAGE_NOT_OURS;
	while(wait == CTRL_REPLY && *outcome == PAGE_NOT_OURS){
		const char *reply;
		size_t length;
		wait = ctrl_session_wait(session, deadline, &reply, &length);
		if(wait == CTRL_REPLY){
			*outcome = ctrl_list_take_page(pager, reply, length);
		}
	}
	return wait;
}

/* Exit status: 0 with the table printed, 1 with the error printed. */
static int list_in_pages(struct ctrl_session *session, struct list_pager *pager)
{
	enum page_outcome outcome = PAGE_MORE;
	bool first = true;
	int64_t deadline = ctrl_now_ms() + REPLY_WAIT_MS;
	enum ctrl_wait wait = ctrl_session_connect(session, RESPONSE_TOPIC, deadline);
	while(wait == CTRL_REPLY && outcome == PAGE_MORE){
		wait = fetch_page(session, pager, deadline, &outcome);
		if(wait != CTRL_REPLY){
			if(first) say_no_first_reply(wait, ctrl_session_broker(session));
			else say_no_later_reply(wait, ctrl_session_broker(session), pager);
			return 1;
		}
		first = false;
		deadline = ctrl_now_ms() + REPLY_WAIT_MS;
	}
	if(wait != CTRL_REPLY){
		say_no_first_reply(wait, ctrl_session_broker(session));
		return 1;
	}
	if(outcome == PAGE_ERROR){
		return 1;
	}
	ctrl_token_rows_print(pager->rows, pager->total);
	return 0;
}

static int list_over_own_connection(const struct ctrl_options *connection, const struct list_options *options)
{
	struct list_pager pager;
	struct ctrl_session *session = NULL;
	int status = 1;
	if(!ctrl_list_pager_init(&pager, options, LIST_PAGE_TOKENS) || (session = ctrl_session_new(connection)) == NULL){
		fprintf(stderr, "Error: out of memory\n");
	}else{
		status = list_in_pages(session, &pager);
	}
	ctrl_session_free(session);
	ctrl_list_pager_free(&pager);
	fflush(stdout);
	return status;
}

/* ---- one reply, when mosquitto_ctrl cannot host a session ---- */

/* Set when the one request carried a count the user did not ask for. */
static const struct list_options *capped_list;

void ctrl_print_list(const cJSON *data)
{
	ctrl_print_token_table(data);
	const cJSON *total = cJSON_GetObjectItemCaseSensitive(data, "totalCount");
	long long shown = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(data, "tokens"));
	if(capped_list && cJSON_IsNumber(total) && capped_list->offset + shown < total->valuedouble){
		fprintf(stderr, "Note: this mosquitto_ctrl lacks client_opts_set and client_connect, which the module "
				"needs to page through the list by itself: only %d tokens at a time are shown. "
				"For the next ones: tokens list --offset %lld\n", LIST_PAGE_TOKENS, capped_list->offset + shown);
	}
}

/* The one request, with a count when the user gave none. */
static char *list_in_one_reply(const struct list_options *options)
{
	static struct list_options capped;
	capped = *options;
	if(capped.count < 0){
		capped.count = LIST_PAGE_TOKENS;
		capped_list = &capped;
	}
	char *payload = list_request(&capped, capped.count, capped.offset, NULL);
	if(payload == NULL){
		fprintf(stderr, "Error: out of memory\n");
		exit(1);
	}
	return payload;
}

char *ctrl_run_list(const struct subcommand *sub, int argc, char *argv[], const struct ctrl_options *connection)
{
	(void)sub;
	struct list_options options;
	if(!ctrl_parse_list_options(argc, argv, &options)){
		exit(EXIT_USAGE);
	}
	if(!ctrl_session_available()){
		return list_in_one_reply(&options);
	}
	int status = list_over_own_connection(connection, &options);
	if(status != 0){
		exit(status);
	}
	return NULL;
}
