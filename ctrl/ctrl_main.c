/*
 * mosquitto_ctrl_tokens.so: `mosquitto_ctrl [connection options] tokens ...`.
 *
 * mosquitto_ctrl parses the connection options, loads this module and
 * calls ctrl_main with the words after "tokens". The module builds one
 * control request; mosquitto_ctrl connects, subscribes to the response
 * topic, publishes, and hands the first reply to payload_callback. `list`
 * is the exception: it needs many requests, which mosquitto_ctrl cannot
 * make, so it connects by itself and returns "done" (ctrl_list.c).
 *
 * Everything but the offline commands (init, import, export: no broker,
 * a state file or the fleet's database) and help reads or fills in
 * mosquitto_ctrl's structure, whose layout depends on its release
 * (ctrl_layout.h): on a release the module does not know, they stop with
 * a message before touching it.
 *
 * mosquitto_ctrl exits 0 whatever happens after it connects, so the module
 * decides the exit status itself: the reply callback exits 1 on an error
 * response, and an exit handler exits 1 when no reply came at all (refused
 * publish, no plugin, timeout).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctrl_layout.h"
#include "ctrl_list.h"
#include "rfc3339.h"
#include "token_format.h"

/* A validUntil argument as canonical UTC; false, with the error printed,
 * for anything else. */
static bool valid_until_argument(const char *text, char out[RFC3339_LEN + 1])
{
	if(ctrl_parse_valid_until(text, (int64_t)time(NULL), out)){
		return true;
	}
	fprintf(stderr, "Error: validUntil \"%s\" is neither a duration (30d, 12h, 45m, 2w) "
			"nor an RFC 3339 time (2027-01-01T00:00:00Z)\n", text);
	return false;
}

/* create <name> <role> <validUntil> [--client-id ID]: the option may
 * stand anywhere; the plugin checks the client id. */
static bool build_create(int argc, char *argv[], cJSON *command)
{
	const char *positional[3];
	const char *client_id = NULL;
	int count = 0;
	for(int i = 0; i < argc; i++){
		if(strcmp(argv[i], "--client-id") == 0){
			if(i + 1 >= argc || client_id){
				fprintf(stderr, "Error: --client-id needs one client id, given once\n");
				return false;
			}
			client_id = argv[++i];
		}else if(count < 3){
			positional[count++] = argv[i];
		}else{
			count++;
		}
	}
	if(count != 3){
		fprintf(stderr, "Usage: mosquitto_ctrl [options] tokens create <name> <role> <validUntil> [--client-id ID]\n");
		return false;
	}
	char valid_until[RFC3339_LEN + 1];
	if(!valid_until_argument(positional[2], valid_until)){
		return false;
	}
	return cJSON_AddStringToObject(command, "name", positional[0])
		&& cJSON_AddStringToObject(command, "role", positional[1])
		&& cJSON_AddStringToObject(command, "validUntil", valid_until)
		&& (client_id == NULL || cJSON_AddStringToObject(command, "clientId", client_id));
}

/* A 64-digit lowercase hex argument is a hash; anything else a name. */
static bool build_token_target(int argc, char *argv[], cJSON *command)
{
	(void)argc;
	unsigned char hash[TOKEN_HASH_LEN];
	const char *key = token_format_hash_from_hex(argv[0], hash) ? "hash" : "name";
	return cJSON_AddStringToObject(command, key, argv[0]) != NULL;
}

/* A duration, or a plain number of seconds (0 included). */
static bool grace_seconds(const char *text, int64_t *seconds)
{
	char *end;
	long long value = strtoll(text, &end, 10);
	if(end != text && *end == '\0' && value >= 0 && text[0] != '-' && text[0] != '+'){
		*seconds = value;
		return true;
	}
	return ctrl_parse_duration(text, seconds);
}

