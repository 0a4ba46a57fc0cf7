/*
 * The login decision. See plugin/login.h.
 */
#include <string.h>

#include "login.h"

bool login_client_id_allowed(const struct token *token, const char *client_id)
{
	return token->client_id == NULL || (client_id != NULL && strcmp(token->client_id, client_id) == 0);
}

struct login_answer login_answer_for(const struct store *store, const unsigned char hash[TOKEN_HASH_LEN],
		const char *client_id, int64_t now)
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
		answer.verdict = now >= answer.token->valid_until ? LOGIN_EXPIRED
			: !login_client_id_allowed(answer.token, client_id) ? LOGIN_CLIENT_ID_REFUSED
			: LOGIN_ACCEPTED;
	}
	return answer;
}
