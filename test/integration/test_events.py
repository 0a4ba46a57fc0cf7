"""
Events (SPEC section 4, "Beyond the seed"): the plugin publishes one JSON
object per change on $CONTROL/tokens/v1/events, the token's metadata plus
`event` and `at`, never a secret: tokenCreated, tokenRevoked, tokenRotated
(with `by`, and `previousHash`), tokenExpiring once per lifetime when the
token enters the warning window (plugin_opt_expiry_warning_days, default 7),
tokenExpired once at validUntil; neither twice, across restarts too. Only
clients with subscribe and receive rights on the topic get them.
"""
import json
import os
import time

import pytest

from access_helpers import (
    NOT_AUTHORIZED, SUBACK_FAILURE_V311, acl, issue, issue_short_lived, make_role,
)
from events_metrics_helpers import (
    ACL_EVENTS_PATTERN, EVENTS_TOPIC, EventWatcher, mosquitto_persistence, seconds,
)
from ctrl_helpers import (  # noqa: F401  (admin_factory is a fixture)
    admin_factory, init_state,
)
from tokens_helpers import FUTURE, METADATA_KEYS, RESPONSE_TOPIC, V5, V311, format_time

DAY = 86400
EXPIRY_GRACE = 2.0     # tokenExpired within 2 s of validUntil, like the connections' closing
QUIET = 1.5            # waiting to be sure that no (further) event comes


@pytest.fixture
def admin(broker, make_client):
    return make_client(broker=broker)


@pytest.fixture
def watchers():
    made = []

    def make(broker, *args, **kwargs):
        made.append(EventWatcher(broker.port, *args, **kwargs))
        return made[-1]

    yield make
    for w in made:
        w.close()


@pytest.fixture
def role(admin):
    make_role(admin, "dev", [acl("publishClientSend", "d/#")])
    return "dev"


def metadata_of(event):
    return {k: event[k] for k in METADATA_KEYS}


def near_now(text, slack=3):
    return abs(seconds(text) - time.time()) <= slack


# ================================================================ created, revoked, rotated

@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_created_and_revoked_events_carry_the_metadata_and_the_requester(broker, admin, role, watchers,
                                                                         protocol):
    watcher = watchers(broker, protocol=protocol)
    created = admin.call("createToken", name="ci-bot", role=role, validUntil=FUTURE)
    event = watcher.wait_for("tokenCreated", name="ci-bot")
    assert event["by"] == admin.client_id
    assert metadata_of(event) == {k: v for k, v in created.items() if k != "token"}
    assert event["status"] == "valid"
    assert near_now(event["at"])
    assert created["token"] not in json.dumps(event)

    revoked = admin.call("revokeToken", name="ci-bot")
    assert revoked["hash"] == created["hash"]
    event = watcher.wait_for("tokenRevoked", name="ci-bot")
    assert event["by"] == admin.client_id
    assert event["hash"] == created["hash"]
    assert event["role"] == role and event["validUntil"] == FUTURE
    assert event["issuedAt"] == created["issuedAt"]
    assert near_now(event["at"])
    # One event per change, nothing else (a far validUntil: no warning).
    watcher.pump(QUIET)
    assert [(e["event"], e["name"]) for e in watcher.history] == [("tokenCreated", "ci-bot"),
                                                                  ("tokenRevoked", "ci-bot")]


def test_rotated_event_names_the_new_and_the_previous_hash(broker, admin, role, watchers):
    watcher = watchers(broker)
    issue(admin, "dev-1", role)
    old = admin.call("getToken", name="dev-1")
    data = admin.call("rotateToken", name="dev-1", graceSeconds=60)
    event = watcher.wait_for("tokenRotated", name="dev-1")
    assert event["hash"] == data["hash"]
    assert event["previousHash"] == old["hash"]
    assert event["by"] == admin.client_id
    assert event["issuedAt"] == data["issuedAt"] and event["validUntil"] == data["validUntil"]
    assert event["requestedBy"] == admin.client_id
    assert data["token"] not in json.dumps(event)
    assert near_now(event["at"])


def test_a_token_requester_is_named_by_its_token(broker, admin, role, watchers):
    make_role(admin, "ops", [acl("publishClientSend", "$CONTROL/tokens/v1"),
                             acl("subscribeLiteral", "$CONTROL/tokens/v1/response")])
    ops_secret, _ = issue(admin, "ops-bot", "ops")
    watcher = watchers(broker)
    with broker.client(username="someone-else", password=ops_secret) as ops:
        ops.call("createToken", name="made-by-ops", role=role, validUntil=FUTURE)
        ops.call("rotateToken", name="made-by-ops")
        ops.call("revokeToken", name="made-by-ops")
    for kind in ("tokenCreated", "tokenRotated", "tokenRevoked"):
        assert watcher.wait_for(kind, name="made-by-ops")["by"] == "ops-bot"


