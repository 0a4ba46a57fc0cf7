"""
Fixtures for the integration tests: real brokers with the plugin loaded and
control clients. See tokens_helpers.py for the classes.

    broker          a running broker, fresh state file, for one test
    broker_factory  make_broker(start=True, directory=None, **Broker kwargs)
    make_client     make_client(broker=None, **ControlClient kwargs), closed after the test
    client          an MQTT 5 control client to `broker`
    any_client      parametrized: an MQTT 5 and an MQTT 3.1.1 control client
    postgres_server one PostgreSQL server for the session (postgres_helpers.py)
    postgres        a fresh database of it for one test, dropped after it

Brokers are stopped after each test; a broker that died on its own during a
test (a crash) makes the test fail with its log. The PostgreSQL server is
started at its first use and stopped at the end of the session.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from tokens_helpers import (  # noqa: E402
    DEBIAN, MOSQUITTO, MOSQUITTO_PREFIX, PLUGIN, V5, V311, Broker, broker_version_text,
)


def pytest_sessionstart(session):
    missing = [path for path in (PLUGIN, MOSQUITTO) if not os.path.exists(path)]
    if missing:
        build = "" if DEBIAN else f", and `make vendor-brokers` for MOSQUITTO_PREFIX={MOSQUITTO_PREFIX}"
        raise pytest.UsageError(f"missing {', '.join(missing)} (run `make` first{build})")


def pytest_report_header(config):
    """Which release the run is against (MOSQUITTO_PREFIX), and which plugin."""
    try:
        version = broker_version_text()
    except Exception as error:  # a missing broker: pytest_sessionstart says so
        version = f"(unknown: {error})"
    return [f"mosquitto {version}: {MOSQUITTO}" + ("" if DEBIAN else " (MOSQUITTO_PREFIX)"), f"plugin: {PLUGIN}"]


class _Brokers:
    def __init__(self, base):
        self.base = base
        self.brokers = []

    def make(self, start=True, directory=None, **kwargs):
        if directory is None:
            directory = os.path.join(str(self.base), f"broker{len(self.brokers)}")
        broker = Broker(directory, **kwargs)
        self.brokers.append(broker)
        if start:
            broker.start()
        return broker

    def finish(self):
        crashed = []
        for broker in self.brokers:
            if broker.process is not None and broker.process.poll() is not None:
                crashed.append(f"{broker.name} on port {broker.port} exited by itself with "
                               f"status {broker.process.returncode}:\n{broker.log[-4000:]}")
                broker._reaped(broker.process.returncode)
            broker.stop()
        if crashed:
            pytest.fail("\n".join(crashed), pytrace=False)


class _Clients:
    def __init__(self, default_broker=None):
        self.default_broker = default_broker
        self.clients = []

    def make(self, broker=None, **kwargs):
        broker = broker or self.default_broker()
        client = broker.client(**kwargs)
        self.clients.append(client)
        return client

    def finish(self):
        for client in self.clients:
            try:
                client.close()
            except Exception:
                pass


@pytest.fixture
def broker_factory(tmp_path):
    brokers = _Brokers(tmp_path)
    yield brokers.make
    brokers.finish()


@pytest.fixture
def broker(broker_factory):
    return broker_factory()


@pytest.fixture
def make_client(request):
    clients = _Clients(lambda: request.getfixturevalue("broker"))
    yield clients.make
    clients.finish()


@pytest.fixture
def client(make_client):
    return make_client(protocol=V5)


@pytest.fixture(params=[V5, V311], ids=["mqtt5", "mqtt311"])
def protocol(request):
    return request.param


@pytest.fixture
def any_client(make_client, protocol):
    return make_client(protocol=protocol)


@pytest.fixture(scope="module")
def module_broker(tmp_path_factory):
    """One broker for a whole module, for tests that change nothing (or
    check that they changed nothing)."""
    brokers = _Brokers(tmp_path_factory.mktemp("module"))
    yield brokers.make()
    brokers.finish()


@pytest.fixture
def admin(broker, make_client):
    """An anonymous control client on the test broker (its acl_file lets it
    use the control topic). Files that need another admin define their own."""
    return make_client(broker=broker)


@pytest.fixture
def devices():
    """devices(...): token clients (access_helpers.device), closed after the test."""
    from access_helpers import device
    made = []

    def make(*args, **kwargs):
        made.append(device(*args, **kwargs))
        return made[-1]

    yield make
    for d in made:
        d.close()


@pytest.fixture
def role(admin):
    """A role "dev" that may publish and subscribe under d/."""
    from access_helpers import acl, make_role
    make_role(admin, "dev", [acl("publishClientSend", "d/#"), acl("subscribePattern", "d/#")])
    return "dev"


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the whole session: initdb and a start cost
    about a second, a database per test much less. Started at the first
    test that needs it; stopped (and its folder removed) at the end of the
    session whatever the tests did, and at exit should the session end
    without its teardown. Skips where the programs are missing."""
    import atexit
    from postgres_helpers import PostgresServer, missing_programs
    missing = missing_programs()
    if missing:
        pytest.skip(f"no PostgreSQL server for these tests: missing {'; '.join(missing)} "
                    "(`make deps` installs postgresql)")
    server = PostgresServer()
    atexit.register(server.cleanup)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
        atexit.unregister(server.cleanup)


@pytest.fixture
def postgres(postgres_server):
    """A fresh database on the session's server (a PostgresDatabase: .server,
    .dbname, .conninfo, .uri, .psql(sql)), dropped after the test. A server
    that an earlier test, or this one, left stopped or killed is started
    again (same port and data): the next test finds it running."""
    from postgres_helpers import PostgresDatabase
    if not postgres_server.is_running():
        postgres_server.start()
    database = PostgresDatabase(postgres_server, postgres_server.create_database())
    yield database
    if not postgres_server.is_running():
        postgres_server.start()
    postgres_server.drop_database(database.dbname)


@pytest.fixture
def two_members(broker_factory, postgres):
    """Two brokers of one fleet on the test's database (fleet_helpers.py),
    a and b, each with a control client, and the role dev: (a, b,
    admin_a, admin_b)."""
    from fleet_helpers import dev_role, member
    a = member(broker_factory, postgres, "a")
    b = member(broker_factory, postgres, "b")
    admin_a, admin_b = a.client(), b.client()
    dev_role(admin_a)
    yield a, b, admin_a, admin_b
    admin_a.close()
    admin_b.close()
