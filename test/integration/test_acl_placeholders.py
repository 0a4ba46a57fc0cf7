"""
ACL placeholders (SPEC section 3; docs/protocol.md "Placeholders: one role
for a fleet"): in a role ACL's topic, a level that is exactly %t stands for
the token's name, %c for the client id and %u for the username of the
connection being checked.

The fleet of these tests: two device tokens, dev-a and dev-b, share one role
(FLEET_ACLS) that confines each to devices/<its name>/..., inbox/<its client
id> and users/<its username>/...; a dashboard token of another role reads
all of devices/. What a user of such a fleet would check, through real
publishes, subscriptions, retained messages and Wills, with paho and with
mosquitto_pub / mosquitto_sub: a device reaches its own topics and no
other's; client ids and usernames holding '/', '+' or '#' (or none) get
nothing from a placeholder; a placeholder never reaches a '$' topic (a
client naming itself $CONTROL does not get the control topic from %c/#);
the commands show the ACLs as written, and a change reaches connected
clients at their next check.

An anonymous client (the test broker's acl_file lets it do anything) tells
what was really published, and publishes what a device should or should
not receive.
"""
import json
import socket

import pytest

from access_helpers import (
    NOT_AUTHORIZED, SUBACK_FAILURE_V311, Device, MosquittoSub, acl, issue, make_role, mosquitto_pub,
)
from session_helpers import disconnects, queued_before_marker, token_session, wait_offline
from tokens_helpers import CONTROL_TOPIC, FUTURE, QUIET_PERIOD, RESPONSE_TOPIC, TIMEOUT, V5, V311

PROTOCOLS = pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])

# The role every device token shares, and the dashboard's.
FLEET_ACLS = [
    acl("publishClientSend", "devices/%t/#"),
    acl("subscribePattern", "devices/%t/#"),
    acl("subscribeLiteral", "inbox/%c"),
    acl("publishClientSend", "clients/%c/#"),
    acl("publishClientSend", "users/%u/#"),
    acl("subscribePattern", "users/%u/#"),
    acl("subscribeLiteral", "mail/%u"),
]
DASHBOARD_ACLS = [acl("subscribePattern", "devices/#")]


class Fleet:
    """The roles and tokens of one test broker; `device(name, ...)` and
    `dashboard()` connect token clients, closed after the test."""

    def __init__(self, broker, admin, made):
        self.broker = broker
        self.admin = admin
        self._made = made
        make_role(admin, "device", FLEET_ACLS)
        make_role(admin, "dashboard", DASHBOARD_ACLS)
        self.secrets = {name: issue(admin, name, "device")[0] for name in ("dev-a", "dev-b")}
        self.secrets["dash"] = issue(admin, "dash", "dashboard")[0]

    def keep(self, client):
        self._made.append(client)
        return client

    def device(self, name, **kwargs):
        """A token client of `name` (username: the token's name unless given)."""
        kwargs.setdefault("username", name)
        return self.keep(Device(self.broker.port, password=self.secrets[name], **kwargs))

    def dashboard(self, **kwargs):
        return self.device("dash", subscriptions=["devices/#"], **kwargs)

    def anonymous(self, **kwargs):
        return self.keep(Device(self.broker.port, **kwargs))


@pytest.fixture
def fleet(broker, admin):
    made = []
    yield Fleet(broker, admin, made)
    for client in made:
        client.close()


def denied(protocol):
    return NOT_AUTHORIZED if protocol == V5 else SUBACK_FAILURE_V311


def puback_denied(protocol):
    """MQTT 3.1.1 has no PUBACK reason code: only the absence of delivery tells."""
    return NOT_AUTHORIZED if protocol == V5 else 0


def publish_retained(dev, topic, payload):
    """Publishes a retained message at QoS 1; returns the PUBACK's reason
    code (as Device.publish_code)."""
    info = dev.mqtt.publish(topic, payload, qos=1, retain=True)
    info.wait_for_publish(TIMEOUT)
    assert info.is_published(), f"no PUBACK for {topic!r}"
    code = dev.puback_codes.get(info.mid, 0)
    return 0 if code == 0x10 else code


def with_will(fleet, name, topic, payload, **kwargs):
    """A token client of `name` with a Will on `topic`."""
    dev = fleet.device(name, connect=False, **kwargs)
    dev.mqtt.will_set(topic, payload, qos=1)
    dev.connect()
    return dev


