/*
 * MOSQ_EVT_ACL_CHECK (SPEC section 3). Connections that did not log in
 * with a token are deferred to the broker's other mechanisms. A token
 * session, connected or offline, is checked against its token as it is
 * now: revoked, expired or re-roled tokens take effect at the very next
 * check.
 */
#include "broker_api.h"

#include "acl.h"
#include "broker_callbacks.h"
#include "instance.h"

/* What the role's placeholders stand for; NULL when it has none, so that
 * a role without them pays nothing for them. */
static const struct acl_subject *subject_of(const struct token *token, struct mosquitto *client,
		struct acl_subject *subject)
{
	if(token->role->placeholder_acls == 0){
		return NULL;
	}
	acl_subject_init(subject, token->name, mosquitto_client_id(client), mosquitto_client_username(client));
	return subject;
}

/* The read check of 2.1's HTTP API, right after a token login there
 * (authentication.c): the role must allow the URL explicitly. */
static int check_http_api(struct tokens_plugin *plugin, const struct mosquitto_evt_acl_check *check)
{
	if(plugin->http_login.context != check->client){
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	plugin->http_login.context = NULL;
	const struct token *token = store_find_token_by_hash(&plugin->store, plugin->http_login.hash);
	if(token == NULL){
		const struct previous_secret *previous = store_find_previous_by_hash(&plugin->store, plugin->http_login.hash);
		token = previous ? previous->token : NULL;
	}
	struct acl_subject subject;
	bool allowed = token && plugin->now() < token->valid_until && check->access == MOSQ_ACL_READ
			&& acl_allows_http_api(token->role, check->topic, subject_of(token, check->client, &subject));
	return allowed ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}

int authorization_on_acl_check(int event, void *event_data, void *userdata)
{
	(void)event;
	struct tokens_plugin *plugin = userdata;
	const struct mosquitto_evt_acl_check *check = event_data;
	if(plugin->http_login.context != NULL && mosquitto_client_protocol_version(check->client) == 0){
		return check_http_api(plugin, check);
	}
	const struct session *session = sessions_find(&plugin->sessions, check->client);
	if(session == NULL && plugin->sessions.offline > 0){
		/* An offline persistent session: its queued messages, its Will. */
		const struct session_context context = {
			.client = check->client,
			.client_id = mosquitto_client_id(check->client),
			.username = mosquitto_client_username(check->client),
			.restored = mosquitto_client_address(check->client) == NULL,
		};
		session = sessions_find_offline(&plugin->sessions, &context);
	}
	if(session == NULL){
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	const struct token *token = session->token;
	if(token == NULL || plugin->now() >= token->valid_until){
		return MOSQ_ERR_ACL_DENIED;
	}
	struct acl_subject subject;
	return acl_allows(token->role, check->access, check->topic, subject_of(token, check->client, &subject))
		? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}
