/*
 * In-process cost of the two callbacks that run for every connection and
 * every message: MOSQ_EVT_BASIC_AUTH (a token login) with 1k, 100k and 1M
 * tokens in the store, and MOSQ_EVT_ACL_CHECK for a role of 10 ACLs: a
 * publish (10 publishClientSend ACLs) and a delivery (5 subscribePattern
 * and 5 publishClientReceive ACLs: receiving needs both), for a role
 * without placeholders and for a fleet's role whose every ACL has one
 * (%t, %c or %u).
 *
 *   bench_callbacks [--quick]      ns per call (wall clock, best of 5 runs)
 *
 * Under `valgrind --tool=callgrind` run with --quick and divide the
 * instruction counts of the two callbacks by their call counts (make bench
 * does this): instruction counts do not depend on the machine's load.
 *
 * The callbacks are the plugin's own (authentication.c, authorization.c);
 * the broker functions they call (mosquitto_client_id, _address,
 * _username, _protocol_version, _clean_session) are stubbed.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "broker_api.h"

#include "broker_callbacks.h"
#include "instance.h"

#define CLIENTS 1024

static char publisher;   /* the connection whose publishes are checked */
static char subscriber;  /* the connection whose deliveries are checked */
static char fleet_publisher;    /* the same with the fleet's roles */
static char fleet_subscriber;

const char *mosquitto_client_address(const struct mosquitto *client)
{
	(void)client;
	return "127.0.0.1";
}

const char *mosquitto_client_id(const struct mosquitto *client)
{
	(void)client;
	return "bench-client";
}

#define OFFLINE_SESSIONS 100000
static char offline_contexts[OFFLINE_SESSIONS];   /* the offline sessions' contexts */

static void offline_client_id(size_t index, char id[32])
{
	snprintf(id, 32, "device-%07zu", index);
}

/* The broker kept the offline sessions: their contexts keep their ids. */
static const char *own_client_id(const struct mosquitto *client)
{
	static char id[32];
	offline_client_id((size_t)((const char *)client - offline_contexts), id);
	return id;
}

const char *mosquitto_client_username(const struct mosquitto *client)
{
	(void)client;
	return "bench-device";
}

/* MQTT 5 with clean start false: the session persists and the broker
 * restores it, so every login notes its binding for the next save (the
 * costlier case). */
int mosquitto_client_protocol_version(const struct mosquitto *client)
{
	(void)client;
	return 5;
}

bool mosquitto_client_clean_session(const struct mosquitto *client)
{
	(void)client;
	return false;
}

static void quiet_log(int level, const char *format, ...)
{
	(void)level;
	(void)format;
}

static int64_t fixed_now(void)
{
	return 1795000000;   /* 2026-11-18 */
}

static double seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* 5 subscribePattern and 5 publishClientReceive ACLs. */
static struct role *role_with_readers_acls(const char *name, const char *const topics[10])
{
	struct role *role = role_new(name);
	for(int i = 0; i < 5; i++){
		role_link_acl(role, role_acl_new(ACL_SUBSCRIBE_PATTERN, topics[i], 10 - i, true));
		role_link_acl(role, role_acl_new(ACL_PUBLISH_CLIENT_RECEIVE, topics[5 + i], 10 - i, true));
	}
	return role;
}

/* A plugin instance with `count` tokens, without a state file: the second
 * of the readers role, the third and fourth of the fleet's roles, the
 * others of the devices role. */