def drop(broker, dev):
    """Loses the connection without a DISCONNECT (the broker publishes the
    Will) and waits until the broker has dealt with it."""
    before = disconnects(broker, dev.client_id)
    dev.mqtt.socket().shutdown(socket.SHUT_RDWR)
    assert dev.wait_disconnected()
    dev.close()
    wait_offline(broker, dev.client_id, before)


# ---------------------------------------------------------------- %t: publishing

PUBLISH_CASES = {
    "devices/dev-a/temp": True,
    "devices/dev-a": True,            # devices/%t/# matches devices/dev-a itself
    "devices/dev-a/x/y/z": True,
    "devices/dev-b/temp": False,      # the other device
    "devices/dev-ab/temp": False,     # a name that starts like its own
    "devices/dev/temp": False,
    "devices/%t/temp": False,         # the placeholder is not a topic level of its own
    "devices//temp": False,
    "devices": False,
    "x/devices/dev-a/temp": False,
}


@PROTOCOLS
def test_device_publishes_under_its_own_name_only(fleet, protocol):
    dash = fleet.dashboard()
    everything = fleet.anonymous(subscriptions=["#"])
    # %t is the token's name: a username and client id naming the other
    # device change nothing.
    dev = fleet.device("dev-a", protocol=protocol, username="dev-b", client_id="dev-b")
    for topic, allowed in PUBLISH_CASES.items():
        assert dev.publish_code(topic, topic) == (0 if allowed else puback_denied(protocol)), topic
    assert dev.publish_code("devices/dev-a/end", "end") == 0
    delivered = [t for t, allowed in PUBLISH_CASES.items() if allowed] + ["devices/dev-a/end"]
    assert [t for t, _ in dash.expect("devices/dev-a/end", "end")] == delivered
    assert [t for t, _ in everything.expect("devices/dev-a/end", "end")] == delivered
    assert dash.received() == [] and everything.received() == []


def test_mosquitto_pub_and_sub_in_a_fleet(fleet):
    port, secrets = fleet.broker.port, fleet.secrets
    dash = MosquittoSub(port, "devices/#", username="dash", password=secrets["dash"], protocol=V5)
    spy = MosquittoSub(port, "devices/dev-b/#", username="dev-a", password=secrets["dev-a"], protocol=V5)
    try:
        dash.wait_subscribed()
        assert spy.wait_exit() is not None, "a subscription to another device's topics was granted"
        assert "All subscription requests were denied." in spy.output()[1]

        own = mosquitto_pub(port, "devices/dev-a/temp", "21.5", "dev-a", secrets["dev-a"], protocol=V5, qos=1)
        assert own.returncode == 0 and own.stderr == "", own.stderr
        forged = mosquitto_pub(port, "devices/dev-b/temp", "-40", "dev-a", secrets["dev-a"], protocol=V5, qos=1)
        assert "Not authorized" in forged.stderr
        other = mosquitto_pub(port, "devices/dev-b/temp", "19.0", "dev-b", secrets["dev-b"], qos=1)
        assert other.returncode == 0 and other.stderr == "", other.stderr

        assert dash.wait_message("devices/dev-b/temp 19.0"), dash.output()
        # (-d also prints "Subscribed (mid: 1): 1" on MQTT 5.)
        delivered = [line for line in dash.messages() if line.startswith("devices/")]
        assert delivered == ["devices/dev-a/temp 21.5", "devices/dev-b/temp 19.0"]
    finally:
        dash.stop()
        spy.stop()


# ---------------------------------------------------------------- %t: subscribing and receiving

SUBSCRIBE_CASES = {
    "devices/dev-a/#": True,
    "devices/dev-a/+": True,
    "devices/dev-a/+/temp": True,
    "devices/dev-a": True,
    "devices/dev-a/temp": True,
    "devices/dev-b/#": False,
    "devices/dev-b/temp": False,
    "devices/+/#": False,             # every device
    "devices/+/temp": False,
    "devices/+": False,
    "devices/#": False,
    "#": False,
    "+/dev-a/#": False,
    "devices/%t/#": False,            # the placeholder itself, as a filter
    "devices/dev-ab/#": False,
}


@PROTOCOLS
def test_device_subscribes_to_its_own_tree_only(fleet, protocol):
    dev = fleet.device("dev-a", protocol=protocol)
    got = {topic: dev.subscribe_code(topic) for topic in SUBSCRIBE_CASES}
    assert got == {topic: (1 if allowed else denied(protocol)) for topic, allowed in SUBSCRIBE_CASES.items()}


