"""
Persistent sessions logged in with a token (SPEC section 3, last
paragraph; issue 14). A token's authority lasts as long as the MQTT session
it logged in to: an offline persistent session (MQTT 3.1.1 clean session
false; MQTT 5 with a Session Expiry Interval) stays authorized by its
token's role, so every message the role lets it receive is queued while it
is away and delivered when it comes back, as for a password_file client
with an acl_file; its Will, delayed or not, is checked against the role
when the broker publishes it; this holds across a clean restart with
`persistence true` and across a SIGHUP.

The binding ends when the session ends, when a new connection with that
client id logs in (its own login decides), and when the token is revoked,
expires or loses that secret to a rotation (at once without graceSeconds,
at the end of the grace period with it): from then on nothing more is
queued under the token. What was queued before is re-checked by the broker
against whoever logs in next with that client id (mosquitto 2.0 re-checks
queued messages at reconnect), so it reaches a later login only if that
login's rights allow. revokeToken's reply counts the offline sessions it
ended (`offlineSessionsEnded`), and $SYS/broker/tokens/sessions/offline
counts the offline sessions bound to tokens.

The delivery tests read what a returning device gets before (and just
after) a live marker published once it is back: exactly what was queued for
it while it was away, compared as sorted lists (session_helpers,
queued_before_marker). Every "while away" starts once the broker has logged
the disconnect and run a few more loop iterations.
"""
import os
import time

import pytest

from access_helpers import (
    Device, MosquittoSub, acl, attempt_login, issue, issue_short_lived, make_role, refused, reload, wait_until,
)
from events_metrics_helpers import mosquitto_persistence, read_metrics, seconds, wait_metrics
from session_helpers import (  # noqa: F401  (keep is a fixture)
    DEV_ROLE, FILE_USERS, OFFLINE_METRIC, PUBLIC_ROLE, SESSION_EXPIRY, disconnects, expected, file_session,
    keep, publish_all, queued_before_marker, session_broker_config, token_session, wait_offline, watcher,
)
from tokens_helpers import V5, V311

PROTOCOLS = pytest.mark.parametrize("protocol", [V311, V5], ids=["mqtt311", "mqtt5"])

# Connections of an expired secret are closed within 2 s (SPEC section 3);
# the end of a grace period is handled like an expiry.
EXPIRY_GRACE = 2.0

# Metrics are refreshed every second here (plugin_opt_metrics_interval 1):
# a generous wait for a value to show.
METRICS_WAIT = 8.0

# Published while the subscribers (d/# at QoS 1 or 2) are away. The "dev"
# role and the password_file user filedev may both read d/# except
# d/secret/#; nobody subscribed to other/.
WHILE_AWAY = [
    ("d/1", "one", 1),
    ("d/2", "two", 2),
    ("d/secret/3", "the role may not read this", 1),
    ("d/x/4", "four", 2),
    ("other/5", "nobody subscribed", 1),
    ("d/6", "six", 1),
]


def dev_may_read(topic):
    return topic.startswith("d/") and not topic.startswith("d/secret/")


@pytest.fixture
def session_broker(broker_factory):
    return broker_factory(**session_broker_config())


def add_roles(admin):
    make_role(admin, "dev", DEV_ROLE)
    make_role(admin, "public", PUBLIC_ROLE)


@pytest.fixture
def admin(session_broker, make_client):
    """An anonymous control client (the acl_file lets it), with the roles
    "dev" and "public" created."""
    client = make_client(broker=session_broker)
    add_roles(client)
    return client


@pytest.fixture
def publisher(session_broker, keep):
    """An anonymous client: the acl_file lets it publish anywhere."""
    return keep(Device(session_broker.port))


def away(dev, topic="d/#", qos=1):
    """Subscribes and goes offline cleanly (the session stays), and waits
    until the broker has dealt with the disconnect."""
    granted = dev.subscribe_code(topic, qos=qos)
    assert granted == qos, f"subscription to {topic!r} at QoS {qos}: {granted}"
    dev.leave()


