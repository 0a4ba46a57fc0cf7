/*
 * `mosquitto_ctrl tokens init <state-file> <admin-token-name> [validity]`:
 * the first admin token, made offline, before the broker runs. It uses the
 * plugin's own store and persistence code, so the file is exactly what the
 * plugin writes (mode 0600, fsync'd, renamed into place).
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

#define ADMIN_ROLE "admin"
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
	struct role *role = role_new(ADMIN_ROLE);
	if(role == NULL){
		return false;
	}
	store_link_role(store, role);
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
static bool claim_new_file(const char *path)
{
	struct stat info;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if(fd < 0){
		if(errno == EEXIST && lstat(path, &info) == 0 && !S_ISREG(info.st_mode)){
			fprintf(stderr, "Error: %s already exists and is not a regular file (%s); init never "
					"follows or replaces it.\n", path, S_ISLNK(info.st_mode) ? "a symbolic link" : "a FIFO, socket, device or folder");
		}else if(errno == EEXIST){
			fprintf(stderr, "Error: %s already exists; init never overwrites a state file.\n"
					"Use the running broker to add tokens (mosquitto_ctrl tokens create).\n", path);
		}else{
			fprintf(stderr, "Error: cannot create %s: %s\n", path, strerror(errno));
		}
		return false;
	}
	close(fd);
	return true;
}

static void print_result(const char *path, const char *name, const char *secret,
		const unsigned char hash[TOKEN_HASH_LEN], const char *valid_until)
{
	char hash_hex[TOKEN_HASH_HEX_LEN + 1];
	token_format_hash_to_hex(hash, hash_hex);
	printf("Created %s with role \"%s\" and admin token \"%s\".\n\n", path, ADMIN_ROLE, name);
	printf("Hash:        %s\nValid until: %s\n\n", hash_hex, valid_until);
	printf("Admin token (shown only this once; copy it now, it cannot be shown again):\n\n    %s\n\n", secret);
	printf("Load the plugin with:\n    plugin /path/to/mosquitto_tokens.so\n    plugin_opt_state_file %s\n", path);
	printf("(the broker's user, \"mosquitto\" by default, must own the file and be able to write its folder)\n\n");
	printf("Then manage tokens with:\n    mosquitto_ctrl -u %s -P '<admin token>' tokens list\n", name);
}

static int write_state(const char *path, const struct store *store)
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

int ctrl_init(int argc, char *argv[])
{
	if(argc < 2 || argc > 3){
		fprintf(stderr, "Usage: mosquitto_ctrl tokens init <state-file> <admin-token-name> [validity]\n");
		return EXIT_USAGE;
	}
	const char *path = argv[0], *name = argv[1];
	const char *validity = argc == 3 ? argv[2] : DEFAULT_ADMIN_VALIDITY;
	const char *problem = new_name_problem(name, NAME_MAX_CHARS);
	int64_t now = (int64_t)time(NULL), valid_until;
	char valid_until_text[RFC3339_LEN + 1];
	if(problem){
		fprintf(stderr, "Error: the token name %s (1 to %d characters, no control characters)\n", problem, NAME_MAX_CHARS);
		return EXIT_USAGE;
	}
	if(!ctrl_parse_valid_until(validity, now, valid_until_text)
			|| !rfc3339_parse(valid_until_text, &valid_until) || valid_until <= now){
		fprintf(stderr, "Error: validity \"%s\" is not a future time or a duration such as 365d\n", validity);
		return EXIT_USAGE;
	}

	char secret[TOKEN_LEN + 1];
	unsigned char hash[TOKEN_HASH_LEN];
	if(!token_format_generate(secret)){
		fprintf(stderr, "Error: the random number generator failed\n");
		return 1;
	}
	token_format_hash(secret, hash);

	struct store store;
	store_init(&store);
	struct token *token = token_new(name, "init", hash, now, valid_until, TIME_NEVER);
	int status = 1;
	if(token == NULL || !add_admin_role(&store)){
		fprintf(stderr, "Error: out of memory\n");
	}else if(claim_new_file(path)){
		store_link_token(&store, token, store_find_role(&store, ADMIN_ROLE));
		token = NULL;
		status = write_state(path, &store);
		if(status == 0){
			print_result(path, name, secret, hash, valid_until_text);
		}
	}
	token_free(token);
	store_clear(&store);
	OPENSSL_cleanse(secret, sizeof(secret));
	return status;
}