def test_refused_commands_send_no_event(broker, admin, role, watchers):
    issue(admin, "dev-2", role)
    watcher = watchers(broker)
    responses = admin.request([
        {"command": "createToken", "name": "dev-2", "role": role, "validUntil": FUTURE},      # exists
        {"command": "createToken", "name": "x", "role": "nope", "validUntil": FUTURE},         # no role
        {"command": "revokeToken", "name": "ghost"},
        {"command": "rotateToken", "name": "dev-2", "graceSeconds": -1},
        {"command": "rotateToken", "name": "ghost"},
    ])
    assert all("error" in r for r in responses), responses
    assert watcher.pump(QUIET) == []


def test_a_wide_subscriber_sees_events_but_never_a_secret_or_a_reply(broker, admin, role, watchers):
    wide = watchers(broker, topics=["$CONTROL/#"])
    created = admin.call("createToken", name="wide", role=role, validUntil=FUTURE)
    wide.wait_for("tokenCreated", name="wide")
    wide.pump(0.3)
    assert [m.topic for m in wide.others] == [], "someone else's reply was delivered"
    for event in wide.history:
        assert created["token"] not in json.dumps(event)


def test_events_are_not_retained(broker, admin, role, watchers):
    issue(admin, "before-subscribing", role)
    time.sleep(0.2)
    late = watchers(broker)
    assert late.pump(QUIET) == [], "a subscriber got an event from before it subscribed"


# ================================================================ expiring, expired

def test_a_token_created_inside_the_warning_window_is_expiring_at_once(broker, admin, role, watchers):
    watcher = watchers(broker)
    created = admin.call("createToken", name="soon", role=role, validUntil=format_time(time.time() + 3 * DAY))
    admin.call("createToken", name="later", role=role, validUntil=format_time(time.time() + 30 * DAY))
    event = watcher.wait_for("tokenExpiring", name="soon")
    assert event["hash"] == created["hash"] and event["status"] == "valid"
    assert "by" not in event
    assert near_now(event["at"])
    watcher.pump(QUIET)
    assert watcher.count("tokenExpiring", name="soon") == 1
    assert watcher.count("tokenExpiring", name="later") == 0, "30 days is outside the 7-day window"


def test_a_token_enters_the_warning_window_later(broker_factory, make_client, watchers):
    broker = broker_factory(extra_config=["plugin_opt_expiry_warning_days 1"])
    admin = make_client(broker=broker)
    make_role(admin, "dev")
    watcher = watchers(broker)
    enters = int(time.time()) + 3
    created = admin.call("createToken", name="edge", role="dev", validUntil=format_time(enters + DAY))
    admin.call("createToken", name="inside", role="dev", validUntil=format_time(time.time() + DAY - 60))
    watcher.wait_for("tokenCreated", name="edge")
    watcher.wait_for("tokenExpiring", name="inside")   # 1 day: inside the window at once
    watcher.pump(max(0.0, enters - time.time() - 0.3))
    assert watcher.count("tokenExpiring", name="edge") == 0, "warned before the token entered the window"

    event = watcher.wait_for("tokenExpiring", timeout=enters - time.time() + EXPIRY_GRACE + 0.5, name="edge")
    late = watcher.arrived(event) - enters
    assert -0.05 <= late <= EXPIRY_GRACE + 0.5, f"warned {late:.2f}s after entering the window"
    assert event["hash"] == created["hash"]
    watcher.pump(QUIET)
    assert watcher.count("tokenExpiring", name="edge") == 1
    assert watcher.count("tokenExpiring", name="inside") == 1


def test_expiring_then_expired_once_each(broker, admin, role, watchers):
    watcher = watchers(broker)
    secret, token_hash, until = issue_short_lived(admin, "brief", role, 2)
    expiring = watcher.wait_for("tokenExpiring", name="brief")
    assert expiring["status"] == "valid"
    expired = watcher.wait_for("tokenExpired", timeout=until - time.time() + EXPIRY_GRACE + 0.5, name="brief")
    late = watcher.arrived(expired) - until
    assert -0.05 <= late <= EXPIRY_GRACE + 0.5, f"tokenExpired {late:.2f}s after validUntil"
    assert expired["hash"] == token_hash
    assert expired["status"] == "invalid"
    assert seconds(expired["at"]) >= until
    assert secret not in json.dumps(expired)
    watcher.pump(QUIET + 1)
    assert watcher.count("tokenExpiring", name="brief") == 1
    assert watcher.count("tokenExpired", name="brief") == 1


