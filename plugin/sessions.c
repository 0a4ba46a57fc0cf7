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

static void detach_from_token(struct session *session)
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
	session->token = NULL;
	session->token_previous = session->token_next = NULL;
}

static void attach_to_token(struct session *session, struct token *token)
{
	session->token = token;
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
		detach_from_token(session);
		HASH_DEL(sessions->by_client, session);
		free(session);
	}
	free(sessions->kicks);
	sessions_init(sessions);
}

struct session *sessions_find(const struct sessions *sessions, const struct mosquitto *client)
{
	struct session *session;
	HASH_FIND_PTR(sessions->by_client, &client, session);
	return session;
}

bool sessions_bind(struct sessions *sessions, const struct mosquitto *client, const char *client_id,
		struct token *token)
{
	sessions_unbind(sessions, client);
	size_t id_length = strlen(client_id);
	struct session *session = calloc(1, sizeof(*session) + id_length + 1);
	if(session == NULL){
		return false;
	}
	session->client = client;
	memcpy(session->client_id, client_id, id_length + 1);
	attach_to_token(session, token);
	HASH_ADD_PTR(sessions->by_client, client, session);
	return true;
}

void sessions_unbind(struct sessions *sessions, const struct mosquitto *client)
{
	struct session *session = sessions_find(sessions, client);
	if(session){
		detach_from_token(session);
		HASH_DEL(sessions->by_client, session);
		free(session);
	}
}

size_t sessions_count(const struct sessions *sessions)
{
	return HASH_COUNT(sessions->by_client);
}

static bool queue_kick(struct sessions *sessions, const struct mosquitto *client)
{
	if(sessions->kick_count == sessions->kick_capacity){
		size_t capacity = sessions->kick_capacity ? 2 * sessions->kick_capacity : 8;
		const struct mosquitto **grown = realloc(sessions->kicks, capacity * sizeof(*grown));
		if(grown == NULL){
			return false;
		}
		sessions->kicks = grown;
		sessions->kick_capacity = capacity;
	}
	sessions->kicks[sessions->kick_count++] = client;
	return true;
}

size_t sessions_close_token(struct sessions *sessions, struct token *token)
{
	size_t closed = 0;
	while(token->sessions){
		struct session *session = token->sessions;
		detach_from_token(session);
		/* Without memory for the kick the connection stays open, but it is
		 * detached: every ACL check it makes is denied. */
		queue_kick(sessions, session->client);
		closed++;
	}
	return closed;
}

const struct mosquitto **sessions_take_kicks(struct sessions *sessions, size_t *count)
{
	const struct mosquitto **kicks = sessions->kicks;
	*count = sessions->kick_count;
	sessions->kicks = NULL;
	sessions->kick_count = sessions->kick_capacity = 0;
	return kicks;
}
