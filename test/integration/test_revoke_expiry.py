"""
Live sessions (SPEC section 3): revoking a token closes every connection
bound to it at once and no other; a token that expires has its connections
closed within 2 seconds of validUntil and is refused from then on; a client
id taken over by a connection with another token is judged by the new token.
"""
import time

import pytest

from access_helpers import (
    attempt_login, issue, issue_short_lived, refused,
)
from tokens_helpers import V5, V311

# "At once": the kicks run at the broker's next tick (about 10 per second).
AT_ONCE = 1.0
EXPIRY_GRACE = 2.0


# ---------------------------------------------------------------- revoke

@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_revoke_closes_every_connection_of_the_token_and_no_other(broker, admin, role, devices, protocol):
    secret_a, hash_a = issue(admin, "a", role)
    secret_b, _ = issue(admin, "b", role)
    a1 = devices(broker, "a", secret_a, protocol=protocol, client_id="a-1", subscriptions=["d/#"])
    a2 = devices(broker, "a", secret_a, protocol=V311 if protocol == V5 else V5, client_id="a-2")
    b1 = devices(broker, "b", secret_b, protocol=protocol, client_id="b-1")
    observer = devices(broker, subscriptions=["d/#"])

    asked = time.time()
    data = admin.call("revokeToken", name="a")
    assert data == {"name": "a", "hash": hash_a, "disconnected": 2, "offlineSessionsEnded": 0}
    assert a1.wait_disconnected(AT_ONCE) and a2.wait_disconnected(AT_ONCE), "revoked sessions still open"
    assert max(a1.disconnected_at, a2.disconnected_at) - asked <= AT_ONCE

    assert b1.is_connected
    assert b1.publish_code("d/still", "here") == 0
    observer.expect("d/still", "here")
    time.sleep(0.2)
    assert b1.is_connected and observer.is_connected

    assert refused(protocol, attempt_login(broker.port, "a", secret_a, protocol, client_id="a-again"))
    broker.wait_for_log(f"client a-again: unknown token with hash {hash_a}")
    assert attempt_login(broker.port, "b", secret_b, protocol) == 0


def test_revoke_without_connections_disconnects_nobody(broker, admin, role, devices):
    secret_a, _ = issue(admin, "a", role)
    secret_b, _ = issue(admin, "b", role)
    b1 = devices(broker, "b", secret_b)
    assert attempt_login(broker.port, "a", secret_a) == 0   # connected once, then left
    assert admin.call("revokeToken", name="a")["disconnected"] == 0
    time.sleep(0.3)
    assert b1.is_connected


def test_revoke_closes_a_connection_that_used_a_different_username(broker, admin, role, devices):
    secret, _ = issue(admin, "a", role)
    d1 = devices(broker, "not-a", secret, client_id="x1")
    d2 = devices(broker, "", secret, client_id="x2", protocol=V311)   # an empty username
    assert admin.call("revokeToken", name="a")["disconnected"] == 2
    assert d1.wait_disconnected(AT_ONCE) and d2.wait_disconnected(AT_ONCE)


def test_a_denied_publish_after_revoke_is_not_delivered(broker, admin, role, devices):
    """Between the revoke and the kick nothing gets through."""
    secret, _ = issue(admin, "a", role)
    dev = devices(broker, "a", secret)
    observer = devices(broker, subscriptions=["d/#"])
    admin.call("revokeToken", name="a")
    try:
        dev.mqtt.publish("d/after", b"revoked", qos=1)
    except Exception:
        pass
    assert dev.wait_disconnected(AT_ONCE)
    assert observer.received() == []


# ---------------------------------------------------------------- expiry

@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_expired_token_connections_are_closed(broker, admin, role, devices, protocol):
    secret, _, until = issue_short_lived(admin, "short", role, 2)
    secret_long, _ = issue(admin, "long", role)
    sub = devices(broker, "short", secret, protocol=protocol, client_id="short-sub", subscriptions=["d/#"])
    other = devices(broker, "long", secret_long, protocol=protocol)
    # Works until then.
    assert sub.publish_code("d/early", "1") == 0
    sub.expect("d/early", "1")

    assert sub.wait_disconnected(until - time.time() + EXPIRY_GRACE + 0.5), "not closed after validUntil"
    closed_after = sub.disconnected_at - until
    assert -0.05 <= closed_after <= EXPIRY_GRACE + 0.5, f"closed {closed_after:.2f}s after validUntil"
    broker.wait_for_log(r"tokens: token short expired, closing 1 connection\b")

    assert other.is_connected
    assert other.publish_code("d/later", "2") == 0
    rc = attempt_login(broker.port, "short", secret, protocol, client_id="short-again")
    assert refused(protocol, rc), rc
    broker.wait_for_log(r"client short-again: expired token short")
    meta = admin.call("getToken", name="short")
    assert meta["status"] == "invalid"
    assert secret not in broker.log


