/*
 * Token-bound sessions, connected and offline, and the queue of kicks.
 * See plugin/sessions.h.
 */
#include <stdlib.h>
#include <string.h>

#include "sessions.h"

void sessions_init(struct sessions *sessions)
{
	memset(sessions, 0, sizeof(*sessions));
	session_records_init(&sessions->changes);
}

/* `attached` counts sessions that have a token and are still connected. */
static bool counts(const struct session *session)
{
	return session->token != NULL && !session->disconnected;
}

static void detach_from_token(struct sessions *sessions, struct session *session)
{
	struct token *token = session->token;
	if(token == NULL){
		return;
	}
	if(session->token_previous){
		session->token_previous->token_next = session->token_next;
	}else{
		token->sessions = session->token_next;
	}
	if(session->token_next){
		session->token_next->token_previous = session->token_previous;
	}
	if(counts(session)){
		sessions->attached--;
	}
	if(session->offline){
		token->offline_sessions--;
	}
	session->token = NULL;
	session->via_previous = false;
	session->token_previous = session->token_next = NULL;
}

static void attach_to_token(struct sessions *sessions, struct session *session, struct token *token)
{
	session->token = token;
	if(counts(session)){
		sessions->attached++;
	}
	if(session->offline){
		token->offline_sessions++;
	}
	session->token_previous = NULL;
	session->token_next = token->sessions;
	if(token->sessions){
		token->sessions->token_previous = session;
	}
	token->sessions = session;
}

/* The next periodic save records the binding's end. Without memory for
 * the note the binding stays in the journal until the next snapshot; a
 * restored binding with no context is ended by the next SIGHUP. */
static void note_ended(struct sessions *sessions, const struct session *session)
{
	if(session->saved){
		session_records_put(&sessions->changes, session->client_id, session->username, NULL);
	}
}

static void unlink_offline(struct sessions *sessions, struct session *session)
{
	HASH_DELETE(hh_id, sessions->by_id, session);
	if(session->older){
		session->older->newer = session->newer;
	}else{
		sessions->oldest_offline = session->newer;
	}
	if(session->newer){
		session->newer->older = session->older;
	}else{
		sessions->newest_offline = session->older;
	}
	session->older = session->newer = NULL;
	session->offline = false;
	sessions->offline--;
	if(session->token){
		session->token->offline_sessions--;
	}
}

static void free_offline(struct sessions *sessions, struct session *session)
{
	unlink_offline(sessions, session);
	detach_from_token(sessions, session);
	free(session);
}

static void end_offline(struct sessions *sessions, struct session *session)
{
	note_ended(sessions, session);
	free_offline(sessions, session);
}

/* Links an offline session (not in by_client); false when out of memory. */
static bool link_offline(struct sessions *sessions, struct session *session)
{
	struct session *other;
	HASH_FIND(hh_id, sessions->by_id, session->client_id, strlen(session->client_id), other);
	if(other){
		end_offline(sessions, other);
	}
	HASH_ADD_KEYPTR(hh_id, sessions->by_id, session->client_id, strlen(session->client_id), session);
	if(session->hh_id.tbl == NULL){   /* out of memory: store.h */
		return false;
	}
	session->offline = true;
	session->seen_at_reload = sessions->reloads;
	session->offline_order = ++sessions->offline_orders;
	session->older = sessions->newest_offline;
	session->newer = NULL;
	if(sessions->newest_offline){
		sessions->newest_offline->newer = session;
	}else{
		sessions->oldest_offline = session;
	}
	sessions->newest_offline = session;
	sessions->offline++;
	if(session->token){
		session->token->offline_sessions++;
	}
	return true;
}

/* The token's offline session that went offline first. */
static struct session *oldest_offline_of(const struct token *token)
{
	struct session *oldest = NULL;
	for(struct session *session = token->sessions; session; session = session->token_next){
		if(session->offline && (oldest == NULL || session->offline_order < oldest->offline_order)){
			oldest = session;
		}
	}
	return oldest;
}

/* A session that just went offline, within the bounds: its token's
 * oldest offline session makes room for it; beyond the bound for all it
 * is not kept (so that no client's churn ends another's binding). Returns
 * how many bindings ended. */
static size_t keep_within_bounds(struct sessions *sessions, struct session *newcomer)
{
	struct token *token = newcomer->token;
	if(token && sessions->max_offline_per_token > 0 && token->offline_sessions > sessions->max_offline_per_token){
		end_offline(sessions, oldest_offline_of(token));
		return 1;
	}
	if(sessions->max_offline > 0 && sessions->offline > sessions->max_offline){
		end_offline(sessions, newcomer);
		return 1;
	}
	return 0;
}

