"""
A fleet member without its database (SPEC section 9): logins and ACL
checks go on from memory, changes fail with `storage` and change nothing,
the member reconnects by itself and catches up; a member started while
the database is down serves from its cache; a member killed during a
burst of commands loses none that were acknowledged; expiry notices are
sent once per fleet.
"""
import os
import signal
import subprocess
import threading
import time


from access_helpers import Device, issue, issue_short_lived
from events_metrics_helpers import EventWatcher
from fleet_helpers import PROPAGATION, changes, command, dev_role, logs_in, member, token_rows, wait_for
from tokens_helpers import FUTURE

RECONNECT = 10.0   # seconds in which a member finds a database that is back (its backoff is at most 30 s, from 0.25 s)


def creates(admin, name):
    return "data" in command(admin, "createToken", name=name, role="dev", validUntil=FUTURE)


def test_without_the_database_logins_go_on_and_changes_fail_with_storage(two_members, postgres):
    a, b, admin_a, admin_b = two_members
    secret, _ = issue(admin_a, "kept", "dev")
    assert wait_for(lambda: logs_in(b, secret), PROPAGATION)
    held = logs_in(a, secret)
    postgres.server.stop()
    for broker in (a, b):
        dev = logs_in(broker, secret)
        assert dev is not None, f"{broker.name} refused a valid token without its database"
        assert dev.publish_code("d/x", "still here") == 0
        dev.close()
    refused = command(admin_a, "createToken", name="lost", role="dev", validUntil=FUTURE)
    assert refused["code"] == "storage", refused
    assert command(admin_b, "revokeToken", name="kept")["code"] == "storage"
    assert held.is_connected
    assert "kept" in {t["name"] for t in admin_b.call("listTokens")["tokens"]}
    assert "lost connection to PostgreSQL" in a.log or "PostgreSQL" in a.log

    postgres.server.start()
    assert wait_for(lambda: creates(admin_a, "after"), RECONNECT), "a did not reconnect"
    assert wait_for(lambda: creates(admin_b, "after-b"), RECONNECT), "b did not reconnect"
    assert set(token_rows(postgres)) == {"kept", "after", "after-b"}
    assert wait_for(lambda: logs_in(b, admin_a.call("getToken", name="after") and secret), PROPAGATION)
    held.close()


def test_every_acknowledged_change_survives_a_database_restart_under_load(two_members, postgres):
    a, b, admin_a, admin_b = two_members
    secret, _ = issue(admin_a, "busy", "dev")
    wait_for(lambda: logs_in(b, secret), PROPAGATION).close()
    acknowledged, refused_logins, stop = [], [], threading.Event()

    def create_in_a_loop():
        for index in range(100000):
            if stop.is_set():
                return
            if creates(admin_a, f"burst-{index}"):
                acknowledged.append(f"burst-{index}")

    def log_in_in_a_loop():
        while not stop.is_set():
            try:
                Device(b.port, username="dev", password=secret, client_id=f"busy-{time.monotonic_ns()}").close()
            except AssertionError as error:
                refused_logins.append((time.time(), str(error)))

    workers = [threading.Thread(target=create_in_a_loop), threading.Thread(target=log_in_in_a_loop)]
    for worker in workers:
        worker.start()
    time.sleep(1.0)
    postgres.server.stop()
    time.sleep(1.0)
    postgres.server.start()
    wait_for(lambda: len(acknowledged) > 0 and creates(admin_b, "probe"), RECONNECT)
    time.sleep(0.5)
    stop.set()
    for worker in workers:
        worker.join()
    assert refused_logins == [], [line for line in b.log.splitlines() if "tokens:" in line]
    assert len(acknowledged) > 10
    rows = token_rows(postgres)
    assert set(acknowledged) <= set(rows)
    listed = {t["name"] for t in admin_b.call("listTokens", count=100000)["tokens"]}
    assert set(acknowledged) <= listed


def test_a_member_started_while_the_database_is_down_serves_from_its_cache(two_members, postgres):
    a, b, admin_a, admin_b = two_members
    secret, _ = issue(admin_a, "cached", "dev")
    assert wait_for(lambda: logs_in(b, secret), PROPAGATION)
    admin_b.close()
    b.stop()
    postgres.server.stop()
    b.start()
    assert "serving the 1 tokens of the local cache" in b.current_log
    dev = logs_in(b, secret)
    assert dev is not None
    dev.close()
    postgres.server.start()
    assert wait_for(lambda: creates(admin_a, "later"), RECONNECT)
    later = admin_a.call("rotateToken", name="cached")["token"]
    assert wait_for(lambda: logs_in(b, later), RECONNECT), "b did not catch up after the database came back"
    assert logs_in(b, secret) is None


