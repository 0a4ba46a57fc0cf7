#!/usr/bin/python3
"""make bench, section 7: a fleet of two brokers on one PostgreSQL store
(issue 19, SPEC section 9), against a real PostgreSQL server
(test/integration/postgres_helpers.py, used here as a library).

Brokers A and B have the plugin in fleet mode on one database; an
anonymous client sends control commands (the acl_file lets it).

1. Propagation: 1,100 tokens are created on A, and one MQTT connection per
   token is held open on B. The tokens are then revoked on A one request
   at a time; for each, the time from the revoke's reply on A to the
   moment B's connection of that token ends, as its client sees it.
   Revokes are spaced by random gaps so that they fall at every phase of
   B's tick (about 10 a second): 1,000 in a stream (each after the last
   reply, a few on their way at once) and 100 isolated (each after the
   last close). B sees the NOTIFY at a tick and sends its fetch, reads the
   answer at the next tick, applies it and closes the connection there:
   from one to two ticks for an isolated revoke, up to three when a fetch
   was already on its way. Target: at most 1 s (SPEC section 9). The
   revoke's own round trip on A is shown too: its reply now waits for a
   database transaction; beside it, the same command on a broker with the
   file backend alone.
2. Token logins: CONNECT/CONNACK/DISCONNECT cycles per second (build/
   login_storm, as section 1) on B and on a broker with the file backend
   alone, the same store size (1,101 tokens), interleaved in rounds.
   Logins never wait on the database (SPEC section 9), so the two should
   be alike.

All the clients here run from one thread on one event loop (bench/load.py's),
so that the reply on A and the disconnect on B are stamped by the same clock
as they arrive. Runnable alone: bench/fleet.py [--quick].
"""
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "test", "integration"))
from load import (CONTROL_TOPIC, RESPONSE_TOPIC, EventLoop, Held, LoadError, connect_and_wait,  # noqa: E402
                  new_client, percentile, raise_file_limit, subscribe_and_wait)
from postgres_helpers import PostgresServer, missing_programs  # noqa: E402
from run import BUILD, PLUGIN, QUICK, Broker, tokens_broker  # noqa: E402

TOKENS = 200 if QUICK else 1000     # revoked in a stream
ISOLATED = 20 if QUICK else 100     # revoked each after the last close
STORE = TOKENS + ISOLATED + 1       # and the login token, on each broker
BATCH = 100                  # commands per request: the plugin's default limit
ROLE = "fleet-devices"
FILE_REVOKES = 200           # revokes timed on the file-backend broker, for comparison
LOGIN_ROUNDS = 1 if QUICK else 5
LOGIN_SECONDS = 1
LOGIN_THREADS = 2            # as section 1: on 2 cores, more only take the broker's CPU
REPLY_TIMEOUT = 10.0
CLOSE_TIMEOUT = 3.0          # seconds to wait for B to close a revoked token's connection
STREAM_GAP = 0.05            # at most this many seconds between a revoke's reply and the next revoke
ISOLATED_GAP = 0.1           # the same after a close: one tick
SEED = 19
PROPAGATION_TARGET = 1.0
KEEPALIVE = 600              # longer than the run: the held clients never need to ping
FUTURE = "2099-01-01T00:00:00Z"


class Control:
    """A client of the control topic on the event loop; anonymous unless
    given a token. Times each request from its publish to its reply."""

    def __init__(self, loop, port, name, username=None, token=None):
        self.loop = loop
        self.reply = None
        self.replied_at = None
        self.client = new_client(loop, name, username, token)
        self.client.on_message = self._message
        connect_and_wait(loop, self.client, port)
        subscribe_and_wait(loop, self.client, RESPONSE_TOPIC)

    def _message(self, client, userdata, message):
        self.replied_at = time.monotonic()
        self.reply = json.loads(message.payload)["responses"]

    def request(self, commands):
        """Returns (responses, seconds); raises LoadError if any failed."""
        self.reply = None
        started = time.monotonic()
        self.client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}))
        self.loop.run_until(lambda: self.reply is not None, REPLY_TIMEOUT, f"the reply to {commands[0]['command']}")
        failed = [r for r in self.reply if "error" in r]
        if failed:
            raise LoadError(f"{failed[0]['command']} failed: {failed[0]['error']}")
        return self.reply, self.replied_at - started

    def total_tokens(self):
        responses, _ = self.request([{"command": "listTokens", "count": 1}])
        return responses[0]["data"]["totalCount"]


# ---------------------------------------------------------------- the brokers

def member(folder, name, conninfo):
    """A broker of the fleet: its own cache (state file), the shared database,
    and an acl_file that lets anonymous clients use the control topic."""
    acl_file = os.path.join(folder, name + ".acl")
    with open(acl_file, "w") as f:
        f.write("topic readwrite #\ntopic readwrite $CONTROL/#\n")
    return Broker(folder, [
        "allow_anonymous true",
        f"acl_file {acl_file}",
        f"plugin {PLUGIN}",
        f"plugin_opt_state_file {os.path.join(folder, name + '.json')}",
        f"plugin_opt_postgres_conninfo {conninfo}",
    ], name)