# ================================================================ delivery on return

@pytest.mark.parametrize("sub_qos", [1, 2], ids=["sub-qos1", "sub-qos2"])
@PROTOCOLS
def test_what_is_published_while_away_is_delivered_on_return_as_to_a_password_file_client(
        session_broker, admin, publisher, keep, protocol, sub_qos):
    secret, _ = issue(admin, "dev-1", "dev")
    away(keep(token_session(session_broker, "dev-1", secret, protocol, client_id="token-1")), qos=sub_qos)
    away(keep(file_session(session_broker, "filedev", protocol, client_id="file-1")), qos=sub_qos)

    publish_all(publisher, WHILE_AWAY)

    token_back = keep(token_session(session_broker, "dev-1", secret, protocol, client_id="token-1"))
    file_back = keep(file_session(session_broker, "filedev", protocol, client_id="file-1"))
    assert token_back.session_present and file_back.session_present, "the broker did not keep the sessions"
    from_token, from_file = queued_before_marker(publisher, token_back, file_back)

    want = expected(WHILE_AWAY, qos_cap=sub_qos, allowed=dev_may_read)
    assert from_file == want, "the password_file client (the broker's own behaviour) got something else"
    assert from_token == from_file, (f"the token session got {from_token}, the password_file client with "
                                     f"the same rights {from_file}")


@PROTOCOLS
def test_mosquitto_sub_with_a_persistent_session_gets_what_was_published_while_away(
        session_broker, admin, publisher, protocol):
    secret, _ = issue(admin, "dev-2", "dev")
    logins = {"token": ("dev-2", secret), "password_file": ("filedev", FILE_USERS["filedev"])}

    def run_sub(kind):
        user, password = logins[kind]
        extra = ["-c", "-i", f"sub-{kind}"] + (["-x", str(SESSION_EXPIRY)] if protocol == V5 else [])
        return MosquittoSub(session_broker.port, "d/#", username=user, password=password, protocol=protocol,
                            extra=extra)

    for kind in logins:   # subscribe once, then leave
        before = disconnects(session_broker, f"sub-{kind}")
        sub = run_sub(kind)
        try:
            sub.wait_subscribed()
        finally:
            sub.stop()
        wait_offline(session_broker, f"sub-{kind}", before)

    publish_all(publisher, WHILE_AWAY)

    got = {}
    subs = {kind: run_sub(kind) for kind in logins}
    try:
        for sub in subs.values():
            sub.wait_subscribed()
        publisher.publish("d/marker", "live", qos=1)
        for kind, sub in subs.items():
            assert sub.wait_message("d/marker live"), (kind, sub.output())
            lines = [line for line in sub.messages() if line.startswith("d/")]   # not -d's own lines
            got[kind] = sorted(lines[:lines.index("d/marker live")])
    finally:
        for sub in subs.values():
            sub.stop()
    want = [f"{topic} {payload}" for topic, payload, _ in expected(WHILE_AWAY, allowed=dev_may_read)]
    assert got["password_file"] == want, "mosquitto_sub as a password_file user got something else"
    assert got["token"] == got["password_file"], got


@PROTOCOLS
def test_a_session_restored_after_a_clean_restart_gets_what_was_published_meanwhile(
        broker_factory, tmp_path, keep, protocol):
    mosquitto_db = os.path.join(str(tmp_path), "mosquitto-db")
    os.makedirs(mosquitto_db)
    config = session_broker_config()
    config["extra_config"] += mosquitto_persistence(mosquitto_db)
    broker = broker_factory(**config)
    with broker.client() as admin:
        add_roles(admin)
        secret, _ = issue(admin, "dev-3", "dev")
    away(token_session(broker, "dev-3", secret, protocol, client_id="restored-3"), qos=2)
    before_stop = [("d/before-stop", "queued, then saved by the broker", 2), ("d/secret/x", "never", 1)]
    after_start = [("d/after-start", "queued for the restored session", 1),
                   ("d/secret/y", "never", 2), ("d/after-start/2", "also", 2)]
    with Device(broker.port) as publisher:
        publish_all(publisher, before_stop)

    assert broker.stop() == 0
    assert os.listdir(mosquitto_db), "mosquitto saved no database at its clean stop"
    broker.start()

    publisher = keep(Device(broker.port))
    publish_all(publisher, after_start)
    back = keep(token_session(broker, "dev-3", secret, protocol, client_id="restored-3"))
    assert back.session_present, "the broker did not restore the session"
    got = queued_before_marker(publisher, back)
    assert got == expected(before_stop + after_start, allowed=dev_may_read)


