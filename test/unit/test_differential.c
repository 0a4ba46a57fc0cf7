/*
 * The live store against the one the files reload into. Thousands of
 * random sequences of every state-changing command (tokens created,
 * rotated with and without grace, revoked; roles created, changed,
 * deleted), with the clock moving (grace periods end, expiry notices go
 * out), logins, lastUsed saves and snapshot folds at random points. At
 * random points and at the end the files are copied and loaded into a
 * second instance, which must equal the live one in every field, and
 * every secret ever issued must get the same login answer from both.
 *
 * Sequences are reproducible from their number; DIFFERENTIAL_SEQUENCES
 * sets how many run (default 2000). fsync is skipped: durability is the
 * fault tests' business, agreement is this one's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events.h"
#include "login.h"
#include "rfc3339.h"
#include "token_format.h"
#include "test_support.h"

#define STEPS 40
#define MAX_SECRETS 96
#define TOKEN_NAMES 6
#define ROLE_NAMES 3

struct sequence {
	struct test_plugin *live;
	uint64_t random;
	int number;
	char secrets[MAX_SECRETS][TOKEN_LEN + 1];
	int secret_count;
};

static int fsync_skipped(int fd)
{
	(void)fd;
	return 0;
}

static const struct persist_io fast_io = {.write = write, .fsync = fsync_skipped, .rename = rename, .unlink = unlink};

/* xorshift64: the same sequence for the same number, everywhere. */
static uint64_t next_random(struct sequence *sequence)
{
	uint64_t x = sequence->random;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return sequence->random = x;
}

static int pick(struct sequence *sequence, int count)
{
	return (int)(next_random(sequence) % (uint64_t)count);
}

static void run(struct sequence *sequence, const char *command)
{
	cJSON *reply = test_request(&sequence->live->plugin, "fuzzer", command);
	const cJSON *response = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(reply, "responses"), 0);
	const cJSON *secret = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(response, "data"), "token");
	if(cJSON_IsString(secret) && sequence->secret_count < MAX_SECRETS){
		strcpy(sequence->secrets[sequence->secret_count++], secret->valuestring);
	}
	cJSON_Delete(reply);
}

static void run_formatted(struct sequence *sequence, char *command)
{
	run(sequence, command);
	free(command);
}

static const char *const acl_types[] = {
	"publishClientSend", "publishClientReceive", "subscribeLiteral", "subscribePattern",
};
static const char *const topics[] = {"a/#", "a/b", "devices/+/x", "#", "$CONTROL/tokens/v1"};

static char *time_after(int64_t seconds)
{
	char text[RFC3339_LEN + 1];
	rfc3339_format(test_clock_now() + seconds, text);
	return test_format("%s", text);
}

static void create_token(struct sequence *sequence)
{
	char *until = time_after(60 + pick(sequence, 20000));
	run_formatted(sequence, test_format("{\"commands\": [{\"command\": \"createToken\", \"name\": \"t%d\", "
			"\"role\": \"r%d\", \"validUntil\": \"%s\"}]}", pick(sequence, TOKEN_NAMES), pick(sequence, ROLE_NAMES), until));
	free(until);
}

static void rotate_token(struct sequence *sequence)
{
	static const int graces[] = {0, 0, 30, 600, 86400};
	int grace = graces[pick(sequence, 5)];
	char *until = pick(sequence, 2) ? time_after(60 + pick(sequence, 20000)) : NULL;
	char *valid_until = until ? test_format(", \"validUntil\": \"%s\"", until) : test_format("%s", "");
	run_formatted(sequence, test_format("{\"commands\": [{\"command\": \"rotateToken\", \"name\": \"t%d\", "
			"\"graceSeconds\": %d%s}]}", pick(sequence, TOKEN_NAMES), grace, valid_until));
	free(valid_until);
	free(until);
}

