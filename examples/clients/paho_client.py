#!/usr/bin/python3
"""Log in to Mosquitto with an application token, using paho-mqtt.

Usage: TOKEN=mqtk_... ./paho_client.py [host] [port]
The token is the MQTT password; the username is the token's name, by
convention. The script subscribes to sensors/#, publishes one reading and
prints what comes back. Works with paho-mqtt 1.x (Debian 12) and 2.x.
"""
import os
import sys

import paho.mqtt.client as mqtt

host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 1883
token = os.environ["TOKEN"]
name = os.environ.get("TOKEN_NAME", "boiler-7")

try:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, protocol=mqtt.MQTTv5)  # paho-mqtt 2.x
except AttributeError:
    client = mqtt.Client(protocol=mqtt.MQTTv5)  # paho-mqtt 1.x
client.username_pw_set(name, token)


def on_connect(client, userdata, flags, reason_code, properties):
    if reason_code != 0:
        sys.exit(f"login refused: {reason_code}")  # e.g. "Not authorized": revoked or expired
    client.subscribe("sensors/#")


def on_subscribe(client, userdata, mid, reason_codes, properties):
    client.publish(f"sensors/{name}/temperature", "21.5")


def on_message(client, userdata, message):
    print(message.topic, message.payload.decode())
    client.disconnect()


client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect(host, port)
client.loop_forever()
