/*
 * `tokens list`: the one subcommand that talks to the broker itself. A
 * reply never exceeds plugin_opt_max_reply_bytes (1 MB by default), so a
 * large store cannot come in one reply: the list is asked for a page at a
 * time over the module's own connection (ctrl_session.h), gathered, and
 * printed as one table, as if it had come in one reply.
 *
 * The pager is separate from the connection so that the fuzzer can feed it
 * replies.
 */
#ifndef CTRL_LIST_H
#define CTRL_LIST_H

#include "ctrl_module.h"

struct list_options {
	const char *status;   /* NULL: the plugin's default, all */
	const char *role;     /* NULL: every role */
	const char *name_prefix;   /* NULL: every name */
	long count;           /* -1: every token */
	long offset;
};
/* False (with a message printed) on bad arguments. */
bool ctrl_parse_list_options(int argc, char *argv[], struct list_options *options);
bool ctrl_build_list(int argc, char *argv[], cJSON *command);
void ctrl_print_list(const cJSON *data);
char *ctrl_run_list(const struct subcommand *sub, int argc, char *argv[], const struct ctrl_options *connection);

/* A list being gathered page by page. */
struct list_pager {
	struct list_options options;
	struct token_rows *rows;
	long next_offset;     /* of the next page to ask for */
	long long total;      /* totalCount, as of the latest page */
	int page_size;
	unsigned page;        /* pages asked for, for correlationData */
};
enum page_outcome { PAGE_MORE, PAGE_LAST, PAGE_NOT_OURS, PAGE_ERROR };
/* False when out of memory. */
bool ctrl_list_pager_init(struct list_pager *pager, const struct list_options *options, int page_size);
void ctrl_list_pager_free(struct list_pager *pager);
/* The next page's request (malloc'd), or NULL when out of memory. */
char *ctrl_list_page_request(struct list_pager *pager);
/* Takes a reply to the latest page request: its rows are kept, or what went
 * wrong is printed (PAGE_ERROR); a reply to some other request is ignored. */
enum page_outcome ctrl_list_take_page(struct list_pager *pager, const char *payload, size_t length);

#endif
