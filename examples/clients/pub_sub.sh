#!/bin/sh
# Log in with a token from the command line. The token is the MQTT
# password; the username is conventionally the token's name.
# Usage: TOKEN=mqtk_... examples/clients/pub_sub.sh [host] [port]
set -eu
host=${1:-127.0.0.1}
port=${2:-1883}
: "${TOKEN:?set TOKEN to a token whose role may use sensors/#}"
name=${TOKEN_NAME:-boiler-7}

# Receive one message in the background...
mosquitto_sub -h "$host" -p "$port" -u "$name" -P "$TOKEN" -t 'sensors/#' -C 1 -v &
sleep 1
# ...and publish it.
mosquitto_pub -h "$host" -p "$port" -u "$name" -P "$TOKEN" -t "sensors/$name/temperature" -m 21.5
wait
