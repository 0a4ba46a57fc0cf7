/*
 * The state file's JSON shape (SPEC section 5). Converting in either
 * direction is kept apart from file I/O so that it can be tested and fuzzed
 * on its own. The token and role objects the file shares with the protocol
 * are metadata_json.h's: a role line is role_to_json's object, a token line
 * token_to_json's with what only the file keeps.
 */
#ifndef STATE_FORMAT_H
#define STATE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "log_text.h"
#include "session_records.h"
#include "store.h"

#define STATE_FORMAT_VERSION 1
/* Sequence numbers stay exact in a JSON number (a double). */
#define JOURNAL_SEQUENCE_MAX 9000000000000000LL
/* A snapshot and its journal share a random id (docs/state-file.md): 16
 * bytes, written as 32 lowercase hex digits. */
#define JOURNAL_ID_HEX_LEN 32

/* A token as the state file keeps it: token_to_json's object, and also the
 * previous secret during a rotation's grace period (previousHash,
 * previousValidUntil) and the marks that the expiry notices were sent
 * (expiringNotified, expiredNotified). */
cJSON *token_state_to_json(const struct store *store, const struct token *token);
/* The same with the previous secret given (NULL: none). */
cJSON *token_state_json_with(const struct token *token, const struct previous_secret *previous);

/* Loading one item at a time: the state file's line-by-line reader and the
 * journal replay feed items as they read them. Each call checks the item
 * against the store as loaded so far (names and hashes unique, roles
 * existing), links it, or writes a sentence naming the item and the field
 * into problem and returns false. */
struct state_loader {
	struct store *store;
	char *problem;
	size_t problem_len;
	const char *item_kind;     /* "token", "role", "session" or NULL: where a problem is */
	int item_index;
	const char *item_name;
	int64_t journal_sequence;  /* from the document header */
	char client_id_text[LOG_TEXT_SIZE];   /* a session's client id, safe to print (item_name) */
};

void state_loader_init(struct state_loader *loader, struct store *store, char *problem, size_t problem_len);
/* Checks "version" and reads the optional "journalSequence" (0 if absent). */
bool state_check_header(struct state_loader *loader, const cJSON *document, int64_t *journal_sequence);

/* The snapshot's optional journal ids. Files written before ids existed
 * have neither; "" stands for "none". */
struct journal_ids {
	char id[JOURNAL_ID_HEX_LEN + 1];        /* "journalId": what its journal carries */
	bool has_previous;
	char previous[JOURNAL_ID_HEX_LEN + 1];  /* "previousJournalId": the journal it folded in ("" had none) */
	/* A fleet member's cache (docs/postgresql.md): "fleetId", the
	 * database's store ("" when absent), and "fleetSequence", the last of
	 * its changes the snapshot holds. */
	char fleet_id[JOURNAL_ID_HEX_LEN + 1];
	int64_t fleet_sequence;
};
/* Reads "journalId" (32 lowercase hex digits) and "previousJournalId" (the
 * same, or ""), and the optional "fleetId" (the same) and "fleetSequence"
 * (a whole number), from the document's top level. */
bool state_read_journal_ids(struct state_loader *loader, const cJSON *document, struct journal_ids *ids);
bool journal_id_is_valid(const char *text);
/* A sequence number as the files write it: a whole number from 1 to
 * JOURNAL_SEQUENCE_MAX (0 too with zero_allowed). */
bool state_is_sequence_number(const cJSON *item, bool zero_allowed);
bool state_load_role(struct state_loader *loader, const cJSON *item, int index);
bool state_load_token(struct state_loader *loader, const cJSON *item, int index);
/* state_load_token in steps, so that parsing can run on several threads
 * (it only reads the store's roles) while adding stays on one: parse
 * returns a new token (its role set, not linked) or NULL, and fills
 * previous; add links it, or frees it and fails on a duplicate name or
 * hash. */
struct token *state_parse_token(struct state_loader *loader, const cJSON *item, int index,
		struct previous_secret *previous);
bool state_add_token(struct state_loader *loader, struct token *token, int index);
/* After the last state_add_token: puts the added tokens in the store's
 * orders, and refuses a name two of them have. */
bool state_order_tokens(struct state_loader *loader);
/* After state_add_token: records the previous secret parse found, if any
 * (previous->token is NULL when there is none). */
bool state_add_previous(struct state_loader *loader, const struct previous_secret *previous);
bool state_load_acl(struct state_loader *loader, struct role *role, const cJSON *item);
/* The same without linking (for the journal's decoder): a new role with
 * its ACLs, or a new ACL that the role does not have yet; NULL on a
 * problem. */
struct role *state_parse_role(struct state_loader *loader, const cJSON *item, int index);
struct role_acl *state_parse_acl(struct state_loader *loader, const struct role *role, const cJSON *item);

/* One binding of a persistent session: an item of the snapshot's
 * optional "sessions" array, or of a journal line's "bound" list:
 *
 *   {"clientId": "boiler-7", "username": "boiler-7" or null, "hash": "<64 hex>"}
 *
 * parse checks it (clientId a non-empty string, username a string or null,
 * both at most SESSION_TEXT_MAX_BYTES, hash 64 lowercase hex digits) and
 * gives its fields (pointing into item); load also puts it into records,
 * refusing a clientId they hold already. The hash need not be a token's:
 * bindings are advisory, the plugin drops those whose token is gone. */
bool state_parse_session(struct state_loader *loader, const cJSON *item, int index, const char **client_id,
		const char **username, unsigned char hash[TOKEN_HASH_LEN]);
bool state_load_session(struct state_loader *loader, struct session_records *records, const cJSON *item, int index);
/* The document's "sessions" array, item by item; absent, it holds none. */
bool state_load_sessions(struct state_loader *loader, struct session_records *records, const cJSON *document);
/* The "clientId" rule alone (for a journal line's "ended" list): NULL when
 * fine, else what is wrong with it. */
const char *state_client_id_problem(const cJSON *item);
cJSON *state_session_to_json(const char *client_id, const char *username, const unsigned char hash[TOKEN_HASH_LEN]);

/* Fills an empty store from a state document. On a format problem it writes
 * a sentence naming the entry and the field into problem, leaves the store
 * empty and returns false. */
bool state_from_json(const cJSON *document, struct store *store, char *problem, size_t problem_len);

#endif