void sessions_clear(struct sessions *sessions)
{
	struct session *session, *next;
	HASH_CLEAR(hh_id, sessions->live_by_id);   /* its sessions are by_client's */
	HASH_ITER(hh, sessions->by_client, session, next){
		detach_from_token(sessions, session);
		HASH_DEL(sessions->by_client, session);
		free(session);
	}
	HASH_ITER(hh_id, sessions->by_id, session, next){
		detach_from_token(sessions, session);
		HASH_DELETE(hh_id, sessions->by_id, session);
		free(session);
	}
	session_records_clear(&sessions->changes);
	free(sessions->kicks);
	free(sessions->leaving);
	sessions_init(sessions);
}

struct session *sessions_find(const struct sessions *sessions, const struct mosquitto *client)
{
	struct session *session;
	HASH_FIND_PTR(sessions->by_client, &client, session);
	return session;
}

static bool same_username(const char *a, const char *b)
{
	return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

static struct session *find_by_id(const struct sessions *sessions, const char *client_id)
{
	struct session *session = NULL;
	if(client_id && sessions->by_id){
		HASH_FIND(hh_id, sessions->by_id, client_id, strlen(client_id), session);
	}
	return session;
}

struct session *sessions_find_offline(struct sessions *sessions, const struct session_context *context)
{
	struct session *session = find_by_id(sessions, context->client_id);
	if(session == NULL || context->client == NULL || !same_username(session->username, context->username)){
		return NULL;
	}
	if(session->client == NULL && context->restored){
		session->client = context->client;
	}
	return session->client == context->client ? session : NULL;
}

static struct session *session_new(const struct mosquitto *client, const struct session_login *login)
{
	size_t id_length = strlen(login->client_id);
	size_t username_size = login->username ? strlen(login->username) + 1 : 0;
	struct session *session = calloc(1, sizeof(*session) + id_length + 1 + username_size);
	if(session == NULL){
		return NULL;
	}
	session->client = client;
	memcpy(session->client_id, login->client_id, id_length + 1);
	if(login->username){
		char *username = session->client_id + id_length + 1;
		memcpy(username, login->username, username_size);
		session->username = username;
	}
	memcpy(session->hash, login->hash, TOKEN_HASH_LEN);
	session->persists = login->persists || login->restorable;
	session->saved = login->restorable && id_length <= SESSION_SAVED_TEXT_MAX
			&& username_size <= SESSION_SAVED_TEXT_MAX + 1;
	return session;
}

/* Lists a connected session that may persist by its client id. One
 * listed there already is being taken over by this login (the broker
 * closes it next): its binding goes to the new one, so its end is not
 * the binding's. */
static bool add_live(struct sessions *sessions, struct session *session)
{
	struct session *earlier;
	HASH_FIND(hh_id, sessions->live_by_id, session->client_id, strlen(session->client_id), earlier);
	if(earlier){
		HASH_DELETE(hh_id, sessions->live_by_id, earlier);
		earlier->saved = false;
	}
	HASH_ADD_KEYPTR(hh_id, sessions->live_by_id, session->client_id, strlen(session->client_id), session);
	return session->hh_id.tbl != NULL;   /* out of memory: store.h */
}

static void remove_live(struct sessions *sessions, struct session *session)
{
	if(session->saved && !session->offline){
		HASH_DELETE(hh_id, sessions->live_by_id, session);
	}
}

/* note: the binding's end is saved; not when a login with the same
 * client id replaces it at once (its own note says what holds). */
static void drop_connected(struct sessions *sessions, struct session *session, bool note)
{
	detach_from_token(sessions, session);
	remove_live(sessions, session);
	HASH_DEL(sessions->by_client, session);
	if(note){
		note_ended(sessions, session);
	}
	free(session);
}

bool sessions_bind(struct sessions *sessions, const struct mosquitto *client, struct token *token,
		const struct session_login *login)
{
	struct session *session = session_new(client, login);
	struct session *earlier = sessions_find(sessions, client);
	if(earlier){
		bool replaced = session && session->saved && strcmp(earlier->client_id, login->client_id) == 0;
		drop_connected(sessions, earlier, !replaced);
	}
	if(session == NULL){
		return false;
	}
	/* The new login decides. A device that comes back with the secret
	 * it left with keeps the binding the state file has already. */
	struct session *offline = find_by_id(sessions, login->client_id);
	bool unchanged = offline && offline->saved && session->saved
			&& memcmp(offline->hash, login->hash, TOKEN_HASH_LEN) == 0
			&& same_username(offline->username, login->username);
	if(unchanged){
		free_offline(sessions, offline);
	}else if(offline){
		end_offline(sessions, offline);
	}
	HASH_ADD_PTR(sessions->by_client, client, session);
	if(session->hh.tbl == NULL){   /* out of memory: store.h */
		free(session);
		return false;
	}
	if(session->saved && !add_live(sessions, session)){
		HASH_DEL(sessions->by_client, session);
		free(session);
		return false;
	}
	attach_to_token(sessions, session, token);
	session->via_previous = login->via_previous;
	if(session->saved && !unchanged){
		/* Without memory for the note it is saved by the next snapshot. */
		session_records_put(&sessions->changes, session->client_id, session->username, session->hash);
	}
	return true;
}

void sessions_unbind(struct sessions *sessions, const struct mosquitto *client)
{
	struct session *session = sessions_find(sessions, client);
	if(session){
		drop_connected(sessions, session, true);
	}
}

void sessions_note_login(struct sessions *sessions, const struct mosquitto *client, const char *client_id)
{
	struct session *offline = find_by_id(sessions, client_id);
	if(offline == NULL){
		return;
	}
	if(offline->client == client){
		end_offline(sessions, offline);
	}
}

void sessions_start_recheck(struct sessions *sessions)
{
	sessions->reloads++;
}

struct session *sessions_note_recheck(struct sessions *sessions, const struct session_context *context)
{
	struct session *offline = sessions_find_offline(sessions, context);
	if(offline){
		offline->seen_at_reload = sessions->reloads;
	}
	return offline;
}

size_t sessions_end_unmet(struct sessions *sessions)
{
	size_t ended = 0;
	struct session *session, *next;
	HASH_ITER(hh_id, sessions->by_id, session, next){
		if(session->seen_at_reload != sessions->reloads){
			end_offline(sessions, session);
			ended++;
		}
	}
	return ended;
}

/* Appends to a growable array of client pointers. */
static bool push_client(const struct mosquitto ***array, size_t *count, size_t *capacity,
		const struct mosquitto *client)
{
	if(*count == *capacity){
		size_t grown_capacity = *capacity ? 2 * *capacity : 8;
		const struct mosquitto **grown = realloc(*array, grown_capacity * sizeof(*grown));
		if(grown == NULL){
			return false;
		}
		*array = grown;
		*capacity = grown_capacity;
	}
	(*array)[(*count)++] = client;
	return true;
}

static bool queue_kick(struct sessions *sessions, const struct mosquitto *client, uint64_t delay)
{
	if(sessions->kick_count == sessions->kick_capacity){
		size_t capacity = sessions->kick_capacity ? 2 * sessions->kick_capacity : 8;
		struct session_kick *grown = realloc(sessions->kicks, capacity * sizeof(*grown));
		if(grown == NULL){
			return false;
		}
		sessions->kicks = grown;
		sessions->kick_capacity = capacity;
	}
	sessions->kicks[sessions->kick_count++] = (struct session_kick){client, sessions->ticks + delay};
	return true;
}

void sessions_depart(struct sessions *sessions, const struct session_context *context,
		enum session_departure departure, bool rechecking)
{
	const struct mosquitto *client = context->client;
	struct session *session = sessions_find(sessions, client);
	if(session == NULL){
		struct session *offline = sessions_find_offline(sessions, context);
		if(offline && rechecking){
			offline->seen_at_reload = sessions->reloads;
		}else if(offline){
			end_offline(sessions, offline);
		}
		return;
	}
	if(session->disconnected){
		/* 2.1: gone offline, then its session ended before the tick. */
		if(departure == DEPARTURE_SESSION_ENDS){
			session->departure = (uint8_t)departure;
		}
		return;
	}
	if(counts(session)){
		sessions->attached--;
	}
	session->disconnected = true;
	session->departure = (uint8_t)departure;
	if(!push_client(&sessions->leaving, &sessions->leaving_count, &sessions->leaving_capacity, client)){
		sessions_unbind(sessions, client);   /* no memory to wait: unbind now */
	}
}

/* A departed session whose context keeps its client id goes offline.
 * Only a bound session's context is asked: the plugin's own kicks run at
 * the end of its tick, after this, and their contexts may be freed before
 * the next one; they are all of detached sessions. (On 2.0 only another
 * plugin's tick, after this one, could disconnect a bound session that
 * late; none of the broker's own does.) */
static size_t settle(struct sessions *sessions, struct session *session, sessions_client_id_fn client_id_of)
{
	bool kept = false;
	if(session->departure == DEPARTURE_SESSION_STAYS){
		kept = session->token != NULL;
	}else if(session->departure == DEPARTURE_ASK_AT_TICK && session->token && session->persists){
		const char *client_id = client_id_of(session->client);
		kept = client_id && strcmp(client_id, session->client_id) == 0;
	}
	if(!kept){
		sessions_unbind(sessions, session->client);
		return 0;
	}
	remove_live(sessions, session);
	HASH_DEL(sessions->by_client, session);
	if(!link_offline(sessions, session)){
		detach_from_token(sessions, session);
		note_ended(sessions, session);
		free(session);
		return 0;
	}
	return keep_within_bounds(sessions, session);
}

size_t sessions_settle_departed(struct sessions *sessions, sessions_client_id_fn client_id_of)
{
	size_t ended = 0;
	for(size_t i = 0; i < sessions->leaving_count; i++){
		struct session *session = sessions_find(sessions, sessions->leaving[i]);
		if(session && session->disconnected){
			ended += settle(sessions, session, client_id_of);
		}
	}
	sessions->leaving_count = 0;
	return ended;
}

bool sessions_restore(struct sessions *sessions, struct token *token, const struct session_login *login)
{
	struct session *session = session_new(NULL, login);
	if(session == NULL){
		return false;
	}
	session->disconnected = true;
	if(!link_offline(sessions, session)){
		free(session);
		return false;
	}
	attach_to_token(sessions, session, token);
	session->via_previous = login->via_previous;
	keep_within_bounds(sessions, session);
	return true;
}

static struct sessions_closed close_sessions(struct sessions *sessions, struct token *token,
		const struct mosquitto *requester, bool only_previous)
{
	struct sessions_closed closed = {0, 0};
	struct session *session = token->sessions;
	while(session){
		struct session *next = session->token_next;
		if(!only_previous || session->via_previous){
			if(session->offline){
				end_offline(sessions, session);
				closed.offline++;
			}else{
				bool connected = !session->disconnected;
				detach_from_token(sessions, session);
				/* Without memory for the kick the connection stays open, but
				 * it is detached: every ACL check it makes is denied. */
				if(connected){
					queue_kick(sessions, session->client, session->client == requester ? 2 : 0);
					closed.connected++;
				}
			}
		}
		session = next;
	}
	return closed;
}

struct sessions_closed sessions_close_token(struct sessions *sessions, struct token *token,
		const struct mosquitto *requester)
{
	return close_sessions(sessions, token, requester, false);
}

struct sessions_closed sessions_close_previous(struct sessions *sessions, struct token *token)
{
	return close_sessions(sessions, token, NULL, true);
}

void sessions_move(struct token *from, struct token *to)
{
	struct session *last = NULL;
	for(struct session *session = from->sessions; session; session = session->token_next){
		session->token = to;
		session->via_previous = true;
		last = session;
	}
	if(last){
		last->token_next = to->sessions;
		if(to->sessions){
			to->sessions->token_previous = last;
		}
		to->sessions = from->sessions;
	}
	from->sessions = NULL;
	to->offline_sessions += from->offline_sessions;
	from->offline_sessions = 0;
}

const struct mosquitto **sessions_take_due_kicks(struct sessions *sessions, size_t *count)
{
	sessions->ticks++;
	*count = 0;
	if(sessions->kick_count == 0){
		return NULL;
	}
	const struct mosquitto **due = malloc(sessions->kick_count * sizeof(*due));
	if(due == NULL){
		return NULL;   /* tried again at the next tick */
	}
	size_t kept = 0;
	for(size_t i = 0; i < sessions->kick_count; i++){
		if(sessions->kicks[i].due_tick <= sessions->ticks){
			due[(*count)++] = sessions->kicks[i].client;
		}else{
			sessions->kicks[kept++] = sessions->kicks[i];
		}
	}
	sessions->kick_count = kept;
	return due;
}

void sessions_each_binding(const struct sessions *sessions, void (*put)(void *writer,
		const struct session *session), void *writer)
{
	for(const struct session *session = sessions->live_by_id; session; session = session->hh_id.next){
		if(session->token){
			put(writer, session);
		}
	}
	for(const struct session *session = sessions->by_id; session; session = session->hh_id.next){
		put(writer, session);
	}
}
