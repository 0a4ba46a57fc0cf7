"""
A fleet of brokers on one PostgreSQL store (SPEC section 9): what one
member changes, every member applies within a second, through the
database; a database that goes away stops changes, never logins.
"""
import json
import threading
import time


from access_helpers import issue
from fleet_helpers import (PROPAGATION, changes, command, dev_role, logs_in, member, token_rows, wait_for)
from tokens_helpers import FUTURE, state_token, write_state


def listed(admin):
    return {token["name"] for token in admin.call("listTokens")["tokens"]}


def test_a_token_created_on_one_member_logs_in_on_the_other(two_members, postgres):
    a, b, admin_a, admin_b = two_members
    secret, hash_hex = issue(admin_a, "sensor-1", "dev")
    assert wait_for(lambda: "sensor-1" in listed(admin_b), PROPAGATION)
    dev = logs_in(b, secret)
    assert dev is not None
    dev.close()
    # The database holds the hash, never the secret.
    row = token_rows(postgres)["sensor-1"]
    assert row["hash"] == hash_hex
    assert secret not in postgres.psql("SELECT change::text FROM mosquitto_tokens_changes")
    assert [op for _, op, _ in changes(postgres)] == ["createRole", "createToken"]


def test_a_revoke_on_one_member_closes_the_session_on_the_other_within_a_second(two_members):
    a, b, admin_a, admin_b = two_members
    secret, _ = issue(admin_b, "sensor-2", "dev")
    assert wait_for(lambda: "sensor-2" in listed(admin_a), PROPAGATION)
    dev = logs_in(a, secret)
    assert dev is not None
    revoked_at = time.time()
    admin_b.call("revokeToken", name="sensor-2")
    assert dev.wait_disconnected(PROPAGATION + 0.5), "the session on a outlived the revoke on b"
    assert dev.disconnected_at - revoked_at <= PROPAGATION
    assert logs_in(a, secret) is None
    dev.close()


def test_three_members_each_see_every_change(broker_factory, postgres):
    brokers = [member(broker_factory, postgres, name) for name in ("a", "b", "c")]
    admins = [broker.client() for broker in brokers]
    dev_role(admins[0])
    secrets = {}
    for index, admin in enumerate(admins):
        secrets[f"t{index}"], _ = issue(admin, f"t{index}", "dev")
    for admin in admins:
        assert wait_for(lambda: listed(admin) == {"t0", "t1", "t2"}, PROPAGATION)
    for broker in brokers:
        for secret in secrets.values():
            dev = logs_in(broker, secret)
            assert dev is not None
            dev.close()
    assert [seq for seq, _, _ in changes(postgres)] == [1, 2, 3, 4]
    for admin in admins:
        admin.close()


def test_a_rotation_with_grace_works_on_every_member(two_members):
    a, b, admin_a, admin_b = two_members
    old_secret, _ = issue(admin_a, "rotated", "dev")
    assert wait_for(lambda: "rotated" in listed(admin_b), PROPAGATION)
    held = logs_in(b, old_secret)
    assert held is not None
    data = admin_a.call("rotateToken", name="rotated", graceSeconds=60)
    new_secret = data["token"]
    assert wait_for(lambda: logs_in_and_leaves(b, new_secret), PROPAGATION)
    # In its grace period the old secret logs in, and its session stays.
    assert logs_in_and_leaves(b, old_secret)
    assert held.is_connected
    held.close()


def logs_in_and_leaves(broker, secret):
    dev = logs_in(broker, secret)
    if dev is None:
        return False
    dev.close()
    return True


