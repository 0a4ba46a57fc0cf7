"""
Token rotation (SPEC section 4, "Beyond the seed"): rotateToken gives a
token a new secret, keeping its name and role; the old secret stops at once,
or after a grace period (graceSeconds, never past its own validUntil), then
its connections are closed like at expiry. Connections made with the new
secret are never closed by it. The grace period survives a crash. And
`mosquitto_ctrl tokens rotate`.
"""
import time

import pytest

from access_helpers import (
    NOT_AUTHORIZED, acl, attempt_login, issue, issue_short_lived, make_role, refused,
    wait_until,
)
from ctrl_helpers import (  # noqa: F401  (admin_factory is a fixture)
    TOKEN_IN_TEXT, admin_factory, fields, seconds_between, the_token,
)
from events_metrics_helpers import seconds
from tokens_helpers import (
    FUTURE, METADATA_KEYS, V5, V311, ControlClient, check_rotated, format_time, parse_time, sha256_hex,
)

# "At once": kicks run at the broker's next tick (about 10 per second).
AT_ONCE = 1.0
# Connections of an expired secret are closed within 2 s.
EXPIRY_GRACE = 2.0
DAY = 86400
GRACE_MAX = 7 * DAY


def next_second(after_text):
    """Waits until the clock shows a later second than the RFC 3339 time
    `after_text`, so that a new issuedAt differs from it."""
    wait_until(lambda: time.time() - 0.05 >= parse_time(after_text).timestamp() + 1, timeout=2.5, message="next second")  # the broker's coarse clock lags


def get(admin, **which):
    return admin.request([dict(command="getToken", **which)])[0]


def listed(admin, name):
    return [t for t in admin.call("listTokens")["tokens"] if t["name"] == name]


def secrets_nowhere(broker, *secrets):
    on_disk = (broker.state_bytes() or b"").decode("utf-8", "replace")
    for secret in secrets:
        assert secret not in broker.log, "a secret in the broker log"
        assert secret not in on_disk, "a secret in the state file"


# ================================================================ the new secret

@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_rotate_by_name_keeps_the_lifetime_and_stops_the_old_secret_at_once(broker, admin, role, devices,
                                                                            protocol):
    old_secret, old_hash = issue(admin, "dev-1", role, format_time(time.time() + 5 * DAY))
    before = admin.call("getToken", name="dev-1")
    old_conn = devices(broker, "dev-1", old_secret, protocol=protocol, client_id="old-1")
    next_second(before["issuedAt"])

    asked = time.time()
    data = admin.call("rotateToken", name="dev-1")
    new_secret = check_rotated(data, before, requested_by=admin.client_id, issued_near=asked)
    # Default validity: the same lifetime as before, counted from now.
    assert seconds_between(data["issuedAt"], data["validUntil"]) == \
        seconds_between(before["issuedAt"], before["validUntil"])
    assert data["validUntil"] != before["validUntil"]

    # Grace 0: the old secret stops at once, its connection is closed like at a revoke.
    assert old_conn.wait_disconnected(AT_ONCE), "the old secret's connection is still open"
    assert old_conn.disconnected_at - asked <= AT_ONCE
    assert refused(protocol, attempt_login(broker.port, "dev-1", old_secret, protocol, client_id="old-again"))
    broker.wait_for_log(f"client old-again: unknown token with hash {old_hash}")

    # The new secret logs in, with the same role.
    new_conn = devices(broker, "dev-1", new_secret, protocol=protocol, client_id="new-1")
    assert new_conn.publish_code("d/after", "rotated") == 0
    if protocol == V5:
        assert new_conn.publish_code("elsewhere", "x") == NOT_AUTHORIZED

    # One token of that name, under its new hash, without previousValidUntil.
    shown = admin.call("getToken", name="dev-1")
    assert shown["hash"] == data["hash"]
    assert set(shown) == METADATA_KEYS
    assert get(admin, hash=old_hash).get("code") == "notFound"
    assert [t["hash"] for t in listed(admin, "dev-1")] == [data["hash"]]
    assert set(listed(admin, "dev-1")[0]) == METADATA_KEYS
    secrets_nowhere(broker, old_secret, new_secret)


