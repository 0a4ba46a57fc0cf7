/*
 * The in-memory store: tokens by hash (an O(1) uthash lookup: every login
 * asks it), tokens in the orders listTokens pages through (by issuedAt then
 * name, by name, and per role: counted B+trees, order_index.h, kept in step
 * by link and unlink, plugin/token_orders.c), roles by name. It owns no I/O
 * and no policy; commands decide what may change, persistence decides how a
 * change reaches the disk.
 *
 * A role counts the tokens that use it, so "is this role in use" is O(1).
 * A role's ACLs are kept per ACL type, highest priority first, so that
 * evaluating an ACL check walks only the list that can answer it.
 */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/crypto.h>

/* Token hashes are compared in constant time, even inside hash lookups. */
#define HASH_KEYCMP(a, b, n) CRYPTO_memcmp(a, b, n)
/* Out of memory, uthash leaves the element out (its table pointer NULL)
 * instead of calling exit(): every add says whether it worked. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "order_index.h"
#include "token_format.h"

#define NAME_MAX_CHARS 30
#define ROLENAME_MAX_CHARS 64
#define TIME_NEVER 0   /* lastUsed before the first login */

enum acl_type {
	ACL_PUBLISH_CLIENT_SEND,
	ACL_PUBLISH_CLIENT_RECEIVE,
	ACL_SUBSCRIBE_LITERAL,
	ACL_SUBSCRIBE_PATTERN,
	ACL_UNSUBSCRIBE_LITERAL,
	ACL_UNSUBSCRIBE_PATTERN,
	ACL_TYPE_COUNT
};

struct role_acl {
	struct role_acl *next;
	char *topic;
	int priority;
	bool allow;
	bool has_placeholder;   /* a whole level of topic is %t, %c or %u (acl.h) */
	enum acl_type type;
};

struct role {
	char *name;
	struct role_acl *acls[ACL_TYPE_COUNT];
	size_t acl_count;
	size_t placeholder_acls;   /* ACLs with has_placeholder: only then does a check need a subject */
	size_t token_count;
	struct order_index tokens;   /* its tokens by issuedAt then name: listTokens' role filter */
	size_t build_start, build_fill;   /* where its tokens go while a load builds the orders */
	UT_hash_handle hh;
};

struct session;

struct token {
	unsigned char hash[TOKEN_HASH_LEN];
	const char *name;
	const char *requested_by;
	const char *client_id;      /* the one client id it logs in with; NULL: any */
	struct role *role;
	int64_t issued_at;
	int64_t valid_until;
	int64_t last_used;
	struct session *sessions;   /* live connections logged in with it */
	uint32_t expiry_slot;       /* position in the expiry queue + 1; 0 when not queued */
	uint32_t notice_slot;       /* position in the notice queue + 1; 0 when not queued */
	uint32_t offline_sessions;  /* its offline sessions (sessions.h), for their bound per token */
	bool last_used_unsaved;     /* queued for the next lastUsed save */
	bool expiring_noticed;      /* tokenExpiring sent for this lifetime */
	bool expired_noticed;       /* tokenExpired sent for this lifetime */
	UT_hash_handle hh_hash;
	char text[];                /* name, requested_by and client_id point here */
};

/* The secret a token had before a rotation with a grace period: it keeps
 * working until valid_until. At most one per token; few at any time. */
struct previous_secret {
	unsigned char hash[TOKEN_HASH_LEN];
	struct token *token;
	int64_t valid_until;
	UT_hash_handle hh_hash;
	UT_hash_handle hh_token;
};

struct store {
	struct token *tokens_by_hash;
	struct order_index by_issue;   /* every token by issuedAt then name: listTokens' order */
	struct order_index by_name;    /* every token by name (bytes): lookups, namePrefix */
	uint64_t generation;           /* counts changes to the orders, for listing's resumable walks */
	/* Tokens a loader added (store_add_token) and not yet in the orders:
	 * a million are put in order at once (store_order_added). */
	struct token **added;
	size_t added_count, added_capacity;
	struct role *roles;
	struct previous_secret *previous_by_hash;
	struct previous_secret *previous_by_token;
};

const char *acl_type_name(enum acl_type type);
bool acl_type_from_name(const char *name, enum acl_type *type);

/* Names: 1..max_chars code points of valid UTF-8, no control characters,
 * no leading or trailing space. Returns NULL if valid, else the reason.
 * This is what a stored name must be: state files written before the
 * stricter rule below keep loading. */
const char *name_problem(const char *name, size_t max_chars);
/* What a new name must be (createToken, createRole, tokens init): also
 * nothing that makes it look like another name or like none (see
 * docs/protocol.md, the name rule). */