static struct tokens_plugin *plugin_with_tokens(size_t count, char (*secrets)[TOKEN_LEN + 1], size_t secret_count)
{
	struct tokens_plugin *plugin = calloc(1, sizeof(*plugin));
	store_init(&plugin->store);
	sessions_init(&plugin->sessions);
	expiry_init(&plugin->expiry);
	token_hasher_init(&plugin->hasher);
	plugin->log = quiet_log;
	plugin->now = fixed_now;
	struct role *role = role_new("devices");
	store_link_role(&plugin->store, role);
	static const char *const topics[10] = {
		"fleet/+/status", "fleet/+/telemetry/#", "alerts/#", "config/+/get", "ota/+/progress",
		"logs/+/+", "metrics/#", "cmd/+/reply", "presence/+", "devices/+/data",
	};
	for(int i = 0; i < 10; i++){
		role_link_acl(role, role_acl_new(ACL_PUBLISH_CLIENT_SEND, topics[i], 10 - i, true));
	}
	struct role *readers = role_with_readers_acls("readers", topics);
	store_link_role(&plugin->store, readers);
	/* The same shapes, each device confined to its own levels. */
	static const char *const fleet_topics[10] = {
		"fleet/%t/status", "fleet/%c/telemetry/#", "alerts/%u/#", "config/%t/get", "ota/%c/progress",
		"logs/%t/+", "metrics/%u/#", "cmd/%c/reply", "presence/%t", "devices/%c/data",
	};
	struct role *fleet = role_new("fleet");
	store_link_role(&plugin->store, fleet);
	for(int i = 0; i < 10; i++){
		role_link_acl(fleet, role_acl_new(ACL_PUBLISH_CLIENT_SEND, fleet_topics[i], 10 - i, true));
	}
	struct role *fleet_readers = role_with_readers_acls("fleet-readers", fleet_topics);
	store_link_role(&plugin->store, fleet_readers);
	for(size_t i = 0; i < count; i++){
		char secret[TOKEN_LEN + 1], name[32];
		unsigned char hash[TOKEN_HASH_LEN];
		token_format_generate(secret);
		token_format_hash(secret, hash);
		if(i < secret_count){
			memcpy(secrets[i], secret, sizeof(secret));
		}
		snprintf(name, sizeof(name), "device-%zu", i);
		struct role *roles[4] = {role, readers, fleet, fleet_readers};
		store_link_token(&plugin->store, token_new(name, "bench", hash, 1790000000, 1890000000, TIME_NEVER),
				roles[i < 4 ? i : 0]);
	}
	return plugin;
}

static void free_plugin(struct tokens_plugin *plugin)
{
	sessions_clear(&plugin->sessions);
	expiry_clear(&plugin->expiry);
	store_clear(&plugin->store);
	token_hasher_free(&plugin->hasher);
	free(plugin->last_used_queue);
	free(plugin);
}

/* Logins of known tokens, each from one of CLIENTS connections in turn, so
 * every call also replaces that connection's previous binding. */
static double login_ns(struct tokens_plugin *plugin, char (*secrets)[TOKEN_LEN + 1], size_t secret_count, long calls)
{
	static char clients[CLIENTS];
	struct mosquitto_evt_basic_auth event = {0};
	event.username = "device";
	double best = 1e9;
	for(int run = 0; run < 5; run++){
		double start = seconds();
		for(long i = 0; i < calls; i++){
			event.client = (struct mosquitto *)&clients[i % CLIENTS];
			event.password = secrets[i % (long)secret_count];
			if(authentication_on_basic_auth(MOSQ_EVT_BASIC_AUTH, &event, plugin) != MOSQ_ERR_SUCCESS){
				fprintf(stderr, "login refused\n");
				exit(1);
			}
		}
		double ns = (seconds() - start) / (double)calls * 1e9;
		if(ns < best) best = ns;
	}
	return best;
}

/* A check that the role allows: a publish whose topic its 5th ACL (by
 * priority) matches, or a delivery on a topic its 5th subscribePattern
 * covers and no publishClientReceive ACL matches (all 5 are tried). The
 * fleet's 5th ACL is "ota/%c/progress". */
static double acl_ns(struct tokens_plugin *plugin, long calls, int access, bool fleet)
{
	struct mosquitto_evt_acl_check event = {0};
	bool write = access == MOSQ_ACL_WRITE;
	event.client = (struct mosquitto *)(fleet ? (write ? &fleet_publisher : &fleet_subscriber)
			: (write ? &publisher : &subscriber));
	event.topic = fleet ? "ota/bench-client/progress" : "ota/boiler-7/progress";
	event.access = access;
	double best = 1e9;
	for(int run = 0; run < 5; run++){
		double start = seconds();
		for(long i = 0; i < calls; i++){
			if(authorization_on_acl_check(MOSQ_EVT_ACL_CHECK, &event, plugin) != MOSQ_ERR_SUCCESS){
				fprintf(stderr, "check denied\n");
				exit(1);
			}
		}
		double ns = (seconds() - start) / (double)calls * 1e9;
		if(ns < best) best = ns;
	}
	return best;
}

/* Every token logged in once since the last save: how long the lazy
 * lastUsed save takes, all batches of it, into a journal in a scratch
 * folder (one fsync per batch). */
