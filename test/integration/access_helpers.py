"""
Helpers for the login and access tests (SPEC sections 2 and 3): clients that
report what a device would see (CONNACK, SUBACK, UNSUBACK and PUBACK reason
codes, being disconnected and when), the real mosquitto_pub / mosquitto_sub,
hand-built token strings, and setting up roles and tokens through an
anonymous admin client (the test broker's acl_file grants anonymous clients
everything, $CONTROL included).
"""
import base64
import os
import queue
import re
import signal
import struct
import subprocess
import threading
import time

import paho.mqtt.client as mqtt

from tokens_helpers import (  # noqa: F401  (MOSQUITTO_PUB, MOSQUITTO_SUB: imported from here too)
    FUTURE, MOSQUITTO_PUB, MOSQUITTO_SUB, TIMEOUT, QUIET_PERIOD, V5, V311, ControlClient, format_time,
    mosquitto_env, parse_time, token_checksum,
)

NOT_AUTHORIZED = 0x87          # MQTT 5 reason code
SUBACK_FAILURE_V311 = 0x80
# What a broker answers a refused login with: "bad user name or password" or
# "not authorized" (MQTT 5), and their MQTT 3.1.1 CONNACK return codes.
REFUSED_V5 = {0x86, 0x87}
REFUSED_V311 = {4, 5}


def refused(protocol, rc):
    return rc in (REFUSED_V5 if protocol == V5 else REFUSED_V311)


def code_value(code):
    return getattr(code, "value", code)


# ---------------------------------------------------------------- tokens

def forge_token(raw=None):
    """A well-formed token (SPEC section 1) that no broker ever issued."""
    raw = raw if raw is not None else os.urandom(32)
    body = "mqtk_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return body + token_checksum(body)


# ---------------------------------------------------------------- clients