@PROTOCOLS
def test_devices_never_receive_each_others_messages(fleet, protocol):
    a = fleet.device("dev-a", protocol=protocol)
    b = fleet.device("dev-b", protocol=protocol)
    for wider in ("devices/+/#", "devices/#", "devices/dev-b/#"):
        assert a.subscribe_code(wider) == denied(protocol)
    assert a.subscribe_code("devices/dev-a/#") == 1
    assert b.subscribe_code("devices/dev-b/#") == 1
    publisher = fleet.anonymous()
    for topic in ("devices/dev-b/1", "devices/dev-a/1", "devices/dev-b/2"):
        publisher.publish_code(topic, topic)
    assert b.publish_code("devices/dev-b/3", "from b") == 0
    assert a.publish_code("devices/dev-a/2", "from a") == 0
    publisher.publish_code("devices/dev-a/end", "end")
    publisher.publish_code("devices/dev-b/end", "end")
    assert [t for t, _ in a.expect("devices/dev-a/end", "end")] == [
        "devices/dev-a/1", "devices/dev-a/2", "devices/dev-a/end"]
    assert [t for t, _ in b.expect("devices/dev-b/end", "end")] == [
        "devices/dev-b/1", "devices/dev-b/2", "devices/dev-b/3", "devices/dev-b/end"]
    assert a.received() == [] and b.received() == []


def test_taking_over_another_devices_session_gives_none_of_its_messages(fleet):
    """dev-a logs in with the client id of dev-b's persistent session and so
    holds dev-b's subscription: deliveries are checked against dev-a's
    token, whose %t is dev-a."""
    b = token_session(fleet.broker, "dev-b", fleet.secrets["dev-b"], client_id="dev-b-session")
    assert b.subscribe_code("devices/dev-b/#") == 1
    b.leave()
    a = token_session(fleet.broker, "dev-a", fleet.secrets["dev-a"], client_id="dev-b-session")
    fleet.keep(a)
    assert a.session_present, "the broker did not keep dev-b's session"
    assert a.subscribe_code("devices/dev-a/#") == 1
    publisher = fleet.anonymous()
    publisher.publish_code("devices/dev-b/secret", "for b only")
    publisher.publish_code("devices/dev-a/end", "end")
    assert a.expect("devices/dev-a/end", "end") == [("devices/dev-a/end", b"end")]
    assert a.received() == []


@PROTOCOLS
def test_an_offline_device_gets_what_was_queued_for_its_own_topics(fleet, protocol):
    """A persistent session away from the broker is checked with its own
    token's values: its commands are queued, and delivered when it comes
    back."""
    broker, secret = fleet.broker, fleet.secrets["dev-a"]
    a = fleet.keep(token_session(broker, "dev-a", secret, protocol, client_id="dev-a-persistent"))
    assert a.subscribe_code("devices/dev-a/#") == 1
    a.leave()
    publisher = fleet.anonymous()
    publisher.publish("devices/dev-a/cmd", "reboot", qos=1)
    publisher.publish("devices/dev-b/cmd", "not for dev-a", qos=1)
    back = fleet.keep(token_session(broker, "dev-a", secret, protocol, client_id="dev-a-persistent"))
    assert back.session_present
    assert queued_before_marker(publisher, back, marker_topic="devices/dev-a/marker") == [
        ("devices/dev-a/cmd", "reboot", 1)]


# ---------------------------------------------------------------- %t: retained messages

def test_retained_messages_of_another_device_are_not_delivered(fleet):
    b = fleet.device("dev-b")
    assert publish_retained(b, "devices/dev-b/state", "b-state") == 0
    a = fleet.device("dev-a")
    assert publish_retained(a, "devices/dev-a/state", "a-state") == 0
    assert publish_retained(a, "devices/dev-b/state", "forged") == NOT_AUTHORIZED
    # Both are retained, and dev-b's was not overwritten.
    watcher = fleet.anonymous(subscriptions=["devices/#"])
    assert sorted(watcher.received(wait=QUIET_PERIOD + 0.3)) == [
        ("devices/dev-a/state", b"a-state"), ("devices/dev-b/state", b"b-state")]

    late = fleet.device("dev-a")
    for wider in ("devices/#", "devices/+/state", "devices/+/#", "devices/dev-b/state", "#"):
        assert late.subscribe_code(wider) == NOT_AUTHORIZED, wider
    assert late.received() == []
    assert late.subscribe_code("devices/dev-a/#") == 1
    assert late.subscribe_code("devices/dev-a/+") == 1
    # Once per subscription: its own retained message, nothing of dev-b's.
    assert late.received(wait=QUIET_PERIOD + 0.3) == [("devices/dev-a/state", b"a-state")] * 2


