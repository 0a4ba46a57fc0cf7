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
 * The logins go through a small fake broker (struct broker_context), so
 * that persistent sessions come and go as mosquitto 2.0 makes them: a
 * pool of client ids shared by a pool of contexts (ids collide and take
 * each other over, a new connection may get the address of a session the
 * broker dropped without a word), disconnects settled by the tick, kicks,
 * the SIGHUP re-check. A copy is a crash: the journal has what was
 * recorded, and bindings are saved lazily. So most reloads come after a
 * tick and a save, and then the restarted instance's offline sessions
 * must be exactly the bindings the live one would have a restart restore;
 * the others only check that nothing comes back that should not (a
 * revoked token, a secret rotated away).
 *
 * Sequences are reproducible from their number; DIFFERENTIAL_SEQUENCES
 * sets how many run (default 2000). fsync is skipped: durability is the
 * fault tests' business, agreement is this one's.
 */
#include <stdarg.h>
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
#define CONTEXTS 8
#define CLIENT_IDS 4
#define MAX_BINDINGS (2 * CONTEXTS + CLIENT_IDS)

struct sequence {
	struct test_plugin *live;
	uint64_t random;
	int number;
	char secrets[MAX_SECRETS][TOKEN_LEN + 1];
	int secret_count;
	bool rechecking;     /* a SIGHUP re-check ran; the next tick ends what it did not meet */
};

/* ---- the broker, as far as the plugin sees it ---- */

static const char *const client_ids[CLIENT_IDS] = {"c0", "c1", "c2", "c3"};
static const char *const usernames[] = {NULL, "u0", "u1"};

enum context_state {
	CONTEXT_FREE,       /* no context at this address: a new connection may get it */
	CONTEXT_CONNECTED,
	CONTEXT_OFFLINE,    /* the broker keeps its session (and may drop it without a word) */
	CONTEXT_DISUSED,    /* its session is over: no client id, freed after the tick */
};

struct broker_context {
	enum context_state state;
	const char *client_id;   /* what mosquitto_client_id answers: NULL once the session is over */
	const char *username;
	int secret;              /* the secret it logged in with; -1: another plugin let it in */
	bool persists;
};

/* What the sequences exercised, for the summary line. */
static struct {
	unsigned long saved_reloads, crash_reloads;
	unsigned long bindings_compared, via_previous_compared, bindings_after_crash;
} totals;

/* The contexts' addresses are all the plugin ever sees of them. */
static char context_memory[CONTEXTS];
static struct broker_context broker[CONTEXTS];

static int fsync_skipped(int fd)
{
	(void)fd;
	return 0;
}

/* DIFFERENTIAL_TRACE=1 prints what each sequence does, to read a failure. */
static bool tracing;

static void trace(const char *format, ...) __attribute__((format(printf, 1, 2)));

static void trace(const char *format, ...)
{
	if(tracing){
		va_list arguments;
		va_start(arguments, format);
		vfprintf(stderr, format, arguments);
		va_end(arguments);
		fputc('\n', stderr);
	}
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
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(response, "error");
	trace("  %s -> %s", command, cJSON_IsString(error) ? error->valuestring : "ok");
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
	/* One pick per statement: the order of a call's arguments is the
	 * compiler's, and a sequence must be the same with gcc and clang. */
	char *until = time_after(60 + pick(sequence, 20000));
	int name = pick(sequence, TOKEN_NAMES);
	int role = pick(sequence, ROLE_NAMES);
	/* A third of them bound to one of the contexts' client ids. */
	int bound = pick(sequence, 3) == 0 ? pick(sequence, CLIENT_IDS) : -1;
	char *client_id = bound >= 0 ? test_format(", \"clientId\": \"%s\"", client_ids[bound]) : test_format("%s", "");
	run_formatted(sequence, test_format("{\"commands\": [{\"command\": \"createToken\", \"name\": \"t%d\", "
			"\"role\": \"r%d\", \"validUntil\": \"%s\"%s}]}", name, role, until, client_id));
	free(client_id);
	free(until);
}

