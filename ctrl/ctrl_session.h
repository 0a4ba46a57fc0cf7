/*
 * The module's own MQTT connection, for a subcommand that needs more than
 * the one request and reply mosquitto_ctrl makes per run (`tokens list`
 * pages through the store).
 *
 * mosquitto_ctrl's own client_opts_set and client_connect set it up, found
 * at run time, so that host, port, credentials (and the password prompt),
 * TLS, SOCKS and protocol version are exactly what mosquitto_ctrl would
 * use. A mosquitto_ctrl that does not export them cannot host a session:
 * ctrl_session_available says so before anything is tried.
 *
 * Requests go one at a time: publish, then wait for the next reply. The
 * session prints the broker's own refusals the way mosquitto_ctrl does
 * ("Connection error: Not authorized"); the caller says what they mean.
 */
#ifndef CTRL_SESSION_H
#define CTRL_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctrl_options;
struct ctrl_session;

enum ctrl_wait {
	CTRL_REPLY,          /* done: connected and subscribed, or a reply came */
	CTRL_TIMEOUT,        /* nothing before the deadline */
	CTRL_UNREACHABLE,    /* no connection could be made */
	CTRL_REFUSED,        /* the broker refused the login */
	CTRL_NOT_SUBSCRIBED, /* the broker refused the subscription */
	CTRL_NOT_PUBLISHED,  /* the broker refused the request (PUBACK reason code) */
	CTRL_LOST,           /* the connection ended */
	CTRL_NO_MEMORY,
};

/* Whether this mosquitto_ctrl exports what a session needs. */
bool ctrl_session_available(void);
/* Milliseconds on a clock that only goes forward, for deadlines. */
int64_t ctrl_now_ms(void);

/* A session with mosquitto_ctrl's options (not yet connected; options must
 * outlive it); NULL when out of memory or not available. Prints
 * mosquitto_ctrl's warning about plain TCP, as its release would. */
struct ctrl_session *ctrl_session_new(const struct ctrl_options *options);
/* Connects and subscribes to response_topic, before the deadline. */
enum ctrl_wait ctrl_session_connect(struct ctrl_session *session, const char *response_topic, int64_t deadline);
/* Publishes a request (after the previous reply was taken). */
enum ctrl_wait ctrl_session_publish(struct ctrl_session *session, const char *topic, const char *payload);
/* Waits for the next message on the response topic; *payload stays valid
 * until the next call. */
enum ctrl_wait ctrl_session_wait(struct ctrl_session *session, int64_t deadline, const char **payload,
		size_t *length);
/* "host:port", as mosquitto_ctrl connects to it, for messages. */
const char *ctrl_session_broker(const struct ctrl_session *session);
/* Disconnects (when connected) and frees everything. */
void ctrl_session_free(struct ctrl_session *session);

#endif