def start_all(stack, folder):
    """PostgreSQL, A and B on one database, and the file-backend broker;
    each stopped by `stack` (brokers first, the server last)."""
    server = PostgresServer()
    stack.callback(server.cleanup)
    server.start()
    conninfo = server.conninfo(server.create_database("fleet_bench"))
    brokers = []
    for name in ("fleet-a", "fleet-b"):
        broker = member(folder, name, conninfo).start()
        stack.callback(broker.stop)
        brokers.append(broker)
    file_broker, file_admin = tokens_broker(folder, STORE - 1, "fleet-file")
    file_broker.start()
    stack.callback(file_broker.stop)
    return brokers, file_broker, file_admin


# ---------------------------------------------------------------- tokens

def create_tokens(control, names):
    """{name: secret}, created BATCH at a time."""
    secrets = {}
    for start in range(0, len(names), BATCH):
        commands = [{"command": "createToken", "name": name, "role": ROLE, "validUntil": FUTURE}
                    for name in names[start:start + BATCH]]
        responses, _ = control.request(commands)
        for command, response in zip(commands, responses):
            secrets[command["name"]] = response["data"]["token"]
    return secrets


def wait_for_tokens(loop, control, count):
    """Until the member behind `control` holds `count` tokens."""
    deadline = time.monotonic() + REPLY_TIMEOUT
    while control.total_tokens() != count:
        if time.monotonic() > deadline:
            raise LoadError(f"the other member did not reach {count} tokens")
        loop.run_for(0.05)


def hold(loop, port, secrets):
    """One connection per token, all CONNACKed; a Held record each."""
    held = []

    def on_connect(client, record, flags, rc):
        record.connack = rc

    def on_disconnect(client, record, rc):
        record.closed_at = time.monotonic()

    for name, secret in secrets.items():
        record = Held(name, "held-" + name)
        record.client = new_client(loop, record.client_id, name, secret)
        record.client.user_data_set(record)
        record.client.on_connect = on_connect
        record.client.on_disconnect = on_disconnect
        record.client.connect("127.0.0.1", port, KEEPALIVE)
        held.append(record)
        # A window of CONNECTs under the broker's listen backlog (100).
        loop.run_until(lambda: sum(r.connack is None for r in held) < 50, REPLY_TIMEOUT, "CONNACKs")
    loop.run_until(lambda: all(r.connack is not None for r in held), REPLY_TIMEOUT, "the last CONNACKs")
    refused = [r for r in held if r.connack != 0]
    if refused:
        raise LoadError(f"{len(refused)} token connections refused on B")
    return held


# ---------------------------------------------------------------- measurements

def run_for(loop, seconds):
    """loop.run_for to the millisecond: its steps wait up to 50 ms, which
    would round every random gap up to a multiple of 50 ms (and put the
    revokes at two phases of B's tick only)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        loop.step(min(left, 0.05))


def revoke_each(loop, control, held, rng, gap, isolated):
    """Revokes each held token on A, one request at a time, each after the
    last reply (or, `isolated`, after the last close) and a random gap of
    up to `gap` s, so that revokes fall at every phase of B's tick: back to
    back after each close, each would come just after the tick that closed
    the last one, the worst phase. Not isolated, a few are on their way at
    once, and a change that comes while B waits for a fetch's answer waits
    for the next fetch.

    Returns the round trips on A; for each token the seconds from its
    revoke's reply to the end of its connection on B (None when B had not
    closed it CLOSE_TIMEOUT after the last revoke); and how many ended
    before their revoke was sent."""
    round_trips = []
    for record in held:
        record.sent_at = time.monotonic()
        _, seconds = control.request([{"command": "revokeToken", "name": record.token_name}])
        round_trips.append(seconds)
        record.replied_at = control.replied_at
        if isolated:
            wait_closed(loop, [record])
        run_for(loop, rng.uniform(0, gap))
    wait_closed(loop, held)
    early = sum(r.closed_at is not None and r.closed_at < r.sent_at for r in held)
    propagation = [None if r.closed_at is None else r.closed_at - r.replied_at for r in held]
    return round_trips, propagation, early


def wait_closed(loop, held):
    """Until every one of `held` is closed, or CLOSE_TIMEOUT; the caller
    counts those still open."""
    try:
        loop.run_until(lambda: all(r.closed_at is not None for r in held), CLOSE_TIMEOUT, "the closes on B")
    except LoadError:
        pass


def file_revokes(loop, file_broker, admin):
    """revokeToken round trips on the file-backend broker (make_state's
    device tokens), for comparison with A's."""
    control = Control(loop, file_broker.port, "fleet-file-admin", "admin", admin)
    count = min(FILE_REVOKES, TOKENS)
    seconds = [control.request([{"command": "revokeToken", "name": f"device-{i:07d}"}])[1] for i in range(count)]
    control.client.disconnect()
    return seconds


