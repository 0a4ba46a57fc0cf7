"""
Helpers for the tests of persistent sessions logged in with a token (SPEC
section 3, last paragraph; issue 14): an offline persistent session stays
authorized by its token's role, so what the role lets it receive is queued
while it is away and delivered when it comes back.

- SessionDevice: a Device with a persistent session (MQTT 3.1.1 clean
  session false, or MQTT 5 clean start false with a Session Expiry
  Interval), optionally with a Will (and an MQTT 5 Will Delay Interval),
  that remembers the CONNACK's session-present flag and can leave cleanly
  (DISCONNECT) or drop its connection (no DISCONNECT: the Will goes out);
- publish_all / queued_before_marker: publish a known list of messages, and
  read what a returning session gets before a live marker (so everything
  before the marker was queued while it was away);
- SESSION_ACL: the acl_file of the test broker, with password_file users
  whose rights mirror the token roles, for side-by-side comparisons.
"""
import re
import socket
import time

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from access_helpers import Device, acl, wait_until
from tokens_helpers import QUIET_PERIOD, TIMEOUT, V5, V311, disconnected_log_re

# The offline-session metric (SPEC section 4, metrics).
OFFLINE_METRIC = "sessions/offline"     # $SYS/broker/tokens/sessions/offline

# Long enough to outlive any test; the broker is stopped after each one.
SESSION_EXPIRY = 300


# Seconds after the broker logged a disconnect: a few of its loop
# iterations, so that whatever the plugin does at its next tick is done.
OFFLINE_SETTLE = 0.3

# Passwords of the password_file users of SESSION_ACL.
FILE_USERS = {"filedev": "filedev-password", "limited": "limited-password", "reader": "reader-password"}

# The test broker's acl_file:
# - anonymous clients (the admin, publishers, observers, $SYS scrapers) may
#   do anything, the control topic and $SYS included;
# - filedev has exactly the receive rights of the "dev" role below (d/#
#   except d/secret/#), so that a password_file client and a token client
#   with the same subscription can be compared message for message;
# - limited may read d/public/# only (a password_file login that takes
#   over a token session's client id);
# - reader may read all of d/ (a permissive later login);
# - willer is the username (the token's name) of a token client whose Will
#   goes to forbidden/: the acl_file would let it publish there, its role
#   does not. A token client is judged by its role, never by the acl_file.
SESSION_ACL = """\
# anonymous clients
topic readwrite #
topic readwrite $CONTROL/#
topic read $SYS/#

user filedev
topic deny d/secret/#
topic read d/#

user limited
topic read d/public/#

user reader
topic read d/#

user willer
topic write forbidden/#
"""

# The roles, as their ACLs. "dev" receives d/# except d/secret/# (the same
# rights as filedev); "public" only d/public/#.
DEV_ROLE = [acl("subscribePattern", "d/#"), acl("publishClientSend", "d/#"),
            acl("publishClientReceive", "d/secret/#", allow=False)]
PUBLIC_ROLE = [acl("subscribePattern", "d/public/#"), acl("publishClientSend", "d/public/#")]


def session_broker_config(metrics_interval=1):
    """Broker keyword arguments for a broker with SESSION_ACL, its users and
    metrics refreshed every `metrics_interval` seconds."""
    return dict(acl=SESSION_ACL, users=FILE_USERS,
                extra_config=[f"plugin_opt_metrics_interval {metrics_interval}"])


# ---------------------------------------------------------------- clients

class SessionDevice(Device):
    """A Device whose session outlives its connection: on MQTT 3.1.1 clean
    session false, on MQTT 5 clean start false and a Session Expiry
    Interval of `session_expiry` seconds. clean=True asks for a new, clean
    session instead (3.1.1 clean session true; MQTT 5 clean start true,
    expiry 0). `will`: (topic, payload) or (topic, payload, qos), with
    `will_delay` (MQTT 5 Will Delay Interval, seconds) when given.

    After `connect`, `session_present` is the CONNACK's flag.
    """

    def __init__(self, port, protocol=V311, client_id=None, clean=False, session_expiry=SESSION_EXPIRY,
                 will=None, will_delay=None, connect=True, **kwargs):
        self.session_present = None
        self.broker = None   # set by token_session and file_session
        super().__init__(port, protocol=protocol, client_id=client_id, connect=False,
                         clean_session=bool(clean) if protocol != V5 else None, **kwargs)
        if will is not None:
            topic, payload, *rest = will
            properties = None
            if will_delay is not None:
                assert protocol == V5, "a Will Delay Interval is MQTT 5"
                properties = Properties(PacketTypes.WILLMESSAGE)
                properties.WillDelayInterval = will_delay
            self.mqtt.will_set(topic, payload, qos=rest[0] if rest else 1, retain=False, properties=properties)
        if protocol == V5:
            properties = Properties(PacketTypes.CONNECT)
            if not clean:
                properties.SessionExpiryInterval = session_expiry
            original = self.mqtt.connect

            def connect_v5(host, port, keepalive=60, **_):
                return original(host, port, keepalive, clean_start=bool(clean), properties=properties)

            self.mqtt.connect = connect_v5
        if connect:
            self.connect()

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.session_present = bool(flags.get("session present"))
        super()._on_connect(client, userdata, flags, rc, properties)

    def leave(self):
        """Goes offline cleanly (DISCONNECT: no Will); made by token_session
        or file_session, waits until the broker has dealt with it
        (wait_offline)."""
        broker = self.broker
        before = disconnects(broker, self.client_id) if broker is not None else None
        self.close()
        assert self.wait_disconnected(), "no disconnect"
        if broker is not None:
            wait_offline(broker, self.client_id, before)

    def drop(self):
        """Goes offline without a DISCONNECT, as a device losing its
        network does: the broker publishes its Will."""
        sock = self.mqtt.socket()
        assert sock is not None, "not connected"
        try:
            sock.shutdown(socket.SHUT_RDWR)   # paho sees the end and closes it
        except OSError:
            pass
        assert self.wait_disconnected(), "paho did not notice the dropped connection"
        self.mqtt.loop_stop()


