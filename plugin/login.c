/*
 * The login decision. See plugin/login.h.
 */
#include "login.h"

struct login_answer login_answer_for(const struct store *store, const unsigned char hash[TOKEN_HASH_LEN], int64_t now)
{
	struct login_answer answer = {.verdict = LOGIN_UNKNOWN};
	answer.token = store_find_token_by_hash(store, hash);
	if(answer.token == NULL){
		/* A rotated token's old secret, during its grace period. */
		const struct previous_secret *previous = store_find_previous_by_hash(store, hash);
		if(previous && now < previous->valid_until){
			answer.token = previous->token;
			answer.via_previous = true;
		}
	}
	if(answer.token){
		answer.verdict = now < answer.token->valid_until ? LOGIN_ACCEPTED : LOGIN_EXPIRED;
	}
	return answer;
}