@PROTOCOLS
def test_a_session_restored_after_a_crash_keeps_its_binding_from_the_periodic_save(
        broker_factory, tmp_path, keep, protocol):
    """kill -9: the broker's autosave kept the session, the plugin's
    periodic save (each second here) its binding, and the journal's
    replay restores it."""
    mosquitto_db = os.path.join(str(tmp_path), "mosquitto-db")
    os.makedirs(mosquitto_db)
    config = session_broker_config()
    config["extra_config"] += mosquitto_persistence(mosquitto_db, autosave=1)
    config["extra_config"] += ["plugin_opt_last_used_save_interval 1"]
    broker = broker_factory(**config)
    with broker.client() as admin:
        add_roles(admin)
        secret, _ = issue(admin, "dev-crash", "dev")
    away(token_session(broker, "dev-crash", secret, protocol, client_id="crashed-1"), qos=1)
    journal = broker.state_file + ".journal"
    wait_until(lambda: os.path.exists(journal) and "crashed-1" in open(journal).read(), 5.0,
               message="the periodic save writing the binding")
    time.sleep(2.5)   # the broker's own autosave, every second
    broker.kill()
    broker.start()

    publisher = keep(Device(broker.port))
    after_start = [("d/after-crash", "queued for the restored session", 1), ("d/secret/z", "never", 1)]
    publish_all(publisher, after_start)
    back = keep(token_session(broker, "dev-crash", secret, protocol, client_id="crashed-1"))
    assert back.session_present, "the broker did not restore the session"
    assert queued_before_marker(publisher, back) == expected(after_start, allowed=dev_may_read)


# ================================================================ wills

@PROTOCOLS
def test_a_will_without_delay_is_published_only_where_the_role_allows(session_broker, admin, keep, protocol):
    secret, _ = issue(admin, "willer", "dev")
    observer = keep(watcher(session_broker))
    # The acl_file would let the username "willer" publish to forbidden/#;
    # a token client is judged by its role alone.
    allowed = keep(token_session(session_broker, "willer", secret, protocol, client_id="will-allowed",
                                 will=("d/will/now", "gone", 1)))
    forbidden = keep(token_session(session_broker, "willer", secret, protocol, client_id="will-forbidden",
                                   will=("forbidden/will/now", "gone", 1)))
    allowed.drop()
    forbidden.drop()
    seen = observer.expect("d/will/now", "gone")
    seen += observer.received(1.0)
    assert [topic for topic, _ in seen] == ["d/will/now"], seen


def test_a_delayed_will_is_checked_against_the_role_when_the_broker_publishes_it(session_broker, admin, keep):
    secret, _ = issue(admin, "willer", "dev")
    doomed, _ = issue(admin, "doomed", "dev")
    observer = keep(watcher(session_broker))
    delay = 2
    # Session expiry longer than the delay: the Will goes out at the delay,
    # while the session lives on, offline.
    common = dict(protocol=V5, will_delay=delay, session_expiry=30)
    allowed = keep(token_session(session_broker, "willer", secret, client_id="delayed-allowed",
                                 will=("d/will/delayed", "late", 1), **common))
    forbidden = keep(token_session(session_broker, "willer", secret, client_id="delayed-forbidden",
                                   will=("forbidden/will/delayed", "late", 1), **common))
    # Revoked during the delay: when the broker publishes its Will, the
    # token has no rights left.
    revoked = keep(token_session(session_broker, "doomed", doomed, client_id="delayed-revoked",
                                 will=("d/will/revoked", "late", 1), **common))
    for dev in (allowed, forbidden, revoked):
        dev.drop()
    assert admin.call("revokeToken", name="doomed")["disconnected"] == 0
    assert observer.received(0.8) == [], "a Will went out before its delay"

    seen = observer.expect("d/will/delayed", "late", timeout=delay + 4)
    seen += observer.received(1.5)
    assert [topic for topic, _ in seen] == ["d/will/delayed"], seen


