"""
Helpers for the integration tests: a real mosquitto broker with the plugin
loaded, and MQTT clients that speak the control protocol (SPEC section 4).

conftest.py turns these into fixtures; test modules import the constants,
the client class and the checkers from here.
"""
import base64
import functools
import hashlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import zlib
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# The plugin under test; MOSQUITTO_TOKENS_PLUGIN overrides it (for example to
# run the suite against an installed or patched build).
PLUGIN = os.path.abspath(os.environ.get("MOSQUITTO_TOKENS_PLUGIN",
                                        os.path.join(REPO, "build", "mosquitto_tokens.so")))

# The Mosquitto release under test. MOSQUITTO_PREFIX names the prefix it is
# installed in, relative to the repository or absolute:
# build/mosquitto-2.1.2/_prefix, say, as `make vendor-brokers` builds it.
# Unset (or /usr): Debian's. It gives the broker (sbin/mosquitto), the
# clients (bin/mosquitto_pub, _sub, _rr, _ctrl, _passwd), the folder of
# their libmosquitto (lib/, put first in LD_LIBRARY_PATH by mosquitto_env:
# 2.1's keeps the soname libmosquitto.so.1, so without it its clients
# silently load Debian's 2.0.11 library) and the release's own plugins
# (dynamic security). The plugin under test is the project's build (PLUGIN)
# whatever the release.
DEBIAN_PREFIX = "/usr"
MOSQUITTO_PREFIX = os.path.normpath(os.path.join(REPO, os.environ.get("MOSQUITTO_PREFIX") or DEBIAN_PREFIX))
DEBIAN = MOSQUITTO_PREFIX == DEBIAN_PREFIX
MOSQUITTO = os.path.join(MOSQUITTO_PREFIX, "sbin", "mosquitto")
MOSQUITTO_PUB = os.path.join(MOSQUITTO_PREFIX, "bin", "mosquitto_pub")
MOSQUITTO_SUB = os.path.join(MOSQUITTO_PREFIX, "bin", "mosquitto_sub")
MOSQUITTO_RR = os.path.join(MOSQUITTO_PREFIX, "bin", "mosquitto_rr")
MOSQUITTO_CTRL = os.path.join(MOSQUITTO_PREFIX, "bin", "mosquitto_ctrl")
MOSQUITTO_PASSWD = os.path.join(MOSQUITTO_PREFIX, "bin", "mosquitto_passwd")
# The folder of the release's libmosquitto (None: the system's) and of its plugins.
MOSQUITTO_LIBDIR = None if DEBIAN else os.path.join(MOSQUITTO_PREFIX, "lib")
MOSQUITTO_PLUGIN_DIR = "/usr/lib/x86_64-linux-gnu" if DEBIAN else MOSQUITTO_LIBDIR
DYNSEC_PLUGIN = os.path.join(MOSQUITTO_PLUGIN_DIR, "mosquitto_dynamic_security.so")


def mosquitto_env(extra=None, base=None):
    """The environment for the release's broker and clients: `base` (the
    current environment by default) plus `extra`, with the release's lib/
    first in LD_LIBRARY_PATH (before any folder `extra` or `base` put there,
    the module's for mosquitto_ctrl, say). None when nothing changes, as
    subprocess takes it."""
    if base is None and not extra and MOSQUITTO_LIBDIR is None:
        return None
    env = dict(os.environ if base is None else base, **(extra or {}))
    if MOSQUITTO_LIBDIR is not None:
        env["LD_LIBRARY_PATH"] = ":".join(p for p in (MOSQUITTO_LIBDIR, env.get("LD_LIBRARY_PATH")) if p)
    return env


