/*
 * Who may receive a control reply on Mosquitto 2.1. See plugin/reply_recipients.h.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "reply_recipients.h"

void reply_recipients_init(struct reply_recipients *recipients, size_t max)
{
	memset(recipients, 0, sizeof(*recipients));
	recipients->max = max;
}

/* The client id and the topic end with their NUL, so that no two
 * different (client id, topic, payload) feed the same bytes. */
static bool digest_of(const char *client_id, const char *topic, const void *payload, size_t payload_length,
		unsigned char out[SHA256_DIGEST_LENGTH])
{
	EVP_MD_CTX *context = EVP_MD_CTX_new();
	unsigned int length = 0;
	bool made = context
		&& EVP_DigestInit_ex(context, EVP_sha256(), NULL) == 1
		&& EVP_DigestUpdate(context, client_id, strlen(client_id) + 1) == 1
		&& EVP_DigestUpdate(context, topic, strlen(topic) + 1) == 1
		&& EVP_DigestUpdate(context, payload, payload_length) == 1
		&& EVP_DigestFinal_ex(context, out, &length) == 1
		&& length == SHA256_DIGEST_LENGTH;
	EVP_MD_CTX_free(context);
	return made;
}

static struct reply_topic *topic_use(struct reply_recipients *recipients, const char *name)
{
	struct reply_topic *topic;
	HASH_FIND_STR(recipients->topics, name, topic);
	if(topic == NULL){
		size_t length = strlen(name);
		topic = calloc(1, sizeof(*topic) + length + 1);
		if(topic == NULL){
			return NULL;
		}
		memcpy(topic->name, name, length + 1);
		HASH_ADD_KEYPTR(hh, recipients->topics, topic->name, length, topic);
		if(topic->hh.tbl == NULL){
			free(topic);
			return NULL;
		}
	}
	topic->replies++;
	return topic;
}

static void topic_release(struct reply_recipients *recipients, struct reply_topic *topic)
{
	if(--topic->replies == 0){
		HASH_DEL(recipients->topics, topic);
		free(topic);
	}
}

static struct reply_digest *digest_use(struct reply_recipients *recipients, const unsigned char *digest)
{
	struct reply_digest *entry;
	HASH_FIND(hh, recipients->by_digest, digest, SHA256_DIGEST_LENGTH, entry);
	if(entry == NULL){
		entry = calloc(1, sizeof(*entry));
		if(entry == NULL){
			return NULL;
		}
		memcpy(entry->digest, digest, SHA256_DIGEST_LENGTH);
		HASH_ADD(hh, recipients->by_digest, digest, SHA256_DIGEST_LENGTH, entry);
		if(entry->hh.tbl == NULL){
			free(entry);
			return NULL;
		}
	}
	return entry;
}

static void unlink_from_digest(struct reply_recipients *recipients, struct expected_reply *reply)
{
	struct reply_digest *entry = reply->digest;
	struct expected_reply **link = &entry->first;
	while(*link != reply){
		link = &(*link)->next_same;
	}
	*link = reply->next_same;
	if(entry->first == NULL){
		HASH_DEL(recipients->by_digest, entry);
		free(entry);
	}
}

static void forget(struct reply_recipients *recipients, struct expected_reply *reply)
{
	unlink_from_digest(recipients, reply);
	topic_release(recipients, reply->topic);
	if(reply->older){
		reply->older->newer = reply->newer;
	}else{
		recipients->oldest = reply->newer;
	}
	if(reply->newer){
		reply->newer->older = reply->older;
	}else{
		recipients->newest = reply->older;
	}
	recipients->count--;
	free(reply);
}

void reply_recipients_clear(struct reply_recipients *recipients)
{
	while(recipients->oldest){
		forget(recipients, recipients->oldest);
	}
	reply_recipients_init(recipients, recipients->max);
}

static void append(struct reply_recipients *recipients, struct expected_reply *reply)
{
	struct expected_reply **link = &reply->digest->first;
	while(*link){
		link = &(*link)->next_same;
	}
	*link = reply;
	reply->older = recipients->newest;
	if(recipients->newest){
		recipients->newest->newer = reply;
	}else{
		recipients->oldest = reply;
	}
	recipients->newest = reply;
	recipients->count++;
}

bool reply_recipients_expect(struct reply_recipients *recipients, const struct mosquitto *requester,
		const char *client_id, const char *topic, const void *payload, size_t payload_length, int64_t now)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	if(!digest_of(client_id, topic, payload, payload_length, digest)){
		return false;
	}
	if(recipients->max > 0 && recipients->count >= recipients->max){
		forget(recipients, recipients->oldest);
		recipients->forgotten_early++;
	}
	struct expected_reply *reply = calloc(1, sizeof(*reply));
	if(reply == NULL){
		return false;
	}
	reply->requester = requester;
	reply->sent_at = now;
	reply->topic = topic_use(recipients, topic);
	if(reply->topic == NULL){
		free(reply);
		return false;
	}
	reply->digest = digest_use(recipients, digest);
	if(reply->digest == NULL){
		topic_release(recipients, reply->topic);
		free(reply);
		return false;
	}
	append(recipients, reply);
	return true;
}

/* The recipient's own reply if it has one with this digest, else the oldest. */
static struct expected_reply *best_match(struct reply_digest *entry, const struct mosquitto *recipient)
{
	for(struct expected_reply *reply = entry->first; reply; reply = reply->next_same){
		if(reply->requester == recipient){
			return reply;
		}
	}
	return entry->first;
}

enum reply_recipient reply_recipients_check(struct reply_recipients *recipients, const struct mosquitto *recipient,
		const char *client_id, const char *topic, const void *payload, size_t payload_length)
{
	if(recipients->count == 0 || client_id == NULL || topic == NULL){
		return REPLY_NOT_EXPECTED;
	}
	struct reply_topic *reply_topic;
	HASH_FIND_STR(recipients->topics, topic, reply_topic);
	if(reply_topic == NULL){
		return REPLY_NOT_EXPECTED;
	}
	unsigned char digest[SHA256_DIGEST_LENGTH];
	if(!digest_of(client_id, topic, payload ? payload : "", payload_length, digest)){
		return REPLY_TO_ANOTHER;
	}
	struct reply_digest *entry;
	HASH_FIND(hh, recipients->by_digest, digest, SHA256_DIGEST_LENGTH, entry);
	if(entry == NULL){
		return REPLY_NOT_EXPECTED;
	}
	struct expected_reply *reply = best_match(entry, recipient);
	bool to_requester = reply->requester == recipient;
	forget(recipients, reply);
	return to_requester ? REPLY_TO_REQUESTER : REPLY_TO_ANOTHER;
}

size_t reply_recipients_expire(struct reply_recipients *recipients, int64_t now)
{
	size_t expired = 0;
	while(recipients->oldest && now - recipients->oldest->sent_at > REPLY_WATCH_SECONDS){
		forget(recipients, recipients->oldest);
		expired++;
	}
	return expired;
}