# ================================================================ the binding ends: revoke

@pytest.mark.parametrize("later", ["token", "password_file"])
@PROTOCOLS
def test_after_a_revoke_nothing_more_is_queued_not_even_for_a_permissive_later_login(
        session_broker, admin, publisher, keep, protocol, later):
    secret, token_hash = issue(admin, "dev-5", "dev")
    away(keep(token_session(session_broker, "dev-5", secret, protocol, client_id="revoked-5")))
    publisher.publish("d/before", "queued before the revoke", qos=1)

    data = admin.call("revokeToken", name="dev-5")
    assert data == {"name": "dev-5", "hash": token_hash, "disconnected": 0, "offlineSessionsEnded": 1}
    publish_all(publisher, [("d/after", "published after the revoke", 1), ("d/after/2", "also after", 2)])

    # A later login with the same client id whose rights would allow all
    # of d/: the messages queued before the revoke are re-checked against
    # it and delivered; those published after it were never queued.
    if later == "token":
        new_secret, _ = issue(admin, "dev-5-new", "dev")
        back = keep(token_session(session_broker, "dev-5-new", new_secret, protocol, client_id="revoked-5"))
    else:
        back = keep(file_session(session_broker, "reader", protocol, client_id="revoked-5"))
    assert back.session_present, "the broker did not keep the session"
    assert queued_before_marker(publisher, back) == [("d/before", "queued before the revoke", 1)]


def test_revoke_counts_connected_clients_and_offline_sessions_apart(session_broker, admin, keep):
    secret, token_hash = issue(admin, "dev-5b", "dev")
    for protocol, client_id in ((V311, "offline-311"), (V5, "offline-5")):
        away(keep(token_session(session_broker, "dev-5b", secret, protocol, client_id=client_id)))
    # A clean session that left is no session at all.
    keep(token_session(session_broker, "dev-5b", secret, V5, client_id="clean-gone", clean=True)).leave()
    connected = keep(token_session(session_broker, "dev-5b", secret, V311, client_id="connected", clean=True))

    data = admin.call("revokeToken", name="dev-5b")
    assert data == {"name": "dev-5b", "hash": token_hash, "disconnected": 1, "offlineSessionsEnded": 2}
    assert connected.wait_disconnected(1.0)


# ================================================================ the binding ends: expiry, rotation

@PROTOCOLS
def test_after_validUntil_nothing_more_is_queued(session_broker, admin, publisher, keep, protocol):
    secret, _, until = issue_short_lived(admin, "dev-6", "dev", 3)
    away(keep(token_session(session_broker, "dev-6", secret, protocol, client_id="expiring-6")))
    publisher.publish("d/before", "before validUntil", qos=1)
    assert time.time() < until, "too slow: validUntil passed before the first message"

    wait_until(lambda: time.time() >= until + 1.0, timeout=6, interval=0.05, message="validUntil")
    publish_all(publisher, [("d/after", "after validUntil", 1), ("d/after/2", "also after", 2)])

    assert refused(protocol, attempt_login(session_broker.port, "dev-6", secret, protocol, client_id="probe-6"))
    renewed, _ = issue(admin, "dev-6-renewed", "dev")
    back = keep(token_session(session_broker, "dev-6-renewed", renewed, protocol, client_id="expiring-6"))
    assert back.session_present
    assert queued_before_marker(publisher, back) == [("d/before", "before validUntil", 1)]


