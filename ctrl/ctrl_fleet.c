/*
 * The offline commands that use the fleet's PostgreSQL database
 * (docs/postgresql.md): `init <postgres> ...`, `import <state-file>
 * <postgres>` and `export <postgres> <state-file>`. Like the file's init
 * they run without a broker; the database work is fleet_transfer.h's.
 *
 * <postgres> is a libpq URI (postgresql://... or postgres://...), or
 * `--postgres '<conninfo>'` before the other arguments, for any connection
 * string libpq takes (host=... dbname=...).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctrl_module.h"
#include "fleet_transfer.h"
#include "persist.h"
#include "session_records.h"

#define MEMBER "mosquitto_ctrl"
#define CONNECT_TIMEOUT_SECONDS 10
#define EXPORT_TIMEOUT_MS 30000
#define POSTGRES_ARGUMENT "<postgres>: a postgresql:// or postgres:// URI, or --postgres '<conninfo>' first"

static bool is_postgres_uri(const char *text)
{
	return strncmp(text, "postgresql://", 13) == 0 || strncmp(text, "postgres://", 11) == 0;
}

bool ctrl_targets_postgres(int argc, char *argv[])
{
	return argc > 0 && (strcmp(argv[0], "--postgres") == 0 || is_postgres_uri(argv[0]));
}

/* Takes `--postgres <conninfo>` off the front of the arguments. */
static bool take_postgres_option(int *argc, char ***argv, const char **conninfo)
{
	if(*argc < 2 || strcmp((*argv)[0], "--postgres") != 0){
		return false;
	}
	*conninfo = (*argv)[1];
	*argc -= 2;
	*argv += 2;
	return true;
}

/* Takes <postgres> off the front: the option, or a URI. */
static bool take_postgres_first(int *argc, char ***argv, const char **conninfo)
{
	if(take_postgres_option(argc, argv, conninfo)){
		return true;
	}
	if(*argc < 1 || !is_postgres_uri((*argv)[0])){
		return false;
	}
	*conninfo = (*argv)[0];
	(*argc)--;
	(*argv)++;
	return true;
}

/* The conninfo as the broker's option, unless it holds a password: that
 * is not printed (a password file, ~/.pgpass or PGPASSFILE, keeps it out
 * of mosquitto.conf too). */
static void print_conninfo_option(const char *conninfo)
{
	char *problem = NULL;
	PQconninfoOption *options = PQconninfoParse(conninfo, &problem);
	bool has_password = options == NULL;   /* unparsable here: do not risk it */
	for(PQconninfoOption *option = options; option && option->keyword; option++){
		if(strcmp(option->keyword, "password") == 0 && option->val && option->val[0]){
			has_password = true;
		}
	}
	PQconninfoFree(options);
	PQfreemem(problem);
	if(has_password){
		printf("    plugin_opt_postgres_conninfo <your connection string; it holds a password, not repeated here>\n");
	}else{
		printf("    plugin_opt_postgres_conninfo %s\n", conninfo);
	}
}

static void print_fleet_config(const char *conninfo)
{
	printf("Load the plugin on every broker of the fleet with:\n    plugin /path/to/mosquitto_tokens.so\n");
	print_conninfo_option(conninfo);
	printf("    plugin_opt_state_file /var/lib/mosquitto/tokens-cache.json\n");
	printf("(the state file is each broker's local cache of the database's store, which lets it start\n"
			"and serve logins while the database is unreachable; the broker's user must own it)\n\n");
}

/* Connects and fills the empty database store with store: the number of
 * changes written, or -1 with the error printed. */
static long long import_store(const char *conninfo, const struct store *store, char fleet_id[FLEET_ID_HEX_LEN + 1])
{
	char error[1024];
	PGconn *conn = fleet_transfer_connect(conninfo, CONNECT_TIMEOUT_SECONDS, fleet_id, error, sizeof(error));
	size_t changes = 0;
	bool ok = conn && fleet_transfer_import(conn, store, MEMBER, &changes, error, sizeof(error));
	PQfinish(conn);
	if(!ok){
		fprintf(stderr, "Error: %s\n", error);
		return -1;
	}
	return (long long)changes;
}

/* ---- init <postgres> <admin-token-name> [validity] ---- */

int ctrl_init_postgres(int argc, char *argv[])
{
	const char *conninfo = NULL;
	if(!take_postgres_first(&argc, &argv, &conninfo) || argc < 1 || argc > 2){
		fprintf(stderr, "Usage: mosquitto_ctrl tokens init <postgres> <admin-token-name> [validity]\n"
				"(" POSTGRES_ARGUMENT ")\n");
		return EXIT_USAGE;
	}
	struct admin_init made;
	int status = ctrl_admin_init_make(&made, argv[0], argc == 2 ? argv[1] : NULL);
	char fleet_id[FLEET_ID_HEX_LEN + 1] = "";
	if(status == 0){
		status = import_store(conninfo, &made.store, fleet_id) < 0 ? 1 : 0;
	}
	if(status == 0){
		printf("Created role \"%s\" and admin token \"%s\" in the database (changes 1 and 2 of store %s).\n\n",
				CTRL_ADMIN_ROLE, made.name, fleet_id);
		ctrl_print_admin_secret(&made);
		print_fleet_config(conninfo);
		ctrl_print_manage_hint(made.name);
	}
	ctrl_admin_init_clear(&made);
	return status;
}

