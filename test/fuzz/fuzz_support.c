#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>

#include "invariants.h"
#include "login.h"
#include "metadata_json.h"
#include "state_format.h"
#include "fuzz_support.h"

const char *fuzz_scratch_dir(void)
{
	static char dir[256];
	if(dir[0] == '\0'){
		struct stat shm;
		const char *base = stat("/dev/shm", &shm) == 0 && S_ISDIR(shm.st_mode) ? "/dev/shm" : "/tmp";
		snprintf(dir, sizeof(dir), "%s/mosquitto-tokens-fuzz.XXXXXX", base);
		if(mkdtemp(dir) == NULL){
			fuzz_fail("cannot create a scratch folder under %s: %s", base, strerror(errno));
		}
	}
	return dir;
}

#define FUZZ_PATH_SIZE 512

static const char *scratch_path(char path[FUZZ_PATH_SIZE], const char *name)
{
	if(path[0] == '\0' && snprintf(path, FUZZ_PATH_SIZE, "%s/%s", fuzz_scratch_dir(), name) >= FUZZ_PATH_SIZE){
		fuzz_fail("path too long: %s/%s", fuzz_scratch_dir(), name);
	}
	return path;
}

const char *fuzz_state_path(void)
{
	static char path[FUZZ_PATH_SIZE];
	return scratch_path(path, "tokens.json");
}

const char *fuzz_journal_path(void)
{
	static char path[FUZZ_PATH_SIZE];
	return scratch_path(path, "tokens.json.journal");
}

void fuzz_write_file(const char *path, const void *bytes, size_t length)
{
	FILE *file = fopen(path, "wb");
	if(file == NULL || fwrite(bytes, 1, length, file) != length || fclose(file) != 0){
		fuzz_fail("cannot write %s: %s", path, strerror(errno));
	}
}

void fuzz_remove(const char *path)
{
	if(unlink(path) != 0 && errno != ENOENT){
		fuzz_fail("cannot remove %s: %s", path, strerror(errno));
	}
}

unsigned char *fuzz_read_file(const char *path, size_t *length)
{
	FILE *file = fopen(path, "rb");
	if(file == NULL){
		if(errno == ENOENT){
			return NULL;
		}
		fuzz_fail("cannot open %s: %s", path, strerror(errno));
	}
	size_t capacity = 4096;
	unsigned char *bytes = malloc(capacity);
	*length = 0;
	while(bytes != NULL){
		*length += fread(bytes + *length, 1, capacity - *length, file);
		if(*length < capacity){
			break;
		}
		capacity *= 2;
		unsigned char *bigger = realloc(bytes, capacity);
		if(bigger == NULL){
			free(bytes);
		}
		bytes = bigger;
	}
	if(bytes == NULL || ferror(file)){
		fuzz_fail("cannot read %s", path);
	}
	fclose(file);
	return bytes;
}

void fuzz_fail(const char *format, ...)
{
	va_list args;
	va_start(args, format);
	fputs("fuzz expectation broken: ", stderr);
	vfprintf(stderr, format, args);
	fputc('\n', stderr);
	va_end(args);
	abort();
}

/* The store's roles and tokens as the snapshot writer prints them, in its order. */
static cJSON *state_json(const struct store *store)
{
	size_t role_count, token_count;
	struct role **roles = store_sorted_roles(store, &role_count);
	struct token **tokens = store_sorted_tokens(store, &token_count);
	cJSON *document = cJSON_CreateObject();
	cJSON *role_items = cJSON_AddArrayToObject(document, "roles");
	cJSON *token_items = cJSON_AddArrayToObject(document, "tokens");
	bool ok = roles && tokens && role_items && token_items;
	for(size_t i = 0; ok && i < role_count; i++){
		ok = cJSON_AddItemToArray(role_items, role_to_json(roles[i]));
	}
	for(size_t i = 0; ok && i < token_count; i++){
		ok = cJSON_AddItemToArray(token_items, token_state_to_json(store, tokens[i]));
	}
	free(roles);
	free(tokens);
	if(!ok){
		fuzz_fail("out of memory");
	}
	return document;
}

