/*
 * Control replies waiting for the tick. See include/replies.h.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "replies.h"

void replies_init(struct replies *replies)
{
	memset(replies, 0, sizeof(*replies));
}

static void wipe_and_free(char *text)
{
	if(text){
		OPENSSL_cleanse(text, strlen(text));
		free(text);
	}
}

static void release(struct pending_reply *reply)
{
	free(reply->client_id);
	free(reply->topic);
	wipe_and_free(reply->payload);
	mosquitto_property_free_all(&reply->properties);
}

void replies_clear(struct replies *replies)
{
	for(size_t i = 0; i < replies->count; i++){
		release(&replies->items[i]);
	}
	free(replies->items);
	replies_init(replies);
}

static bool make_room(struct replies *replies)
{
	if(replies->count < replies->capacity){
		return true;
	}
	size_t capacity = replies->capacity ? 2 * replies->capacity : 8;
	struct pending_reply *grown = realloc(replies->items, capacity * sizeof(*grown));
	if(grown == NULL){
		return false;
	}
	replies->items = grown;
	replies->capacity = capacity;
	return true;
}

bool replies_hold(struct replies *replies, const struct mosquitto *requester, const char *client_id,
		const char *topic, const char *payload, mosquitto_property *properties)
{
	struct pending_reply reply = {
		.requester = requester,
		.client_id = strdup(client_id),
		.topic = strdup(topic),
		.payload = strdup(payload),
		.properties = properties,
	};
	if(reply.client_id == NULL || reply.topic == NULL || reply.payload == NULL || !make_room(replies)){
		release(&reply);
		return false;
	}
	replies->items[replies->count++] = reply;
	return true;
}

/* Drops the replies for which doomed() holds, keeping the others in order. */
static size_t drop_where(struct replies *replies, bool (*doomed)(const struct pending_reply *reply, const void *key,
		const struct mosquitto *client), const void *key, const struct mosquitto *client)
{
	size_t kept = 0, dropped = 0;
	for(size_t i = 0; i < replies->count; i++){
		if(doomed(&replies->items[i], key, client)){
			release(&replies->items[i]);
			dropped++;
		}else{
			replies->items[kept++] = replies->items[i];
		}
	}
	replies->count = kept;
	return dropped;
}

static bool is_for_connection(const struct pending_reply *reply, const void *key, const struct mosquitto *client)
{
	(void)key;
	return reply->requester == client;
}

static bool is_taken_over(const struct pending_reply *reply, const void *client_id, const struct mosquitto *login)
{
	return reply->requester != login && strcmp(reply->client_id, client_id) == 0;
}

size_t replies_drop_for_connection(struct replies *replies, const struct mosquitto *client)
{
	return replies->count ? drop_where(replies, is_for_connection, NULL, client) : 0;
}

size_t replies_drop_for_client_id(struct replies *replies, const char *client_id, const struct mosquitto *login)
{
	if(replies->count == 0 || client_id == NULL){
		return 0;
	}
	return drop_where(replies, is_taken_over, client_id, login);
}

size_t replies_send(struct replies *replies, reply_send_fn send)
{
	size_t failed = 0;
	for(size_t i = 0; i < replies->count; i++){
		struct pending_reply *reply = &replies->items[i];
		failed += send(reply->client_id, reply->topic, reply->payload, reply->properties) != MOSQ_ERR_SUCCESS;
		reply->properties = NULL;   /* the sender's now */
		release(reply);
	}
	replies->count = 0;
	return failed;
}
