/*
 * Logins (SPEC section 2): MOSQ_EVT_BASIC_AUTH and MOSQ_EVT_DISCONNECT.
 *
 * A password that is not token-shaped is someone else's business (defer).
 * A token-shaped one costs one SHA-256 and one hash-table lookup, whatever
 * the number of tokens, and never touches the disk: lastUsed is saved later
 * by the tick. The log names a refused token by its name or its hash, never
 * by the password.
 */
#include <string.h>

#include "broker_api.h"

#include "broker_callbacks.h"
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

/* A session may outlive its connection unless it is an MQTT 3.x clean
 * session; for MQTT 5 only the broker knows its session expiry interval. */
static bool may_persist(const struct mosquitto *client)
{
	return mosquitto_client_protocol_version(client) == 5 || !mosquitto_client_clean_session(client);
}

/* 2.1's HTTP API logs in on a temporary context that speaks no MQTT; every
 * MQTT connection has its protocol version before it logs in. */
static bool is_http_api(const struct mosquitto *client)
{
	return mosquitto_client_protocol_version(client) == 0;
}

/* The context as the session tables know it (sessions.h). Only a context
 * restored from the broker's persistence has no network address. */
static struct session_context context_of(const struct mosquitto *client)
{
	return (struct session_context){
		.client = client,
		.client_id = mosquitto_client_id(client),
		.username = mosquitto_client_username(client),
		.restored = mosquitto_client_address(client) == NULL,
	};
}

static int accept_token(struct tokens_plugin *plugin, const struct mosquitto_evt_basic_auth *login,
		const unsigned char *hash, const struct login_answer *answer, int64_t now)
{
	const struct mosquitto *client = login->client;
	struct token *token = answer->token;
	/* A SIGHUP re-check of a context that is not connected is an offline
	 * session, perhaps one that left in this very loop iteration: the
	 * answer is the same, and its binding (if it has one) stays as it is. */
	bool recheck = plugin->rechecking_logins;
	const struct session *bound = recheck ? sessions_find(&plugin->sessions, client) : NULL;
	if(recheck && (bound == NULL || bound->disconnected)){
		return MOSQ_ERR_SUCCESS;
	}
	const struct session_login session_login = {
		.client_id = client_label(client),
		.username = mosquitto_client_username(client),
		.hash = hash,
		.via_previous = answer->via_previous,
		.persists = may_persist(client),
		.restorable = !mosquitto_client_clean_session(client),
	};
	if(!sessions_bind(&plugin->sessions, client, token, &session_login)
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
	if(plugin->rechecking_logins){
		/* An offline session keeps its answer, whatever its context still
		 * holds: one the broker restored has no password, and refusing it
		 * would not end it (mosquitto 2.0 would list it twice for expiry). */
		const struct session_context context = context_of(login->client);
		const struct session *offline = sessions_note_recheck(&plugin->sessions, &context);
		if(offline && offline->token && plugin->now() < offline->token->valid_until){
			return MOSQ_ERR_SUCCESS;
		}
	}else{
		sessions_note_login(&plugin->sessions, login->client, mosquitto_client_id(login->client));
	}

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
	struct login_answer answer = login_answer_for(&plugin->store, hash, mosquitto_client_id(login->client), now);
	if(answer.verdict == LOGIN_UNKNOWN){
		char hash_hex[TOKEN_HASH_HEX_LEN + 1];
		token_format_hash_to_hex(hash, hash_hex);
		return refuse(plugin, login->client, "unknown token with hash ", hash_hex);
	}
	if(answer.verdict == LOGIN_EXPIRED){
		return refuse(plugin, login->client, "expired token ", answer.token->name);
	}
	if(answer.verdict == LOGIN_CLIENT_ID_REFUSED){
		return refuse(plugin, login->client, "client id not allowed for token ", answer.token->name);
	}
	if(is_http_api(login->client)){
		plugin->http_login.context = login->client;
		memcpy(plugin->http_login.hash, hash, TOKEN_HASH_LEN);
		plugin->logins_accepted++;
		tokens_plugin_mark_used(plugin, answer.token, now);
		return MOSQ_ERR_SUCCESS;
	}
	return accept_token(plugin, login, hash, &answer, now);
}

/* MOSQ_EVT_DISCONNECT, and 2.1's MOSQ_EVT_CLIENT_OFFLINE (its data has
 * the same shape): see enum session_departure. */
int authentication_on_disconnect(int event, void *event_data, void *userdata)
{
	struct tokens_plugin *plugin = userdata;
	const struct mosquitto_evt_disconnect *disconnect = event_data;
	const struct session_context context = context_of(disconnect->client);
	enum session_departure departure = DEPARTURE_ASK_AT_TICK;
	if(event == MOSQ_EVT_CLIENT_OFFLINE){
		departure = DEPARTURE_SESSION_STAYS;
	}else if(plugin->broker_reports_session_end){
		departure = DEPARTURE_SESSION_ENDS;
	}
	sessions_depart(&plugin->sessions, &context, departure, plugin->rechecking_logins);
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