/* ---- import <state-file> <postgres> ---- */

/* persist_load reads a missing file as an empty store: say so instead. */
static bool state_file_exists(const char *path)
{
	struct stat info;
	if(stat(path, &info) != 0){
		fprintf(stderr, "Error: cannot read %s: %s\n", path, strerror(errno));
		return false;
	}
	return true;
}

/* The file and its journal, as the broker would load them; also counts
 * the persistent-session bindings, which do not go to the database. */
static bool load_state(const char *path, struct store *store, size_t *bindings)
{
	char error[1024];
	struct session_records sessions;
	session_records_init(&sessions);
	struct persist *persist = persist_open(path, error, sizeof(error));
	bool loaded = false;
	if(persist){
		persist_set_session_sink(persist, &sessions);
		loaded = persist_load(persist, store, error, sizeof(error));
		persist_close_removing_lock(persist);
	}
	*bindings = session_records_count(&sessions);
	session_records_clear(&sessions);
	if(!loaded){
		fprintf(stderr, "Error: %s\n", error);
		if(persist == NULL && strstr(error, "already in use")){
			fprintf(stderr, "Stop the broker that uses it first: import reads a state file only while "
					"no broker writes it.\n");
		}
	}
	return loaded;
}

static size_t previous_secrets(const struct store *store)
{
	size_t count = 0, found = 0;
	struct token **tokens = store_sorted_tokens(store, &count);
	for(size_t i = 0; tokens && i < count; i++){
		found += store_find_previous(store, tokens[i]) != NULL;
	}
	free(tokens);
	return found;
}

static void print_imported(const char *path, const char *conninfo, const struct store *store, long long changes,
		const char *fleet_id, size_t bindings)
{
	printf("Imported %zu roles and %zu tokens from %s into the database ", store_role_count(store),
			store_token_count(store), path);
	if(changes > 0){
		printf("(changes 1 to %lld of store %s).\n", changes, fleet_id);
	}else{
		printf("(store %s stays empty: the file holds nothing).\n", fleet_id);
	}
	size_t previous = previous_secrets(store);
	if(previous > 0 || bindings > 0){
		printf("Not carried over: %zu rotated tokens' previous secrets (their grace periods end now), "
				"%zu persistent-session bindings.\n", previous, bindings);
	}
	printf("\n");
	print_fleet_config(conninfo);
}

int ctrl_import(int argc, char *argv[])
{
	const char *conninfo = NULL, *path = NULL;
	if(take_postgres_option(&argc, &argv, &conninfo) && argc == 1){
		path = argv[0];
	}else if(conninfo == NULL && argc == 2 && is_postgres_uri(argv[1])){
		path = argv[0];
		conninfo = argv[1];
	}
	if(path == NULL){
		fprintf(stderr, "Usage: mosquitto_ctrl tokens import <state-file> <postgres>\n"
				"       mosquitto_ctrl tokens import --postgres '<conninfo>' <state-file>\n");
		return EXIT_USAGE;
	}
	struct store store;
	store_init(&store);
	size_t bindings = 0;
	char fleet_id[FLEET_ID_HEX_LEN + 1] = "";
	int status = 1;
	if(state_file_exists(path) && load_state(path, &store, &bindings)){
		long long changes = import_store(conninfo, &store, fleet_id);
		if(changes >= 0){
			print_imported(path, conninfo, &store, changes, fleet_id, bindings);
			status = 0;
		}
	}
	store_clear(&store);
	return status;
}

/* ---- export <postgres> <state-file> ---- */

int ctrl_export(int argc, char *argv[])
{
	const char *conninfo = NULL;
	if(!take_postgres_first(&argc, &argv, &conninfo) || argc != 1){
		fprintf(stderr, "Usage: mosquitto_ctrl tokens export <postgres> <state-file>\n"
				"       mosquitto_ctrl tokens export --postgres '<conninfo>' <state-file>\n");
		return EXIT_USAGE;
	}
	const char *path = argv[0];
	if(!ctrl_claim_new_file(path, "export")){
		return 1;
	}
	struct store store;
	store_init(&store);
	int64_t sequence = 0;
	char fleet_id[FLEET_ID_HEX_LEN + 1] = "", error[1024];
	int status = 1;
	if(!fleet_transfer_export(conninfo, EXPORT_TIMEOUT_MS, &store, &sequence, fleet_id, error, sizeof(error))){
		fprintf(stderr, "Error: %s\n", error);
		unlink(path);
	}else if((status = ctrl_write_state(path, &store)) == 0){
		printf("Exported %zu roles and %zu tokens from the database (store %s, change %" PRId64 ") to %s.\n\n",
				store_role_count(&store), store_token_count(&store), fleet_id, sequence, path);
		printf("Load the plugin with:\n    plugin /path/to/mosquitto_tokens.so\n    plugin_opt_state_file %s\n", path);
		printf("(without plugin_opt_postgres_conninfo; the broker's user must own the file)\n");
	}
	store_clear(&store);
	return status;
}
