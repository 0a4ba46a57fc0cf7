"""
Metrics (SPEC section 4, "Beyond the seed"): retained decimal numbers under
$SYS/broker/tokens/ (total, valid, invalid, connections, logins/accepted,
logins/refused), refreshed every plugin_opt_metrics_interval seconds
(default 10, 0 turns them off), as a $SYS scraper reads them: it subscribes
and gets the retained values at once. Logins count token-shaped passwords
only, since the broker started; the SIGHUP re-check is not a login.
"""
import signal
import time

import pytest

from access_helpers import (
    attempt_login, device, forge_token, issue, issue_short_lived, make_role, refused, wait_until,
)
from events_metrics_helpers import (
    ACL_WITH_SYS, DECIMAL_RE, METRIC_NAMES, METRICS_PREFIX, read_metrics, wait_metrics,
)
from tokens_helpers import FUTURE, V5, V311

RELOADED = "Reloading config."
USERS_ACL = ACL_WITH_SYS + "\nuser alice\ntopic readwrite #\n"


@pytest.fixture
def metered(broker_factory):
    """A broker refreshing the metrics every second, whose anonymous
    clients may read $SYS, with a password_file user alice."""
    return broker_factory(acl=USERS_ACL, users={"alice": "alice-password"},
                          extra_config=["plugin_opt_metrics_interval 1"])


@pytest.fixture
def admin(metered, make_client):
    return make_client(broker=metered)


def check_published(values, retained):
    """Every metric is there, a decimal number, and retained."""
    for name in METRIC_NAMES:
        assert name in values, f"{METRICS_PREFIX}{name} not published: {values}"
        assert DECIMAL_RE.match(values[name]), f"{METRICS_PREFIX}{name} = {values[name]!r}"
        assert name in retained, f"{METRICS_PREFIX}{name} is not retained"


def test_an_empty_store(metered, admin):
    values, retained = wait_metrics(metered.port, {"total": 0, "valid": 0, "invalid": 0, "connections": 0,
                                                   "logins/accepted": 0, "logins/refused": 0})
    check_published(values, retained)


def test_metrics_after_a_known_sequence(metered, admin, devices):
    make_role(admin, "dev")
    secret_a, _ = issue(admin, "a", "dev")
    issue(admin, "b", "dev")
    secret_c, _, until = issue_short_lived(admin, "c", "dev", 2)

    # Two accepted token logins (one stays connected), two refused.
    kept = devices(metered, "a", secret_a, client_id="a-kept")
    assert attempt_login(metered.port, "a", secret_a, protocol=V311) == 0
    assert refused(V5, attempt_login(metered.port, "m", "mqtk_" + "x" * 20))     # malformed
    metered.wait_for_log(r"malformed token")
    assert refused(V5, attempt_login(metered.port, "u", forge_token()))          # unknown
    metered.wait_for_log(r"unknown token")
    # Not token logins: not counted.
    assert attempt_login(metered.port, "alice", "alice-password") == 0
    assert refused(V5, attempt_login(metered.port, "alice", "wrong-password"))
    assert attempt_login(metered.port) == 0   # anonymous

    admin.call("revokeToken", name="b")
    wait_until(lambda: time.time() > until + 0.2, timeout=5, message="c expired")

    expected = {"total": 2, "valid": 1, "invalid": 1, "connections": 1,
                "logins/accepted": 2, "logins/refused": 2}
    values, retained = wait_metrics(metered.port, expected)
    check_published(values, retained)
    # A refresh later they still hold (nothing counted twice).
    time.sleep(1.3)
    values, _ = read_metrics(metered.port)
    assert {k: values.get(k) for k in expected} == {k: str(v) for k, v in expected.items()}

    # An expired token's login is a refused one; the connection leaving is counted.
    assert refused(V5, attempt_login(metered.port, "c", secret_c))
    kept.close()
    wait_metrics(metered.port, {"connections": 0, "logins/refused": 3, "logins/accepted": 2})


def test_connections_count_live_token_sessions(metered, admin, devices):
    make_role(admin, "dev")
    secret, _ = issue(admin, "a", "dev")
    other, _ = issue(admin, "b", "dev")
    conns = [devices(metered, "a", secret, client_id=f"a-{i}") for i in range(3)]
    devices(metered, "b", other, client_id="b-1", protocol=V311)
    devices(metered, "alice", "alice-password", client_id="alice-1")   # not a token session
    wait_metrics(metered.port, {"connections": 4, "logins/accepted": 4})
    admin.call("revokeToken", name="a")
    for conn in conns:
        assert conn.wait_disconnected(1.0)
    wait_metrics(metered.port, {"connections": 1, "total": 1, "valid": 1})


