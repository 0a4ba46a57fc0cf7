/*
 * Out of memory at every allocation of a command (issue 13): malloc,
 * calloc and realloc in the plugin's own code are wrapped (this test is
 * linked with -Wl,--wrap), and cJSON is given the same allocator, so that
 * the Nth allocation fails, for every N that a command reaches. Each time the command must fail cleanly or succeed,
 * the instance's invariants must hold, and the files must load into what
 * memory holds (nothing recorded that memory lacks, or the reverse).
 * Under the sanitizers (make sanitize-test) a leak on any of these paths
 * fails the run too. The persistent sessions' bindings get the same: their
 * table, their journal line, and a snapshot that writes and loads them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "journal.h"
#include "session_records.h"
#include "test_support.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *pointer, size_t size);

static long allocations_left = -1;   /* -1: never fail */
static long failures;

static bool fails_now(void)
{
	if(allocations_left < 0){
		return false;
	}
	if(allocations_left-- == 0){
		failures++;
		return true;
	}
	return false;
}

void *__wrap_malloc(size_t size)
{
	return fails_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t count, size_t size)
{
	return fails_now() ? NULL : __real_calloc(count, size);
}

void *__wrap_realloc(void *pointer, size_t size)
{
	return fails_now() ? NULL : __real_realloc(pointer, size);
}

static const char *const commands[] = {
	"{\"command\": \"createToken\", \"name\": \"fresh\", \"role\": \"r\", \"validUntil\": \"2027-01-01T00:00:00Z\"}",
	("{\"command\": \"createToken\", \"name\": \"fresh\", \"role\": \"r\", \"validUntil\": \"2027-01-01T00:00:00Z\", "
		"\"clientId\": \"fresh-dev\"}"),
	"{\"command\": \"rotateToken\", \"name\": \"base\", \"graceSeconds\": 600}",
	"{\"command\": \"rotateToken\", \"name\": \"bound\", \"graceSeconds\": 600}",
	"{\"command\": \"rotateToken\", \"name\": \"base\"}",
	"{\"command\": \"revokeToken\", \"name\": \"base\"}",
	("{\"command\": \"createRole\", \"rolename\": \"new\", \"acls\": [{\"acltype\": \"subscribePattern\", "
		"\"topic\": \"a/#\", \"allow\": true}]}"),
	"{\"command\": \"addRoleACL\", \"rolename\": \"r\", \"acltype\": \"publishClientSend\", \"topic\": \"b/#\", \"allow\": true}",
	"{\"command\": \"removeRoleACL\", \"rolename\": \"r\", \"acltype\": \"subscribePattern\", \"topic\": \"r/#\"}",
	"{\"command\": \"deleteRole\", \"rolename\": \"spare\"}",
	"{\"command\": \"listTokens\"}",
	"{\"command\": \"getToken\", \"name\": \"base\"}",
};

/* The captured log allocates, and must not be what fails. */
static void quiet_log(int level, const char *format, ...)
{
	(void)level;
	(void)format;
}

static int fsync_skipped(int fd)
{
	(void)fd;
	return 0;
}

/* Durability is the fault tests' business; this one is about memory. */
static const struct persist_io fast_io = {.write = write, .fsync = fsync_skipped, .rename = rename, .unlink = unlink};

static struct test_plugin *prepared_plugin(void)
{
	struct test_plugin *test_plugin = test_plugin_new();
	struct tokens_plugin *plugin = &test_plugin->plugin;
	plugin->log = quiet_log;
	persist_set_io(plugin->persist, &fast_io);
	cJSON_Delete(test_command_ok(plugin, "alice", "{\"command\": \"createRole\", \"rolename\": \"r\", \"acls\": ["
			"{\"acltype\": \"subscribePattern\", \"topic\": \"r/#\", \"allow\": true}]}"));
	cJSON_Delete(test_command_ok(plugin, "alice", "{\"command\": \"createRole\", \"rolename\": \"spare\"}"));
	cJSON_Delete(test_command_ok(plugin, "alice", "{\"command\": \"createToken\", \"name\": \"base\", \"role\": \"r\", "
			"\"validUntil\": \"2027-01-01T00:00:00Z\"}"));
	cJSON_Delete(test_command_ok(plugin, "alice", "{\"command\": \"createToken\", \"name\": \"bound\", \"role\": \"r\", "
			"\"validUntil\": \"2027-01-01T00:00:00Z\", \"clientId\": \"bound-dev\"}"));
	return test_plugin;
}

static void assert_files_hold_memory(struct test_plugin *test_plugin)
{
	char error[1024];
	struct tokens_plugin *plugin = &test_plugin->plugin;
	persist_close(plugin->persist);
	struct tokens_plugin *reloaded = tokens_plugin_new(test_plugin->state_path, quiet_log, test_clock_now,
			error, sizeof(error));
	if(reloaded == NULL){
		fail_msg("the files do not load: %s", error);
	}
	test_assert_stores_equal(&plugin->store, &reloaded->store);
	tokens_plugin_free(reloaded);
	plugin->persist = persist_open(test_plugin->state_path, error, sizeof(error));
	assert_non_null(plugin->persist);
	persist_set_io(plugin->persist, &fast_io);
}

/* Runs the command with the Nth allocation failing; false once N is past
 * every allocation it makes. */
