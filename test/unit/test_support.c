/*
 * See test_support.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/sha.h>

#include "invariants.h"
#include "control.h"
#include "metadata_json.h"
#include "rfc3339.h"
#include "state_format.h"
#include "test_support.h"

/* ---- formatting ---- */

char *test_format(const char *format, ...)
{
	va_list args;
	va_start(args, format);
	int length = vsnprintf(NULL, 0, format, args);
	va_end(args);
	assert_true(length >= 0);
	char *text = malloc((size_t)length + 1);
	assert_non_null(text);
	va_start(args, format);
	vsnprintf(text, (size_t)length + 1, format, args);
	va_end(args);
	return text;
}

/* ---- fake clock ---- */

static int64_t clock_seconds;

void test_clock_set(int64_t seconds)
{
	clock_seconds = seconds;
}

void test_clock_advance(int64_t seconds)
{
	clock_seconds += seconds;
}

int64_t test_clock_now(void)
{
	return clock_seconds;
}

int64_t test_time(const char *rfc3339)
{
	int64_t seconds = -1;
	if(!rfc3339_parse(rfc3339, &seconds)){
		fail_msg("test fixture: \"%s\" is not an RFC 3339 time", rfc3339);
	}
	return seconds;
}

/* ---- captured log ---- */

#define LOG_MAX_LINES 1024
#define LOG_MAX_TEXT (256 * 1024)

static char *log_lines[LOG_MAX_LINES];
static int log_levels[LOG_MAX_LINES];
static size_t log_line_count;
static char log_text[LOG_MAX_TEXT];
static size_t log_text_length;

void test_log(int level, const char *format, ...)
{
	char line[4096];
	va_list args;
	va_start(args, format);
	vsnprintf(line, sizeof(line), format, args);
	va_end(args);

	if(log_line_count >= LOG_MAX_LINES || log_text_length + strlen(line) + 2 > LOG_MAX_TEXT){
		fail_msg("test log buffer is full");
	}
	log_lines[log_line_count] = strdup(line);
	assert_non_null(log_lines[log_line_count]);
	log_levels[log_line_count] = level;
	log_line_count++;
	log_text_length += (size_t)snprintf(log_text + log_text_length, LOG_MAX_TEXT - log_text_length, "%s\n", line);
}

void test_log_reset(void)
{
	for(size_t i = 0; i < log_line_count; i++){
		free(log_lines[i]);
		log_lines[i] = NULL;
	}
	log_line_count = 0;
	log_text_length = 0;
	log_text[0] = '\0';
}

const char *test_log_text(void)
{
	return log_text;
}

size_t test_log_count(void)
{
	return log_line_count;
}

const char *test_log_line(size_t index)
{
	assert_true(index < log_line_count);
	return log_lines[index];
}

int test_log_level(size_t index)
{
	assert_true(index < log_line_count);
	return log_levels[index];
}

int test_log_find(const char *prefix)
{
	for(size_t i = 0; i < log_line_count; i++){
		if(strncmp(log_lines[i], prefix, strlen(prefix)) == 0){
			return (int)i;
		}
	}
	return -1;
}

/* ---- temporary folders and files ---- */

char *test_temp_dir(void)
{
	const char *base = getenv("TMPDIR");
	char *template = test_format("%s/mosquitto-tokens-test.XXXXXX", base && base[0] ? base : "/tmp");
	if(mkdtemp(template) == NULL){
		fail_msg("mkdtemp(%s): %s", template, strerror(errno));
	}
	return template;
}

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
	(void)info;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void test_remove_dir(const char *dir)
{
	if(dir && nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT){
		fail_msg("cannot remove %s: %s", dir, strerror(errno));
	}
}

char *test_path(const char *dir, const char *name)
{
	return test_format("%s/%s", dir, name);
}

