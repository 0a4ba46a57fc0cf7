"""
`mosquitto_ctrl tokens init`, `import` and `export` against the fleet's
PostgreSQL database (issue 19, docs/postgresql.md "Moving between the file
and the database"): the real mosquitto_ctrl and module, a real PostgreSQL
server (a fresh database per test, the `postgres` fixture), and what an
operator sees: the exit status, the output, and the database's tables.
"""
import json
import os
import stat

from ctrl_helpers import (  # noqa: F401  (fixtures)
    ADMIN_ACLS, TOKEN_IN_TEXT, TokenOnlyBroker, admin_factory, closed_port, expect_error, expect_ok, expect_usage_error, fields, init_state,
    run_ctrl, table, the_token,
)
from tokens_helpers import Broker, sha256_hex, state_token, write_state


def read_json(path):
    with open(path) as f:
        return json.load(f)


def rows(db, sql):
    return [line.split("|") for line in db.psql(sql).splitlines()]


def store_counts(db):
    """(changes, roles, tokens) of the database's store (0s before any schema)."""
    exists = db.psql("SELECT to_regclass('mosquitto_tokens_changes') IS NOT NULL").strip()
    if exists != "t":
        return (0, 0, 0)
    line = db.psql("SELECT (SELECT count(*) FROM mosquitto_tokens_changes), (SELECT count(*) FROM "
                   "mosquitto_tokens_roles), (SELECT count(*) FROM mosquitto_tokens_tokens)").strip()
    return tuple(int(n) for n in line.split("|"))


def init_database(db, name="admin", *args, target=None):
    """`tokens init <uri> name`; must succeed. Returns (result, token)."""
    result = expect_ok(run_ctrl("init", *(target or [db.uri]), name, *args))
    token = the_token(result.stdout)
    assert fields(result.stdout)["Hash"] == sha256_hex(token), str(result)
    return result, token


def roles_and_tokens(document):
    """What a state file holds, without its header (journalId...)."""
    return {"roles": sorted(document["roles"], key=lambda r: r["rolename"]),
            "tokens": sorted(document["tokens"], key=lambda t: t["name"])}


# ================================================================ init

def test_init_fills_an_empty_database_and_prints_the_token_once(postgres):
    result, token = init_database(postgres, "ops-admin")
    assert token.startswith("mqtk_") and len(token) == 56
    assert token not in result.raw_stderr

    stored = rows(postgres, "SELECT hash, name, rolename, token::text FROM mosquitto_tokens_tokens")
    assert len(stored) == 1
    hash_hex, name, rolename, document = stored[0]
    assert (hash_hex, name, rolename) == (sha256_hex(token), "ops-admin", "admin")
    document = json.loads(document)
    assert document["requestedBy"] == "init" and document["lastUsed"] is None
    assert token not in postgres.psql("SELECT string_agg(token::text, '') FROM mosquitto_tokens_tokens")

    roles = rows(postgres, "SELECT rolename, role::text FROM mosquitto_tokens_roles")
    assert [r[0] for r in roles] == ["admin"]
    assert json.loads(roles[0][1]) == {"rolename": "admin", "acls": ADMIN_ACLS}

    changes = rows(postgres, "SELECT seq, change->>'op', broker FROM mosquitto_tokens_changes ORDER BY seq")
    assert changes == [["1", "createRole", "mosquitto_ctrl"], ["2", "createToken", "mosquitto_ctrl"]]

    assert "shown only this once" in result.stdout
    assert f"plugin_opt_postgres_conninfo {postgres.uri}" in result.stdout
    assert "plugin_opt_state_file" in result.stdout


def test_init_refuses_a_database_that_is_not_empty(postgres):
    init_database(postgres)
    before = postgres.psql("SELECT seq, change::text FROM mosquitto_tokens_changes ORDER BY seq")
    result = run_ctrl("init", postgres.uri, "second-admin")
    expect_error(result, "not empty")
    assert "nothing was changed" in result.stderr, str(result)
    assert postgres.psql("SELECT seq, change::text FROM mosquitto_tokens_changes ORDER BY seq") == before
    assert store_counts(postgres) == (2, 1, 1)


def test_init_with_a_conninfo_option(postgres):
    _, token = init_database(postgres, "admin", "30d", target=["--postgres", postgres.conninfo])
    assert rows(postgres, "SELECT hash FROM mosquitto_tokens_tokens") == [[sha256_hex(token)]]
    assert store_counts(postgres) == (2, 1, 1)


def test_init_refuses_bad_arguments_before_connecting(postgres):
    expect_usage_error(run_ctrl("init", postgres.uri, "bad\tname"), "Error: the token name")
    expect_usage_error(run_ctrl("init", postgres.uri, "admin", "soon"), "Error: validity")
    expect_usage_error(run_ctrl("init", "--postgres"), "Usage: mosquitto_ctrl tokens init <postgres>")
    assert store_counts(postgres) == (0, 0, 0)