static void rotate_token(struct sequence *sequence)
{
	static const int graces[] = {0, 0, 30, 600, 86400};
	int grace = graces[pick(sequence, 5)];
	char *until = pick(sequence, 2) ? time_after(60 + pick(sequence, 20000)) : NULL;
	char *valid_until = until ? test_format(", \"validUntil\": \"%s\"", until) : test_format("%s", "");
	int name = pick(sequence, TOKEN_NAMES);
	run_formatted(sequence, test_format("{\"commands\": [{\"command\": \"rotateToken\", \"name\": \"t%d\", "
			"\"graceSeconds\": %d%s}]}", name, grace, valid_until));
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
		case 2: {
			int priority = pick(sequence, 5) - 2;
			const char *allow = pick(sequence, 2) ? "true" : "false";
			run_formatted(sequence, test_format("{\"commands\": [{\"command\": \"addRoleACL\", \"rolename\": \"r%d\", "
					"\"acltype\": \"%s\", \"topic\": \"%s\", \"priority\": %d, \"allow\": %s}]}",
					role, type, topic, priority, allow));
			break;
		}
		default:
			run_formatted(sequence, test_format("{\"commands\": [{\"command\": \"removeRoleACL\", \"rolename\": \"r%d\", "
					"\"acltype\": \"%s\", \"topic\": \"%s\"}]}", role, type, topic));
			break;
	}
}

static const struct mosquitto *context_at(int index)
{
	return (const struct mosquitto *)&context_memory[index];
}

/* mosquitto_client_id, for sessions_settle_departed. */
static const char *broker_client_id(const struct mosquitto *client)
{
	return broker[(const char *)client - context_memory].client_id;
}

/* The context that has the client id's session, or -1. */
static int holder_of(const char *client_id)
{
	for(int i = 0; i < CONTEXTS; i++){
		bool has_session = broker[i].state == CONTEXT_CONNECTED || broker[i].state == CONTEXT_OFFLINE;
		if(has_session && strcmp(broker[i].client_id, client_id) == 0){
			return i;
		}
	}
	return -1;
}

/* The first context in state from a random place, or -1. */
static int find_context(struct sequence *sequence, enum context_state state)
{
	int start = pick(sequence, CONTEXTS);
	for(int i = 0; i < CONTEXTS; i++){
		if(broker[(start + i) % CONTEXTS].state == state){
			return (start + i) % CONTEXTS;
		}
	}
	return -1;
}

/* The disconnect callback runs while the context still has its id; a
 * session that is not kept loses it right after (context__add_to_disused). */
static void disconnect(struct sequence *sequence, int index, bool keeps_session, bool rechecking)
{
	struct broker_context *context = &broker[index];
	trace("  context %d (%s) disconnects%s%s", index, context->client_id, keeps_session ? ", its session kept" : "",
			rechecking ? " (re-check)" : "");
	const struct session_context seen = {context_at(index), context->client_id, context->username, false};
	sessions_depart(&sequence->live->plugin.sessions, &seen, DEPARTURE_ASK_AT_TICK, rechecking);
	if(keeps_session){
		context->state = CONTEXT_OFFLINE;
	}else{
		context->client_id = NULL;
		context->state = CONTEXT_DISUSED;
	}
}

static void close_expired_tokens(struct tokens_plugin *plugin)
{
	struct token *token;
	while((token = expiry_pop_due(&plugin->expiry, test_clock_now())) != NULL){
		sessions_close_token(&plugin->sessions, token, NULL);
	}
}

