/*
 * Out of memory at every allocation of a command (issue 13): malloc,
 * calloc and realloc in the plugin's own code are wrapped (this test is
 * linked with -Wl,--wrap), and cJSON is given the same allocator, so that
 * the Nth allocation fails, for every N that a command reaches. Each time the command must fail cleanly or succeed,
 * the instance's invariants must hold, and the files must load into what
 * memory holds (nothing recorded that memory lacks, or the reverse).
 * Under the sanitizers (make sanitize-test) a leak on any of these paths
 * fails the run too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
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
	"{\"command\": \"rotateToken\", \"name\": \"base\", \"graceSeconds\": 600}",
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
