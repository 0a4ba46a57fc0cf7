/*
 * Field getters for command handlers. One place decides what "missing",
 * "not a string" and "holds a NUL" sound like, so every command speaks alike.
 */
#include <math.h>
#include <string.h>

#include "fields.h"
#include "rfc3339.h"
#include "store.h"

static bool is_present(const cJSON *object, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(object, key) != NULL;
}

bool field_string_in(struct command_context *context, const cJSON *object, const char *key, const char **out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
	if(item == NULL){
		return command_fail(context, CODE_INVALID, "Missing field '%s'", key);
	}
	if(!cJSON_IsString(item)){
		return command_fail(context, CODE_INVALID, "Field '%s' must be a string", key);
	}
	if(strchr(item->valuestring, FIELD_NUL_MARKER)){
		return command_fail(context, CODE_INVALID,
				"Field '%s' must not contain NUL characters or invalid UTF-8", key);
	}
	*out = item->valuestring;
	return true;
}

bool field_string(struct command_context *context, const char *key, const char **out)
{
	return field_string_in(context, context->command, key, out);
}

bool field_optional_string(struct command_context *context, const char *key, const char **out)
{
	return !is_present(context->command, key) || field_string(context, key, out);
}

bool field_one_string_of(struct command_context *context, const char *first, const char *second,
		const char **key, const char **out)
{
	bool has_first = is_present(context->command, first);
	if(has_first == is_present(context->command, second)){
		return command_fail(context, CODE_INVALID, "Give exactly one of the fields '%s' and '%s'", first, second);
	}
	*key = has_first ? first : second;
	return field_string(context, *key, out);
}

bool field_bool_in(struct command_context *context, const cJSON *object, const char *key, bool *out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
	if(item == NULL){
		return command_fail(context, CODE_INVALID, "Missing field '%s'", key);
	}
	if(!cJSON_IsBool(item)){
		return command_fail(context, CODE_INVALID, "Field '%s' must be true or false", key);
	}
	*out = cJSON_IsTrue(item);
	return true;
}

bool field_optional_int_in(struct command_context *context, const cJSON *object, const char *key,
		int64_t min, int64_t max, int64_t *out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
	if(item == NULL){
		return true;
	}
	if(!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble)){
		return command_fail(context, CODE_INVALID, "Field '%s' must be an integer", key);
	}
	if(item->valuedouble < (double)min || item->valuedouble > (double)max){
		return command_fail(context, CODE_INVALID, "Field '%s' must be between %lld and %lld",
				key, (long long)min, (long long)max);
	}
	*out = (int64_t)item->valuedouble;
	return true;
}

bool field_optional_int(struct command_context *context, const char *key, int64_t min, int64_t max, int64_t *out)
{
	return field_optional_int_in(context, context->command, key, min, max, out);
}

bool field_time(struct command_context *context, const char *key, int64_t *out)
{
	const char *text;
	if(!field_string(context, key, &text)){
		return false;
	}
	if(!rfc3339_parse(text, out)){
		return command_fail(context, CODE_INVALID,
				"Field '%s' must be an RFC 3339 time between 1970 and 9999, such as 2027-01-01T00:00:00Z", key);
	}
	return true;
}

bool field_optional_time(struct command_context *context, const char *key, int64_t *out)
{
	return !is_present(context->command, key) || field_time(context, key, out);
}

bool field_optional_array(struct command_context *context, const char *key, const cJSON **out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(context->command, key);
	if(item == NULL){
		return true;
	}
	if(!cJSON_IsArray(item)){
		return command_fail(context, CODE_INVALID, "Field '%s' must be an array", key);
	}
	*out = item;
	return true;
}

bool field_name(struct command_context *context, const char *key, size_t max_chars, const char **out)
{
	if(!field_string(context, key, out)){
		return false;
	}
	const char *problem = new_name_problem(*out, max_chars);
	if(problem){
		return command_fail(context, CODE_INVALID, "Field '%s' %s (1 to %zu characters, no control characters)",
				key, problem, max_chars);
	}
	return true;
}

bool field_optional_client_id(struct command_context *context, const char *key, const char **out)
{
	if(!is_present(context->command, key)){
		return true;
	}
	if(!field_string(context, key, out)){
		return false;
	}
	const char *problem = client_id_problem(*out);
	if(problem){
		return command_fail(context, CODE_INVALID, "Field '%s' %s (1 to %d bytes of UTF-8, no control characters, "
				"'+', '#' or '/')", key, problem, CLIENT_ID_MAX_BYTES);
	}
	return true;
}
