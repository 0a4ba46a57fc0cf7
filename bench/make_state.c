/*
 * Writes a state file with an admin token and N device tokens, through the
 * plugin's own snapshot writer, for the store-scale benchmarks.
 *
 *   make_state PATH N        prints the admin token on stdout
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/rand.h>

#include "control_topics.h"
#include "persist.h"

int main(int argc, char *argv[])
{
	if(argc != 3){
		fprintf(stderr, "usage: make_state PATH N\n");
		return 2;
	}
	long count = atol(argv[2]);
	int64_t now = (int64_t)time(NULL);
	struct store store;
	store_init(&store);
	struct role *admin = role_new("admin");
	struct role *devices = role_new("devices");
	store_link_role(&store, admin);
	store_link_role(&store, devices);
	role_link_acl(admin, role_acl_new(ACL_PUBLISH_CLIENT_SEND, CONTROL_TOPIC, 0, true));
	role_link_acl(admin, role_acl_new(ACL_SUBSCRIBE_LITERAL, RESPONSE_TOPIC, 0, true));
	role_link_acl(devices, role_acl_new(ACL_PUBLISH_CLIENT_SEND, "devices/+/data", 0, true));

	char secret[TOKEN_LEN + 1];
	unsigned char hash[TOKEN_HASH_LEN];
	token_format_generate(secret);
	token_format_hash(secret, hash);
	store_link_token(&store, token_new("admin", "init", hash, now, now + 86400 * 365, TIME_NEVER), admin);
	for(long i = 0; i < count; i++){
		char name[32];
		snprintf(name, sizeof(name), "device-%07ld", i);
		RAND_bytes(hash, sizeof(hash));
		store_link_token(&store, token_new(name, "admin", hash, now - 86400, now + 86400 * 365, TIME_NEVER), devices);
	}
	char error[1024];
	struct persist *persist = persist_open(argv[1], error, sizeof(error));
	if(persist == NULL || !persist_save(persist, &store, error, sizeof(error))){
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	persist_close_removing_lock(persist);
	store_clear(&store);
	printf("%s\n", secret);
	return 0;
}