@functools.lru_cache(maxsize=None)
def broker_version():
    """The release under test, from `mosquitto -h` ("mosquitto version
    2.1.2"): a tuple of ints, (2, 1, 2). Compare with tuples: >= (2, 1)."""
    done = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True, env=mosquitto_env(),
                          stdin=subprocess.DEVNULL, timeout=10)
    match = re.search(r"^mosquitto version (\d+)\.(\d+)\.(\d+)", done.stdout + done.stderr, re.M)
    assert match, f"no version in `{MOSQUITTO} -h`:\n{done.stdout}{done.stderr}"
    return tuple(int(n) for n in match.groups())


def broker_version_text():
    return ".".join(str(n) for n in broker_version())


# How each release logs the end of a client's connection: 2.0 "Client <id>
# closed its connection." / "Client <id> disconnected." / "Client <id> been
# disconnected by administrative action." (sic), 2.1 "Client <id>
# [<address>:<port>] disconnected: <reason>." (administrative action,
# connection closed by client, ...).
def client_log_re(client_id):
    """`Client <id>`, and the `[<address>:<port>]` 2.1 adds after it."""
    return rf"Client {re.escape(client_id)} (?:\[[^\]\s]*\] )?"


def disconnected_log_re(client_id):
    """A line saying that a connection with that client id ended (a
    DISCONNECT, the socket closing, a kick: every release's wording)."""
    return client_log_re(client_id) + r"(?:disconnected|closed its connection|(?:has )?been disconnected)"


def kicked_log_re(client_id):
    """A line saying that the broker closed that client's connection
    because a plugin kicked it (every release's wording)."""
    return client_log_re(client_id) + (r"(?:(?:has )?been disconnected by administrative action"
                                       r"|disconnected: administrative action)")

CONTROL_TOPIC = "$CONTROL/tokens/v1"
RESPONSE_TOPIC = "$CONTROL/tokens/v1/response"

V5 = mqtt.MQTTv5
V311 = mqtt.MQTTv311

TIMEOUT = 5.0          # waiting for a reply that should come
QUIET_PERIOD = 0.5     # waiting to be sure that nothing comes

