/*
 * Writes a state file with an admin token and N device tokens, through the
 * plugin's own snapshot writer, for the store-scale benchmarks.
 *
 *   make_state PATH N [--mixed]    prints the admin token on stdout
 *
 * --mixed: the listing benchmark's store: names of several prefixes in no
 * relation to their issue times (spread over a year), three device roles,
 * one token in ten expired.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/rand.h>

#include "control_topics.h"
#include "persist.h"

int main(int argc, char *argv[])
{
	bool mixed = argc == 4 && strcmp(argv[3], "--mixed") == 0;
	if(argc != 3 && !mixed){
		fprintf(stderr, "usage: make_state PATH N [--mixed]\n");
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
	struct role *sites[3] = {devices, role_new("sensors"), role_new("gateways")};
	store_link_role(&store, sites[1]);
	store_link_role(&store, sites[2]);
	static const char *const prefixes[] = {"device-", "device-", "sensor-", "gw/", "ops-"};
	srand(18);
	for(long i = 0; i < count; i++){
		char name[32];
		int64_t issued = now - 86400, until = now + 86400 * 365;
		struct role *role = devices;
		if(mixed){
			long scrambled = (long)(((unsigned long)i * 2654435761u) % 10000000u);
			snprintf(name, sizeof(name), "%s%07ld", prefixes[rand() % 5], scrambled);
			issued = now - 86400 * 365 + rand() % (86400 * 365);
			until = rand() % 10 == 0 ? now - 3600 : now + 86400 * 365;
			role = sites[rand() % 3];
		}else{
			snprintf(name, sizeof(name), "device-%07ld", i);
		}
		RAND_bytes(hash, sizeof(hash));
		store_link_token(&store, token_new(name, "admin", hash, issued, until, TIME_NEVER), role);
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
