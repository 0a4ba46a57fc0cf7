"""
Logging in with a token (SPEC section 2, README "Logging in with a token"):
what a device sees in its CONNACK, what the operator reads in the broker's
log (never the password), passwords that are not tokens left to the broker,
and lastUsed: in memory at once, on disk lazily and at shutdown.
"""
import time

import pytest

from access_helpers import (
    Device, MosquittoSub, acl, admin_client, attempt_login, device, forge_token, issue,
    make_role, mosquitto_pub, refused, wait_until,
)
from tokens_helpers import (
    V5, V311, format_time, parse_time, sha256_hex, state_token, token_checksum, write_state,
)

REFUSED_LINE = "tokens: refused login from 127.0.0.1 client "


@pytest.fixture
def admin(broker, make_client):
    return make_client(broker=broker)


@pytest.fixture
def sensor(admin):
    """A token whose role may publish and subscribe under sensors/."""
    make_role(admin, "sensors", [acl("publishClientSend", "sensors/#"), acl("subscribePattern", "sensors/#")])
    secret, hash_hex = issue(admin, "boiler-7", "sensors")
    return secret, hash_hex


def refusal_lines(broker):
    return [line for line in broker.log_lines() if REFUSED_LINE in line]


def with_checksum(first48):
    return first48 + token_checksum(first48)


# ---------------------------------------------------------------- accepted

@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_valid_token_connects_and_works(broker, admin, sensor, protocol):
    secret, _ = sensor
    assert attempt_login(broker.port, "boiler-7", secret, protocol) == 0
    with device(broker, "boiler-7", secret, protocol=protocol) as dev, \
            Device(broker.port, subscriptions=["sensors/#"]) as observer:
        assert dev.publish_code("sensors/boiler-7/data", "21.5") == 0
        observer.expect("sensors/boiler-7/data", "21.5")
    assert refusal_lines(broker) == []
    assert secret not in broker.log
    assert "mqtk_" not in broker.log


def test_username_is_not_checked(broker, admin, sensor):
    secret, _ = sensor
    for username in ("boiler-7", "someone-else", ""):
        assert attempt_login(broker.port, username, secret, V311) == 0
    assert refusal_lines(broker) == []


def test_mosquitto_pub_and_sub_with_a_token(broker, admin, sensor):
    secret, _ = sensor
    sub = MosquittoSub(broker.port, "sensors/#", username="boiler-7", password=secret)
    try:
        sub.wait_subscribed()
        result = mosquitto_pub(broker.port, "sensors/boiler-7/data", "21.5", "boiler-7", secret, qos=1)
        assert result.returncode == 0, result.stderr
        assert sub.wait_message("sensors/boiler-7/data 21.5"), sub.output()
    finally:
        sub.stop()
    assert sub.output()[1] == []


# ---------------------------------------------------------------- refused

def malformed_passwords(secret):
    body = secret[:48]
    changed = body[:20] + ("A" if body[20] != "A" else "B") + body[21:]
    passwords = {
        "too-long": secret + "a",
        "truncated": secret[:-1],
        "prefix-alone": "mqtk_",
        "checksum-broken-by-one-char": changed + secret[48:],
        "checksum-digit-changed": secret[:-1] + ("0" if secret[-1] != "0" else "1"),
        "bad-alphabet": with_checksum(body[:30] + "*" + body[31:]),
        "bad-alphabet-padding": with_checksum(body[:47] + "="),
        "no-body": with_checksum("mqtk_"),
    }
    if secret[48:] != secret[48:].upper():
        passwords["uppercase-checksum"] = body + secret[48:].upper()
    return passwords


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_malformed_tokens_are_refused(broker, admin, sensor, protocol):
    secret, _ = sensor
    for label, password in malformed_passwords(secret).items():
        before = len(refusal_lines(broker))
        rc = attempt_login(broker.port, "boiler-7", password, protocol, client_id=f"bad-{label}")
        assert refused(protocol, rc), (label, rc)
        lines = wait_until(lambda: refusal_lines(broker)[before:], message=f"refusal logged for {label}")
        assert len(lines) == 1, lines
        assert lines[0].endswith(f"client bad-{label}: malformed token"), lines[0]
    assert secret not in broker.log
    # Nothing of any password is logged (the prefix alone included).
    assert "mqtk_" not in broker.log
    # The real token still works.
    assert attempt_login(broker.port, "boiler-7", secret, protocol) == 0


