/*
 * The module's own MQTT connection (see ctrl_session.h).
 *
 * mosquitto_ctrl's client_request_response cannot serve more than one
 * request per run (its loop flag is static and never reset), so a session
 * runs its own libmosquitto client. Everything about how to reach the
 * broker comes from mosquitto_ctrl's client_opts_set and client_connect,
 * looked up with dlsym so that the module still loads into a
 * mosquitto_ctrl that lacks them (the caller then falls back to one
 * request).
 *
 * Everything is single-threaded: mosquitto_loop runs the callbacks, which
 * only record what happened; the first failure sticks and ends every later
 * wait.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <mosquitto.h>

#include "ctrl_layout.h"
#include "ctrl_session.h"

/* mosquitto_ctrl's mqtt_protocol.h, which is not installed (or warns, on 2.1). */
#define RC_UNSUPPORTED_PROTOCOL_VERSION 132
/* MQTT 5 reason codes from 0x80 on are failures, a SUBACK's granted QoS too. */
#define RC_FIRST_FAILURE 0x80
/* The longest one mosquitto_loop call waits: libmosquitto's own default
 * (mosquitto_loop_forever), so that keepalive pings keep their time. */
#define LOOP_WAIT_MS 1000

/* client_opts_set and client_connect: the same in every release from
 * 2.0.0 to 2.1.2. They read cfg in their own release's layout. */
typedef int (*client_function)(struct mosquitto *mosq, struct mosq_config *cfg);

struct ctrl_session {
	struct mosquitto *mosq;
	const struct ctrl_options *options;
	char *broker;              /* "host:port" */
	const char *response_topic;
	enum ctrl_wait failure;    /* CTRL_REPLY while nothing failed */
	bool lib_initialised;
	bool connected;
	bool subscribed;
	bool closing;
	char *reply;               /* arrived, not yet handed out */
	size_t reply_length;
	char *handed;              /* handed out by the last wait */
};

static client_function find_function(const char *name)
{
	return (client_function)dlsym(RTLD_DEFAULT, name);
}

bool ctrl_session_available(void)
{
	return find_function("client_opts_set") != NULL && find_function("client_connect") != NULL;
}

int64_t ctrl_now_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* The first failure is the one worth reporting; what follows is its echo. */
static void fail(struct ctrl_session *session, enum ctrl_wait failure)
{
	if(session->failure == CTRL_REPLY){
		session->failure = failure;
	}
}

/* ---- callbacks: they record, the waits decide ---- */

static void on_connect(struct mosquitto *mosq, void *obj, int reason_code, int flags, const mosquitto_property *props)
{
	struct ctrl_session *session = obj;
	(void)flags;
	(void)props;
	if(reason_code != 0){
		/* mosquitto_ctrl's own words, so that the refusal reads the same. */
		if(session->options->protocol_version != MQTT_PROTOCOL_V5){
			fprintf(stderr, "Connection error: %s\n", mosquitto_connack_string(reason_code));
		}else if(reason_code == RC_UNSUPPORTED_PROTOCOL_VERSION){
			fprintf(stderr, "Connection error: %s. Try connecting to an MQTT v5 broker, or use MQTT v3.x mode.\n",
					mosquitto_reason_string(reason_code));
		}else{
			fprintf(stderr, "Connection error: %s\n", mosquitto_reason_string(reason_code));
		}
		fail(session, CTRL_REFUSED);
		return;
	}
	session->connected = true;
	if(mosquitto_subscribe(mosq, NULL, session->response_topic, session->options->qos) != MOSQ_ERR_SUCCESS){
		fail(session, CTRL_LOST);
	}
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count, const int *granted_qos,
		const mosquitto_property *props)
{
	struct ctrl_session *session = obj;
	(void)mosq;
	(void)mid;
	(void)props;
	if(qos_count == 1 && granted_qos[0] < RC_FIRST_FAILURE){
		session->subscribed = true;
		return;
	}
	if(qos_count == 1 && session->options->protocol_version == MQTT_PROTOCOL_V5){
		fprintf(stderr, "Subscribe error: %s\n", mosquitto_reason_string(granted_qos[0]));
	}else{
		fprintf(stderr, "Subscribe error: Subscription refused.\n");
	}
	fail(session, CTRL_NOT_SUBSCRIBED);
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason_code, const mosquitto_property *props)
{
	(void)mosq;
	(void)mid;
	(void)props;
	if(reason_code >= RC_FIRST_FAILURE){
		fprintf(stderr, "Publish error: %s\n", mosquitto_reason_string(reason_code));
		fail(obj, CTRL_NOT_PUBLISHED);
	}
}

/* One request is outstanding at a time, so one slot is enough; anything
 * arriving while it is full is not the answer being waited for. */
static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *message,
		const mosquitto_property *props)
{
	struct ctrl_session *session = obj;
	(void)mosq;
	(void)props;
	if(session->reply != NULL || message->payloadlen < 0){
		return;
	}
	size_t length = (size_t)message->payloadlen;
	session->reply = malloc(length + 1);
	if(session->reply == NULL){
		fail(session, CTRL_NO_MEMORY);
		return;
	}
	if(length > 0){
		memcpy(session->reply, message->payload, length);
	}
	session->reply[length] = '\0';
	session->reply_length = length;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int reason_code, const mosquitto_property *props)
{
	struct ctrl_session *session = obj;
	(void)mosq;
	(void)reason_code;
	(void)props;
	session->connected = false;
	if(!session->closing){
		fail(session, CTRL_LOST);
	}
}

