/*
 * The store's and the instance's invariants. See plugin/invariants.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "invariants.h"
#include "login.h"

static bool broken(char *problem, size_t problem_len, const char *format, ...) __attribute__((format(printf, 3, 4)));

static bool broken(char *problem, size_t problem_len, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	vsnprintf(problem, problem_len, format, args);
	va_end(args);
	return false;
}

static bool is_linked(const struct store *store, const struct token *token)
{
	return store_find_token_by_hash(store, token->hash) == token;
}

/* A role's token count, counted. */
struct role_tally {
	const struct role *role;
	size_t tokens;
	UT_hash_handle hh;
};

static bool check_acls(const struct role *role, char *problem, size_t problem_len)
{
	size_t count = 0, with_placeholders = 0;
	for(int type = 0; type < ACL_TYPE_COUNT; type++){
		for(const struct role_acl *acl = role->acls[type]; acl; acl = acl->next){
			count++;
			with_placeholders += acl->has_placeholder;
			if(acl->has_placeholder != acl_topic_has_placeholder(acl->topic)){
				return broken(problem, problem_len, "role \"%s\": ACL \"%s\" is marked %s placeholders",
						role->name, acl->topic, acl->has_placeholder ? "with" : "without");
			}
			if(acl->type != (enum acl_type)type){
				return broken(problem, problem_len, "role \"%s\": ACL \"%s\" is in the wrong list", role->name, acl->topic);
			}
			if(acl->next && acl->next->priority > acl->priority){
				return broken(problem, problem_len, "role \"%s\": %s ACLs are not highest priority first",
						role->name, acl_type_name(acl->type));
			}
		}
	}
	if(count != role->acl_count){
		return broken(problem, problem_len, "role \"%s\" counts %zu ACLs but has %zu", role->name, role->acl_count, count);
	}
	if(with_placeholders != role->placeholder_acls){
		/* A role that counts none is checked without the client's values:
		 * its placeholders would match nothing. */
		return broken(problem, problem_len, "role \"%s\" counts %zu ACLs with placeholders but has %zu",
				role->name, role->placeholder_acls, with_placeholders);
	}
	return true;
}

static bool check_roles(const struct store *store, struct role_tally *tallies, char *problem, size_t problem_len)
{
	for(const struct role_tally *tally = tallies; tally; tally = tally->hh.next){
		if(store_find_role(store, tally->role->name) != tally->role){
			return broken(problem, problem_len, "a token has role \"%s\", which is not in the store", tally->role->name);
		}
	}
	for(const struct role *role = store->roles; role; role = role->hh.next){
		struct role_tally *tally;
		HASH_FIND_PTR(tallies, &role, tally);
		size_t counted = tally ? tally->tokens : 0;
		if(counted != role->token_count){
			return broken(problem, problem_len, "role \"%s\" counts %zu tokens but %zu use it",
					role->name, role->token_count, counted);
		}
		if(!check_acls(role, problem, problem_len)){
			return false;
		}
	}
	return true;
}

/* A bound token's client id lives in its own allocation, after its
 * requester (a pointer into another token's would dangle once that one is
 * freed, as after a rotation), and is one a token may be bound to. */
static bool check_client_id(const struct token *token, char *problem, size_t problem_len)
{
	if(token->client_id == NULL){
		return true;
	}
	if(token->client_id != token->requested_by + strlen(token->requested_by) + 1){
		return broken(problem, problem_len, "token \"%s\": its client id is not in its own record", token->name);
	}
	const char *why = client_id_problem(token->client_id);
	if(why){
		return broken(problem, problem_len, "token \"%s\": its client id %s", token->name, why);
	}
	return true;
}

static bool check_order(const struct order_index *index, const char *what, size_t expected,
		char *problem, size_t problem_len)
{
	const char *why = order_index_problem(index);
	if(why){
		return broken(problem, problem_len, "the order %s: %s", what, why);
	}
	if(order_index_count(index) != expected){
		return broken(problem, problem_len, "the order %s holds %zu tokens, not %zu", what,
				order_index_count(index), expected);
	}
	return true;
}

/* Each order holds every token once (equal counts, strictly ordered, each
 * one in the hash index: membership by its table, not a million lookups,
 * which would add a noticeable part to the start-up this check runs in),
 * and each role's order its tokens. */
static bool check_orders(const struct store *store, const UT_hash_table *hashes, char *problem, size_t problem_len)
{
	size_t total = HASH_CNT(hh_hash, store->tokens_by_hash);
	if(store->added_count != 0){
		return broken(problem, problem_len, "%zu loaded tokens are in no order", store->added_count);
	}
	if(!check_order(&store->by_issue, "by issue", total, problem, problem_len)
			|| !check_order(&store->by_name, "by name", total, problem, problem_len)){
		return false;
	}
	struct order_cursor cursor;
	for(bool more = order_index_seek(&store->by_name, ORDER_ALL, 0, &cursor); more;
			more = order_cursor_next(&store->by_name, &cursor, ORDER_ALL)){
		const struct token *token = order_cursor_token(&cursor);
		if(token->hh_hash.tbl != hashes){
			return broken(problem, problem_len, "token \"%s\" is in the orders, not in the hash index", token->name);
		}
	}
	for(const struct role *role = store->roles; role; role = role->hh.next){
		char what[ROLENAME_MAX_CHARS * 4 + 32];
		snprintf(what, sizeof(what), "of role \"%s\"", role->name);
		if(!check_order(&role->tokens, what, role->token_count, problem, problem_len)){
			return false;
		}
	}
	return true;
}

