/*
 * Control replies waiting for the tick. See plugin/replies.h.
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

static void forget_contenders(struct replies *replies)
{
	for(size_t i = 0; i < replies->contender_count; i++){
		free(replies->contenders[i].client_id);
	}
	replies->contender_count = 0;
}

void replies_clear(struct replies *replies)
{
	for(size_t i = 0; i < replies->count; i++){
		release(&replies->items[i]);
	}
	forget_contenders(replies);
	free(replies->items);
	free(replies->contenders);
	replies_init(replies);
}

/* Room for one more element in a growable array. */
static bool make_room(void **items, size_t count, size_t *capacity, size_t item_size)
{
	if(count < *capacity){
		return true;
	}
	size_t grown_capacity = *capacity ? 2 * *capacity : 8;
	void *grown = realloc(*items, grown_capacity * item_size);
	if(grown == NULL){
		return false;
	}
	*items = grown;
	*capacity = grown_capacity;
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
	if(reply.client_id == NULL || reply.topic == NULL || reply.payload == NULL
			|| !make_room((void **)&replies->items, replies->count, &replies->capacity, sizeof(reply))){
		release(&reply);
		return false;
	}
	replies->items[replies->count++] = reply;
	return true;
}

/* Keeps the replies for which keep() holds, in order; returns how many went. */
static size_t filter_replies(struct replies *replies, bool (*keep)(const struct replies *replies,
		const struct pending_reply *reply, const struct mosquitto *client), const struct mosquitto *client)
{
	size_t kept = 0, dropped = 0;
	for(size_t i = 0; i < replies->count; i++){
		if(keep(replies, &replies->items[i], client)){
			replies->items[kept++] = replies->items[i];
		}else{
			release(&replies->items[i]);
			dropped++;
		}
	}
	replies->count = kept;
	return dropped;
}

static bool waits_for_other_connection(const struct replies *replies, const char *client_id,
		const struct mosquitto *login)
{
	for(size_t i = 0; i < replies->count; i++){
		if(replies->items[i].requester != login && strcmp(replies->items[i].client_id, client_id) == 0){
			return true;
		}
	}
	return false;
}

/* Without memory to remember the contender, its id's replies go now. */
static void drop_for_id(struct replies *replies, const char *client_id, const struct mosquitto *login)
{
	size_t kept = 0;
	for(size_t i = 0; i < replies->count; i++){
		struct pending_reply *reply = &replies->items[i];
		if(reply->requester != login && strcmp(reply->client_id, client_id) == 0){
			release(reply);
		}else{
			replies->items[kept++] = *reply;
		}
	}
	replies->count = kept;
}

bool replies_note_login(struct replies *replies, const struct mosquitto *login, const char *client_id)
{
	if(client_id == NULL || !waits_for_other_connection(replies, client_id, login)){
		return true;
	}
	struct reply_contender contender = {.client = login, .client_id = strdup(client_id)};
	if(contender.client_id == NULL || !make_room((void **)&replies->contenders, replies->contender_count,
			&replies->contender_capacity, sizeof(contender))){
		free(contender.client_id);
		drop_for_id(replies, client_id, login);
		return false;
	}
	replies->contenders[replies->contender_count++] = contender;
	return true;
}

static bool not_from(const struct replies *replies, const struct pending_reply *reply, const struct mosquitto *client)
{
	(void)replies;
	return reply->requester != client;
}

size_t replies_connection_gone(struct replies *replies, const struct mosquitto *client)
{
	size_t kept = 0;
	for(size_t i = 0; i < replies->contender_count; i++){
		if(replies->contenders[i].client == client){
			free(replies->contenders[i].client_id);
		}else{
			replies->contenders[kept++] = replies->contenders[i];
		}
	}
	replies->contender_count = kept;
	return replies->count ? filter_replies(replies, not_from, client) : 0;
}

static bool not_contended(const struct replies *replies, const struct pending_reply *reply,
		const struct mosquitto *unused)
{
	(void)unused;
	for(size_t i = 0; i < replies->contender_count; i++){
		if(strcmp(replies->contenders[i].client_id, reply->client_id) == 0){
			return false;
		}
	}
	return true;
}

size_t replies_send(struct replies *replies, reply_send_fn send, size_t *taken_over)
{
	*taken_over = replies->contender_count ? filter_replies(replies, not_contended, NULL) : 0;
	forget_contenders(replies);
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