def test_a_rotation_without_grace_ends_the_binding_at_once(session_broker, admin, publisher, keep):
    secret, _ = issue(admin, "dev-7", "dev")
    away(keep(token_session(session_broker, "dev-7", secret, V311, client_id="rotated-7")), qos=2)
    publisher.publish("d/before", "before the rotation", qos=2)

    data = admin.call("rotateToken", name="dev-7")
    assert "previousValidUntil" not in data
    publisher.publish("d/after", "after the rotation", qos=1)

    back = keep(token_session(session_broker, "dev-7", data["token"], V311, client_id="rotated-7"))
    assert back.session_present
    assert queued_before_marker(publisher, back) == [("d/before", "before the rotation", 2)]


def test_a_rotation_with_grace_keeps_queueing_until_the_grace_period_ends(session_broker, admin, publisher,
                                                                          keep):
    secret, _ = issue(admin, "dev-7g", "dev")
    away(keep(token_session(session_broker, "dev-7g", secret, V5, client_id="graced-7")), qos=2)
    publisher.publish("d/before", "before the rotation", qos=1)

    data = admin.call("rotateToken", name="dev-7g", graceSeconds=3)
    previous = seconds(data["previousValidUntil"])
    publish_all(publisher, [("d/in-grace", "the old secret still holds", 2)])
    assert time.time() < previous, "too slow: the grace period ended before the message"

    # The old secret's connections are closed within 2 s of the grace's end.
    wait_until(lambda: time.time() >= previous + EXPIRY_GRACE + 0.5, timeout=10, message="grace over")
    publisher.publish("d/after-grace", "after the grace period", qos=1)

    back = keep(token_session(session_broker, "dev-7g", data["token"], V5, client_id="graced-7"))
    assert back.session_present
    assert queued_before_marker(publisher, back) == sorted([("d/before", "before the rotation", 1),
                                                            ("d/in-grace", "the old secret still holds", 2)])


# ================================================================ the binding ends: takeover

PRIVATE_AND_PUBLIC = [
    ("d/private/1", "dev only", 1),
    ("d/public/1", "anyone", 2),
    ("d/private/2", "dev only", 2),
    ("d/public/2", "anyone", 1),
]


def public_only(messages):
    return expected(messages, allowed=lambda topic: topic.startswith("d/public/"))


def assert_taken_over(publisher, admin, taker, old_token, old_hash, qos, come_back):
    """After a takeover of an offline token session by `taker`, who may
    read d/public/# only: of what was queued, and of what is published
    live or once it is offline again, it gets only that. Revoking the old
    token ends nothing: the session is no longer its."""
    assert taker.session_present, "the broker did not hand over the session"
    assert queued_before_marker(publisher, taker, marker_topic="d/public/marker") == public_only(PRIVATE_AND_PUBLIC)
    # Live, the inherited subscription to d/# gives it no more than its rights.
    publisher.publish("d/private/live", "dev only", qos=1)
    assert queued_before_marker(publisher, taker, marker_topic="d/public/marker") == []
    taker.leave()
    assert admin.call("revokeToken", name=old_token) == {
        "name": old_token, "hash": old_hash, "disconnected": 0, "offlineSessionsEnded": 0}
    later = [("d/private/3", "dev only", qos), ("d/public/3", "anyone", qos)]
    publish_all(publisher, later)
    back = come_back()
    assert queued_before_marker(publisher, back, marker_topic="d/public/marker") == public_only(later)


@PROTOCOLS
def test_a_takeover_by_another_token_gets_only_what_its_own_role_allows(session_broker, admin, publisher, keep,
                                                                        protocol):
    secret, token_hash = issue(admin, "dev-8", "dev")
    other, _ = issue(admin, "pub-8", "public")
    away(keep(token_session(session_broker, "dev-8", secret, protocol, client_id="shared-8")), qos=2)
    publish_all(publisher, PRIVATE_AND_PUBLIC)

    taker = keep(token_session(session_broker, "pub-8", other, protocol, client_id="shared-8"))
    # Offline again, the session is bound to pub-8, no longer to dev-8.
    assert_taken_over(publisher, admin, taker, "dev-8", token_hash, qos=1,
                      come_back=lambda: keep(token_session(session_broker, "pub-8", other, protocol,
                                                           client_id="shared-8")))