def test_init_with_a_stopped_server_fails_quickly(postgres):
    postgres.server.stop()
    try:
        result = run_ctrl("init", postgres.uri, "admin")
        expect_error(result, "Error: cannot connect to the database")
        assert result.seconds < 5, str(result)
    finally:
        postgres.server.start()
    assert store_counts(postgres) == (0, 0, 0)


def test_init_with_a_closed_port_fails_quickly():
    uri = f"postgresql://tokens@127.0.0.1:{closed_port()}/postgres"
    result = run_ctrl("init", uri, "admin")
    expect_error(result, "Error: cannot connect to the database")
    assert result.seconds < 5, str(result)


def test_init_does_not_repeat_a_password(postgres):
    result, _ = init_database(postgres, target=["--postgres", postgres.conninfo + " password=s3cret-pw"])
    assert "s3cret-pw" not in result.stdout + result.raw_stderr
    assert "holds a password" in result.stdout


# ================================================================ import and export

TOKENS = [
    state_token("sensor-1", "sensors", "2026-11-01T10:00:00Z", "2027-11-01T10:00:00Z", requested_by="admin"),
    state_token("sensor-2", "sensors", "2026-11-02T10:00:00Z", "2027-11-02T10:00:00Z", requested_by="admin",
                last_used="2026-11-20T08:30:00Z"),
    dict(state_token("bound", "sensors", "2026-11-03T10:00:00Z", "2027-11-03T10:00:00Z", requested_by="admin"),
         clientId="boiler-7"),
    dict(state_token("old", "sensors", "2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z", requested_by="admin"),
         expiringNotified=True, expiredNotified=True),
]
SENSORS = {"rolename": "sensors", "acls": [
    {"acltype": "publishClientSend", "topic": "sensors/%c/#", "priority": 5, "allow": True},
    {"acltype": "subscribeLiteral", "topic": "sensors/secret", "priority": 0, "allow": False},
]}


def state_with_tokens(tmp_path):
    """A state file made by `tokens init`, with a role and tokens added."""
    path = tmp_path / "tokens.json"
    made = init_state(path, "admin")
    document = read_json(path)
    write_state(path, roles=document["roles"] + [SENSORS], tokens=document["tokens"] + TOKENS)
    return path, made


def test_import_then_export_gives_the_same_roles_and_tokens(postgres, tmp_path):
    path, made = state_with_tokens(tmp_path)
    result = expect_ok(run_ctrl("import", path, postgres.uri))
    assert "Imported 2 roles and 5 tokens" in result.stdout, str(result)
    assert store_counts(postgres) == (7, 2, 5)
    ops = [r[0] for r in rows(postgres, "SELECT change->>'op' FROM mosquitto_tokens_changes ORDER BY seq")]
    assert ops == ["createRole"] * 2 + ["createToken"] * 5
    assert [sha256_hex(made.token)] == [r[0] for r in rows(
        postgres, "SELECT hash FROM mosquitto_tokens_tokens WHERE name = 'admin'")]

    exported = tmp_path / "exported.json"
    result = expect_ok(run_ctrl("export", postgres.uri, exported))
    assert "Exported 2 roles and 5 tokens" in result.stdout, str(result)
    assert stat.S_IMODE(os.stat(exported).st_mode) == 0o600
    assert roles_and_tokens(read_json(exported)) == roles_and_tokens(read_json(path))
    assert "exported.json.lock" not in os.listdir(tmp_path)


def test_import_and_export_with_the_conninfo_option(postgres, tmp_path):
    path, _ = state_with_tokens(tmp_path)
    expect_ok(run_ctrl("import", "--postgres", postgres.conninfo, path))
    exported = tmp_path / "exported.json"
    expect_ok(run_ctrl("export", "--postgres", postgres.conninfo, exported))
    assert roles_and_tokens(read_json(exported)) == roles_and_tokens(read_json(path))


def test_import_replays_the_journal(postgres, admin_factory):
    """persist_load replays the file's journal: a change a killed broker
    left only there is imported too."""
    admin = admin_factory()
    admin.role("late", ("subscribeLiteral", "late/topic", "allow"))
    admin.broker.kill()
    assert os.path.exists(admin.init.path + ".journal")
    result = expect_ok(run_ctrl("import", admin.init.path, postgres.uri))
    assert "Imported 2 roles and 1 tokens" in result.stdout, str(result)
    late = rows(postgres, "SELECT role::text FROM mosquitto_tokens_roles WHERE rolename = 'late'")
    assert json.loads(late[0][0])["acls"] == [
        {"acltype": "subscribeLiteral", "topic": "late/topic", "priority": 0, "allow": True}]