/* rotate <name|hash> [validUntil] [--grace 10m] */
static bool build_rotate(int argc, char *argv[], cJSON *command)
{
	if(!build_token_target(1, argv, command)){
		return false;
	}
	bool have_valid_until = false;
	for(int i = 1; i < argc; i++){
		int64_t seconds;
		if(strcmp(argv[i], "--grace") == 0){
			if(i + 1 >= argc || !grace_seconds(argv[i + 1], &seconds)){
				fprintf(stderr, "Error: --grace needs a duration such as 10m, 2h or 1d (or seconds)\n");
				return false;
			}
			cJSON_AddNumberToObject(command, "graceSeconds", (double)seconds);
			i++;
		}else if(!have_valid_until){
			char valid_until[RFC3339_LEN + 1];
			if(!valid_until_argument(argv[i], valid_until)){
				return false;
			}
			cJSON_AddStringToObject(command, "validUntil", valid_until);
			have_valid_until = true;
		}else{
			fprintf(stderr, "Error: unexpected argument \"%s\"\n", argv[i]);
			return false;
		}
	}
	return true;
}

static bool build_rolename(int argc, char *argv[], cJSON *command)
{
	(void)argc;
	return cJSON_AddStringToObject(command, "rolename", argv[0]) != NULL;
}

static bool build_nothing(int argc, char *argv[], cJSON *command)
{
	(void)argc;
	(void)argv;
	(void)command;
	return true;
}

static bool build_add_acl(int argc, char *argv[], cJSON *command)
{
	bool allow = strcmp(argv[3], "allow") == 0;
	if(!allow && strcmp(argv[3], "deny") != 0){
		fprintf(stderr, "Error: the fourth argument is allow or deny, not \"%s\"\n", argv[3]);
		return false;
	}
	if(argc == 5){
		char *end;
		long priority = strtol(argv[4], &end, 10);
		if(end == argv[4] || *end != '\0'){
			fprintf(stderr, "Error: priority must be a whole number, not \"%s\"\n", argv[4]);
			return false;
		}
		cJSON_AddNumberToObject(command, "priority", (double)priority);
	}
	return cJSON_AddStringToObject(command, "rolename", argv[0])
		&& cJSON_AddStringToObject(command, "acltype", argv[1])
		&& cJSON_AddStringToObject(command, "topic", argv[2])
		&& cJSON_AddBoolToObject(command, "allow", allow);
}

static bool build_remove_acl(int argc, char *argv[], cJSON *command)
{
	(void)argc;
	return cJSON_AddStringToObject(command, "rolename", argv[0])
		&& cJSON_AddStringToObject(command, "acltype", argv[1])
		&& cJSON_AddStringToObject(command, "topic", argv[2]);
}

static void print_done(const cJSON *data)
{
	(void)data;
	printf("OK\n");
}

static const struct subcommand subcommands[] = {
	{"create", "createToken", "<name> <role> <validUntil> [--client-id ID]", 3, 5, build_create, ctrl_print_created_token,
		NULL},
	{"list", "listTokens", "[--status valid|invalid|all] [--role ROLE] [--name-prefix PREFIX] [--count N] [--offset N]",
		0, 10, ctrl_build_list, ctrl_print_list, ctrl_run_list},
	{"get", "getToken", "<name|hash>", 1, 1, build_token_target, ctrl_print_token, NULL},
	{"revoke", "revokeToken", "<name|hash>", 1, 1, build_token_target, ctrl_print_revoked, NULL},
	{"rotate", "rotateToken", "<name|hash> [validUntil] [--grace 10m]", 1, 4, build_rotate, ctrl_print_rotated, NULL},
	{"createRole", "createRole", "<rolename>", 1, 1, build_rolename, print_done, NULL},
	{"getRole", "getRole", "<rolename>", 1, 1, build_rolename, ctrl_print_role, NULL},
	{"listRoles", "listRoles", "", 0, 0, build_nothing, ctrl_print_roles, NULL},
	{"deleteRole", "deleteRole", "<rolename>", 1, 1, build_rolename, print_done, NULL},
	{"addRoleACL", "addRoleACL", "<rolename> <acltype> <topic> allow|deny [priority]", 4, 5, build_add_acl, print_done, NULL},
	{"removeRoleACL", "removeRoleACL", "<rolename> <acltype> <topic>", 3, 3, build_remove_acl, print_done, NULL},
};
#define SUBCOMMAND_COUNT (sizeof(subcommands) / sizeof(subcommands[0]))