/* Counts each role's tokens into tallies (one entry per role, from the
 * caller's array). */
static bool check_tokens(const struct store *store, struct role_tally *entries, struct role_tally **tallies,
		char *problem, size_t problem_len)
{
	size_t used = 0;
	const UT_hash_table *hashes = store->tokens_by_hash ? store->tokens_by_hash->hh_hash.tbl : NULL;
	for(const struct token *token = store->tokens_by_hash; token; token = token->hh_hash.next){
		if(token->role == NULL){
			return broken(problem, problem_len, "token \"%s\" has no role", token->name);
		}
		if(!check_client_id(token, problem, problem_len)){
			return false;
		}
		struct role_tally *tally;
		HASH_FIND_PTR(*tallies, &token->role, tally);
		if(tally == NULL){
			tally = &entries[used++];
			tally->role = token->role;
			tally->tokens = 0;
			HASH_ADD_PTR(*tallies, role, tally);
			if(tally->hh.tbl == NULL){
				return broken(problem, problem_len, "out of memory checking the store");
			}
		}
		tally->tokens++;
	}
	return check_orders(store, hashes, problem, problem_len);
}

static bool check_previous_secrets(const struct store *store, char *problem, size_t problem_len)
{
	for(const struct previous_secret *previous = store->previous_by_hash; previous; previous = previous->hh_hash.next){
		if(previous->token == NULL || !is_linked(store, previous->token)){
			return broken(problem, problem_len, "a previous secret belongs to a token that is not in the store");
		}
		if(store_find_previous(store, previous->token) != previous){
			return broken(problem, problem_len, "token \"%s\" does not know its previous secret", previous->token->name);
		}
		if(store_find_token_by_hash(store, previous->hash)){
			return broken(problem, problem_len, "the previous secret of \"%s\" is also a token's current secret",
					previous->token->name);
		}
	}
	if(HASH_CNT(hh_token, store->previous_by_token) != HASH_CNT(hh_hash, store->previous_by_hash)){
		return broken(problem, problem_len, "the previous secrets' two indexes differ");
	}
	return true;
}

bool invariants_check_store(const struct store *store, char *problem, size_t problem_len)
{
	size_t role_count = store_role_count(store);
	struct role_tally *entries = calloc(role_count ? role_count : 1, sizeof(*entries));
	struct role_tally *tallies = NULL;
	if(entries == NULL){
		return broken(problem, problem_len, "out of memory checking the store");
	}
	bool ok = check_tokens(store, entries, &tallies, problem, problem_len)
		&& check_roles(store, tallies, problem, problem_len)
		&& check_previous_secrets(store, problem, problem_len);
	HASH_CLEAR(hh, tallies);
	free(entries);
	return ok;
}

static bool check_session(const struct tokens_plugin *plugin, const struct session *session,
		char *problem, size_t problem_len)
{
	const struct token *token = session->token;
	if(token == NULL){
		return true;
	}
	if(!is_linked(&plugin->store, token)){
		return broken(problem, problem_len, "client %s is bound to a token that is not in the store", session->client_id);
	}
	if(!login_client_id_allowed(token, session->client_id)){
		return broken(problem, problem_len, "client %s is bound to token \"%s\", which only client %s may use",
				session->client_id, token->name, token->client_id);
	}
	if(session->via_previous && store_find_previous(&plugin->store, token) == NULL){
		return broken(problem, problem_len, "client %s is bound through a previous secret of \"%s\" that is gone",
				session->client_id, token->name);
	}
	const struct session *listed = token->sessions;
	while(listed && listed != session){
		listed = listed->token_next;
	}
	if(listed == NULL){
		return broken(problem, problem_len, "client %s is not on the list of token \"%s\"", session->client_id, token->name);
	}
	return true;
}

/* Every offline session is bound, listed once by id and once in age
 * order, and counted. */
