"""
What a token may do (SPEC section 3, README "What a token may do"), through
real publishes and subscriptions: publishClientSend with priorities,
subscribeLiteral against subscribePattern (filter covering filter), what a
subscriber receives (publishClientReceive), unsubscribing, the defaults of
an empty role, role changes reaching connected clients, and who may manage
tokens through $CONTROL/tokens/v1.

An anonymous observer (the test broker's acl_file grants anonymous clients
everything) tells what was really delivered.
"""
import json
import socket
import subprocess

import pytest

from access_helpers import (
    NOT_AUTHORIZED, SUBACK_FAILURE_V311, Device, MosquittoSub, acl, issue, make_role,
    mosquitto_pub,
)
from tokens_helpers import (
    CONTROL_TOPIC, FUTURE, MOSQUITTO_RR, QUIET_PERIOD, RESPONSE_TOPIC, V5, V311, check_created,
    mosquitto_env, snapshot,
)


@pytest.fixture
def observe(broker):
    """observe(*filters): an anonymous subscriber, closed after the test."""
    observers = []

    def make(*filters):
        observer = Device(broker.port, subscriptions=list(filters))
        observers.append(observer)
        return observer

    yield make
    for observer in observers:
        observer.close()


def denied(protocol):
    return NOT_AUTHORIZED if protocol == V5 else SUBACK_FAILURE_V311


def puback_denied(protocol):
    """MQTT 3.1.1 has no PUBACK reason code: a refused publish is acked as
    if it had been accepted, and only its absence tells."""
    return NOT_AUTHORIZED if protocol == V5 else 0


def topics(seen):
    return [topic for topic, _ in seen]


# ---------------------------------------------------------------- publishClientSend

@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_publish_send_allowed_and_denied(broker, admin, observe, devices, protocol):
    make_role(admin, "sensors", [acl("publishClientSend", "sensors/+/data")])
    secret, _ = issue(admin, "boiler-7", "sensors")
    observer = observe("sensors/#", "other/#")
    dev = devices(broker, "boiler-7", secret, protocol=protocol)

    assert dev.publish_code("sensors/boiler-7/cmd", "no") == puback_denied(protocol)
    assert dev.publish_code("other/thing", "no") == puback_denied(protocol)
    assert dev.publish_code("sensors/boiler-7/data/extra", "no") == puback_denied(protocol)
    assert dev.publish_code("sensors/boiler-7/data", "yes") == 0
    seen = observer.expect("sensors/boiler-7/data", "yes")
    assert topics(seen) == ["sensors/boiler-7/data"], seen
    assert observer.received() == []


def test_publish_with_mosquitto_pub(broker, admin, observe):
    make_role(admin, "sensors", [acl("publishClientSend", "sensors/+/data")])
    secret, _ = issue(admin, "boiler-7", "sensors")
    observer = observe("#")

    refused = mosquitto_pub(broker.port, "sensors/boiler-7/cmd", "off", "boiler-7", secret, protocol=V5, qos=1)
    assert refused.returncode == 0
    assert "Not authorized" in refused.stderr
    refused311 = mosquitto_pub(broker.port, "sensors/boiler-7/cmd", "off", "boiler-7", secret)
    assert refused311.returncode == 0
    allowed = mosquitto_pub(broker.port, "sensors/boiler-7/data", "21.5", "boiler-7", secret, qos=1)
    assert allowed.returncode == 0 and allowed.stderr == ""
    seen = observer.expect("sensors/boiler-7/data", "21.5")
    assert topics(seen) == ["sensors/boiler-7/data"], seen


