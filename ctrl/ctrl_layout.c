/*
 * Every layout of mosquitto_ctrl's struct mosq_ctrl this module knows, and
 * the only code that touches that structure (see ctrl_layout.h).
 *
 * Each layout is written once below as a struct of this project's, in the
 * order and with the types mosquitto_ctrl uses, as built by default and by
 * Debian (with TLS, TLS-PSK and SOCKS: 2.0 leaves those fields out of a
 * build without them, and such a build is not supported). The compiler
 * then works out the offsets for the machine it builds for, and the table
 * `layouts` keeps, for each range of library versions, the offsets of the
 * fields the module uses. test/integration/ctrl_layout_check.c compares
 * them with offsetof on a release's own header.
 *
 * Fields are read and written with memcpy at those offsets: the structure
 * is mosquitto_ctrl's, and no pointer of another struct type is ever made
 * to it.
 *
 * Adding a release: if its header changed struct mosq_config or struct
 * mosq_ctrl, add its struct and a row; if not, widen the row it shares.
 * Note that libmosquitto 2.1.1 and 2.1.2 report 2.1.0 (their
 * LIBMOSQUITTO_REVISION was not raised): the 2.1.0 row is those three.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <mosquitto.h>

#include "ctrl_layout.h"

/* ---- the structure, release by release ---- */

/* The connection options up to tls_engine_kpass_sha1: the same in every release. */
struct options_head {
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
};

/* From psk to socks5_password: the same in every release. */
struct options_psk_socks {
	char *psk;
	char *psk_identity;
	bool verbose;
	unsigned int timeout;
	char *socks5_host;
	int socks5_port;
	char *socks5_username;
	char *socks5_password;
};

/* After the options, what the module fills in: the same in every release. */
struct request {
	char *request_topic;
	char *response_topic;
	char *payload;
	ctrl_reply_callback payload_callback;
	void *userdata;
};

/* Both shared parts begin with a pointer and end with one, so that
 * nesting them places every field where the flat upstream struct has it
 * (checked against the headers). */

/* 2.0.0 to 2.0.20 */
struct ctrl_2_0_0 {
	struct options_head head;
	char *keyform;
	struct options_psk_socks tail;
	struct request request;
};

/* 2.0.21 and 2.0.22: tls_use_os_certs after keyform. */
struct ctrl_2_0_21 {
	struct options_head head;
	char *keyform;
	bool tls_use_os_certs;
	struct options_psk_socks tail;
	struct request request;
};

/* 2.1.0 to 2.1.2: tls_use_os_certs before keyform; data_file (-f) and
 * no_colour at the end of the options. */
struct ctrl_2_1_0 {
	struct options_head head;
	bool tls_use_os_certs;
	char *keyform;
	struct options_psk_socks tail;
	char *data_file;
	bool no_colour;
	struct request request;
};

/* ---- where the module's fields are, per range of library versions ---- */

#define ABSENT SIZE_MAX

struct ctrl_layout {
	const char *releases;
	int major, minor, first_revision, last_revision;   /* as mosquitto_lib_version reports them */
	size_t id, protocol_version, host, port, qos, cafile, capath, psk;
	/* ABSENT before 2.0.21. The same upstream change made mosquitto_ctrl's
	 * plain-TCP warning also stay quiet for it, for port 8883 and for a PSK. */
	size_t tls_use_os_certs;
	size_t data_file;                                  /* ABSENT before 2.1 */
	size_t request_topic, response_topic, payload, payload_callback;
};

#define SHARED_FIELDS(type) \
	.id = offsetof(type, head.id), \
	.protocol_version = offsetof(type, head.protocol_version), \
	.host = offsetof(type, head.host), \
	.port = offsetof(type, head.port), \
	.qos = offsetof(type, head.qos), \
	.cafile = offsetof(type, head.cafile), \
	.capath = offsetof(type, head.capath), \
	.psk = offsetof(type, tail.psk), \
	.request_topic = offsetof(type, request.request_topic), \
	.response_topic = offsetof(type, request.response_topic), \
	.payload = offsetof(type, request.payload), \
	.payload_callback = offsetof(type, request.payload_callback)