def test_rotate_by_hash_with_a_validUntil(broker, admin, role):
    old_secret, old_hash = issue(admin, "dev-2", role)
    before = admin.call("getToken", hash=old_hash)
    asked = time.time()
    data = admin.call("rotateToken", hash=old_hash, validUntil="2031-06-01T02:00:00+02:00", graceSeconds=0)
    new_secret = check_rotated(data, before, requested_by=admin.client_id, issued_near=asked)
    assert data["validUntil"] == "2031-06-01T00:00:00Z"
    assert admin.call("getToken", name="dev-2")["validUntil"] == "2031-06-01T00:00:00Z"
    assert refused(V5, attempt_login(broker.port, "dev-2", old_secret))
    assert attempt_login(broker.port, "dev-2", new_secret) == 0


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_grace_zero_closes_every_old_connection_at_once_and_no_other(broker, admin, role, devices, protocol):
    old_secret, _ = issue(admin, "dev-3", role)
    other_secret, _ = issue(admin, "other", role)
    old_a = devices(broker, "dev-3", old_secret, protocol=protocol, client_id="old-a")
    old_b = devices(broker, "dev-3", old_secret, protocol=V311 if protocol == V5 else V5, client_id="old-b")
    other = devices(broker, "other", other_secret, protocol=protocol, client_id="other-1")

    asked = time.time()
    data = admin.call("rotateToken", name="dev-3", graceSeconds=0)
    assert "previousValidUntil" not in data
    assert old_a.wait_disconnected(AT_ONCE) and old_b.wait_disconnected(AT_ONCE)
    assert max(old_a.disconnected_at, old_b.disconnected_at) - asked <= AT_ONCE

    fresh = devices(broker, "dev-3", data["token"], protocol=protocol, client_id="new-a")
    time.sleep(0.5)
    assert fresh.is_connected, "a connection made with the new secret was closed"
    assert other.is_connected, "another token's connection was closed"
    assert fresh.publish_code("d/new", "1") == 0


# ================================================================ grace

@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_grace_keeps_the_old_secret_until_previousValidUntil_then_closes_it(broker, admin, role, devices,
                                                                           protocol):
    old_secret, old_hash = issue(admin, "dev-4", role)
    before = admin.call("getToken", name="dev-4")
    old_conn = devices(broker, "dev-4", old_secret, protocol=protocol, client_id="old-1")
    observer = devices(broker, subscriptions=["d/#"])

    asked = time.time()
    data = admin.call("rotateToken", name="dev-4", graceSeconds=3)
    new_secret = check_rotated(data, before, requested_by=admin.client_id, issued_near=asked,
                               previous_valid_until=asked + 3)
    previous = seconds(data["previousValidUntil"])

    # Meanwhile both secrets work; the old connection is left alone.
    assert old_conn.publish_code("d/old", "still here") == 0
    observer.expect("d/old", "still here")
    late_old = devices(broker, "dev-4", old_secret, protocol=protocol, client_id="old-2")
    new_conn = devices(broker, "dev-4", new_secret, protocol=protocol, client_id="new-1")
    assert old_conn.is_connected and late_old.is_connected

    # getToken and listTokens show previousValidUntil while the old secret lives.
    shown = admin.call("getToken", name="dev-4")
    assert shown["hash"] == data["hash"]
    assert shown["previousValidUntil"] == data["previousValidUntil"]
    assert set(shown) == METADATA_KEYS | {"previousValidUntil"}
    entry, = listed(admin, "dev-4")
    assert entry["previousValidUntil"] == data["previousValidUntil"]
    assert get(admin, hash=old_hash).get("code") == "notFound", "the old hash is not a token of its own"

    # Then the old secret's connections are closed, within 2 s, and no sooner.
    for conn in (old_conn, late_old):
        assert conn.wait_disconnected(previous - time.time() + EXPIRY_GRACE + 0.5), \
            "the old secret's connection outlived the grace period"
        closed_after = conn.disconnected_at - previous
        assert -0.05 <= closed_after <= EXPIRY_GRACE + 0.5, f"closed {closed_after:.2f}s after previousValidUntil"
    time.sleep(0.3)
    assert new_conn.is_connected, "the new secret's connection was closed with the old one's"
    assert new_conn.publish_code("d/new", "1") == 0
    observer.expect("d/new", "1")

    # The old secret is now unknown; previousValidUntil is gone.
    assert refused(protocol, attempt_login(broker.port, "dev-4", old_secret, protocol, client_id="old-3"))
    broker.wait_for_log(f"client old-3: unknown token with hash {old_hash}")
    assert attempt_login(broker.port, "dev-4", new_secret, protocol) == 0
    shown = admin.call("getToken", name="dev-4")
    assert set(shown) == METADATA_KEYS, shown
    assert set(listed(admin, "dev-4")[0]) == METADATA_KEYS
    secrets_nowhere(broker, old_secret, new_secret)


