/*
 * libmosquitto and the MQTT protocol's constants, from the headers of
 * either release line: Mosquitto 2.1's <mosquitto.h> includes them, and
 * its <mqtt_protocol.h> is a shim whose #warning fails a -Werror build;
 * 2.0 needs <mqtt_protocol.h> for the constants.
 */
#ifndef MQTT_API_H
#define MQTT_API_H

#include <mosquitto.h>
#if defined(__has_include)
#  if !__has_include(<mosquitto/mqtt_protocol.h>)
#    include <mqtt_protocol.h>
#  endif
#else
#  include <mqtt_protocol.h>
#endif

#endif
