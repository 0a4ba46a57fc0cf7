"""
Attacks on tokens (issue 12), each checked the way a user would see it:

1. A rotated token (old secret kept by a grace period) that is then revoked
   must stay revoked, both secrets, live, after a kill -9 and after a clean
   restart.
2. Stealing a secret by taking over the requester's client id while its
   createToken / rotateToken reply is on its way: no message carrying a
   secret may ever reach the attacker's connection.
3. A token session that takes over another client's persistent session
   must not receive on the subscriptions it inherited (SPEC section 3: a
   token session never receives on a topic its role would not let it
   subscribe to), nor the QoS 1 messages the session still owed its
   previous owner, in flight (sent again with DUP) or queued.
4. A subscription whose right the role lost (removeRoleACL, or a deny at a
   higher priority) stops delivering: live, to an offline persistent
   session when it comes back, and to a session restored by the broker's
   own persistence.

"Receives nothing" is always checked against a marker published after the
forbidden message on a topic the role does allow: once the marker is in,
the forbidden one would have been too.
"""
import json
import os
import random
import socket
import struct
import threading
import time

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from access_helpers import acl, attempt_login, device, issue, make_role, refused
from events_metrics_helpers import SECRET_RE, mosquitto_persistence
from tokens_helpers import CONTROL_TOPIC, FUTURE, TIMEOUT, V5, V311, check_created


def topics(seen):
    return [topic for topic, _ in seen]


# ================================================================ 1. revoked after rotation

def refused_login_logged(broker, client_id):
    # SPEC section 2's form, which names the address for log watchers.
    broker.wait_for_log(rf"tokens: refused login from 127\.0\.0\.1 client {client_id}: ")


@pytest.mark.parametrize("restart", [None, "kill-9", "clean-restart"],
                         ids=["live", "kill-9", "clean-restart"])
@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_a_revoked_token_stays_revoked_with_both_secrets_of_its_rotation(broker, admin, role, restart,
                                                                        protocol):
    old_secret, _ = issue(admin, "dev-r", role)
    data = admin.call("rotateToken", name="dev-r", graceSeconds=3600)
    new_secret = data["token"]
    assert "previousValidUntil" in data
    # The grace period is real: before the revoke both secrets log in.
    assert attempt_login(broker.port, "dev-r", old_secret, protocol, client_id="old-before") == 0
    assert attempt_login(broker.port, "dev-r", new_secret, protocol, client_id="new-before") == 0

    admin.call("revokeToken", name="dev-r")
    if restart is not None:
        broker.restart(hard=restart == "kill-9")

    codes = {client_id: attempt_login(broker.port, "dev-r", secret, protocol, client_id=client_id)
             for secret, client_id in ((old_secret, "old-after"), (new_secret, "new-after"))}
    accepted = [client_id for client_id, rc in codes.items() if not refused(protocol, rc)]
    assert not accepted, f"a secret of the revoked token logs in: CONNACK codes {codes}"
    for client_id in codes:
        refused_login_logged(broker, client_id)
    with broker.client() as checker:
        assert checker.request([{"command": "getToken", "name": "dev-r"}])[0].get("code") == "notFound"
        assert [t for t in checker.call("listTokens")["tokens"] if t["name"] == "dev-r"] == []


# ================================================================ 2. client-id takeover races

def _string(text):
    raw = text.encode("utf-8")
    return struct.pack("!H", len(raw)) + raw


def _packet(first_byte, body):
    length, encoded = len(body), b""
    while True:
        byte, length = length % 128, length // 128
        encoded += bytes([byte | (0x80 if length else 0)])
        if not length:
            return bytes([first_byte]) + encoded + body


def connect_packet(client_id, clean=True, username=None, password=None):
    """An MQTT 3.1.1 CONNECT."""
    flags = 0x02 if clean else 0
    payload = _string(client_id)
    if username is not None:
        flags |= 0x80
        payload += _string(username)
    if password is not None:
        flags |= 0x40
        payload += _string(password)
    return _packet(0x10, _string("MQTT") + bytes([4, flags]) + struct.pack("!H", 30) + payload)