def test_import_drops_a_previous_secret_and_says_so(postgres, tmp_path):
    """A createToken change has no previous secret: a rotated token's old
    secret, still in its grace period, stops working at the import."""
    path, _ = state_with_tokens(tmp_path)
    document = read_json(path)
    rotated = dict(state_token("rotated", "sensors", "2026-11-04T10:00:00Z", "2027-11-04T10:00:00Z",
                               requested_by="admin"),
                   previousHash=sha256_hex("the old secret"), previousValidUntil="2099-01-01T00:00:00Z")
    write_state(path, roles=document["roles"], tokens=document["tokens"] + [rotated])
    result = expect_ok(run_ctrl("import", path, postgres.uri))
    assert "Not carried over: 1 rotated tokens' previous secrets" in result.stdout, str(result)
    stored = json.loads(postgres.psql("SELECT token::text FROM mosquitto_tokens_tokens WHERE name = 'rotated'"))
    assert "previousHash" not in stored and "previousValidUntil" not in stored
    assert {k: v for k, v in rotated.items() if not k.startswith("previous")} == stored


def test_import_of_an_empty_file_store(postgres, tmp_path):
    path = tmp_path / "empty.json"
    write_state(path)
    result = expect_ok(run_ctrl("import", path, postgres.uri))
    assert "Imported 0 roles and 0 tokens" in result.stdout and "stays empty" in result.stdout, str(result)
    assert store_counts(postgres) == (0, 0, 0)


def test_import_into_a_database_that_is_not_empty_refuses(postgres, tmp_path):
    init_database(postgres)
    path, _ = state_with_tokens(tmp_path)
    before = postgres.psql("SELECT seq, change::text FROM mosquitto_tokens_changes ORDER BY seq")
    result = run_ctrl("import", path, postgres.uri)
    expect_error(result, "not empty")
    assert postgres.psql("SELECT seq, change::text FROM mosquitto_tokens_changes ORDER BY seq") == before
    assert store_counts(postgres) == (2, 1, 1)


def test_import_of_a_missing_file_refuses(postgres, tmp_path):
    expect_error(run_ctrl("import", tmp_path / "none.json", postgres.uri), "Error: cannot read")
    assert store_counts(postgres) == (0, 0, 0)
    assert os.listdir(tmp_path) == []


def test_import_of_a_file_a_running_broker_holds_refuses(postgres, tmp_path):
    path, _ = state_with_tokens(tmp_path)
    broker = Broker(tmp_path / "broker", state_file=path)
    broker.start()
    try:
        result = run_ctrl("import", path, postgres.uri)
        expect_error(result, "already in use")
        assert "Stop the broker" in result.stderr, str(result)
    finally:
        broker.stop()
    assert store_counts(postgres) == (0, 0, 0)


def test_export_never_overwrites_a_file(postgres, tmp_path):
    init_database(postgres)
    target = tmp_path / "exists.json"
    target.write_bytes(b"someone's file\n")
    result = run_ctrl("export", postgres.uri, target)
    expect_error(result, "already exists")
    assert target.read_bytes() == b"someone's file\n"


def test_export_from_an_unreachable_database_leaves_no_file(tmp_path):
    target = tmp_path / "out.json"
    result = run_ctrl("export", f"postgresql://tokens@127.0.0.1:{closed_port()}/postgres", target)
    expect_error(result, "Error: cannot connect to the database")
    assert result.seconds < 5, str(result)
    assert os.listdir(tmp_path) == []


def test_usage_of_import_and_export(tmp_path):
    expect_usage_error(run_ctrl("import", tmp_path / "a.json"), "Usage: mosquitto_ctrl tokens import")
    expect_usage_error(run_ctrl("import", tmp_path / "a.json", "host=x"), "Usage: mosquitto_ctrl tokens import")
    expect_usage_error(run_ctrl("export", tmp_path / "a.json"), "Usage: mosquitto_ctrl tokens export")
    help_text = expect_ok(run_ctrl("help")).stdout
    for line in ("tokens import <state-file> <postgres>", "tokens export <postgres> <state-file>",
                 "tokens init <postgres> <admin-token-name> [validity]", "tokens init <state-file> <admin-token-name> [validity]"):
        assert line in help_text, help_text


# ================================================================ a broker on the database

def test_a_broker_on_the_database_accepts_the_admin_token(postgres, tmp_path):
    _, token = init_database(postgres, "admin")
    broker = TokenOnlyBroker(tmp_path / "broker", state_file=tmp_path / "cache.json",
                             extra_config=[f"plugin_opt_postgres_conninfo {postgres.conninfo}"])
    broker.start()
    try:
        result = expect_ok(run_ctrl("list", port=broker.port, username="admin", password=token))
        listed, footer = table(result.stdout)
        assert [(r["Name"], r["Role"], r["Status"]) for r in listed] == [("admin", "admin", "Valid")], str(result)
        assert listed[0]["Hash"] == sha256_hex(token)[:12]
    finally:
        broker.stop()
