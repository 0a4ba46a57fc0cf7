/*
 * Checks the mosquitto_ctrl module's layout table (ctrl/ctrl_layout.c)
 * against one release's own apps/mosquitto_ctrl/mosquitto_ctrl.h, for
 * test_ctrl_releases.py:
 *
 *     gcc -DWITH_TLS -DFINAL_WITH_TLS_PSK -DWITH_SOCKS \
 *         [-DHEADER_HAS_TLS_USE_OS_CERTS] [-DHEADER_HAS_DATA_FILE] \
 *         -I<release>/apps/mosquitto_ctrl -I<release>/include -I/usr/include/cjson \
 *         -Ictrl -Iinclude ctrl_layout_check.c -o check -lmosquitto
 *     ./check <major> <minor> <revision>     (as that release's mosquitto_lib_version says)
 *
 * The three -D flags build the header as the release's default build (and
 * Debian's) does. The HEADER_HAS_ flags say which optional fields the
 * header has (the test reads it): a field the header lacks must be absent
 * from the table too. Every offset the module reads or writes is compared
 * with offsetof on the header's struct mosq_ctrl; the entry point, the
 * reply callback and the two functions the module finds with dlsym are
 * compared with the header's types at compile time.
 */
#include "mosquitto_ctrl.h"    /* the release's: struct mosq_ctrl, client_opts_set... */

#include <stdio.h>
#include <stdlib.h>

#include "ctrl_layout.c"        /* the module's table, with its private struct */
#include "ctrl_module.h"        /* the module's ctrl_main: must agree with the header's */

typedef int (*client_function)(struct mosquitto *mosq, struct mosq_config *cfg);
_Static_assert(__builtin_types_compatible_p(__typeof__(&client_opts_set), client_function),
		"client_opts_set changed");
_Static_assert(__builtin_types_compatible_p(__typeof__(&client_connect), client_function),
		"client_connect changed");
_Static_assert(__builtin_types_compatible_p(FUNC_ctrl_main, __typeof__(&ctrl_main)), "ctrl_main changed");
_Static_assert(__builtin_types_compatible_p(__typeof__(((struct mosq_ctrl *)0)->payload_callback),
		ctrl_reply_callback), "payload_callback changed");
_Static_assert(__builtin_types_compatible_p(__typeof__(((struct mosq_ctrl *)0)->cfg.port), int), "port");
_Static_assert(__builtin_types_compatible_p(__typeof__(((struct mosq_ctrl *)0)->cfg.qos), int), "qos");
_Static_assert(__builtin_types_compatible_p(__typeof__(((struct mosq_ctrl *)0)->cfg.protocol_version), int),
		"protocol_version");
_Static_assert(__builtin_types_compatible_p(__typeof__(((struct mosq_ctrl *)0)->cfg.host), char *), "host");
_Static_assert(offsetof(struct mosq_ctrl, cfg) == 0, "cfg is not first");

static int failures;

/* An offset, or "-" for a field that is not there. */
static const char *shown(size_t offset, char text[24])
{
	if(offset == ABSENT){
		return "-";
	}
	snprintf(text, 24, "%zu", offset);
	return text;
}

static void check(const char *name, size_t ours, size_t theirs)
{
	char a[24], b[24];
	bool same = ours == theirs;
	printf("%-18s %6s %6s%s\n", name, shown(ours, a), shown(theirs, b), same ? "" : "   DIFFERENT");
	failures += !same;
}

#define CHECK(field, upstream) check(#field, layout->field, offsetof(struct mosq_ctrl, upstream))

#ifdef HEADER_HAS_TLS_USE_OS_CERTS
#  define TLS_USE_OS_CERTS_AT offsetof(struct mosq_ctrl, cfg.tls_use_os_certs)
#else
#  define TLS_USE_OS_CERTS_AT ABSENT
#endif
#ifdef HEADER_HAS_DATA_FILE
#  define DATA_FILE_AT offsetof(struct mosq_ctrl, cfg.data_file)
#else
#  define DATA_FILE_AT ABSENT
#endif

int main(int argc, char *argv[])
{
	if(argc != 4){
		fprintf(stderr, "usage: %s <major> <minor> <revision>\n", argv[0]);
		return 2;
	}
	const struct ctrl_layout *layout = ctrl_layout_for_version(atoi(argv[1]), atoi(argv[2]), atoi(argv[3]));
	if(layout == NULL){
		printf("no layout for libmosquitto %s.%s.%s\n", argv[1], argv[2], argv[3]);
		return 1;
	}
	printf("libmosquitto %s.%s.%s: layout of %s; sizeof(struct mosq_ctrl) %zu\n", argv[1], argv[2], argv[3],
			layout->releases, sizeof(struct mosq_ctrl));
	printf("%-18s %6s %6s\n", "field", "module", "header");
	CHECK(id, cfg.id);
	CHECK(protocol_version, cfg.protocol_version);
	CHECK(host, cfg.host);
	CHECK(port, cfg.port);
	CHECK(qos, cfg.qos);
	CHECK(cafile, cfg.cafile);
	CHECK(capath, cfg.capath);
	CHECK(psk, cfg.psk);
	check("tls_use_os_certs", layout->tls_use_os_certs, TLS_USE_OS_CERTS_AT);
	check("data_file", layout->data_file, DATA_FILE_AT);
	CHECK(request_topic, request_topic);
	CHECK(response_topic, response_topic);
	CHECK(payload, payload);
	CHECK(payload_callback, payload_callback);
	if(failures){
		printf("%d offsets differ\n", failures);
		return 1;
	}
	printf("all offsets match\n");
	return 0;
}