# ---------------------------------------------------------------- %t: Wills

@PROTOCOLS
def test_will_on_its_own_topic_only(fleet, protocol):
    dash = fleet.dashboard()
    forged = with_will(fleet, "dev-a", "devices/dev-b/status", "offline (forged)", protocol=protocol)
    drop(fleet.broker, forged)
    own = with_will(fleet, "dev-a", "devices/dev-a/status", "offline", protocol=protocol)
    drop(fleet.broker, own)
    assert dash.expect("devices/dev-a/status", "offline") == [("devices/dev-a/status", b"offline")]
    assert dash.received() == []


def test_delayed_will_of_an_offline_session(fleet):
    """An MQTT 5 Will Delay: the broker publishes the Will after the
    connection is gone, and checks it then with the session's token."""
    broker, secret = fleet.broker, fleet.secrets["dev-a"]
    dash = fleet.dashboard()
    common = dict(protocol=V5, will_delay=1, session_expiry=30)
    own = fleet.keep(token_session(broker, "dev-a", secret, client_id="dev-a-will",
                                   will=("devices/dev-a/status", "late", 1), **common))
    forged = fleet.keep(token_session(broker, "dev-a", secret, client_id="dev-a-forged",
                                      will=("devices/dev-b/status", "late", 1), **common))
    forged.drop()
    own.drop()
    seen = dash.expect("devices/dev-a/status", "late", timeout=5)
    seen += dash.received(1.5)
    assert seen == [("devices/dev-a/status", b"late")]


# ---------------------------------------------------------------- %c

def test_inbox_of_its_own_client_id_only(fleet):
    a = fleet.device("dev-a", client_id="a-1")
    b = fleet.device("dev-b", client_id="b-1")
    cases = {"inbox/a-1": 1, "inbox/b-1": NOT_AUTHORIZED, "inbox/+": NOT_AUTHORIZED,
             "inbox/#": NOT_AUTHORIZED, "inbox": NOT_AUTHORIZED, "inbox/a-1/x": NOT_AUTHORIZED,
             "inbox/%c": NOT_AUTHORIZED, "inbox/dev-a": NOT_AUTHORIZED}
    assert {topic: a.subscribe_code(topic) for topic in cases} == cases
    assert b.subscribe_code("inbox/b-1") == 1
    assert a.publish_code("clients/a-1/hello", "1") == 0
    assert a.publish_code("clients/b-1/hello", "1") == NOT_AUTHORIZED
    publisher = fleet.anonymous()
    for topic in ("inbox/b-1", "inbox/a-1", "inbox/a-2"):
        publisher.publish_code(topic, "for " + topic)
    assert a.expect("inbox/a-1") == [("inbox/a-1", b"for inbox/a-1")]
    assert b.expect("inbox/b-1") == [("inbox/b-1", b"for inbox/b-1")]
    assert a.received() == [] and b.received() == []


def test_client_id_assigned_by_the_broker(fleet):
    """An MQTT 5 client that sends an empty client id gets one from the
    broker (Assigned Client Identifier): %c is that one."""
    assigned = {}

    class Assigned(Device):
        def _on_connect(self, client, userdata, flags, rc, properties=None):
            assigned["id"] = getattr(properties, "AssignedClientIdentifier", None)
            super()._on_connect(client, userdata, flags, rc, properties)

    dev = fleet.keep(Assigned(fleet.broker.port, client_id="", username="dev-a", password=fleet.secrets["dev-a"]))
    assert assigned["id"], "the broker assigned no client id"
    assert dev.subscribe_code(f"inbox/{assigned['id']}") == 1
    assert dev.subscribe_code("inbox/+") == NOT_AUTHORIZED


def test_client_id_is_chosen_by_the_client(fleet):
    """Why docs/protocol.md says %c is only as trusted as the token's
    client id binding: without one, a token of the role may name itself
    after another device and read that device's inbox."""
    dev = fleet.device("dev-a", client_id="b-1")
    assert dev.subscribe_code("inbox/b-1") == 1