static bool check_offline_sessions(const struct tokens_plugin *plugin, char *problem, size_t problem_len)
{
	const struct sessions *sessions = &plugin->sessions;
	size_t offline = 0;
	for(const struct session *session = sessions->by_id; session; session = session->hh_id.next){
		if(!session->offline || session->token == NULL || !session->disconnected){
			return broken(problem, problem_len, "offline session %s is not offline and bound", session->client_id);
		}
		if(!check_session(plugin, session, problem, problem_len)){
			return false;
		}
		offline++;
	}
	size_t aged = 0;
	for(const struct session *session = sessions->oldest_offline; session; session = session->newer){
		if(!session->offline || (session->newer ? session->newer->older : sessions->newest_offline) != session){
			return broken(problem, problem_len, "the age list of offline sessions is broken at %s", session->client_id);
		}
		aged++;
	}
	for(const struct token *token = plugin->store.tokens_by_hash; token; token = token->hh_hash.next){
		uint32_t of_token = 0;
		for(const struct session *session = token->sessions; session; session = session->token_next){
			of_token += session->offline;
		}
		if(of_token != token->offline_sessions){
			return broken(problem, problem_len, "token \"%s\" has %u offline sessions but counts %u",
					token->name, (unsigned)of_token, (unsigned)token->offline_sessions);
		}
	}
	size_t live = 0;
	for(const struct session *session = sessions->live_by_id; session; session = session->hh_id.next){
		if(!session->saved || session->offline || sessions_find(sessions, session->client) != session){
			return broken(problem, problem_len, "saved session %s is listed as connected but is not", session->client_id);
		}
		live++;
	}
	size_t saved_connected = 0;
	for(const struct session *session = sessions->by_client; session; session = session->hh.next){
		saved_connected += session->saved;
	}
	if(live != saved_connected){
		return broken(problem, problem_len, "%zu connected sessions are saved but %zu are listed by id",
				saved_connected, live);
	}
	if(offline != sessions->offline || aged != offline
			|| (sessions->max_offline > 0 && offline > sessions->max_offline)){
		return broken(problem, problem_len, "%zu offline sessions are bound, %zu listed by age, %zu counted",
				offline, aged, sessions->offline);
	}
	return true;
}

/* A token's list holds exactly the sessions bound to it, each findable. */
static bool check_token_lists(const struct tokens_plugin *plugin, char *problem, size_t problem_len)
{
	for(const struct token *token = plugin->store.tokens_by_hash; token; token = token->hh_hash.next){
		for(const struct session *session = token->sessions; session; session = session->token_next){
			const struct session *found = NULL;
			if(session->offline){
				HASH_FIND(hh_id, plugin->sessions.by_id, session->client_id, strlen(session->client_id), found);
			}else{
				found = sessions_find(&plugin->sessions, session->client);
			}
			if(session->token != token || found != session
					|| (session->token_next && session->token_next->token_previous != session)){
				return broken(problem, problem_len, "the connection list of token \"%s\" is broken", token->name);
			}
		}
	}
	return true;
}

static bool check_sessions(const struct tokens_plugin *plugin, char *problem, size_t problem_len)
{
	size_t attached = 0;
	for(const struct session *session = plugin->sessions.by_client; session; session = session->hh.next){
		if(!check_session(plugin, session, problem, problem_len)){
			return false;
		}
		attached += session->token && !session->disconnected;
	}
	if(attached != plugin->sessions.attached){
		return broken(problem, problem_len, "%zu connections are bound but %zu are counted",
				attached, plugin->sessions.attached);
	}
	return check_offline_sessions(plugin, problem, problem_len) && check_token_lists(plugin, problem, problem_len);
}

static bool check_queue(const struct store *store, const struct expiry_queue *queue, const char *name,
		char *problem, size_t problem_len)
{
	for(size_t i = 0; i < queue->count; i++){
		struct token *token = queue->heap[i];
		if(!is_linked(store, token) || *queue->slot(token) != i + 1){
			return broken(problem, problem_len, "the %s queue holds a token that is not in the store or not where it says", name);
		}
		if(i > 0 && queue->due(queue, queue->heap[(i - 1) / 2]) > queue->due(queue, token)){
			return broken(problem, problem_len, "the %s queue is out of order", name);
		}
	}
	return true;
}

static bool check_queued_tokens(const struct tokens_plugin *plugin, char *problem, size_t problem_len)
{
	size_t expired_noticed = 0;
	for(struct token *token = plugin->store.tokens_by_hash; token; token = token->hh_hash.next){
		expired_noticed += token->expired_noticed;
		if((token->expiry_slot && plugin->expiry.heap[token->expiry_slot - 1] != token)
				|| (token->notice_slot && plugin->notices.heap[token->notice_slot - 1] != token)){
			return broken(problem, problem_len, "token \"%s\" records a queue position it does not have", token->name);
		}
		if(token->sessions && token->expiry_slot == 0){
			return broken(problem, problem_len, "token \"%s\" has connections but is not in the expiry queue", token->name);
		}
	}
	if(expired_noticed != plugin->expired_tokens){
		return broken(problem, problem_len, "%zu tokens have had tokenExpired but %zu are counted",
				expired_noticed, plugin->expired_tokens);
	}
	return true;
}

bool invariants_check_plugin(const struct tokens_plugin *plugin, char *problem, size_t problem_len)
{
	return invariants_check_store(&plugin->store, problem, problem_len)
		&& check_sessions(plugin, problem, problem_len)
		&& check_queue(&plugin->store, &plugin->expiry, "expiry", problem, problem_len)
		&& check_queue(&plugin->store, &plugin->notices, "notice", problem, problem_len)
		&& check_queued_tokens(plugin, problem, problem_len);
}
