"""
The PostgreSQL test harness itself (postgres_helpers.py, the postgres and
postgres_server fixtures): the backend's tests (issue 19) rely on a server
that answers, databases that are separate, data that outlives a stop and a
crash, and connection strings that libpq takes.
"""
import subprocess

import pytest

from postgres_helpers import PostgresError, clean_env


def test_server_answers(postgres):
    assert postgres.psql("SELECT 1") == "1\n"
    assert postgres.psql("SELECT current_user, current_database()") == f"tokens|{postgres.dbname}\n"


def test_rows_come_back_as_lines(postgres):
    out = postgres.psql("CREATE TABLE t (a int, b text);"
                        "INSERT INTO t VALUES (1, 'x'), (2, 'y');"
                        "SELECT a, b FROM t ORDER BY a")
    assert out.splitlines() == ["1|x", "2|y"]


def test_errors_raise_with_psql_message(postgres):
    with pytest.raises(PostgresError, match="no_such_table"):
        postgres.psql("SELECT * FROM no_such_table")
    # ON_ERROR_STOP: nothing after the error runs.
    with pytest.raises(PostgresError):
        postgres.psql("CREATE TABLE before (a int); SELECT 1/0; CREATE TABLE after (a int)")
    assert postgres.psql("SELECT to_regclass('after') IS NULL") == "t\n"


def test_fresh_databases_are_separate(postgres):
    server = postgres.server
    other = server.create_database()
    try:
        assert other != postgres.dbname
        postgres.psql("CREATE TABLE only_here (a int); INSERT INTO only_here VALUES (7)")
        assert server.psql("SELECT to_regclass('only_here') IS NULL", other) == "t\n"
        assert postgres.psql("SELECT a FROM only_here") == "7\n"
    finally:
        server.drop_database(other)
    assert server.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{other}'") == "0\n"


def test_database_of_the_previous_test_is_gone(postgres):
    names = postgres.server.psql("SELECT datname FROM pg_database").split()
    assert [n for n in names if n.startswith("test_")] == [postgres.dbname]


def test_data_survives_stop_and_start(postgres):
    server = postgres.server
    port = server.port
    postgres.psql("CREATE TABLE kept (a int); INSERT INTO kept VALUES (1), (2)")
    server.stop()
    assert not server.is_running()
    with pytest.raises(PostgresError):
        postgres.psql("SELECT 1")
    server.start()
    assert server.is_running() and server.port == port
    assert postgres.psql("SELECT sum(a) FROM kept") == "3\n"


def test_committed_rows_survive_kill(postgres):
    server = postgres.server
    postgres.psql("CREATE TABLE crash (a int); INSERT INTO crash SELECT generate_series(1, 1000)")
    server.kill()
    assert not server.is_running()
    with pytest.raises(PostgresError):
        postgres.psql("SELECT 1")
    server.start()
    assert postgres.psql("SELECT count(*) FROM crash") == "1000\n"
    assert "database system was interrupted" in server.log_tail(20000) \
        or "not properly shut down" in server.log_tail(20000)


def test_left_killed_for_the_fixture(postgres):
    """The fixture's teardown starts it again: the next test checks."""
    postgres.server.kill()


def test_fixture_restarted_the_server(postgres):
    assert postgres.server.is_running()
    assert postgres.psql("SELECT 1") == "1\n"


@pytest.mark.parametrize("form", ["conninfo", "uri"])
def test_connection_strings_work_with_psql(postgres, form):
    postgres.psql("CREATE TABLE marker (a text); INSERT INTO marker VALUES ('here')")
    target = getattr(postgres, form)
    done = subprocess.run(["psql", "-X", "-At", "-d", target, "-c", "SELECT a FROM marker"],
                          capture_output=True, text=True, env=clean_env(), timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "here\n"
    assert postgres.server.psql("SELECT a FROM marker", conninfo=target) == "here\n"


def test_unix_socket_answers(postgres):
    server = postgres.server
    out = server.psql("SELECT 1", conninfo=f"host={server.socket_dir} port={server.port} "
                                           f"dbname={postgres.dbname} user=tokens")
    assert out == "1\n"


def test_max_connections(postgres):
    assert int(postgres.psql("SHOW max_connections")) >= 100
