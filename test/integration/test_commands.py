"""
Every control command's success shape (SPEC sections 1 and 4), over MQTT 5
and MQTT 3.1.1, batches, correlationData, and the MQTT 5 Response Topic path.
"""
import json
import time

import pytest

from tokens_helpers import (
    FUTURE, RESPONSE_TOPIC, V5, check_created, check_metadata, check_token_format,
    parse_time, response_properties, sha256_hex,
)

READER_ACLS = [
    {"acltype": "publishClientSend", "topic": "sensors/+/out", "priority": 5, "allow": True},
    {"acltype": "subscribePattern", "topic": "sensors/#", "priority": 0, "allow": False},
]


def test_create_token_shape(any_client):
    client = any_client
    assert client.call("createRole", rolename="reader") is None
    before = time.time()
    data = client.call("createToken", name="ci-bot", role="reader", validUntil="2030-01-01T00:00:00Z")
    token = check_created(data, name="ci-bot", role="reader", requested_by=client.client_id,
                          valid_until="2030-01-01T00:00:00Z", issued_near=before, last_used=None)
    assert token.startswith("mqtk_")
    # issuedAt is "now", to the second.
    assert parse_time(data["issuedAt"]).timestamp() >= int(before) - 1


def test_tokens_are_random_and_well_formed(client):
    client.call("createRole", rolename="r")
    responses = client.request([{"command": "createToken", "name": f"t{i}", "role": "r", "validUntil": FUTURE}
                                for i in range(8)])
    secrets = [r["data"]["token"] for r in responses]
    for secret in secrets:
        check_token_format(secret)
    assert len(set(secrets)) == 8
    assert len({r["data"]["hash"] for r in responses}) == 8
    assert len({s[5:48] for s in secrets}) == 8


@pytest.mark.parametrize("given, expected", [
    ("2030-06-01T02:00:00.987654+02:00", "2030-06-01T00:00:00Z"),
    ("2030-06-01T02:00:00+02:00", "2030-06-01T00:00:00Z"),
    ("2030-05-31T18:30:00-05:30", "2030-06-01T00:00:00Z"),
    ("2030-06-01T00:00:00.5Z", "2030-06-01T00:00:00Z"),
    ("2030-06-01T00:00:00Z", "2030-06-01T00:00:00Z"),
])
def test_valid_until_is_normalised_to_utc(client, given, expected):
    client.call("createRole", rolename="r")
    data = client.call("createToken", name="t", role="r", validUntil=given)
    assert data["validUntil"] == expected
    assert client.call("getToken", name="t")["validUntil"] == expected


def test_list_get_revoke_tokens(any_client):
    client = any_client
    client.call("createRole", rolename="reader")
    created = client.call("createToken", name="first", role="reader", validUntil=FUTURE)
    second = client.call("createToken", name="second", role="reader", validUntil=FUTURE)
    metadata = {k: v for k, v in created.items() if k != "token"}

    listed = client.call("listTokens")
    assert listed["totalCount"] == 2
    assert [t["name"] for t in listed["tokens"]] == ["first", "second"]
    assert listed["tokens"][0] == metadata
    for item in listed["tokens"]:
        check_metadata(item)
        assert "token" not in item

    # getToken by name and by hash: the same metadata, never the secret.
    assert client.call("getToken", name="first") == metadata
    assert client.call("getToken", hash=created["hash"]) == metadata

    # revokeToken by name.
    revoked = client.call("revokeToken", name="first")
    assert revoked == {"name": "first", "hash": created["hash"], "disconnected": 0, "offlineSessionsEnded": 0}
    response = client.request([{"command": "getToken", "name": "first"}])[0]
    assert response["code"] == "notFound"

    # revokeToken by hash.
    revoked = client.call("revokeToken", hash=second["hash"])
    assert revoked == {"name": "second", "hash": second["hash"], "disconnected": 0, "offlineSessionsEnded": 0}
    assert client.call("listTokens") == {"totalCount": 0, "tokens": []}

    # A revoked name is free again, with a new secret and hash.
    again = client.call("createToken", name="first", role="reader", validUntil=FUTURE)
    assert again["hash"] != created["hash"]
    assert again["token"] != created["token"]