/* ---- setting up ---- */

static char *broker_name(const struct ctrl_options *options)
{
	int port = options->port;
	if(port == CTRL_PORT_UNDEFINED){
		/* As client_connect chooses it. */
		port = options->tls_default_port ? CTRL_MQTT_TLS_PORT : CTRL_MQTT_PORT;
	}
	const char *host = options->host ? options->host : "localhost";
	bool ipv6 = strchr(host, ':') != NULL;
	size_t size = strlen(host) + sizeof("[]:-2147483648");   /* brackets, a colon, any int */
	char *name = malloc(size);
	if(name){
		snprintf(name, size, ipv6 ? "[%s]:%d" : "%s:%d", host, port);
	}
	return name;
}

struct ctrl_session *ctrl_session_new(const struct ctrl_options *options)
{
	if(!ctrl_session_available()){
		return NULL;
	}
	struct ctrl_session *session = calloc(1, sizeof(*session));
	if(session == NULL){
		return NULL;
	}
	session->options = options;
	session->failure = CTRL_REPLY;
	session->broker = broker_name(options);
	if(session->broker == NULL){
		free(session);
		return NULL;
	}
	if(options->warn_unencrypted){
		/* What client_request_response would have printed. */
		fprintf(stderr, "Warning: You are running mosquitto_ctrl without encryption.\nThis means all of the "
				"configuration changes you are making are visible on the network, including passwords.\n\n");
	}
	return session;
}

static bool is_subscribed(const struct ctrl_session *session)
{
	return session->subscribed;
}

static bool has_reply(const struct ctrl_session *session)
{
	return session->reply != NULL;
}

static enum ctrl_wait run_until(struct ctrl_session *session, bool (*done)(const struct ctrl_session *),
		int64_t deadline)
{
	while(session->failure == CTRL_REPLY && !done(session)){
		int64_t left = deadline - ctrl_now_ms();
		if(left <= 0){
			return CTRL_TIMEOUT;
		}
		int rc = mosquitto_loop(session->mosq, left < LOOP_WAIT_MS ? (int)left : LOOP_WAIT_MS, 1);
		if(rc != MOSQ_ERR_SUCCESS){
			fail(session, CTRL_LOST);
		}
	}
	return session->failure;
}

enum ctrl_wait ctrl_session_connect(struct ctrl_session *session, const char *response_topic, int64_t deadline)
{
	client_function opts_set = find_function("client_opts_set");
	client_function connect = find_function("client_connect");
	session->response_topic = response_topic;
	mosquitto_lib_init();
	session->lib_initialised = true;
	session->mosq = mosquitto_new(session->options->id, true, session);
	if(session->mosq == NULL){
		fail(session, CTRL_NO_MEMORY);
		return session->failure;
	}
	/* Both print what went wrong themselves. */
	if(opts_set == NULL || connect == NULL || opts_set(session->mosq, session->options->cfg) != 0){
		fail(session, CTRL_UNREACHABLE);
		return session->failure;
	}
	mosquitto_connect_v5_callback_set(session->mosq, on_connect);
	mosquitto_subscribe_v5_callback_set(session->mosq, on_subscribe);
	mosquitto_publish_v5_callback_set(session->mosq, on_publish);
	mosquitto_message_v5_callback_set(session->mosq, on_message);
	mosquitto_disconnect_v5_callback_set(session->mosq, on_disconnect);
	if(connect(session->mosq, session->options->cfg) != 0){
		fail(session, CTRL_UNREACHABLE);
		return session->failure;
	}
	return run_until(session, is_subscribed, deadline);
}

enum ctrl_wait ctrl_session_publish(struct ctrl_session *session, const char *topic, const char *payload)
{
	if(session->failure == CTRL_REPLY
			&& mosquitto_publish(session->mosq, NULL, topic, (int)strlen(payload), payload,
				session->options->qos, false) != MOSQ_ERR_SUCCESS){
		fail(session, CTRL_LOST);
	}
	return session->failure;
}

enum ctrl_wait ctrl_session_wait(struct ctrl_session *session, int64_t deadline, const char **payload,
		size_t *length)
{
	free(session->handed);
	session->handed = NULL;
	enum ctrl_wait outcome = run_until(session, has_reply, deadline);
	if(outcome == CTRL_REPLY){
		session->handed = session->reply;
		session->reply = NULL;
		*payload = session->handed;
		*length = session->reply_length;
	}
	return outcome;
}

const char *ctrl_session_broker(const struct ctrl_session *session)
{
	return session->broker;
}

void ctrl_session_free(struct ctrl_session *session)
{
	if(session == NULL){
		return;
	}
	if(session->mosq){
		if(session->connected){
			/* Outside a callback, so libmosquitto writes it at once. */
			session->closing = true;
			mosquitto_disconnect_v5(session->mosq, 0, NULL);
		}
		mosquitto_destroy(session->mosq);
	}
	if(session->lib_initialised){
		mosquitto_lib_cleanup();
	}
	free(session->reply);
	free(session->handed);
	free(session->broker);
	free(session);
}
