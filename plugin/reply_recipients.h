/*
 * Control replies on Mosquitto 2.1, between the plugin's publish and the
 * broker's write to a connection. The broker delivers a plugin's message
 * by client id, looked up when it drains its queue at the start of its
 * next loop iteration, after a network step in which another connection
 * may take that client id over (2.1's tick, unlike 2.0's, comes before
 * the network, so the hold of replies.h does not cover it). 2.1 shows
 * every write to a client to MOSQ_EVT_MESSAGE_OUT, with the receiving
 * connection, and lets a plugin refuse it: a reply is expected here when
 * it is published and may leave only for the connection that asked.
 *
 * A reply is known by a SHA-256 of its client id, topic and payload (no
 * copy of a secret is kept), and only messages on a topic that some
 * expected reply uses are hashed at all. Identical replies to one client
 * id are told apart by their requesters.
 *
 * A reply that is never written (its requester left and nobody has the
 * client id, or the session queues it while offline, with
 * queue_qos0_messages) is forgotten after REPLY_WATCH_SECONDS; the
 * publish sets a message expiry of REPLY_EXPIRY_SECONDS, so a queued copy
 * is gone before its record is.
 */
#ifndef REPLY_RECIPIENTS_H
#define REPLY_RECIPIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/sha.h>

#include "store.h"       /* uthash, set up with HASH_NONFATAL_OOM */

#define REPLY_EXPIRY_SECONDS 10
#define REPLY_WATCH_SECONDS (REPLY_EXPIRY_SECONDS + 2)
/* Replies expected at once; beyond it the oldest is forgotten. Only
 * replies that are never written stay longer than a loop iteration. */
#define REPLY_RECIPIENTS_MAX 100000

struct mosquitto;

struct reply_topic {
	UT_hash_handle hh;
	size_t replies;          /* expected replies on this topic */
	char name[];
};

struct expected_reply;

/* The expected replies with one digest, oldest first. */
struct reply_digest {
	UT_hash_handle hh;
	unsigned char digest[SHA256_DIGEST_LENGTH];
	struct expected_reply *first;
};

struct expected_reply {
	const struct mosquitto *requester;
	int64_t sent_at;
	struct reply_digest *digest;
	struct reply_topic *topic;
	struct expected_reply *next_same;    /* same digest */
	struct expected_reply *older, *newer;
};

struct reply_recipients {
	struct reply_digest *by_digest;
	struct reply_topic *topics;
	struct expected_reply *oldest, *newest;
	size_t count;
	size_t max;
	size_t forgotten_early;  /* dropped over max, for the log */
};

enum reply_recipient {
	REPLY_NOT_EXPECTED,      /* not a control reply: let it go */
	REPLY_TO_REQUESTER,
	REPLY_TO_ANOTHER,        /* refuse it */
};

void reply_recipients_init(struct reply_recipients *recipients, size_t max);
void reply_recipients_clear(struct reply_recipients *recipients);
/* Before the reply is published. False when out of memory: do not publish it. */
bool reply_recipients_expect(struct reply_recipients *recipients, const struct mosquitto *requester,
		const char *client_id, const char *topic, const void *payload, size_t payload_length, int64_t now);
/* A message about to be written to recipient (whose client id is given):
 * if it is an expected reply, that expectation is used up. A message on
 * a reply topic that cannot be hashed (no memory) is taken as going to
 * another. */
enum reply_recipient reply_recipients_check(struct reply_recipients *recipients, const struct mosquitto *recipient,
		const char *client_id, const char *topic, const void *payload, size_t payload_length);
/* Forgets the replies expected for longer than REPLY_WATCH_SECONDS;
 * returns how many. */
size_t reply_recipients_expire(struct reply_recipients *recipients, int64_t now);

#endif