# Values a client may choose that must not stand for a level: each would
# reach other levels ('/') or match like a wildcard ('+', '#') if it did.
# ('a+b' and the like cannot even be written into a valid filter or topic.)
HOSTILE = ["+", "#", "a/b", "/", "inbox/+"]


def has_wildcard(text):
    return "+" in text or "#" in text


def valid_filters(*filters):
    """Those that are MQTT topic filters ('+' and '#' whole levels, '#'
    last): the broker closes the connection of a client that sends another."""
    def valid(f):
        levels = f.split("/")
        return all(level in ("+", "#") or not has_wildcard(level) for level in levels) \
            and "#" not in levels[:-1]
    return [f for f in dict.fromkeys(filters) if valid(f)]


@pytest.mark.parametrize("client_id", HOSTILE)
def test_client_id_with_wildcards_or_slashes_gets_nothing_from_placeholders(fleet, client_id):
    dev = fleet.device("dev-a", client_id=client_id)
    # inbox/%c is a literal grant: its own client id written into it is the
    # filter a broken substitution would grant (inbox/+ would read every inbox).
    for topic in valid_filters(f"inbox/{client_id}", "inbox/+", "inbox/#"):
        assert dev.subscribe_code(topic) == NOT_AUTHORIZED, topic
    if not has_wildcard(client_id):
        assert dev.publish_code(f"clients/{client_id}/x", "x") == NOT_AUTHORIZED
    # The token still works: %t does not depend on the client id.
    assert dev.publish_code("devices/dev-a/x", "x") == 0
    fleet.anonymous().publish_code("inbox/victim", "private")
    assert dev.received() == []


@pytest.mark.parametrize("username", HOSTILE)
def test_username_with_wildcards_or_slashes_gets_nothing_from_placeholders(fleet, username):
    dev = fleet.device("dev-a", username=username)
    for topic in valid_filters(f"mail/{username}", "mail/+", "mail/#", f"users/{username}/#", "users/+/#",
                               "users/#"):
        assert dev.subscribe_code(topic) == NOT_AUTHORIZED, topic
    if not has_wildcard(username):
        assert dev.publish_code(f"users/{username}/x", "x") == NOT_AUTHORIZED
        assert dev.publish_code(f"users/{username}", "x") == NOT_AUTHORIZED
    assert dev.publish_code("devices/dev-a/x", "x") == 0
    publisher = fleet.anonymous()
    publisher.publish_code("mail/alice", "private")
    publisher.publish_code("users/alice/x", "private")
    assert dev.received() == []


@pytest.mark.parametrize("name", ["site-1/boiler", "+"])
def test_token_name_with_a_slash_or_wildcard_gets_nothing_from_t(broker, admin, name):
    """The name rule lets a token's name hold '/', '+' or '#': such a
    token gets nothing from %t (docs/protocol.md says so to admins)."""
    make_role(admin, "device", FLEET_ACLS)
    secret, _ = issue(admin, name, "device")
    with Device(broker.port, username="someone", password=secret) as dev:
        for topic in valid_filters(f"devices/{name}/#", "devices/+/#", "devices/#"):
            assert dev.subscribe_code(topic) == NOT_AUTHORIZED, topic
        if not has_wildcard(name):
            assert dev.publish_code(f"devices/{name}/x", "x") == NOT_AUTHORIZED
        assert dev.publish_code("users/someone/x", "x") == 0


def test_username_decides_users_topics(fleet):
    observer = fleet.anonymous(subscriptions=["users/#"])
    alice = fleet.device("dev-a", username="alice")
    assert alice.publish_code("users/alice/status", "on") == 0
    assert alice.publish_code("users/bob/status", "forged") == NOT_AUTHORIZED
    assert alice.subscribe_code("users/alice/#") == 1
    assert alice.subscribe_code("users/bob/#") == NOT_AUTHORIZED
    assert alice.subscribe_code("mail/alice") == 1
    assert alice.subscribe_code("mail/bob") == NOT_AUTHORIZED
    assert observer.expect("users/alice/status", "on") == [("users/alice/status", b"on")]
    assert observer.received() == []


