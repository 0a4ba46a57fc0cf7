"""
Helpers for the mosquitto_ctrl module tests (SPEC section 7): running the
real /usr/bin/mosquitto_ctrl (or the mosquitto_ctrl of another release,
`CtrlRelease`) with the module found through LD_LIBRARY_PATH,
reading what it prints the way an operator would, a broker that only token
logins get into, and the real mosquitto_pub / mosquitto_sub.

The fixtures are defined here and imported by test_ctrl.py and
test_install.py (conftest.py belongs to another change).
"""
import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

import pytest

import tokens_helpers
from access_helpers import wait_until
from tokens_helpers import (
    MOSQUITTO, REPO, TIMEOUT, Broker, check_token_format, free_port, mosquitto_env, parse_time, port_open, sha256_hex,
)

MOSQUITTO_CTRL = "/usr/bin/mosquitto_ctrl"
# The release under test's (MOSQUITTO_PREFIX, tokens_helpers.py).
MOSQUITTO_PUB = tokens_helpers.MOSQUITTO_PUB
MOSQUITTO_SUB = tokens_helpers.MOSQUITTO_SUB
BUILD = os.path.join(REPO, "build")
CTRL_MODULE = os.path.join(BUILD, "mosquitto_ctrl_tokens.so")

TOKEN_IN_TEXT = re.compile(r"mqtk_[A-Za-z0-9_-]{43}[0-9a-f]{8}")
# mosquitto_ctrl's own warning on every plain-TCP connection; not the module's.
ENCRYPTION_WARNING = re.compile(r"Warning: You are running mosquitto_ctrl without encryption\.\n"
                                r"This means all of the configuration changes you are making are "
                                r"visible on the network, including passwords\.\n\n?")
COLUMNS = ["Name", "Role", "Requested by", "Issue date", "Valid until", "Last used", "Hash", "Status"]
# After them when a listed token is bound to a client id (an unbound row ends at its Status).
CLIENT_ID_COLUMN = "Client id"
SUBCOMMANDS = ["create", "list", "get", "revoke", "rotate", "createRole", "getRole", "listRoles",
               "deleteRole", "addRoleACL", "removeRoleACL"]
ADMIN_ACLS = [
    {"acltype": "publishClientSend", "topic": "$CONTROL/tokens/v1", "priority": 0, "allow": True},
    {"acltype": "subscribeLiteral", "topic": "$CONTROL/tokens/v1/response", "priority": 0, "allow": True},
    {"acltype": "subscribeLiteral", "topic": "$CONTROL/tokens/v1/events", "priority": 0, "allow": True},
]

# An empty HOME, so that no ~/.config/mosquitto_ctrl of whoever runs the
# tests adds options.
_HOME = tempfile.mkdtemp(prefix="ctrl-home-")
atexit.register(shutil.rmtree, _HOME, True)


def closed_port():
    """A port where nothing listens (for commands that must not connect)."""
    return free_port()


# ---------------------------------------------------------------- running it

@dataclass
class Result:
    args: list
    returncode: int
    stdout: str
    stderr: str      # without mosquitto_ctrl's encryption warning
    raw_stderr: str
    seconds: float

    def __str__(self):
        return (f"$ {' '.join(self.args)}\nexit status {self.returncode} after {self.seconds:.2f}s\n"
                f"--- stdout\n{self.stdout}--- stderr\n{self.raw_stderr}")


# ---------------------------------------------------------------- releases of mosquitto_ctrl

@dataclass(frozen=True)
class CtrlRelease:
    """One release's mosquitto_ctrl, and the folder of its own libmosquitto
    (None: the system's). libmosquitto 2.1 keeps the soname
    libmosquitto.so.1, so without that folder first a 2.1 mosquitto_ctrl
    silently loads Debian's 2.0.11 library."""
    version: str
    binary: str
    libdir: str = None
    source: str = None    # its source tree, when built here

    @property
    def available(self):
        return os.access(self.binary, os.X_OK) and (self.libdir is None or os.path.isdir(self.libdir))

    @property
    def skip_reason(self):
        v = self.version
        return (f"mosquitto_ctrl {v} is not built ({os.path.relpath(self.binary, REPO)} is missing). Build "
                f"Mosquitto {v} into build/mosquitto-{v}/_prefix from ../shared/vendor/mosquitto-{v}.tar.gz "
                f"as ../shared/vendor/README.md shows: tar -xzf ... -C build/; cmake -S build/mosquitto-{v} "
                f"-B build/mosquitto-{v}/_build -DCMAKE_INSTALL_PREFIX=$PWD/build/mosquitto-{v}/_prefix "
                f"-DWITH_DOCS=OFF -DWITH_TESTS=OFF -DWITH_TLS=ON; cmake --build ...; cmake --install ...")