void test_write_file(const char *path, const char *content, size_t length)
{
	FILE *file = fopen(path, "wb");
	if(file == NULL){
		fail_msg("cannot create %s: %s", path, strerror(errno));
	}
	assert_int_equal(fwrite(content, 1, length, file), length);
	assert_int_equal(fclose(file), 0);
}

char *test_read_file(const char *path, size_t *length)
{
	FILE *file = fopen(path, "rb");
	if(file == NULL){
		if(errno == ENOENT){
			return NULL;
		}
		fail_msg("cannot open %s: %s", path, strerror(errno));
	}
	size_t capacity = 4096, used = 0;
	char *content = malloc(capacity);
	assert_non_null(content);
	for(;;){
		used += fread(content + used, 1, capacity - used - 1, file);
		if(used < capacity - 1){
			break;
		}
		capacity *= 2;
		content = realloc(content, capacity);
		assert_non_null(content);
	}
	assert_int_equal(ferror(file), 0);
	fclose(file);
	content[used] = '\0';
	if(length){
		*length = used;
	}
	return content;
}

char *test_read_existing(const char *path, size_t *length)
{
	char *content = test_read_file(path, length);
	if(content == NULL){
		fail_msg("%s does not exist", path);
	}
	return content;
}

cJSON *test_read_json(const char *path)
{
	char *text = test_read_existing(path, NULL);
	cJSON *document = cJSON_Parse(text);
	free(text);
	if(document == NULL){
		fail_msg("%s is not JSON", path);
	}
	return document;
}

bool test_file_exists(const char *path)
{
	struct stat info;
	return lstat(path, &info) == 0;
}

size_t test_count_entries_containing(const char *dir, const char *fragment)
{
	DIR *folder = opendir(dir);
	if(folder == NULL){
		fail_msg("cannot open folder %s: %s", dir, strerror(errno));
	}
	size_t count = 0;
	const struct dirent *entry;
	while((entry = readdir(folder)) != NULL){
		if(strstr(entry->d_name, fragment)){
			count++;
		}
	}
	closedir(folder);
	return count;
}

void test_snapshot_take(struct test_snapshot *snapshot, const char *path)
{
	snapshot->content = test_read_file(path, &snapshot->length);
	snapshot->exists = snapshot->content != NULL;
	if(!snapshot->exists){
		snapshot->length = 0;
	}
}

void test_snapshot_assert_unchanged(const struct test_snapshot *snapshot, const char *path)
{
	size_t length = 0;
	char *content = test_read_file(path, &length);
	if(!snapshot->exists){
		if(content){
			free(content);
			fail_msg("%s was created (it did not exist before)", path);
		}
		return;
	}
	if(content == NULL){
		fail_msg("%s was removed", path);
	}
	bool same = length == snapshot->length && memcmp(content, snapshot->content, length) == 0;
	free(content);
	if(!same){
		fail_msg("%s changed (%zu bytes before, %zu now)", path, snapshot->length, length);
	}
}

void test_snapshot_free(struct test_snapshot *snapshot)
{
	free(snapshot->content);
	snapshot->content = NULL;
}

/* ---- persist I/O that fails on demand ---- */

int test_io_calls;

static ssize_t write_enospc(int fd, const void *buffer, size_t count)
{
	(void)fd;
	(void)buffer;
	(void)count;
	test_io_calls++;
	errno = ENOSPC;
	return -1;
}

static int fsync_eio(int fd)
{
	(void)fd;
	test_io_calls++;
	errno = EIO;
	return -1;
}

static int rename_eacces(const char *from, const char *to)
{
	(void)from;
	(void)to;
	test_io_calls++;
	errno = EACCES;
	return -1;
}

static ssize_t write_one_byte(int fd, const void *buffer, size_t count)
{
	test_io_calls++;
	return write(fd, buffer, count > 0 ? 1 : 0);
}

static int unlink_eio(const char *path)
{
	(void)path;
	test_io_calls++;
	errno = EIO;
	return -1;
}

const struct persist_io test_io_write_enospc = {.write = write_enospc, .fsync = fsync, .rename = rename,
	.unlink = unlink};