/* Kicks close by client id, the connection that has it now. */
static void run_kicks(struct sequence *sequence)
{
	struct sessions *sessions = &sequence->live->plugin.sessions;
	size_t count;
	const struct mosquitto **kicks = sessions_take_due_kicks(sessions, &count);
	for(size_t i = 0; i < count; i++){
		const struct session *session = sessions_find(sessions, kicks[i]);
		int holder = session && session->token == NULL ? holder_of(session->client_id) : -1;
		if(holder >= 0 && broker[holder].state == CONTEXT_CONNECTED){
			trace("  kick");
			disconnect(sequence, holder, broker[holder].persists, false);
		}
	}
	free(kicks);
}

/* What the broker's tick does (plugin/tick.c), then the start of its
 * next loop iteration: contexts whose session is over are freed. */
static void tick(struct sequence *sequence)
{
	struct tokens_plugin *plugin = &sequence->live->plugin;
	trace("  tick");
	if(sequence->rechecking){
		sequence->rechecking = false;
		sessions_end_unmet(&plugin->sessions);
	}
	sessions_settle_departed(&plugin->sessions, broker_client_id);
	close_expired_tokens(plugin);
	tokens_plugin_end_grace_periods(plugin, test_clock_now());
	events_send_due_notices(plugin, test_clock_now());
	run_kicks(sequence);
	for(int i = 0; i < CONTEXTS; i++){
		if(broker[i].state == CONTEXT_DISUSED){
			broker[i].state = CONTEXT_FREE;
		}
	}
	test_assert_invariants(plugin);
}

static void let_time_pass(struct sequence *sequence)
{
	static const int64_t steps[] = {1, 40, 700, 5000, 90000};
	int64_t seconds = steps[pick(sequence, 5)];
	trace("  %lld seconds pass", (long long)seconds);
	test_clock_advance(seconds);
	tick(sequence);
}

/* Mostly a secret that logs in now (current or previous), sometimes any
 * ever issued; -1 when there is none. */
static int pick_secret(struct sequence *sequence)
{
	const struct store *store = &sequence->live->plugin.store;
	int working[MAX_SECRETS], count = 0;
	for(int i = 0; i < sequence->secret_count; i++){
		unsigned char hash[TOKEN_HASH_LEN];
		token_format_hash(sequence->secrets[i], hash);
		/* A bound token's secret works, for its own client id. */
		enum login_verdict verdict = login_answer_for(store, hash, NULL, test_clock_now()).verdict;
		if(verdict == LOGIN_ACCEPTED || verdict == LOGIN_CLIENT_ID_REFUSED){
			working[count++] = i;
		}
	}
	if(count > 0 && pick(sequence, 4) != 0){
		return working[pick(sequence, count)];
	}
	return sequence->secret_count ? pick(sequence, sequence->secret_count) : -1;
}

/* authentication_on_basic_auth for a token-shaped password; false when
 * the login is refused. */
static bool token_login(struct sequence *sequence, int index, const struct broker_context *context)
{
	struct tokens_plugin *plugin = &sequence->live->plugin;
	unsigned char hash[TOKEN_HASH_LEN];
	token_format_hash(sequence->secrets[context->secret], hash);
	struct login_answer answer = login_answer_for(&plugin->store, hash, context->client_id, test_clock_now());
	if(answer.verdict != LOGIN_ACCEPTED){
		sessions_unbind(&plugin->sessions, context_at(index));
		return false;
	}
	const struct session_login login = {context->client_id, context->username, hash, answer.via_previous,
			context->persists, context->persists};
	assert_true(sessions_bind(&plugin->sessions, context_at(index), answer.token, &login));
	assert_true(expiry_add(&plugin->expiry, answer.token));
	tokens_plugin_mark_used(plugin, answer.token, test_clock_now());
	return true;
}

/* A login on the context at index. One let in takes its client id over:
 * the context that had it is disconnected after the login, and its
 * session is over. */
