/*
 * Which token a secret logs in as, now, on a connection with a given client
 * id (SPEC section 2), without the broker: the authentication callback asks
 * this, and so do the tests that check every secret ever issued gets the
 * same answer before and after a restart.
 *
 * A token bound to a client id logs in only with exactly that client id,
 * whichever of its secrets is used (its current one, or its previous one
 * during a rotation's grace period). The same rule decides whether a
 * binding of a persistent session may be restored after a restart.
 */
#ifndef LOGIN_H
#define LOGIN_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

enum login_verdict {
	LOGIN_ACCEPTED,
	LOGIN_UNKNOWN,    /* no token has this hash now (revoked, rotated away, never issued) */
	LOGIN_EXPIRED,    /* the token's validUntil has passed */
	LOGIN_CLIENT_ID_REFUSED,   /* the token is bound to another client id */
};

struct login_answer {
	enum login_verdict verdict;
	struct token *token;     /* set unless unknown */
	bool via_previous;       /* the token's previous secret, in its grace period */
};

/* client_id: the connection's (NULL: it has none, which no bound token
 * accepts). */
struct login_answer login_answer_for(const struct store *store, const unsigned char hash[TOKEN_HASH_LEN],
		const char *client_id, int64_t now);

/* Whether a connection with this client id (NULL: none) may be the
 * token's: any when it is not bound, else exactly its own. */
bool login_client_id_allowed(const struct token *token, const char *client_id);

#endif
