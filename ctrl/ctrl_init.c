/*
 * `mosquitto_ctrl tokens init <state-file> <admin-token-name> [validity]`:
 * the first admin token, made offline, before the broker runs. It uses the
 * plugin's own store and persistence code, so the file is exactly what the
 * plugin writes (mode 0600, fsync'd, renamed into place).
 *
 * The admin store it makes, the file claiming and writing, and the
 * one-time display of the secret are shared with `init <postgres>`,
 * `import` and `export` (ctrl_fleet.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "ctrl_module.h"
#include "persist.h"
#include "rfc3339.h"
#include "store.h"
#include "token_format.h"

#define DEFAULT_ADMIN_VALIDITY "365d"

static const struct {
	enum acl_type type;
	const char *topic;
} admin_acls[] = {
	{ACL_PUBLISH_CLIENT_SEND, CONTROL_TOPIC},
	{ACL_SUBSCRIBE_LITERAL, RESPONSE_TOPIC},
	{ACL_SUBSCRIBE_LITERAL, EVENTS_TOPIC},
};

static bool add_admin_role(struct store *store)
{
	struct role *role = role_new(CTRL_ADMIN_ROLE);
	if(role == NULL){
		return false;
	}
	if(!store_link_role(store, role)){
		role_free(role);
		return false;
	}
	for(size_t i = 0; i < sizeof(admin_acls) / sizeof(admin_acls[0]); i++){
		struct role_acl *acl = role_acl_new(admin_acls[i].type, admin_acls[i].topic, 0, true);
		if(acl == NULL){
			return false;
		}
		role_link_acl(role, acl);
	}
	return true;
}

/* Claims the path, so that an existing file is never overwritten, even by
 * a race with another init. O_EXCL also refuses a link (even a dangling
 * one, which would create a file elsewhere) and a FIFO; the lock file and
 * the snapshot are opened as carefully by persist. */
bool ctrl_claim_new_file(const char *path, const char *command)
{
	struct stat info;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if(fd < 0){
		if(errno == EEXIST && lstat(path, &info) == 0 && !S_ISREG(info.st_mode)){
			fprintf(stderr, "Error: %s already exists and is not a regular file (%s); %s never "
					"follows or replaces it.\n", path, S_ISLNK(info.st_mode) ? "a symbolic link" : "a FIFO, socket, device or folder",
					command);
		}else if(errno == EEXIST){
			fprintf(stderr, "Error: %s already exists; %s never overwrites a state file.\n", path, command);
			if(strcmp(command, "init") == 0){
				fprintf(stderr, "Use the running broker to add tokens (mosquitto_ctrl tokens create).\n");
			}
		}else{
			fprintf(stderr, "Error: cannot create %s: %s\n", path, strerror(errno));
		}
		return false;
	}
	close(fd);
	return true;
}

void ctrl_print_admin_secret(const struct admin_init *made)
{
	char hash_hex[TOKEN_HASH_HEX_LEN + 1];
	token_format_hash_to_hex(made->hash, hash_hex);
	printf("Hash:        %s\nValid until: %s\n\n", hash_hex, made->valid_until);
	printf("Admin token (shown only this once; copy it now, it cannot be shown again):\n\n    %s\n\n", made->secret);
}

void ctrl_print_manage_hint(const char *name)
{
	printf("Then manage tokens with:\n    mosquitto_ctrl -u %s -P '<admin token>' tokens list\n", name);
}

static void print_result(const char *path, const struct admin_init *made)
{
	printf("Created %s with role \"%s\" and admin token \"%s\".\n\n", path, CTRL_ADMIN_ROLE, made->name);
	ctrl_print_admin_secret(made);
	printf("Load the plugin with:\n    plugin /path/to/mosquitto_tokens.so\n    plugin_opt_state_file %s\n", path);
	printf("(the broker's user, \"mosquitto\" by default, must own the file and be able to write its folder)\n\n");
	ctrl_print_manage_hint(made->name);
}

int ctrl_write_state(const char *path, const struct store *store)
{
	char error[1024];
	struct persist *persist = persist_open(path, error, sizeof(error));
	bool saved = persist && persist_save(persist, store, error, sizeof(error));
	persist_close_removing_lock(persist);
	if(!saved){
		fprintf(stderr, "Error: %s\n", error);
		unlink(path);
		return 1;
	}
	return 0;
}

/* The arguments after the target: 0, or the exit status with the
 * problem printed. */
static int check_arguments(struct admin_init *made, const char *name, const char *validity, int64_t now)
{
	const char *problem = new_name_problem(name, NAME_MAX_CHARS);
	if(problem){
		fprintf(stderr, "Error: the token name %s (1 to %d characters, no control characters)\n", problem, NAME_MAX_CHARS);
		return EXIT_USAGE;
	}
	if(!ctrl_parse_valid_until(validity ? validity : DEFAULT_ADMIN_VALIDITY, now, made->valid_until)
			|| !rfc3339_parse(made->valid_until, &made->valid_until_time) || made->valid_until_time <= now){
		fprintf(stderr, "Error: validity \"%s\" is not a future time or a duration such as 365d\n",
				validity ? validity : DEFAULT_ADMIN_VALIDITY);
		return EXIT_USAGE;
	}
	made->name = name;
	return 0;
}

int ctrl_admin_init_make(struct admin_init *made, const char *name, const char *validity)
{
	memset(made, 0, sizeof(*made));
	store_init(&made->store);
	int64_t now = (int64_t)time(NULL);
	int status = check_arguments(made, name, validity, now);
	if(status != 0){
		return status;
	}
	if(!token_format_generate(made->secret)){
		fprintf(stderr, "Error: the random number generator failed\n");
		return 1;
	}
	token_format_hash(made->secret, made->hash);
	struct token *token = token_new(name, "init", made->hash, now, made->valid_until_time, TIME_NEVER);
	if(token == NULL || !add_admin_role(&made->store)
			|| !store_link_token(&made->store, token, store_find_role(&made->store, CTRL_ADMIN_ROLE))){
		token_free(token);
		fprintf(stderr, "Error: out of memory\n");
		return 1;
	}
	return 0;
}

void ctrl_admin_init_clear(struct admin_init *made)
{
	store_clear(&made->store);
	OPENSSL_cleanse(made->secret, sizeof(made->secret));
}

static void print_usage(void)
{
	fprintf(stderr, "Usage: mosquitto_ctrl tokens init <state-file> <admin-token-name> [validity]\n"
			"       mosquitto_ctrl tokens init <postgres> <admin-token-name> [validity]\n"
			"(<postgres>: a postgresql:// URI, or --postgres '<conninfo>')\n");
}

int ctrl_init(int argc, char *argv[])
{
	if(ctrl_targets_postgres(argc, argv)){
		return ctrl_init_postgres(argc, argv);
	}
	if(argc < 2 || argc > 3){
		print_usage();
		return EXIT_USAGE;
	}
	const char *path = argv[0];
	struct admin_init made;
	int status = ctrl_admin_init_make(&made, argv[1], argc == 3 ? argv[2] : NULL);
	if(status == 0){
		status = 1;
		if(ctrl_claim_new_file(path, "init")){
			status = ctrl_write_state(path, &made.store);
			if(status == 0){
				print_result(path, &made);
			}
		}
	}
	ctrl_admin_init_clear(&made);
	return status;
}
