"""
The mosquitto_ctrl module (SPEC section 7), end to end: the real
/usr/bin/mosquitto_ctrl loads build/mosquitto_ctrl_tokens.so through
LD_LIBRARY_PATH and talks to a real broker that only token logins get into
(allow_anonymous false, an acl_file that grants nothing). Every test checks
what an operator sees: the exit status, stdout and stderr; and, where a
command changes something, that the change is real (the state file, a
token that logs in, a connection that is closed).

Exit statuses: 0 done, 2 usage errors (nothing is sent), 1 an error
response from the plugin or no reply at all.
"""
import json
import os
import re
import stat
import time

import pytest

from ctrl_helpers import (  # noqa: F401  (fixtures)
    ADMIN_ACLS, SUBCOMMANDS, TOKEN_IN_TEXT, admin, admin_factory, broker_without_plugin, closed_port,
    expect_error, expect_ok, expect_usage_error, fields, init_state, processes, publish,
    role_lines, run_ctrl, seconds_between, table, the_token, wait_subscribed,
)
from tokens_helpers import HASH_RE, broker_version, kicked_log_re, parse_time, sha256_hex, token_checksum

DAY = 86400


def read_json(path):
    with open(path) as f:
        return json.load(f)


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


# ================================================================ init (offline)

def test_init_creates_the_state_file_and_prints_the_token_once(tmp_path):
    path = tmp_path / "tokens.json"
    before = time.time()
    result = expect_ok(run_ctrl("init", str(path), "ops-admin"))
    after = time.time()

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    state = read_json(path)
    assert state["version"] == 1
    assert state["roles"] == [{"rolename": "admin", "acls": ADMIN_ACLS}]
    assert len(state["tokens"]) == 1
    stored = state["tokens"][0]
    assert set(stored) == {"name", "role", "requestedBy", "issuedAt", "validUntil", "lastUsed", "hash"}
    assert stored["name"] == "ops-admin"
    assert stored["role"] == "admin"
    assert stored["requestedBy"] == "init"
    assert stored["lastUsed"] is None
    assert HASH_RE.match(stored["hash"])
    assert before - 1 <= parse_time(stored["issuedAt"]).timestamp() <= after + 1
    assert seconds_between(stored["issuedAt"], stored["validUntil"]) == 365 * DAY

    # The secret: printed once, on stdout only, 56 characters, its hash the stored one.
    token = the_token(result.stdout)
    assert len(token) == 56 and token.startswith("mqtk_")
    assert sha256_hex(token) == stored["hash"]
    assert token not in result.raw_stderr
    assert token not in file_bytes(path).decode()
    printed = fields(result.stdout)
    assert printed["Hash"] == stored["hash"]
    assert printed["Valid until"] == stored["validUntil"]
    assert "shown only this once" in result.stdout
    assert result.stderr == ""
    # Nothing else is left beside it (no temporary file, no journal).
    assert os.listdir(tmp_path) == ["tokens.json"]


@pytest.mark.parametrize("validity, seconds", [("30d", 30 * DAY), ("12h", 12 * 3600), ("2w", 14 * DAY)])
def test_init_with_a_relative_validity(tmp_path, validity, seconds):
    path = tmp_path / "tokens.json"
    made = init_state(path, "admin", validity)
    stored = read_json(path)["tokens"][0]
    assert seconds_between(stored["issuedAt"], stored["validUntil"]) == seconds
    assert fields(made.result.stdout)["Valid until"] == stored["validUntil"]


def test_init_with_an_rfc3339_validity(tmp_path):
    path = tmp_path / "tokens.json"
    init_state(path, "admin", "2031-06-01T12:00:00+02:00")
    assert read_json(path)["tokens"][0]["validUntil"] == "2031-06-01T10:00:00Z"


def test_init_accepts_a_30_character_unicode_name(tmp_path):
    path = tmp_path / "tokens.json"
    name = "é" * 29 + "x"
    init_state(path, name)
    assert read_json(path)["tokens"][0]["name"] == name