def test_malformed_token_with_mosquitto_pub(broker, admin, sensor):
    secret, _ = sensor
    result = mosquitto_pub(broker.port, "sensors/x", "1", "boiler-7", secret[:-1])
    assert result.returncode != 0
    assert "not authorised" in result.stderr
    broker.wait_for_log(r"tokens: refused login from 127\.0\.0\.1 client \S+: malformed token")


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_unknown_token_is_refused_and_logged_by_hash(broker, admin, sensor, protocol):
    unknown = forge_token()
    assert unknown[48:] == token_checksum(unknown[:48]) and len(unknown) == 56
    rc = attempt_login(broker.port, "boiler-7", unknown, protocol, client_id="forger")
    assert refused(protocol, rc), rc
    broker.wait_for_log(rf"(?m)tokens: refused login from 127\.0\.0\.1 client forger: unknown token with hash {sha256_hex(unknown)}$")
    assert unknown not in broker.log
    assert "mqtk_" not in broker.log


def test_unknown_token_with_mosquitto_sub(broker, admin, sensor):
    unknown = forge_token()
    sub = MosquittoSub(broker.port, "sensors/#", username="boiler-7", password=unknown)
    try:
        assert sub.wait_exit() not in (None, 0)
        assert "not authorised" in "\n".join(sub.output()[1])
    finally:
        sub.stop()
    broker.wait_for_log(f"unknown token with hash {sha256_hex(unknown)}")


def test_revoked_token_is_unknown(broker, admin, sensor):
    secret, hash_hex = sensor
    assert attempt_login(broker.port, "boiler-7", secret) == 0
    admin.call("revokeToken", name="boiler-7")
    assert refused(V5, attempt_login(broker.port, "boiler-7", secret, client_id="after-revoke"))
    broker.wait_for_log(f"client after-revoke: unknown token with hash {hash_hex}")


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_expired_token_is_refused(broker_factory, protocol, tmp_path):
    """A token past its validUntil, as a state file holds it at start-up."""
    expired, fresh = forge_token(), forge_token()
    state = str(tmp_path / "tokens.json")
    write_state(state, roles=[{"rolename": "r", "acls": []}], tokens=[
        state_token("old-sensor", "r", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z",
                    hash_hex=sha256_hex(expired)),
        state_token("new-sensor", "r", "2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z",
                    hash_hex=sha256_hex(fresh)),
    ])
    broker = broker_factory(state_file=state)
    rc = attempt_login(broker.port, "old-sensor", expired, protocol, client_id="late")
    assert refused(protocol, rc), rc
    broker.wait_for_log(r"tokens: refused login from 127\.0\.0\.1 client late: expired token old-sensor")
    assert expired not in broker.log and "mqtk_" not in broker.log
    assert attempt_login(broker.port, "new-sensor", fresh, protocol) == 0
    with admin_client(broker) as admin:
        meta = admin.call("getToken", name="old-sensor")
        assert meta["status"] == "invalid"
        assert meta["lastUsed"] is None, "a refused login is not a use"
        assert admin.call("getToken", name="new-sensor")["lastUsed"] is not None


# ---------------------------------------------------------------- not tokens: deferred

