"""
The operator's tools under valgrind's memcheck: mosquitto_ctrl with the
tokens module, and the web console daemon, used the way an operator uses
them against a real token-only broker (which itself runs normally here;
test_valgrind.py covers the plugin).

mosquitto_ctrl runs once per command, under valgrind, with its own report:
`tokens help` and `tokens init` (offline), every subcommand with a success
and with an error reply, usage errors (exit 2, nothing sent), and commands
that get no reply (nothing listening, a broker without the plugin, a client
that may not publish the request). The console starts under valgrind,
answers REST calls on every endpoint (good and bad tokens, bad bodies, 404,
405, 413, 502 once the broker is gone) and stops on SIGTERM.

Each report must hold no error (invalid access, use of uninitialised
memory, definite or indirect leak) with a frame in our code: the module,
the console, or the plugin sources both share. Memory still reachable when
mosquitto_ctrl exits is not a leak. What valgrind reports against
mosquitto_ctrl, libmosquitto or other libraries alone is a warning.
"""
import concurrent.futures
import os
import re
import threading

import pytest

from console_helpers import CONSOLE, Console
from ctrl_helpers import (  # noqa: F401  (fixtures)
    CTRL_MODULE, DEFAULT_CTRL, TOKEN_IN_TEXT, broker_without_plugin, closed_port, expect_error, expect_ok,
    expect_usage_error, fields, finish_broker, run_ctrl, start_admin_broker, the_token,
)
from tokens_helpers import FUTURE, broker_version, sha256_hex, token_checksum
from valgrind_helpers import OursIn, check_reports, skip_without_valgrind, valgrind_command

CTRL_CODE = OursIn("the mosquitto_ctrl module", [CTRL_MODULE], ["ctrl", "plugin"])
CONSOLE_CODE = OursIn("the console", [CONSOLE], ["console", "plugin"])
pytestmark = skip_without_valgrind

# Everything is 10 to 50 times slower under valgrind; these are waits for
# something that must happen, not measurements.
SLOW = 60.0
# Two valgrind processes at a time: the machine has two cores.
WORKERS = 2
NO_REPLY = "Error: no reply from the broker"


def handed_to_mosquitto_ctrl(error, ours):
    """ctrl_main hands mosquitto_ctrl the request and response topics and
    the payload, and mosquitto_ctrl frees them only once it has connected
    and subscribed: when it ends without a reply before that, they are lost
    in mosquitto_ctrl (its own dynsec module loses them the same way). A
    block lost that way was allocated by ctrl_main itself, or by
    ctrl_request_payload called from it (or list's one request, when
    mosquitto_ctrl does not export what the module's own connection needs,
    as upstream's CMake builds of 2.0.22 and 2.1.2 do not), called from
    mosquitto_ctrl's main."""
    if error.findtext("kind") != "Leak_DefinitelyLost":
        return None
    frames = list(error.find("stack").iter("frame"))
    ours_at = [i for i, frame in enumerate(frames) if ours(frame)]
    functions = [frames[i].findtext("fn") for i in ours_at]
    below = frames[ours_at[-1] + 1] if ours_at and ours_at[-1] + 1 < len(frames) else None
    if functions in (["ctrl_main"], ["ctrl_request_payload", "ctrl_main"],
                     ["list_request", "list_in_one_reply", "ctrl_run_list", "ctrl_main"]) and below is not None \
            and below.findtext("fn") == "main" \
            and os.path.realpath(below.findtext("obj") or "") == os.path.realpath(DEFAULT_CTRL.binary):
        return "handed to mosquitto_ctrl, which frees it only after subscribing; this run got no reply"
    return None


CTRL_CODE_NO_REPLY = CTRL_CODE.excusing(handed_to_mosquitto_ctrl)


# ---------------------------------------------------------------- mosquitto_ctrl

class ValgrindCtrl:
    """Runs mosquitto_ctrl under valgrind, each run with its own report,
    and reads all the reports at the end."""

    def __init__(self, directory):
        self.directory = str(directory)
        self.reports = []
        self.count = 0
        self._lock = threading.Lock()

    def _report_path(self):
        with self._lock:
            self.count += 1
            return os.path.join(self.directory, f"ctrl-{self.count}.xml")

    def run(self, *args, **kwargs):
        path = self._report_path()
        result = run_ctrl(*args, wrapper=valgrind_command(path), timeout=SLOW, **kwargs)
        # The arguments only: the password is not part of the label.
        label = f"mosquitto_ctrl tokens {' '.join(map(str, args))} (exit {result.returncode})"
        with self._lock:
            self.reports.append((label, path, CTRL_CODE_NO_REPLY if NO_REPLY in result.stderr else CTRL_CODE))
        return result

    def as_admin(self, admin, *args, **kwargs):
        """Logged in with the admin token unless username/password say otherwise."""
        kwargs.setdefault("username", admin.name)
        kwargs.setdefault("password", admin.token)
        return self.run(*args, port=admin.port, **kwargs)

    def check(self):
        check_reports(self.reports, CTRL_CODE)


