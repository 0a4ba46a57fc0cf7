/*
 * libFuzzer harness for the mosquitto_ctrl module: the words after
 * `mosquitto_ctrl tokens`, one a line, then an empty line, then the reply
 * the broker sends back:
 *
 *     rotate
 *     boiler-7
 *     --grace
 *     10m
 *
 *     {"responses": [{"command": "rotateToken", "data": {...}}]}
 *
 * The arguments are turned into a request as the module would send it (it
 * must then be one JSON command); the reply is printed as the module would
 * print it (to /dev/null), whatever the subcommand, and taken twice as a
 * page of `tokens list` (gathered rows, then the table). A reply comes from
 * the network: no reply may crash the module, leak or read out of bounds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "ctrl_list.h"

#define MAX_WORDS 8

static const char *const subcommand_names[] = {
	"create", "list", "get", "revoke", "rotate", "createRole", "getRole", "listRoles", "deleteRole",
	"addRoleACL", "removeRoleACL",
};
#define SUBCOMMAND_COUNT (sizeof(subcommand_names) / sizeof(subcommand_names[0]))

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* What the module prints is not what is checked here. */
	if(freopen("/dev/null", "w", stdout) == NULL){
		abort();
	}
	return 0;
}

/* Splits text (modified) into at most MAX_WORDS lines. */
static int split_words(char *text, char *words[MAX_WORDS])
{
	int count = 0;
	for(char *line = text; line && count < MAX_WORDS; count++){
		words[count] = line;
		line = strchr(line, '\n');
		if(line){
			*line++ = '\0';
		}
	}
	return count;
}

static void check_one_command(char *payload)
{
	cJSON *request = cJSON_Parse(payload);
	const cJSON *commands = cJSON_GetObjectItemCaseSensitive(request, "commands");
	if(cJSON_GetArraySize(commands) != 1){
		fprintf(stderr, "the module built a request that is not one command: %s\n", payload);
		abort();
	}
	cJSON_Delete(request);
	free(payload);
}

static void check_request(const struct subcommand *sub, int argc, char *argv[])
{
	char *payload = ctrl_request_payload(sub, argc, argv);
	if(payload == NULL){
		return;   /* refused arguments */
	}
	check_one_command(payload);
	struct list_options options;
	if(strcmp(sub->name, "list") == 0 && ctrl_parse_list_options(argc, argv, &options)){
		struct list_pager pager;
		if(!ctrl_list_pager_init(&pager, &options, 500)){
			abort();
		}
		char *page = ctrl_list_page_request(&pager);
		if(page == NULL){
			abort();
		}
		check_one_command(page);
		ctrl_list_pager_free(&pager);
	}
}

/* The reply as two pages of a list: the first page's request is the one
 * answered, so a reply without correlationData counts. */
static void check_pages(const uint8_t *reply, size_t length)
{
	struct list_options options = {.status = NULL, .count = -1, .offset = 0};
	struct list_pager pager;
	if(!ctrl_list_pager_init(&pager, &options, 500)){
		abort();
	}
	enum page_outcome outcome = PAGE_MORE;
	for(int page = 0; page < 2 && outcome == PAGE_MORE; page++){
		free(ctrl_list_page_request(&pager));
		outcome = ctrl_list_take_page(&pager, (const char *)reply, length);
	}
	if(outcome == PAGE_MORE || outcome == PAGE_LAST){
		ctrl_token_rows_print(pager.rows, pager.total);
	}
	ctrl_list_pager_free(&pager);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *blank = memmem(data, size, "\n\n", 2);
	size_t words_length = blank ? (size_t)(blank - data) : 0;
	const uint8_t *reply = blank ? blank + 2 : data;
	size_t reply_length = size - (size_t)(reply - data);

	char *text = malloc(words_length + 1);
	if(text == NULL){
		abort();
	}
	memcpy(text, data, words_length);
	text[words_length] = '\0';
	char *words[MAX_WORDS];
	int count = blank && strlen(text) == words_length ? split_words(text, words) : 0;
	const struct subcommand *named = count > 0 ? ctrl_find_subcommand(words[0]) : NULL;
	if(named && count - 1 >= named->min_args && count - 1 <= named->max_args){
		check_request(named, count - 1, words + 1);
	}
	free(text);

	for(size_t i = 0; i < SUBCOMMAND_COUNT; i++){
		const struct subcommand *sub = ctrl_find_subcommand(subcommand_names[i]);
		if(sub == NULL){
			abort();
		}
		(void)ctrl_print_reply(sub, reply, reply_length);
	}
	check_pages(reply, reply_length);
	return 0;
}