def login_rates(b, b_token, file_broker, file_admin):
    """logins/s on each broker, LOGIN_ROUNDS rounds, the order alternating."""
    kinds = [("postgres", b.port, "storm", b_token), ("file", file_broker.port, "admin", file_admin)]
    rates = {kind: [] for kind, *_ in kinds}
    for round_number in range(LOGIN_ROUNDS):
        for kind, port, username, token in (kinds[::-1] if round_number % 2 else kinds):
            out = subprocess.run([os.path.join(BUILD, "login_storm"), "127.0.0.1", str(port), str(LOGIN_SECONDS),
                                  str(LOGIN_THREADS), username, token], check=True, capture_output=True,
                                 text=True).stdout.split()
            if int(out[1]):
                raise LoadError(f"{kind}: {out[1]} logins refused")
            rates[kind].append(float(out[0]))
    return rates


# ---------------------------------------------------------------- the section

def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def rate(held):
    """Revokes sent per second."""
    return (len(held) - 1) / (held[-1].sent_at - held[0].sent_at)


def print_propagation(label, propagation, early):
    closed = [p for p in propagation if p is not None]
    print(f"   {label}, {len(propagation)} tokens:")
    if closed:
        print(f"     median {ms(statistics.median(closed))}, p99 {ms(percentile(closed, 0.99))}, "
              f"max {ms(max(closed))}; over {PROPAGATION_TARGET:.0f} s: "
              f"{sum(p > PROPAGATION_TARGET for p in closed)}")
    missed = len(propagation) - len(closed)
    if missed or early:
        print(f"     NOT CLOSED within {CLOSE_TIMEOUT:.0f} s: {missed}; closed before their revoke: {early}")


def print_round_trips(label, seconds):
    print(f"   revokeToken round trip, {label}: median {ms(statistics.median(seconds))}, "
          f"p99 {ms(percentile(seconds, 0.99))}")


def print_logins(rates):
    ratio = statistics.median(p / f for p, f in zip(rates["postgres"], rates["file"]))
    print(f"   token logins ({LOGIN_THREADS} client threads, {LOGIN_ROUNDS} rounds x {LOGIN_SECONDS} s, "
          f"{STORE} tokens in each store):")
    for kind in ("postgres", "file"):
        print(f"     {kind:<9} {statistics.median(rates[kind]):>7.0f} logins/s  "
              f"rounds {' '.join(f'{r:.0f}' for r in rates[kind])}")
    print(f"     postgres / file = {ratio:.3f} (median of per-round ratios)")


def fleet(folder):
    print(f"\n7. A fleet of two brokers on PostgreSQL (target: a revoke closes connections fleet-wide "
          f"within {PROPAGATION_TARGET:.0f} s):")
    missing = missing_programs()
    if missing:   # make deps installs them; a bench run elsewhere goes on without this section
        print("   skipped, missing: " + "; ".join(missing))
        return
    raise_file_limit()
    loop = EventLoop()
    rng = random.Random(SEED)
    with contextlib.ExitStack() as stack:
        (a, b), file_broker, file_admin = start_all(stack, folder)
        control_a = Control(loop, a.port, "fleet-admin-a")
        control_b = Control(loop, b.port, "fleet-admin-b")
        control_a.request([{"command": "createRole", "rolename": ROLE, "acls": []}])
        secrets = create_tokens(control_a, [f"fleet-{i:04d}" for i in range(STORE - 1)] + ["storm"])
        wait_for_tokens(loop, control_b, STORE)
        b_token = secrets.pop("storm")
        rates = login_rates(b, b_token, file_broker, file_admin)
        held = hold(loop, b.port, secrets)
        streamed = revoke_each(loop, control_a, held[:TOKENS], rng, STREAM_GAP, False)
        isolated = revoke_each(loop, control_a, held[TOKENS:], rng, ISOLATED_GAP, True)
        file_round_trips = file_revokes(loop, file_broker, file_admin)
        for control in (control_a, control_b):
            control.client.disconnect()
    print_propagation(f"revoke on A -> B closes the connection, one revoke at a time ({rate(held[:TOKENS]):.0f}/s)",
                      *streamed[1:])
    print_propagation("the same, each revoke after the last close (none on its way)", *isolated[1:])
    print_round_trips("on A (a database transaction)", streamed[0] + isolated[0])
    print_round_trips(f"file backend alone ({len(file_round_trips)} revokes)", file_round_trips)
    print_logins(rates)


def main():
    for binary in ("login_storm", "make_state", "mosquitto_tokens.so"):
        if not os.path.exists(os.path.join(BUILD, binary)):
            sys.exit(f"build/{binary} is missing: run make all build/{binary}")
    with tempfile.TemporaryDirectory(prefix="tokens-bench-fleet-") as folder:
        fleet(folder)


if __name__ == "__main__":
    main()