def publish_packet(topic, payload, qos=0):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    body = _string(topic) + (struct.pack("!H", 1) if qos else b"") + payload
    return _packet(0x30 | (qos << 1), body)


def subscribe_packet(topic, qos=0):
    return _packet(0x82, struct.pack("!H", 1) + _string(topic) + bytes([qos]))


def puback_packet(packet_id):
    return _packet(0x40, struct.pack("!H", packet_id))


PINGREQ = b"\xc0\x00"
CONNACK, PUBLISH, PUBACK, SUBACK, PINGRESP = 2, 3, 4, 9, 13


class RawConnection:
    """An MQTT 3.1.1 connection on a bare socket, so that a test decides
    exactly when each packet leaves (paho's network thread would not)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.closed = False

    def send(self, data):
        self.sock.sendall(data)

    def _parse(self):
        """(packet type, body) off the front of the buffer, or None."""
        if len(self.buffer) < 2:
            return None
        length, multiplier, i = 0, 1, 1
        while True:
            if i >= len(self.buffer):
                return None
            byte = self.buffer[i]
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            i += 1
            if not byte & 0x80:
                break
        if len(self.buffer) < i + length:
            return None
        first, body = self.buffer[0], self.buffer[i:i + length]
        self.buffer = self.buffer[i + length:]
        return first >> 4, first & 0x0F, body

    def read_packet(self, deadline):
        """The next packet, or None when the connection closed or the
        deadline passed."""
        while True:
            packet = self._parse()
            if packet is not None:
                return packet
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
            self.buffer += chunk

    def connack(self, deadline):
        packet = self.read_packet(deadline)
        if packet is None or packet[0] != CONNACK:
            return None
        return packet[2][1]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def publish_payload(flags, body):
    topic_length, = struct.unpack("!H", body[:2])
    topic = body[2:2 + topic_length].decode("utf-8", "replace")
    rest = body[2 + topic_length:]
    if (flags >> 1) & 3:
        rest = rest[2:]
    return topic, rest


def carries_secret(payload):
    text = payload.decode("utf-8", "replace")
    if SECRET_RE.search(text) or "mqtk_" in text:
        return True
    try:
        document = json.loads(text)
    except ValueError:
        return False
    for response in document.get("responses", []) if isinstance(document, dict) else []:
        if isinstance(response, dict) and isinstance(response.get("data"), dict) \
                and "token" in response["data"]:
            return True
    return False


class Load:
    """Keeps the broker busy: publishers flooding QoS 0 messages to a
    subscriber that reads and drops them, so that several clients' packets
    wait in the same turn of the broker's loop."""

    def __init__(self, port, publishers=2):
        self.stop = threading.Event()
        self.sent = 0
        self.subscriber = RawConnection(port)
        self.subscriber.send(connect_packet(f"load-sub-{os.getpid()}"))
        assert self.subscriber.connack(time.monotonic() + TIMEOUT) == 0
        self.subscriber.send(subscribe_packet("load/#"))
        self.threads = [threading.Thread(target=self._drain, daemon=True)]
        self.publishers = []
        for n in range(publishers):
            conn = RawConnection(port)
            conn.send(connect_packet(f"load-pub-{os.getpid()}-{n}"))
            assert conn.connack(time.monotonic() + TIMEOUT) == 0
            self.publishers.append(conn)
            self.threads.append(threading.Thread(target=self._flood, args=(conn, n), daemon=True))
        for thread in self.threads:
            thread.start()

    def _drain(self):
        self.subscriber.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                if not self.subscriber.sock.recv(1 << 20):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def _flood(self, conn, n):
        batch = publish_packet(f"load/{n}", b"x" * 64) * 40
        try:
            while not self.stop.is_set():
                conn.send(batch)
                self.sent += 40
                time.sleep(0.001)
        except OSError:
            return

    def close(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(TIMEOUT)
        for conn in self.publishers + [self.subscriber]:
            conn.close()


RACES = 300
WORKERS = 6
READ_WINDOW = 0.3      # how long an attacker connection listens after its CONNACK


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.replies = 0           # the requester got its reply
        self.nothing = 0           # the requester got nothing (taken over first)
        self.attacker_in = 0       # the attacker's login was accepted
        self.attacker_messages = 0
        self.leaks = []            # (race, topic, payload) of secrets the attacker got
        self.errors = []

    def add(self, **counts):
        with self.lock:
            for key, value in counts.items():
                if isinstance(getattr(self, key), list):
                    getattr(self, key).extend(value)
                else:
                    setattr(self, key, getattr(self, key) + value)


def one_race(port, number, client_id, request, attacker_login, rng, tally):
    """The requester (client id `client_id`) sends `request`; at the same
    moment an attacker logs in with the same client id and only listens."""
    deadline = time.monotonic() + TIMEOUT
    attacker = RawConnection(port)          # accepted now, CONNECT later
    requester = RawConnection(port)
    try:
        requester.send(connect_packet(client_id))
        if requester.connack(deadline) != 0:
            tally.add(errors=[f"race {number}: the requester was refused"])
            return
        username, password = attacker_login
        connect = connect_packet(client_id, clean=rng.random() < 0.5, username=username, password=password)
        request_packet = publish_packet(CONTROL_TOPIC, request)
        spin = rng.choice([0, 0, 0, 20e-6, 50e-6, 100e-6, 300e-6])
        requester.send(request_packet)
        if spin:
            until = time.perf_counter() + spin
            while time.perf_counter() < until:
                pass
        attacker.send(connect)

        code = attacker.connack(time.monotonic() + TIMEOUT)
        if code == 0:
            tally.add(attacker_in=1)
        listen_until = time.monotonic() + READ_WINDOW
        attacker.send(PINGREQ)
        while True:
            packet = attacker.read_packet(listen_until)
            if packet is None:
                break
            kind, flags, body = packet
            if kind == PUBLISH:
                topic, payload = publish_payload(flags, body)
                tally.add(attacker_messages=1)
                if carries_secret(payload):
                    tally.add(leaks=[(number, topic, payload[:120])])

        got_reply = False
        while True:
            packet = requester.read_packet(time.monotonic() + 0.05)
            if packet is None:
                break
            kind, flags, body = packet
            if kind == PUBLISH:
                got_reply = True
        tally.add(replies=1 if got_reply else 0, nothing=0 if got_reply else 1)
    finally:
        attacker.close()
        requester.close()


def run_races(broker, make_request, attacker_logins, races=RACES, workers=WORKERS):
    tally = Tally()
    load = Load(broker.port)

    def work(worker):
        rng = random.Random(1200 + worker)
        try:
            for i in range(worker, races, workers):
                one_race(broker.port, i, f"requester-{worker}-{i}", make_request(worker, i),
                         attacker_logins[i % len(attacker_logins)], rng, tally)
        except Exception as error:     # noqa: BLE001 (reported below)
            tally.add(errors=[f"worker {worker}: {error!r}"])

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
    finally:
        load.close()
    print(f"\n{races} races in {time.monotonic() - started:.1f}s under {load.sent} load messages: "
          f"requester got its reply {tally.replies}, got nothing {tally.nothing}; "
          f"attacker logged in {tally.attacker_in}, received {tally.attacker_messages} messages, "
          f"{len(tally.leaks)} with a secret")
    assert not tally.errors, tally.errors
    assert tally.replies + tally.nothing == races
    return tally


@pytest.fixture
def race_setup(broker, admin):
    """A role for the created tokens and one with no ACLs at all, whose
    token is the attacker's second kind of login (besides anonymous)."""
    make_role(admin, "dev", [acl("publishClientSend", "d/#")])
    make_role(admin, "nothing")
    attacker_secret, _ = issue(admin, "attacker", "nothing")
    return [(None, None), ("attacker", attacker_secret)]


def test_the_control_round_trip_with_a_fixed_client_id_works(broker, make_client, race_setup):
    requester = make_client(client_id="requester-fixed", protocol=V311)
    data = requester.call("createToken", name="plain", role="dev", validUntil=FUTURE)
    secret = check_created(data, name="plain", role="dev")
    assert attempt_login(broker.port, "plain", secret) == 0
    # And a raw 3.1.1 requester, as the races use, gets it too.
    conn = RawConnection(broker.port)
    try:
        conn.send(connect_packet("requester-raw"))
        assert conn.connack(time.monotonic() + TIMEOUT) == 0
        conn.send(publish_packet(CONTROL_TOPIC, json.dumps(
            {"commands": [{"command": "rotateToken", "name": "plain"}]})))
        packet = conn.read_packet(time.monotonic() + TIMEOUT)
        assert packet is not None and packet[0] == PUBLISH, "no reply"
        _, payload = publish_payload(packet[1], packet[2])
        rotated = json.loads(payload)["responses"][0]["data"]
        assert attempt_login(broker.port, "plain", rotated["token"]) == 0
    finally:
        conn.close()


def test_a_createToken_reply_never_reaches_a_client_id_takeover(broker, make_client, race_setup):
    def request(worker, i):
        return json.dumps({"commands": [{"command": "createToken", "name": f"race-{i}", "role": "dev",
                                         "validUntil": FUTURE}]})

    tally = run_races(broker, request, race_setup)
    assert tally.leaks == [], f"{len(tally.leaks)} secrets reached the attacker, e.g. {tally.leaks[:3]}"
    # Afterwards the plain round trip still works.
    requester = make_client(client_id="requester-after", protocol=V311)
    check_created(requester.call("createToken", name="after", role="dev", validUntil=FUTURE), name="after")


def test_a_rotateToken_reply_never_reaches_a_client_id_takeover(broker, admin, make_client, race_setup):
    for worker in range(WORKERS):
        issue(admin, f"rotated-{worker}", "dev")

    def request(worker, i):
        return json.dumps({"commands": [{"command": "rotateToken", "name": f"rotated-{worker}"}]})

    tally = run_races(broker, request, race_setup)
    assert tally.leaks == [], f"{len(tally.leaks)} secrets reached the attacker, e.g. {tally.leaks[:3]}"
    requester = make_client(client_id="requester-after", protocol=V311)
    data = requester.call("rotateToken", name="rotated-0")
    assert attempt_login(broker.port, "rotated-0", data["token"]) == 0


# ================================================================ persistent sessions

SESSION_EXPIRY = 3600


def persistent_device(broker, name=None, token=None, protocol=V311, client_id=None, **kwargs):
    """A Device with a persistent session: clean session false on 3.1.1,
    clean start false and a session expiry interval on MQTT 5. It does not
    subscribe to anything unless told."""
    if protocol == V311:
        dev = device(broker, name, token, protocol=V311, client_id=client_id, clean_session=False,
                     connect=False, **kwargs)
    else:
        dev = device(broker, name, token, protocol=V5, client_id=client_id, connect=False, **kwargs)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY
        original = dev.mqtt.connect

        def connect(host, port, keepalive=60, **_):
            return original(host, port, keepalive, clean_start=False, properties=properties)

        dev.mqtt.connect = connect
    dev.connect()
    return dev


@pytest.fixture
def persistent():
    """persistent(...): persistent_device, closed after the test."""
    made = []

    def make(*args, **kwargs):
        made.append(persistent_device(*args, **kwargs))
        return made[-1]

    yield make
    for d in made:
        d.close()


# ================================================================ 3. session takeover

@pytest.fixture
def plant_broker(broker_factory):
    """The test broker plus a password_file user, alice (who may do what
    anonymous clients may: everything)."""
    return broker_factory(users={"alice": "alice-password"})


@pytest.mark.parametrize("protocol", [V311, V5], ids=["mqtt311", "mqtt5"])
@pytest.mark.parametrize("owner", ["token", "password-file-user", "anonymous"])
def test_a_token_that_takes_over_a_session_does_not_receive_on_its_subscriptions(
        plant_broker, make_client, devices, persistent, owner, protocol):
    broker = plant_broker
    admin = make_client(broker=broker)
    make_role(admin, "plant-a", [acl("subscribePattern", "plant/a/#")])
    # B may receive on b/marker only: nothing under plant/.
    make_role(admin, "bystander", [acl("subscribePattern", "b/marker")])
    a_secret, _ = issue(admin, "token-a", "plant-a")
    b_secret, _ = issue(admin, "token-b", "bystander")
    login = {"token": ("token-a", a_secret), "password-file-user": ("alice", "alice-password"),
             "anonymous": (None, None)}[owner]

    a = persistent(broker, *login, protocol=protocol, client_id="plant-a-device")
    assert a.subscribe_code("plant/a/#") == 1
    publisher = devices(broker)
    # A's session really holds the subscription. At QoS 0: a QoS 1 message
    # not yet acknowledged at the takeover would be sent again to B.
    publisher.publish("plant/a/x", "for a", qos=0)
    a.expect("plant/a/x", "for a")

    b = persistent(broker, "token-b", b_secret, protocol=protocol, client_id="plant-a-device")
    assert a.wait_disconnected(), "B did not take A's session over"
    assert b.subscribe_code("b/marker") == 1
    publisher.publish_code("plant/a/x", "stolen")
    publisher.publish_code("b/marker", "end")
    seen = b.expect("b/marker", "end")
    assert topics(seen) == ["b/marker"], f"the taken-over session received {seen}"


def read_publishes_until_pingresp(conn, ack=False):
    """Sends a PINGREQ and returns the PUBLISH packets, as (topic, payload,
    DUP flag, packet id), that arrive before its PINGRESP (the broker
    answers in order, so that is everything it had sent by then). With
    ack=True each QoS 1 one is acknowledged as it comes."""
    conn.send(PINGREQ)
    deadline = time.monotonic() + TIMEOUT
    got = []
    while True:
        packet = conn.read_packet(deadline)
        assert packet is not None, f"no PINGRESP (connection closed: {conn.closed}); got {got}"
        kind, flags, body = packet
        if kind == PINGRESP:
            return got
        if kind == PUBLISH:
            topic, payload = publish_payload(flags, body)
            packet_id = struct.unpack("!H", body[2 + len(topic.encode()):][:2])[0] if flags & 0x06 else None
            got.append((topic, payload, bool(flags & 0x08), packet_id))
            if ack and packet_id is not None:
                conn.send(puback_packet(packet_id))


def test_unacknowledged_messages_do_not_follow_a_takeover(broker_factory):
    """A token session (QoS 1, clean session false) leaves messages
    unacknowledged: max_inflight_messages 2 puts two in flight and queues
    the rest. A token whose role has no ACLs at all takes the client id
    over: the broker hands it the session, messages included, and would
    send the in-flight ones again with DUP, then the queued ones as it
    acknowledges; none may reach it."""
    broker = broker_factory(extra_config=["max_inflight_messages 2"])
    with broker.client() as admin:
        make_role(admin, "plant-a", [acl("subscribePattern", "plant/a/#")])
        make_role(admin, "nothing")
        a_secret, _ = issue(admin, "token-a", "plant-a")
        b_secret, _ = issue(admin, "token-b", "nothing")
    a, b, publisher = RawConnection(broker.port), None, RawConnection(broker.port)
    try:
        a.send(connect_packet("plant-a-device", clean=False, username="token-a", password=a_secret))
        assert a.connack(time.monotonic() + TIMEOUT) == 0
        a.send(subscribe_packet("plant/a/#", qos=1))
        packet = a.read_packet(time.monotonic() + TIMEOUT)
        assert packet is not None and packet[0] == SUBACK and packet[2][-1] == 1, packet
        publisher.send(connect_packet("plant-publisher"))
        assert publisher.connack(time.monotonic() + TIMEOUT) == 0
        for n in range(5):
            publisher.send(_packet(0x32, _string("plant/a/x") + struct.pack("!H", n + 1) + f"m{n}".encode()))
        for _ in range(5):
            packet = publisher.read_packet(time.monotonic() + TIMEOUT)
            assert packet is not None and packet[0] == PUBACK, packet
        # A receives the two in flight and acknowledges none; three wait.
        received = []
        while len(received) < 2:
            received += read_publishes_until_pingresp(a)
        assert [(t, p, dup) for t, p, dup, _ in received] == [("plant/a/x", b"m0", False),
                                                              ("plant/a/x", b"m1", False)]

        b = RawConnection(broker.port)
        b.send(connect_packet("plant-a-device", clean=False, username="token-b", password=b_secret))
        packet = b.read_packet(time.monotonic() + TIMEOUT)
        assert packet is not None and packet[0] == CONNACK, packet
        session_present, code = packet[2][0], packet[2][1]
        assert code == 0, f"B's login was refused: {code}"
        assert session_present == 1, "B did not get A's session"
        assert a.read_packet(time.monotonic() + TIMEOUT) is None and a.closed, "A is still connected"
        # B acknowledges whatever it gets, so that queued ones would follow;
        # one round of PINGREQ with nothing new ends it.
        stolen = []
        while True:
            got = read_publishes_until_pingresp(b, ack=True)
            if not got:
                break
            stolen += got
            assert len(stolen) <= 10, stolen
        assert stolen == [], ("the taken-over session delivered A's unacknowledged messages "
                              f"(topic, payload, DUP, packet id): {stolen}")
    finally:
        for conn in (a, b, publisher):
            if conn is not None:
                conn.close()


# ================================================================ 4. withdrawn subscribe rights

SECRET_ROLE = [acl("subscribePattern", "secret/#"), acl("subscribePattern", "public/#")]

# case: (the change, the forbidden topic after it, the still allowed marker topic)
WITHDRAWALS = {
    "removeRoleACL": ({"command": "removeRoleACL", "rolename": "sec", "acltype": "subscribePattern",
                       "topic": "secret/#"}, "secret/1", "public/marker"),
    "higher-priority-deny": ({"command": "addRoleACL", "rolename": "sec", "acltype": "subscribePattern",
                              "topic": "secret/x/#", "allow": False, "priority": 10},
                             "secret/x/1", "secret/y/1"),
}


def withdraw(admin, change):
    response = admin.request([change])[0]
    assert "error" not in response, response


@pytest.mark.parametrize("case", list(WITHDRAWALS))
@pytest.mark.parametrize("protocol", [V311, V5], ids=["mqtt311", "mqtt5"])
def test_a_live_subscription_stops_delivering_when_the_right_is_withdrawn(broker, admin, devices, persistent,
                                                                         case, protocol):
    change, forbidden, allowed = WITHDRAWALS[case]
    make_role(admin, "sec", SECRET_ROLE)
    secret, _ = issue(admin, "keeper", "sec")
    dev = persistent(broker, "keeper", secret, protocol=protocol, client_id="keeper-1")
    assert dev.subscribe_code("secret/#") == 1
    assert dev.subscribe_code("public/#") == 1
    publisher = devices(broker)
    publisher.publish_code(forbidden, "before")
    dev.expect(forbidden, "before")

    withdraw(admin, change)
    publisher.publish_code(forbidden, "after")
    publisher.publish_code(allowed, "marker")
    seen = dev.expect(allowed, "marker")
    assert topics(seen) == [allowed], f"received after the right was withdrawn: {seen}"
    assert dev.is_connected


@pytest.mark.parametrize("case", list(WITHDRAWALS))
@pytest.mark.parametrize("protocol", [V311, V5], ids=["mqtt311", "mqtt5"])
def test_an_offline_session_gets_nothing_it_lost_the_right_to(broker, admin, devices, persistent, case,
                                                              protocol):
    change, forbidden, allowed = WITHDRAWALS[case]
    make_role(admin, "sec", SECRET_ROLE)
    secret, _ = issue(admin, "keeper", "sec")
    dev = persistent(broker, "keeper", secret, protocol=protocol, client_id="keeper-1")
    assert dev.subscribe_code("secret/#") == 1
    assert dev.subscribe_code("public/#") == 1
    publisher = devices(broker)
    # QoS 0, so that nothing is left unacknowledged at the disconnect.
    publisher.publish(forbidden, "before", qos=0)
    dev.expect(forbidden, "before")
    dev.close()

    withdraw(admin, change)
    publisher.publish_code(forbidden, "while offline")
    publisher.publish_code(allowed, "queued marker")
    back = persistent(broker, "keeper", secret, protocol=protocol, client_id="keeper-1")
    publisher.publish_code(forbidden, "after reconnect")
    publisher.publish_code(allowed, "live marker")
    seen = back.expect(allowed, "live marker")
    assert forbidden not in topics(seen), f"the subscription it lost the right to delivered: {seen}"
    # What it may still receive queued while it was away comes first (SPEC
    # section 3 keeps an offline session authorized; a plugin that queues
    # nothing for offline sessions, as the README once said, delivers only
    # the live marker).
    assert seen in ([(allowed, b"queued marker"), (allowed, b"live marker")],
                    [(allowed, b"live marker")]), seen


def test_a_session_restored_by_the_broker_gets_nothing_it_lost_the_right_to(broker_factory, tmp_path,
                                                                           devices, persistent):
    mosquitto_db = os.path.join(str(tmp_path), "mosquitto-db")
    os.makedirs(mosquitto_db)
    broker = broker_factory(extra_config=mosquitto_persistence(mosquitto_db))
    with broker.client() as admin:
        make_role(admin, "sec", SECRET_ROLE)
        secret, _ = issue(admin, "keeper", "sec")
    dev = persistent(broker, "keeper", secret, client_id="keeper-1")
    assert dev.subscribe_code("secret/#") == 1
    assert dev.subscribe_code("public/#") == 1
    before = devices(broker)
    before.publish("secret/1", "before", qos=0)
    dev.expect("secret/1", "before")
    dev.close()

    broker.stop()
    assert os.listdir(mosquitto_db), "mosquitto saved no database at its clean stop"
    broker.start()
    with broker.client() as admin:
        withdraw(admin, WITHDRAWALS["removeRoleACL"][0])
    # Back with the restored session: no new subscription. The marker on
    # public/ arriving proves the broker did restore the session.
    back = persistent(broker, "keeper", secret, client_id="keeper-1")
    publisher = devices(broker)
    publisher.publish_code("secret/1", "after restart")
    publisher.publish_code("public/marker", "marker")
    seen = back.expect("public/marker", "marker")
    assert topics(seen) == ["public/marker"], f"the restored subscription delivered: {seen}"


def test_a_shared_subscription_granted_by_its_filter_still_receives(broker, admin, devices):
    """The broker checks a shared subscription by its whole filter and its
    deliveries by the message's topic: a grant of `$share/+/jobs/#` must
    still receive `jobs/...`, and nothing else."""
    make_role(admin, "workers", [acl("subscribePattern", "$share/+/jobs/#")])
    secret, _ = issue(admin, "worker-1", "workers")
    worker = devices(broker, "worker-1", secret, client_id="worker-1")
    assert worker.subscribe_code("$share/pool/jobs/#") == 1
    assert worker.subscribe_code("jobs/#") != 1, "a plain subscription was granted"
    publisher = devices(broker)
    publisher.publish_code("other/1", "not a job")
    publisher.publish_code("jobs/1", "a job")
    seen = worker.expect("jobs/1", "a job")
    assert topics(seen) == ["jobs/1"], seen