def built_release(version):
    """A release built from its source archive into build/mosquitto-<version>/_prefix."""
    source = os.path.join(BUILD, f"mosquitto-{version}")
    prefix = os.path.join(source, "_prefix")
    return CtrlRelease(version, os.path.join(prefix, "bin", "mosquitto_ctrl"), os.path.join(prefix, "lib"), source)


DEBIAN_CTRL = CtrlRelease("2.0.11", MOSQUITTO_CTRL)
CTRL_RELEASES = [DEBIAN_CTRL, built_release("2.0.22"), built_release("2.1.2")]
# The mosquitto_ctrl of the release under test (MOSQUITTO_PREFIX,
# tokens_helpers.py): what run_ctrl uses when given no release.
DEFAULT_CTRL = DEBIAN_CTRL if tokens_helpers.DEBIAN else CtrlRelease(
    tokens_helpers.broker_version_text(), tokens_helpers.MOSQUITTO_CTRL, tokens_helpers.MOSQUITTO_LIBDIR,
    os.path.dirname(tokens_helpers.MOSQUITTO_PREFIX))


def ctrl_env(libdir=BUILD, extra=None, release=None):
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME", "LD_PRELOAD")}
    env["LD_LIBRARY_PATH"] = os.path.abspath(libdir)
    release = release or DEFAULT_CTRL
    if release.libdir is not None:
        env["LD_LIBRARY_PATH"] = os.path.abspath(release.libdir) + ":" + env["LD_LIBRARY_PATH"]
    env["HOME"] = _HOME
    env.update(extra or {})
    return env


def run_ctrl(*args, port=None, username=None, password=None, libdir=BUILD, env=None, timeout=15, cwd=None,
             wrapper=(), release=None):
    """[wrapper...] mosquitto_ctrl [-h 127.0.0.1 -p port] [-u username] [-P password] tokens args...
    with Debian's mosquitto_ctrl, or release's (its libmosquitto first in
    LD_LIBRARY_PATH, unless env is given)."""
    command = list(wrapper) + [(release or DEFAULT_CTRL).binary]
    if port is not None:
        command += ["-h", "127.0.0.1", "-p", str(port)]
    if username is not None:
        command += ["-u", username]
    if password is not None:
        command += ["-P", password]
    command += ["tokens"] + [str(a) for a in args]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=env or ctrl_env(libdir, release=release), stdin=subprocess.DEVNULL, cwd=cwd)
    return Result(command, done.returncode, done.stdout, ENCRYPTION_WARNING.sub("", done.stderr),
                  done.stderr, time.monotonic() - started)


def expect_ok(result):
    """Exit 0, no error message."""
    assert result.returncode == 0, str(result)
    assert "Error" not in result.stderr, str(result)
    return result


def expect_error(result, message, status=1):
    """Exit `status`, `message` on stderr (a line starting with it), nothing
    (no token above all) on stdout."""
    assert result.returncode == status, str(result)
    assert message in result.stderr, str(result)
    assert result.stdout == "", str(result)
    assert not TOKEN_IN_TEXT.search(result.stderr), str(result)
    return result


def expect_usage_error(result, message):
    return expect_error(result, message, status=2)


# ---------------------------------------------------------------- reading output