class Device(ControlClient):
    """A ControlClient that does not subscribe to control replies by default,
    never reconnects on its own (a kicked client must stay kicked, and a
    taken-over one must not take its session back), and records:

    - `disconnected` (an Event), `disconnected_at` (time.time()) and
      `disconnect_rc`, the first time the connection ends;
    - PUBACK reason codes (paho 1.6.1 drops them), for `publish_code`.

    `clean_session=False` asks for a persistent session (MQTT 3.1.1 only).
    """

    def __init__(self, port, connect=True, subscribe_response=False, clean_session=None, **kwargs):
        self.disconnected = threading.Event()
        self.disconnected_at = None
        self.disconnect_rc = None
        self.puback_codes = {}
        self.unsubacks = queue.Queue()
        self._clean_session = clean_session
        super().__init__(port, connect=False, subscribe_response=subscribe_response, **kwargs)
        if clean_session is not None and self.protocol != V5:
            # ControlClient always asks for a clean session on 3.1.1.
            self.mqtt._clean_session = clean_session
        self.mqtt._reconnect_on_failure = False
        self.mqtt.on_disconnect = self._on_disconnect
        self.mqtt.on_unsubscribe = self._on_unsubscribe
        original = self.mqtt._handle_pubackcomp

        def handle_pubackcomp(cmd, _original=original, _client=self.mqtt):
            packet = _client._in_packet["packet"]
            if cmd == "PUBACK" and len(packet) >= 2:
                mid, = struct.unpack("!H", packet[:2])
                self.puback_codes[mid] = packet[2] if len(packet) > 2 else 0
            return _original(cmd)

        self.mqtt._handle_pubackcomp = handle_pubackcomp
        if connect:
            self.connect()

    def _on_disconnect(self, client, userdata, rc, properties=None):
        if not self.disconnected.is_set():
            self.disconnected_at = time.time()
            self.disconnect_rc = code_value(rc)
            self.disconnected.set()

    def _on_unsubscribe(self, client, userdata, mid, *args):
        self.unsubacks.put((mid, args))

    # -- state

    @property
    def is_connected(self):
        return not self.disconnected.is_set() and self.mqtt.is_connected()

    def wait_disconnected(self, timeout=TIMEOUT):
        return self.disconnected.wait(timeout)

    # -- packets with their answers

    def subscribe_code(self, topic, qos=1):
        """SUBACK: the granted QoS, or the failure reason code (0x87 on
        MQTT 5, 0x80 on 3.1.1)."""
        result, mid = self.mqtt.subscribe(topic, qos)
        assert result == mqtt.MQTT_ERR_SUCCESS, result
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                got, args = self.subacks.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no SUBACK for {topic!r}") from None
            if got == mid:
                return code_value(args[0][0])

    def unsubscribe_code(self, topic):
        """UNSUBACK's reason code (MQTT 5); 0 on 3.1.1, which has none."""
        result, mid = self.mqtt.unsubscribe(topic)
        assert result == mqtt.MQTT_ERR_SUCCESS, result
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                got, args = self.unsubacks.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no UNSUBACK for {topic!r}") from None
            if got == mid:
                if self.protocol != V5:
                    return 0
                codes = args[1]
                return code_value(codes[0] if isinstance(codes, list) else codes)

    def publish_code(self, topic, payload, qos=1, properties=None):
        """Publishes at QoS 1 and returns the PUBACK's reason code: 0 for
        accepted (also when MQTT 5 adds 0x10, "no matching subscribers"),
        else the failure code (0x87: not authorized). Always 0 on 3.1.1,
        whose PUBACK has no reason code."""
        info = self.mqtt.publish(topic, payload, qos=qos, properties=properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish failed: {info.rc}"
        info.wait_for_publish(TIMEOUT)
        assert info.is_published(), f"no PUBACK for {topic!r}"
        code = self.puback_codes.get(info.mid, 0)
        return 0 if code == 0x10 else code

    # -- messages

    def received(self, wait=QUIET_PERIOD):
        """(topic, payload bytes) of every message arriving within `wait`."""
        return [(m.topic, m.payload) for m in self.drain(wait)]

    def expect(self, topic, payload=None, timeout=TIMEOUT):
        """Waits for a message on `topic` (and with `payload`); returns the
        (topic, payload) pairs that came before it, and it last."""
        payload = payload.encode() if isinstance(payload, str) else payload
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                message = self.messages.get(timeout=max(0.01, left))
            except queue.Empty:
                raise AssertionError(f"no message on {topic!r} within {timeout}s; got {seen}") from None
            seen.append((message.topic, message.payload))
            if message.topic == topic and (payload is None or message.payload == payload):
                return seen


def device(broker, name=None, token=None, **kwargs):
    """A connected Device that logged in as `name` with `token`."""
    if token is not None:
        kwargs.setdefault("username", name)
        kwargs["password"] = token
    return Device(broker.port, **kwargs)


def attempt_login(port, username=None, password=None, protocol=V5, client_id=None, timeout=TIMEOUT):
    """Connects once, without a network thread (so nothing retries), and
    returns the CONNACK's code (0: accepted), or None when the broker closed
    the connection without one."""
    client_id = client_id or f"login-{os.getpid()}-{time.monotonic_ns()}"
    if protocol == V5:
        client = mqtt.Client(client_id=client_id, protocol=V5)
    else:
        client = mqtt.Client(client_id=client_id, clean_session=True, protocol=protocol)
    if username is not None or password is not None:
        client.username_pw_set(username, password)
    result = {}

    def on_connect(c, userdata, flags, rc, properties=None):
        result["rc"] = code_value(rc)

    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=30)
    deadline = time.monotonic() + timeout
    try:
        while "rc" not in result and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
    finally:
        if result.get("rc") == 0:
            client.disconnect()
            client.loop(timeout=0.05)
        sock = client.socket()
        if sock:
            sock.close()
    return result.get("rc")


# ---------------------------------------------------------------- roles and tokens

def admin_client(broker, protocol=V5):
    """An anonymous control client: the test broker's acl_file lets it do
    anything, the control topic included."""
    return broker.client(protocol=protocol)


def make_role(admin, rolename, acls=()):
    acls = [dict({"priority": 0}, **acl) for acl in acls]
    admin.call("createRole", rolename=rolename, acls=acls)


