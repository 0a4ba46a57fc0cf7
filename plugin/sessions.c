/*
 * Token-bound connections and the queue of kicks. See include/sessions.h.
 */
#include <stdlib.h>
#include <string.h>

#include "sessions.h"

void sessions_init(struct sessions *sessions)
{
	memset(sessions, 0, sizeof(*sessions));
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
	session->token_previous = NULL;
	session->token_next = token->sessions;
	if(token->sessions){
		token->sessions->token_previous = session;
	}
	token->sessions = session;
}

void sessions_clear(struct sessions *sessions)
{
	struct session *session, *next;
	HASH_ITER(hh, sessions->by_client, session, next){
		detach_from_token(sessions, session);
		HASH_DEL(sessions->by_client, session);
		free(session);
	}
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

bool sessions_bind(struct sessions *sessions, const struct mosquitto *client, const char *client_id,
		struct token *token, bool via_previous)
{
	sessions_unbind(sessions, client);
	size_t id_length = strlen(client_id);
	struct session *session = calloc(1, sizeof(*session) + id_length + 1);
	if(session == NULL){
		return false;
	}
	session->client = client;
	memcpy(session->client_id, client_id, id_length + 1);
	HASH_ADD_PTR(sessions->by_client, client, session);
	if(session->hh.tbl == NULL){   /* out of memory: store.h */
		free(session);
		return false;
	}
	attach_to_token(sessions, session, token);
	session->via_previous = via_previous;
	return true;
}

void sessions_unbind(struct sessions *sessions, const struct mosquitto *client)
{
	struct session *session = sessions_find(sessions, client);
	if(session){
		detach_from_token(sessions, session);
		HASH_DEL(sessions->by_client, session);
		free(session);
	}
}

size_t sessions_count(const struct sessions *sessions)
{
	return HASH_COUNT(sessions->by_client);
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

void sessions_depart(struct sessions *sessions, const struct mosquitto *client)
{
	struct session *session = sessions_find(sessions, client);
	if(session == NULL || session->disconnected){
		return;
	}
	if(counts(session)){
		sessions->attached--;
	}
	session->disconnected = true;
	if(!push_client(&sessions->leaving, &sessions->leaving_count, &sessions->leaving_capacity, client)){
		sessions_unbind(sessions, client);   /* no memory to wait: unbind now */
	}
}

void sessions_unbind_departed(struct sessions *sessions)
{
	for(size_t i = 0; i < sessions->leaving_count; i++){
		const struct session *session = sessions_find(sessions, sessions->leaving[i]);
		if(session && session->disconnected){
			sessions_unbind(sessions, sessions->leaving[i]);
		}
	}
	sessions->leaving_count = 0;
}

static size_t close_sessions(struct sessions *sessions, struct token *token, const struct mosquitto *requester,
		bool only_previous)
{
	size_t closed = 0;
	struct session *session = token->sessions;
	while(session){
		struct session *next = session->token_next;
		if(!only_previous || session->via_previous){
			bool connected = !session->disconnected;
			detach_from_token(sessions, session);
			/* Without memory for the kick the connection stays open, but it
			 * is detached: every ACL check it makes is denied. */
			if(connected){
				queue_kick(sessions, session->client, session->client == requester ? 2 : 0);
				closed++;
			}
		}
		session = next;
	}
	return closed;
}

size_t sessions_close_token(struct sessions *sessions, struct token *token, const struct mosquitto *requester)
{
	return close_sessions(sessions, token, requester, false);
}

size_t sessions_close_previous(struct sessions *sessions, struct token *token)
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