const char *new_name_problem(const char *name, size_t max_chars);
/* The client id a token may be bound to (createToken's clientId, SPEC
 * section 4): 1 to CLIENT_ID_MAX_BYTES bytes of UTF-8 that the broker
 * accepts as a client id (mosquitto_validate_utf8: no NUL, no control
 * characters), without '+', '#' or '/'. NULL if valid, else the reason. */
#define CLIENT_ID_MAX_BYTES 65535
const char *client_id_problem(const char *client_id);

void store_init(struct store *store);
void store_clear(struct store *store);

size_t store_token_count(const struct store *store);
size_t store_role_count(const struct store *store);

/* Copies its strings into the token; NULL when out of memory. */
struct token *token_new(const char *name, const char *requested_by,
		const unsigned char hash[TOKEN_HASH_LEN], int64_t issued_at,
		int64_t valid_until, int64_t last_used);
/* The same, bound to client_id (NULL: not bound), which is copied into the
 * token's own allocation too: an unbound token costs only the pointer. */
struct token *token_new_bound(const char *name, const char *requested_by, const char *client_id,
		const unsigned char hash[TOKEN_HASH_LEN], int64_t issued_at,
		int64_t valid_until, int64_t last_used);
void token_free(struct token *token);

struct token *store_find_token_by_hash(const struct store *store, const unsigned char hash[TOKEN_HASH_LEN]);
struct token *store_find_token_by_name(const struct store *store, const char *name);
/* The caller has checked that name and hash are free; the store takes the
 * token. False when out of memory (nothing linked). */
bool store_link_token(struct store *store, struct token *token, struct role *role);
/* For loaders: links the token by hash unless the hash is taken
 * (store_hash_in_use), and keeps it for store_order_added, which puts
 * every token added so far in the orders at once and checks the names
 * (a million one by one would cost seconds). Until then only hash lookups
 * see the added tokens. */
enum store_added { STORE_ADDED, STORE_NAME_TAKEN, STORE_HASH_TAKEN, STORE_NO_MEMORY };
enum store_added store_add_token(struct store *store, struct token *token, struct role *role);
/* STORE_NAME_TAKEN with *taken set to a token whose name another added
 * token has (the caller clears the store: a load fails whole). */
enum store_added store_order_added(struct store *store, struct token **taken);
/* Removes the token from the indexes without freeing it (so it can be
 * linked back). Its previous secret, if any, stays until dropped. */
void store_unlink_token(struct store *store, struct token *token);

/* Every token, ordered by issuedAt then name; the caller frees the array. */
struct token **store_sorted_tokens(const struct store *store, size_t *count);
/* Every token, ordered by name (bytes): the state file's order, which a
 * load puts in both orders fastest. */
struct token **store_tokens_by_name(const struct store *store, size_t *count);
/* Brings the orders' valid/invalid counts to now (order_index_refresh). */
void store_refresh_status(struct store *store, int64_t now);

/* A secret logs in as one token only: true when the hash is a token's
 * current secret or a rotated token's previous one. New tokens, rotations
 * and previous secrets all need a hash for which this is false. */
bool store_hash_in_use(const struct store *store, const unsigned char hash[TOKEN_HASH_LEN]);

/* A token's previous secret: set (replacing any), find, drop. */
bool store_set_previous(struct store *store, struct token *token, const unsigned char hash[TOKEN_HASH_LEN],
		int64_t valid_until);
struct previous_secret *store_find_previous_by_hash(const struct store *store, const unsigned char hash[TOKEN_HASH_LEN]);
struct previous_secret *store_find_previous(const struct store *store, const struct token *token);
void store_drop_previous(struct store *store, struct token *token);
/* Links an entry the caller allocated and filled (replacing any for its
 * token); false when out of memory (then it is not linked, and the
 * token has no previous secret). */
bool store_adopt_previous(struct store *store, struct previous_secret *previous);

struct role *role_new(const char *name);
void role_free(struct role *role);
struct role *store_find_role(const struct store *store, const char *name);
/* False when out of memory (nothing linked). */
bool store_link_role(struct store *store, struct role *role);
void store_unlink_role(struct store *store, struct role *role);
/* Every role, ordered by name; the caller frees the array. */
struct role **store_sorted_roles(const struct store *store, size_t *count);

struct role_acl *role_acl_new(enum acl_type type, const char *topic, int priority, bool allow);
struct role_acl *role_find_acl(const struct role *role, enum acl_type type, const char *topic);
/* Inserts after the ACLs of equal or higher priority, so insertion order breaks ties. */
void role_link_acl(struct role *role, struct role_acl *acl);
/* Returns the ACL before the removed one (NULL when it was first), for role_relink_acl. */
struct role_acl *role_unlink_acl(struct role *role, struct role_acl *acl);
void role_relink_acl(struct role *role, struct role_acl *acl, struct role_acl *previous);
void role_acl_free(struct role_acl *acl);

#endif