@pytest.mark.parametrize("second_name", ["admin", "other-admin"])
def test_init_never_overwrites_a_state_file(tmp_path, second_name):
    path = tmp_path / "tokens.json"
    first = init_state(path, "admin")
    before = file_bytes(path)
    mode = os.stat(path).st_mode

    result = run_ctrl("init", str(path), second_name)
    assert result.returncode != 0, str(result)
    assert "already exists" in result.stderr and str(path) in result.stderr, str(result)
    assert not TOKEN_IN_TEXT.search(result.stdout + result.raw_stderr), str(result)
    assert file_bytes(path) == before
    assert os.stat(path).st_mode == mode
    assert sha256_hex(first.token) == read_json(path)["tokens"][0]["hash"]


def test_init_never_overwrites_any_existing_file(tmp_path):
    path = tmp_path / "tokens.json"
    path.write_bytes(b"not a state file, but someone's\n")
    os.chmod(path, 0o644)
    result = run_ctrl("init", str(path), "admin")
    assert result.returncode != 0, str(result)
    assert "already exists" in result.stderr, str(result)
    assert path.read_bytes() == b"not a state file, but someone's\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


@pytest.mark.parametrize("name", ["", "x" * 31, "tab\tname", "new\nline", " leading", "trailing ", "del\x7f",
                                  "c1\u0085", "bad\udcffutf8"],
                         ids=["empty", "31-chars", "tab", "newline", "leading-space", "trailing-space", "DEL",
                              "C1", "invalid-utf8"])
def test_init_refuses_a_bad_name(tmp_path, name):
    path = tmp_path / "tokens.json"
    expect_usage_error(run_ctrl("init", str(path), name), "Error: the token name")
    assert not path.exists()


@pytest.mark.parametrize("validity", ["0d", "-5d", "30", "30x", "d", "soon", "2020-01-01T00:00:00Z",
                                      "2031-02-30T00:00:00Z", "1.5d", ""])
def test_init_refuses_a_bad_validity(tmp_path, validity):
    path = tmp_path / "tokens.json"
    expect_usage_error(run_ctrl("init", str(path), "admin", validity), "Error: validity")
    assert not path.exists()


@pytest.mark.parametrize("args", [[], ["only-a-path"], ["p", "name", "30d", "extra"]],
                         ids=["no-args", "one-arg", "four-args"])
def test_init_usage(tmp_path, args):
    result = run_ctrl("init", *args, cwd=tmp_path)
    expect_usage_error(result, "Usage: mosquitto_ctrl tokens init <state-file> <admin-token-name> [validity]")
    assert os.listdir(tmp_path) == []


def test_init_in_a_missing_folder(tmp_path):
    path = tmp_path / "no-such-folder" / "tokens.json"
    expect_error(run_ctrl("init", str(path), "admin"), "Error: cannot create")
    assert not path.parent.exists()


# ================================================================ against a broker

def test_the_admin_token_lists_itself(admin):
    result = admin.ok("list")
    rows, footer = table(result.stdout)
    state = admin.broker.read_state()["tokens"][0]
    assert rows == [{
        "Name": "admin", "Role": "admin", "Requested by": "init",
        "Issue date": state["issuedAt"], "Valid until": state["validUntil"],
        "Last used": rows[0]["Last used"], "Hash": admin.hash[:12], "Status": "Valid",
    }]
    # This very command logged in with the token.
    assert abs(parse_time(rows[0]["Last used"]).timestamp() - time.time()) < 60
    assert footer == "1 of 1 token shown. Times are UTC."
    assert result.stderr == ""


def test_create_prints_the_token_once_and_it_works_per_its_role(admin, processes):
    admin.role("sensors", ("publishClientSend", "sensors/#", "allow"),
               ("subscribePattern", "sensors/#", "allow"))
    before = time.time()
    result = admin.ok("create", "thermo-1", "sensors", "30d")
    token = the_token(result.stdout)
    assert token not in result.raw_stderr
    assert "shown only this once" in result.stdout
    shown = fields(result.stdout)
    assert shown["Name"] == "thermo-1"
    assert shown["Role"] == "sensors"
    assert shown["Requested by"] == "admin"
    assert shown["Last used"] == "never"
    assert shown["Status"] == "Valid"
    assert shown["Hash"] == sha256_hex(token)
    assert abs(parse_time(shown["Issue date"]).timestamp() - before) < 5
    assert seconds_between(shown["Issue date"], shown["Valid until"]) == pytest.approx(30 * DAY, abs=60)

    # Stored as its hash only, with the requester.
    stored = [t for t in admin.broker.read_state()["tokens"] if t["name"] == "thermo-1"]
    assert [(t["hash"], t["role"], t["requestedBy"]) for t in stored] == [(shown["Hash"], "sensors", "admin")]
    assert token not in admin.broker.state_bytes().decode()

    # The token logs in and may do what its role allows, and nothing else.
    sub = processes.subscriber(admin.port, "thermo-1", token, "sensors/#", "thermo-sub", count=1,
                               extra=["-W", "10"])
    wait_subscribed(admin.broker, "thermo-sub")
    refused = publish(admin.port, "thermo-1", token, "other/topic", "nope")
    assert "Not authorized" in refused.stderr, refused
    sent = publish(admin.port, "thermo-1", token, "sensors/temp", "21.5")
    assert sent.returncode == 0 and sent.stderr == "", sent
    out, err = sub.communicate(timeout=10)
    assert sub.returncode == 0, err
    assert out == "sensors/temp 21.5\n"
    other = processes.subscriber(admin.port, "thermo-1", token, "other/#", "thermo-other", extra=["-W", "3"])
    _, err = other.communicate(timeout=10)
    assert "All subscription requests were denied" in err

    # Using it shows in get, and the secret never reached the broker's log.
    assert fields(admin.ok("get", "thermo-1").stdout)["Last used"] != "never"
    assert token not in admin.broker.log
    assert admin.token not in admin.broker.log


@pytest.mark.parametrize("validity, seconds", [("12h", 12 * 3600), ("30d", 30 * DAY), ("2w", 14 * DAY),
                                               ("45m", 45 * 60), ("90s", 90)])
def test_create_with_a_relative_validity(admin, validity, seconds):
    admin.role("r")
    before = time.time()
    shown = fields(admin.ok("create", "rel", "r", validity).stdout)
    after = time.time()
    until = parse_time(shown["Valid until"]).timestamp()
    assert before + seconds - 60 <= until <= after + seconds + 60, shown
    assert seconds_between(shown["Issue date"], shown["Valid until"]) == pytest.approx(seconds, abs=60)
    assert fields(admin.ok("get", "rel").stdout)["Valid until"] == shown["Valid until"]


@pytest.mark.parametrize("given, expected", [
    ("2031-06-01T12:00:00+02:00", "2031-06-01T10:00:00Z"),
    ("2031-06-01T10:00:00-05:30", "2031-06-01T15:30:00Z"),
    ("2031-06-01T10:00:00Z", "2031-06-01T10:00:00Z"),
    ("2031-06-01T10:00:00.75Z", "2031-06-01T10:00:00Z"),
])
def test_create_with_an_rfc3339_time(admin, given, expected):
    admin.role("r")
    shown = fields(admin.ok("create", "abs", "r", given).stdout)
    assert shown["Valid until"] == expected
    assert [t["validUntil"] for t in admin.broker.read_state()["tokens"] if t["name"] == "abs"] == [expected]


EXPIRED = {"name": "old", "role": "admin", "requestedBy": "init", "issuedAt": "2020-01-01T00:00:00Z",
           "validUntil": "2021-01-01T00:00:00Z", "lastUsed": None, "hash": sha256_hex("old")}


@pytest.fixture
def four_tokens(admin_factory):
    """old (expired, issued 2020), admin, t1, t2: listed in that order."""
    setup = admin_factory(edit_state=lambda state: state["tokens"].append(dict(EXPIRED)))
    setup.role("r")
    setup.create("t1", "r")
    setup.create("t2", "r")
    return setup


def names(result):
    return [row["Name"] for row in table(result.stdout)[0]]


def test_list_shows_every_token_with_every_column(four_tokens):
    result = four_tokens.ok("list")
    rows, footer = table(result.stdout)
    assert [r["Name"] for r in rows] == ["old", "admin", "t1", "t2"]
    assert footer == "4 of 4 tokens shown. Times are UTC."
    by_name = {r["Name"]: r for r in rows}
    assert by_name["old"] == {"Name": "old", "Role": "admin", "Requested by": "init",
                              "Issue date": "2020-01-01T00:00:00Z", "Valid until": "2021-01-01T00:00:00Z",
                              "Last used": "never", "Hash": EXPIRED["hash"][:12], "Status": "Invalid"}
    state = {t["name"]: t for t in four_tokens.broker.read_state()["tokens"]}
    for name in ("t1", "t2"):
        row = by_name[name]
        assert (row["Role"], row["Requested by"], row["Status"], row["Last used"]) == ("r", "admin", "Valid", "never")
        assert row["Hash"] == state[name]["hash"][:12]
        assert (row["Issue date"], row["Valid until"]) == (state[name]["issuedAt"], state[name]["validUntil"])
    # Only the short hash is shown.
    for token in state.values():
        assert token["hash"] not in result.stdout


@pytest.mark.parametrize("args, expected, footer", [
    (["--status", "valid"], ["admin", "t1", "t2"], "3 of 3 tokens shown."),
    (["--status", "invalid"], ["old"], "1 of 1 token shown."),
    (["--status", "all"], ["old", "admin", "t1", "t2"], "4 of 4 tokens shown."),
    (["--count", "2"], ["old", "admin"], "2 of 4 tokens shown."),
    (["--count", "2", "--offset", "1"], ["admin", "t1"], "2 of 4 tokens shown."),
    (["--offset", "3"], ["t2"], "1 of 4 tokens shown."),
    (["--offset", "4"], [], "0 of 4 tokens shown."),
    (["--status", "valid", "--count", "1", "--offset", "1"], ["t1"], "1 of 3 tokens shown."),
    (["--offset", "1", "--status", "invalid"], [], "0 of 1 token shown."),
])
def test_list_filters_and_pages(four_tokens, args, expected, footer):
    result = four_tokens.ok("list", *args)
    assert names(result) == expected
    assert table(result.stdout)[1] == footer + " Times are UTC."


def test_list_aligns_names_with_spaces_and_accents(admin):
    admin.role("r")
    _, hash_hex = admin.create("café ☕ line 2", "r")
    rows, footer = table(admin.ok("list").stdout)
    assert [(r["Name"], r["Role"], r["Hash"]) for r in rows] == [
        ("admin", "admin", admin.hash[:12]), ("café ☕ line 2", "r", hash_hex[:12])]
    assert footer == "2 of 2 tokens shown. Times are UTC."


def test_get_by_name_and_by_hash(admin):
    admin.role("r")
    token, hash_hex = admin.create("cam-7", "r", "2030-01-01T00:00:00Z")
    by_name = admin.ok("get", "cam-7")
    by_hash = admin.ok("get", hash_hex)
    assert by_name.stdout == by_hash.stdout
    shown = fields(by_name.stdout)
    assert shown["Name"] == "cam-7"
    assert shown["Hash"] == hash_hex == sha256_hex(token)
    assert shown["Valid until"] == "2030-01-01T00:00:00Z"
    assert [line.split(":")[0] for line in by_name.stdout.splitlines()] == [
        "Name", "Role", "Requested by", "Issue date", "Valid until", "Last used", "Hash", "Status"]
    assert not TOKEN_IN_TEXT.search(by_name.stdout)
    # The admin token, by the hash init printed.
    assert fields(admin.ok("get", admin.hash).stdout)["Requested by"] == "init"


@pytest.mark.parametrize("by", ["name", "hash"])
def test_revoke_closes_the_tokens_connections(admin, processes, by):
    admin.role("sensors", ("subscribePattern", "sensors/#", "allow"))
    token, hash_hex = admin.create("dev-9", "sensors")
    sub = processes.subscriber(admin.port, "dev-9", token, "sensors/#", "dev9-sub")
    wait_subscribed(admin.broker, "dev9-sub")
    assert sub.poll() is None

    result = admin.ok("revoke", "dev-9" if by == "name" else hash_hex)
    assert result.stdout == f"Revoked token dev-9 (hash {hash_hex}); 1 connection closed.\n"
    admin.broker.wait_for_log(kicked_log_re("dev9-sub"))
    # The subscriber (MQTT 5) is told to go, and ends.
    out, err = sub.communicate(timeout=10)
    assert out == "", err

    expect_error(admin.ctrl("get", "dev-9"), "Error: Token not found (notFound)")
    assert "dev-9" not in names(admin.ok("list"))
    assert [t["name"] for t in admin.broker.read_state()["tokens"]] == ["admin"]
    assert "Not authorized" in publish(admin.port, "dev-9", token, "sensors/x", "m").stderr


def test_revoke_the_token_you_are_logged_in_with(admin):
    """The reply must reach the requester before its own connection is closed."""
    result = admin.ctrl("revoke", "admin", timeout=3)
    assert result.returncode == 0, str(result)
    assert result.stdout == f"Revoked token admin (hash {admin.hash}); 1 connection closed.\n"


def test_revoke_without_connections(admin):
    admin.role("r")
    _, hash_hex = admin.create("idle", "r")
    result = admin.ok("revoke", hash_hex)
    assert result.stdout == f"Revoked token idle (hash {hash_hex}); 0 connections closed.\n"
    expect_error(admin.ctrl("revoke", hash_hex), "Error: Token not found (notFound)")


def test_roles_from_create_to_delete(admin):
    assert admin.ok("createRole", "fleet").stdout == "OK\n"
    result = admin.ok("getRole", "fleet")
    assert result.stdout == "Role: fleet\n    (no ACLs: may not publish or subscribe)\n"

    assert admin.ok("addRoleACL", "fleet", "publishClientSend", "fleet/+/telemetry", "allow").stdout == "OK\n"
    assert admin.ok("addRoleACL", "fleet", "subscribeLiteral", "fleet/cmd", "deny", "7").stdout == "OK\n"
    assert admin.ok("addRoleACL", "fleet", "subscribePattern", "fleet/#", "allow", "-2").stdout == "OK\n"
    expected = {("allow", "publishClientSend", "fleet/+/telemetry", 0),
                ("deny", "subscribeLiteral", "fleet/cmd", 7),
                ("allow", "subscribePattern", "fleet/#", -2)}
    shown = role_lines(admin.ok("getRole", "fleet").stdout)
    assert list(shown) == ["fleet"] and set(shown["fleet"]) == expected and len(shown["fleet"]) == 3
    stored = [r for r in admin.broker.read_state()["roles"] if r["rolename"] == "fleet"][0]["acls"]
    assert {(("allow" if a["allow"] else "deny"), a["acltype"], a["topic"], a["priority"]) for a in stored} == expected

    listed = admin.ok("listRoles")
    roles = role_lines(listed.stdout)
    assert set(roles) == {"admin", "fleet"}
    assert set(roles["admin"]) == {("allow", "publishClientSend", "$CONTROL/tokens/v1", 0),
                                   ("allow", "subscribeLiteral", "$CONTROL/tokens/v1/response", 0),
                                   ("allow", "subscribeLiteral", "$CONTROL/tokens/v1/events", 0)}
    assert set(roles["fleet"]) == expected
    assert listed.stdout.endswith("2 roles.\n")

    assert admin.ok("removeRoleACL", "fleet", "subscribeLiteral", "fleet/cmd").stdout == "OK\n"
    assert set(role_lines(admin.ok("getRole", "fleet").stdout)["fleet"]) == expected - {
        ("deny", "subscribeLiteral", "fleet/cmd", 7)}

    assert admin.ok("deleteRole", "fleet").stdout == "OK\n"
    expect_error(admin.ctrl("getRole", "fleet"), "Error: Role not found (notFound)")
    listed = admin.ok("listRoles")
    assert set(role_lines(listed.stdout)) == {"admin"}
    assert listed.stdout.endswith("1 role.\n")
    assert [r["rolename"] for r in admin.broker.read_state()["roles"]] == ["admin"]