@PROTOCOLS
def test_a_takeover_by_a_password_file_login_gets_only_what_its_acl_file_allows(
        session_broker, admin, publisher, keep, protocol):
    secret, token_hash = issue(admin, "dev-8f", "dev")
    away(keep(token_session(session_broker, "dev-8f", secret, protocol, client_id="shared-8f")), qos=2)
    publish_all(publisher, PRIVATE_AND_PUBLIC)

    # limited may read d/public/# only (acl_file); never the token's rights.
    taker = keep(file_session(session_broker, "limited", protocol, client_id="shared-8f"))
    assert_taken_over(publisher, admin, taker, "dev-8f", token_hash, qos=2,
                      come_back=lambda: keep(file_session(session_broker, "limited", protocol, client_id="shared-8f")))


# ================================================================ SIGHUP

@PROTOCOLS
def test_a_reload_while_away_changes_nothing(session_broker, admin, publisher, keep, protocol):
    secret, token_hash = issue(admin, "dev-9", "dev")
    away(keep(token_session(session_broker, "dev-9", secret, protocol, client_id="reloaded-9")), qos=2)
    publisher.publish("d/before-reload", "queued before the SIGHUP", qos=1)
    reload(session_broker)
    publish_all(publisher, [("d/after-reload", "queued after the SIGHUP", 2), ("d/secret/z", "never", 1)])

    back = keep(token_session(session_broker, "dev-9", secret, protocol, client_id="reloaded-9"))
    assert back.session_present
    assert queued_before_marker(publisher, back) == sorted([("d/before-reload", "queued before the SIGHUP", 1),
                                                            ("d/after-reload", "queued after the SIGHUP", 2)])

    # Still bound to the token after the reload: a revoke once it is
    # offline again ends it.
    back.leave()
    reload(session_broker)
    assert admin.call("revokeToken", name="dev-9") == {
        "name": "dev-9", "hash": token_hash, "disconnected": 0, "offlineSessionsEnded": 1}


# ================================================================ the metric

def test_the_offline_session_metric(session_broker, admin, keep):
    port = session_broker.port
    secret, token_hash = issue(admin, "dev-10", "dev")
    wait_metrics(port, {OFFLINE_METRIC: 0, "connections": 0}, timeout=METRICS_WAIT)

    # A clean session that leaves leaves nothing behind.
    clean = keep(token_session(session_broker, "dev-10", secret, V311, client_id="clean-10", clean=True))
    wait_metrics(port, {OFFLINE_METRIC: 0, "connections": 1}, timeout=METRICS_WAIT)
    clean.leave()
    wait_metrics(port, {OFFLINE_METRIC: 0, "connections": 0}, timeout=METRICS_WAIT)

    # A persistent one counts while it is away, not while it is here.
    dev = keep(token_session(session_broker, "dev-10", secret, V311, client_id="persistent-10"))
    wait_metrics(port, {OFFLINE_METRIC: 0, "connections": 1}, timeout=METRICS_WAIT)
    dev.leave()
    wait_metrics(port, {OFFLINE_METRIC: 1, "connections": 0}, timeout=METRICS_WAIT)
    dev = keep(token_session(session_broker, "dev-10", secret, V311, client_id="persistent-10"))
    wait_metrics(port, {OFFLINE_METRIC: 0, "connections": 1}, timeout=METRICS_WAIT)
    dev.leave()
    wait_metrics(port, {OFFLINE_METRIC: 1, "connections": 0}, timeout=METRICS_WAIT)
    # A password_file client away is not bound to a token.
    keep(file_session(session_broker, "filedev", V311, client_id="file-10")).leave()

    # A reload keeps it.
    reload(session_broker)
    time.sleep(1.2)   # a refresh after the reload
    assert read_metrics(port)[0].get(OFFLINE_METRIC) == "1"

    # An MQTT 5 session away, then back with a clean start: that ends it.
    v5 = keep(token_session(session_broker, "dev-10", secret, V5, client_id="v5-10"))
    v5.leave()
    wait_metrics(port, {OFFLINE_METRIC: 2, "connections": 0}, timeout=METRICS_WAIT)
    v5 = keep(token_session(session_broker, "dev-10", secret, V5, client_id="v5-10", clean=True))
    assert not v5.session_present
    wait_metrics(port, {OFFLINE_METRIC: 1, "connections": 1}, timeout=METRICS_WAIT)
    v5.leave()
    wait_metrics(port, {OFFLINE_METRIC: 1, "connections": 0}, timeout=METRICS_WAIT)

    assert admin.call("revokeToken", name="dev-10") == {
        "name": "dev-10", "hash": token_hash, "disconnected": 0, "offlineSessionsEnded": 1}
    wait_metrics(port, {OFFLINE_METRIC: 0, "connections": 0}, timeout=METRICS_WAIT)