def test_grace_never_outlasts_the_old_validity(broker, admin, role, devices):
    old_secret, _, until = issue_short_lived(admin, "dev-5", role, 3)
    before = admin.call("getToken", name="dev-5")
    old_conn = devices(broker, "dev-5", old_secret, client_id="old-1")
    asked = time.time()
    data = admin.call("rotateToken", name="dev-5", graceSeconds=600, validUntil=FUTURE)
    new_secret = check_rotated(data, before, requested_by=admin.client_id, issued_near=asked,
                               previous_valid_until=before["validUntil"])
    assert data["validUntil"] == FUTURE
    new_conn = devices(broker, "dev-5", new_secret, client_id="new-1")

    assert old_conn.wait_disconnected(until - time.time() + EXPIRY_GRACE + 0.5)
    assert -0.05 <= old_conn.disconnected_at - until <= EXPIRY_GRACE + 0.5
    assert refused(V5, attempt_login(broker.port, "dev-5", old_secret))
    time.sleep(0.3)
    assert new_conn.is_connected
    meta = admin.call("getToken", name="dev-5")
    assert meta["status"] == "valid" and "previousValidUntil" not in meta


def test_previousValidUntil_is_a_promise_even_when_the_new_validity_is_shorter(broker, admin, role):
    """A grace period longer than the new validity: whatever the old
    secret then does, getToken shows previousValidUntil exactly while the
    old secret logs in, and the rotation's reply promised no more than
    that."""
    old_secret, _ = issue(admin, "dev-12", role)
    data = admin.call("rotateToken", name="dev-12", graceSeconds=600, validUntil=format_time(time.time() + 2))
    until = seconds(data["validUntil"])
    wait_until(lambda: time.time() > until + 1.0, timeout=5, message="the new validUntil passed")
    old_works = attempt_login(broker.port, "dev-12", old_secret) == 0
    shown = admin.call("getToken", name="dev-12")
    assert ("previousValidUntil" in shown) == old_works, \
        f"old secret logs in: {old_works}, yet getToken shows {shown}"
    if not old_works:
        assert seconds(data["previousValidUntil"]) <= until, \
            (f"the reply promised the old secret until {data['previousValidUntil']}, "
             f"it stopped at the token's validUntil {data['validUntil']}")


def test_the_largest_grace_is_seven_days(broker, admin, role):
    old_secret, _ = issue(admin, "dev-6", role)
    before = admin.call("getToken", name="dev-6")
    asked = time.time()
    data = admin.call("rotateToken", name="dev-6", graceSeconds=GRACE_MAX)
    check_rotated(data, before, requested_by=admin.client_id, issued_near=asked,
                  previous_valid_until=asked + GRACE_MAX)
    assert attempt_login(broker.port, "dev-6", old_secret) == 0
    assert attempt_login(broker.port, "dev-6", data["token"]) == 0


@pytest.mark.parametrize("clean_session", [True, False], ids=["clean", "persistent-session"])
def test_a_device_that_switches_to_the_new_secret_is_not_closed(broker, admin, role, devices, clean_session):
    """The README's rotation without downtime: the device reconnects, with
    the same client id, using the new secret during the grace period."""
    old_secret, _ = issue(admin, "boiler-7", role)
    first = devices(broker, "boiler-7", old_secret, client_id="boiler-7", protocol=V311,
                    clean_session=clean_session)
    data = admin.call("rotateToken", name="boiler-7", graceSeconds=2)
    previous = seconds(data["previousValidUntil"])
    switched = devices(broker, "boiler-7", data["token"], client_id="boiler-7", protocol=V311,
                       clean_session=clean_session)
    assert first.wait_disconnected(), "not taken over"
    time.sleep(max(0.0, previous - time.time()) + EXPIRY_GRACE + 0.5)
    assert switched.is_connected, "the connection made with the new secret was closed at the grace's end"
    assert switched.publish_code("d/boiler", "ok") == 0