def test_role_acls_apply_to_a_live_token(admin):
    """addRoleACL with and without priority changes what a token may do;
    the priority argument really reaches the plugin."""
    admin.role("pub")
    token, _ = admin.create("pusher", "pub")
    assert "Not authorized" in publish(admin.port, "pusher", token, "a/x", "1").stderr

    admin.ok("addRoleACL", "pub", "publishClientSend", "a/#", "allow")
    assert publish(admin.port, "pusher", token, "a/x", "2").stderr == ""
    assert publish(admin.port, "pusher", token, "a/secret", "3").stderr == ""

    admin.ok("addRoleACL", "pub", "publishClientSend", "a/secret", "deny", "10")
    assert "Not authorized" in publish(admin.port, "pusher", token, "a/secret", "4").stderr
    assert publish(admin.port, "pusher", token, "a/x", "5").stderr == ""

    # A lower priority deny loses to the allow.
    admin.ok("addRoleACL", "pub", "publishClientSend", "a/+", "deny", "-1")
    assert publish(admin.port, "pusher", token, "a/x", "6").stderr == ""

    admin.ok("removeRoleACL", "pub", "publishClientSend", "a/secret")
    assert publish(admin.port, "pusher", token, "a/secret", "7").stderr == ""


# ================================================================ errors from the plugin (exit 1)

def test_create_with_an_unknown_role(admin):
    expect_error(admin.ctrl("create", "t", "x", "1d"), "Error: Role 'x' does not exist (invalid)")
    assert names(admin.ok("list")) == ["admin"]


def test_create_a_duplicate_name(admin):
    admin.role("r")
    _, first_hash = admin.create("dup", "r")
    expect_error(admin.ctrl("create", "dup", "r", "2d"), "(exists)")
    assert fields(admin.ok("get", "dup").stdout)["Hash"] == first_hash
    assert names(admin.ok("list")) == ["admin", "dup"]


def test_create_in_the_past(admin):
    admin.role("r")
    expect_error(admin.ctrl("create", "late", "r", "2020-01-01T00:00:00Z"),
                 "Error: Field 'validUntil' must be in the future (invalid)")


def test_create_with_a_bad_name(admin):
    admin.role("r")
    result = expect_error(admin.ctrl("create", "x" * 31, "r", "1d"), "(invalid)")
    assert "Field 'name'" in result.stderr


@pytest.mark.parametrize("command", ["get", "revoke"])
@pytest.mark.parametrize("target", ["nobody", "f" * 64], ids=["name", "hash"])
def test_unknown_token(admin, command, target):
    expect_error(admin.ctrl(command, target), "Error: Token not found (notFound)")


def test_create_role_that_exists(admin):
    expect_error(admin.ctrl("createRole", "admin"), "Error: Role already exists (exists)")


@pytest.mark.parametrize("command", ["getRole", "deleteRole"])
def test_unknown_role(admin, command):
    expect_error(admin.ctrl(command, "ghost"), "Error: Role not found (notFound)")


def test_delete_a_role_in_use(admin):
    admin.role("busy")
    admin.create("user-of-busy", "busy")
    expect_error(admin.ctrl("deleteRole", "busy"), "(inUse)")
    assert "busy" in role_lines(admin.ok("listRoles").stdout)
    expect_error(admin.ctrl("deleteRole", "admin"), "(inUse)")


def test_add_role_acl_errors(admin):
    admin.role("r", ("publishClientSend", "a/b", "allow"))
    result = expect_error(admin.ctrl("addRoleACL", "r", "publishEverything", "a/b", "allow"), "(invalid)")
    assert "'acltype'" in result.stderr
    expect_error(admin.ctrl("addRoleACL", "r", "publishClientSend", "a/b", "deny", "3"), "(exists)")
    expect_error(admin.ctrl("addRoleACL", "ghost", "publishClientSend", "a/b", "allow"), "(notFound)")
    expect_error(admin.ctrl("addRoleACL", "r", "publishClientSend", "a/c", "allow", "99999999999"), "(invalid)")
    assert role_lines(admin.ok("getRole", "r").stdout) == {"r": [("allow", "publishClientSend", "a/b", 0)]}