def test_higher_priority_decides(broker, admin, observe, devices):
    make_role(admin, "r")
    # Added in both orders: the priority decides, not the order.
    admin.call("addRoleACL", rolename="r", acltype="publishClientSend", topic="a/secret/#", priority=5, allow=False)
    admin.call("addRoleACL", rolename="r", acltype="publishClientSend", topic="a/#", priority=1, allow=True)
    admin.call("addRoleACL", rolename="r", acltype="publishClientSend", topic="b/open", priority=3, allow=True)
    admin.call("addRoleACL", rolename="r", acltype="publishClientSend", topic="b/#", priority=0, allow=False)
    admin.call("addRoleACL", rolename="r", acltype="publishClientSend", topic="c/#", priority=-2, allow=True)
    admin.call("addRoleACL", rolename="r", acltype="publishClientSend", topic="c/+", priority=-1, allow=False)
    secret, _ = issue(admin, "t", "r")
    observer = observe("a/#", "b/#", "c/#")
    dev = devices(broker, "t", secret)

    expected = {"a/secret": False, "a/secret/x": False, "a/open": True, "a/open/deep": True,
                "b/open": True, "b/other": False, "b": False,
                "c/x": False, "c/x/y": True}
    for topic, allowed in expected.items():
        assert dev.publish_code(topic, topic) == (0 if allowed else NOT_AUTHORIZED), topic
    dev.publish_code("a/open", "end")
    seen = observer.expect("a/open", "end")
    assert topics(seen[:-1]) == [t for t, allowed in expected.items() if allowed]


# ---------------------------------------------------------------- subscribe

SUBSCRIBE_ACLS = [
    acl("subscribeLiteral", "lit/+/x"),
    acl("subscribePattern", "a/#", priority=9),
    acl("subscribeLiteral", "a/secret", allow=False),
    acl("subscribePattern", "c/+"),
    acl("subscribePattern", "d/#", allow=False, priority=5),
    acl("subscribePattern", "d/+", allow=True, priority=1),
    acl("subscribePattern", "e/+/#"),
]

SUBSCRIBE_CASES = {
    "lit/+/x": True,       # literal: exactly this string
    "lit/y/x": False,      # ... and nothing else
    "lit/#": False,
    "a/#": True,           # a pattern covers itself
    "a/+/b": True,         # a/# covers a/+/b
    "a/+": True,
    "a": True,             # a/# matches a itself
    "a/1/2/3": True,
    "a/secret": False,     # a literal deny decides before any pattern
    "a/secret/x": True,
    "c/+": True,
    "c/d": True,
    "c/#": False,          # c/+ does not cover c/#
    "c/d/e": False,
    "c": False,
    "+/d": False,
    "#": False,
    "d/x": False,          # higher-priority deny
    "x": False,            # nothing matches: denied
    "e/x": True,           # e/+/# matches e/x (# includes its parent level)
    "e/x/y/#": True,
    "e/#": False,          # e/# also matches e, which e/+/# does not
    "e": False,
}


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_subscribe_literal_and_pattern(broker, admin, devices, protocol):
    make_role(admin, "subs", SUBSCRIBE_ACLS)
    secret, _ = issue(admin, "t", "subs")
    dev = devices(broker, "t", secret, protocol=protocol)
    got = {topic: dev.subscribe_code(topic) for topic in SUBSCRIBE_CASES}
    expected = {topic: (1 if allowed else denied(protocol)) for topic, allowed in SUBSCRIBE_CASES.items()}
    assert got == expected


def test_granted_subscription_delivers(broker, admin, devices):
    make_role(admin, "subs", SUBSCRIBE_ACLS)
    secret, _ = issue(admin, "t", "subs")
    dev = devices(broker, "t", secret)
    assert dev.subscribe_code("a/+/b") == 1
    assert dev.subscribe_code("c/#") == NOT_AUTHORIZED
    with Device(broker.port) as publisher:
        publisher.publish_code("c/1", "not subscribed")
        publisher.publish_code("a/1/b", "hello")
    seen = dev.expect("a/1/b", "hello")
    assert topics(seen) == ["a/1/b"]


def test_wildcards_do_not_reach_dollar_topics(broker, admin, devices):
    make_role(admin, "everything", [acl("publishClientSend", "#"), acl("subscribePattern", "#"),
                                    acl("subscribePattern", "+/#")])
    secret, _ = issue(admin, "t", "everything")
    dev = devices(broker, "t", secret)
    assert dev.subscribe_code("anything/at/all") == 1
    assert dev.subscribe_code("#") == 1
    assert dev.subscribe_code("$SYS/#") == NOT_AUTHORIZED
    assert dev.subscribe_code("$CONTROL/tokens/v1/response") == NOT_AUTHORIZED
    assert dev.publish_code("anything", "x") == 0
    assert dev.publish_code(CONTROL_TOPIC, json.dumps({"commands": [{"command": "listRoles"}]})) == NOT_AUTHORIZED
    assert dev.received() == [("anything", b"x")]


