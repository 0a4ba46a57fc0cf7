"""
Reloading (README "Reloading (SIGHUP)"): the broker re-runs every client's
login; token clients whose token is still valid stay connected, and the
re-check is not a login (lastUsed stays, no new connection is logged);
expired tokens' clients are closed. And per_listener_settings true, which
the plugin refuses at start-up.
"""
import re
import time

import pytest

from access_helpers import (
    Device, acl, attempt_login, issue, issue_short_lived, make_role, refused, reload, wait_until,
)
from tokens_helpers import (
    V5, V311, broker_version, format_time, free_port, parse_time, sha256_hex, state_token, write_state,
)





def next_second(after):
    """Waits until the wall clock shows a later second than the RFC 3339
    time `after`, so that a new lastUsed would differ from it."""
    wait_until(lambda: time.time() - 0.05 >= parse_time(after).timestamp() + 1, timeout=2.5, message="next second")  # the broker's coarse clock lags


def connections_logged(broker, client_id):
    return len(re.findall(rf"New client connected from \S+ as {re.escape(client_id)} ", broker.log))


def test_sighup_keeps_valid_token_clients_and_is_not_a_login(broker, admin, devices):
    make_role(admin, "dev", [acl("publishClientSend", "d/#"), acl("subscribePattern", "d/#")])
    secret, _ = issue(admin, "dev-token", "dev")
    other_secret, _ = issue(admin, "other-token", "dev")
    d5 = devices(broker, "dev-token", secret, protocol=V5, client_id="dev-5", subscriptions=["d/#"])
    d3 = devices(broker, "dev-token", secret, protocol=V311, client_id="dev-3")
    # A persistent session that is offline at the reload.
    offline = devices(broker, "other-token", other_secret, protocol=V311, client_id="dev-offline",
                      clean_session=False)
    offline.close()
    observer = devices(broker, subscriptions=["d/#"])

    used = admin.call("getToken", name="dev-token")["lastUsed"]
    other_used = admin.call("getToken", name="other-token")["lastUsed"]
    assert used is not None and other_used is not None
    next_second(max(used, other_used))
    refusals = broker.log.count("tokens: refused login")

    reload(broker)

    assert d5.is_connected and d3.is_connected, "a valid token client was dropped by the reload"
    assert d3.publish_code("d/after", "reload") == 0
    observer.expect("d/after", "reload")
    d5.expect("d/after", "reload")
    assert d5.publish_code("d/v5", "ok") == 0
    observer.expect("d/v5", "ok")
    # Not a login: lastUsed unchanged, no new connection, no refusal.
    assert admin.call("getToken", name="dev-token")["lastUsed"] == used
    assert admin.call("getToken", name="other-token")["lastUsed"] == other_used
    assert connections_logged(broker, "dev-5") == 1
    assert connections_logged(broker, "dev-3") == 1
    assert broker.log.count("tokens: refused login") == refusals

    # A repeated login gets the same answer, and that one is a login.
    assert attempt_login(broker.port, "dev-token", secret, V5) == 0
    again = admin.call("getToken", name="dev-token")["lastUsed"]
    assert parse_time(again) > parse_time(used)
    with Device(broker.port, protocol=V311, client_id="dev-offline", clean_session=False,
                username="other-token", password=other_secret) as back:
        assert back.publish_code("d/back", "1") == 0

    admin.close()
    broker.stop()
    on_disk = {t["name"]: t["lastUsed"] for t in broker.read_state()["tokens"]}
    assert on_disk["dev-token"] == again


def test_sighup_twice_and_revoke_after_it(broker, admin, devices):
    make_role(admin, "dev", [acl("publishClientSend", "d/#")])
    secret, _ = issue(admin, "t", "dev")
    dev = devices(broker, "t", secret)
    reload(broker)
    reload(broker)
    assert dev.is_connected
    assert dev.publish_code("d/1", "x") == 0
    # The binding survived the re-checks: revoking still finds the client.
    assert admin.call("revokeToken", name="t")["disconnected"] == 1
    assert dev.wait_disconnected(1.0)


def test_sighup_closes_clients_of_expired_tokens(broker, admin, devices):
    make_role(admin, "dev", [acl("publishClientSend", "d/#")])
    short, _, until = issue_short_lived(admin, "short", "dev", 2)
    long_secret, _ = issue(admin, "long", "dev")
    expiring = devices(broker, "short", short, client_id="expiring")
    staying = devices(broker, "long", long_secret, client_id="staying")
    wait_until(lambda: time.time() >= until, timeout=4, interval=0.01, message="validUntil")
    reload(broker)
    assert expiring.wait_disconnected(until + 2.5 - time.time())
    assert expiring.disconnected_at <= until + 2.5
    assert staying.is_connected
    assert staying.publish_code("d/ok", "1") == 0
    assert refused(V5, attempt_login(broker.port, "short", short, client_id="short-again"))
    broker.wait_for_log(r"client short-again: expired token short")
    assert attempt_login(broker.port, "long", long_secret) == 0


def test_sighup_with_allow_anonymous_false(broker_factory, make_client, devices):
    """README: a token client that sends a username (its token's name)
    survives a reload with allow_anonymous false."""
    broker = broker_factory(users={"ops": "ops-password"}, allow_anonymous=False)
    ops = make_client(broker=broker, username="ops", password="ops-password")
    make_role(ops, "dev", [acl("publishClientSend", "d/#")])
    secret, _ = issue(ops, "t", "dev")
    named = devices(broker, "t", secret, client_id="named")
    reload(broker)
    assert named.is_connected
    assert named.publish_code("d/1", "x") == 0
    assert ops.call("getToken", name="t")["status"] == "valid"


# ---------------------------------------------------------------- per_listener_settings

@pytest.mark.skipif(broker_version() >= (2, 1), reason="2.1 ticks listener-bound plugins: one instance is fine there")
def test_per_listener_settings_is_refused(broker_factory, tmp_path):
    """2.0 sends a listener-bound plugin no ticks before 2.0.15: refused
    from the plugin id, whose layout is known on every 2.0 release."""
    state = str(tmp_path / "tokens.json")
    secret_hash = sha256_hex("never-used")
    original = write_state(state, roles=[{"rolename": "r", "acls": []}],
                           tokens=[state_token("t", "r", "2026-01-01T00:00:00Z", "2099-01-01T00:00:00Z",
                                               hash_hex=secret_hash)])
    broker = broker_factory(start=False, state_file=state, prelude=["per_listener_settings true"])
    code = broker.start_expecting_failure()
    assert code != 0
    assert re.search(r"tokens: per_listener_settings true is not supported", broker.log), broker.log
    with open(state, "rb") as f:
        assert f.read() == original


@pytest.mark.skipif(broker_version() >= (2, 1), reason="2.1 loads one plugin path once, whatever the listeners")
def test_an_instance_per_listener_is_refused(broker_factory, tmp_path):
    """per_listener_settings true with two listeners gives each its own
    instance on 2.0, with its own copy of the state: refused."""
    broker = broker_factory(start=False, prelude=["per_listener_settings true"])
    broker.extra_config += [f"listener {free_port()} 127.0.0.1", f"plugin {broker.plugin}",
                            f"plugin_opt_state_file {tmp_path / 'other.json'}"]
    code = broker.start_expecting_failure()
    assert code != 0
    assert re.search(r"tokens: per_listener_settings true is not supported", broker.log), broker.log


def test_per_listener_settings_false_is_fine(broker_factory):
    broker = broker_factory(prelude=["per_listener_settings false"])
    assert broker.running
    assert "not supported" not in broker.current_log
