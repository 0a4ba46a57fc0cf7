"""
Helpers for the web console tests (SPEC section 8): the real
build/mosquitto_tokens_console daemon in front of a real token-only broker,
plain HTTP requests to it (http.client), and a fake MQTT server that plays
a broker which misbehaves in one chosen way.
"""
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass

from ctrl_helpers import BUILD, TOKEN_IN_TEXT
from tokens_helpers import free_port, port_open

CONSOLE = os.path.join(BUILD, "mosquitto_tokens_console")
HTTP_TIMEOUT = 20.0


# ---------------------------------------------------------------- HTTP

@dataclass
class Reply:
    method: str
    path: str
    status: int
    headers: object      # http.client.HTTPMessage
    body: bytes
    seconds: float

    @property
    def content_type(self):
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()

    @property
    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name)

    def __str__(self):
        return (f"{self.method} {self.path} -> {self.status} after {self.seconds:.2f}s\n"
                f"{self.headers}{self.body[:2000]!r}")


def http_request(port, method, path, token=None, body=None, headers=None, timeout=HTTP_TIMEOUT):
    """One request on a new connection. `token` goes in Authorization:
    Bearer; `body` is bytes, str, or anything else (sent as JSON)."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        all_headers.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode("utf-8")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        data = response.read()
        return Reply(method, path, response.status, response.headers, data, time.monotonic() - started)
    finally:
        connection.close()


# ---------------------------------------------------------------- the daemon

def _thread_stacks(pid):
    """Where a hung process's threads are (gdb when there is one)."""
    gdb = shutil.which("gdb")
    if gdb:
        done = subprocess.run([gdb, "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
                              capture_output=True, text=True, timeout=60)
        return done.stdout[-8000:]
    lines = []
    for task in sorted(os.listdir(f"/proc/{pid}/task")):
        try:
            with open(f"/proc/{pid}/task/{task}/wchan") as f:
                lines.append(f"{task}: {f.read()}")
        except OSError:
            pass
    return "\n".join(lines)


class Console:
    """build/mosquitto_tokens_console in its own folder, its stdout and
    stderr in files there. `listen` None: --listen 127.0.0.1:<free port>;
    False: no --listen option at all (the default address)."""

    def __init__(self, directory, broker_port, listen=None, extra_args=(), open_files=None, env=None):
        """`open_files`: the daemon's RLIMIT_NOFILE (soft and hard), as a
        service manager would set it; `env`: extra environment variables."""
        self.open_files = open_files
        self.env = env
        self.directory = str(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.broker_port = broker_port
        self._auto_port = listen is None
        self.listen = listen
        self.port = None
        self.extra_args = list(extra_args)
        self.process = None
        self.stdout_path = os.path.join(self.directory, "console.stdout")
        self.stderr_path = os.path.join(self.directory, "console.stderr")
        self.returncode = None

    def command(self):
        command = [CONSOLE, "--broker", f"127.0.0.1:{self.broker_port}"]
        if self.listen is not False:
            if self._auto_port:
                self.port = free_port()
                command += ["--listen", f"127.0.0.1:{self.port}"]
            else:
                command += ["--listen", self.listen]
                self.port = int(self.listen.rsplit(":", 1)[1])
        else:
            self.port = 8088
        return command + self.extra_args

    def start(self, timeout=5.0):
        for _ in range(3):
            command = self.command()
            with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
                self.process = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                                env=dict(os.environ, **self.env) if self.env else None,
                                                preexec_fn=self._limit_files if self.open_files else None)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                code = self.process.poll()
                if code is not None:
                    break
                if "mosquitto_tokens_console: http" in self.stdout and port_open(self.port):
                    return self
                time.sleep(0.02)
            code = self.process.poll()
            if code is None:
                self.kill()
                raise AssertionError(f"the console did not listen within {timeout}s:\n{self.output}")
            self.returncode = code
            self.process = None
            if not (self._auto_port and "cannot listen" in self.stderr):
                raise AssertionError(f"the console exited with status {code} at start:\n{self.output}")
        raise AssertionError(f"no free port for the console:\n{self.output}")

    def _limit_files(self):
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout=5.0):
        """SIGTERM; the daemon must exit 0 within `timeout`."""
        if self.process is None:
            return self.returncode
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                stacks = _thread_stacks(self.process.pid)
                self.kill()
                raise AssertionError(f"the console did not stop on SIGTERM within {timeout}s:\n"
                                     f"{self.output}\n--- threads\n{stacks}")
        self.returncode = self.process.returncode
        self.process = None
        return self.returncode

    def kill(self):
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.returncode = self.process.returncode
            self.process = None

    def _read(self, path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    @property
    def stdout(self):
        return self._read(self.stdout_path)

    @property
    def stderr(self):
        return self._read(self.stderr_path)

    @property
    def output(self):
        return f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"

    def check_no_secret_written(self):
        """SPEC section 8: the daemon writes no secret anywhere."""
        found = TOKEN_IN_TEXT.findall(self.stdout + self.stderr)
        assert not found, f"the console wrote a token:\n{self.output}"

    def request(self, method, path, token=None, body=None, headers=None, timeout=HTTP_TIMEOUT):
        return http_request(self.port, method, path, token=token, body=body, headers=headers, timeout=timeout)

    def get(self, path, token=None, **kwargs):
        return self.request("GET", path, token=token, **kwargs)

    def post(self, path, body, token=None, **kwargs):
        return self.request("POST", path, token=token, body=body, **kwargs)

    def delete(self, path, token=None, **kwargs):
        return self.request("DELETE", path, token=token, **kwargs)


# ---------------------------------------------------------------- a fake broker

def _read_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _read_varint(sock):
    value, shift = 0, 0
    while True:
        byte = _read_exactly(sock, 1)[0]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
        shift += 7


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _parse_properties(data):
    """MQTT 5 properties of a PUBLISH: {id: value} for Response Topic (8)
    and Correlation Data (9); other properties are skipped roughly."""
    found = {}
    position = 0
    while position < len(data):
        identifier = data[position]
        position += 1
        if identifier in (0x08, 0x09):
            length = struct.unpack(">H", data[position:position + 2])[0]
            found[identifier] = data[position + 2:position + 2 + length]
            position += 2 + length
        elif identifier == 0x01:
            position += 1
        elif identifier == 0x02:
            position += 4
        else:
            break
    return found


class FakeBroker:
    """A TCP server on 127.0.0.1 that speaks just enough MQTT 5 to play a
    broker that misbehaves:

    mode "silent"         accepts the connection and never sends a byte
    mode "connack"        answers CONNECT with CONNACK reason `code`
    mode "puback"         CONNACK 0, then PUBACK reason `code` and no reply
    mode "reply"          CONNACK 0, PUBACK 0, then a PUBLISH on the request's
                          Response Topic with its Correlation Data and
                          `payload` as the reply
    """

    def __init__(self, mode, code=0, payload=b""):
        self.mode = mode
        self.code = code
        self.payload = payload
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.packets = []          # (first byte, body) of every packet received
        self._sockets = []
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._stopping:
            try:
                sock, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            self._sockets.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        try:
            while True:
                first = _read_exactly(sock, 1)[0]
                body = _read_exactly(sock, _read_varint(sock))
                self.packets.append((first, body))
                if self.mode == "silent":
                    continue
                kind = first >> 4
                if kind == 1:          # CONNECT
                    reason = self.code if self.mode == "connack" else 0
                    sock.sendall(bytes([0x20, 3, 0, reason, 0]))
                    if self.mode == "connack" and self.code >= 0x80:
                        return
                elif kind == 3:        # PUBLISH
                    self._on_publish(sock, first, body)
                elif kind == 12:       # PINGREQ
                    sock.sendall(bytes([0xD0, 0]))
                elif kind == 14:       # DISCONNECT
                    return
        except (ConnectionError, OSError):
            return

    def _on_publish(self, sock, first, body):
        topic_length = struct.unpack(">H", body[:2])[0]
        position = 2 + topic_length
        qos = (first >> 1) & 3
        packet_id = body[position:position + 2] if qos else b""
        position += 2 if qos else 0
        # Properties: a variable byte integer length, then the properties.
        length, shift, consumed = 0, 0, 0
        while True:
            byte = body[position + consumed]
            consumed += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
        properties = _parse_properties(body[position + consumed:position + consumed + length])
        if qos:
            reason = self.code if self.mode == "puback" else 0
            sock.sendall(bytes([0x40, 4]) + packet_id + bytes([reason, 0]))
        if self.mode != "reply":
            return
        response_topic = properties.get(0x08, b"$CONTROL/tokens/v1/response")
        correlation = properties.get(0x09, b"")
        props = b"\x09" + struct.pack(">H", len(correlation)) + correlation
        variable = struct.pack(">H", len(response_topic)) + response_topic + _varint(len(props)) + props
        packet = variable + self.payload
        sock.sendall(bytes([0x30]) + _varint(len(packet)) + packet)

    def close(self):
        self._stopping = True
        try:
            self.server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.server.close()
        except OSError:
            pass
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass
