"""
The state file (SPEC section 5, docs/state-file.md): shape and mode,
durable before the reply (in the journal), folded into one file at a clean
stop, restart and kill -9, a missing file, corrupt files refused untouched,
the lock against a second broker, and a failing save that changes nothing.
"""
import json
import os
import stat

import pytest

from tokens_helpers import (
    FUTURE, STATE_TOKEN_KEYS, port_open, snapshot, state_token,
    write_state,
)

ADMIN_ACLS = [
    {"acltype": "publishClientSend", "topic": "$CONTROL/tokens/v1", "priority": 0, "allow": True},
    {"acltype": "subscribeLiteral", "topic": "$CONTROL/tokens/v1/response", "priority": 0, "allow": True},
]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def leftovers(broker, journal_allowed=True):
    """Files in the state file's folder other than the ones we expect."""
    folder = os.path.dirname(broker.state_file)
    base = os.path.basename(broker.state_file)
    expected = {base, base + ".lock"} | ({base + ".journal"} if journal_allowed else set())
    return [n for n in os.listdir(folder)
            if n not in expected and n.startswith(base)]


def stored(broker):
    return broker.read_state()


def stored_tokens(broker):
    return {t["name"]: t for t in stored(broker)["tokens"]}


def populate(client):
    """Roles and tokens in every shape the file holds; returns the secrets."""
    client.call("createRole", rolename="admin", acls=ADMIN_ACLS)
    client.call("createRole", rolename="reader")
    client.call("addRoleACL", rolename="reader", acltype="subscribePattern", topic="sensors/#",
                priority=3, allow=True)
    client.call("addRoleACL", rolename="reader", acltype="publishClientSend", topic="sensors/+/cmd",
                priority=-1, allow=False)
    secrets = {}
    for name, role in (("ci-bot", "admin"), ("dashboard", "reader"), ("ünïcødé name", "reader")):
        secrets[name] = client.call("createToken", name=name, role=role, validUntil=FUTURE)["token"]
    return secrets


def test_file_shape_mode_and_every_change_on_disk_before_the_reply(broker, client):
    assert not os.path.exists(broker.state_file)

    client.call("createRole", rolename="admin", acls=ADMIN_ACLS)
    assert mode(broker.journal_file) == 0o600
    assert stored(broker) == {"version": 1, "roles": [{"rolename": "admin", "acls": ADMIN_ACLS}], "tokens": []}

    client.call("createRole", rolename="reader")
    assert [r["rolename"] for r in stored(broker)["roles"]] == ["admin", "reader"]

    client.call("addRoleACL", rolename="reader", acltype="subscribePattern", topic="sensors/#",
                priority=3, allow=True)
    assert stored(broker)["roles"][1]["acls"] == [
        {"acltype": "subscribePattern", "topic": "sensors/#", "priority": 3, "allow": True}]

    created = client.call("createToken", name="ci-bot", role="admin", validUntil="2030-01-01T02:00:00+02:00")
    on_disk = stored_tokens(broker)["ci-bot"]
    assert set(on_disk) == STATE_TOKEN_KEYS
    assert on_disk == {k: v for k, v in created.items() if k not in ("token", "status")}
    assert on_disk["validUntil"] == "2030-01-01T00:00:00Z"
    assert on_disk["lastUsed"] is None

    client.call("createToken", name="dashboard", role="reader", validUntil=FUTURE)
    client.call("removeRoleACL", rolename="reader", acltype="subscribePattern", topic="sensors/#")
    assert stored(broker)["roles"][1]["acls"] == []

    client.call("revokeToken", name="ci-bot")
    assert list(stored_tokens(broker)) == ["dashboard"]

    client.call("createRole", rolename="spare")
    client.call("deleteRole", rolename="spare")
    assert [r["rolename"] for r in stored(broker)["roles"]] == ["admin", "reader"]

    # What is on disk is what listTokens and listRoles show, minus status,
    # and nothing else: no secret, no extra keys.
    tokens, roles, raw = snapshot(client, broker)
    document = broker.read_state()
    assert document["roles"] == roles["roles"]
    assert document["tokens"] == [{k: v for k, v in t.items() if k != "status"} for t in tokens["tokens"]]
    assert b"mqtk_" not in raw
    assert leftovers(broker) == []

    # A clean stop folds the journal into the one state file.
    client.close()
    assert broker.stop() == 0
    with open(broker.state_file) as f:
        folded = json.load(f)
    # The journal ids tie a snapshot to its journal (docs/state-file.md).
    assert set(folded) - {"journalId", "previousJournalId"} == {"version", "journalSequence", "roles", "tokens"}
    for key in ("journalSequence", "journalId", "previousJournalId"):
        folded.pop(key, None)
    assert folded == document
    assert mode(broker.state_file) == 0o600
    assert leftovers(broker, journal_allowed=False) == []