def test_expiry_closes_several_connections_and_tokens(broker, admin, role, devices):
    s1, _, until = issue_short_lived(admin, "t1", role, 2)
    s2, _, _ = issue_short_lived(admin, "t2", role, 2)
    conns = [devices(broker, "t1", s1, client_id="t1-a"), devices(broker, "t1", s1, client_id="t1-b"),
             devices(broker, "t2", s2, protocol=V311, client_id="t2-a")]
    for conn in conns:
        assert conn.wait_disconnected(until - time.time() + EXPIRY_GRACE + 0.5)
        assert conn.disconnected_at - until <= EXPIRY_GRACE + 0.5


# ---------------------------------------------------------------- session takeover

@pytest.mark.parametrize("protocols", [(V5, V5), (V311, V5), (V5, V311)],
                         ids=["mqtt5-mqtt5", "mqtt311-mqtt5", "mqtt5-mqtt311"])
def test_takeover_binds_the_client_id_to_the_new_token(broker, admin, role, devices, protocols):
    secret_a, _ = issue(admin, "A", role)
    secret_b, _ = issue(admin, "B", role)
    observer = devices(broker, subscriptions=["d/#"])
    old = devices(broker, "A", secret_a, protocol=protocols[0], client_id="dev")
    new = devices(broker, "B", secret_b, protocol=protocols[1], client_id="dev")
    assert old.wait_disconnected(), "the old connection was not taken over"
    assert new.is_connected

    assert admin.call("revokeToken", name="A")["disconnected"] == 0
    time.sleep(0.5)   # kicks run at the next tick, about 100 ms later
    assert new.is_connected, "revoking the old token closed the new connection"
    assert new.publish_code("d/dev", "after revoking A") == 0
    observer.expect("d/dev", "after revoking A")

    assert admin.call("revokeToken", name="B")["disconnected"] == 1
    assert new.wait_disconnected(AT_ONCE), "revoking the new token did not close it"


def test_takeover_by_the_same_token(broker, admin, role, devices):
    secret, _ = issue(admin, "A", role)
    old = devices(broker, "A", secret, client_id="dev")
    new = devices(broker, "A", secret, client_id="dev")
    assert old.wait_disconnected()
    assert admin.call("revokeToken", name="A")["disconnected"] == 1
    assert new.wait_disconnected(AT_ONCE)


def test_takeover_by_a_client_without_token(broker, admin, role, devices):
    """The id is then bound to nothing: the old token's role no longer
    applies, and revoking it touches nobody."""
    secret, _ = issue(admin, "A", role)
    old = devices(broker, "A", secret, client_id="dev")
    new = devices(broker, client_id="dev")   # anonymous: the acl_file decides
    assert old.wait_disconnected()
    assert new.publish_code("outside/role", "x") == 0
    assert admin.call("revokeToken", name="A")["disconnected"] == 0
    time.sleep(0.3)
    assert new.is_connected


def test_takeover_of_a_token_client_by_an_expiring_one(broker, admin, role, devices):
    secret_a, _ = issue(admin, "A", role)
    secret_b, _, until = issue_short_lived(admin, "B", role, 2)
    old = devices(broker, "A", secret_a, client_id="dev")
    new = devices(broker, "B", secret_b, client_id="dev")
    assert old.wait_disconnected()
    other_a = devices(broker, "A", secret_a, client_id="dev-2")
    assert new.wait_disconnected(until - time.time() + EXPIRY_GRACE + 0.5)
    time.sleep(0.2)
    assert other_a.is_connected


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_revoke_closes_clients_with_broker_assigned_ids(broker, admin, role, devices, protocol):
    secret, _ = issue(admin, "a", role)
    anonymous_ids = [devices(broker, "a", secret, protocol=protocol, client_id="") for _ in range(2)]
    keeper = devices(broker, "a-keeper", issue(admin, "keeper", role)[0], protocol=protocol, client_id="")
    assert admin.call("revokeToken", name="a")["disconnected"] == 2
    for dev in anonymous_ids:
        assert dev.wait_disconnected(AT_ONCE)
    time.sleep(0.2)
    assert keeper.is_connected
