"""
Every kind of refused command (SPEC section 4): the response's `code`, an
`error` sentence that names the field, correlationData echoed; the refused
command changes nothing (tokens, roles, state file), and the rest of the
batch still runs.

The tests share one broker: each one snapshots what an operator can see
before and after, so a command that wrongly changed something is caught.
"""
import json
import os

import pytest

from tokens_helpers import FUTURE, V5, snapshot

EXISTING = "existing"
# Placeholders replaced at run time by the hash of `existing`: as is, in
# upper case, and without its last digit.
HASH = "<hash>"
HASH_UPPER = "<HASH>"
HASH_63 = "<hash[:63]>"
UNKNOWN_HASH = "f" * 64


class Baseline:
    """Role reader (with ACL publishClientSend a/b, used by token
    `existing`), role spare (unused). A test that finds it changed (a
    refused command that changed something) has already failed; `ensure`
    rebuilds it on a fresh state file so that the next tests are not
    failed by the same cause."""

    def __init__(self, broker):
        self.broker = broker
        self.hash = None
        self.build()

    def build(self):
        with self.broker.client(protocol=V5) as client:
            client.call("createRole", rolename="reader",
                        acls=[{"acltype": "publishClientSend", "topic": "a/b", "allow": True}])
            client.call("createRole", rolename="spare")
            self.hash = client.call("createToken", name=EXISTING, role="reader", validUntil=FUTURE)["hash"]

    def intact(self):
        with self.broker.client(protocol=V5) as client:
            tokens, roles, _ = snapshot(client)
        return ([(t["name"], t["hash"]) for t in tokens["tokens"]] == [(EXISTING, self.hash)]
                and roles == {"totalCount": 2, "roles": [
                    {"rolename": "reader", "acls": [
                        {"acltype": "publishClientSend", "topic": "a/b", "priority": 0, "allow": True}]},
                    {"rolename": "spare", "acls": []}]})

    def ensure(self):
        if self.broker.running and self.intact():
            return
        self.broker.stop()
        for path in (self.broker.state_file,):
            if os.path.exists(path):
                os.remove(path)
        self.broker.start()
        self.build()


@pytest.fixture(scope="module")
def baseline(module_broker):
    return Baseline(module_broker)


@pytest.fixture
def shared_client(make_client, module_broker, baseline, protocol):
    """A client (MQTT 5 and 3.1.1) of the module's broker, baseline in place."""
    baseline.ensure()
    return make_client(broker=module_broker, protocol=protocol)


def token(**fields):
    return dict({"command": "createToken", "name": "new", "role": "reader", "validUntil": FUTURE}, **fields)


def without(command, field):
    command = dict(command)
    del command[field]
    return command


def acl(command, **fields):
    base = {"command": command, "rolename": "reader", "acltype": "subscribePattern", "topic": "x/#",
            "allow": True}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not DELETE}


DELETE = object()