static void log_in_at(struct sequence *sequence, int index, const struct broker_context *context)
{
	struct sessions *sessions = &sequence->live->plugin.sessions;
	trace("  context %d%s logs in as %s (username %s) with %s%d%s", index,
			broker[index].state == CONTEXT_OFFLINE ? " (the address of a dropped session)" : "", context->client_id,
			context->username ? context->username : "(none)", context->secret < 0 ? "no token" : "secret ",
			context->secret, context->persists ? ", persistent" : ", clean");
	broker[index] = (struct broker_context){CONTEXT_FREE, NULL, NULL, -1, false};
	sessions_note_login(sessions, context_at(index), context->client_id);
	if(context->secret < 0){
		sessions_unbind(sessions, context_at(index));   /* not a token: another plugin's */
	}else if(!token_login(sequence, index, context)){
		trace("  refused");
		return;
	}
	int old = holder_of(context->client_id);
	if(old >= 0){
		disconnect(sequence, old, false, false);
	}
	broker[index] = *context;
	broker[index].state = CONTEXT_CONNECTED;
	test_assert_invariants(&sequence->live->plugin);
}

/* A new connection: a free context, or (as when the broker dropped an
 * offline session without a word) the address of an offline one. */
static void connect_client(struct sequence *sequence)
{
	int index = pick(sequence, 4) ? find_context(sequence, CONTEXT_FREE) : -1;
	if(index < 0){
		index = find_context(sequence, CONTEXT_OFFLINE);
	}
	if(index < 0){
		return;
	}
	struct broker_context context = {.state = CONTEXT_CONNECTED};
	context.client_id = client_ids[pick(sequence, CLIENT_IDS)];
	context.username = usernames[pick(sequence, 3)];
	context.secret = pick(sequence, 8) ? pick_secret(sequence) : -1;
	context.persists = pick(sequence, 4) != 0;
	log_in_at(sequence, index, &context);
}

/* A connection leaves; the broker keeps a persistent session, or (its
 * expiry is 0, or it expired at once) not. Settled now or at a later tick. */
static void depart(struct sequence *sequence)
{
	int index = find_context(sequence, CONTEXT_CONNECTED);
	if(index < 0){
		return;
	}
	disconnect(sequence, index, broker[index].persists && pick(sequence, 4) != 0, false);
	if(pick(sequence, 2)){
		tick(sequence);
	}
}

/* A SIGHUP: the broker runs every session's login again, offline ones
 * too, and disconnects those refused (their sessions stay). */
static void recheck(struct sequence *sequence)
{
	struct tokens_plugin *plugin = &sequence->live->plugin;
	trace("  SIGHUP re-check");
	sessions_start_recheck(&plugin->sessions);
	for(int i = 0; i < CONTEXTS; i++){
		struct broker_context *context = &broker[i];
		if(context->state != CONTEXT_CONNECTED && context->state != CONTEXT_OFFLINE){
			continue;
		}
		const struct session_context seen = {context_at(i), context->client_id, context->username, false};
		sessions_note_recheck(&plugin->sessions, &seen);
		if(context->secret < 0){
			sessions_unbind(&plugin->sessions, context_at(i));
			continue;
		}
		unsigned char hash[TOKEN_HASH_LEN];
		token_format_hash(sequence->secrets[context->secret], hash);
		struct login_answer answer = login_answer_for(&plugin->store, hash, context->client_id, test_clock_now());
		if(answer.verdict != LOGIN_ACCEPTED){
			sessions_unbind(&plugin->sessions, context_at(i));
			disconnect(sequence, i, context->persists, true);
			continue;
		}
		const struct session *bound = sessions_find(&plugin->sessions, context_at(i));
		if(bound && !bound->disconnected){
			const struct session_login login = {context->client_id, context->username, hash, answer.via_previous,
					context->persists, context->persists};
			assert_true(sessions_bind(&plugin->sessions, context_at(i), answer.token, &login));
			assert_true(expiry_add(&plugin->expiry, answer.token));
		}
	}
	sequence->rechecking = true;
	test_assert_invariants(plugin);
}