def in_parallel(*calls):
    """Runs the calls (functions without arguments) WORKERS at a time;
    their results in order."""
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        return [f.result() for f in [pool.submit(call) for call in calls]]


@pytest.fixture
def vg_ctrl(tmp_path):
    return ValgrindCtrl(tmp_path)


@pytest.fixture
def admin(tmp_path):
    made = start_admin_broker(os.path.join(str(tmp_path), "setup"))
    yield made
    finish_broker(made.broker)


def expect_no_reply(result):
    assert result.returncode == 1, str(result)
    assert NO_REPLY in result.stderr, str(result)
    assert result.stdout == "", str(result)
    return result


def test_ctrl_offline_and_usage_errors(vg_ctrl, tmp_path):
    """help, init (and its refusals), and commands refused before anything
    is sent."""
    state = tmp_path / "tokens.json"
    taken = tmp_path / "taken.json"
    taken.write_text("someone's file\n")
    port = closed_port()
    bad = dict(port=port, username="admin", password="x")
    run = vg_ctrl.run
    (help_, no_words, init, init_taken, init_bad_name, init_bad_validity, bad_status, bad_count,
     bad_valid_until, bad_allow, bad_priority, missing, too_many, unknown, no_broker) = in_parallel(
        lambda: run("help"),
        lambda: run("init"),
        lambda: run("init", str(state), "ops-admin", "30d"),
        lambda: run("init", str(taken), "ops-admin"),
        lambda: run("init", str(tmp_path / "other.json"), "bad\tname"),
        lambda: run("init", str(tmp_path / "other.json"), "ops-admin", "0d"),
        lambda: run("list", "--status", "bogus", **bad),
        lambda: run("list", "--count", "abc", **bad),
        lambda: run("create", "t", "r", "tomorrow", **bad),
        lambda: run("addRoleACL", "r", "publishClientSend", "a", "maybe", **bad),
        lambda: run("addRoleACL", "r", "publishClientSend", "a", "allow", "high", **bad),
        lambda: run("get", **bad),
        lambda: run("removeRoleACL", "r", "publishClientSend", "t", "x", **bad),
        lambda: run("frobnicate", "x", **bad),
        lambda: run("list", **bad),
    )
    assert help_.returncode == 0 and "tokens init <state-file>" in help_.stdout, str(help_)
    expect_usage_error(no_words, "Usage: mosquitto_ctrl tokens init <state-file>")
    token = the_token(expect_ok(init).stdout)
    assert fields(init.stdout)["Hash"] == sha256_hex(token)
    expect_error(init_taken, "already exists")
    assert taken.read_text() == "someone's file\n"
    expect_usage_error(init_bad_name, "Error: the token name")
    expect_usage_error(init_bad_validity, "Error: validity")
    expect_usage_error(bad_status, 'Error: --status is valid, invalid or all, not "bogus"')
    expect_usage_error(bad_count, "Error: --count needs a whole number")
    expect_usage_error(bad_valid_until, 'Error: validUntil "tomorrow"')
    expect_usage_error(bad_allow, "Error: the fourth argument is allow or deny")
    expect_usage_error(bad_priority, "Error: priority must be a whole number")
    expect_usage_error(missing, "Usage: mosquitto_ctrl [options] tokens get ")
    expect_usage_error(too_many, "Usage: mosquitto_ctrl [options] tokens removeRoleACL ")
    expect_usage_error(unknown, 'Error: unknown tokens command "frobnicate"')
    expect_no_reply(no_broker)
    vg_ctrl.check()