def test_empty_and_absent_username_match_no_placeholder(fleet):
    """The broker keeps an empty username as none. MQTT 5 lets a client
    send a password without a username: mosquitto_pub -V 5 -P does."""
    observer = fleet.anonymous(subscriptions=["users/#", "devices/#"])
    empty = fleet.device("dev-a", username="")
    assert empty.publish_code("users//x", "empty") == NOT_AUTHORIZED
    assert empty.publish_code("users/x", "empty") == NOT_AUTHORIZED
    assert empty.subscribe_code("users//#") == NOT_AUTHORIZED
    assert empty.subscribe_code("users/+/#") == NOT_AUTHORIZED
    port, secret = fleet.broker.port, fleet.secrets["dev-a"]
    for topic in ("users//x", "users/x", "users/(null)/x"):
        absent = mosquitto_pub(port, topic, "absent", password=secret, protocol=V5, qos=1)
        assert "Not authorized" in absent.stderr, (topic, absent.stdout, absent.stderr)
    # Logged in without a username all the same: %t still applies.
    allowed = mosquitto_pub(port, "devices/dev-a/x", "no username", password=secret, protocol=V5, qos=1)
    assert allowed.returncode == 0 and allowed.stderr == "", allowed.stderr
    assert observer.expect("devices/dev-a/x") == [("devices/dev-a/x", b"no username")]
    assert observer.received() == []


# ---------------------------------------------------------------- '$' topics

def dollar_role(broker, admin, placeholder):
    """A role whose only grants are <placeholder>/# (publish and subscribe);
    returns connect(value, protocol): a token client of that role whose
    token name, client id or username (as the placeholder says) is value."""
    make_role(admin, "self", [acl("publishClientSend", f"{placeholder}/#"),
                              acl("subscribePattern", f"{placeholder}/#")])
    secrets = {}

    def connect(value, protocol=V5):
        name = value if placeholder == "%t" else "selfie"
        if name not in secrets:
            secrets[name] = issue(admin, name, "self")[0]
        kwargs = {"protocol": protocol, "password": secrets[name],
                  "username": value if placeholder == "%u" else name}
        if placeholder == "%c":
            kwargs["client_id"] = value
        return Device(broker.port, **kwargs)

    return connect


LIST_AND_CREATE = json.dumps({"commands": [
    {"command": "listTokens"},
    {"command": "createToken", "name": "sneaky", "role": "self", "validUntil": FUTURE}]})


@PROTOCOLS
@pytest.mark.parametrize("placeholder", ["%c", "%u", "%t"])
def test_placeholder_never_reaches_the_control_topic(broker, admin, placeholder, protocol):
    connect = dollar_role(broker, admin, placeholder)
    # The control: a plain value gets <value>/#.
    with connect("plain", protocol) as plain, Device(broker.port, subscriptions=["plain/#"]) as observer:
        assert plain.publish_code("plain/x", "x") == 0
        assert observer.expect("plain/x", "x") == [("plain/x", b"x")]
        assert plain.subscribe_code("plain/#") == 1
    with connect("$CONTROL", protocol) as dev:
        assert dev.publish_code(CONTROL_TOPIC, LIST_AND_CREATE) == puback_denied(protocol)
        assert dev.received(wait=QUIET_PERIOD + 0.5) == [], "the control topic answered"
        for topic in (RESPONSE_TOPIC, "$CONTROL/#", "$CONTROL/tokens/v1/events"):
            assert dev.subscribe_code(topic) == denied(protocol), topic
        assert dev.is_connected
    assert admin.request([{"command": "getToken", "name": "sneaky"}])[0]["code"] == "notFound"
    assert "| createToken | name=sneaky" not in broker.log
    with connect("$SYS", protocol) as dev:
        assert dev.subscribe_code("$SYS/#") == denied(protocol)
        assert dev.subscribe_code("$SYS/broker/uptime") == denied(protocol)
        assert dev.received() == []


def test_a_dollar_first_level_written_by_the_admin_is_not_guarded(broker, admin):
    """The rule is about a placeholder as the first level only: an ACL that
    starts with $CONTROL/ itself hands the rest to the client's choice (as
    docs/protocol.md warns)."""
    make_role(admin, "self", [acl("publishClientSend", "$CONTROL/%c/v1")])
    secret, _ = issue(admin, "selfie", "self")
    with Device(broker.port, username="selfie", password=secret, client_id="tokens") as dev:
        assert dev.publish_code(CONTROL_TOPIC, json.dumps({"commands": [{"command": "listRoles"}]})) == 0
        reply = json.loads(dev.next_message().payload)
        assert reply["responses"][0]["command"] == "listRoles"
    with Device(broker.port, username="selfie", password=secret, client_id="other") as dev:
        assert dev.publish_code(CONTROL_TOPIC, json.dumps({"commands": [{"command": "listRoles"}]})) \
            == NOT_AUTHORIZED


