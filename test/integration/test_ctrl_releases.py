"""
One build of the mosquitto_ctrl module under every mosquitto_ctrl release
it supports (issue 15). mosquitto_ctrl hands the module a structure whose
layout changed in 2.0.21 and again in 2.1 (ctrl/ctrl_layout.c); the module
picks the layout from the libmosquitto version of the mosquitto_ctrl it is
loaded into.

Each test runs with Debian's /usr/bin/mosquitto_ctrl (2.0.11) and with the
2.0.22 and 2.1.2 builds in build/mosquitto-<version>/_prefix (skipped, with
how to build them, when they are missing), against a token-only broker
(Debian's mosquitto with the plugin):

- the main commands end to end: init, createRole, addRoleACL, getRole,
  listRoles, create (and the new token logging in), list, get by name and by
  hash, rotate, revoke, removeRoleACL, deleteRole, an error response, no
  reply at all, usage errors, and 2.1's -f (refused: nothing would be sent);
- `list` over the module's own connection, which reads the connection
  options out of the structure: with 2.0.22 and 2.1.2 their mosquitto_ctrl
  is linked again with -rdynamic (upstream's CMake build does not export
  client_opts_set and client_connect, which that connection needs);
- a release whose layout the module does not know (2.2, 3.0, a later 2.0.x
  or 2.1.x, 1.x): an LD_PRELOAD shim (fake_lib_version.c) makes
  mosquitto_lib_version report it, so each real mosquitto_ctrl shows the
  module an unknown version. The module must then refuse with one clear
  message and exit status 1 before it touches the structure: no crash, no
  connection, nothing on stdout. init and help, which do not use the
  structure, still work;
- the offsets the module uses, checked against the real header of each
  built release (ctrl_layout_check.c, compiled against
  build/mosquitto-<version>/apps/mosquitto_ctrl/mosquitto_ctrl.h).
"""
import json
import os
import re
import subprocess

import pytest

from ctrl_helpers import (  # noqa: F401  (fixtures)
    CTRL_RELEASES, TOKEN_IN_TEXT, CtrlRelease, admin_factory, closed_port, ctrl_env, expect_error,
    expect_ok, expect_usage_error, fields, init_state, processes, publish, role_lines, run_ctrl, table,
    the_token, wait_subscribed,
)
from tokens_helpers import REPO, sha256_hex

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(params=CTRL_RELEASES, ids=[f"mosquitto_ctrl-{r.version}" for r in CTRL_RELEASES])
def release(request):
    if not request.param.available:
        pytest.skip(request.param.skip_reason)
    return request.param


@pytest.fixture
def admin(admin_factory, release):
    """A token-only broker whose state `tokens init` of this release made."""
    return admin_factory(release=release)


def assert_not_a_crash(result):
    """Killed by a signal shows as a negative status; 139-style statuses
    come from a shell, which is not used here."""
    assert result.returncode >= 0, f"mosquitto_ctrl died of signal {-result.returncode}:\n{result}"


# ================================================================ the main commands, per release

def test_init_then_help(tmp_path, release):
    made = init_state(tmp_path / "tokens.json", "ops", "30d", release=release)
    assert 'admin token "ops"' in made.result.stdout
    assert stat_mode(tmp_path / "tokens.json") == 0o600
    assert [t["name"] for t in json.load(open(tmp_path / "tokens.json"))["tokens"]] == ["ops"]
    shown = expect_ok(run_ctrl("help", release=release))
    assert "mosquitto_ctrl tokens init <state-file>" in shown.stdout


def stat_mode(path):
    return os.stat(path).st_mode & 0o777


