/*
 * Which token a secret logs in as, now (SPEC section 2), without the
 * broker: the authentication callback asks this, and so do the tests that
 * check every secret ever issued gets the same answer before and after a
 * restart.
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
};

struct login_answer {
	enum login_verdict verdict;
	struct token *token;     /* set unless unknown */
	bool via_previous;       /* the token's previous secret, in its grace period */
};

struct login_answer login_answer_for(const struct store *store, const unsigned char hash[TOKEN_HASH_LEN], int64_t now);

#endif