def test_missing_file_starts_empty_and_is_created_at_the_first_change(broker_factory, make_client, tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    broker = broker_factory(state_file=folder / "tokens.json")
    client = make_client(broker=broker)
    broker.wait_for_log(r"tokens: loaded 0 tokens and 0 roles")
    assert client.call("listTokens") == {"totalCount": 0, "tokens": []}
    assert client.call("listRoles") == {"totalCount": 0, "roles": []}
    # Reads and refused commands write nothing.
    client.request([{"command": "getToken", "name": "x"},
                    {"command": "createToken", "name": "x", "role": "none", "validUntil": FUTURE},
                    {"command": "deleteRole", "rolename": "none"}])
    assert not os.path.exists(broker.state_file)
    assert not os.path.exists(broker.journal_file)

    client.call("createRole", rolename="r")
    assert mode(broker.journal_file) == 0o600
    assert broker.read_state() == {"version": 1, "roles": [{"rolename": "r", "acls": []}], "tokens": []}


def test_clean_stop_exits_zero_and_leaves_one_file(broker, client):
    populate(client)
    before = broker.read_state()
    client.close()
    assert broker.stop() == 0
    assert broker.read_state() == before
    # One file: the journal is folded in and removed.
    assert not os.path.exists(broker.journal_file)
    assert leftovers(broker, journal_allowed=False) == []


def test_restart_keeps_everything(broker, client, make_client):
    populate(client)
    tokens, roles, _ = snapshot(client)
    client.close()

    broker.restart()
    broker.wait_for_log(r"tokens: loaded 3 tokens and 2 roles")
    again = make_client(broker=broker)
    assert snapshot(again)[:2] == (tokens, roles)
    # And it keeps working on top of the loaded state.
    again.call("createToken", name="after-restart", role="reader", validUntil=FUTURE)
    assert again.request([{"command": "createToken", "name": "ci-bot", "role": "reader",
                           "validUntil": FUTURE}])[0]["code"] == "exists"
    assert again.request([{"command": "deleteRole", "rolename": "admin"}])[0]["code"] == "inUse"
    assert again.call("listTokens")["totalCount"] == 4


def create_then_kill(broker, client, count=8):
    client.call("createRole", rolename="r")
    created = []
    for i in range(count):
        created.append(client.call("createToken", name=f"device-{i}", role="r", validUntil=FUTURE))
    # Revoke one as the very last acknowledged change.
    client.call("revokeToken", name="device-0")
    broker.kill()
    return created[1:]


def test_kill9_right_after_the_reply_loses_nothing_on_disk(broker, client):
    survivors = create_then_kill(broker, client)
    on_disk = stored_tokens(broker)
    assert sorted(on_disk) == sorted(t["name"] for t in survivors)
    for token in survivors:
        assert on_disk[token["name"]]["hash"] == token["hash"]


def test_kill9_then_restart_has_everything(broker, client, make_client):
    survivors = create_then_kill(broker, client)
    broker.start()
    again = make_client(broker=broker)
    listed = again.call("listTokens")
    assert [(t["name"], t["hash"]) for t in listed["tokens"]] == [(t["name"], t["hash"]) for t in survivors]


# ---------------------------------------------------------------- corrupt files

VALID_ROLE = {"rolename": "r", "acls": []}
TOKEN_A = state_token("a", "r", "2026-01-01T00:00:00Z", FUTURE)


def document(**changes):
    doc = {"version": 1, "roles": [VALID_ROLE], "tokens": [TOKEN_A]}
    doc.update(changes)
    return json.dumps(doc, indent=2).encode()


def with_token(**fields):
    return document(tokens=[dict(TOKEN_A, **fields)])


CORRUPT = [
    # (id, file content, words the log must show after the file name)
    ("not-json", b"{this is not json", ["not valid JSON"]),
    ("truncated", document()[:-20], ["not valid JSON"]),
    ("empty-file", b"", ["JSON"]),
    ("top-level-array", b"[]", ["object"]),
    ("wrong-version", document(version=2), ["version"]),
    ("version-missing", json.dumps({"roles": [], "tokens": []}).encode(), ["version"]),
    ("version-string", document(version="1"), ["version"]),
    ("tokens-missing", json.dumps({"version": 1, "roles": []}).encode(), ["'tokens'"]),
    ("roles-not-array", document(roles={}), ["'roles'"]),
    ("token-role-missing", document(roles=[]), ["role", '"r"']),
    ("token-role-unknown", with_token(role="ghost"), ["ghost"]),
    ("duplicate-token-name", document(tokens=[TOKEN_A, dict(TOKEN_A, hash="0" * 64)]), ["duplicate", "name"]),
    ("duplicate-token-hash", document(tokens=[TOKEN_A, dict(TOKEN_A, name="b")]), ["duplicate", "hash"]),
    ("duplicate-role", document(roles=[VALID_ROLE, VALID_ROLE]), ["duplicate", "r"]),
    ("bad-hash", with_token(hash="XYZ"), ["hash"]),
    ("uppercase-hash", with_token(hash=TOKEN_A["hash"].upper()), ["hash"]),
    ("hash-missing", document(tokens=[{k: v for k, v in TOKEN_A.items() if k != "hash"}]), ["hash"]),
    ("bad-issuedAt", with_token(issuedAt="yesterday"), ["issuedAt"]),
    ("bad-validUntil", with_token(validUntil="2030-02-30T00:00:00Z"), ["validUntil"]),
    ("bad-lastUsed", with_token(lastUsed=12345), ["lastUsed"]),
    ("name-too-long", with_token(name="x" * 31), ["name"]),
    ("name-control-char", with_token(name="a\nb"), ["name"]),
    ("bad-acltype", document(roles=[{"rolename": "r", "acls": [
        {"acltype": "publish", "topic": "a", "priority": 0, "allow": True}]}]), ["acltype"]),
    ("bad-acl-topic", document(roles=[{"rolename": "r", "acls": [
        {"acltype": "subscribePattern", "topic": "a/#/b", "priority": 0, "allow": True}]}]), ["a/#/b"]),
    ("acl-allow-not-bool", document(roles=[{"rolename": "r", "acls": [
        {"acltype": "subscribePattern", "topic": "a", "priority": 0, "allow": "yes"}]}]), ["allow"]),
]


@pytest.mark.parametrize("content, words", [c[1:] for c in CORRUPT], ids=[c[0] for c in CORRUPT])
def test_corrupt_state_file_stops_the_broker(broker_factory, tmp_path, content, words):
    state = tmp_path / "tokens.json"
    write_state(state, raw=content)
    before_mode = mode(state)
    broker = broker_factory(start=False, state_file=state)

    status = broker.start_expecting_failure()

    assert status != 0
    assert not port_open(broker.port)
    log = broker.log
    problem_lines = [line for line in log.splitlines() if "tokens:" in line and str(state) in line]
    assert problem_lines, f"no plugin error naming {state}:\n{log}"
    # The problem is told after the file's name.
    problems = [line.split(str(state), 1)[1] for line in problem_lines]
    for word in words:
        assert any(word in problem for problem in problems), f"{word!r} not in {problem_lines}"
    # Never overwritten, not even touched.
    assert state.read_bytes() == content
    assert mode(state) == before_mode
    assert leftovers(broker) == []


def test_state_file_that_is_a_directory_stops_the_broker(broker_factory, tmp_path):
    state = tmp_path / "tokens.json"
    state.mkdir()
    broker = broker_factory(start=False, state_file=state)
    assert broker.start_expecting_failure() != 0
    assert any(str(state) in line and "tokens:" in line for line in broker.log_lines()), broker.log
    assert state.is_dir() and list(state.iterdir()) == []


def test_valid_file_written_by_hand_is_accepted(broker_factory, tmp_path):
    """The control for the corrupt-file tests above, which would pass for a
    plugin that refuses every file: a correct file must be loaded."""
    state = tmp_path / "tokens.json"
    write_state(state, raw=document())
    broker = broker_factory(state_file=state)
    with broker.client() as client:
        assert [t["name"] for t in client.call("listTokens")["tokens"]] == ["a"]


# ---------------------------------------------------------------- lock

def test_second_broker_on_the_same_state_file_is_refused(broker, client, broker_factory):
    client.call("listTokens")
    second = broker_factory(start=False, state_file=broker.state_file, name="second")
    assert second.port != broker.port

    status = second.start_expecting_failure()

    assert status != 0
    assert not port_open(second.port)
    lines = [line for line in second.log_lines() if "tokens:" in line]
    assert any(broker.state_file in line and ("lock" in line or "another broker" in line) for line in lines), \
        second.log
    # The first broker is unharmed and still answers.
    assert client.call("createRole", rolename="still-mine") is None
    assert broker.read_state()["roles"] == [{"rolename": "still-mine", "acls": []}]


def test_lock_is_released_when_the_broker_stops(broker_factory, tmp_path):
    state = tmp_path / "shared" / "tokens.json"
    state.parent.mkdir()
    first = broker_factory(state_file=state, name="first")
    first.stop()
    second = broker_factory(state_file=state, name="second")
    assert second.running
    second.kill()          # kill -9 releases it too
    third = broker_factory(state_file=state, name="third")
    assert third.running


# ---------------------------------------------------------------- failing saves

def break_storage(broker):
    """Puts a directory where the journal goes: the plugin cannot open it.
    Only works before the broker's first change since it started (it keeps
    the journal open after that)."""
    os.mkdir(broker.journal_file)


def repair_storage(broker):
    os.rmdir(broker.journal_file)


def fresh_start(broker, make_client):
    """A clean restart: the journal is folded into the snapshot and closed."""
    assert broker.stop() == 0
    broker.start()
    return make_client(broker=broker)


def test_failed_save_changes_nothing(broker, client, make_client):
    populate(client)
    client.close()
    client = fresh_start(broker, make_client)
    before = snapshot(client)[:2]
    on_disk_before = broker.read_state()
    break_storage(broker)

    response = client.request([{"command": "createToken", "name": "new-one", "role": "reader",
                                "validUntil": FUTURE, "correlationData": "s"}])[0]
    assert response["code"] == "storage", response
    assert response["correlationData"] == "s"
    assert "data" not in response and response["error"]
    assert snapshot(client)[:2] == before
    assert client.request([{"command": "getToken", "name": "new-one"}])[0]["code"] == "notFound"
    broker.wait_for_log(r"tokens: .*" + broker.journal_file)
    assert leftovers(broker) == []

    repair_storage(broker)
    created = client.call("createToken", name="new-one", role="reader", validUntil=FUTURE)
    on_disk = broker.read_state()
    assert on_disk["tokens"] == sorted(on_disk_before["tokens"] + [
        {k: v for k, v in created.items() if k not in ("token", "status")}],
        key=lambda t: (t["issuedAt"], t["name"].encode()))
    assert on_disk["roles"] == on_disk_before["roles"]
    assert mode(broker.journal_file) == 0o600


@pytest.mark.parametrize("command", [
    {"command": "revokeToken", "name": "dashboard"},
    {"command": "createRole", "rolename": "extra", "acls": [{"acltype": "subscribePattern", "topic": "x",
                                                             "allow": True}]},
    {"command": "deleteRole", "rolename": "spare"},
    {"command": "addRoleACL", "rolename": "reader", "acltype": "subscribeLiteral", "topic": "y", "allow": True},
    {"command": "removeRoleACL", "rolename": "reader", "acltype": "subscribePattern", "topic": "sensors/#"},
], ids=lambda c: c["command"])
def test_every_change_that_cannot_be_saved_is_undone(broker, client, command, make_client):
    populate(client)
    client.call("createRole", rolename="spare")
    client.close()
    client = fresh_start(broker, make_client)
    before = snapshot(client)[:2]
    break_storage(broker)

    response = client.request([command, {"command": "listTokens"}])
    assert response[0]["code"] == "storage", response
    assert "data" in response[1]
    assert snapshot(client)[:2] == before

    repair_storage(broker)
    assert "error" not in client.request([command])[0]
    assert snapshot(client)[:2] != before
    assert broker.read_state() == {
        "version": 1, "roles": snapshot(client)[1]["roles"],
        "tokens": [{k: v for k, v in t.items() if k != "status"} for t in snapshot(client)[0]["tokens"]]}