TOKEN_RE = re.compile(r"^mqtk_[A-Za-z0-9_-]{43}[0-9a-f]{8}$")
HASH_RE = re.compile(r"^[0-9a-f]{64}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
METADATA_KEYS = {"name", "role", "requestedBy", "issuedAt", "validUntil", "lastUsed", "hash", "status"}
STATE_TOKEN_KEYS = METADATA_KEYS - {"status"}
FUTURE = "2099-01-01T00:00:00Z"


RUNNING_RE = re.compile(r"mosquitto version \S+ running")


class BrokerStartError(Exception):
    """The broker exited (or never listened) when it was expected to run."""


# ---------------------------------------------------------------- times

def parse_time(text):
    """An output time, YYYY-MM-DDTHH:MM:SSZ, as a UTC datetime."""
    assert TIME_RE.match(text), f"not a UTC second-precision RFC 3339 time: {text!r}"
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def format_time(seconds):
    return datetime.fromtimestamp(int(seconds), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- tokens

def token_checksum(first48):
    return "%08x" % (zlib.crc32(first48.encode("ascii")) & 0xFFFFFFFF)


def sha256_hex(text):
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def check_token_format(token):
    """SPEC section 1."""
    assert isinstance(token, str)
    assert len(token) == 56, token
    assert TOKEN_RE.match(token), token
    assert token[48:] == token_checksum(token[:48]), "CRC-32 suffix does not match"
    body = token[5:48]
    raw = base64.urlsafe_b64decode(body + "=")
    assert len(raw) == 32
    # Canonical base64url: re-encoding gives back the same characters.
    assert base64.urlsafe_b64encode(raw).decode().rstrip("=") == body


def check_metadata(meta, name=None, role=None, requested_by=None, valid_until=None, status="valid",
                   issued_near=None, last_used=None, client_id=None):
    """A token metadata object (SPEC section 4). issued_near: a time.time()
    value that issuedAt must be within a few seconds of. client_id: the
    client id it is bound to (then, and only then, it has "clientId")."""
    assert set(meta) == METADATA_KEYS | ({"clientId"} if client_id is not None else set()), \
        f"metadata keys: {sorted(meta)}"
    if client_id is not None:
        assert meta["clientId"] == client_id
    assert isinstance(meta["name"], str)
    if name is not None:
        assert meta["name"] == name
    if role is not None:
        assert meta["role"] == role
    if requested_by is not None:
        assert meta["requestedBy"] == requested_by
    issued = parse_time(meta["issuedAt"])
    until = parse_time(meta["validUntil"])
    if valid_until is not None:
        assert meta["validUntil"] == valid_until
    if issued_near is not None:
        assert abs(issued.timestamp() - issued_near) <= 3, (meta["issuedAt"], issued_near)
    assert meta["lastUsed"] == last_used
    assert HASH_RE.match(meta["hash"]), meta["hash"]
    assert meta["status"] == status
    if status == "valid":
        assert until > issued
    return meta


def check_created(data, **expected):
    """createToken's data: metadata plus the secret, whose hash is the hash."""
    assert "token" in data
    token = data["token"]
    check_token_format(token)
    assert sha256_hex(token) == data["hash"]
    check_metadata({k: v for k, v in data.items() if k != "token"}, **expected)
    return token


# ---------------------------------------------------------------- processes


def check_rotated(data, before, requested_by, issued_near, previous_valid_until=None):
    """rotateToken's data: as createToken's (metadata plus the new secret),
    with a new hash, the same name, role and client id (if it had one),
    issuedAt now, requestedBy the rotator, and previousValidUntil exactly
    when the old secret still works (`previous_valid_until`: the expected
    text, or a POSIX time it must be within a second of). `before` is the
    token's metadata before the rotation. Returns the secret."""
    expected = set(METADATA_KEYS) | {"token"}
    if previous_valid_until is not None:
        expected.add("previousValidUntil")
    if "clientId" in before:
        expected.add("clientId")
        assert data.get("clientId") == before["clientId"], data
    assert set(data) == expected, f"rotateToken data keys: {sorted(data)}"
    token = data["token"]
    check_token_format(token)
    assert sha256_hex(token) == data["hash"]
    assert data["hash"] != before["hash"]
    assert data["name"] == before["name"]
    assert data["role"] == before["role"]
    assert data["requestedBy"] == requested_by
    assert abs(parse_time(data["issuedAt"]).timestamp() - issued_near) <= 2, (data["issuedAt"], issued_near)
    assert parse_time(data["validUntil"]) > parse_time(data["issuedAt"])
    assert data["status"] == "valid"
    if data["lastUsed"] is not None:
        parse_time(data["lastUsed"])
    if isinstance(previous_valid_until, str):
        assert data["previousValidUntil"] == previous_valid_until, data
    elif previous_valid_until is not None:   # a POSIX time, give or take the second
        assert abs(parse_time(data["previousValidUntil"]).timestamp() - previous_valid_until) <= 1.5, \
            (data["previousValidUntil"], previous_valid_until)
    return token


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    """A mosquitto process with the plugin, in its own folder.

    directory/<name>.conf, <name>.acl, <name>.log are written there; the
    state file defaults to directory/tokens.json. `users` ({name: password})
    adds a password_file and gives those users the same ACL as anonymous
    clients. `extra_config` lines are appended to the config (after the
    plugin line, so plugin_opt_* lines there belong to this plugin).
    `prelude` lines come first, before the listener (per_listener_settings
    must precede every security setting). `acl`, when given, is the whole
    text of the acl_file instead of the generated one. `allow_anonymous`
    sets the broker option of that name. `wrapper`, a command line that
    mosquitto runs under (valgrind and its options, say), and the seconds
    that a start and a stop may take, longer under such a wrapper. `env`
    ({name: value}) adds to the broker's environment (for example LD_PRELOAD).
    """

    def __init__(self, directory, port=None, state_file=None, extra_config=(), users=None,
                 name="broker", plugin=PLUGIN, prelude=(), acl=None, allow_anonymous=True,
                 wrapper=(), start_timeout=5.0, stop_timeout=5.0, env=None):
        self.directory = str(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.name = name
        self._auto_port = port is None
        self.port = port or free_port()
        self.state_file = str(state_file or os.path.join(self.directory, "tokens.json"))
        self.conf_path = os.path.join(self.directory, f"{name}.conf")
        self.acl_path = os.path.join(self.directory, f"{name}.acl")
        self.passwd_path = os.path.join(self.directory, f"{name}.passwd")
        self.log_path = os.path.join(self.directory, f"{name}.log")
        self.users = dict(users or {})
        self.extra_config = list(extra_config)
        self.prelude = list(prelude)
        self.acl = acl
        self.allow_anonymous = allow_anonymous
        self.plugin = plugin
        self.wrapper = list(wrapper)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.env = dict(env or {})
        self.process = None
        self.returncode = None
        self._log_file = None
        self._log_offset = 0
        self.starts = 0
        self._write_config()

    # -- configuration

    def _write_config(self):
        grants = "topic readwrite #\ntopic readwrite $CONTROL/#\n"
        acl = "# anonymous clients\n" + grants
        for user in self.users:
            acl += f"\nuser {user}\n" + grants
        if self.acl is not None:
            acl = self.acl
        with open(self.acl_path, "w") as f:
            f.write(acl)
        lines = self.prelude + [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "set_tcp_nodelay true",
            f"acl_file {self.acl_path}",
            "log_dest stderr",
            "log_type all",
            "log_timestamp true",
            "persistence false",
        ]
        if self.users:
            open(self.passwd_path, "w").close()
            os.chmod(self.passwd_path, 0o600)
            for user, password in self.users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", self.passwd_path, user, password],
                               check=True, capture_output=True, env=mosquitto_env())
            lines.append(f"password_file {self.passwd_path}")
        if os.geteuid() == 0:
            lines.append("user root")
        lines.append(f"plugin {self.plugin}")
        lines.append(f"plugin_opt_state_file {self.state_file}")
        lines.extend(self.extra_config)
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    # -- process control

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def _spawn(self):
        assert not self.running, "broker already running"
        self._log_file = open(self.log_path, "ab")
        self._log_offset = self._log_file.tell()
        self.starts += 1
        self._log_file.write(f"==== test harness: start #{self.starts}\n".encode())
        self._log_file.flush()
        self.process = subprocess.Popen(self.wrapper + [MOSQUITTO, "-c", self.conf_path],
                                        stdout=self._log_file, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=mosquitto_env(self.env))
        self.returncode = None

    def start(self, timeout=None):
        """Starts the broker and waits until it accepts connections. A port
        picked by free_port that someone else took meanwhile is replaced,
        at the first start only (a restart keeps its port)."""
        timeout = self.start_timeout if timeout is None else timeout
        for attempt in range(3):
            try:
                return self._start_once(timeout)
            except BrokerStartError as error:
                if not (self._auto_port and self.starts == 1 + attempt
                        and "Address already in use" in str(error)):
                    raise
                self.port = free_port()
                self._write_config()
        return self._start_once(timeout)

    def _start_once(self, timeout):
        self._spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self._reaped(code)
                raise BrokerStartError(f"mosquitto exited with status {code} at start:\n{self.log}")
            # "running" is logged once every listener is open; a port that
            # merely accepts could belong to someone else.
            if RUNNING_RE.search(self.current_log) and port_open(self.port):
                return self
            time.sleep(0.02)
        self.kill()
        raise BrokerStartError(f"mosquitto did not listen on port {self.port} within {timeout}s:\n{self.log}")

    def start_expecting_failure(self, timeout=None):
        """Starts the broker, expecting it to refuse; returns its exit status."""
        timeout = self.start_timeout if timeout is None else timeout
        self._spawn()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            listening = port_open(self.port)
            self.kill()
            raise AssertionError(f"mosquitto kept running (listening: {listening}):\n{self.log}")
        self._reaped(code)
        return code

    def _reaped(self, code):
        self.returncode = code
        self.process = None
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def stop(self, timeout=None):
        """SIGTERM, then wait (SIGKILL if it hangs). Returns the exit status."""
        timeout = self.stop_timeout if timeout is None else timeout
        if self.process is None:
            return self.returncode
        if self.process.poll() is None:
            try:
                self._terminate(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                self._reaped(self.process.returncode if self.process else None)
                raise AssertionError(f"mosquitto did not stop on SIGTERM within {timeout}s")
        code = self.process.returncode
        self._reaped(code)
        return code

    def _terminate(self, timeout):
        """SIGTERM, sent again each second: mosquitto 2.0 sets its run flag
        after installing its signal handlers (src/mosquitto.c), so a SIGTERM
        right after the listeners open is lost."""
        deadline = time.monotonic() + timeout
        while True:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(min(1.0, max(0.01, deadline - time.monotonic())))
                return
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    raise

    def kill(self):
        """kill -9: no chance to clean up or save anything."""
        if self.process is None:
            return self.returncode
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        code = self.process.returncode
        self._reaped(code)
        return code

    def restart(self, hard=False):
        """Stops (or with hard=True kills) and starts again on the same port
        and state file."""
        self.kill() if hard else self.stop()
        return self.start()

    # -- log

    @property
    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    @property
    def current_log(self):
        """The log since the last start."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_lines(self):
        return self.log.splitlines()

    def wait_for_log(self, pattern, timeout=TIMEOUT):
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log)
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matching {pattern!r}:\n{self.log}")
            time.sleep(0.02)

    # -- state file

    @property
    def journal_file(self):
        return self.state_file + ".journal"

    def read_state(self):
        """The state on disk as the plugin would load it: the snapshot, then
        the journal's newer changes (docs/state-file.md), in the snapshot's
        shape without journalSequence."""
        return replay_state(self.state_file, self.journal_file)

    def state_bytes(self):
        """Everything the plugin keeps on disk (snapshot and journal), or None."""
        parts = []
        for path in (self.state_file, self.journal_file):
            try:
                with open(path, "rb") as f:
                    parts.append(f.read())
            except FileNotFoundError:
                pass
        return b"".join(parts) if parts else None

    # -- clients

    def client(self, **kwargs):
        return ControlClient(self.port, **kwargs)


# ---------------------------------------------------------------- MQTT clients

class ControlClient:
    """A paho-mqtt client (v5 or v3.1.1) that sends control requests.

    Every message it receives, subscribed or not (directed publishes need no
    subscription), lands in a queue; `request` takes the next one from it.
    """

    def __init__(self, port, protocol=V5, client_id=None, username=None, password=None,
                 subscribe_response=True, subscriptions=(), connect=True):
        self.port = port
        self.protocol = protocol
        self.client_id = client_id if client_id is not None else f"test-{os.getpid()}-{id(self):x}"
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.connect_rc = None
        self.subacks = queue.Queue()
        if protocol == V5:
            self.mqtt = mqtt.Client(client_id=self.client_id, protocol=V5)
        else:
            self.mqtt = mqtt.Client(client_id=self.client_id, clean_session=True, protocol=protocol)
        if username is not None:
            self.mqtt.username_pw_set(username, password)
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_message = self._on_message
        self.mqtt.on_subscribe = self._on_subscribe
        self.mqtt.on_socket_open = self._on_socket_open
        self._subscribe_response = subscribe_response
        self._subscriptions = list(subscriptions)
        if connect:
            self.connect()

    # -- paho callbacks (network thread)

    def _on_socket_open(self, client, userdata, sock):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connect_rc = rc
        self.connected.set()

    def _on_message(self, client, userdata, message):
        self.messages.put(message)

    def _on_subscribe(self, client, userdata, mid, *args):
        self.subacks.put((mid, args))

    # -- life cycle

    def connect(self):
        self.mqtt.connect("127.0.0.1", self.port, keepalive=30)
        self.mqtt.loop_start()
        if not self.connected.wait(TIMEOUT):
            self.close()
            raise AssertionError("no CONNACK")
        if self.connect_rc != 0:
            self.close()
            raise AssertionError(f"connection refused: {self.connect_rc}")
        topics = ([RESPONSE_TOPIC] if self._subscribe_response else []) + self._subscriptions
        for topic in topics:
            self.subscribe(topic)

    def subscribe(self, topic, qos=1):
        result, mid = self.mqtt.subscribe(topic, qos)
        assert result == mqtt.MQTT_ERR_SUCCESS
        deadline = time.monotonic() + TIMEOUT
        while True:
            got, args = self.subacks.get(timeout=max(0.01, deadline - time.monotonic()))
            if got == mid:
                granted = args[0]
                code = granted[0]
                value = getattr(code, "value", code)
                assert value in (0, 1, 2), f"subscription to {topic!r} refused: {code}"
                return

    def close(self):
        try:
            self.mqtt.disconnect()
        finally:
            self.mqtt.loop_stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- control requests

    def publish(self, topic, payload, qos=1, properties=None):
        info = self.mqtt.publish(topic, payload, qos=qos, properties=properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish failed: {info.rc}"
        if qos > 0:
            info.wait_for_publish(TIMEOUT)
            assert info.is_published(), "no PUBACK"
        return info

    def next_message(self, timeout=TIMEOUT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout}s") from None

    def drain(self, wait=QUIET_PERIOD):
        """Every message that arrives within `wait` seconds."""
        deadline = time.monotonic() + wait
        got = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            try:
                got.append(self.messages.get(timeout=left))
            except queue.Empty:
                return got

    def request_message(self, payload, properties=None, timeout=TIMEOUT):
        """Publishes a raw payload (str or bytes) to the control topic and
        returns the reply message (paho MQTTMessage)."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        self.publish(CONTROL_TOPIC, payload, qos=1, properties=properties)
        return self.next_message(timeout)

    def request_raw(self, payload, timeout=TIMEOUT):
        """Raw payload in, the whole decoded reply document out."""
        message = self.request_message(payload, timeout=timeout)
        assert message.topic == RESPONSE_TOPIC, message.topic
        reply = json.loads(message.payload)
        assert set(reply) == {"responses"}, reply
        return reply

    def request(self, commands, timeout=TIMEOUT):
        """{"commands": commands} in, the list of responses out (one per command)."""
        if isinstance(commands, dict):
            commands = [commands]
        payload = json.dumps({"commands": commands}, ensure_ascii=False)
        responses = self.request_raw(payload, timeout)["responses"]
        assert isinstance(responses, list)
        assert len(responses) == len(commands), responses
        return responses

    def call(self, command, **fields):
        """One command that must succeed; returns its data (or None)."""
        response = self.request([dict(command=command, **fields)])[0]
        assert "error" not in response, response
        assert response["command"] == command
        return response.get("data")


def response_properties(response_topic=None, correlation_data=None):
    properties = Properties(PacketTypes.PUBLISH)
    if response_topic is not None:
        properties.ResponseTopic = response_topic
    if correlation_data is not None:
        properties.CorrelationData = correlation_data
    return properties


ACL_TYPES = ["publishClientSend", "publishClientReceive", "subscribeLiteral", "subscribePattern",
             "unsubscribeLiteral", "unsubscribePattern"]


def _insert_acl(acls, acl):
    """Where the plugin keeps an ACL: by type, then highest priority first,
    then in the order they were added."""
    key = (ACL_TYPES.index(acl["acltype"]), -acl["priority"])
    position = len(acls)
    for i, other in enumerate(acls):
        if (ACL_TYPES.index(other["acltype"]), -other["priority"]) > key:
            position = i
            break
    acls.insert(position, acl)


def replay_state(state_file, journal_file):
    """An independent reading of the on-disk format: the snapshot plus the
    journal lines newer than its journalSequence. Fails on anything the
    plugin would refuse to load."""
    try:
        with open(state_file) as f:
            document = json.load(f)
    except FileNotFoundError:
        document = {"version": 1, "roles": [], "tokens": []}
    sequence = document.pop("journalSequence", 0)
    roles = {r["rolename"]: r for r in document["roles"]}
    tokens = {t["hash"]: t for t in document["tokens"]}
    try:
        with open(journal_file, "rb") as f:
            lines = f.read().split(b"\n")
    except FileNotFoundError:
        lines = []
    # A last line without its newline was cut short by a crash: not acknowledged.
    for line in lines[:-1]:
        change = json.loads(line)
        if change["seq"] <= sequence:
            continue
        sequence = change["seq"]
        op = change["op"]
        if op == "createToken":
            assert change["token"]["hash"] not in tokens
            tokens[change["token"]["hash"]] = change["token"]
        elif op == "revokeToken":
            del tokens[change["hash"]]
        elif op == "createRole":
            assert change["role"]["rolename"] not in roles
            role = {"rolename": change["role"]["rolename"], "acls": []}
            for acl in change["role"]["acls"]:
                _insert_acl(role["acls"], acl)
            roles[role["rolename"]] = role
        elif op == "deleteRole":
            del roles[change["rolename"]]
        elif op == "addRoleACL":
            _insert_acl(roles[change["rolename"]]["acls"], change["acl"])
        elif op == "removeRoleACL":
            acls = roles[change["rolename"]]["acls"]
            match = [a for a in acls if a["acltype"] == change["acltype"] and a["topic"] == change["topic"]]
            assert len(match) == 1
            acls.remove(match[0])
        elif op == "rotateToken":
            del tokens[change["hash"]]
            tokens[change["token"]["hash"]] = change["token"]
        elif op == "noticed":
            tokens[change["hash"]]["expiringNotified"] = change["expiring"]
            tokens[change["hash"]]["expiredNotified"] = change["expired"]
        elif op == "lastUsed":
            for token_hash, when in change["tokens"]:
                if token_hash in tokens:
                    tokens[token_hash]["lastUsed"] = when
        else:
            raise AssertionError(f"unknown journal op {op!r}")
    # The optional bookkeeping fields (rotation, expiry notices) are not
    # part of a token's metadata: leave them out, so that what is on disk
    # compares with what listTokens shows.
    bookkeeping = {"previousHash", "previousValidUntil", "expiringNotified", "expiredNotified"}
    tokens = [{k: v for k, v in t.items() if k not in bookkeeping} for t in tokens.values()]
    return {"version": document["version"],
            "roles": sorted(roles.values(), key=lambda r: r["rolename"].encode()),
            "tokens": sorted(tokens, key=lambda t: (t["issuedAt"], t["name"].encode()))}


def snapshot(client, broker=None):
    """What an operator can see: every token and role, and the state file."""
    tokens = client.call("listTokens")
    roles = client.call("listRoles")
    return tokens, roles, (broker.state_bytes() if broker else None)


def write_state(path, roles=(), tokens=(), version=1, raw=None):
    """Writes a state file as an operator's backup would hold it."""
    if raw is None:
        raw = json.dumps({"version": version, "roles": list(roles), "tokens": list(tokens)}, indent=1)
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    with open(path, "wb") as f:
        f.write(raw)
    os.chmod(path, 0o600)
    return raw


def state_token(name, role, issued_at, valid_until, requested_by="init", last_used=None, hash_hex=None):
    return {"name": name, "role": role, "requestedBy": requested_by,
            "issuedAt": issued_at, "validUntil": valid_until, "lastUsed": last_used,
            "hash": hash_hex or hashlib.sha256(name.encode()).hexdigest()}

