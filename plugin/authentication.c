/*
 * Logins (SPEC section 2): MOSQ_EVT_BASIC_AUTH and MOSQ_EVT_DISCONNECT.
 *
 * A password that is not token-shaped is someone else's business (defer).
 * A token-shaped one costs one SHA-256 and one hash-table lookup, whatever
 * the number of tokens, and never touches the disk: lastUsed is saved later
 * by the tick. The log names a refused token by its name or its hash, never
 * by the password.
 */
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "authentication.h"
#include "log_text.h"
#include "login.h"
#include "token_format.h"

static const char *client_label(const struct mosquitto *client)
{
	const char *client_id = mosquitto_client_id(client);
	return client_id ? client_id : "(no client id)";
}

/* reason names the token by name or hash, never by the password. The
 * binding of an earlier connection at this pointer goes too. The line's
 * form is SPEC section 2's, for log watchers (examples/fail2ban/). */
static int refuse(struct tokens_plugin *plugin, const struct mosquitto *client, const char *reason, const char *which)
{
	char client_id[LOG_TEXT_SIZE], what[LOG_TEXT_SIZE];
	const char *address = mosquitto_client_address(client);
	sessions_unbind(&plugin->sessions, client);
	if(!plugin->rechecking_logins){
		plugin->logins_refused++;
	}
	plugin->log(MOSQ_LOG_NOTICE, "tokens: refused login from %s client %s: %s%s",
			address ? address : "unknown", log_text_escape(mosquitto_client_id(client), client_id),
			reason, which ? log_text_escape(which, what) : "");
	return MOSQ_ERR_AUTH;
}

static int accept_token(struct tokens_plugin *plugin, const struct mosquitto *client, struct token *token,
		bool via_previous, int64_t now)
{
	/* A SIGHUP re-check of a connection that is not bound is an offline
	 * persistent session: the answer is the same, but there is nothing to
	 * bind (it will log in again when it comes back). */
	bool recheck = plugin->rechecking_logins;
	if(recheck && sessions_find(&plugin->sessions, client) == NULL){
		return MOSQ_ERR_SUCCESS;
	}
	if(!sessions_bind(&plugin->sessions, client, client_label(client), token, via_previous)
			|| !expiry_add(&plugin->expiry, token)){
		return refuse(plugin, client, "out of memory binding token ", token->name);
	}
	if(!recheck){
		plugin->logins_accepted++;
		tokens_plugin_mark_used(plugin, token, now);
	}
	return MOSQ_ERR_SUCCESS;
}

static void note_contender(struct tokens_plugin *plugin, const struct mosquitto *client)
{
	if(!replies_note_login(&plugin->replies, client, mosquitto_client_id(client))){
		plugin->log(MOSQ_LOG_WARNING, "tokens: out of memory: control replies to client %s are dropped",
				client_label(client));
	}
}

int authentication_on_basic_auth(int event, void *event_data, void *userdata)
{
	(void)event;
	struct tokens_plugin *plugin = userdata;
	const struct mosquitto_evt_basic_auth *login = event_data;
	enum token_shape shape = token_format_check(login->password);

	/* Whatever this login is, it may take over a client id whose reply
	 * (perhaps a secret) has not left yet: replies.h. */
	note_contender(plugin, login->client);

	if(shape == TOKEN_NOT_A_TOKEN){
		/* The pointer may belong to an earlier, freed token connection. */
		sessions_unbind(&plugin->sessions, login->client);
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	if(shape == TOKEN_MALFORMED){
		return refuse(plugin, login->client, "malformed token", NULL);
	}
	unsigned char hash[TOKEN_HASH_LEN];
	if(!token_hasher_hash(&plugin->hasher, login->password, hash)){
		return refuse(plugin, login->client, "could not hash the token", NULL);
	}
	int64_t now = plugin->now();
	struct login_answer answer = login_answer_for(&plugin->store, hash, now);
	if(answer.verdict == LOGIN_UNKNOWN){
		char hash_hex[TOKEN_HASH_HEX_LEN + 1];
		token_format_hash_to_hex(hash, hash_hex);
		return refuse(plugin, login->client, "unknown token with hash ", hash_hex);
	}
	if(answer.verdict == LOGIN_EXPIRED){
		return refuse(plugin, login->client, "expired token ", answer.token->name);
	}
	return accept_token(plugin, login->client, answer.token, answer.via_previous, now);
}

int authentication_on_disconnect(int event, void *event_data, void *userdata)
{
	(void)event;
	struct tokens_plugin *plugin = userdata;
	const struct mosquitto_evt_disconnect *disconnect = event_data;
	sessions_depart(&plugin->sessions, disconnect->client);
	if(replies_connection_gone(&plugin->replies, disconnect->client)){
		plugin->log(MOSQ_LOG_NOTICE, "tokens: a control reply to client %s was not delivered: "
				"its connection closed first", client_label(disconnect->client));
	}
	return MOSQ_ERR_SUCCESS;
}

const char *authentication_token_name(const struct tokens_plugin *plugin, const struct mosquitto *client)
{
	const struct session *session = sessions_find(&plugin->sessions, client);
	return session && session->token ? session->token->name : NULL;
}