static void step(struct sequence *sequence)
{
	struct tokens_plugin *plugin = &sequence->live->plugin;
	int kind = pick(sequence, 24);
	if(kind < 4){
		create_token(sequence);
	}else if(kind < 6){
		rotate_token(sequence);
	}else if(kind < 8){
		run_formatted(sequence, test_format("{\"commands\": [{\"command\": \"revokeToken\", \"name\": \"t%d\"}]}",
				pick(sequence, TOKEN_NAMES)));
	}else if(kind < 10){
		role_command(sequence);
	}else if(kind < 12){
		let_time_pass(sequence);
	}else if(kind < 17){
		connect_client(sequence);
	}else if(kind < 19){
		depart(sequence);
	}else if(kind < 20){
		tick(sequence);
	}else if(kind < 21){
		recheck(sequence);
	}else if(kind < 22){
		tokens_plugin_save_last_used(plugin);
	}else if(kind < 23){
		trace("  save sessions");
		tokens_plugin_save_sessions(plugin);
	}else{
		trace("  snapshot");
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
	/* The live instance dropped the grace periods that ended and the
	 * bindings of tokens that expired; so does a restarted one at its
	 * first tick. */
	close_expired_tokens(plugin);
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
		/* With every client id a context may have, and with none. */
		for(int c = -1; c < CLIENT_IDS; c++){
			const char *client_id = c < 0 ? NULL : client_ids[c];
			struct login_answer before = login_answer_for(live, hash, client_id, test_clock_now());
			struct login_answer after = login_answer_for(&restarted->store, hash, client_id, test_clock_now());
			if(before.verdict != after.verdict || before.via_previous != after.via_previous
					|| (before.token && strcmp(before.token->name, after.token->name) != 0)){
				fail_msg("sequence %d: secret %d logs in as %s (verdict %d) live but as %s (verdict %d) after a "
						"restart, as client %s", sequence->number, i, before.token ? before.token->name : "nobody",
						before.verdict, after.token ? after.token->name : "nobody", after.verdict,
						client_id ? client_id : "(none)");
			}
		}
	}
}

/* One binding as "client id, username, token, how", for sorting and for
 * the failure message. */
static void describe_binding(const struct session *session, char *text, size_t size)
{
	snprintf(text, size, "%s/%s/%s%s", session->client_id, session->username ? session->username : "(none)",
			session->token->name, session->via_previous ? "/previous" : "");
}

static int compare_text(const void *a, const void *b)
{
	return strcmp(a, b);
}

#define BINDING_TEXT 64

struct bindings {
	char text[MAX_BINDINGS][BINDING_TEXT];
	size_t count;
};

static void add_binding(struct sequence *sequence, struct bindings *bindings, const struct session *session)
{
	if(bindings->count == MAX_BINDINGS){
		fail_msg("sequence %d: more bindings than the contexts and client ids allow", sequence->number);
	}
	describe_binding(session, bindings->text[bindings->count++], BINDING_TEXT);
}

#define BINDINGS_LIST (MAX_BINDINGS * (BINDING_TEXT + 1) + 1)

static const char *bindings_list(const struct bindings *bindings, char list[BINDINGS_LIST])
{
	size_t length = 0;
	list[0] = '\0';
	for(size_t i = 0; i < bindings->count; i++){
		length += (size_t)snprintf(list + length, BINDINGS_LIST - length, " %s", bindings->text[i]);
	}
	return list;
}

/* What a restart must restore: the offline sessions and the persistent
 * connected ones (the broker restores them offline) still bound to a
 * token. Read from the tables, not through sessions_each_binding. */
static void bindings_to_restore(struct sequence *sequence, struct bindings *bindings)
{
	const struct sessions *sessions = &sequence->live->plugin.sessions;
	bindings->count = 0;
	for(const struct session *session = sessions->by_client; session; session = session->hh.next){
		if(session->token && session->persists){
			add_binding(sequence, bindings, session);
		}
	}
	for(const struct session *session = sessions->by_id; session; session = session->hh_id.next){
		add_binding(sequence, bindings, session);
	}
	qsort(bindings->text, bindings->count, BINDING_TEXT, compare_text);
}