static void role_command(struct sequence *sequence)
{
	int role = pick(sequence, ROLE_NAMES);
	const char *type = acl_types[pick(sequence, 4)];
	const char *topic = topics[pick(sequence, 5)];
	switch(pick(sequence, 4)){
		case 0:
			run_formatted(sequence, test_format("{\"commands\": [{\"command\": \"createRole\", \"rolename\": \"r%d\", "
					"\"acls\": [{\"acltype\": \"%s\", \"topic\": \"%s\", \"allow\": true}]}]}", role, type, topic));
			break;
		case 1:
			run_formatted(sequence, test_format("{\"commands\": [{\"command\": \"deleteRole\", \"rolename\": \"r%d\"}]}", role));
			break;
		case 2:
			run_formatted(sequence, test_format("{\"commands\": [{\"command\": \"addRoleACL\", \"rolename\": \"r%d\", "
					"\"acltype\": \"%s\", \"topic\": \"%s\", \"priority\": %d, \"allow\": %s}]}",
					role, type, topic, pick(sequence, 5) - 2, pick(sequence, 2) ? "true" : "false"));
			break;
		default:
			run_formatted(sequence, test_format("{\"commands\": [{\"command\": \"removeRoleACL\", \"rolename\": \"r%d\", "
					"\"acltype\": \"%s\", \"topic\": \"%s\"}]}", role, type, topic));
			break;
	}
}

/* What the broker's tick does with the clock, without the broker. */
static void let_time_pass(struct sequence *sequence)
{
	struct tokens_plugin *plugin = &sequence->live->plugin;
	static const int64_t steps[] = {1, 40, 700, 5000, 90000};
	test_clock_advance(steps[pick(sequence, 5)]);
	tokens_plugin_end_grace_periods(plugin, test_clock_now());
	events_send_due_notices(plugin, test_clock_now());
	test_assert_invariants(plugin);
}

static void log_in(struct sequence *sequence)
{
	if(sequence->secret_count == 0){
		return;
	}
	struct tokens_plugin *plugin = &sequence->live->plugin;
	unsigned char hash[TOKEN_HASH_LEN];
	token_format_hash(sequence->secrets[pick(sequence, sequence->secret_count)], hash);
	struct login_answer answer = login_answer_for(&plugin->store, hash, test_clock_now());
	if(answer.verdict == LOGIN_ACCEPTED){
		tokens_plugin_mark_used(plugin, answer.token, test_clock_now());
	}
}

static void step(struct sequence *sequence)
{
	struct tokens_plugin *plugin = &sequence->live->plugin;
	int kind = pick(sequence, 16);
	if(kind < 4){
		create_token(sequence);
	}else if(kind < 6){
		rotate_token(sequence);
	}else if(kind < 8){
		run_formatted(sequence, test_format("{\"commands\": [{\"command\": \"revokeToken\", \"name\": \"t%d\"}]}",
				pick(sequence, TOKEN_NAMES)));
	}else if(kind < 11){
		role_command(sequence);
	}else if(kind < 13){
		let_time_pass(sequence);
	}else if(kind < 14){
		log_in(sequence);
	}else if(kind < 15){
		tokens_plugin_save_last_used(plugin);
	}else{
		tokens_plugin_snapshot(plugin);
	}
}

static void copy_file(const char *from, const char *to)
{
	size_t length;
	char *content = test_read_file(from, &length);
	if(content){
		test_write_file(to, content, length);
		free(content);
	}
}

/* The instance a restart would give: the files, copied (the live one
 * holds their lock), loaded as the plugin loads them at start-up. */
static struct tokens_plugin *reloaded(struct sequence *sequence, char *dir)
{
	char *state = test_path(dir, "tokens.json");
	char *journal = test_path(dir, "tokens.json.journal");
	copy_file(sequence->live->state_path, state);
	copy_file(sequence->live->journal_path, journal);
	char error[1024];
	struct tokens_plugin *plugin = tokens_plugin_new(state, test_log, test_clock_now, error, sizeof(error));
	if(plugin == NULL){
		fail_msg("sequence %d: the files do not load: %s", sequence->number, error);
	}
	assert_true(tokens_plugin_start_notices(plugin, 7 * 86400));
	/* The live instance dropped the grace periods that ended; so does a
	 * restarted one at its first tick. */
	tokens_plugin_end_grace_periods(plugin, test_clock_now());
	test_assert_invariants(plugin);
	free(state);
	free(journal);
	return plugin;
}