# (id, command, code, text the error must contain)
CASES = [
    # createToken: missing, wrong type, bad value
    ("createToken-missing-name", without(token(), "name"), "invalid", "'name'"),
    ("createToken-missing-role", without(token(), "role"), "invalid", "'role'"),
    ("createToken-missing-validUntil", without(token(), "validUntil"), "invalid", "'validUntil'"),
    ("createToken-name-number", token(name=42), "invalid", "'name'"),
    ("createToken-name-null", token(name=None), "invalid", "'name'"),
    ("createToken-role-array", token(role=["reader"]), "invalid", "'role'"),
    ("createToken-validUntil-number", token(validUntil=4102444800), "invalid", "'validUntil'"),
    ("createToken-validUntil-words", token(validUntil="next tuesday"), "invalid", "'validUntil'"),
    ("createToken-validUntil-month-13", token(validUntil="2030-13-01T00:00:00Z"), "invalid", "'validUntil'"),
    ("createToken-validUntil-feb-30", token(validUntil="2030-02-30T00:00:00Z"), "invalid", "'validUntil'"),
    ("createToken-validUntil-no-zone", token(validUntil="2030-01-01T00:00:00"), "invalid", "'validUntil'"),
    ("createToken-validUntil-past", token(validUntil="2020-01-01T00:00:00Z"), "invalid", "'validUntil'"),
    ("createToken-validUntil-past-offset", token(validUntil="2001-01-01T02:00:00.5+02:00"), "invalid",
     "'validUntil'"),
    ("createToken-name-31-chars", token(name="x" * 31), "invalid", "'name'"),
    ("createToken-name-31-multibyte", token(name="é" * 31), "invalid", "'name'"),
    ("createToken-name-31-emoji", token(name="😀" * 31), "invalid", "'name'"),
    ("createToken-name-empty", token(name=""), "invalid", "'name'"),
    ("createToken-name-newline", token(name="a\nb"), "invalid", "'name'"),
    ("createToken-name-tab", token(name="a\tb"), "invalid", "'name'"),
    ("createToken-name-escape", token(name="a\x1b[31mb"), "invalid", "'name'"),
    ("createToken-name-DEL", token(name="a\x7fb"), "invalid", "'name'"),
    ("createToken-name-C1", token(name="a\x85b"), "invalid", "'name'"),
    ("createToken-name-C1-9f", token(name="a\x9fb"), "invalid", "'name'"),
    ("createToken-name-leading-space", token(name=" lead"), "invalid", "'name'"),
    ("createToken-name-trailing-space", token(name="trail "), "invalid", "'name'"),
    ("createToken-name-only-space", token(name=" "), "invalid", "'name'"),
    ("createToken-name-NUL", token(name="bad\x00name"), "invalid", "'name'"),
    ("createToken-name-NUL-prefix-of-existing", token(name=EXISTING + "\x00x"), "invalid", "'name'"),
    ("createToken-role-NUL", token(role="reader\x00x"), "invalid", "'role'"),
    ("createToken-validUntil-NUL", token(validUntil=FUTURE + "\x00junk"), "invalid", "'validUntil'"),
    ("createToken-role-unknown", token(role="nope"), "invalid", "'nope'"),
    ("createToken-duplicate-name", token(name=EXISTING), "exists", "already exists"),

    # getToken / revokeToken
    ("getToken-unknown-name", {"command": "getToken", "name": "ghost"}, "notFound", "not found"),
    ("getToken-unknown-hash", {"command": "getToken", "hash": UNKNOWN_HASH}, "notFound", "not found"),
    ("getToken-both", {"command": "getToken", "name": EXISTING, "hash": HASH}, "invalid", "'hash'"),
    ("getToken-neither", {"command": "getToken"}, "invalid", "'hash'"),
    ("getToken-short-hash", {"command": "getToken", "hash": "abc"}, "invalid", "'hash'"),
    ("getToken-uppercase-hash", {"command": "getToken", "hash": HASH_UPPER}, "invalid", "'hash'"),
    ("getToken-hash-not-hex", {"command": "getToken", "hash": "g" * 64}, "invalid", "'hash'"),
    ("getToken-hash-number", {"command": "getToken", "hash": 12}, "invalid", "'hash'"),
    ("getToken-name-array", {"command": "getToken", "name": [EXISTING]}, "invalid", "'name'"),
    ("getToken-name-NUL", {"command": "getToken", "name": EXISTING + "\x00"}, "invalid", "'name'"),
    ("revokeToken-unknown-name", {"command": "revokeToken", "name": "ghost"}, "notFound", "not found"),
    ("revokeToken-unknown-hash", {"command": "revokeToken", "hash": UNKNOWN_HASH}, "notFound", "not found"),
    ("revokeToken-both", {"command": "revokeToken", "name": EXISTING, "hash": HASH}, "invalid", "'hash'"),
    ("revokeToken-neither", {"command": "revokeToken"}, "invalid", "'hash'"),
    ("revokeToken-bad-hash", {"command": "revokeToken", "hash": HASH_63}, "invalid", "'hash'"),
    ("revokeToken-hash-with-NUL", {"command": "revokeToken", "hash": HASH + "\x00"}, "invalid", "'hash'"),
    ("revokeToken-name-NUL", {"command": "revokeToken", "name": EXISTING + "\x00evil"}, "invalid", "'name'"),
    ("revokeToken-name-number", {"command": "revokeToken", "name": 1}, "invalid", "'name'"),

    # the command itself
    ("unknown-command", {"command": "dropAllTokens"}, "invalid", "dropAllTokens"),
    ("command-wrong-case", {"command": "listtokens"}, "invalid", "listtokens"),
    ("command-missing", {"name": EXISTING}, "invalid", "'command'"),
    ("command-number", {"command": 7}, "invalid", "'command'"),
    ("command-NUL", {"command": "listTokens\x00"}, "invalid", "'command'"),

    # createRole
    ("createRole-missing-rolename", {"command": "createRole"}, "invalid", "'rolename'"),
    ("createRole-rolename-number", {"command": "createRole", "rolename": 3}, "invalid", "'rolename'"),
    ("createRole-rolename-empty", {"command": "createRole", "rolename": ""}, "invalid", "'rolename'"),
    ("createRole-rolename-control", {"command": "createRole", "rolename": "r\tx"}, "invalid", "'rolename'"),
    ("createRole-rolename-space", {"command": "createRole", "rolename": "r "}, "invalid", "'rolename'"),
    ("createRole-rolename-NUL", {"command": "createRole", "rolename": "new\x00"}, "invalid", "'rolename'"),
    ("createRole-rolename-NUL-of-existing", {"command": "createRole", "rolename": "reader\x00x"}, "invalid",
     "'rolename'"),
    ("createRole-duplicate", {"command": "createRole", "rolename": "spare"}, "exists", "exists"),
    ("createRole-acls-object", {"command": "createRole", "rolename": "new", "acls": {}}, "invalid", "'acls'"),
    ("createRole-acls-not-objects", {"command": "createRole", "rolename": "new", "acls": [1]}, "invalid",
     "'acls'"),
    ("createRole-acl-bad-acltype", {"command": "createRole", "rolename": "new", "acls": [
        {"acltype": "publish", "topic": "a", "allow": True}]}, "invalid", "'acltype'"),
    ("createRole-acl-bad-topic", {"command": "createRole", "rolename": "new", "acls": [
        {"acltype": "subscribePattern", "topic": "a/#/b", "allow": True}]}, "invalid", "'topic'"),
    ("createRole-acl-missing-allow", {"command": "createRole", "rolename": "new", "acls": [
        {"acltype": "subscribePattern", "topic": "a", "priority": 1}]}, "invalid", "'allow'"),
    ("createRole-acl-allow-string", {"command": "createRole", "rolename": "new", "acls": [
        {"acltype": "subscribePattern", "topic": "a", "allow": "true"}]}, "invalid", "'allow'"),
    ("createRole-acl-priority-float", {"command": "createRole", "rolename": "new", "acls": [
        {"acltype": "subscribePattern", "topic": "a", "allow": True, "priority": 0.5}]}, "invalid", "'priority'"),
    ("createRole-second-acl-bad", {"command": "createRole", "rolename": "new", "acls": [
        {"acltype": "subscribePattern", "topic": "ok", "allow": True},
        {"acltype": "subscribePattern", "topic": "bad/#/x", "allow": True}]}, "invalid", "'topic'"),
    ("createRole-duplicate-acls", {"command": "createRole", "rolename": "new", "acls": [
        {"acltype": "subscribePattern", "topic": "a", "allow": True},
        {"acltype": "subscribePattern", "topic": "a", "allow": False}]}, "invalid", "'acls'"),

    # getRole / deleteRole
    ("getRole-unknown", {"command": "getRole", "rolename": "nope"}, "notFound", "not found"),
    ("getRole-missing-rolename", {"command": "getRole"}, "invalid", "'rolename'"),
    ("getRole-rolename-NUL", {"command": "getRole", "rolename": "reader\x00"}, "invalid", "'rolename'"),
    ("deleteRole-in-use", {"command": "deleteRole", "rolename": "reader"}, "inUse", "token"),
    ("deleteRole-unknown", {"command": "deleteRole", "rolename": "nope"}, "notFound", "not found"),
    ("deleteRole-rolename-NUL", {"command": "deleteRole", "rolename": "spare\x00x"}, "invalid", "'rolename'"),
    ("deleteRole-rolename-object", {"command": "deleteRole", "rolename": {"x": 1}}, "invalid", "'rolename'"),

    # addRoleACL
    ("addRoleACL-duplicate", acl("addRoleACL", acltype="publishClientSend", topic="a/b"), "exists", "ACL"),
    ("addRoleACL-duplicate-other-priority", acl("addRoleACL", acltype="publishClientSend", topic="a/b",
                                                priority=9, allow=False), "exists", "ACL"),
    ("addRoleACL-unknown-role", acl("addRoleACL", rolename="nope"), "notFound", "not found"),
    ("addRoleACL-missing-rolename", acl("addRoleACL", rolename=DELETE), "invalid", "'rolename'"),
    ("addRoleACL-bad-acltype", acl("addRoleACL", acltype="publish"), "invalid", "'acltype'"),
    ("addRoleACL-missing-acltype", acl("addRoleACL", acltype=DELETE), "invalid", "'acltype'"),
    ("addRoleACL-acltype-number", acl("addRoleACL", acltype=1), "invalid", "'acltype'"),
    ("addRoleACL-topic-hash-in-middle", acl("addRoleACL", topic="a/#/b"), "invalid", "'topic'"),
    ("addRoleACL-topic-plus-in-word", acl("addRoleACL", topic="a/b+"), "invalid", "'topic'"),
    ("addRoleACL-topic-empty", acl("addRoleACL", topic=""), "invalid", "'topic'"),
    ("addRoleACL-missing-topic", acl("addRoleACL", topic=DELETE), "invalid", "'topic'"),
    ("addRoleACL-topic-number", acl("addRoleACL", topic=5), "invalid", "'topic'"),
    ("addRoleACL-topic-NUL", acl("addRoleACL", topic="x/\x00/y"), "invalid", "'topic'"),
    ("addRoleACL-missing-allow", acl("addRoleACL", allow=DELETE), "invalid", "'allow'"),
    ("addRoleACL-allow-string", acl("addRoleACL", allow="true"), "invalid", "'allow'"),
    ("addRoleACL-allow-number", acl("addRoleACL", allow=1), "invalid", "'allow'"),
    ("addRoleACL-allow-null", acl("addRoleACL", allow=None), "invalid", "'allow'"),
    ("addRoleACL-priority-string", acl("addRoleACL", priority="1"), "invalid", "'priority'"),
    ("addRoleACL-priority-float", acl("addRoleACL", priority=1.5), "invalid", "'priority'"),
    ("addRoleACL-priority-bool", acl("addRoleACL", priority=True), "invalid", "'priority'"),
    ("addRoleACL-priority-huge", acl("addRoleACL", priority=2 ** 40), "invalid", "'priority'"),

    # removeRoleACL
    ("removeRoleACL-unknown-acl", acl("removeRoleACL", topic="not/there", allow=DELETE), "notFound", "not found"),
    ("removeRoleACL-other-acltype", acl("removeRoleACL", acltype="publishClientReceive", topic="a/b",
                                        allow=DELETE), "notFound", "not found"),
    ("removeRoleACL-unknown-role", acl("removeRoleACL", rolename="nope", allow=DELETE), "notFound", "not found"),
    ("removeRoleACL-bad-acltype", acl("removeRoleACL", acltype="sub", topic="a/b", allow=DELETE), "invalid",
     "'acltype'"),
    ("removeRoleACL-missing-topic", acl("removeRoleACL", acltype="publishClientSend", topic=DELETE,
                                        allow=DELETE), "invalid", "'topic'"),
    ("removeRoleACL-topic-NUL", acl("removeRoleACL", acltype="publishClientSend", topic="a/b\x00",
                                    allow=DELETE), "invalid", "'topic'"),

    # listTokens
    ("listTokens-count-0", {"command": "listTokens", "count": 0}, "invalid", "'count'"),
    ("listTokens-count-negative", {"command": "listTokens", "count": -5}, "invalid", "'count'"),
    ("listTokens-count-string", {"command": "listTokens", "count": "1"}, "invalid", "'count'"),
    ("listTokens-count-float", {"command": "listTokens", "count": 1.5}, "invalid", "'count'"),
    ("listTokens-offset-minus-1", {"command": "listTokens", "offset": -1}, "invalid", "'offset'"),
    ("listTokens-offset-string", {"command": "listTokens", "offset": "0"}, "invalid", "'offset'"),
    ("listTokens-status-bogus", {"command": "listTokens", "status": "bogus"}, "invalid", "'status'"),
    ("listTokens-status-uppercase", {"command": "listTokens", "status": "VALID"}, "invalid", "'status'"),
    ("listTokens-status-number", {"command": "listTokens", "status": 1}, "invalid", "'status'"),
    ("listTokens-status-NUL", {"command": "listTokens", "status": "valid\x00"}, "invalid", "'status'"),

    # correlationData must be a string
    ("correlationData-number", {"command": "listTokens", "correlationData": 42}, "invalid", "'correlationData'"),
    ("correlationData-object", {"command": "createRole", "rolename": "new", "correlationData": {"id": 1}},
     "invalid", "'correlationData'"),
    ("correlationData-NUL", {"command": "createRole", "rolename": "new", "correlationData": "a\x00b"},
     "invalid", "'correlationData'"),
]