static void restored_bindings(struct sequence *sequence, const struct tokens_plugin *restarted,
		struct bindings *bindings)
{
	if(restarted->sessions.by_client){
		fail_msg("sequence %d: a restart has connected sessions", sequence->number);
	}
	bindings->count = 0;
	for(const struct session *session = restarted->sessions.by_id; session; session = session->hh_id.next){
		add_binding(sequence, bindings, session);
	}
	qsort(bindings->text, bindings->count, BINDING_TEXT, compare_text);
}

static void assert_same_bindings(struct sequence *sequence, const struct tokens_plugin *restarted)
{
	struct bindings live, after;
	bindings_to_restore(sequence, &live);
	restored_bindings(sequence, restarted, &after);
	totals.saved_reloads++;
	totals.bindings_compared += live.count;
	for(size_t i = 0; i < live.count; i++){
		totals.via_previous_compared += strstr(live.text[i], "/previous") != NULL;
	}
	bool same = live.count == after.count;
	for(size_t i = 0; same && i < live.count; i++){
		same = strcmp(live.text[i], after.text[i]) == 0;
	}
	if(!same){
		char expected[BINDINGS_LIST], actual[BINDINGS_LIST];
		fail_msg("sequence %d: a restart restores [%s ] but the live instance has [%s ]", sequence->number,
				bindings_list(&after, actual), bindings_list(&live, expected));
	}
}

/* After a crash the files may lag behind (bindings are saved lazily),
 * but whatever comes back still logs in: its token is there, with the
 * saved hash as its current secret or its previous one in its grace. */
static void assert_bindings_still_log_in(struct sequence *sequence, const struct tokens_plugin *restarted)
{
	for(const struct session *session = restarted->sessions.by_id; session; session = session->hh_id.next){
		struct login_answer answer = login_answer_for(&restarted->store, session->hash, session->client_id,
				test_clock_now());
		struct login_answer live = login_answer_for(&sequence->live->plugin.store, session->hash, session->client_id,
				test_clock_now());
		if(answer.verdict != LOGIN_ACCEPTED || answer.token != session->token
				|| answer.via_previous != session->via_previous || live.verdict != LOGIN_ACCEPTED
				|| strcmp(live.token->name, session->token->name) != 0){
			char text[BINDING_TEXT];
			describe_binding(session, text, sizeof(text));
			fail_msg("sequence %d: a restart restores %s, but its secret logs in as %s%s (verdict %d; live: %s)",
					sequence->number, text, answer.token ? answer.token->name : "nobody",
					answer.via_previous ? " through its previous secret" : "", answer.verdict,
					live.token ? live.token->name : "nobody");
		}
	}
}

/* Most reloads follow a tick and a save, as the broker's own would: the
 * files then hold every binding. */
static void compare_with_restart(struct sequence *sequence, bool saved)
{
	struct tokens_plugin *plugin = &sequence->live->plugin;
	if(saved){
		tick(sequence);
		for(int i = 0; i < 4 && (plugin->sessions.leaving_count || plugin->sessions.kick_count); i++){
			tick(sequence);
		}
		trace("  save sessions");
		tokens_plugin_save_sessions(plugin);
	}
	trace("  reload%s", saved ? "" : " (after a crash)");
	/* lastUsed is saved lazily: what a restart may lose of it is not a
	 * disagreement. */
	tokens_plugin_save_last_used(plugin);
	char *dir = test_temp_dir();
	struct tokens_plugin *restarted = reloaded(sequence, dir);
	test_assert_stores_equal(&plugin->store, &restarted->store);
	assert_int_equal(plugin->expired_tokens, restarted->expired_tokens);
	assert_same_login_answers(sequence, restarted);
	assert_bindings_still_log_in(sequence, restarted);
	if(saved){
		assert_same_bindings(sequence, restarted);
	}else{
		totals.crash_reloads++;
		totals.bindings_after_crash += restarted->sessions.offline;
	}
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
	tokens_plugin_keep_sessions(plugin);
	memset(broker, 0, sizeof(broker));
	/* Some sequences bound the offline sessions tightly. */
	static const size_t bounds[] = {0, 0, 2, 5};
	plugin->sessions.max_offline = bounds[pick(&sequence, 4)];
	/* Some sequences fold the journal into snapshots often, some never. */
	persist_set_snapshot_after(plugin->persist, (size_t)pick(&sequence, 3) * 3);
	for(int role = 0; role < ROLE_NAMES; role++){
		run_formatted(&sequence, test_format("{\"commands\": [{\"command\": \"createRole\", \"rolename\": \"r%d\"}]}", role));
	}
	trace("sequence %d", number);
	for(int i = 0; i < STEPS; i++){
		step(&sequence);
		if(pick(&sequence, 10) == 0){
			compare_with_restart(&sequence, pick(&sequence, 3) != 0);
		}
	}
	compare_with_restart(&sequence, true);
	test_plugin_free(sequence.live);
}