static const struct ctrl_layout layouts[] = {
	{
		.releases = "2.0.0 to 2.0.20", .major = 2, .minor = 0, .first_revision = 0, .last_revision = 20,
		SHARED_FIELDS(struct ctrl_2_0_0),
		.tls_use_os_certs = ABSENT,
		.data_file = ABSENT,
	},
	{
		.releases = "2.0.21 to 2.0.22", .major = 2, .minor = 0, .first_revision = 21, .last_revision = 22,
		SHARED_FIELDS(struct ctrl_2_0_21),
		.tls_use_os_certs = offsetof(struct ctrl_2_0_21, tls_use_os_certs),
		.data_file = ABSENT,
	},
	{
		.releases = "2.1.0 to 2.1.2 (which report libmosquitto 2.1.0)", .major = 2, .minor = 1, .first_revision = 0,
		.last_revision = 0,
		SHARED_FIELDS(struct ctrl_2_1_0),
		.tls_use_os_certs = offsetof(struct ctrl_2_1_0, tls_use_os_certs),
		.data_file = offsetof(struct ctrl_2_1_0, data_file),
	},
};
#define LAYOUT_COUNT (sizeof(layouts) / sizeof(layouts[0]))

const struct ctrl_layout *ctrl_layout_for_version(int major, int minor, int revision)
{
	for(size_t i = 0; i < LAYOUT_COUNT; i++){
		const struct ctrl_layout *layout = &layouts[i];
		if(layout->major == major && layout->minor == minor
				&& revision >= layout->first_revision && revision <= layout->last_revision){
			return layout;
		}
	}
	return NULL;
}

const struct ctrl_layout *ctrl_layout_current(void)
{
	int major = 0, minor = 0, revision = 0;
	mosquitto_lib_version(&major, &minor, &revision);
	const struct ctrl_layout *layout = ctrl_layout_for_version(major, minor, revision);
	if(layout == NULL){
		fprintf(stderr, "Error: this mosquitto_ctrl runs on libmosquitto %d.%d.%d, and the tokens module does "
				"not know that release's mosquitto_ctrl (it would have to guess where the connection options "
				"are). It knows mosquitto_ctrl ", major, minor, revision);
		for(size_t i = 0; i < LAYOUT_COUNT; i++){
			fprintf(stderr, "%s%s", i == 0 ? "" : (i + 1 == LAYOUT_COUNT ? " and " : ", "), layouts[i].releases);
		}
		fprintf(stderr, ". A newer mosquitto-tokens may know this one; tokens init works with any release.\n");
	}
	return layout;
}

/* ---- reading and writing ---- */

static const char *string_at(const struct mosq_ctrl *ctrl, size_t offset)
{
	const char *value;
	memcpy(&value, (const char *)ctrl + offset, sizeof(value));
	return value;
}

static int int_at(const struct mosq_ctrl *ctrl, size_t offset)
{
	int value;
	memcpy(&value, (const char *)ctrl + offset, sizeof(value));
	return value;
}

static bool bool_at(const struct mosq_ctrl *ctrl, size_t offset)
{
	bool value;
	memcpy(&value, (const char *)ctrl + offset, sizeof(value));
	return value;
}

void ctrl_layout_options(const struct ctrl_layout *layout, struct mosq_ctrl *ctrl, struct ctrl_options *options)
{
	/* cfg is the first member in every release. */
	options->cfg = (struct mosq_config *)(void *)ctrl;
	options->id = string_at(ctrl, layout->id);
	options->host = string_at(ctrl, layout->host);
	options->port = int_at(ctrl, layout->port);
	options->qos = int_at(ctrl, layout->qos);
	options->protocol_version = int_at(ctrl, layout->protocol_version);
	bool ca = string_at(ctrl, layout->cafile) || string_at(ctrl, layout->capath);
	bool psk = string_at(ctrl, layout->psk) != NULL;
	options->tls_default_port = ca || psk;
	if(layout->tls_use_os_certs == ABSENT){
		options->warn_unencrypted = !ca;
	}else{
		options->warn_unencrypted = !ca && !psk && !bool_at(ctrl, layout->tls_use_os_certs) && options->port != CTRL_MQTT_TLS_PORT;
	}
	options->data_file = layout->data_file == ABSENT ? NULL : string_at(ctrl, layout->data_file);
}

static void put_at(struct mosq_ctrl *ctrl, size_t offset, const void *value, size_t size)
{
	memcpy((char *)ctrl + offset, value, size);
}

void ctrl_layout_set_request(const struct ctrl_layout *layout, struct mosq_ctrl *ctrl, char *request_topic,
		char *response_topic, char *payload, ctrl_reply_callback callback)
{
	put_at(ctrl, layout->request_topic, &request_topic, sizeof(request_topic));
	put_at(ctrl, layout->response_topic, &response_topic, sizeof(response_topic));
	put_at(ctrl, layout->payload, &payload, sizeof(payload));
	put_at(ctrl, layout->payload_callback, &callback, sizeof(callback));
}