def test_mosquitto_sub_allowed_and_denied(broker, admin):
    make_role(admin, "subs", SUBSCRIBE_ACLS)
    secret, _ = issue(admin, "t", "subs")
    refused = MosquittoSub(broker.port, "c/#", username="t", password=secret)
    allowed = MosquittoSub(broker.port, "c/+", username="t", password=secret)
    try:
        assert refused.wait_exit() is not None
        assert "All subscription requests were denied." in refused.output()[1]
        allowed.wait_subscribed()
        with Device(broker.port) as publisher:
            publisher.publish_code("c/hot", "1")
        assert allowed.wait_message("c/hot 1"), allowed.output()
    finally:
        refused.stop()
        allowed.stop()


# ---------------------------------------------------------------- receive

@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_publish_client_receive_deny(broker, admin, devices, protocol):
    make_role(admin, "listener", [acl("subscribePattern", "x/#"),
                                  acl("publishClientReceive", "x/secret", allow=False)])
    secret, _ = issue(admin, "t", "listener")
    dev = devices(broker, "t", secret, protocol=protocol, subscriptions=["x/#"])
    with Device(broker.port, subscriptions=["x/#"]) as observer, Device(broker.port) as publisher:
        publisher.publish_code("x/secret", "hidden")
        publisher.publish_code("x/public", "shown")
        # The broker did send x/secret to others: only this role is denied.
        assert topics(observer.expect("x/public", "shown")) == ["x/secret", "x/public"]
    seen = dev.expect("x/public", "shown")
    assert topics(seen) == ["x/public"], seen
    assert dev.received() == []


def test_receive_is_checked_for_retained_messages_too(broker, admin, devices):
    make_role(admin, "listener", [acl("subscribePattern", "y/#"),
                                  acl("publishClientReceive", "y/secret", allow=False)])
    secret, _ = issue(admin, "t", "listener")
    with Device(broker.port) as publisher:
        info = publisher.mqtt.publish("y/secret", b"hidden", qos=1, retain=True)
        info.wait_for_publish(5)
        info = publisher.mqtt.publish("y/public", b"shown", qos=1, retain=True)
        info.wait_for_publish(5)
    dev = devices(broker, "t", secret, subscriptions=["y/#"])
    got = dev.received(wait=QUIET_PERIOD + 0.3)
    assert got == [("y/public", b"shown")]


# ---------------------------------------------------------------- defaults and unsubscribe

def test_empty_role_may_do_nothing(broker, admin, observe, devices):
    make_role(admin, "nothing")
    secret, _ = issue(admin, "t", "nothing")
    observer = observe("#")
    dev = devices(broker, "t", secret)
    assert dev.publish_code("a", "1") == NOT_AUTHORIZED
    assert dev.publish_code("t/status", "1") == NOT_AUTHORIZED
    assert dev.subscribe_code("a") == NOT_AUTHORIZED
    assert dev.subscribe_code("#") == NOT_AUTHORIZED
    assert dev.unsubscribe_code("a") < 0x80, "unsubscribing is allowed by default"
    assert observer.received() == []

    refused = mosquitto_pub(broker.port, "a", "1", "t", secret, protocol=V5, qos=1)
    assert "Not authorized" in refused.stderr
    sub = MosquittoSub(broker.port, "a", username="t", password=secret)
    try:
        assert sub.wait_exit() is not None
        assert "All subscription requests were denied." in sub.output()[1]
    finally:
        sub.stop()
    assert observer.received() == []


def test_unsubscribe_acls(broker, admin, devices):
    make_role(admin, "u", [acl("subscribePattern", "u/#"),
                           acl("unsubscribePattern", "u/locked/#", allow=False),
                           acl("unsubscribeLiteral", "u/locked/open")])
    secret, _ = issue(admin, "t", "u")
    dev = devices(broker, "t", secret)
    for topic in ("u/locked/a", "u/locked/open", "u/free"):
        assert dev.subscribe_code(topic) == 1
    assert dev.unsubscribe_code("u/locked/a") == NOT_AUTHORIZED
    assert dev.unsubscribe_code("u/locked/open") == 0
    assert dev.unsubscribe_code("u/free") == 0
    with Device(broker.port) as publisher:
        for topic in ("u/free", "u/locked/open", "u/locked/a"):
            publisher.publish_code(topic, "m")
    # Only the subscription it could not drop is still there.
    assert topics(dev.expect("u/locked/a")) == ["u/locked/a"]