def acl(acltype, topic, allow=True, priority=0):
    return {"acltype": acltype, "topic": topic, "allow": allow, "priority": priority}


def issue(admin, name, role, valid_until=FUTURE):
    """Creates a token and returns (secret, hash)."""
    data = admin.call("createToken", name=name, role=role, validUntil=valid_until)
    return data["token"], data["hash"]


def issue_short_lived(admin, name, role, seconds):
    """A token valid for about `seconds` more seconds (validUntil has second
    precision); returns (secret, hash, validUntil as a POSIX time)."""
    until = int(time.time()) + seconds
    data = admin.call("createToken", name=name, role=role, validUntil=format_time(until))
    assert parse_time(data["validUntil"]).timestamp() == until
    return data["token"], data["hash"], until


def wait_until(predicate, timeout=TIMEOUT, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s")
        time.sleep(interval)

RELOADED = "Reloading config."


def reload(broker):
    """SIGHUP, and wait until the broker has reloaded and run a few more
    loop iterations (a tick runs about every 100 ms)."""
    count = broker.log.count(RELOADED)
    broker.process.send_signal(signal.SIGHUP)
    wait_until(lambda: broker.log.count(RELOADED) > count, message="reload logged")
    time.sleep(0.3)
    assert broker.running, broker.log[-3000:]



# ---------------------------------------------------------------- the real clients

def mosquitto_pub(port, topic, message, username=None, password=None, protocol=V311, qos=0,
                  timeout=TIMEOUT):
    """Runs mosquitto_pub once; returns the CompletedProcess (text)."""
    args = [MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-m", message,
            "-q", str(qos), "-V", "5" if protocol == V5 else "311"]
    if username is not None:
        args += ["-u", username]
    if password is not None:
        args += ["-P", password]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=mosquitto_env())


class MosquittoSub:
    """mosquitto_sub -v -d in the background. `wait_subscribed` waits for its
    SUBACK; `messages` are the "topic payload" lines it printed."""

    SUBACK_RE = re.compile(r"received SUBACK")

    def __init__(self, port, topics, username=None, password=None, protocol=V311, extra=()):
        args = ["stdbuf", "-oL", MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(port), "-v", "-d",
                "-V", "5" if protocol == V5 else "311", "-q", "1"]
        for topic in ([topics] if isinstance(topics, str) else topics):
            args += ["-t", topic]
        if username is not None:
            args += ["-u", username]
        if password is not None:
            args += ["-P", password]
        args += list(extra)
        self.lines = []
        self.errors = []
        self._lock = threading.Lock()
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, text=True, env=mosquitto_env())
        self._readers = [threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True),
                         threading.Thread(target=self._read, args=(self.process.stderr, self.errors), daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, into):
        for line in stream:
            with self._lock:
                into.append(line.rstrip("\n"))

    def output(self):
        with self._lock:
            return list(self.lines), list(self.errors)

    def wait_for(self, predicate, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines, errors = self.output()
            if predicate(lines, errors):
                return True
            if self.process.poll() is not None:
                self._join_readers()
                lines, errors = self.output()
                return predicate(lines, errors)
            time.sleep(0.02)
        return False

    def wait_subscribed(self, timeout=TIMEOUT):
        ok = self.wait_for(lambda lines, errors: any(self.SUBACK_RE.search(l) for l in lines), timeout)
        assert ok, f"mosquitto_sub got no SUBACK: {self.output()}"

    def messages(self):
        lines, _ = self.output()
        return [l for l in lines if not l.startswith("Client ")]

    def wait_message(self, line, timeout=TIMEOUT):
        return self.wait_for(lambda lines, errors: line in [l for l in lines if not l.startswith("Client ")],
                             timeout)

    def _join_readers(self):
        """After the process ended: wait until its output is all read."""
        for reader in self._readers:
            reader.join(TIMEOUT)

    def wait_exit(self, timeout=TIMEOUT):
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._join_readers()
        return code

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._join_readers()
