/*
 * What a command handler sees: the command's JSON object, the response it
 * fills, who asked and when. Handlers report failure with command_fail and
 * success with command_reply. A handler that changes the store builds a
 * change (changes.h) from its checked fields and hands it to
 * command_apply: the store is touched only once the change is on disk,
 * and in the same way as when the journal is replayed.
 */
#ifndef COMMAND_H
#define COMMAND_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "instance.h"

enum command_code {
	CODE_INVALID,
	CODE_NOT_FOUND,
	CODE_EXISTS,
	CODE_IN_USE,
	CODE_LIMIT,
	CODE_STORAGE,
	CODE_INTERNAL,
};

struct command_context {
	struct tokens_plugin *plugin;
	const char *requester;
	int64_t now;
	const cJSON *command;
	cJSON *response;
	bool failed;
	/* Bytes the response may take in the reply (0: no limit): a command
	 * that lists things stops and fails with CODE_LIMIT past it. */
	int64_t reply_room;
	bool changed;        /* command_apply committed a change */
	bool behind;         /* a fleet member's change came first (fleet_member.h) */
};

/* How often a fleet member runs a command whose change another member's
 * beat, catching up between tries. */
#define FLEET_COMMAND_ATTEMPTS 5

typedef void (*command_handler)(struct command_context *context);

/* Sets the response's "error" (a sentence) and "code". Returns false so a
 * handler can write `return command_fail(...)` from a bool helper. */
bool command_fail(struct command_context *context, enum command_code code, const char *format, ...)
	__attribute__((format(printf, 3, 4)));
/* Attaches data (taken over) to the response; NULL data means out of memory. */
void command_reply(struct command_context *context, cJSON *data);
/* Records the change durably (journal.h), then applies it with
 * tokens_plugin_apply. On failure the response says why (code storage or
 * internal) and nothing has changed. Either way the caller releases the
 * change (change_release) once it has used what it needs for the reply. */
bool command_apply(struct command_context *context, struct change *change);
/* "tokens: <requester> | <command> | <details>" at notice level. */
void command_log_change(struct command_context *context, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

void command_create_token(struct command_context *context);
void command_list_tokens(struct command_context *context);
void command_get_token(struct command_context *context);
void command_revoke_token(struct command_context *context);
void command_rotate_token(struct command_context *context);
void command_create_role(struct command_context *context);
void command_get_role(struct command_context *context);
void command_list_roles(struct command_context *context);
void command_delete_role(struct command_context *context);
void command_add_role_acl(struct command_context *context);
void command_remove_role_acl(struct command_context *context);

#endif