const struct persist_io test_io_fsync_eio = {.write = write, .fsync = fsync_eio, .rename = rename, .unlink = unlink};
const struct persist_io test_io_rename_eacces = {.write = write, .fsync = fsync, .rename = rename_eacces,
	.unlink = unlink};
const struct persist_io test_io_short_writes = {.write = write_one_byte, .fsync = fsync, .rename = rename,
	.unlink = unlink};
const struct persist_io test_io_unlink_eio = {.write = write, .fsync = fsync, .rename = rename, .unlink = unlink_eio};

/* ---- a persist backend in a temporary folder ---- */

int test_persist_setup(void **state)
{
	struct persist_fixture *fixture = calloc(1, sizeof(*fixture));
	assert_non_null(fixture);
	fixture->dir = test_temp_dir();
	fixture->path = test_path(fixture->dir, "tokens.json");
	fixture->journal_path = test_path(fixture->dir, "tokens.json.journal");
	fixture->persist = persist_open(fixture->path, fixture->error, sizeof(fixture->error));
	if(fixture->persist == NULL){
		fail_msg("persist_open: %s", fixture->error);
	}
	store_init(&fixture->store);
	test_io_calls = 0;
	*state = fixture;
	return 0;
}

int test_persist_teardown(void **state)
{
	struct persist_fixture *fixture = *state;
	store_clear(&fixture->store);
	persist_close(fixture->persist);
	test_remove_dir(fixture->dir);
	free(fixture->dir);
	free(fixture->path);
	free(fixture->journal_path);
	free(fixture);
	return 0;
}

/* ---- store builders ---- */

struct role *test_add_role(struct store *store, const char *name)
{
	struct role *role = role_new(name);
	assert_non_null(role);
	store_link_role(store, role);
	return role;
}

struct role_acl *test_add_acl(struct role *role, enum acl_type type, const char *topic, int priority, bool allow)
{
	struct role_acl *acl = role_acl_new(type, topic, priority, allow);
	assert_non_null(acl);
	role_link_acl(role, acl);
	return acl;
}

void test_hash_of(const char *text, unsigned char hash[TOKEN_HASH_LEN])
{
	SHA256((const unsigned char *)text, strlen(text), hash);
}

struct token *test_add_token(struct store *store, const char *name, struct role *role,
		int64_t issued_at, int64_t valid_until, int64_t last_used)
{
	unsigned char hash[TOKEN_HASH_LEN];
	char *secret = test_format("secret-of-%s", name);
	test_hash_of(secret, hash);
	free(secret);
	struct token *token = token_new(name, "tester", hash, issued_at, valid_until, last_used);
	assert_non_null(token);
	store_link_token(store, token, role);
	return token;
}

cJSON *test_state_json(const struct store *store)
{
	size_t role_count, token_count;
	struct role **roles = store_sorted_roles(store, &role_count);
	struct token **tokens = store_tokens_by_name(store, &token_count);
	cJSON *document = cJSON_CreateObject();
	assert_true(roles && tokens && cJSON_AddNumberToObject(document, "version", STATE_FORMAT_VERSION));
	cJSON *role_items = cJSON_AddArrayToObject(document, "roles");
	cJSON *token_items = cJSON_AddArrayToObject(document, "tokens");
	assert_true(role_items && token_items);
	for(size_t i = 0; i < role_count; i++){
		assert_true(cJSON_AddItemToArray(role_items, role_to_json(roles[i])));
	}
	for(size_t i = 0; i < token_count; i++){
		assert_true(cJSON_AddItemToArray(token_items, token_state_to_json(store, tokens[i])));
	}
	free(roles);
	free(tokens);
	return document;
}

/* ---- a plugin instance ---- */

struct test_plugin *test_plugin_new(void)
{
	struct test_plugin *test_plugin = calloc(1, sizeof(*test_plugin));
	assert_non_null(test_plugin);
	test_plugin->dir = test_temp_dir();
	test_plugin->state_path = test_path(test_plugin->dir, "tokens.json");
	test_plugin->journal_path = test_path(test_plugin->dir, "tokens.json.journal");

