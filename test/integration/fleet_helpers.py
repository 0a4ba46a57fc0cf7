"""
Brokers of one fleet: each with the plugin, its own cache (state file)
and the same PostgreSQL database (the `postgres` fixture).

    member(broker_factory, postgres, name)   a started broker of the fleet
    command(client, name, **fields)           one command's whole response
    changes(postgres)                         the change log: [(seq, op, broker)]
"""
import json
import time

from access_helpers import Device, acl, make_role
from tokens_helpers import TIMEOUT

PROPAGATION = 1.0   # seconds in which every member must apply a change (SPEC section 9)


def member_config(postgres, extra=()):
    return [f"plugin_opt_postgres_conninfo {postgres.conninfo}", *extra]


def member(broker_factory, postgres, name, start=True, extra_config=(), **kwargs):
    return broker_factory(start=start, name=name, extra_config=member_config(postgres, extra_config), **kwargs)


def command(client, command_name, **fields):
    """The response of one command, error or not."""
    return client.request([dict(command=command_name, **fields)])[0]


def changes(postgres):
    rows = postgres.psql("SELECT seq, change->>'op', broker FROM mosquitto_tokens_changes ORDER BY seq")
    return [(int(seq), op, broker) for seq, op, broker in (line.split("|") for line in rows.splitlines() if line)]


def token_rows(postgres):
    """{name: token object} as the database holds them."""
    rows = postgres.psql("SELECT token::text FROM mosquitto_tokens_tokens")
    return {token["name"]: token for token in (json.loads(line) for line in rows.splitlines() if line)}


def dev_role(admin):
    make_role(admin, "dev", [acl("publishClientSend", "d/#"), acl("subscribePattern", "d/#")])


def logs_in(broker, secret, client_id=None):
    """A Device logged in on broker with secret, or None when refused."""
    try:
        return Device(broker.port, username="dev", password=secret,
                      client_id=client_id or f"dev-{time.monotonic_ns()}")
    except AssertionError:
        return None


def wait_for(predicate, timeout=TIMEOUT, interval=0.02):
    """The first true value of predicate(), or the last false one at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
