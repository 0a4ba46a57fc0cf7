/*
 * Reading a command's fields. Each getter type-checks one field and, when
 * it is missing or wrong, fails the command with an error that names the
 * field and returns false. Optional getters leave *out untouched (the
 * caller's default) when the field is absent.
 */
#ifndef FIELDS_H
#define FIELDS_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "command.h"

/* A marker the request parser puts where a string held an escaped NUL, so
 * that cJSON (which would cut the string there) cannot hide it. 0xFF never
 * occurs in valid UTF-8. */
#define FIELD_NUL_MARKER '\xff'

bool field_string(struct command_context *context, const char *key, const char **out);
bool field_optional_string(struct command_context *context, const char *key, const char **out);
/* Exactly one of two string fields, as for a token named by hash or by
 * name: *key is the one given, *out its value. */
bool field_one_string_of(struct command_context *context, const char *first, const char *second,
		const char **key, const char **out);
bool field_optional_int(struct command_context *context, const char *key, int64_t min, int64_t max, int64_t *out);
bool field_time(struct command_context *context, const char *key, int64_t *out);
bool field_optional_time(struct command_context *context, const char *key, int64_t *out);
bool field_optional_array(struct command_context *context, const char *key, const cJSON **out);
/* A token or role name under NAME_MAX_CHARS / ROLENAME_MAX_CHARS rules. */
bool field_name(struct command_context *context, const char *key, size_t max_chars, const char **out);
/* An optional client id a token may be bound to (client_id_problem). */
bool field_optional_client_id(struct command_context *context, const char *key, const char **out);
/* Strings inside nested objects (ACLs in createRole) use these with the
 * object to read from. */
bool field_string_in(struct command_context *context, const cJSON *object, const char *key, const char **out);
bool field_bool_in(struct command_context *context, const cJSON *object, const char *key, bool *out);
bool field_optional_int_in(struct command_context *context, const cJSON *object, const char *key,
		int64_t min, int64_t max, int64_t *out);

#endif