	char error[1024] = "";
	store_init(&test_plugin->plugin.store);
	sessions_init(&test_plugin->plugin.sessions);
	replies_init(&test_plugin->plugin.replies);
	expiry_init(&test_plugin->plugin.expiry);
	expiry_init_notices(&test_plugin->plugin.notices, 7 * 86400);
	test_plugin->plugin.persist = persist_open(test_plugin->state_path, error, sizeof(error));
	if(test_plugin->plugin.persist == NULL){
		fail_msg("persist_open(%s): %s", test_plugin->state_path, error);
	}
	test_plugin->plugin.log = test_log;
	test_plugin->plugin.now = test_clock_now;
	test_clock_set(test_time("2026-11-28T10:00:00Z"));
	test_log_reset();
	test_io_calls = 0;
	return test_plugin;
}

void test_plugin_free(struct test_plugin *test_plugin)
{
	if(test_plugin == NULL){
		return;
	}
	sessions_clear(&test_plugin->plugin.sessions);
	replies_clear(&test_plugin->plugin.replies);
	expiry_clear(&test_plugin->plugin.expiry);
	expiry_clear(&test_plugin->plugin.notices);
	store_clear(&test_plugin->plugin.store);
	free(test_plugin->plugin.last_used_queue);
	persist_close(test_plugin->plugin.persist);
	test_remove_dir(test_plugin->dir);
	free(test_plugin->dir);
	free(test_plugin->state_path);
	free(test_plugin->journal_path);
	free(test_plugin);
	test_log_reset();
}

int test_plugin_teardown(void **state)
{
	test_plugin_free(*state);
	return 0;
}

struct tokens_plugin *test_plugin_of(void **state)
{
	return &((struct test_plugin *)*state)->plugin;
}

/* ---- control requests ---- */

cJSON *test_request(struct tokens_plugin *plugin, const char *requester, const char *payload)
{
	cJSON *reply = control_handle_request(plugin, requester, payload, strlen(payload));
	assert_non_null(reply);
	if(!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(reply, "responses"))){
		fail_msg("the reply has no \"responses\" array");
	}
	test_assert_invariants(plugin);
	return reply;
}

void test_assert_invariants(const struct tokens_plugin *plugin)
{
	char problem[512];
	if(!invariants_check_plugin(plugin, problem, sizeof(problem))){
		fail_msg("an invariant is broken: %s", problem);
	}
}

static char *describe(const cJSON *item)
{
	char *text = cJSON_PrintUnformatted(item);
	assert_non_null(text);
	return text;
}

cJSON *test_command(struct tokens_plugin *plugin, const char *requester, const char *command_json)
{
	char *payload = test_format("{\"commands\": [%s]}", command_json);
	cJSON *reply = test_request(plugin, requester, payload);
	free(payload);
	cJSON *responses = cJSON_GetObjectItemCaseSensitive(reply, "responses");
	if(cJSON_GetArraySize(responses) != 1){
		char *text = describe(reply);
		fail_msg("expected one response, got %s", text);
	}
	cJSON *response = cJSON_DetachItemFromArray(responses, 0);
	cJSON_Delete(reply);
	return response;
}

cJSON *test_command_ok(struct tokens_plugin *plugin, const char *requester, const char *command_json)
{
	cJSON *response = test_command(plugin, requester, command_json);
	test_assert_success(response);
	cJSON *data = cJSON_DetachItemFromObjectCaseSensitive(response, "data");
	cJSON_Delete(response);
	return data;
}

char *test_create_token(struct tokens_plugin *plugin, const char *name, const char *role, const char *valid_until)
{
	char *command = test_format("{\"command\": \"createToken\", \"name\": \"%s\", \"role\": \"%s\", "
			"\"validUntil\": \"%s\"}", name, role, valid_until);
	cJSON *data = test_command_ok(plugin, "alice", command);
	free(command);
	char *secret = strdup(test_string(data, "token"));
	assert_non_null(secret);
	cJSON_Delete(data);
	return secret;
}

const char *test_string(const cJSON *object, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
	if(!cJSON_IsString(item)){
		char *text = describe(object);
		fail_msg("\"%s\" is not a string in %s", key, text);
	}
	return item->valuestring;
}

void test_assert_success(const cJSON *response)
{
	if(cJSON_GetObjectItemCaseSensitive(response, "error") || cJSON_GetObjectItemCaseSensitive(response, "code")){
		char *text = describe(response);
		fail_msg("expected success, got %s", text);
	}
}

void test_assert_error(const cJSON *response, const char *code, const char *fragment)
{
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(response, "error");
	const cJSON *code_item = cJSON_GetObjectItemCaseSensitive(response, "code");
	if(!cJSON_IsString(error) || !cJSON_IsString(code_item)
			|| strcmp(code_item->valuestring, code) != 0
			|| (fragment && strstr(error->valuestring, fragment) == NULL)
			|| cJSON_GetObjectItemCaseSensitive(response, "data") != NULL){
		char *text = describe(response);
		fail_msg("expected an error with code \"%s\" mentioning \"%s\", got %s",
				code, fragment ? fragment : "", text);
	}
}

/* ---- comparing stores ---- */

static void assert_acls_equal(const struct role *a, const struct role *b)
{
	assert_int_equal(a->acl_count, b->acl_count);
	for(int type = 0; type < ACL_TYPE_COUNT; type++){
		const struct role_acl *x = a->acls[type], *y = b->acls[type];
		for(; x && y; x = x->next, y = y->next){
			assert_string_equal(x->topic, y->topic);
			assert_int_equal(x->type, y->type);
			assert_int_equal(x->priority, y->priority);
			assert_int_equal(x->allow, y->allow);
		}
		assert_null(x);
		assert_null(y);
	}
}

/* Same roles (names, ACLs in order, token counts) and same tokens (every
 * field, previous secret and notice marks included, both indexes). */
void test_assert_stores_equal(const struct store *expected, const struct store *actual)
{
	size_t a_count, b_count;
	struct role **a_roles = store_sorted_roles(expected, &a_count);
	struct role **b_roles = store_sorted_roles(actual, &b_count);
	assert_int_equal(a_count, b_count);
	for(size_t i = 0; i < a_count; i++){
		assert_string_equal(a_roles[i]->name, b_roles[i]->name);
		assert_int_equal(a_roles[i]->token_count, b_roles[i]->token_count);
		assert_acls_equal(a_roles[i], b_roles[i]);
	}
	free(a_roles);
	free(b_roles);

	struct token **a_tokens = store_sorted_tokens(expected, &a_count);
	struct token **b_tokens = store_sorted_tokens(actual, &b_count);
	assert_int_equal(a_count, b_count);
	for(size_t i = 0; i < a_count; i++){
		const struct token *x = a_tokens[i], *y = b_tokens[i];
		assert_string_equal(x->name, y->name);
		assert_string_equal(x->requested_by, y->requested_by);
		assert_int_equal(x->client_id != NULL, y->client_id != NULL);
		if(x->client_id){
			assert_string_equal(x->client_id, y->client_id);
		}
		assert_string_equal(x->role->name, y->role->name);
		assert_memory_equal(x->hash, y->hash, TOKEN_HASH_LEN);
		assert_int_equal(x->issued_at, y->issued_at);
		assert_int_equal(x->valid_until, y->valid_until);
		assert_int_equal(x->last_used, y->last_used);
		assert_int_equal(x->expiring_noticed, y->expiring_noticed);
		assert_int_equal(x->expired_noticed, y->expired_noticed);
		const struct previous_secret *px = store_find_previous(expected, x), *py = store_find_previous(actual, y);
		assert_int_equal(px != NULL, py != NULL);
		if(px){
			assert_memory_equal(px->hash, py->hash, TOKEN_HASH_LEN);
			assert_int_equal(px->valid_until, py->valid_until);
		}
		assert_ptr_equal(store_find_token_by_hash(actual, x->hash), y);
		assert_ptr_equal(store_find_token_by_name(actual, x->name), y);
	}
	free(a_tokens);
	free(b_tokens);
}