# ---------------------------------------------------------------- role changes

@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_role_change_reaches_a_connected_client(broker, admin, observe, devices, protocol):
    make_role(admin, "r", [acl("publishClientSend", "t/#")])
    secret, _ = issue(admin, "t", "r")
    observer = observe("t/#")
    dev = devices(broker, "t", secret, protocol=protocol)

    assert dev.publish_code("t/1", "before") == 0
    admin.call("removeRoleACL", rolename="r", acltype="publishClientSend", topic="t/#")
    assert dev.publish_code("t/2", "removed") == puback_denied(protocol)
    admin.call("addRoleACL", rolename="r", acltype="publishClientSend", topic="t/#", allow=True)
    assert dev.publish_code("t/3", "added") == 0
    admin.call("addRoleACL", rolename="r", acltype="publishClientSend", topic="t/4", priority=1, allow=False)
    assert dev.publish_code("t/4", "higher deny") == puback_denied(protocol)
    assert dev.publish_code("t/5", "end") == 0
    seen = observer.expect("t/5", "end")
    assert [(t, p.decode()) for t, p in seen] == [("t/1", "before"), ("t/3", "added"), ("t/5", "end")]
    assert dev.is_connected


def test_role_change_reaches_subscriptions_and_delivery(broker, admin, devices):
    make_role(admin, "r")
    secret, _ = issue(admin, "t", "r")
    dev = devices(broker, "t", secret)
    assert dev.subscribe_code("s/#") == NOT_AUTHORIZED
    admin.call("addRoleACL", rolename="r", acltype="subscribePattern", topic="s/#", allow=True)
    assert dev.subscribe_code("s/#") == 1
    with Device(broker.port) as publisher:
        publisher.publish_code("s/1", "a")
        dev.expect("s/1", "a")
        admin.call("addRoleACL", rolename="r", acltype="publishClientReceive", topic="s/#", allow=False)
        publisher.publish_code("s/2", "b")
        admin.call("removeRoleACL", rolename="r", acltype="publishClientReceive", topic="s/#")
        publisher.publish_code("s/3", "c")
    assert topics(dev.expect("s/3", "c")) == ["s/3"]


# ---------------------------------------------------------------- managing tokens

def create_request(name):
    return json.dumps({"commands": [{"command": "createToken", "name": name, "role": "nothing",
                                     "validUntil": FUTURE}]})


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
@pytest.mark.parametrize("role_acls", [
    [],
    [acl("publishClientSend", "#"), acl("subscribePattern", "#")],
    [acl("publishClientSend", "$CONTROL/#", allow=False, priority=1), acl("publishClientSend", "$CONTROL/tokens/v1")],
    [acl("publishClientSend", "$CONTROL/tokens/v1/x"), acl("subscribeLiteral", RESPONSE_TOPIC)],
], ids=["empty", "wildcards", "denied", "other-topic"])
def test_role_without_control_rights_cannot_manage_tokens(broker, admin, devices, protocol, role_acls):
    make_role(admin, "nothing")
    make_role(admin, "user", role_acls)
    secret, _ = issue(admin, "user-token", "user")
    dev = devices(broker, "user-token", secret, protocol=protocol)
    before = snapshot(admin, broker)
    assert dev.publish_code(CONTROL_TOPIC, create_request("sneaky")) == puback_denied(protocol)
    assert dev.received() == [], "a refused request got a reply"
    assert snapshot(admin, broker) == before
    assert "| createToken | name=sneaky" not in broker.log
    assert dev.is_connected


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_role_with_control_rights_manages_tokens(broker, admin, devices, protocol):
    make_role(admin, "nothing")
    make_role(admin, "manager", [acl("publishClientSend", CONTROL_TOPIC)])
    secret, _ = issue(admin, "ops-bot", "manager")
    # Neither the username nor the client id is the token's name.
    dev = devices(broker, "someone-else", secret, protocol=protocol, client_id="ops-laptop")
    assert dev.publish_code(CONTROL_TOPIC, create_request("made-by-bot")) == 0
    message = dev.next_message()
    assert message.topic == RESPONSE_TOPIC
    response = json.loads(message.payload)["responses"][0]
    assert "error" not in response, response
    created = check_created(response["data"], name="made-by-bot", role="nothing", requested_by="ops-bot")
    assert admin.call("getToken", name="made-by-bot")["requestedBy"] == "ops-bot"
    broker.wait_for_log(r"tokens: ops-bot \| createToken \| name=made-by-bot role=nothing")
    assert created not in broker.log

    # Losing the right takes effect at the next request.
    admin.call("removeRoleACL", rolename="manager", acltype="publishClientSend", topic=CONTROL_TOPIC)
    assert dev.publish_code(CONTROL_TOPIC, create_request("second")) == puback_denied(protocol)
    assert dev.received() == []
    assert admin.request([{"command": "getToken", "name": "second"}])[0]["code"] == "notFound"