@pytest.fixture
def users_broker(broker_factory):
    return broker_factory(users={"alice": "alice-password", "dash": "mqtk-but-no-underscore",
                                 "carol": "mqtk_carol"})


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_other_passwords_are_left_to_the_password_file(users_broker, protocol):
    broker = users_broker
    assert attempt_login(broker.port, "alice", "alice-password", protocol) == 0
    assert attempt_login(broker.port, "dash", "mqtk-but-no-underscore", protocol) == 0
    assert refused(protocol, attempt_login(broker.port, "alice", "wrong", protocol))
    assert refused(protocol, attempt_login(broker.port, "mallory", "whatever", protocol))
    assert attempt_login(broker.port, None, None, protocol) == 0, "anonymous, allow_anonymous true"
    time.sleep(0.1)
    assert refusal_lines(broker) == [], "the plugin said something about a password that is not a token"


def test_token_shaped_password_is_the_plugins_even_for_a_password_file_user(users_broker):
    """SPEC section 2: a password starting with mqtk_ is judged as a token."""
    broker = users_broker
    assert refused(V5, attempt_login(broker.port, "carol", "mqtk_carol", client_id="carol-1"))
    broker.wait_for_log(r"client carol-1: malformed token")


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_without_password_file_a_username_with_other_password_is_refused_by_the_broker(
        broker, admin, sensor, protocol):
    """The plugin defers; with no other mechanism, Mosquitto refuses a
    client that gave a username (and lets one without in, allow_anonymous)."""
    assert refused(protocol, attempt_login(broker.port, "bob", "hunter2", protocol))
    assert attempt_login(broker.port, None, None, protocol) == 0
    time.sleep(0.1)
    assert refusal_lines(broker) == []
    assert "hunter2" not in broker.log


# ---------------------------------------------------------------- lastUsed

def test_last_used_set_at_login_saved_at_shutdown(broker, admin, sensor):
    secret, _ = sensor
    assert admin.call("getToken", name="boiler-7")["lastUsed"] is None
    on_disk = broker.state_bytes()
    assert broker.read_state()["tokens"][0]["lastUsed"] is None

    before = time.time()
    with device(broker, "boiler-7", secret):
        pass
    last_used = admin.call("getToken", name="boiler-7")["lastUsed"]
    assert last_used is not None
    assert int(before) - 1 <= parse_time(last_used).timestamp() <= time.time() + 1
    listed = admin.call("listTokens")["tokens"][0]
    assert listed["lastUsed"] == last_used
    # Not written on the login path (default interval: 60 s).
    assert broker.state_bytes() == on_disk

    admin.close()
    assert broker.stop() == 0
    assert broker.read_state()["tokens"][0]["lastUsed"] == last_used
    broker.start()
    with admin_client(broker) as again:
        assert again.call("getToken", name="boiler-7")["lastUsed"] == last_used


def test_last_used_moves_with_each_login(broker, admin, sensor):
    secret, _ = sensor
    assert attempt_login(broker.port, "boiler-7", secret) == 0
    first = admin.call("getToken", name="boiler-7")["lastUsed"]
    # The broker's time() reads a coarse clock that may lag time.time() by a
    # few milliseconds: wait until the next second is surely there for it too.
    wait_until(lambda: time.time() - 0.05 >= parse_time(first).timestamp() + 1, timeout=2.5, message="next second")
    assert attempt_login(broker.port, "boiler-7", secret) == 0
    second = admin.call("getToken", name="boiler-7")["lastUsed"]
    assert parse_time(second) > parse_time(first)


def test_last_used_saved_within_the_interval(broker_factory):
    broker = broker_factory(extra_config=["plugin_opt_last_used_save_interval 1"])
    with admin_client(broker) as admin:
        make_role(admin, "r")
        secret, _ = issue(admin, "dev", "r")
        assert broker.read_state()["tokens"][0]["lastUsed"] is None
        assert attempt_login(broker.port, "dev", secret) == 0
        last_used = admin.call("getToken", name="dev")["lastUsed"]
        assert last_used is not None
        started = time.monotonic()
        wait_until(lambda: broker.read_state()["tokens"][0]["lastUsed"] is not None, timeout=3.0,
                   message="lastUsed in the state file")
        assert time.monotonic() - started <= 3.0
        assert broker.read_state()["tokens"][0]["lastUsed"] == last_used
        assert broker.running