# ---------------------------------------------------------------- the other ACL types

def test_placeholders_in_receive_and_unsubscribe_acls(broker, admin):
    make_role(admin, "r", [
        acl("subscribePattern", "alerts/#"),
        acl("publishClientReceive", "alerts/%t/#", allow=False),      # not its own echoes
        acl("unsubscribePattern", "alerts/%t/#", allow=False),        # may not drop its own
        acl("unsubscribeLiteral", "alerts/%t/optional", priority=1),  # except this one
    ])
    secrets = {name: issue(admin, name, "r")[0] for name in ("dev-a", "dev-b")}
    with Device(broker.port, username="dev-a", password=secrets["dev-a"]) as a, Device(broker.port) as publisher:
        for topic in ("alerts/#", "alerts/dev-a/x", "alerts/dev-a/optional", "alerts/dev-b/x"):
            assert a.subscribe_code(topic) == 1, topic
        publisher.publish_code("alerts/dev-a/x", "own")
        publisher.publish_code("alerts/dev-b/x", "other")
        # Both subscriptions that match alerts/dev-b/x deliver it.
        assert sorted(a.received(wait=QUIET_PERIOD + 0.3)) == [("alerts/dev-b/x", b"other")] * 2
        assert a.unsubscribe_code("alerts/dev-a/x") == NOT_AUTHORIZED
        assert a.unsubscribe_code("alerts/dev-a/optional") == 0
        assert a.unsubscribe_code("alerts/dev-b/x") == 0
    with Device(broker.port, username="dev-b", password=secrets["dev-b"]) as b:
        assert b.subscribe_code("alerts/dev-a/x") == 1
        assert b.unsubscribe_code("alerts/dev-a/x") == 0
        assert b.subscribe_code("alerts/dev-b/x") == 1
        assert b.unsubscribe_code("alerts/dev-b/x") == NOT_AUTHORIZED


def test_shared_subscription_grant_with_a_placeholder(broker, admin):
    """Workers that share their own job queue: $share/<any group>/jobs/%t/#."""
    make_role(admin, "worker", [acl("subscribePattern", "$share/+/jobs/%t/#")])
    secrets = {name: issue(admin, name, "worker")[0] for name in ("w-1", "w-2")}
    with Device(broker.port, username="w-1", password=secrets["w-1"]) as w1, Device(broker.port) as publisher:
        assert w1.subscribe_code("$share/pool/jobs/w-2/#") == NOT_AUTHORIZED
        assert w1.subscribe_code("$share/pool/#") == NOT_AUTHORIZED
        assert w1.subscribe_code("jobs/w-1/#") == NOT_AUTHORIZED      # only shared
        assert w1.subscribe_code("$share/pool/jobs/w-1/#") == 1
        publisher.publish_code("jobs/w-2/1", "not mine")
        publisher.publish_code("jobs/w-1/1", "mine")
        assert w1.expect("jobs/w-1/1") == [("jobs/w-1/1", b"mine")]
        assert w1.received() == []


# ---------------------------------------------------------------- commands

def test_get_role_and_list_roles_show_acls_as_written(fleet):
    expected = sorted((a["acltype"], a["topic"]) for a in FLEET_ACLS)
    role = fleet.admin.call("getRole", rolename="device")
    assert sorted((a["acltype"], a["topic"]) for a in role["acls"]) == expected
    listed = {r["rolename"]: r for r in fleet.admin.call("listRoles")["roles"]}
    assert listed["device"] == role
    on_disk = {r["rolename"]: r for r in fleet.broker.read_state()["roles"]}
    assert sorted((a["acltype"], a["topic"]) for a in on_disk["device"]["acls"]) == expected
    # removeRoleACL names the ACL as written too.
    fleet.admin.call("removeRoleACL", rolename="device", acltype="subscribeLiteral", topic="inbox/%c")
    role = fleet.admin.call("getRole", rolename="device")
    assert ("subscribeLiteral", "inbox/%c") not in [(a["acltype"], a["topic"]) for a in role["acls"]]