static bool run_failing_at(const char *command, long n)
{
	struct test_plugin *test_plugin = prepared_plugin();
	struct tokens_plugin *plugin = &test_plugin->plugin;
	char *payload = test_format("{\"commands\": [%s]}", command);
	long failures_before = failures;
	allocations_left = n;
	cJSON *reply = control_handle_request(plugin, "alice", payload, strlen(payload));
	allocations_left = -1;
	bool failed_one = failures > failures_before;
	cJSON_Delete(reply);   /* NULL when even the reply could not be built */
	test_assert_invariants(plugin);
	assert_files_hold_memory(test_plugin);
	free(payload);
	test_plugin_free(test_plugin);
	return failed_one;
}

static void every_allocation_of_every_command_may_fail(void **state)
{
	(void)state;
	long runs = 0;
	for(size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++){
		long n = 0;
		while(run_failing_at(commands[c], n)){
			n++;
			runs++;
		}
	}
	printf("%ld commands run with one failing allocation each\n", runs);
	assert_true(runs > 100);
}

/* ---- bindings of persistent sessions ---- */

static void binding_id(char out[32], int i)
{
	snprintf(out, 32, "client-%d", i);
}

/* The table holds client-0 ... client-(count - 1), each with username
 * "u<generation>" where generation is generations[i]. */
static void assert_table_is(const struct session_records *records, int count, const int *generations)
{
	assert_int_equal(session_records_count(records), count);
	for(int i = 0; i < count; i++){
		char id[32], username[32];
		binding_id(id, i);
		snprintf(username, sizeof(username), "u%d", generations[i]);
		const struct session_record *record = session_records_find(records, id);
		assert_non_null(record);
		assert_string_equal(record->username, username);
	}
}

/* Puts client-i (new or replacing) with the Nth allocation failing, for
 * N = 0, 1, ... until it works; every failure leaves the table as it was.
 * Enough inserts to make uthash create its table and grow it. */
static void putting_bindings_survives_every_failing_allocation(void **state)
{
	(void)state;
	enum { COUNT = 1200 };
	static int generations[COUNT];
	struct session_records records;
	session_records_init(&records);
	unsigned char hash[TOKEN_HASH_LEN] = {1};
	long refused = 0;
	for(int step = 0; step < COUNT + COUNT / 4; step++){
		int i = step < COUNT ? step : (step * 7) % COUNT;   /* then replacements */
		int count = step < COUNT ? step : COUNT;
		char id[32], username[32];
		binding_id(id, i);
		snprintf(username, sizeof(username), "u%d", generations[i] + (step >= COUNT));
		for(long n = 0;; n++){
			allocations_left = n;
			bool put = session_records_put(&records, id, username, hash);
			allocations_left = -1;
			if(put){
				break;
			}
			refused++;
			assert_table_is(&records, count, generations);
		}
		generations[i] += step >= COUNT;
	}
	assert_table_is(&records, COUNT, generations);
	printf("%ld binding puts refused out of memory, the table unchanged\n", refused);
	assert_true(refused > COUNT);
	session_records_clear(&records);
}

static void each_table_record(void *context, session_put_fn put, void *writer)
{
	const struct session_records *records = context;
	for(const struct session_record *record = records->by_id; record; record = record->hh.next){
		put(writer, &(struct session_view){record->client_id, record->username, record->bound ? record->hash : NULL});
	}
}

/* journal_sessions_of, a snapshot with bindings and its load, each with
 * the Nth allocation failing: a clean failure or the right result. */
static void saving_and_loading_bindings_survive_every_failing_allocation(void **state)
{
	(void)state;
	struct test_plugin *test_plugin = test_plugin_new();
	struct persist *persist = test_plugin->plugin.persist;
	persist_set_io(persist, &fast_io);
	struct session_records bindings, loaded;
	session_records_init(&bindings);
	session_records_init(&loaded);
	unsigned char hash[TOKEN_HASH_LEN] = {2};
	for(int i = 0; i < 40; i++){
		char id[32];
		binding_id(id, i);
		assert_true(session_records_put(&bindings, id, i % 3 ? "user" : NULL, i % 5 ? hash : NULL));
	}
	char error[1024];
	struct session_source source = {&bindings, each_table_record};
	persist_set_session_source(persist, &source);
	persist_set_session_sink(persist, &loaded);
	for(long n = 0, failures_before = -1; failures_before != failures; n++){
		failures_before = failures;
		session_records_clear(&loaded);
		allocations_left = n;
		cJSON *line = journal_sessions_of(&bindings, SIZE_MAX);
		bool saved = persist_save(persist, &test_plugin->plugin.store, error, sizeof(error));
		bool read = saved && persist_load(persist, &test_plugin->plugin.store, error, sizeof(error));
		allocations_left = -1;
		if(line){
			assert_int_equal(journal_change_count(line), 40);
		}
		cJSON_Delete(line);
		assert_int_equal(session_records_count(&loaded), read ? 32 : 0);
		store_clear(&test_plugin->plugin.store);
	}
	persist_set_session_source(persist, NULL);
	persist_set_session_sink(persist, NULL);
	session_records_clear(&bindings);
	session_records_clear(&loaded);
	test_plugin_free(test_plugin);
}

static void *cjson_malloc(size_t size)
{
	return __wrap_malloc(size);
}

int main(void)
{
	cJSON_Hooks hooks = {.malloc_fn = cjson_malloc, .free_fn = free};
	cJSON_InitHooks(&hooks);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_allocation_of_every_command_may_fail),
		cmocka_unit_test(putting_bindings_survives_every_failing_allocation),
		cmocka_unit_test(saving_and_loading_bindings_survive_every_failing_allocation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