def test_a_member_killed_during_a_burst_loses_no_acknowledged_change(two_members, postgres, broker_factory):
    a, b, admin_a, admin_b = two_members
    acknowledged = []

    def burst():
        for index in range(100000):
            try:
                if creates(admin_a, f"k-{index}"):
                    acknowledged.append(f"k-{index}")
            except (AssertionError, Exception):
                return

    worker = threading.Thread(target=burst)
    worker.start()
    time.sleep(1.0)
    a.kill()
    worker.join()
    assert acknowledged
    names = set(token_rows(postgres))
    assert set(acknowledged) <= names
    seqs = [seq for seq, _, _ in changes(postgres)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert wait_for(lambda: {t["name"] for t in admin_b.call("listTokens", count=100000)["tokens"]} >= names, PROPAGATION)
    a.start()
    admin = a.client()
    assert {t["name"] for t in admin.call("listTokens", count=100000)["tokens"]} == names
    assert creates(admin, "after-restart")
    admin.close()


def test_expiry_notices_are_sent_once_per_fleet(two_members):
    a, b, admin_a, admin_b = two_members
    watchers = [EventWatcher(a.port), EventWatcher(b.port)]
    for index in range(4):
        issue_short_lived(admin_a, f"other-{index}", "dev", 2 + index)
    _, _, until = issue_short_lived(admin_a, "brief", "dev", 2)
    time.sleep(max(0.0, until - time.time()) + 4.0)
    for watcher in watchers:
        watcher.pump(0.5)
    expiring = sum(watcher.count("tokenExpiring", name="brief") for watcher in watchers)
    expired = sum(watcher.count("tokenExpired", name="brief") for watcher in watchers)
    assert (expiring, expired) == (1, 1)
    for watcher in watchers:
        watcher.close()
    # The member that lost the race for a notice still applies the others'
    # changes from its tick (it once stayed behind, each tick).
    for here, there, admin_there in ((a, b, admin_b), (b, a, admin_a)):
        secret, _ = issue(admin_there, f"held-on-{here.name}", "dev")
        dev = wait_for(lambda: logs_in(here, secret), PROPAGATION)
        assert dev is not None
        admin_there.call("revokeToken", name=f"held-on-{here.name}")
        assert dev.wait_disconnected(PROPAGATION), f"{here.name} did not apply a revoke made on {there.name}"
        dev.close()


def server_processes(server):
    """The postmaster and its children (the backends serving the brokers)."""
    pid = server.pid()
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid] + [int(child) for child in children]


def test_a_database_that_hangs_holds_a_command_at_most_the_timeout(broker_factory, postgres):
    timeout = ["plugin_opt_postgres_timeout_ms 500"]
    a = member(broker_factory, postgres, "a", extra_config=timeout)
    admin = a.client()
    dev_role(admin)
    secret, _ = issue(admin, "steady", "dev")
    frozen = server_processes(postgres.server)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        refused = command(admin, "createToken", name="stuck", role="dev", validUntil=FUTURE)
        waited = time.monotonic() - started
        assert refused["code"] == "storage", refused
        assert waited < 2.0, f"the command waited {waited:.1f}s for a database that does not answer"
        # The link is dropped: the next command fails at once, logins go on.
        started = time.monotonic()
        assert command(admin, "revokeToken", name="steady")["code"] == "storage"
        assert time.monotonic() - started < 0.5
        dev = logs_in(a, secret)
        assert dev is not None
        dev.close()
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    assert wait_for(lambda: creates(admin, "thawed"), RECONNECT)
    admin.close()


def test_a_database_that_hangs_under_an_idle_member_is_noticed(broker_factory, postgres):
    a = member(broker_factory, postgres, "a", extra_config=["plugin_opt_postgres_timeout_ms 500"])
    frozen = server_processes(postgres.server)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        # The tick's fetch (every 2 s) finds no answer within the timeout.
        a.wait_for_log("lost the connection to PostgreSQL", timeout=5.0)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    a.wait_for_log("PostgreSQL is reachable again", timeout=RECONNECT)


def test_a_cache_that_cannot_be_written_is_written_whole_once_it_can(broker_factory, postgres, tmp_path):
    from test_faults import Faults
    folder = tmp_path / "cache"
    folder.mkdir()
    faults = Faults(folder, tmp_path / "faults")
    a = member(broker_factory, postgres, "a", state_file=os.path.join(folder, "tokens.json"), env=faults.env,
               extra_config=["plugin_opt_last_used_save_interval 1"])
    admin = a.client()
    dev_role(admin)
    faults.on("write EIO")
    secret, _ = issue(admin, "while-the-disk-fails", "dev")   # the database has it: the command succeeds
    second, _ = issue(admin, "and-after", "dev")
    assert "could not write change 2 to the local cache" in a.log
    faults.off()
    a.wait_for_log("the local cache is written whole again")
    admin.close()
    a.kill()
    postgres.server.stop()
    a.start()
    assert "serving the 2 tokens of the local cache" in a.current_log
    for token in (secret, second):
        dev = logs_in(a, token)
        assert dev is not None
        dev.close()