def token_session(broker, name, secret, protocol=V311, client_id=None, connect=True, **kwargs):
    """A SessionDevice of `broker` logged in with a token (username: its
    name), connected unless connect=False."""
    dev = SessionDevice(broker.port, protocol=protocol, client_id=client_id, username=name, password=secret,
                        connect=False, **kwargs)
    return _of(broker, dev, connect)


def file_session(broker, user, protocol=V311, client_id=None, connect=True, **kwargs):
    """A SessionDevice of `broker` logged in as a password_file user of
    SESSION_ACL, connected unless connect=False."""
    dev = SessionDevice(broker.port, protocol=protocol, client_id=client_id, username=user,
                        password=FILE_USERS[user], connect=False, **kwargs)
    return _of(broker, dev, connect)


def _of(broker, dev, connect):
    dev.broker = broker
    if connect:
        dev.connect()
    return dev


# ---------------------------------------------------------------- messages

def publish_all(publisher, messages):
    """Publishes (topic, payload, qos) messages in order, each acknowledged
    (PUBACK, or PUBCOMP at QoS 2) before the next."""
    for topic, payload, qos in messages:
        publisher.publish(topic, payload, qos=qos)


def as_sent(message):
    """A received paho message as (topic, payload text, qos)."""
    return (message.topic, message.payload.decode("utf-8", "replace"), message.qos)


def queued_before_marker(publisher, *receivers, marker_topic="d/marker", timeout=TIMEOUT, settle=QUIET_PERIOD):
    """Publishes one live marker to a topic every returning receiver is
    subscribed to and may read, and returns, for each receiver, the
    messages it got other than the marker, as sorted (topic, payload, qos):
    those were queued while it was away (the broker sends a returning
    session its queue before anything published later).

    paho hands a QoS 2 message to on_message only when its PUBREL comes, so
    a QoS 1 message overtakes earlier QoS 2 ones there: the marker goes at
    QoS 2 (its PUBREL follows theirs), the lists are sorted (the order
    across QoS levels is not the broker's), and whatever arrives within
    `settle` seconds after the marker counts too. One receiver: its list;
    more: a list of lists."""
    marker = f"marker-{time.monotonic_ns()}"
    publisher.publish(marker_topic, marker, qos=2)
    results = [_until_marker(receiver, marker_topic, marker.encode(), timeout) for receiver in receivers]
    for receiver, got in zip(receivers, results):
        got.extend(as_sent(m) for m in receiver.drain(settle))
    results = [sorted(got) for got in results]
    return results[0] if len(results) == 1 else results


def _until_marker(receiver, marker_topic, marker, timeout):
    got = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise AssertionError
            message = receiver.next_message(timeout=left)
        except AssertionError:
            raise AssertionError(f"the live marker on {marker_topic!r} never arrived; got {got}") from None
        if message.topic == marker_topic and message.payload == marker:
            return got
        got.append(as_sent(message))


def expected(messages, qos_cap=2, allowed=lambda topic: True):
    """What a subscriber at QoS `qos_cap` whose rights are `allowed` gets
    of `messages`, each at the lower of the two QoS, sorted as
    queued_before_marker sorts."""
    return sorted((topic, payload, min(qos, qos_cap)) for topic, payload, qos in messages if allowed(topic))


def watcher(broker, topics=("#",)):
    """An anonymous Device subscribed to `topics` (everything, by default):
    it sees whatever the broker publishes there, Wills included."""
    return Device(broker.port, subscriptions=list(topics))


# ---------------------------------------------------------------- broker

def disconnects(broker, client_id):
    """How many times the broker has logged the end of a connection with
    that client id (a DISCONNECT, the socket closing or a kick; each
    release's wording)."""
    pattern = re.compile(disconnected_log_re(client_id))
    return len(pattern.findall(broker.log))


def wait_offline(broker, client_id, before):
    """Waits until the broker has logged one more end of a connection with
    that client id than `before` (from disconnects), and then a few of its
    loop iterations (ticks, about ten a second): the session is offline
    for the broker and for every plugin, so nothing published from now on
    can be taken for a message to a connected client."""
    wait_until(lambda: disconnects(broker, client_id) > before, message=f"{client_id} gone in the broker log")
    time.sleep(OFFLINE_SETTLE)


@pytest.fixture
def keep():
    """keep(device): closes the device after the test; returns it."""
    kept = []

    def add(dev):
        kept.append(dev)
        return dev

    yield add
    for dev in kept:
        try:
            dev.close()
        except Exception:
            pass