def test_mosquitto_rr_with_a_manager_token(broker, admin):
    make_role(admin, "manager", [acl("publishClientSend", CONTROL_TOPIC),
                                 acl("subscribeLiteral", RESPONSE_TOPIC)])
    secret, _ = issue(admin, "ops-bot", "manager")
    result = subprocess.run(
        [MOSQUITTO_RR, "-h", "127.0.0.1", "-p", str(broker.port), "-u", "ops-bot", "-P", secret,
         "-t", CONTROL_TOPIC, "-e", RESPONSE_TOPIC, "-W", "5",
         "-m", json.dumps({"commands": [{"command": "createToken", "name": "via-rr", "role": "manager",
                                         "validUntil": FUTURE}]})],
        capture_output=True, text=True, timeout=10, env=mosquitto_env())
    assert result.returncode == 0, (result.stdout, result.stderr)
    data = json.loads(result.stdout)["responses"][0]["data"]
    check_created(data, name="via-rr", role="manager", requested_by="ops-bot")


# ---------------------------------------------------------------- last will

def connect_with_will(broker, topic, payload, **kwargs):
    dev = Device(broker.port, connect=False, **kwargs)
    dev.mqtt.will_set(topic, payload, qos=1)
    dev.connect()
    return dev


def drop(dev):
    """Loses the connection without a DISCONNECT: the broker sends the will."""
    dev.mqtt.socket().shutdown(socket.SHUT_RDWR)
    assert dev.wait_disconnected()
    dev.close()


def test_will_of_an_anonymous_client_is_published(broker, observe):
    """The control for the two tests below: this broker does send wills."""
    observer = observe("status/#")
    drop(connect_with_will(broker, "status/anon", "offline"))
    assert observer.expect("status/anon", "offline")


def test_will_of_a_token_client_is_authorized_by_its_role(broker, admin, observe):
    make_role(admin, "dev", [acl("publishClientSend", "status/#")])
    secret, _ = issue(admin, "dev", "dev")
    observer = observe("status/#")
    dev = connect_with_will(broker, "status/dev", "offline", username="dev", password=secret)
    assert dev.publish_code("status/dev", "online") == 0   # the role allows the topic
    drop(dev)
    seen = observer.expect("status/dev", "offline", timeout=2)
    assert seen == [("status/dev", b"online"), ("status/dev", b"offline")]


def test_will_of_a_token_client_is_not_authorized_by_the_acl_file(broker_factory, make_client):
    broker = broker_factory(acl="topic readwrite #\ntopic readwrite $CONTROL/#\n\nuser dev\ntopic write secret/#\n")
    admin = make_client(broker=broker)
    make_role(admin, "dev", [acl("publishClientSend", "status/#")])
    secret, _ = issue(admin, "dev", "dev")
    with Device(broker.port, subscriptions=["secret/#"]) as observer:
        dev = connect_with_will(broker, "secret/dev", "leaked", username="dev", password=secret)
        assert dev.publish_code("secret/dev", "denied") == NOT_AUTHORIZED   # the role denies the topic
        drop(dev)
        assert observer.received(wait=1.0) == []