def test_revoking_during_the_grace_period_stops_both_secrets(broker, admin, role, devices):
    old_secret, _ = issue(admin, "dev-11", role)
    old_conn = devices(broker, "dev-11", old_secret, client_id="old-1")
    data = admin.call("rotateToken", name="dev-11", graceSeconds=60)
    new_conn = devices(broker, "dev-11", data["token"], client_id="new-1")
    assert admin.call("revokeToken", name="dev-11")["disconnected"] == 2
    assert old_conn.wait_disconnected(AT_ONCE) and new_conn.wait_disconnected(AT_ONCE)
    assert refused(V5, attempt_login(broker.port, "dev-11", old_secret))
    assert refused(V5, attempt_login(broker.port, "dev-11", data["token"]))
    assert get(admin, name="dev-11").get("code") == "notFound"


# ================================================================ persistence

@pytest.mark.parametrize("hard", [True, False], ids=["kill-9", "clean-restart"])
def test_a_grace_period_survives_a_restart(broker, admin, role, hard):
    old_secret, _ = issue(admin, "dev-7", role)
    data = admin.call("rotateToken", name="dev-7", graceSeconds=120)
    new_secret = data["token"]

    broker.restart(hard=hard)
    with broker.client() as checker:
        shown = checker.call("getToken", name="dev-7")
        assert shown["hash"] == data["hash"]
        assert shown["previousValidUntil"] == data["previousValidUntil"]
        entry, = listed(checker, "dev-7")
        assert entry["previousValidUntil"] == data["previousValidUntil"]
    assert attempt_login(broker.port, "dev-7", old_secret) == 0, "the old secret was lost at the restart"
    assert attempt_login(broker.port, "dev-7", new_secret) == 0, "the new secret was lost at the restart"
    secrets_nowhere(broker, old_secret, new_secret)


def test_the_grace_period_still_ends_after_a_crash(broker, admin, role, devices):
    old_secret, old_hash = issue(admin, "dev-8", role)
    data = admin.call("rotateToken", name="dev-8", graceSeconds=4)
    previous = seconds(data["previousValidUntil"])
    broker.kill()
    broker.start()
    old_conn = devices(broker, "dev-8", old_secret, client_id="old-after-crash")
    new_conn = devices(broker, "dev-8", data["token"], client_id="new-after-crash")
    assert old_conn.wait_disconnected(previous - time.time() + EXPIRY_GRACE + 0.5), \
        "the old secret's connection outlived the grace period after a restart"
    assert old_conn.disconnected_at - previous <= EXPIRY_GRACE + 0.5
    assert refused(V5, attempt_login(broker.port, "dev-8", old_secret, client_id="old-late"))
    broker.wait_for_log(f"client old-late: unknown token with hash {old_hash}")
    time.sleep(0.3)
    assert new_conn.is_connected
    with broker.client() as checker:
        assert "previousValidUntil" not in checker.call("getToken", name="dev-8")


# ================================================================ who rotates

def test_a_token_client_rotates_and_is_the_requester(broker, admin, role):
    make_role(admin, "ops", [acl("publishClientSend", "$CONTROL/tokens/v1"),
                             acl("subscribeLiteral", "$CONTROL/tokens/v1/response")])
    ops_secret, _ = issue(admin, "ops-bot", "ops")
    issue(admin, "dev-9", role)
    before = admin.call("getToken", name="dev-9")
    with ControlClient(broker.port, username="ops-bot", password=ops_secret) as ops:
        asked = time.time()
        data = ops.call("rotateToken", name="dev-9")
    check_rotated(data, before, requested_by="ops-bot", issued_near=asked)
    assert admin.call("getToken", name="dev-9")["requestedBy"] == "ops-bot"