def test_roles_tokens_and_revoke(admin, processes):
    # role commands
    assert admin.ok("createRole", "sensors").stdout == "OK\n"
    assert admin.ok("addRoleACL", "sensors", "publishClientSend", "sensors/#", "allow").stdout == "OK\n"
    assert admin.ok("addRoleACL", "sensors", "subscribePattern", "sensors/#", "allow", "5").stdout == "OK\n"
    assert admin.ok("addRoleACL", "sensors", "publishClientSend", "sensors/secret", "deny", "9").stdout == "OK\n"
    expected = {("allow", "publishClientSend", "sensors/#", 0), ("allow", "subscribePattern", "sensors/#", 5),
                ("deny", "publishClientSend", "sensors/secret", 9)}
    assert set(role_lines(admin.ok("getRole", "sensors").stdout)["sensors"]) == expected
    listed = admin.ok("listRoles")
    assert set(role_lines(listed.stdout)) == {"admin", "sensors"} and listed.stdout.endswith("2 roles.\n")
    assert admin.ok("removeRoleACL", "sensors", "publishClientSend", "sensors/secret").stdout == "OK\n"

    # create: the token is printed once and works per its role
    created = admin.ok("create", "thermo-1", "sensors", "30d")
    token = the_token(created.stdout)
    shown = fields(created.stdout)
    assert (shown["Name"], shown["Role"], shown["Requested by"]) == ("thermo-1", "sensors", "admin")
    assert shown["Hash"] == sha256_hex(token)
    sub = processes.subscriber(admin.port, "thermo-1", token, "sensors/#", "thermo-sub", count=1, extra=["-W", "10"])
    wait_subscribed(admin.broker, "thermo-sub")
    assert "Not authorized" in publish(admin.port, "thermo-1", token, "other/x", "no").stderr
    assert publish(admin.port, "thermo-1", token, "sensors/t", "21.5").stderr == ""
    out, _ = sub.communicate(timeout=10)
    assert out == "sensors/t 21.5\n"

    # list (the module's own connection where mosquitto_ctrl exports
    # client_opts_set and client_connect, else one request)
    rows, footer = table(admin.ok("list").stdout)
    assert [(r["Name"], r["Role"], r["Status"]) for r in rows] == [("admin", "admin", "Valid"),
                                                                   ("thermo-1", "sensors", "Valid")]
    assert footer == "2 of 2 tokens shown. Times are UTC."
    rows, footer = table(admin.ok("list", "--count", "1", "--offset", "1").stdout)
    assert [r["Name"] for r in rows] == ["thermo-1"] and footer.startswith("1 of 2 tokens shown.")
    rows, footer = table(admin.ok("list", "--role", "sensors", "--name-prefix", "thermo").stdout)
    assert [r["Name"] for r in rows] == ["thermo-1"] and footer.startswith("1 of 1 token shown.")
    rows, footer = table(admin.ok("list", "--role", "sensors", "--name-prefix", "adm").stdout)
    assert rows == [] and footer.startswith("0 of 0 tokens shown.")

    # get, by name and by hash
    by_name = admin.ok("get", "thermo-1")
    assert by_name.stdout == admin.ok("get", shown["Hash"]).stdout
    assert fields(by_name.stdout)["Last used"] != "never"
    assert not TOKEN_IN_TEXT.search(by_name.stdout)

    # rotate
    rotated = admin.ok("rotate", "thermo-1", "10d")
    new_token = the_token(rotated.stdout)
    assert new_token != token

    # revoke closes the token's connection
    sub = processes.subscriber(admin.port, "thermo-1", new_token, "sensors/#", "thermo-2")
    wait_subscribed(admin.broker, "thermo-2")
    revoked = admin.ok("revoke", "thermo-1")
    assert re.match(r"^Revoked token thermo-1 \(hash [0-9a-f]{64}\); 1 connection closed\.\n$", revoked.stdout), \
        str(revoked)
    sub.communicate(timeout=10)
    expect_error(admin.ctrl("get", "thermo-1"), "Error: Token not found (notFound)")
    assert "Not authorized" in publish(admin.port, "thermo-1", new_token, "sensors/x", "m").stderr

    # deleteRole, once unused
    assert admin.ok("deleteRole", "sensors").stdout == "OK\n"
    expect_error(admin.ctrl("getRole", "sensors"), "Error: Role not found (notFound)")
    assert [r["rolename"] for r in admin.broker.read_state()["roles"]] == ["admin"]