static double last_used_save_ms(struct tokens_plugin *plugin, size_t *batches)
{
	char folder[] = "/tmp/tokens-bench-XXXXXX", path[64], error[1024];
	if(mkdtemp(folder) == NULL){
		return -1;
	}
	snprintf(path, sizeof(path), "%s/tokens.json", folder);
	plugin->persist = persist_open(path, error, sizeof(error));
	if(plugin->persist == NULL){
		fprintf(stderr, "%s\n", error);
		exit(1);
	}
	for(struct token *token = plugin->store.tokens_by_hash; token; token = token->hh_hash.next){
		tokens_plugin_mark_used(plugin, token, fixed_now());
	}
	*batches = 0;
	double start = seconds();
	while(plugin->last_used_queued > 0){
		tokens_plugin_save_last_used(plugin);
		(*batches)++;
	}
	double ms = (seconds() - start) * 1e3;
	persist_close(plugin->persist);
	plugin->persist = NULL;
	char journal[80];
	snprintf(journal, sizeof(journal), "%s.journal", path);
	unlink(journal);
	unlink(path);
	snprintf(journal, sizeof(journal), "%s.lock", path);
	unlink(journal);
	rmdir(folder);
	return ms;
}

/* Heap bytes per offline persistent session bound to a token, client id
 * and username of 14 bytes each, in steady state (after a save emptied
 * the table of changes). */
static double offline_session_bytes(struct tokens_plugin *plugin, size_t count)
{
	if(count > OFFLINE_SESSIONS){
		count = OFFLINE_SESSIONS;
	}
	struct token *token = plugin->store.tokens_by_hash;
	struct mallinfo2 before = mallinfo2();
	for(size_t i = 0; i < count; i++){
		char id[32];
		offline_client_id(i, id);
		struct session_login login = {id, id, token->hash, false, true, true};
		const struct mosquitto *client = (const struct mosquitto *)&offline_contexts[i];
		if(!sessions_bind(&plugin->sessions, client, token, &login)){
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
		const struct session_context context = {client, id, id, false};
		sessions_depart(&plugin->sessions, &context, DEPARTURE_ASK_AT_TICK, false);
	}
	sessions_settle_departed(&plugin->sessions, own_client_id);
	session_records_clear(&plugin->sessions.changes);
	struct mallinfo2 after = mallinfo2();
	if(plugin->sessions.offline != count){
		fprintf(stderr, "%zu offline sessions, not %zu\n", plugin->sessions.offline, count);
		exit(1);
	}
	return (double)(after.uordblks - before.uordblks) / (double)count;
}

int main(int argc, char *argv[])
{
	bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	static const size_t sizes[] = {1000, 100000, 1000000};
	enum { SECRETS = 4096 };
	static char secrets[SECRETS][TOKEN_LEN + 1];
	long calls = quick ? 20000 : 1000000;

	for(size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++){
		if(quick && sizes[s] > 1000) break;
		size_t known = sizes[s] < SECRETS ? sizes[s] : SECRETS;
		struct tokens_plugin *plugin = plugin_with_tokens(sizes[s], secrets, known);
		printf("login callback, %7zu tokens: %6.0f ns per call (%ld calls)\n", sizes[s],
				login_ns(plugin, secrets, known, calls), 5 * calls);
		if(sizes[s] == 100000){
			printf("offline sessions, %6d bound: %6.0f bytes each (ids and usernames of 14 bytes)\n",
					OFFLINE_SESSIONS, offline_session_bytes(plugin, OFFLINE_SESSIONS));
			size_t batches;
			double ms = last_used_save_ms(plugin, &batches);
			printf("lastUsed save, %7zu tokens used: %6.1f ms in %zu batches\n", sizes[s], ms, batches);
		}
		if(s == 0){
			/* Bind one connection to a token of each 10-ACL role. */
			char *connections[4] = {&publisher, &subscriber, &fleet_publisher, &fleet_subscriber};
			for(int i = 0; i < 4; i++){
				struct mosquitto_evt_basic_auth login = {.client = (struct mosquitto *)connections[i],
					.password = secrets[i]};
				authentication_on_basic_auth(MOSQ_EVT_BASIC_AUTH, &login, plugin);
			}
			printf("ACL check, role of 10 ACLs, publish: %6.0f ns per call (%ld calls)\n",
					acl_ns(plugin, calls * 10, MOSQ_ACL_WRITE, false), 5 * calls * 10);
			printf("ACL check, role of 10 ACLs, receive: %6.0f ns per call (%ld calls)\n",
					acl_ns(plugin, calls * 10, MOSQ_ACL_READ, false), 5 * calls * 10);
			printf("ACL check, role of 10 ACLs with placeholders, publish: %6.0f ns per call (%ld calls)\n",
					acl_ns(plugin, calls * 10, MOSQ_ACL_WRITE, true), 5 * calls * 10);
			printf("ACL check, role of 10 ACLs with placeholders, receive: %6.0f ns per call (%ld calls)\n",
					acl_ns(plugin, calls * 10, MOSQ_ACL_READ, true), 5 * calls * 10);
		}
		free_plugin(plugin);
	}
	return 0;
}