def test_a_token_that_rotates_itself_gets_its_reply_then_is_closed(broker, admin, devices):
    make_role(admin, "ops", [acl("publishClientSend", "$CONTROL/tokens/v1"),
                             acl("subscribeLiteral", "$CONTROL/tokens/v1/response")])
    ops_secret, _ = issue(admin, "ops-bot", "ops")
    before = admin.call("getToken", name="ops-bot")
    ops = devices(broker, "ops-bot", ops_secret, subscribe_response=True, client_id="ops-1")
    asked = time.time()
    response = ops.request([{"command": "rotateToken", "name": "ops-bot"}])[0]
    assert "error" not in response, response
    new_secret = check_rotated(response["data"], before, requested_by="ops-bot", issued_near=asked)
    assert ops.wait_disconnected(AT_ONCE), "the rotated-away secret's connection stayed open"
    with ControlClient(broker.port, username="ops-bot", password=new_secret) as again:
        assert again.call("getToken", name="ops-bot")["hash"] == sha256_hex(new_secret)


# ================================================================ refused

BAD_REQUESTS = [
    ({"name": "ghost"}, "notFound"),
    ({"hash": "0" * 64}, "notFound"),
    ({}, "invalid"),
    ({"name": "dev-10", "hash": "@HASH"}, "invalid"),
    ({"name": "dev-10", "graceSeconds": -1}, "invalid"),
    ({"name": "dev-10", "graceSeconds": GRACE_MAX + 1}, "invalid"),
    ({"name": "dev-10", "graceSeconds": 1.5}, "invalid"),
    ({"name": "dev-10", "graceSeconds": "60"}, "invalid"),
    ({"name": "dev-10", "graceSeconds": True}, "invalid"),
    ({"name": "dev-10", "graceSeconds": None}, "invalid"),
    ({"name": "dev-10", "validUntil": "2020-01-01T00:00:00Z"}, "invalid"),
    ({"name": "dev-10", "validUntil": "@PAST"}, "invalid"),
    ({"name": "dev-10", "validUntil": "next tuesday"}, "invalid"),
    ({"name": "dev-10", "validUntil": 4102444800}, "invalid"),
]


@pytest.mark.parametrize("fields_, code", BAD_REQUESTS,
                         ids=["unknown-name", "unknown-hash", "neither", "both", "grace-negative",
                              "grace-too-big", "grace-fraction", "grace-string", "grace-bool", "grace-null",
                              "validUntil-past", "validUntil-a-second-ago", "validUntil-garbage",
                              "validUntil-number"])
def test_a_refused_rotation_changes_nothing(broker, admin, role, fields_, code):
    old_secret, old_hash = issue(admin, "dev-10", role)
    before = admin.call("getToken", name="dev-10")
    on_disk = broker.state_bytes()
    command = {"command": "rotateToken"}
    for key, value in fields_.items():
        if value == "@HASH":
            value = old_hash
        elif value == "@PAST":
            value = format_time(time.time() - 1)
        command[key] = value

    response = admin.request([command])[0]
    assert response["command"] == "rotateToken"
    assert "data" not in response, response
    assert isinstance(response.get("error"), str) and response["error"], response
    assert response.get("code") == code, response
    assert not TOKEN_IN_TEXT.search(str(response))

    assert admin.call("getToken", name="dev-10") == before
    assert broker.state_bytes() == on_disk
    assert attempt_login(broker.port, "dev-10", old_secret) == 0


# ================================================================ mosquitto_ctrl tokens rotate

@pytest.fixture
def ctrl_admin(admin_factory):
    """A token-only broker and its `tokens init` admin token; a role "dev"."""
    made = admin_factory()
    made.role("dev", ("publishClientSend", "d/#", "allow"))
    return made


def admin_get(ctrl_admin, name):
    with ControlClient(ctrl_admin.port, username=ctrl_admin.name, password=ctrl_admin.token) as control:
        return control.call("getToken", name=name)


