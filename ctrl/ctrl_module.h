/*
 * Shared pieces of the mosquitto_ctrl "tokens" module: each subcommand
 * turns its arguments into one control command (a cJSON object) and, when
 * the reply comes, prints the response's data. A subcommand with `run`
 * (list) talks to the broker itself instead, over its own connection.
 */
#ifndef CTRL_MODULE_H
#define CTRL_MODULE_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "control_topics.h"
#include "rfc3339.h"
#include "store.h"
#include "token_format.h"

#define EXIT_USAGE 2

struct mosq_ctrl;
struct ctrl_options;

/* The module's entry point, which mosquitto_ctrl looks up by name: 0 to
 * have mosquitto_ctrl send the request handed to it, negative when done
 * without connecting. */
int ctrl_main(int argc, char *argv[], struct mosq_ctrl *ctrl);

struct subcommand {
	const char *name;
	const char *command;     /* the control command it sends */
	const char *usage;       /* arguments, for the help text */
	int min_args;
	int max_args;
	/* Adds the command's fields; false (with a message printed) on bad arguments. */
	bool (*build)(int argc, char *argv[], cJSON *command);
	/* Prints a successful response's data (NULL when there is none). */
	void (*print)(const cJSON *data);
	/* NULL, or runs the subcommand itself (arguments already counted; it
	 * exits on failure): NULL when done, or the one request (malloc'd) for
	 * mosquitto_ctrl to send when it cannot do more here. */
	char *(*run)(const struct subcommand *sub, int argc, char *argv[], const struct ctrl_options *connection);
};

/* "30d", "12h", "45m", "2w", "90s" from now, or an RFC 3339 time; the
 * result is written as canonical UTC. False for anything else. */
bool ctrl_parse_valid_until(const char *text, int64_t now, char out[RFC3339_LEN + 1]);
/* "30s", "10m", "12h", "30d", "2w" in seconds. */
bool ctrl_parse_duration(const char *text, int64_t *seconds);

/* ---- offline: no broker, a state file or the fleet's database ---- */

#define CTRL_ADMIN_ROLE "admin"

/* Creates a state file with an admin role and one admin token (or, given
 * <postgres>, fills the database's store with them: ctrl_init_postgres). */
int ctrl_init(int argc, char *argv[]);
/* A state file into an empty database store, and back (ctrl_fleet.c). */
int ctrl_import(int argc, char *argv[]);
int ctrl_export(int argc, char *argv[]);

/* What init makes: the admin role and the first admin token in store,
 * and the token's secret, shown once. */
struct admin_init {
	const char *name;
	char valid_until[RFC3339_LEN + 1];
	int64_t valid_until_time;
	char secret[TOKEN_LEN + 1];
	unsigned char hash[TOKEN_HASH_LEN];
	struct store store;
};
/* Checks the name and the validity (NULL: the default), makes the secret
 * and the store: 0, or the exit status with the problem printed. Call
 * ctrl_admin_init_clear in either case. */
int ctrl_admin_init_make(struct admin_init *made, const char *name, const char *validity);
/* Frees the store and wipes the secret. */
void ctrl_admin_init_clear(struct admin_init *made);
/* The hash, the validity and the secret, as init prints them. */
void ctrl_print_admin_secret(const struct admin_init *made);
void ctrl_print_manage_hint(const char *name);
/* Creates path (0600, never an existing file or link), printing why not;
 * command names the refusing command. */
bool ctrl_claim_new_file(const char *path, const char *command);
/* Writes store as the state file path (claimed), with the plugin's own
 * persist_save: 0, or 1 with the error printed and path removed. */
int ctrl_write_state(const char *path, const struct store *store);

/* True when init's arguments name the database: --postgres '<conninfo>'
 * or a postgresql:// or postgres:// URI first. */
bool ctrl_targets_postgres(int argc, char *argv[]);
int ctrl_init_postgres(int argc, char *argv[]);

/* The subcommand of that name, or NULL. */
const struct subcommand *ctrl_find_subcommand(const char *name);
/* The request for sub with its arguments (malloc'd JSON), or NULL (with a
 * message printed) on bad arguments. */
char *ctrl_request_payload(const struct subcommand *sub, int argc, char *argv[]);
/* Prints the broker's reply to sub's request: its data on stdout, or what
 * went wrong on stderr. Returns the exit status: 0, or 1 for an error
 * response or a reply that is not one. */
int ctrl_print_reply(const struct subcommand *sub, const void *payload, size_t length);

/* The first response of a parsed reply, or NULL if it is not a tokens reply. */
const cJSON *ctrl_reply_response(const cJSON *reply);
/* Prints a response's error as every subcommand does; false if it has none. */
bool ctrl_print_response_error(const cJSON *response);
void ctrl_print_not_a_reply(const cJSON *reply);

/* ---- token rows gathered from several replies, printed as one table ---- */
struct token_rows;
struct token_rows *ctrl_token_rows_new(void);
/* False when out of memory (the rows added so far stay). */
bool ctrl_token_rows_add(struct token_rows *rows, const cJSON *tokens);
long long ctrl_token_rows_count(const struct token_rows *rows);
void ctrl_token_rows_print(const struct token_rows *rows, long long total);
void ctrl_token_rows_free(struct token_rows *rows);

void ctrl_print_created_token(const cJSON *data);
void ctrl_print_token_table(const cJSON *data);
void ctrl_print_token(const cJSON *data);
void ctrl_print_revoked(const cJSON *data);
void ctrl_print_rotated(const cJSON *data);
void ctrl_print_role(const cJSON *data);
void ctrl_print_roles(const cJSON *data);

#endif