def test_error_responses_and_no_reply(admin):
    expect_error(admin.ctrl("create", "t", "nobody", "1d"), "Error: Role 'nobody' does not exist (invalid)")
    expect_error(admin.ctrl("createRole", "admin"), "Error: Role already exists (exists)")
    wrong = admin.ctrl("listRoles", password="wrong")
    assert_not_a_crash(wrong)
    assert wrong.returncode == 1 and "Error" in wrong.stderr and wrong.stdout == "", str(wrong)


@pytest.mark.parametrize("command", [["get", "x"], ["list"], ["createRole", "r"]])
def test_no_broker(release, command):
    result = run_ctrl(*command, port=closed_port(), username="admin", password="x", release=release)
    assert_not_a_crash(result)
    assert result.returncode == 1, str(result)
    assert "Error: no reply" in result.stderr, str(result)
    assert result.stdout == ""


def test_usage_errors_send_nothing(release):
    expect_usage_error(run_ctrl("create", "t", "r", "tomorrow", port=closed_port(), release=release),
                       'Error: validUntil "tomorrow" is neither a duration')
    expect_usage_error(run_ctrl("get", port=closed_port(), release=release),
                       "Usage: mosquitto_ctrl [options] tokens get ")
    expect_usage_error(run_ctrl("frobnicate", port=closed_port(), release=release),
                       'Error: unknown tokens command "frobnicate"')