def test_one_name_created_on_two_members_at_once_is_created_once(two_members, postgres):
    a, b, admin_a, admin_b = two_members
    for attempt in range(5):
        name = f"race-{attempt}"
        results = {}
        start = threading.Barrier(2)

        def create(admin, key):
            start.wait()
            results[key] = command(admin, "createToken", name=name, role="dev", validUntil=FUTURE)

        threads = [threading.Thread(target=create, args=(admin, key)) for key, admin in (("a", admin_a), ("b", admin_b))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outcomes = sorted("data" if "data" in response else response["code"] for response in results.values())
        assert outcomes == ["data", "exists"], results
        winner = next(response for response in results.values() if "data" in response)
        assert token_rows(postgres)[name]["hash"] == winner["data"]["hash"]
        for broker in (a, b):
            assert logs_in_and_leaves(broker, winner["data"]["token"])


def test_a_member_catches_up_on_what_it_missed_while_stopped(two_members, postgres):
    a, b, admin_a, admin_b = two_members
    admin_b.close()
    b.stop()
    secret, _ = issue(admin_a, "while-b-was-down", "dev")
    admin_a.call("createRole", rolename="later", acls=[])
    b.start()
    assert "caught up to change 3" in b.current_log
    dev = logs_in(b, secret)
    assert dev is not None
    dev.close()
    admin = b.client()
    assert {role["rolename"] for role in admin.call("listRoles")["roles"]} >= {"dev", "later"}
    admin.close()


def test_last_used_reaches_the_database_in_batches_and_only_moves_later(broker_factory, postgres):
    saving = ["plugin_opt_last_used_save_interval 1"]
    a = member(broker_factory, postgres, "a", extra_config=saving)
    b = member(broker_factory, postgres, "b", extra_config=saving)
    admin = a.client()
    dev_role(admin)
    secret, _ = issue(admin, "used", "dev")
    assert token_rows(postgres)["used"]["lastUsed"] is None
    assert wait_for(lambda: logs_in_and_leaves(b, secret), PROPAGATION)
    first = wait_for(lambda: token_rows(postgres)["used"]["lastUsed"], 5.0)
    assert first, "b's login never reached the database"
    time.sleep(1.1)
    assert logs_in_and_leaves(a, secret)
    second = wait_for(lambda: (token_rows(postgres)["used"]["lastUsed"] or "") > first and
                      token_rows(postgres)["used"]["lastUsed"], 5.0)
    assert second, "a's later login never reached the database"
    # lastUsed is not a change of the log: no member applies it twice.
    assert [op for _, op, _ in changes(postgres)] == ["createRole", "createToken"]
    admin.close()


def test_a_state_file_with_a_store_of_its_own_is_refused_as_a_cache(broker_factory, postgres, tmp_path):
    state = tmp_path / "store.json"
    write_state(state, roles=[{"rolename": "dev", "acls": []}],
                tokens=[state_token("precious", "dev", "2026-11-28T10:00:00Z", FUTURE)])
    before = state.read_bytes()
    broker = member(broker_factory, postgres, "a", start=False, state_file=str(state))
    assert broker.start_expecting_failure() != 0
    assert "holds a store of its own (1 tokens, 1 roles), not a cache of a database" in broker.log
    assert "tokens import" in broker.log
    assert state.read_bytes() == before


def test_a_connection_string_libpq_cannot_read_is_refused_without_quoting_it(broker_factory, tmp_path):
    broker = broker_factory(start=False, name="a",
                            extra_config=["plugin_opt_postgres_conninfo postgresql://tokens:s3cr%zzet@127.0.0.1/db"])
    assert broker.start_expecting_failure() != 0
    assert "plugin_opt_postgres_conninfo is not a connection string or URI libpq can read" in broker.log
    assert "s3cr" not in broker.log


def test_a_database_user_with_only_data_rights_runs_a_member(broker_factory, postgres):
    first = member(broker_factory, postgres, "a")   # creates the schema, as its owner
    first.stop()
    postgres.psql("CREATE ROLE limited LOGIN; "
                  "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO limited; "
                  "REVOKE CREATE ON SCHEMA public FROM PUBLIC;")
    try:
        limited = broker_factory(name="b", extra_config=[
            f"plugin_opt_postgres_conninfo {postgres.conninfo.replace('user=tokens', 'user=limited')}"])
        admin = limited.client()
        dev_role(admin)
        assert "data" in command(admin, "createToken", name="by-limited", role="dev", validUntil=FUTURE)
        admin.close()
        limited.stop()
    finally:
        postgres.psql("DROP OWNED BY limited; DROP ROLE limited;")


def test_last_used_of_the_last_logins_reaches_the_database_at_a_clean_stop(broker_factory, postgres):
    a = member(broker_factory, postgres, "a", extra_config=["plugin_opt_last_used_save_interval 3600"])
    admin = a.client()
    dev_role(admin)
    secret, _ = issue(admin, "used-late", "dev")
    assert logs_in_and_leaves(a, secret)
    admin.close()
    assert token_rows(postgres)["used-late"]["lastUsed"] is None
    a.stop()
    assert token_rows(postgres)["used-late"]["lastUsed"] is not None


def test_a_member_that_only_receives_changes_folds_its_cache(broker_factory, postgres):
    a = member(broker_factory, postgres, "a")
    b = member(broker_factory, postgres, "b", extra_config=["plugin_opt_snapshot_after 5"])
    admin = a.client()
    dev_role(admin)
    for index in range(12):
        issue(admin, f"f-{index}", "dev")
    admin.close()

    def folded():
        try:
            with open(b.journal_file) as f:
                return len(f.read().splitlines()) < 6
        except FileNotFoundError:
            return True

    time.sleep(PROPAGATION)
    assert wait_for(folded, 5.0), "b's cache journal kept every change"
    with open(b.state_file) as f:
        assert json.load(f)["fleetSequence"] >= 6