def test_remove_role_acl_errors(admin):
    admin.role("r", ("publishClientSend", "a/b", "allow"))
    expect_error(admin.ctrl("removeRoleACL", "r", "publishClientSend", "a/c"), "Error: ACL not found (notFound)")
    expect_error(admin.ctrl("removeRoleACL", "r", "subscribeLiteral", "a/b"), "(notFound)")
    expect_error(admin.ctrl("removeRoleACL", "ghost", "publishClientSend", "a/b"), "(notFound)")
    assert role_lines(admin.ok("getRole", "r").stdout) == {"r": [("allow", "publishClientSend", "a/b", 0)]}


# ================================================================ who may ask

def test_a_role_without_the_control_topic_gets_no_reply(admin):
    admin.role("listener", ("subscribeLiteral", "$CONTROL/tokens/v1/response", "allow"))
    token, _ = admin.create("listener-1", "listener")
    result = admin.ctrl("list", username="listener-1", password=token)
    assert result.returncode != 0, str(result)
    assert "Error: no reply" in result.stderr, str(result)
    assert result.stdout == ""
    assert result.seconds < 5, str(result)


def test_a_role_with_no_rights_gets_no_reply(admin):
    admin.role("nothing")
    token, _ = admin.create("nobody", "nothing")
    result = admin.ctrl("createRole", "sneaky", username="nobody", password=token)
    assert result.returncode != 0, str(result)
    assert "Error: no reply" in result.stderr, str(result)
    assert result.stdout == ""
    expect_error(admin.ctrl("getRole", "sneaky"), "(notFound)")


@pytest.mark.parametrize("password", ["wrong", "mqtk_" + "A" * 43 + "00000000", "<unknown token>"],
                         ids=["not-a-token", "bad-checksum", "unknown-token"])
def test_a_wrong_admin_token(admin, password):
    if password == "<unknown token>":
        first48 = admin.token[:47] + ("B" if admin.token[47] != "B" else "C")
        password = first48 + token_checksum(first48)
    result = admin.ctrl("createRole", "intruder", password=password)
    assert result.returncode != 0, str(result)
    assert result.stdout == ""
    assert "Error" in result.stderr, str(result)
    expect_error(admin.ctrl("getRole", "intruder"), "(notFound)")


def test_an_expired_admin_token(admin_factory):
    def expire(state):
        state["tokens"][0].update(issuedAt="2020-01-01T00:00:00Z", validUntil="2021-01-01T00:00:00Z")
    setup = admin_factory(edit_state=expire)
    result = setup.ctrl("list")
    assert result.returncode == 1, str(result)
    assert "Not authorized" in result.stderr and "Error: no reply" in result.stderr, str(result)
    assert result.stdout == ""
    setup.broker.wait_for_log(r"expired token admin")


def test_no_broker(tmp_path):
    result = run_ctrl("list", port=closed_port(), username="admin", password="x")
    assert result.returncode == 1, str(result)
    assert "Error: no reply" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command", [["list"], ["get", "x"], ["createRole", "r"]])
def test_a_broker_without_the_plugin(broker_without_plugin, command):
    """2.0 answers nobody; 2.1 itself answers that nothing serves the
    topic, and the module says so rather than "not a tokens plugin
    response"."""
    result = run_ctrl(*command, port=broker_without_plugin, username="admin", password="x", timeout=30)
    if broker_version() >= (2, 1):
        expect_error(result, 'Error: the broker answered "endpoint not available": nothing there serves '
                             '$CONTROL/tokens/v1. Is the mosquitto_tokens plugin loaded?')
    else:
        assert result.returncode == 1 and "Error: no reply" in result.stderr and result.stdout == "", str(result)


# ================================================================ usage (exit 2, nothing sent)
# These run against a port where nothing listens: a command that tried to
# connect would end with "no reply" (exit 1) instead.

