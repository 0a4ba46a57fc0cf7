/*
 * Lifecycle events on $CONTROL/tokens/v1/events (SPEC section 4, "Beyond
 * the seed"): one JSON object per event, the token's metadata plus "event"
 * and "at", and "by" (the requester) for the events a command causes.
 * Never a secret. Delivery is the broker's: whoever may subscribe to and
 * receive the topic gets them.
 */
#ifndef EVENTS_H
#define EVENTS_H

#include "instance.h"

/* by and previous_hash may be NULL. */
void events_publish(struct tokens_plugin *plugin, const char *event, const struct token *token,
		const char *by, const unsigned char *previous_hash);

/* Each notice is recorded (a journal line, an fsync) before it is sent:
 * a backlog (a hundred thousand tokens that expired while the broker was
 * down) is sent this many a tick, so that no tick stalls the broker. */
#define NOTICES_PER_TICK 100
/* Sends up to NOTICES_PER_TICK expiry notices that are due, marks them in
 * the journal so they are not sent again after a restart, and counts
 * expired tokens. */
void events_send_due_notices(struct tokens_plugin *plugin, int64_t now);

/* The retained $SYS/broker/tokens/... metrics. */
void events_publish_metrics(struct tokens_plugin *plugin);

#endif