def test_role_commands(any_client):
    client = any_client
    assert client.call("createRole", rolename="reader", acls=READER_ACLS) is None
    assert client.call("createRole", rolename="admin") is None

    reader = client.call("getRole", rolename="reader")
    assert reader["rolename"] == "reader"
    assert sorted(reader["acls"], key=lambda a: a["topic"]) == sorted(READER_ACLS, key=lambda a: a["topic"])
    assert client.call("getRole", rolename="admin") == {"rolename": "admin", "acls": []}

    roles = client.call("listRoles")
    assert roles["totalCount"] == 2
    assert [r["rolename"] for r in roles["roles"]] == ["admin", "reader"]
    assert roles["roles"][1] == reader

    # addRoleACL: priority defaults to 0.
    assert client.call("addRoleACL", rolename="admin", acltype="publishClientSend",
                       topic="$CONTROL/tokens/v1", allow=True) is None
    assert client.call("addRoleACL", rolename="admin", acltype="subscribeLiteral",
                       topic="$CONTROL/tokens/v1/response", priority=-3, allow=False) is None
    admin = client.call("getRole", rolename="admin")
    assert sorted(admin["acls"], key=lambda a: a["acltype"]) == [
        {"acltype": "publishClientSend", "topic": "$CONTROL/tokens/v1", "priority": 0, "allow": True},
        {"acltype": "subscribeLiteral", "topic": "$CONTROL/tokens/v1/response", "priority": -3, "allow": False},
    ]

    # removeRoleACL removes exactly that one.
    assert client.call("removeRoleACL", rolename="admin", acltype="subscribeLiteral",
                       topic="$CONTROL/tokens/v1/response") is None
    assert client.call("getRole", rolename="admin")["acls"] == [
        {"acltype": "publishClientSend", "topic": "$CONTROL/tokens/v1", "priority": 0, "allow": True}]

    # The same topic under another acltype is a different ACL.
    client.call("addRoleACL", rolename="admin", acltype="publishClientReceive",
                topic="$CONTROL/tokens/v1", allow=True)
    assert len(client.call("getRole", rolename="admin")["acls"]) == 2

    # deleteRole, once unused.
    assert client.call("deleteRole", rolename="admin") is None
    assert client.request([{"command": "getRole", "rolename": "admin"}])[0]["code"] == "notFound"
    assert [r["rolename"] for r in client.call("listRoles")["roles"]] == ["reader"]


@pytest.mark.parametrize("acltype", ["publishClientSend", "publishClientReceive", "subscribeLiteral",
                                     "subscribePattern", "unsubscribeLiteral", "unsubscribePattern"])
def test_every_acltype_is_accepted(client, acltype):
    client.call("createRole", rolename="r")
    client.call("addRoleACL", rolename="r", acltype=acltype, topic="a/+/c", priority=2, allow=True)
    assert client.call("getRole", rolename="r")["acls"] == [
        {"acltype": acltype, "topic": "a/+/c", "priority": 2, "allow": True}]
    client.call("removeRoleACL", rolename="r", acltype=acltype, topic="a/+/c")
    assert client.call("getRole", rolename="r")["acls"] == []


def test_delete_role_after_its_tokens_are_revoked(client):
    client.call("createRole", rolename="r")
    client.call("createToken", name="t", role="r", validUntil=FUTURE)
    assert client.request([{"command": "deleteRole", "rolename": "r"}])[0]["code"] == "inUse"
    client.call("revokeToken", name="t")
    assert client.call("deleteRole", rolename="r") is None
    assert client.call("listRoles") == {"totalCount": 0, "roles": []}


@pytest.mark.parametrize("name", ["é" * 30, "😀" * 30, "x" * 30, "a b", "ci-bot/üñí €"])
def test_names_up_to_30_code_points(client, name):
    client.call("createRole", rolename="r")
    data = client.call("createToken", name=name, role="r", validUntil=FUTURE)
    assert data["name"] == name
    assert client.call("getToken", name=name)["name"] == name