def test_ctrl_rotate_prints_the_new_token_once(ctrl_admin):
    old_secret, old_hash = ctrl_admin.create("dev-1", "dev", "3d")
    before = admin_get(ctrl_admin, "dev-1")
    next_second(before["issuedAt"])
    result = ctrl_admin.ok("rotate", "dev-1")
    new_secret = the_token(result.stdout)
    printed = fields(result.stdout)
    assert printed["Hash"] == sha256_hex(new_secret) != old_hash
    assert printed["Name"] == "dev-1"
    assert not TOKEN_IN_TEXT.search(result.raw_stderr)
    after = admin_get(ctrl_admin, "dev-1")
    assert after["hash"] == printed["Hash"]
    assert printed["Valid until"] == after["validUntil"]
    assert seconds_between(after["issuedAt"], after["validUntil"]) == 3 * DAY
    assert "previousValidUntil" not in after
    assert refused(V5, attempt_login(ctrl_admin.port, "dev-1", old_secret))
    assert attempt_login(ctrl_admin.port, "dev-1", new_secret) == 0


def test_ctrl_rotate_by_hash_with_validity_and_grace_prints_the_previous_validity(ctrl_admin):
    old_secret, old_hash = ctrl_admin.create("dev-2", "dev", "3d")
    asked = time.time()
    result = ctrl_admin.ok("rotate", old_hash, "30d", "--grace", "10m")
    new_secret = the_token(result.stdout)
    after = admin_get(ctrl_admin, "dev-2")
    assert after["hash"] == sha256_hex(new_secret)
    assert seconds_between(after["issuedAt"], after["validUntil"]) == 30 * DAY
    assert abs(seconds(after["previousValidUntil"]) - (asked + 600)) <= 2, after
    assert after["previousValidUntil"] in result.stdout, \
        f"the previous secret's validity is not printed:\n{result.stdout}"
    assert attempt_login(ctrl_admin.port, "dev-2", old_secret) == 0, "the grace period did not apply"
    assert attempt_login(ctrl_admin.port, "dev-2", new_secret) == 0


def test_ctrl_rotate_with_grace_and_the_default_validity(ctrl_admin):
    old_secret, _ = ctrl_admin.create("dev-3", "dev", "2d")
    asked = time.time()
    result = ctrl_admin.ok("rotate", "dev-3", "--grace", "10m")
    new_secret = the_token(result.stdout)
    after = admin_get(ctrl_admin, "dev-3")
    assert seconds_between(after["issuedAt"], after["validUntil"]) == 2 * DAY
    assert abs(seconds(after["previousValidUntil"]) - (asked + 600)) <= 2, after
    assert after["previousValidUntil"] in result.stdout
    assert attempt_login(ctrl_admin.port, "dev-3", old_secret) == 0
    assert attempt_login(ctrl_admin.port, "dev-3", new_secret) == 0


def test_ctrl_rotate_an_unknown_token(ctrl_admin):
    result = ctrl_admin.ctrl("rotate", "ghost")
    assert result.returncode == 1, str(result)
    assert "(notFound)" in result.stderr, str(result)
    assert not TOKEN_IN_TEXT.search(result.stdout + result.raw_stderr), str(result)


@pytest.mark.parametrize("args", [[], ["dev-4", "30d", "40d"], ["dev-4", "--grace"]],
                         ids=["no-target", "two-validities", "grace-without-duration"])
def test_ctrl_rotate_usage_errors_send_nothing(ctrl_admin, args):
    old_secret, old_hash = ctrl_admin.create("dev-4", "dev", "2d")
    result = ctrl_admin.ctrl("rotate", *args)
    assert result.returncode == 2, str(result)
    assert result.stdout == "" and not TOKEN_IN_TEXT.search(result.raw_stderr), str(result)
    assert admin_get(ctrl_admin, "dev-4")["hash"] == old_hash
    assert attempt_login(ctrl_admin.port, "dev-4", old_secret) == 0


@pytest.mark.parametrize("grace", ["-5m", "8d", "soon"])
def test_ctrl_rotate_with_a_bad_grace_changes_nothing(ctrl_admin, grace):
    old_secret, old_hash = ctrl_admin.create("dev-4", "dev", "2d")
    result = ctrl_admin.ctrl("rotate", "dev-4", "--grace", grace)
    assert result.returncode != 0, str(result)
    assert "Error" in result.stderr or "Usage" in result.stderr, str(result)
    assert not TOKEN_IN_TEXT.search(result.stdout + result.raw_stderr), str(result)
    assert admin_get(ctrl_admin, "dev-4")["hash"] == old_hash
    assert attempt_login(ctrl_admin.port, "dev-4", old_secret) == 0
