"""
Who asked (SPEC section 4): requestedBy is the username when the client
gave one, else its client id; every change is logged as
`tokens: <requester> | <command> | <details>`.
"""
import re

import pytest

from tokens_helpers import FUTURE, V5, V311


@pytest.fixture
def users_broker(broker_factory):
    return broker_factory(users={"alice": "alice-password", "bob": "bob-password"})


def change_lines(broker, command=None):
    pattern = re.compile(r"tokens: (.*?) \| (\w+) \| (.*)$")
    found = []
    for line in broker.log_lines():
        match = pattern.search(line)
        if match and (command is None or match.group(2) == command):
            found.append(match.groups())
    return found


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_requested_by_is_the_username(users_broker, make_client, protocol):
    client = make_client(broker=users_broker, protocol=protocol, client_id="alice-laptop",
                         username="alice", password="alice-password")
    client.call("createRole", rolename="r")
    data = client.call("createToken", name="t1", role="r", validUntil=FUTURE)
    assert data["requestedBy"] == "alice"
    assert client.call("getToken", name="t1")["requestedBy"] == "alice"
    assert users_broker.read_state()["tokens"][0]["requestedBy"] == "alice"
    users_broker.wait_for_log(r"tokens: alice \| createToken \| name=t1 role=r\b")
    assert ("alice", "createToken", f"name=t1 role=r hash={data['hash']}") in change_lines(users_broker)


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_requested_by_is_the_client_id_without_username(users_broker, make_client, protocol):
    client = make_client(broker=users_broker, protocol=protocol, client_id="edge-gateway-7")
    client.call("createRole", rolename="r")
    data = client.call("createToken", name="t2", role="r", validUntil=FUTURE)
    assert data["requestedBy"] == "edge-gateway-7"
    users_broker.wait_for_log(r"tokens: edge-gateway-7 \| createToken \| name=t2 role=r\b")


def test_each_requester_is_recorded_separately(users_broker, make_client):
    alice = make_client(broker=users_broker, username="alice", password="alice-password")
    bob = make_client(broker=users_broker, protocol=V311, username="bob", password="bob-password")
    anonymous = make_client(broker=users_broker, client_id="anon-1")
    alice.call("createRole", rolename="r")
    alice.call("createToken", name="by-alice", role="r", validUntil=FUTURE)
    bob.call("createToken", name="by-bob", role="r", validUntil=FUTURE)
    anonymous.call("createToken", name="by-anon", role="r", validUntil=FUTURE)
    listed = {t["name"]: t["requestedBy"] for t in anonymous.call("listTokens")["tokens"]}
    assert listed == {"by-alice": "alice", "by-bob": "bob", "by-anon": "anon-1"}


def test_every_change_is_logged_with_the_requester(users_broker, make_client):
    client = make_client(broker=users_broker, username="alice", password="alice-password")
    client.call("createRole", rolename="r", acls=[{"acltype": "subscribePattern", "topic": "a/#", "allow": True}])
    created = client.call("createToken", name="t", role="r", validUntil=FUTURE)
    client.call("addRoleACL", rolename="r", acltype="publishClientSend", topic="a/b", priority=4, allow=False)
    client.call("removeRoleACL", rolename="r", acltype="publishClientSend", topic="a/b")
    client.call("revokeToken", hash=created["hash"])
    client.call("deleteRole", rolename="r")
    # Reads and refused commands are not changes.
    client.request([{"command": "listTokens"}, {"command": "getRole", "rolename": "x"},
                    {"command": "createToken", "name": "y", "role": "missing", "validUntil": FUTURE},
                    {"command": "deleteRole", "rolename": "missing"}])
    client.call("listRoles")

    users_broker.wait_for_log(r"tokens: alice \| deleteRole \| ")
    lines = change_lines(users_broker)
    assert [(who, command) for who, command, _ in lines] == [
        ("alice", "createRole"), ("alice", "createToken"), ("alice", "addRoleACL"),
        ("alice", "removeRoleACL"), ("alice", "revokeToken"), ("alice", "deleteRole")]
    details = {command: text for _, command, text in lines}
    assert details["createRole"].startswith("rolename=r")
    assert details["createToken"].startswith("name=t role=r")
    assert "rolename=r" in details["addRoleACL"] and "a/b" in details["addRoleACL"]
    assert "publishClientSend" in details["removeRoleACL"] and "a/b" in details["removeRoleACL"]
    assert details["revokeToken"].startswith("name=t") and created["hash"] in details["revokeToken"]
    assert details["deleteRole"].startswith("rolename=r")
    assert created["token"] not in users_broker.log