def test_ctrl_every_subcommand_against_a_broker(vg_ctrl, admin, broker_without_plugin):
    """Every subcommand with a success reply and with an error reply, and
    requests that get no reply at all."""
    run = lambda *args, **kwargs: (lambda: vg_ctrl.as_admin(admin, *args, **kwargs))  # noqa: E731

    for result in in_parallel(run("createRole", "fleet"), run("createRole", "listener"),
                              run("createRole", "spare")):
        assert expect_ok(result).stdout == "OK\n"
    for result in in_parallel(run("addRoleACL", "fleet", "publishClientSend", "fleet/#", "allow", "3"),
                              run("addRoleACL", "fleet", "subscribePattern", "fleet/#", "deny"),
                              run("addRoleACL", "listener", "subscribeLiteral", "$CONTROL/tokens/v1/response",
                                  "allow")):
        assert expect_ok(result).stdout == "OK\n"
    (one, two, listener, role, roles, deleted) = in_parallel(
        run("create", "bot-1", "fleet", "1d"), run("create", "bot-2", "fleet", FUTURE),
        run("create", "listener-1", "listener", "2h"), run("getRole", "fleet"), run("listRoles"),
        run("deleteRole", "spare"))
    one_hash = fields(expect_ok(one).stdout)["Hash"]
    the_token(expect_ok(two).stdout)
    listener_token = the_token(expect_ok(listener).stdout)
    assert "publishClientSend" in expect_ok(role).stdout and "fleet/#" in role.stdout, str(role)
    assert "Role: listener" in expect_ok(roles).stdout, str(roles)
    assert expect_ok(deleted).stdout == "OK\n"

    (got, listed, page, rotated, removed, unpublishable, wrong_password, plain) = in_parallel(
        run("get", one_hash), run("list"), run("list", "--status", "valid", "--count", "2", "--offset", "1"),
        run("rotate", "bot-2", "2d", "--grace", "10m"),
        run("removeRoleACL", "fleet", "subscribePattern", "fleet/#"),
        run("list", username="listener-1", password=listener_token),
        run("createRole", "intruder", password="not-a-token"),
        lambda: vg_ctrl.run("listRoles", port=broker_without_plugin, username="admin", password="x"))
    assert fields(expect_ok(got).stdout)["Hash"] == one_hash
    assert "bot-1" in expect_ok(listed).stdout and "listener-1" in listed.stdout, str(listed)
    assert len(expect_ok(page).stdout.splitlines()) == 4, str(page)      # header, 2 rows, footer
    the_token(expect_ok(rotated).stdout)
    assert expect_ok(removed).stdout == "OK\n"
    expect_no_reply(unpublishable)
    assert wrong_password.returncode != 0 and wrong_password.stdout == "", str(wrong_password)
    if broker_version() >= (2, 1):
        # 2.1 answers a $CONTROL topic that no plugin registered itself
        # ({"error": "endpoint not available"}): an error, not silence.
        expect_error(plain, "Error: ")
    else:
        expect_no_reply(plain)

    revoked, *errors = in_parallel(
        run("revoke", "bot-1"),
        run("get", "ghost"), run("revoke", "ghost"), run("rotate", "ghost"),
        run("create", "bot-2", "fleet", "1d"), run("create", "bot-3", "nobody", "1d"),
        run("createRole", "fleet"), run("getRole", "ghost"), run("deleteRole", "fleet"),
        run("addRoleACL", "fleet", "publishEverything", "a/b", "allow"),
        run("removeRoleACL", "fleet", "publishClientSend", "not/there"))
    assert not TOKEN_IN_TEXT.search(expect_ok(revoked).stdout), str(revoked)
    expected = ["(notFound)", "(notFound)", "(notFound)", "(exists)", "(invalid)", "(exists)", "(notFound)",
                "(inUse)", "(invalid)", "(notFound)"]
    for result, code in zip(errors, expected):
        expect_error(result, code)
    vg_ctrl.check()


# ---------------------------------------------------------------- the console

class ValgrindConsole(Console):
    def __init__(self, directory, broker_port):
        super().__init__(directory, broker_port)
        self.report = os.path.join(self.directory, "valgrind.xml")

    def command(self):
        return valgrind_command(self.report) + super().command()


def expect_status(reply, status):
    assert reply.status == status, str(reply)
    return reply


def expect_http_error(reply, status):
    expect_status(reply, status)
    body = reply.json
    assert set(body) == {"error", "code"} and re.match(r"^[a-zA-Z]+$", body["code"]), str(reply)
    return body


def unknown_token(token):
    """Token-shaped, checksum included, and in no store."""
    first48 = token[:47] + ("B" if token[47] != "B" else "C")
    return first48 + token_checksum(first48)


def test_console(tmp_path):
    admin = start_admin_broker(os.path.join(str(tmp_path), "setup"))
    console = ValgrindConsole(os.path.join(str(tmp_path), "console"), admin.port)
    try:
        console.start(timeout=SLOW)
        use_console(console, admin)
        finish_broker(admin.broker)
        # The broker is gone: 502 for a pooled connection and a new one.
        expect_http_error(console.get("/api/tokens", token=admin.token), 502)
        expect_http_error(console.get("/api/roles", token=unknown_token(admin.token)), 502)
        code = console.stop(timeout=SLOW)
        assert code == 0, f"the console exited with status {code}:\n{console.output}"
    finally:
        console.kill()
        admin.broker.stop()
    console.check_no_secret_written()
    check_reports([("the console", console.report)], CONSOLE_CODE)


