/*
 * The structure mosquitto_ctrl hands to an external module. It is not in
 * any installed header, so its layout is restated here as mosquitto_ctrl
 * 2.0.11 to 2.0.20 define it when built with TLS, TLS-PSK and SOCKS support
 * (Debian's package and the upstream default build). Only the fields after
 * `cfg` are used, but their offsets depend on every field before them.
 */
#ifndef MOSQ_CTRL_H
#define MOSQ_CTRL_H

#include <stdbool.h>

struct mosq_config {
	char *id;
	int protocol_version;
	int keepalive;
	char *host;
	int port;
	int qos;
	char *bind_address;
	bool debug;
	bool quiet;
	char *username;
	char *password;
	char *options_file;
	/* TLS */
	char *cafile;
	char *capath;
	char *certfile;
	char *keyfile;
	char *ciphers;
	bool insecure;
	char *tls_alpn;
	char *tls_version;
	char *tls_engine;
	char *tls_engine_kpass_sha1;
	char *keyform;
	/* TLS-PSK */
	char *psk;
	char *psk_identity;
	bool verbose;
	unsigned int timeout;
	/* SOCKS */
	char *socks5_host;
	int socks5_port;
	char *socks5_username;
	char *socks5_password;
};

struct mosq_ctrl {
	struct mosq_config cfg;
	char *request_topic;
	char *response_topic;
	char *payload;
	void (*payload_callback)(struct mosq_ctrl *ctrl, long payloadlen, const void *payload);
	void *userdata;
};

/* The module's entry point: 0 to have mosquitto_ctrl send ctrl->payload,
 * negative when done without connecting. */
int ctrl_main(int argc, char *argv[], struct mosq_ctrl *ctrl);

#endif