def substitute(value, hash_hex):
    if isinstance(value, str):
        return (value.replace(HASH, hash_hex).replace(HASH_UPPER, hash_hex.upper())
                .replace(HASH_63, hash_hex[:63]))
    if isinstance(value, dict):
        return {k: substitute(v, hash_hex) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, hash_hex) for v in value]
    return value


@pytest.mark.parametrize("command, code, text", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_command(shared_client, module_broker, baseline, command, code, text):
    client = shared_client
    command = substitute(command, baseline.hash)
    given_correlation = "correlationData" in command
    if not given_correlation:
        command["correlationData"] = "corr-1"
    before = snapshot(client, module_broker)

    responses = client.request([command, {"command": "listRoles", "correlationData": "after"}])

    response = responses[0]
    name = command.get("command")
    expected_name = name if isinstance(name, str) and "\x00" not in name else "Unknown command"
    assert response["command"] == expected_name
    assert response.get("code") == code, response
    assert isinstance(response.get("error"), str) and response["error"], response
    assert text.lower() in response["error"].lower(), response
    assert "data" not in response
    if isinstance(command["correlationData"], str) and "\x00" not in command["correlationData"]:
        assert response["correlationData"] == command["correlationData"]
    else:
        assert "correlationData" not in response
    assert set(response) <= {"command", "error", "code", "correlationData"}

    # The rest of the batch still ran.
    assert responses[1]["command"] == "listRoles"
    assert responses[1]["correlationData"] == "after"
    assert "data" in responses[1] and "error" not in responses[1]

    # Nothing changed: not the tokens, not the roles, not the file.
    assert snapshot(client, module_broker) == before
    assert [t["name"] for t in before[0]["tokens"]] == [EXISTING]
    assert [r["rolename"] for r in before[1]["roles"]] == ["reader", "spare"]


@pytest.mark.parametrize("command", [42, "listTokens", None, [], True], ids=repr)
def test_command_that_is_not_an_object(shared_client, module_broker, command):
    before = snapshot(shared_client, module_broker)
    responses = shared_client.request([command, {"command": "listTokens"}])
    assert responses[0]["command"] == "Unknown command"
    assert responses[0]["code"] == "invalid"
    assert responses[0]["error"]
    assert responses[1]["data"]["totalCount"] == 1
    assert snapshot(shared_client, module_broker) == before


@pytest.mark.parametrize("payload", [
    b"not json",
    b"",
    b"{",
    b"{}",
    b"[]",
    b"null",
    b'"commands"',
    b'{"commands": {"command": "listTokens"}}',
    b'{"commands": "listTokens"}',
    b'{"commands": null}',
    b'{"command": "listTokens"}',
    b'{"Commands": [{"command": "listTokens"}]}',
    b"\xff\xfe{}",
    b'{"commands": [{"command": "listTokens"}]',
], ids=repr)
def test_payload_not_a_request(shared_client, module_broker, payload):
    before = snapshot(shared_client, module_broker)
    reply = shared_client.request_raw(payload)
    assert len(reply["responses"]) == 1, reply
    response = reply["responses"][0]
    assert response["command"] == "Unknown command"
    assert response["code"] == "invalid"
    assert isinstance(response["error"], str) and response["error"]
    assert "data" not in response
    assert snapshot(shared_client, module_broker) == before


def test_empty_batch_gets_empty_reply(shared_client):
    assert shared_client.request_raw(b'{"commands": []}') == {"responses": []}


# A raw (unescaped) NUL byte inside a JSON string is not JSON (RFC 8259
# requires control characters to be escaped); cJSON would accept it and cut
# the string there, which SPEC section 4 says must not happen.


def test_raw_nul_byte_in_name_is_refused(module_broker, baseline):
    with module_broker.client() as client:
        before = snapshot(client, module_broker)
        payload = (b'{"commands":[{"command":"createToken","name":"ab\x00cd","role":"reader",'
                   b'"validUntil":"' + FUTURE.encode() + b'"}]}')
        response = client.request_raw(payload)["responses"][0]
        after = snapshot(client, module_broker)
        if "data" in response:   # undo, so that the shared broker stays as the other tests expect
            client.call("revokeToken", hash=response["data"]["hash"])
        assert "error" in response, response
        assert response["code"] == "invalid"
        assert after == before


def test_raw_nul_byte_cannot_revoke_another_token(broker, make_client):
    client = make_client()
    client.call("createRole", rolename="r")
    client.call("createToken", name="victim", role="r", validUntil=FUTURE)
    reply = client.request_raw(b'{"commands":[{"command":"revokeToken","name":"victim\x00-not-really"}]}')
    response = reply["responses"][0]
    assert response.get("code") in ("invalid", "notFound"), response
    assert client.call("getToken", name="victim")["name"] == "victim"


def test_trailing_garbage_is_not_json(broker, make_client):
    client = make_client()
    reply = client.request_raw(b'{"commands":[{"command":"createRole","rolename":"r"}]} trailing')
    assert client.call("listRoles")["totalCount"] == 0
    assert reply["responses"][0]["command"] == "Unknown command"
    assert reply["responses"][0]["code"] == "invalid"


def test_errors_in_a_batch_do_not_stop_it(client):
    batch = [
        {"command": "createRole", "rolename": "r", "correlationData": "a"},
        {"command": "createToken", "name": "x" * 31, "role": "r", "validUntil": FUTURE, "correlationData": "b"},
        {"command": "createToken", "name": "ok", "role": "r", "validUntil": FUTURE, "correlationData": "c"},
        {"command": "bogus", "correlationData": "d"},
        17,
        {"command": "createToken", "name": "ok", "role": "r", "validUntil": FUTURE, "correlationData": "e"},
        {"command": "createToken", "name": "ok2", "role": "r", "validUntil": FUTURE, "correlationData": "f"},
    ]
    responses = client.request(batch)
    assert [r.get("code") for r in responses] == [None, "invalid", None, "invalid", "invalid", "exists", None]
    assert [r.get("correlationData") for r in responses] == ["a", "b", "c", "d", None, "e", "f"]
    names = [t["name"] for t in client.call("listTokens")["tokens"]]
    assert sorted(names) == ["ok", "ok2"]


def test_error_response_is_json_with_exact_shape(client):
    message = client.request_message(json.dumps({"commands": [
        {"command": "getToken", "name": "ghost", "correlationData": "q"}]}))
    reply = json.loads(message.payload)
    assert reply == {"responses": [{"command": "getToken", "error": reply["responses"][0]["error"],
                                    "code": "notFound", "correlationData": "q"}]}
