/*
 * The structure mosquitto_ctrl hands the module, whatever its release.
 *
 * ctrl_main gets mosquitto_ctrl's struct mosq_ctrl: its connection options
 * (struct mosq_config) followed by the request the module fills in. It is
 * in no installed header, and its layout changed twice: in 2.0.21 (a field
 * added in the middle) and in 2.1 (that field moved, two added at the
 * end). The module therefore never treats it as one C struct: it finds
 * the layout of the release it is loaded into and reads and writes the
 * few fields it needs through that layout (ctrl_layout.c keeps every
 * known layout, as data).
 *
 * The release is told by mosquitto_lib_version(): mosquitto_ctrl links the
 * libmosquitto of its own release. A version without a known layout is
 * refused with a message; nothing is guessed. (A mosquitto_ctrl made to
 * run on another release's library, which 2.1's unchanged soname allows,
 * cannot be told apart and would be misread: its --version shows it.)
 */
#ifndef CTRL_LAYOUT_H
#define CTRL_LAYOUT_H

#include <stdbool.h>

/* mosquitto_ctrl's own; opaque here. */
struct mosq_ctrl;
struct mosq_config;
struct ctrl_layout;

/* mosquitto_ctrl's PORT_UNDEFINED: no -p given. */
#define CTRL_PORT_UNDEFINED (-1)
/* MQTT's registered ports, which client_connect chooses from when no port
 * is given. */
#define CTRL_MQTT_PORT 1883
#define CTRL_MQTT_TLS_PORT 8883

/* What the module uses of mosquitto_ctrl's connection options. */
struct ctrl_options {
	/* mosquitto_ctrl's own, handed back as is to its client_opts_set and
	 * client_connect (which know their layout). */
	struct mosq_config *cfg;
	const char *id;
	const char *host;           /* NULL: localhost */
	int port;                   /* CTRL_PORT_UNDEFINED when not given */
	int qos;
	int protocol_version;
	bool tls_default_port;      /* a CA file or path, or a PSK: 8883 when no port is given */
	bool warn_unencrypted;      /* this release would warn that the connection is plain TCP */
	const char *data_file;      /* 2.1's -f (mosquitto_ctrl then sends nothing); NULL when not given */
};

typedef void (*ctrl_reply_callback)(struct mosq_ctrl *ctrl, long payload_len, const void *payload);

/* The layout of the mosquitto_ctrl this process runs, or NULL when its
 * release is not known (the message is printed on stderr). */
const struct ctrl_layout *ctrl_layout_current(void);
/* The layout of the mosquitto_ctrl whose libmosquitto reports this version, or NULL. */
const struct ctrl_layout *ctrl_layout_for_version(int major, int minor, int revision);

/* Reads the connection options (the strings stay mosquitto_ctrl's). */
void ctrl_layout_options(const struct ctrl_layout *layout, struct mosq_ctrl *ctrl, struct ctrl_options *options);
/* Hands mosquitto_ctrl the one request it is to send and the callback for
 * its reply. The strings are malloc'd: mosquitto_ctrl 2.1 frees them, 2.0
 * leaves them to the end of the process. */
void ctrl_layout_set_request(const struct ctrl_layout *layout, struct mosq_ctrl *ctrl, char *request_topic,
		char *response_topic, char *payload, ctrl_reply_callback callback);

#endif