@pytest.mark.parametrize("args, message", [
    (["list", "--status", "bogus"], 'Error: --status is valid, invalid or all, not "bogus"'),
    (["list", "--status"], "Error: --status needs a value"),
    (["list", "--count", "0"], 'Error: --count needs a whole number of at least 1, not "0"'),
    (["list", "--count", "abc"], "Error: --count needs a whole number"),
    (["list", "--count", "2.5"], "Error: --count needs a whole number"),
    (["list", "--offset", "-1"], 'Error: --offset needs a whole number of at least 0, not "-1"'),
    (["list", "--verbose", "1"], 'Error: unknown option "--verbose"'),
    (["list", "--role", ""], 'Error: --role needs a role name, not ""'),
    (["list", "--count", "5", "--role"], "Error: --role needs a value"),
    (["list", "--name-prefix"], "Error: --name-prefix needs a value"),
    (["create", "t", "r", "tomorrow"], 'Error: validUntil "tomorrow" is neither a duration'),
    (["create", "t", "r", "0d"], "Error: validUntil"),
    (["create", "t", "r", "12y"], "Error: validUntil"),
    (["create", "t", "r", "2027-13-01T00:00:00Z"], "Error: validUntil"),
    (["addRoleACL", "r", "publishClientSend", "a", "maybe"], 'Error: the fourth argument is allow or deny, not "maybe"'),
    (["addRoleACL", "r", "publishClientSend", "a", "allow", "high"], 'Error: priority must be a whole number, not "high"'),
])
def test_bad_arguments(args, message):
    result = run_ctrl(*args, port=closed_port(), username="admin", password="x")
    expect_usage_error(result, message)


WRONG_COUNTS = [
    ("create", ["a", "b"]), ("create", ["a", "b", "c", "d"]),
    ("list", ["--count", "1", "--offset", "1", "--status", "all", "--role", "r", "--name-prefix", "p", "extra"]),
    ("get", []), ("get", ["a", "b"]),
    ("revoke", []), ("revoke", ["a", "b"]),
    ("createRole", []), ("createRole", ["a", "b"]),
    ("getRole", []), ("getRole", ["a", "b"]),
    ("listRoles", ["a"]),
    ("deleteRole", []), ("deleteRole", ["a", "b"]),
    ("addRoleACL", ["r", "publishClientSend", "t"]), ("addRoleACL", ["r", "publishClientSend", "t", "allow", "1", "x"]),
    ("removeRoleACL", ["r", "publishClientSend"]), ("removeRoleACL", ["r", "publishClientSend", "t", "x"]),
]


@pytest.mark.parametrize("sub, args", WRONG_COUNTS, ids=[f"{s}-{len(a)}" for s, a in WRONG_COUNTS])
def test_wrong_number_of_arguments(sub, args):
    result = run_ctrl(sub, *args, port=closed_port(), username="admin", password="x")
    expect_usage_error(result, f"Usage: mosquitto_ctrl [options] tokens {sub} ")
    assert re.search(rf"^Usage: mosquitto_ctrl \[options\] tokens {sub} ", result.stderr, re.M)


def test_unknown_subcommand():
    result = run_ctrl("frobnicate", "x", port=closed_port(), username="admin", password="x")
    expect_usage_error(result, 'Error: unknown tokens command "frobnicate"')
    for sub in SUBCOMMANDS:
        assert f"tokens {sub} " in result.stderr


@pytest.mark.parametrize("word", ["help", "--help"])
def test_help(word):
    result = run_ctrl(word)
    assert result.returncode == 0, str(result)
    assert result.stderr == ""
    assert "mosquitto_ctrl tokens init <state-file> <admin-token-name> [validity]" in result.stdout
    listed = re.findall(r"^    mosquitto_ctrl \[options\] tokens (\S+)", result.stdout, re.M)
    assert listed == SUBCOMMANDS
    for acltype in ("publishClientSend", "publishClientReceive", "subscribeLiteral", "subscribePattern",
                    "unsubscribeLiteral", "unsubscribePattern"):
        assert acltype in result.stdout