def test_a_revoked_token_never_expires(broker, admin, role, watchers):
    watcher = watchers(broker)
    _, _, until = issue_short_lived(admin, "gone", role, 2)
    admin.call("revokeToken", name="gone")
    watcher.wait_for("tokenRevoked", name="gone")
    watcher.pump(until - time.time() + EXPIRY_GRACE + 0.5)
    assert watcher.count("tokenExpired", name="gone") == 0


def test_rotation_starts_a_new_lifetime(broker, admin, role, watchers):
    watcher = watchers(broker)
    issue(admin, "cycle", role, format_time(time.time() + 3 * DAY))
    first = watcher.wait_for("tokenExpiring", name="cycle")
    # Rotated into another lifetime inside the window: a new warning, at once.
    data = admin.call("rotateToken", name="cycle", validUntil=format_time(time.time() + 2 * DAY))
    watcher.wait_for("tokenRotated", name="cycle")
    second = watcher.wait_for("tokenExpiring", name="cycle", hash=data["hash"])
    assert second["validUntil"] == data["validUntil"] and first["hash"] != second["hash"]
    # Rotated out of the window: no warning.
    far = admin.call("rotateToken", name="cycle", validUntil=format_time(time.time() + 60 * DAY))
    watcher.wait_for("tokenRotated", name="cycle", hash=far["hash"])
    watcher.pump(QUIET)
    assert watcher.count("tokenExpiring", name="cycle") == 2


def test_the_end_of_a_grace_period_is_not_an_expiry(broker, admin, role, watchers):
    watcher = watchers(broker)
    issue(admin, "graced", role)
    data = admin.call("rotateToken", name="graced", graceSeconds=2)
    watcher.wait_for("tokenRotated", name="graced")
    watcher.pump(seconds(data["previousValidUntil"]) - time.time() + EXPIRY_GRACE + 0.5)
    assert watcher.count("tokenExpired", name="graced") == 0, "a token still valid was announced expired"


# ================================================================ across restarts

def persistent_watcher(broker):
    """A watcher with a persistent session: mosquitto keeps its subscription
    over a restart and queues what is published while it is away."""
    return EventWatcher(broker.port, client_id="events-log", clean_session=False, protocol=V311)


@pytest.mark.parametrize("hard, snapshot_after", [(False, None), (True, None), (True, 1)],
                         ids=["clean-restart", "kill-9", "kill-9-with-snapshots"])
def test_no_second_warning_or_expiry_after_a_restart(broker_factory, tmp_path, hard, snapshot_after):
    mosquitto_db = os.path.join(str(tmp_path), "mosquitto-db")
    os.makedirs(mosquitto_db)
    extra = mosquitto_persistence(mosquitto_db, autosave=1 if hard else None)
    if snapshot_after is not None:
        extra.append(f"plugin_opt_snapshot_after {snapshot_after}")
    broker = broker_factory(acl=ACL_EVENTS_PATTERN, extra_config=extra)
    watcher = persistent_watcher(broker)
    with broker.client() as admin:
        make_role(admin, "dev")
        issue(admin, "soon", "dev", format_time(time.time() + 3 * DAY))
        _, _, until = issue_short_lived(admin, "brief", "dev", 2)
    watcher.wait_for("tokenExpiring", name="soon")
    watcher.wait_for("tokenExpiring", name="brief")
    watcher.wait_for("tokenExpired", timeout=until - time.time() + EXPIRY_GRACE + 0.5, name="brief")
    watcher.close()
    if hard:
        # mosquitto's autosave (every autosave_interval, checked with a
        # strict "more than", so up to 2 s) has the session by then.
        time.sleep(2.5)
    broker.restart(hard=hard)

    # Something that must reach the offline watcher: proves that what the
    # plugin publishes from the start on is queued for it.
    with broker.client() as admin:
        admin.call("createToken", name="after-restart", role="dev", validUntil=FUTURE)
    time.sleep(2.5)   # any periodic check of the plugin has run by now
    watcher = persistent_watcher(broker)
    try:
        watcher.wait_for("tokenCreated", name="after-restart")
        watcher.pump(QUIET)
        seen = [(e["event"], e["name"]) for e in watcher.history]
        assert ("tokenExpiring", "soon") not in seen, f"a second warning after the restart: {seen}"
        assert ("tokenExpiring", "brief") not in seen, f"a second warning after the restart: {seen}"
        assert ("tokenExpired", "brief") not in seen, f"a second expiry after the restart: {seen}"
    finally:
        watcher.close()