def test_a_data_file_is_refused_on_2_1(release):
    """mosquitto_ctrl 2.1's -f makes it skip the request a module hands
    back; the module says so instead of waiting for a reply that cannot come."""
    if not release.version.startswith("2.1."):
        pytest.skip("-f exists from mosquitto_ctrl 2.1")
    binary = release.binary
    done = subprocess.run([binary, "-p", str(closed_port()), "-f", "/nonexistent/x.json", "tokens", "get", "x"],
                          capture_output=True, text=True, timeout=15, env=ctrl_env(release=release),
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done
    assert "-f" in done.stderr and "tokens init" in done.stderr, done.stderr
    assert done.stdout == ""


# ================================================================ the module's own connection, per release
# `list` connects by itself through mosquitto_ctrl's client_opts_set and
# client_connect when mosquitto_ctrl exports them (Debian's does; upstream's
# CMake builds do not), reading the options (client id, host, port, qos,
# protocol version, TLS settings) from the structure. To run that path
# with the 2.0.22 and 2.1.2 layouts too, their mosquitto_ctrl is linked
# again from its CMake build tree with -rdynamic, into a temporary folder.

def relinked(release, directory):
    build = os.path.join(release.source or "", "_build", "apps", "mosquitto_ctrl")
    link = os.path.join(build, "CMakeFiles", "mosquitto_ctrl.dir", "link.txt")
    if not release.available or not os.path.exists(link):
        pytest.skip(release.skip_reason + " (and its CMake build tree, _build, kept)")
    with open(link) as f:
        command = f.read().split()
    out = os.path.join(str(directory), f"mosquitto_ctrl-{release.version}")
    command[command.index("-o") + 1] = out
    subprocess.run(command + ["-rdynamic"], cwd=build, check=True, capture_output=True)
    return CtrlRelease(release.version, out, release.libdir, release.source)


@pytest.fixture
def exporting(release, tmp_path):
    """This release's mosquitto_ctrl, exporting client_opts_set and client_connect."""
    if release.libdir is None:
        return release        # Debian's exports them
    return relinked(release, tmp_path)


def test_list_over_the_modules_own_connection(admin_factory, exporting):
    setup = admin_factory(release=exporting)
    setup.role("r")
    for i in range(3):
        setup.create(f"t{i}", "r")
    result = setup.ok("list")
    assert [r["Name"] for r in table(result.stdout)[0]] == ["admin", "t0", "t1", "t2"], str(result)
    assert "lacks client_opts_set" not in result.raw_stderr, str(result)
    # The plain-TCP warning, once, as mosquitto_ctrl itself would print it.
    assert result.raw_stderr.count("Warning: You are running mosquitto_ctrl without encryption") == 1, str(result)

    # -i, -V and -q reach the module's connection: the broker sees the
    # client id the module read; a refused MQTT 3.1.1 login is worded as
    # mosquitto_ctrl words it for 3.1.1 (the module read protocol_version).
    options = ["-V", "mqttv311", "-i", "ctrl-id-42", "-q", "0"]
    done = run_with(exporting, setup.port, options + ["-u", "admin", "-P", setup.token], "list", "--count", "2")
    assert done.returncode == 0 and "2 of 4 tokens shown." in done.stdout, done
    setup.broker.wait_for_log(r"New client connected from \S+ as ctrl-id-42 \(p[24], c1, k60, u'admin'\)")
    done = run_with(exporting, setup.port, options + ["-u", "admin", "-P", "wrong"], "list")
    assert done.returncode == 1, done
    assert "Connection error: Connection Refused: not authorised" in done.stderr, done

    # Port 8883 given: from 2.0.21 on, mosquitto_ctrl takes it for TLS and does not warn.
    done = run_with(exporting, 8883, ["-u", "a", "-P", "x"], "list")
    assert done.returncode == 1 and "127.0.0.1:8883" in done.stderr, done
    assert ("without encryption" in done.stderr) == (exporting.version == "2.0.11"), done


def run_with(release, port, options, *args):
    return subprocess.run([release.binary, "-h", "127.0.0.1", "-p", str(port), *options, "tokens", *args],
                          capture_output=True, text=True, timeout=30, env=ctrl_env(release=release),
                          stdin=subprocess.DEVNULL)


# ================================================================ a release the module does not know

@pytest.fixture(scope="module")
def fake_version_shim(tmp_path_factory):
    """fake_lib_version.c as an LD_PRELOAD library."""
    out = str(tmp_path_factory.mktemp("shim") / "fake_lib_version.so")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", out,
                    os.path.join(HERE, "fake_lib_version.c")], check=True)
    return out


def run_as_version(version, shim, release, *args, **kwargs):
    env = ctrl_env(release=release, extra={"LD_PRELOAD": shim, "FAKE_LIBMOSQUITTO_VERSION": version})
    return run_ctrl(*args, env=env, release=release, **kwargs)


UNKNOWN = ["2.2.0", "3.0.0", "2.0.23", "2.1.1", "2.1.3", "1.6.12", "0.0.0"]


@pytest.mark.parametrize("version", UNKNOWN)
def test_an_unknown_release_is_refused_clearly(fake_version_shim, release, version):
    # A command that went on to connect would end with "no reply" here.
    for command in (["get", "x"], ["list"], ["create", "t", "r", "1d"], ["createRole", "r"]):
        result = run_as_version(version, fake_version_shim, release, *command, port=closed_port(),
                                username="admin", password="x")
        assert_not_a_crash(result)
        assert result.returncode == 1, str(result)
        assert result.stdout == ""
        assert result.raw_stderr.count("Error:") == 1, str(result)
        message = result.raw_stderr
        assert f"libmosquitto {version}" in message, message
        assert "2.0.0 to 2.0.20" in message and "2.1.0" in message, message
        assert "no reply" not in message and "Warning" not in message, message


