/*
 * Shared pieces of the mosquitto_ctrl "tokens" module: each subcommand
 * turns its arguments into one control command (a cJSON object) and, when
 * the reply comes, prints the response's data.
 */
#ifndef CTRL_MODULE_H
#define CTRL_MODULE_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#define EXIT_USAGE 2

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
};

/* "30d", "12h", "45m", "2w", "90s" from now, or an RFC 3339 time; the
 * result is written as canonical UTC. False for anything else. */
bool ctrl_parse_valid_until(const char *text, int64_t now, char out[21]);
/* "30s", "10m", "12h", "30d", "2w" in seconds. */
bool ctrl_parse_duration(const char *text, int64_t *seconds);

/* Offline: creates a state file with an admin role and one admin token. */
int ctrl_init(int argc, char *argv[]);

/* The subcommand of that name, or NULL. */
const struct subcommand *ctrl_find_subcommand(const char *name);
/* The request for sub with its arguments (malloc'd JSON), or NULL (with a
 * message printed) on bad arguments. */
char *ctrl_request_payload(const struct subcommand *sub, int argc, char *argv[]);
/* Prints the broker's reply to sub's request: its data on stdout, or what
 * went wrong on stderr. Returns the exit status: 0, or 1 for an error
 * response or a reply that is not one. */
int ctrl_print_reply(const struct subcommand *sub, const void *payload, size_t length);

void ctrl_print_created_token(const cJSON *data);
void ctrl_print_token_table(const cJSON *data);
void ctrl_print_token(const cJSON *data);
void ctrl_print_revoked(const cJSON *data);
void ctrl_print_rotated(const cJSON *data);
void ctrl_print_role(const cJSON *data);
void ctrl_print_roles(const cJSON *data);

#endif