# ================================================================ attacks

# A password_file account named like the device's username (the token's
# name), as while a fleet moves from password_file to tokens; its acl_file
# rights are none.
SAME_NAME_ACL = "user admin\ntopic readwrite #\ntopic readwrite $CONTROL/#\n\nuser opsdev\ntopic read nothing/#\n"
SAME_NAME_USERS = {"admin": "adminpw", "opsdev": "opsdev-password"}


def test_a_restored_binding_never_goes_to_a_connection_with_its_client_id_and_username(broker_factory, keep):
    """The binding comes back from the state file, but the broker (without
    persistence) has no session for it: a connection with the device's
    client id and username, before and after a refused login with that
    id, gets the password_file account's rights, not the token's."""
    broker = broker_factory(acl=SAME_NAME_ACL, users=SAME_NAME_USERS)
    with broker.client(username="admin", password="adminpw") as admin:
        make_role(admin, "ops", [acl("publishClientSend", "$CONTROL/tokens/v1"), acl("publishClientSend", "ops/#")])
        secret, _ = issue(admin, "opsdev", "ops")
    dev = token_session(broker, "opsdev", secret, V5, client_id="opsdev-1")
    assert dev.publish_code("ops/status", "up") == 0
    dev.leave()
    assert broker.stop() == 0
    assert '"clientId":"opsdev-1"' in open(broker.state_file).read(), "the binding was not saved"
    broker.start()

    impostor = keep(Device(broker.port, protocol=V5, client_id="opsdev-1", username="opsdev",
                           password="opsdev-password"))
    assert impostor.publish_code("ops/status", "mine") == 0x87
    assert refused(V5, attempt_login(broker.port, "opsdev", "mqtk_x", client_id="opsdev-1"))
    assert impostor.publish_code("ops/status", "mine") == 0x87
    assert impostor.publish_code("$CONTROL/tokens/v1", '{"commands": []}') == 0x87


def test_clean_sessions_add_nothing_to_the_journal(broker_factory, keep):
    """MQTT 5 clients with clean start (and 3.1.1 clean sessions) are not
    restored by the broker: logging in and out many times with new client
    ids writes no binding, so that churn cannot fill the disk. A
    persistent session's binding is written by the same periodic save."""
    config = session_broker_config()
    config["extra_config"] += ["plugin_opt_last_used_save_interval 1"]
    broker = broker_factory(**config)
    with broker.client() as admin:
        add_roles(admin)
        secret, _ = issue(admin, "churn", "public")
    journal = broker.state_file + ".journal"
    for i in range(40):
        for protocol in (V311, V5):
            dev = token_session(broker, "churn", secret, protocol, client_id=f"churn-{protocol}-{i}", clean=True)
            dev.leave()
    token_session(broker, "churn", secret, V5, client_id="kept-1").leave()
    wait_until(lambda: "kept-1" in open(journal).read(), 5.0, message="the periodic save writing kept-1")
    assert "churn-" not in open(journal).read(), "clean sessions were journaled"