/* The commands that need no broker: each parses its own arguments and
 * returns the exit status. */
struct offline_command {
	const char *name;
	const char *usage;
	int (*run)(int argc, char *argv[]);
};

static const struct offline_command offline_commands[] = {
	{"init", "<state-file> <admin-token-name> [validity]", ctrl_init},
	{"init", "<postgres> <admin-token-name> [validity]", ctrl_init},
	{"import", "<state-file> <postgres>", ctrl_import},
	{"export", "<postgres> <state-file>", ctrl_export},
};
#define OFFLINE_COUNT (sizeof(offline_commands) / sizeof(offline_commands[0]))

static const struct offline_command *find_offline(const char *name)
{
	for(size_t i = 0; i < OFFLINE_COUNT; i++){
		if(strcmp(offline_commands[i].name, name) == 0){
			return &offline_commands[i];
		}
	}
	return NULL;
}

static void print_usage(FILE *out)
{
	fprintf(out, "\nApplication tokens module (mosquitto_tokens plugin)\n");
	fprintf(out, "====================================================\n");
	fprintf(out, "\nOffline, before the broker starts (no connection options):\n");
	for(size_t i = 0; i < OFFLINE_COUNT; i++){
		fprintf(out, "    mosquitto_ctrl tokens %s %s\n", offline_commands[i].name, offline_commands[i].usage);
	}
	fprintf(out, "<postgres>: a libpq URI (postgresql://user@host:5432/dbname), or --postgres '<conninfo>'\n");
	fprintf(out, "(any libpq connection string, host=... dbname=...) before the other arguments. init and\n");
	fprintf(out, "import fill an empty database store only; export never overwrites a file (docs/postgresql.md).\n");
	fprintf(out, "\nAgainst a running broker (log in with -u <token-name> -P <admin-token>):\n");
	for(size_t i = 0; i < SUBCOMMAND_COUNT; i++){
		fprintf(out, "    mosquitto_ctrl [options] tokens %-13s %s\n", subcommands[i].name, subcommands[i].usage);
	}
	fprintf(out, "\nvalidUntil and validity: a duration from now (30d, 12h, 45m, 2w) or an RFC 3339\n");
	fprintf(out, "time (2027-01-01T00:00:00Z). acltype: publishClientSend, publishClientReceive,\n");
	fprintf(out, "subscribeLiteral, subscribePattern, unsubscribeLiteral, unsubscribePattern.\n");
	fprintf(out, "create --client-id binds the token to one MQTT client id: it logs in with no other.\n");
	fprintf(out, "Higher priority ACLs are evaluated first. rotate --grace keeps the old token working\n");
	fprintf(out, "for that long (at most 7d). list fetches any number of tokens, 500 per request, and prints\n");
	fprintf(out, "one table; --role and --name-prefix show only the tokens of that role or whose name\n");
	fprintf(out, "starts so (with --status too); --count N shows at most N of them, --offset N skips the first N.\n");
	fprintf(out, "Lifecycle events: mosquitto_sub -t '" EVENTS_TOPIC "'.\n\n");
}

/* ---- the reply ---- */

/* The one request of this process; the exit handler has no other way in. */
static const struct subcommand *pending_request;
static bool reply_received;

static void exit_without_reply(void)
{
	if(pending_request && !reply_received){
		fprintf(stderr, "Error: no reply from the broker. Is the mosquitto_tokens plugin loaded, and may "
				"this client publish to %s and subscribe to %s?\n", CONTROL_TOPIC, RESPONSE_TOPIC);
		fflush(stderr);
		_exit(1);
	}
}

static void on_reply(struct mosq_ctrl *ctrl, long payload_len, const void *payload)
{
	(void)ctrl;
	reply_received = true;
	int status = ctrl_print_reply(pending_request, payload, payload_len > 0 ? (size_t)payload_len : 0);
	fflush(stdout);
	if(status != 0){
		exit(status);
	}
}

