/*
 * An LD_PRELOAD shim for test_ctrl_releases.py: mosquitto_lib_version
 * reports the version in FAKE_LIBMOSQUITTO_VERSION ("2.2.0") instead of
 * the real library's, so that the mosquitto_ctrl module can be shown a
 * release it does not know without building one. Everything else is the
 * real libmosquitto.
 */
#include <stdio.h>
#include <stdlib.h>

int mosquitto_lib_version(int *major, int *minor, int *revision)
{
	int v[3] = {0, 0, 0};
	const char *text = getenv("FAKE_LIBMOSQUITTO_VERSION");
	if(text == NULL || sscanf(text, "%d.%d.%d", &v[0], &v[1], &v[2]) != 3){
		fprintf(stderr, "fake_lib_version: FAKE_LIBMOSQUITTO_VERSION must be major.minor.revision\n");
		abort();
	}
	if(major) *major = v[0];
	if(minor) *minor = v[1];
	if(revision) *revision = v[2];
	return v[0] * 1000000 + v[1] * 1000 + v[2];
}