def test_the_sighup_recheck_is_not_a_login(metered, admin, devices):
    make_role(admin, "dev")
    secret, _ = issue(admin, "a", "dev")
    conn = devices(metered, "a", secret, client_id="a-1")
    wait_metrics(metered.port, {"logins/accepted": 1, "connections": 1})
    count = metered.log.count(RELOADED)
    metered.process.send_signal(signal.SIGHUP)
    wait_until(lambda: metered.log.count(RELOADED) > count, message="reload logged")
    time.sleep(2.2)   # two refreshes
    values, _ = read_metrics(metered.port)
    assert values.get("logins/accepted") == "1", values
    assert values.get("logins/refused") == "0", values
    assert values.get("connections") == "1", values
    assert conn.is_connected


def test_metrics_follow_changes_within_the_interval(metered, admin):
    make_role(admin, "dev")
    wait_metrics(metered.port, {"total": 0})
    issue(admin, "a", "dev")
    issue(admin, "b", "dev", FUTURE)
    started = time.monotonic()
    wait_metrics(metered.port, {"total": 2, "valid": 2}, timeout=3.0)
    assert time.monotonic() - started <= 2.5


@pytest.mark.parametrize("hard", [False, True], ids=["clean-restart", "kill-9"])
def test_login_counts_start_again_with_the_broker_the_store_does_not(metered, admin, hard):
    make_role(admin, "dev")
    secret, _ = issue(admin, "a", "dev")
    _, _, until = issue_short_lived(admin, "short", "dev", 1)
    assert attempt_login(metered.port, "a", secret) == 0
    assert refused(V5, attempt_login(metered.port, "x", forge_token()))
    wait_until(lambda: time.time() > until + 0.2, timeout=5, message="short expired")
    wait_metrics(metered.port, {"logins/accepted": 1, "logins/refused": 1, "total": 2, "valid": 1, "invalid": 1})
    metered.restart(hard=hard)
    wait_metrics(metered.port, {"logins/accepted": 0, "logins/refused": 0, "total": 2, "valid": 1,
                                "invalid": 1, "connections": 0})


def test_revoking_or_rotating_an_expired_token(metered, admin):
    make_role(admin, "dev")
    _, _, until = issue_short_lived(admin, "gone", "dev", 1)
    _, _, until = issue_short_lived(admin, "renewed", "dev", 1)
    wait_until(lambda: time.time() > until + 0.2, timeout=5, message="expired")
    wait_metrics(metered.port, {"total": 2, "valid": 0, "invalid": 2})
    admin.call("revokeToken", name="gone")
    wait_metrics(metered.port, {"total": 1, "valid": 0, "invalid": 1})
    renewed = admin.call("rotateToken", name="renewed", validUntil=FUTURE)
    assert renewed["status"] == "valid"
    wait_metrics(metered.port, {"total": 1, "valid": 1, "invalid": 0})


def test_an_old_secret_connection_leaves_the_count_at_the_end_of_its_grace(metered, admin, devices):
    make_role(admin, "dev")
    secret, _ = issue(admin, "a", "dev")
    old = devices(metered, "a", secret, client_id="a-old")
    data = admin.call("rotateToken", name="a", graceSeconds=2)
    devices(metered, "a", data["token"], client_id="a-new")
    wait_metrics(metered.port, {"connections": 2, "total": 1, "valid": 1, "logins/accepted": 2})
    assert old.wait_disconnected(5)
    wait_metrics(metered.port, {"connections": 1, "total": 1, "valid": 1, "logins/accepted": 2})


def test_interval_zero_publishes_nothing(broker_factory):
    broker = broker_factory(acl=ACL_WITH_SYS, extra_config=["plugin_opt_metrics_interval 0"])
    with broker.client() as admin:
        make_role(admin, "dev")
        secret, _ = issue(admin, "a", "dev")
    assert attempt_login(broker.port, "a", secret) == 0
    time.sleep(2.0)
    values, _ = read_metrics(broker.port, wait=1.0)
    assert values == {}, f"metrics published with plugin_opt_metrics_interval 0: {values}"
    # The scraper could have read them: the broker's own $SYS is there.
    with device(broker, subscriptions=["$SYS/broker/version"]) as scraper:
        assert scraper.expect("$SYS/broker/version")


def test_the_default_interval_is_ten_seconds(broker_factory):
    broker = broker_factory(acl=ACL_WITH_SYS)
    with broker.client() as admin:
        make_role(admin, "dev")
        issue(admin, "a", "dev")
    started = time.monotonic()
    wait_metrics(broker.port, {"total": 1}, timeout=12.0)
    assert time.monotonic() - started <= 11.5


@pytest.mark.parametrize("option", ["plugin_opt_metrics_interval -1", "plugin_opt_metrics_interval 1.5",
                                    "plugin_opt_metrics_interval often", "plugin_opt_expiry_warning_days -1",
                                    "plugin_opt_expiry_warning_days 3651", "plugin_opt_expiry_warning_days 1.5"])
def test_a_bad_option_stops_the_broker_naming_it(broker_factory, option):
    broker = broker_factory(start=False, extra_config=[option])
    assert broker.start_expecting_failure() != 0
    name = option.split()[0]
    assert any(name in line for line in broker.log_lines() if "tokens" in line), broker.log