char *ctrl_request_payload(const struct subcommand *sub, int argc, char *argv[])
{
	cJSON *request = cJSON_CreateObject();
	cJSON *commands = cJSON_AddArrayToObject(request, "commands");
	cJSON *command = cJSON_CreateObject();
	char *payload = NULL;
	if(commands && command && cJSON_AddItemToArray(commands, command)){
		if(cJSON_AddStringToObject(command, "command", sub->command) && sub->build(argc, argv, command)){
			payload = cJSON_PrintUnformatted(request);
		}
	}else{
		cJSON_Delete(command);
	}
	cJSON_Delete(request);
	return payload;
}

const struct subcommand *ctrl_find_subcommand(const char *name)
{
	for(size_t i = 0; i < SUBCOMMAND_COUNT; i++){
		if(strcmp(subcommands[i].name, name) == 0){
			return &subcommands[i];
		}
	}
	return NULL;
}

/* The layout of mosquitto_ctrl's structure and the connection options in
 * it; exits on a release the module does not know, and on one that would
 * not send the request. */
static const struct ctrl_layout *read_options(struct mosq_ctrl *ctrl, struct ctrl_options *options)
{
	const struct ctrl_layout *layout = ctrl_layout_current();
	if(layout == NULL){
		exit(1);
	}
	ctrl_layout_options(layout, ctrl, options);
	if(options->data_file != NULL){
		/* mosquitto_ctrl 2.1 sends nothing with -f: no reply would come. */
		fprintf(stderr, "Error: -f (%s) is for editing a file offline, which tokens does not do: its "
				"commands go to a running broker. To create a state file offline: mosquitto_ctrl tokens "
				"init <state-file> <admin-token-name>\n", options->data_file);
		exit(EXIT_USAGE);
	}
	return layout;
}

int ctrl_main(int argc, char *argv[], struct mosq_ctrl *ctrl)
{
	if(argc == 0 || strcmp(argv[0], "help") == 0 || strcmp(argv[0], "--help") == 0){
		print_usage(argc == 0 ? stderr : stdout);
		if(argc == 0) exit(EXIT_USAGE);
		return -1;
	}
	const struct offline_command *offline = find_offline(argv[0]);
	if(offline){
		int status = offline->run(argc - 1, argv + 1);
		if(status != 0) exit(status);
		return -1;
	}
	struct ctrl_options options;
	const struct ctrl_layout *layout = read_options(ctrl, &options);
	const struct subcommand *sub = ctrl_find_subcommand(argv[0]);
	int sub_argc = argc - 1;
	if(sub == NULL || sub_argc < sub->min_args || sub_argc > sub->max_args){
		if(sub == NULL){
			fprintf(stderr, "Error: unknown tokens command \"%s\"\n", argv[0]);
			print_usage(stderr);
		}else{
			fprintf(stderr, "Usage: mosquitto_ctrl [options] tokens %s %s\n", sub->name, sub->usage);
		}
		exit(EXIT_USAGE);
	}
	/* list runs by itself, or (fallback) hands back its one request */
	char *payload = sub->run ? sub->run(sub, sub_argc, argv + 1, &options) : ctrl_request_payload(sub, sub_argc, argv + 1);
	if(payload == NULL){
		if(sub->run) return -1;   /* done: mosquitto_ctrl is not to connect */
		exit(EXIT_USAGE);
	}
	/* mosquitto_ctrl 2.1 frees the three after sending, 2.0 leaves them to
	 * the exit. (Allocated in ctrl_main itself: test_valgrind_tools.py
	 * knows them by this frame when a run without a reply leaves them.) */
	char *request_topic = strdup(CONTROL_TOPIC);
	char *response_topic = strdup(RESPONSE_TOPIC);
	if(request_topic == NULL || response_topic == NULL){
		fprintf(stderr, "Error: out of memory\n");
		exit(1);
	}
	ctrl_layout_set_request(layout, ctrl, request_topic, response_topic, payload, on_reply);
	pending_request = sub;
	atexit(exit_without_reply);
	return 0;
}