# ================================================================ who may receive them

@pytest.fixture
def devices():
    made = []

    def make(port, **kwargs):
        made.append(EventWatcher(port, topics=(), **kwargs))
        return made[-1]

    yield make
    for d in made:
        d.close()


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_a_role_with_subscribe_rights_sees_events(broker, admin, role, devices, protocol):
    make_role(admin, "watcher", [acl("subscribeLiteral", EVENTS_TOPIC)])
    secret, _ = issue(admin, "monitor", "watcher")
    monitor = devices(broker.port, username="monitor", password=secret, protocol=protocol)
    assert monitor.subscribe_code(EVENTS_TOPIC) in (0, 1)
    admin.call("createToken", name="seen", role=role, validUntil=FUTURE)
    event = monitor.wait_for("tokenCreated", name="seen")
    assert event["by"] == admin.client_id


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_a_role_without_subscribe_rights_is_refused_and_sees_nothing(broker, admin, role, devices, protocol):
    make_role(admin, "plain", [acl("publishClientSend", "d/#"), acl("subscribePattern", "d/#")])
    secret, _ = issue(admin, "device", "plain")
    dev = devices(broker.port, username="device", password=secret, protocol=protocol)
    code = dev.subscribe_code(EVENTS_TOPIC)
    assert code == (NOT_AUTHORIZED if protocol == V5 else SUBACK_FAILURE_V311), code
    code = dev.subscribe_code("$CONTROL/tokens/v1/#")
    assert code == (NOT_AUTHORIZED if protocol == V5 else SUBACK_FAILURE_V311), code
    admin.call("createToken", name="unseen", role=role, validUntil=FUTURE)
    admin.call("revokeToken", name="unseen")
    assert dev.pump(QUIET) == [] and dev.others == []


def test_a_role_that_may_subscribe_but_not_receive_sees_nothing(broker, admin, role, devices):
    make_role(admin, "half", [acl("subscribeLiteral", EVENTS_TOPIC),
                              acl("publishClientReceive", EVENTS_TOPIC, allow=False)])
    secret, _ = issue(admin, "half-bot", "half")
    dev = devices(broker.port, username="half-bot", password=secret)
    assert dev.subscribe_code(EVENTS_TOPIC) in (0, 1)
    admin.call("createToken", name="hidden", role=role, validUntil=FUTURE)
    assert dev.pump(QUIET) == []


def test_the_init_admin_role_may_subscribe_to_events(tmp_path, admin_factory):
    made = init_state(tmp_path / "tokens.json", "admin")
    with open(made.path) as f:
        state = json.load(f)
    admin_role, = [r for r in state["roles"] if r["rolename"] == "admin"]
    assert {"acltype": "subscribeLiteral", "topic": EVENTS_TOPIC, "priority": 0, "allow": True} \
        in admin_role["acls"], admin_role["acls"]

    # And on a token-only broker, its token receives them.
    ctrl = admin_factory()
    monitor = EventWatcher(ctrl.port, topics=(), username="admin", password=ctrl.token)
    try:
        assert monitor.subscribe_code(EVENTS_TOPIC) in (0, 1)
        ctrl.create("ci", "admin", "1d")
        event = monitor.wait_for("tokenCreated", name="ci")
        assert event["by"] == "admin" and event["requestedBy"] == "admin"
        # The admin role still may not read other clients' replies.
        assert RESPONSE_TOPIC not in [m.topic for m in monitor.others]
    finally:
        monitor.close()


def test_the_init_admin_role_may_not_forge_events(admin_factory):
    ctrl = admin_factory()
    monitor = EventWatcher(ctrl.port, topics=(), username="admin", password=ctrl.token, client_id="monitor")
    forger = EventWatcher(ctrl.port, topics=(), username="admin", password=ctrl.token, client_id="forger")
    try:
        assert monitor.subscribe_code(EVENTS_TOPIC) in (0, 1)
        forged = json.dumps({"event": "tokenRevoked", "name": "admin"})
        assert forger.publish_code(EVENTS_TOPIC, forged) == NOT_AUTHORIZED
        time.sleep(0.3)
        assert [m for m in monitor.drain(QUIET)] == [], "a forged event was delivered"
    finally:
        monitor.close()
        forger.close()