def test_an_unknown_release_connects_to_nothing(fake_version_shim, admin_factory, release):
    setup = admin_factory(release=release)
    env = ctrl_env(release=release, extra={"LD_PRELOAD": fake_version_shim, "FAKE_LIBMOSQUITTO_VERSION": "2.2.0"})
    for command in (["createRole", "ghost"], ["list"]):
        result = setup.ctrl(*command, env=env)
        assert_not_a_crash(result)
        assert result.returncode == 1 and "libmosquitto 2.2.0" in result.stderr, str(result)
    # One login in the broker's log: the getRole below, not the refused commands.
    expect_error(setup.ctrl("getRole", "ghost"), "(notFound)")
    assert setup.broker.log.count("New client connected") == 1, setup.broker.log


def test_init_and_help_work_on_an_unknown_release(fake_version_shim, release, tmp_path):
    """They never read the structure, so they do not need its layout."""
    path = tmp_path / "tokens.json"
    result = run_as_version("2.2.0", fake_version_shim, release, "init", str(path), "admin")
    assert result.returncode == 0, str(result)
    the_token(result.stdout)
    assert path.exists()
    assert run_as_version("3.0.0", fake_version_shim, release, "help").returncode == 0


def test_the_real_version_through_the_shim_changes_nothing(fake_version_shim, admin_factory, release):
    """The shim itself: reporting the library's own version, it is not
    what makes the module refuse."""
    setup = admin_factory(release=release)
    version = ".".join(map(str, library_version(release)))
    env = ctrl_env(release=release, extra={"LD_PRELOAD": fake_version_shim, "FAKE_LIBMOSQUITTO_VERSION": version})
    assert setup.ok("createRole", "real", env=env).stdout == "OK\n"
    assert "real" in role_lines(setup.ok("listRoles", env=env).stdout)


# ================================================================ the offsets against the real headers

def built_sources():
    return [r for r in CTRL_RELEASES if r.source is not None]


@pytest.mark.parametrize("built", built_sources(), ids=[f"header-{r.version}" for r in built_sources()])
def test_layout_matches_the_release_header(built, tmp_path):
    """ctrl_layout_check.c compares every offset the module uses (and the
    structure's size) with offsetof on the release's own header, built as
    the release's default build is (TLS, TLS-PSK, SOCKS)."""
    header_dir = os.path.join(built.source, "apps", "mosquitto_ctrl")
    header = os.path.join(header_dir, "mosquitto_ctrl.h")
    if not os.path.exists(header) or not built.available:
        pytest.skip(built.skip_reason)
    with open(header) as f:
        text = f.read()
    flags = ["-DWITH_TLS", "-DFINAL_WITH_TLS_PSK", "-DWITH_SOCKS"]
    if re.search(r"\bbool\s+tls_use_os_certs;", text):
        flags.append("-DHEADER_HAS_TLS_USE_OS_CERTS")
    if re.search(r"\bchar\s*\*\s*data_file;", text):
        flags.append("-DHEADER_HAS_DATA_FILE")
    binary = str(tmp_path / "check")
    subprocess.run(["gcc", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", *flags,
                    "-I", header_dir, "-I", os.path.join(built.source, "include"), "-I", "/usr/include/cjson",
                    "-I", os.path.join(REPO, "ctrl"), "-I", os.path.join(REPO, "include"),
                    "-o", binary, os.path.join(HERE, "ctrl_layout_check.c"), "-lmosquitto"], check=True)
    major, minor, revision = library_version(built)
    done = subprocess.run([binary, str(major), str(minor), str(revision)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all offsets match" in done.stdout, done.stdout


def library_version(release):
    """What mosquitto_lib_version says in this release's mosquitto_ctrl
    (2.1.1 and 2.1.2 say 2.1.0)."""
    done = subprocess.run([release.binary, "--version"], capture_output=True, text=True,
                          env=ctrl_env(release=release), stdin=subprocess.DEVNULL)
    match = re.search(r"running on libmosquitto (\d+)\.(\d+)\.(\d+)", done.stdout + done.stderr)
    assert match, done
    return tuple(int(x) for x in match.groups())