@PROTOCOLS
def test_added_placeholder_acl_reaches_connected_clients(broker, admin, protocol):
    # A role with no placeholder yet: its first one is added while its
    # tokens are connected, and removed again.
    make_role(admin, "late", [acl("publishClientSend", "plain/#")])
    secrets = {name: issue(admin, name, "late")[0] for name in ("dev-a", "dev-b")}
    with Device(broker.port, subscriptions=["status/#"]) as observer, \
            Device(broker.port, username="dev-a", password=secrets["dev-a"], protocol=protocol) as a, \
            Device(broker.port, username="dev-b", password=secrets["dev-b"], protocol=protocol) as b:
        assert a.publish_code("status/dev-a", "before") == puback_denied(protocol)
        assert a.subscribe_code("config/dev-a") == denied(protocol)
        admin.call("addRoleACL", rolename="late", acltype="publishClientSend", topic="status/%t", allow=True)
        admin.call("addRoleACL", rolename="late", acltype="subscribeLiteral", topic="config/%t", allow=True)
        assert a.publish_code("status/dev-a", "a") == 0
        assert a.publish_code("status/dev-b", "forged") == puback_denied(protocol)
        assert b.publish_code("status/dev-b", "b") == 0
        assert a.subscribe_code("config/dev-a") == 1
        assert a.subscribe_code("config/dev-b") == denied(protocol)
        admin.call("removeRoleACL", rolename="late", acltype="publishClientSend", topic="status/%t")
        assert a.publish_code("status/dev-a", "after") == puback_denied(protocol)
        observer.publish_code("status/end", "end")
        seen = observer.expect("status/end", "end")
        assert [(t, p.decode()) for t, p in seen] == [("status/dev-a", "a"), ("status/dev-b", "b"),
                                                     ("status/end", "end")]
        observer.publish_code("config/dev-a", "cfg")
        assert a.expect("config/dev-a", "cfg") == [("config/dev-a", b"cfg")]


@PROTOCOLS
def test_added_placeholder_receive_acl_reaches_held_subscriptions(broker, admin, protocol):
    make_role(admin, "echo", [acl("subscribePattern", "status/#")])
    secrets = {name: issue(admin, name, "echo")[0] for name in ("dev-a", "dev-b")}
    with Device(broker.port) as publisher, \
            Device(broker.port, username="dev-a", password=secrets["dev-a"], protocol=protocol,
                   subscriptions=["status/#"]) as a, \
            Device(broker.port, username="dev-b", password=secrets["dev-b"], protocol=protocol,
                   subscriptions=["status/#"]) as b:
        publisher.publish_code("status/dev-a", "1")
        publisher.publish_code("status/dev-b", "1")
        # From now on, neither receives its own status.
        admin.call("addRoleACL", rolename="echo", acltype="publishClientReceive", topic="status/%t",
                   priority=1, allow=False)
        publisher.publish_code("status/dev-a", "2")
        publisher.publish_code("status/dev-b", "2")
        publisher.publish_code("status/end", "end")
        assert [(t, p.decode()) for t, p in a.expect("status/end")] == [
            ("status/dev-a", "1"), ("status/dev-b", "1"), ("status/dev-b", "2"), ("status/end", "end")]
        assert [(t, p.decode()) for t, p in b.expect("status/end")] == [
            ("status/dev-a", "1"), ("status/dev-b", "1"), ("status/dev-a", "2"), ("status/end", "end")]
        assert a.received() == [] and b.received(wait=0) == []


@pytest.mark.parametrize("hard", [False, True], ids=["stop", "kill-9"])
def test_placeholders_survive_a_restart(fleet, hard):
    """The role's ACLs come back from the state file (and, after kill -9,
    the journal) and still stand for each token's own values."""
    fleet.admin.call("addRoleACL", rolename="device", acltype="publishClientSend", topic="late/%t", allow=True)
    fleet.broker.restart(hard=hard)
    observer = fleet.anonymous(subscriptions=["devices/#", "late/#"])
    a = fleet.device("dev-a")
    assert a.publish_code("devices/dev-b/x", "forged") == NOT_AUTHORIZED
    assert a.publish_code("late/dev-b", "forged") == NOT_AUTHORIZED
    assert a.publish_code("devices/dev-a/x", "own") == 0
    assert a.publish_code("late/dev-a", "own") == 0
    assert observer.expect("late/dev-a") == [("devices/dev-a/x", b"own"), ("late/dev-a", b"own")]
    assert observer.received() == []