def use_console(console, admin):
    token = admin.token
    get = lambda path, **kwargs: console.get(path, **dict({"token": token}, **kwargs))  # noqa: E731
    post = lambda path, body, **kwargs: console.post(path, body, **dict({"token": token}, **kwargs))  # noqa: E731

    assert b"<html" in expect_status(console.get("/"), 200).body.lower()
    assert expect_status(get("/api/tokens"), 200).json["totalCount"] == 1
    created = expect_status(post("/api/tokens", {"name": "ci-bot", "role": "admin", "validUntil": FUTURE}),
                            201).json
    assert expect_status(get(f"/api/tokens/{created['hash']}"), 200).json["name"] == "ci-bot"
    listing = expect_status(console.get(f"/api/tokens?status=valid&count=1&offset=1&token={token}"), 200).json
    assert listing["totalCount"] == 2 and len(listing["tokens"]) == 1
    assert expect_status(get("/api/roles"), 200).json["totalCount"] == 1
    # Several at once: the daemon answers from more than one thread.
    for reply in in_parallel(*[lambda: get("/api/tokens")] * 4, lambda: get("/api/roles")):
        expect_status(reply, 200)

    expect_http_error(get("/api/tokens?count=0"), 400)
    expect_http_error(post("/api/tokens", "{not json", headers={"Content-Type": "application/json"}), 400)
    expect_http_error(post("/api/tokens", {"name": "x", "role": "admin"}), 400)
    expect_http_error(post("/api/tokens", {"name": "ci-bot", "role": "admin", "validUntil": FUTURE}), 409)
    expect_http_error(post("/api/tokens", {"name": "y", "role": "nobody", "validUntil": FUTURE}), 400)
    expect_http_error(post("/api/tokens", b"x" * (64 * 1024)), 413)
    expect_http_error(get("/api/tokens/" + "f" * 64), 404)
    expect_http_error(get("/api/tokens/not-a-hash"), 404)
    expect_http_error(get("/nope"), 404)
    expect_http_error(console.request("PUT", "/api/tokens", token=token), 405)
    expect_http_error(console.get("/api/tokens"), 401)
    expect_http_error(get("/api/tokens", token="not-a-token"), 401)
    expect_http_error(get("/api/roles", token=unknown_token(token)), 401)
    expect_http_error(get("/api/roles", token=created["token"][:-1] + "x"), 401)
    # The role endpoints, a name with an escaped '/', the rotation and the filters.
    role_path = "/api/roles/team%2Fa"
    expect_status(post("/api/roles", {"rolename": "team/a", "acls": [{"acltype": "subscribeLiteral", "topic": "x",
                                                                        "allow": True}]}), 201)
    assert expect_status(get(role_path), 200).json["rolename"] == "team/a"
    expect_status(post(role_path + "/acls", {"acltype": "subscribePattern", "topic": "a/#", "allow": True}), 201)
    expect_status(console.request("DELETE", role_path + "/acls", token=token,
                                  body={"acltype": "subscribePattern", "topic": "a/#"}), 200)
    expect_http_error(post("/api/roles", {"rolename": "team/a"}), 409)
    expect_http_error(post("/api/roles", b'{"rolename": "b"} trailing'), 400)
    expect_http_error(get("/api/roles/%zz"), 400)
    expect_http_error(get("/api/roles/nobody"), 404)
    expect_http_error(console.request("PUT", role_path, token=token), 405)
    expect_status(console.delete(role_path, token=token), 200)
    listing = expect_status(get("/api/tokens?role=admin&namePrefix=ci-"), 200).json
    assert [t["name"] for t in listing["tokens"]] == ["ci-bot"] and listing["tokens"][0]["issueDate"]
    rotated = expect_status(post(f"/api/tokens/{created['hash']}/rotate", {"graceSeconds": 60}), 201).json
    expect_http_error(post("/api/tokens/" + "f" * 64 + "/rotate", None), 404)
    expect_http_error(post(f"/api/tokens/{rotated['hash']}/rotate", b"[1]"), 400)
    created = dict(rotated)

    admin.role("listener", ("subscribeLiteral", "$CONTROL/tokens/v1/response", "allow"))
    listener_token, _ = admin.create("listener-1", "listener")
    expect_http_error(get("/api/tokens", token=listener_token), 403)

    revoked = expect_status(console.delete(f"/api/tokens/{created['hash']}", token=token), 200).json
    assert revoked["name"] == "ci-bot"
    expect_http_error(console.delete(f"/api/tokens/{created['hash']}", token=token), 404)
    expect_http_error(get("/api/roles", token=created["token"]), 401)