def test_requested_by_is_never_taken_from_the_payload(client):
    client.call("createRole", rolename="r")
    data = client.call("createToken", name="t", role="r", validUntil=FUTURE,
                       requestedBy="mallory", status="invalid", hash="0" * 64, issuedAt="2020-01-01T00:00:00Z")
    assert data["requestedBy"] == client.client_id
    assert data["status"] == "valid"
    assert data["hash"] == sha256_hex(data["token"])
    assert data["issuedAt"] != "2020-01-01T00:00:00Z"


# ---------------------------------------------------------------- batches

def test_batch_runs_in_order_with_correlation_data(any_client):
    client = any_client
    batch = [
        {"command": "createRole", "rolename": "r", "correlationData": "1"},
        {"command": "createToken", "name": "a", "role": "r", "validUntil": FUTURE, "correlationData": "2"},
        {"command": "createToken", "name": "a", "role": "r", "validUntil": FUTURE, "correlationData": "3"},
        {"command": "noSuchCommand", "correlationData": "4"},
        {"command": "getToken", "name": "a", "correlationData": "5"},
        {"command": "revokeToken", "name": "a", "correlationData": "6"},
        {"command": "getToken", "name": "a", "correlationData": "7"},
        {"command": "listTokens", "correlationData": "8"},
        {"command": "getRole", "rolename": "r"},
        {"command": "deleteRole", "rolename": "r", "correlationData": "ünïcode ✓"},
    ]
    responses = client.request(batch)
    assert [r["command"] for r in responses] == [
        "createRole", "createToken", "createToken", "noSuchCommand", "getToken",
        "revokeToken", "getToken", "listTokens", "getRole", "deleteRole"]
    assert [r.get("correlationData") for r in responses] == [
        "1", "2", "3", "4", "5", "6", "7", "8", None, "ünïcode ✓"]
    assert "error" not in responses[0] and "data" not in responses[0]
    assert responses[1]["data"]["name"] == "a"
    assert responses[2]["code"] == "exists" and "data" not in responses[2]
    assert responses[3]["code"] == "invalid"
    assert responses[4]["data"]["hash"] == responses[1]["data"]["hash"]
    assert responses[5]["data"]["name"] == "a"
    assert responses[6]["code"] == "notFound"
    assert responses[7]["data"] == {"totalCount": 0, "tokens": []}
    assert responses[8]["data"] == {"rolename": "r", "acls": []}
    assert "error" not in responses[9]
    for response in responses:
        if "error" in response:
            assert isinstance(response["error"], str) and response["error"]


def test_many_requests_in_a_row_each_get_their_reply(client):
    client.call("createRole", rolename="r")
    for i in range(20):
        responses = client.request([{"command": "createToken", "name": f"n{i}", "role": "r",
                                     "validUntil": FUTURE, "correlationData": str(i)}])
        assert responses[0]["correlationData"] == str(i)
        assert responses[0]["data"]["name"] == f"n{i}"
    assert client.call("listTokens")["totalCount"] == 20


# ---------------------------------------------------------------- MQTT 5 Response Topic

def test_response_topic_and_correlation_data(make_client):
    client = make_client(protocol=V5, subscribe_response=False)
    properties = response_properties("my/reply/topic", b"abc")
    message = client.request_message('{"commands":[{"command":"createRole","rolename":"r"},'
                                     '{"command":"listRoles"}]}', properties=properties)
    assert message.topic == "my/reply/topic"
    assert message.properties.CorrelationData == b"abc"
    reply = json.loads(message.payload)
    assert [r["command"] for r in reply["responses"]] == ["createRole", "listRoles"]
    assert reply["responses"][1]["data"]["totalCount"] == 1
    # Exactly one reply, and nothing on the default response topic.
    assert client.drain() == []


def test_response_topic_without_correlation_data(make_client):
    client = make_client(protocol=V5)
    message = client.request_message('{"commands":[{"command":"listRoles"}]}',
                                     properties=response_properties("replies/for/me"))
    assert message.topic == "replies/for/me"
    assert not hasattr(message.properties, "CorrelationData")
    assert client.drain() == []


def test_reply_needs_no_subscription(make_client):
    for protocol in (V5, 4):
        client = make_client(protocol=protocol, subscribe_response=False)
        message = client.request_message('{"commands":[{"command":"listTokens"}]}')
        assert message.topic == RESPONSE_TOPIC
        assert b'"totalCount":0' in message.payload.replace(b" ", b"")