static void assert_same_login_answers(struct sequence *sequence, const struct tokens_plugin *restarted)
{
	const struct store *live = &sequence->live->plugin.store;
	for(int i = 0; i < sequence->secret_count; i++){
		unsigned char hash[TOKEN_HASH_LEN];
		token_format_hash(sequence->secrets[i], hash);
		struct login_answer before = login_answer_for(live, hash, test_clock_now());
		struct login_answer after = login_answer_for(&restarted->store, hash, test_clock_now());
		if(before.verdict != after.verdict || before.via_previous != after.via_previous
				|| (before.token && strcmp(before.token->name, after.token->name) != 0)){
			fail_msg("sequence %d: secret %d logs in as %s (verdict %d) live but as %s (verdict %d) after a restart",
					sequence->number, i, before.token ? before.token->name : "nobody", before.verdict,
					after.token ? after.token->name : "nobody", after.verdict);
		}
	}
}

static void compare_with_restart(struct sequence *sequence)
{
	struct tokens_plugin *plugin = &sequence->live->plugin;
	/* lastUsed is saved lazily: what a restart may lose of it is not a
	 * disagreement. */
	tokens_plugin_save_last_used(plugin);
	char *dir = test_temp_dir();
	struct tokens_plugin *restarted = reloaded(sequence, dir);
	test_assert_stores_equal(&plugin->store, &restarted->store);
	assert_int_equal(plugin->expired_tokens, restarted->expired_tokens);
	assert_same_login_answers(sequence, restarted);
	tokens_plugin_free(restarted);
	test_remove_dir(dir);
	free(dir);
}

static void run_sequence(int number)
{
	struct sequence sequence = {.number = number, .random = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)number * 0x100000001B3ULL)};
	sequence.live = test_plugin_new();
	struct tokens_plugin *plugin = &sequence.live->plugin;
	persist_set_io(plugin->persist, &fast_io);
	/* Some sequences fold the journal into snapshots often, some never. */
	persist_set_snapshot_after(plugin->persist, (size_t)pick(&sequence, 3) * 3);
	for(int role = 0; role < ROLE_NAMES; role++){
		run_formatted(&sequence, test_format("{\"commands\": [{\"command\": \"createRole\", \"rolename\": \"r%d\"}]}", role));
	}
	for(int i = 0; i < STEPS; i++){
		step(&sequence);
		if(pick(&sequence, 10) == 0){
			compare_with_restart(&sequence);
		}
	}
	compare_with_restart(&sequence);
	test_plugin_free(sequence.live);
}

static void random_sequences_reload_into_the_live_store(void **state)
{
	(void)state;
	const char *wanted = getenv("DIFFERENTIAL_SEQUENCES");
	int count = wanted ? atoi(wanted) : 2000;
	for(int number = 0; number < count; number++){
		run_sequence(number);
	}
	printf("%d sequences of %d steps: every reload equal to the live store\n", count, STEPS);
}

/* The sequence of issue 12 that brought a revoked secret back. */
static void revoked_token_with_a_grace_period_stays_revoked_after_a_restart(void **state)
{
	(void)state;
	struct sequence sequence = {.number = -1, .random = 1};
	sequence.live = test_plugin_new();
	run(&sequence, "{\"commands\": [{\"command\": \"createRole\", \"rolename\": \"r0\"}]}");
	run(&sequence, "{\"commands\": [{\"command\": \"createToken\", \"name\": \"t0\", \"role\": \"r0\", "
			"\"validUntil\": \"2027-01-01T00:00:00Z\"}]}");
	run(&sequence, "{\"commands\": [{\"command\": \"rotateToken\", \"name\": \"t0\", \"graceSeconds\": 3600}]}");
	run(&sequence, "{\"commands\": [{\"command\": \"revokeToken\", \"name\": \"t0\"}]}");
	assert_int_equal(sequence.secret_count, 2);
	char *dir = test_temp_dir();
	struct tokens_plugin *restarted = reloaded(&sequence, dir);
	for(int i = 0; i < 2; i++){
		unsigned char hash[TOKEN_HASH_LEN];
		token_format_hash(sequence.secrets[i], hash);
		assert_int_equal(login_answer_for(&restarted->store, hash, test_clock_now()).verdict, LOGIN_UNKNOWN);
	}
	assert_null(restarted->store.previous_by_hash);
	tokens_plugin_free(restarted);
	test_remove_dir(dir);
	free(dir);
	test_plugin_free(sequence.live);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(revoked_token_with_a_grace_period_stays_revoked_after_a_restart),
		cmocka_unit_test(random_sequences_reload_into_the_live_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