static void random_sequences_reload_into_the_live_store(void **state)
{
	(void)state;
	const char *wanted = getenv("DIFFERENTIAL_SEQUENCES");
	const char *first_wanted = getenv("DIFFERENTIAL_FIRST");
	tracing = getenv("DIFFERENTIAL_TRACE") != NULL;
	int count = wanted ? atoi(wanted) : 2000;
	int first = first_wanted ? atoi(first_wanted) : 0;
	for(int number = first; number < first + count; number++){
		run_sequence(number);
	}
	printf("%d sequences of %d steps: every reload equal to the live store\n", count, STEPS);
	printf("%lu reloads after a save restored %lu bindings (%lu through a previous secret), "
			"%lu after a crash restored %lu bindings that still log in\n", totals.saved_reloads,
			totals.bindings_compared, totals.via_previous_compared, totals.crash_reloads, totals.bindings_after_crash);
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
		assert_int_equal(login_answer_for(&restarted->store, hash, NULL, test_clock_now()).verdict, LOGIN_UNKNOWN);
	}
	assert_null(restarted->store.previous_by_hash);
	tokens_plugin_free(restarted);
	test_remove_dir(dir);
	free(dir);
	test_plugin_free(sequence.live);
}

/* A device that reconnects while the broker still has its old connection:
 * the new login binds the client id, then the broker disconnects the old
 * context (its session taken over, its client id gone). The tick that
 * settles the old one must not save the end of the new one's binding. */
static void session_taken_over_keeps_its_binding_after_a_restart(void **state)
{
	(void)state;
	struct sequence sequence = {.number = -2, .random = 1};
	sequence.live = test_plugin_new();
	persist_set_io(sequence.live->plugin.persist, &fast_io);
	tokens_plugin_keep_sessions(&sequence.live->plugin);
	memset(broker, 0, sizeof(broker));
	run(&sequence, "{\"commands\": [{\"command\": \"createRole\", \"rolename\": \"r0\"}]}");
	run(&sequence, "{\"commands\": [{\"command\": \"createToken\", \"name\": \"t0\", \"role\": \"r0\", "
			"\"validUntil\": \"2027-01-01T00:00:00Z\"}]}");
	assert_int_equal(sequence.secret_count, 1);
	const struct broker_context device = {CONTEXT_CONNECTED, "c0", NULL, 0, true};
	log_in_at(&sequence, 0, &device);
	log_in_at(&sequence, 1, &device);
	assert_int_equal(broker[0].state, CONTEXT_DISUSED);
	compare_with_restart(&sequence, true);
	test_plugin_free(sequence.live);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(revoked_token_with_a_grace_period_stays_revoked_after_a_restart),
		cmocka_unit_test(session_taken_over_keeps_its_binding_after_a_restart),
		cmocka_unit_test(random_sequences_reload_into_the_live_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