def fields(text):
    """'Key:   value' lines (get, create, init) as a dict."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Z][A-Za-z ]*):\s+(\S.*)$", line)
        if match:
            found.setdefault(match.group(1), match.group(2))
    return found


def the_token(text):
    """The one secret in the output, on its own indented line; it must
    appear exactly once."""
    tokens = TOKEN_IN_TEXT.findall(text)
    assert len(tokens) == 1, f"expected the token printed exactly once:\n{text}"
    token = tokens[0]
    assert re.search(rf"^    {re.escape(token)}$", text, re.M), text
    check_token_format(token)
    return token


def table(text):
    """The `list` table: rows as dicts keyed by COLUMNS (and "Client id"
    when the table has that column), and the footer line. Cells are cut at
    the header's column positions (names may hold single spaces); every
    column but the last is padded, and no line has trailing blanks."""
    lines = text.splitlines()
    assert lines, "no output"
    header = lines[0]
    columns = re.split(r" {2,}", header)
    assert columns in (COLUMNS, COLUMNS + [CLIENT_ID_COLUMN]), f"table header: {header!r}"
    starts = [header.index(c) for c in columns]
    rows = []
    for line in lines[1:-1]:
        assert line == line.rstrip(), f"trailing blanks: {line!r}"
        cells = [line[starts[i]:(starts[i + 1] if i + 1 < len(starts) else None)].strip()
                 for i in range(len(starts))]
        for i in range(1, len(starts)):
            if i < len(COLUMNS) or len(line) > starts[i]:
                assert line[starts[i] - 2:starts[i]] == "  ", f"misaligned row {line!r} under {header!r}"
        rows.append(dict(zip(columns, cells)))
    return rows, lines[-1]


def role_lines(text):
    """getRole / listRoles output: {rolename: [(allow, acltype, topic, priority), ...]}."""
    roles = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"^Role: (.*)$", line)
        if match:
            current = roles.setdefault(match.group(1), [])
            continue
        match = re.match(r"^    (allow|deny)\s+(\S+)\s+(\S+)\s+priority (-?\d+)$", line)
        if match:
            assert current is not None, text
            current.append((match.group(1), match.group(2), match.group(3), int(match.group(4))))
    return roles


def seconds_between(earlier, later):
    return (parse_time(later) - parse_time(earlier)).total_seconds()


# ---------------------------------------------------------------- init

@dataclass
class Init:
    result: Result
    path: str
    token: str
    hash: str


def init_state(path, name="admin", *validity, libdir=BUILD, release=None):
    """`tokens init`; must succeed. Returns the token it printed and its hash."""
    result = expect_ok(run_ctrl("init", str(path), name, *validity, libdir=libdir, release=release))
    token = the_token(result.stdout)
    printed = fields(result.stdout)
    assert printed["Hash"] == sha256_hex(token), str(result)
    return Init(result, str(path), token, printed["Hash"])


# ---------------------------------------------------------------- broker

class TokenOnlyBroker(Broker):
    """The test broker as an operator would run it with this plugin:
    allow_anonymous false and an acl_file that grants nothing, so only
    token logins get in and only their roles give rights."""

    def _write_config(self):
        super()._write_config()
        with open(self.conf_path) as f:
            conf = f.read()
        conf = re.sub(r"^allow_anonymous .*$", "allow_anonymous false", conf, flags=re.M)
        with open(self.conf_path, "w") as f:
            f.write(conf)
        with open(self.acl_path, "w") as f:
            f.write("# nothing: token clients get their rights from their role\n")

    def check_config(self):
        with open(self.conf_path) as f:
            conf = f.read()
        assert re.search(r"^allow_anonymous false$", conf, re.M), conf
        assert f"plugin {self.plugin}\n" in conf, conf


class Admin:
    """A running token-only broker, and the admin token `tokens init` made
    for it; `ctrl(...)` runs mosquitto_ctrl logged in with that token."""

    def __init__(self, broker, init, name, libdir=BUILD, release=None):
        self.broker = broker
        self.libdir = libdir
        self.release = release
        self.init = init
        self.name = name
        self.token = init.token
        self.hash = init.hash

    @property
    def port(self):
        return self.broker.port

    def ctrl(self, *args, username=None, password=None, **kwargs):
        return run_ctrl(*args, port=self.broker.port,
                        username=self.name if username is None else username,
                        password=self.token if password is None else password,
                        **dict({"libdir": self.libdir, "release": self.release}, **kwargs))

    def ok(self, *args, **kwargs):
        return expect_ok(self.ctrl(*args, **kwargs))

    def create(self, name, role, valid_until="1d"):
        """Creates a token; returns (token, hash)."""
        result = self.ok("create", name, role, valid_until)
        token = the_token(result.stdout)
        return token, fields(result.stdout)["Hash"]

    def role(self, rolename, *acls):
        """A role with ACLs given as (acltype, topic, 'allow'|'deny'[, priority])."""
        assert self.ok("createRole", rolename).stdout == "OK\n"
        for acl in acls:
            assert self.ok("addRoleACL", rolename, *acl).stdout == "OK\n"


def start_admin_broker(directory, admin_name="admin", edit_state=None, plugin=None, libdir=BUILD, release=None):
    """init a state file in `directory`, let `edit_state(dict)` change it
    (written back as an operator's restored backup would be), start a
    token-only broker on it. `release`: the mosquitto_ctrl that runs init
    and every later command (Debian's when None)."""
    os.makedirs(directory, exist_ok=True)
    state = os.path.join(directory, "tokens.json")
    init = init_state(state, admin_name, libdir=libdir, release=release)
    if edit_state is not None:
        with open(state) as f:
            document = json.load(f)
        edit_state(document)
        with open(state, "w") as f:
            json.dump(document, f, indent=1)
        os.chmod(state, 0o600)
    kwargs = {"plugin": plugin} if plugin else {}
    broker = TokenOnlyBroker(os.path.join(directory, "broker"), state_file=state, **kwargs)
    broker.check_config()
    broker.start()
    return Admin(broker, init, admin_name, libdir, release)


def finish_broker(broker):
    """Stops a broker; one that died by itself during the test fails it."""
    crashed = broker.process is not None and broker.process.poll() is not None
    if crashed:
        message = f"mosquitto exited by itself with status {broker.process.returncode}:\n{broker.log[-4000:]}"
        broker._reaped(broker.process.returncode)
        pytest.fail(message, pytrace=False)
    broker.stop()


@pytest.fixture
def admin_factory(tmp_path):
    """make(edit_state=None, admin_name='admin', plugin=None, libdir=BUILD, release=None) -> Admin,
    stopped after the test."""
    made = []

    def make(**kwargs):
        admin = start_admin_broker(os.path.join(str(tmp_path), f"setup{len(made)}"), **kwargs)
        made.append(admin)
        return admin

    yield make
    for admin in made:
        finish_broker(admin.broker)


@pytest.fixture
def admin(admin_factory):
    return admin_factory()


# ---------------------------------------------------------------- MQTT command-line clients

class Processes:
    """mosquitto_sub processes started by a test, ended (by their own
    Popen object) after it."""

    def __init__(self):
        self.started = []

    def subscriber(self, port, username, password, topic, client_id, count=None, extra=()):
        command = [MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(port), "-V", "5", "-q", "1",
                   "-i", client_id, "-u", username, "-P", password, "-t", topic, "-v"]
        if count is not None:
            command += ["-C", str(count)]
        command += list(extra)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, text=True, env=mosquitto_env())
        self.started.append(process)
        return process

    def finish(self):
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.communicate()


@pytest.fixture
def processes():
    started = Processes()
    yield started
    started.finish()


def wait_subscribed(broker, client_id, timeout=TIMEOUT):
    broker.wait_for_log(rf"Sending SUBACK to {re.escape(client_id)}\b", timeout)


def publish(port, username, password, topic, message, qos=1):
    """mosquitto_pub over MQTT 5 (a refused QoS 1 publish shows as a
    warning on stderr, exit status 0)."""
    return subprocess.run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(port), "-V", "5",
                           "-q", str(qos), "-u", username, "-P", password, "-t", topic,
                           "-m", message], capture_output=True, text=True, timeout=TIMEOUT * 2,
                          stdin=subprocess.DEVNULL, env=mosquitto_env())


def gcc_multiarch():
    gcc = shutil.which("gcc")
    assert gcc, "gcc is needed to know the multiarch folder"
    return subprocess.run([gcc, "-print-multiarch"], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def broker_without_plugin(tmp_path):
    """A plain mosquitto of the release under test that lets anyone publish
    anything: nothing there serves the control topic. Its port."""
    port = free_port()
    conf = tmp_path / "plain.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    with open(tmp_path / "plain.log", "wb") as log:
        process = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=log, env=mosquitto_env(),
                                   stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_open(port), timeout=10, message="the plain broker listening")
        yield port
    finally:
        process.terminate()
        process.wait(10)