void fuzz_assert_same_state(const struct store *expected, const struct store *actual, const char *when)
{
	cJSON *expected_json = state_json(expected);
	cJSON *actual_json = state_json(actual);
	if(!cJSON_Compare(expected_json, actual_json, true)){
		char *expected_text = cJSON_Print(expected_json);
		char *actual_text = cJSON_Print(actual_json);
		fuzz_fail("%s: the state differs.\nexpected: %s\nactual: %s", when,
				expected_text ? expected_text : "?", actual_text ? actual_text : "?");
	}
	cJSON_Delete(expected_json);
	cJSON_Delete(actual_json);
}

void fuzz_assert_invariants(const struct tokens_plugin *plugin, const char *when)
{
	char problem[512];
	if(!invariants_check_plugin(plugin, problem, sizeof(problem))){
		fuzz_fail("%s: an invariant is broken: %s", when, problem);
	}
}

/* client_id: the one the secret's token is bound to (NULL: none), which
 * must log in the same way before and after. */
static void assert_same_login(const struct store *expected, const struct store *actual,
		const unsigned char hash[TOKEN_HASH_LEN], const char *client_id, int64_t now, const char *when)
{
	struct login_answer before = login_answer_for(expected, hash, client_id, now);
	struct login_answer after = login_answer_for(actual, hash, client_id, now);
	if(before.verdict != after.verdict || before.via_previous != after.via_previous
			|| (before.token && strcmp(before.token->name, after.token->name) != 0)){
		char hex[TOKEN_HASH_HEX_LEN + 1];
		token_format_hash_to_hex(hash, hex);
		fuzz_fail("%s: the secret with hash %s logs in as %s (verdict %d), then as %s (verdict %d)", when, hex,
				before.token ? before.token->name : "nobody", before.verdict,
				after.token ? after.token->name : "nobody", after.verdict);
	}
}

static void assert_logins_of(const struct store *source, const struct store *expected, const struct store *actual,
		int64_t now, const char *when)
{
	for(const struct token *token = source->tokens_by_hash; token; token = token->hh_hash.next){
		assert_same_login(expected, actual, token->hash, token->client_id, now, when);
	}
	for(const struct previous_secret *previous = source->previous_by_hash; previous; previous = previous->hh_hash.next){
		assert_same_login(expected, actual, previous->hash, previous->token->client_id, now, when);
	}
}

void fuzz_assert_same_logins(const struct store *expected, const struct store *actual, int64_t now, const char *when)
{
	assert_logins_of(expected, expected, actual, now, when);
	assert_logins_of(actual, expected, actual, now, when);
}

void fuzz_log(int level, const char *format, ...)
{
	(void)level;
	(void)format;
}

int64_t fuzz_clock(void)
{
	return 1795860000; /* 2026-11-28T10:00:00Z */
}

static ssize_t write_enospc(int fd, const void *buffer, size_t count)
{
	(void)fd; (void)buffer; (void)count;
	errno = ENOSPC;
	return -1;
}

static int fsync_eio(int fd)
{
	(void)fd;
	errno = EIO;
	return -1;
}

static int rename_eacces(const char *from, const char *to)
{
	(void)from; (void)to;
	errno = EACCES;
	return -1;
}

static int unlink_eio(const char *path)
{
	(void)path;
	errno = EIO;
	return -1;
}

const struct persist_io fuzz_io_write_fails = {.write = write_enospc, .fsync = fsync, .rename = rename,
	.unlink = unlink};
const struct persist_io fuzz_io_fsync_fails = {.write = write, .fsync = fsync_eio, .rename = rename, .unlink = unlink};
const struct persist_io fuzz_io_rename_fails = {.write = write, .fsync = fsync, .rename = rename_eacces,
	.unlink = unlink};
const struct persist_io fuzz_io_unlink_fails = {.write = write, .fsync = fsync, .rename = rename,
	.unlink = unlink_eio};