void test_strip_journal_ids(const char *path)
{
	size_t length;
	char *text = test_read_file(path, &length);
	assert_non_null(text);
	char *out = malloc(length + 1);
	assert_non_null(out);
	size_t used = 0;
	for(char *line = text; line < text + length;){
		char *newline = memchr(line, '\n', (size_t)(text + length - line));
		char *next = newline ? newline + 1 : text + length;
		if(strncmp(line, "\"journalId\": ", 13) != 0 && strncmp(line, "\"previousJournalId\": ", 21) != 0){
			memcpy(out + used, line, (size_t)(next - line));
			used += (size_t)(next - line);
		}
		line = next;
	}
	test_write_file(path, out, used);
	free(out);
	free(text);
}

void test_assert_contains(const char *text, const char *fragment)
{
	if(strstr(text, fragment) == NULL){
		fail_msg("\"%s\" does not contain \"%s\"", text, fragment);
	}
}

void test_persist_reopen(struct persist_fixture *fixture)
{
	persist_close(fixture->persist);
	fixture->persist = persist_open(fixture->path, fixture->error, sizeof(fixture->error));
	if(fixture->persist == NULL){
		fail_msg("persist_open: %s", fixture->error);
	}
}

void test_persist_save(struct persist_fixture *fixture, const struct store *store)
{
	if(!persist_save(fixture->persist, store, fixture->error, sizeof(fixture->error))){
		fail_msg("persist_save: %s", fixture->error);
	}
}

void test_persist_record(struct persist_fixture *fixture, cJSON *change)
{
	assert_non_null(change);
	fixture->error[0] = '\0';
	bool ok = persist_record(fixture->persist, change, fixture->error, sizeof(fixture->error));
	cJSON_Delete(change);
	if(!ok){
		fail_msg("persist_record: %s", fixture->error);
	}
}

void test_persist_restart_and_load(struct persist_fixture *fixture, struct store *loaded)
{
	test_persist_reopen(fixture);
	store_init(loaded);
	fixture->error[0] = '\0';
	if(!persist_load(fixture->persist, loaded, fixture->error, sizeof(fixture->error))){
		fail_msg("persist_load: %s", fixture->error);
	}
}

void test_assert_restart_gives_the_same_store(struct persist_fixture *fixture)
{
	struct store loaded;
	test_persist_restart_and_load(fixture, &loaded);
	test_assert_stores_equal(&fixture->store, &loaded);
	store_clear(&loaded);
}

void test_persist_restart_and_refuse(struct persist_fixture *fixture)
{
	test_persist_reopen(fixture);
	struct store loaded;
	store_init(&loaded);
	fixture->error[0] = '\0';
	if(persist_load(fixture->persist, &loaded, fixture->error, sizeof(fixture->error))){
		size_t tokens = store_token_count(&loaded);
		store_clear(&loaded);
		fail_msg("loaded (%zu tokens) instead of refusing", tokens);
	}
	assert_int_equal(store_token_count(&loaded), 0);
	assert_int_equal(store_role_count(&loaded), 0);
	assert_true(fixture->error[0] != '\0');
}

int64_t test_persist_snapshot_sequence(const struct persist_fixture *fixture)
{
	cJSON *document = test_read_json(fixture->path);
	const cJSON *sequence = cJSON_GetObjectItemCaseSensitive(document, "journalSequence");
	assert_true(cJSON_IsNumber(sequence));
	int64_t value = (int64_t)sequence->valuedouble;
	cJSON_Delete(document);
	return value;
}
