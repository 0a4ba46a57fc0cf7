#!/usr/bin/python3
"""make load: many token connections held open while tokens come and go.

One broker with the plugin. After a warm-up (the base tokens created over
the control topic), the baseline memory is read; then the cycle below runs
twice, and the broker's memory is read again at the end of each cycle:

1. Hold: HELD_TOKENS tokens are created and CONNECTIONS MQTT connections
   opened with them, CONNECTIONS_PER_TOKEN per token, all held open.
2. Churn: CREATES new tokens are created and REVOKES of the held tokens
   revoked, interleaved, one request at a time over the control topic; each
   request's round trip is timed and every request must get its reply.
3. Check: every connection of a revoked token is closed by the broker
   within CLOSE_WAIT seconds, no other connection is closed (after a
   further QUIET seconds), and every remaining connection can still
   publish (an observer receives each message).
4. Back: the remaining connections disconnect and every token the cycle
   created is revoked, so the store is back to its size at the baseline.

Memory is read three ways. The heap in use is what glibc has handed out
to the broker process and not had back (mallinfo2, reported by the
LD_PRELOAD shim build/heap_probe.so): it sees every allocation, the
plugin's, cJSON's and OpenSSL's included. The same shim counts the bytes
in blocks under 4 KiB and the number of blocks of 4 KiB or more. The
checks, at the end of each cycle: the bytes in small blocks within
SMALL_TOLERANCE_BYTES of the baseline, and the last cycle within
SMALL_REPEAT_TOLERANCE_BYTES of the one before (a leak of records); no
more large blocks than at the end of cycle 1, give or take
LARGE_BLOCKS_TOLERANCE (a leak of buffers); the whole heap in use within
IN_USE_TOLERANCE_BYTES of the baseline (tables and queues at their
peak). The resident set (VmRSS) and mosquitto's own heap counter
($SYS/broker/heap/current, which does not see the plugin's allocations)
are shown too; glibc keeps freed memory for reuse, so for RSS the check
is only that the last cycle ends no more than RSS_TOLERANCE_KIB above
the first, and the heap counter must end the last cycle no more than
HEAP_DROP_TOLERANCE_BYTES below the first nor HEAP_GROWTH_TOLERANCE_BYTES
above it.

The connections are paho-mqtt clients driven from this one thread through
their external event loop interface (socket callbacks, loop_read,
loop_write, loop_misc) and a selector.

Exits with status 1 if a check fails.
"""
import json
import os
import resource
import selectors
import statistics
import sys
import tempfile
import time

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import BUILD, PLUGIN, Broker, init_tokens  # noqa: E402

HEAP_PROBE = os.path.join(BUILD, "heap_probe.so")

CONNECTIONS = 5000
CONNECTIONS_PER_TOKEN = 5
HELD_TOKENS = CONNECTIONS // CONNECTIONS_PER_TOKEN
CREATES = 1000
REVOKES = 500
BASE_TOKENS = 1000
CYCLES = 3

CLOSE_WAIT = 10.0        # seconds for the broker to close a revoked token's connections
QUIET = 3.0              # seconds after that in which no other connection may close
REPLY_TIMEOUT = 10.0     # seconds for a control reply
CONNECT_WINDOW = 100     # CONNECTs awaiting their CONNACK at once (the broker's listen backlog is 100)
PUBLISH_WINDOW = 100     # load messages on their way to the observer at once
KEEPALIVE = 60
RSS_TOLERANCE_KIB = 512
HEAP_DROP_TOLERANCE_BYTES = 16 * 1024
# mosquitto's client tables are uthash tables too (see below): one of them
# doubled from 32 to 64 KiB at the end of cycle 7 of a run of 7.
HEAP_GROWTH_TOLERANCE_BYTES = 80 * 1024
# The heap in use does not come back to the byte: tables and queues keep
# the size their peak gave them, and reach it late. Measured by call stack
# (a scratch malloc-tracking shim, 2026-12-02), between the baseline and
# the end of cycle 7 of a run of 7, the heap grew by +349 KB, all of it in
# 9 large blocks that were reallocated bigger, never more blocks, and
# +5 KB in small blocks (index branches, bookkeeping) by the end of cycle
# 1, then +0.4 KB over cycles 2 to 7:
# - the lastUsed queue (32 bytes per token logged in since the last save,
#   every 60 s, so 4 to 6 cycles of 1,000 new tokens each) doubles when
#   more tokens than ever log in between two saves: 2 KB at the baseline,
#   32 KB after cycle 1, 64 KB after 2, 128 KB after 3, and 256 KB when
#   more than 4,096 log in within one save interval (+131 KB at cycle 5
#   of another run);
# - uthash bucket arrays (16 bytes a bucket): the plugin's sessions by
#   client (5,002 sessions; 32 KB after cycle 1, 64 KB after cycle 4) and
#   tokens by hash (16 KB), mosquitto's (two of 32 KB after cycle 1, one
#   of them 64 KB after cycle 7, the rise its own counter shows). uthash
#   doubles a table when one bucket's chain gets too long, which with the
#   same peak happens at random, less and less often: any cycle may
#   still take one step of 32 or 64 KB;
# - the expiry heaps, 8 bytes a token: 32 KB and 8 KB.
# So the whole heap in use is only held to the peak those make, with the
# queue at 256 KB and one more table doubling (about 540 KB), and leaks
# are looked for by block: a leak of one 32-byte block per createToken
# (2,000 a cycle, 40 usable bytes each: 80,000 bytes a cycle) fails both
# small-block checks from the first cycles on. An array that grows past
# 4 KiB becomes a large block (one did in cycle 2 of a run: -2,056 bytes
# in small blocks, one large block more), hence the large-block
# tolerance; a leak of one buffer of 4 KiB or more per cycle fails that
# check from cycle 4 on, two per cycle by cycle 3.
IN_USE_TOLERANCE_BYTES = 640 * 1024
SMALL_TOLERANCE_BYTES = 32 * 1024
SMALL_REPEAT_TOLERANCE_BYTES = 16 * 1024
LARGE_BLOCKS_TOLERANCE = 2
PROBE_WAIT = 3.0         # seconds for the heap probe to report twice (it reports every 0.1 s)

CONTROL_TOPIC = "$CONTROL/tokens/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
OBSERVED = ("$SYS/broker/heap/current", "$SYS/broker/clients/connected",
            "$SYS/broker/tokens/connections", "$SYS/broker/tokens/total")
# Besides the base tokens, the store always holds the admin and observer tokens.
STANDING_TOKENS = BASE_TOKENS + 2


class LoadError(Exception):
    """The run could not go on (a reply or a connection that never came)."""


def raise_file_limit():
    """Each held connection is a socket here and one in the broker, which
    inherits this limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = CONNECTIONS + 200
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:  # root may raise the hard limit itself
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return
        except (ValueError, OSError):
            sys.exit(f"the open-files hard limit is {hard}; this load needs {needed} (raise it, e.g. ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------- event loop

class EventLoop:
    """Drives any number of paho clients from this thread."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.clients = []
        self.next_misc = 0.0

    def attach(self, client):
        client.on_socket_open = self._opened
        client.on_socket_close = self._closed
        client.on_socket_register_write = self._wants_write
        client.on_socket_unregister_write = self._written
        self.clients.append(client)
        return client

    def _opened(self, client, userdata, sock):
        self.selector.register(sock, selectors.EVENT_READ, client)

    def _closed(self, client, userdata, sock):
        self.selector.unregister(sock)

    def _wants_write(self, client, userdata, sock):
        self.selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def _written(self, client, userdata, sock):
        self.selector.modify(sock, selectors.EVENT_READ, client)

    def step(self, timeout=0.05):
        for key, events in self.selector.select(timeout):
            client = key.data
            if events & selectors.EVENT_READ:
                client.loop_read()
            if events & selectors.EVENT_WRITE and client.socket() is not None:
                client.loop_write()
        now = time.monotonic()
        if now >= self.next_misc:
            for client in self.clients:
                client.loop_misc()
            self.next_misc = now + 1.0

    def run_until(self, done, timeout, what):
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise LoadError(f"timed out after {timeout:.0f} s waiting for {what}")
            self.step()

    def run_for(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.step()


# ---------------------------------------------------------------- clients

def new_client(loop, client_id, username, token):
    client = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv311)
    client.username_pw_set(username, token)
    return loop.attach(client)


class Admin:
    """Sends control requests one at a time and times each round trip."""

    def __init__(self, loop, port, token):
        self.loop = loop
        self.replies = {}
        self.sequence = 0
        self.client = new_client(loop, "load-admin", "admin", token)
        self.client.on_message = self._message
        connect_and_wait(loop, self.client, port)
        subscribe_and_wait(loop, self.client, RESPONSE_TOPIC)

    def _message(self, client, userdata, message):
        for response in json.loads(message.payload)["responses"]:
            self.replies[response.get("correlationData")] = response

    def request(self, command):
        """Returns (data, seconds); raises LoadError on an error reply."""
        self.sequence += 1
        key = str(self.sequence)
        payload = json.dumps({"commands": [dict(command, correlationData=key)]})
        started = time.perf_counter()
        self.client.publish(CONTROL_TOPIC, payload)
        self.loop.run_until(lambda: key in self.replies, REPLY_TIMEOUT, f"the reply to {command['command']}")
        seconds = time.perf_counter() - started
        response = self.replies.pop(key)
        if "error" in response:
            raise LoadError(f"{command['command']} failed: {response['error']}")
        return response.get("data"), seconds

    def create_token(self, name, role):
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400))
        data, seconds = self.request({"command": "createToken", "name": name, "role": role,
                                      "validUntil": expiry})
        return data["token"], seconds

    def revoke_token(self, name):
        data, seconds = self.request({"command": "revokeToken", "name": name})
        return data["disconnected"], seconds


class Observer:
    """Follows the broker's $SYS figures and counts the load's publishes."""

    def __init__(self, loop, port, token):
        self.loop = loop
        self.values = {}          # topic -> (monotonic time received, value)
        self.received = set()     # client ids whose load/ message arrived
        self.client = new_client(loop, "load-observer", "observer", token)
        self.client.on_message = self._message
        connect_and_wait(loop, self.client, port)
        for topic in OBSERVED + ("load/#",):
            subscribe_and_wait(loop, self.client, topic)

    def _message(self, client, userdata, message):
        if message.topic.startswith("load/"):
            self.received.add(message.topic[len("load/"):])
        else:
            self.values[message.topic] = (time.monotonic(), signed(int(message.payload)))

    def wait_for(self, topic, expected, timeout=15.0):
        """Waits until the latest value of topic is expected (each call
        here waits for a value other than the one the broker last sent)."""
        self.loop.run_until(lambda: self.values.get(topic, (0, None))[1] == expected, timeout,
                            f"{topic} = {expected}")

    def fresh(self, topic, timeout=3.0):
        """A value received from now on, or the latest one if the broker
        publishes none (it publishes $SYS values only when they change)."""
        since = time.monotonic()
        try:
            self.loop.run_until(lambda: self.values.get(topic, (0,))[0] > since, timeout, topic)
        except LoadError:
            pass
        return self.values[topic][1]


def signed(value):
    """The broker prints its heap counter as unsigned 64 bits: a plugin that
    hands it memory it never counted makes it wrap below zero."""
    return value - 2 ** 64 if value >= 2 ** 63 else value


def connect_and_wait(loop, client, port):
    outcome = {}
    client.on_connect = lambda c, u, flags, rc: outcome.setdefault("rc", rc)
    client.connect("127.0.0.1", port, KEEPALIVE)
    loop.run_until(lambda: "rc" in outcome, REPLY_TIMEOUT, "a CONNACK")
    if outcome["rc"] != 0:
        raise LoadError(f"connection refused: {mqtt.connack_string(outcome['rc'])}")


def subscribe_and_wait(loop, client, topic):
    granted = {}
    client.on_subscribe = lambda c, u, mid, qos: granted.setdefault(mid, qos)
    _, mid = client.subscribe(topic, 1)
    loop.run_until(lambda: mid in granted, REPLY_TIMEOUT, f"the SUBACK for {topic}")
    if granted[mid][0] not in (0, 1, 2):
        raise LoadError(f"subscription to {topic} refused")


class Held:
    """One held connection and what happened to it."""

    def __init__(self, token_name, client_id):
        self.token_name = token_name
        self.client_id = client_id
        self.connack = None
        self.client = None
        self.closed_at = None         # monotonic time the connection ended


def open_held(loop, port, tokens):
    """CONNECTIONS_PER_TOKEN connections for each (name, secret), at most
    CONNECT_WINDOW of them waiting for their CONNACK at a time."""
    held = []
    waiting = 0

    def on_connect(client, record, flags, rc):
        nonlocal waiting
        record.connack = rc
        waiting -= 1

    def on_disconnect(client, record, rc):
        record.closed_at = time.monotonic()

    for name, secret in tokens:
        for k in range(CONNECTIONS_PER_TOKEN):
            record = Held(name, f"{name}-{k}")
            client = new_client(loop, record.client_id, name, secret)
            client.user_data_set(record)
            client.on_connect = on_connect
            client.on_disconnect = on_disconnect
            record.client = client
            held.append(record)
            waiting += 1
            client.connect("127.0.0.1", port, KEEPALIVE)
            loop.run_until(lambda: waiting < CONNECT_WINDOW, REPLY_TIMEOUT, "CONNACKs")
    loop.run_until(lambda: waiting == 0, REPLY_TIMEOUT, "the last CONNACKs")
    refused = [r for r in held if r.connack != 0]
    if refused:
        raise LoadError(f"{len(refused)} connections refused, e.g. {mqtt.connack_string(refused[0].connack)}")
    return held


# ---------------------------------------------------------------- the run

def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[max(0, int(round(len(ordered) * fraction)) - 1)]


def latency_figures(seconds):
    return (statistics.median(seconds) * 1000, percentile(seconds, 0.99) * 1000, max(seconds) * 1000)


class Cycle:
    """One hold-churn-check-back cycle; its figures and failed checks."""

    def __init__(self, number, loop, broker, admin, observer):
        self.number = number
        self.loop = loop
        self.broker = broker
        self.admin = admin
        self.observer = observer
        self.failures = []
        self.figures = {}

    def check(self, ok, message):
        if not ok:
            self.failures.append(f"cycle {self.number}: {message}")

    def run(self):
        started = time.monotonic()
        names = [f"held-{self.number}-{i:04d}" for i in range(HELD_TOKENS)]
        held_tokens = [(name, self.admin.create_token(name, "load")[0]) for name in names]
        opening = time.monotonic()
        held = open_held(self.loop, self.broker.port, held_tokens)
        self.figures["open_seconds"] = time.monotonic() - opening
        self.observer.wait_for("$SYS/broker/tokens/connections", CONNECTIONS + 2)
        self.figures["rss_held_kib"] = self.broker.rss_kib()
        self.figures["heap_held"] = self.observer.fresh("$SYS/broker/heap/current")
        self.figures["in_use_held"] = self.broker.probe.sample(self.loop)["in_use"]

        revoked = {name for name, _ in held_tokens[::HELD_TOKENS // REVOKES][:REVOKES]}
        created, revoke_sent = self.churn(held_tokens, revoked)
        self.check_closures(held, revoked, revoke_sent)
        self.check_publishing([r for r in held if r.token_name not in revoked])
        self.back(held, [name for name, _ in held_tokens if name not in revoked] + created)
        self.figures["cycle_seconds"] = time.monotonic() - started

    def churn(self, held_tokens, revoked):
        """CREATES creates and REVOKES revokes, interleaved evenly."""
        to_revoke = [name for name, _ in held_tokens if name in revoked]
        creates, revokes, created, revoke_sent = [], [], [], {}
        requests = CREATES + REVOKES
        for i in range(requests):
            # Revoke when the revokes are behind their share of the requests so far.
            if len(revokes) * requests < (i + 1) * REVOKES:
                name = to_revoke[len(revokes)]
                revoke_sent[name] = time.monotonic()
                disconnected, seconds = self.admin.revoke_token(name)
                self.check(disconnected == CONNECTIONS_PER_TOKEN,
                           f"revoking {name} reported {disconnected} connections, not {CONNECTIONS_PER_TOKEN}")
                revokes.append(seconds)
            else:
                name = f"new-{self.number}-{len(creates):04d}"
                creates.append(self.admin.create_token(name, "load")[1])
                created.append(name)
        self.figures["create_ms"] = latency_figures(creates)
        self.figures["revoke_ms"] = latency_figures(revokes)
        self.figures["all_ms"] = latency_figures(creates + revokes)
        self.figures["replies"] = (len(creates) + len(revokes), requests)
        return created, revoke_sent

    def check_closures(self, held, revoked, revoke_sent):
        of_revoked = [r for r in held if r.token_name in revoked]
        others = [r for r in held if r.token_name not in revoked]
        try:
            self.loop.run_until(lambda: all(r.closed_at for r in of_revoked), CLOSE_WAIT,
                                "the revoked tokens' connections to close")
        except LoadError:
            pass
        self.loop.run_for(QUIET)
        closed = [r for r in of_revoked if r.closed_at]
        delays = [r.closed_at - revoke_sent[r.token_name] for r in closed]
        self.figures["closed_revoked"] = (len(closed), len(of_revoked))
        self.figures["close_delay_ms"] = (statistics.median(delays) * 1000, max(delays) * 1000) if delays else None
        self.figures["closed_others"] = (sum(1 for r in others if r.closed_at), len(others))
        self.check(len(closed) == len(of_revoked),
                   f"{len(of_revoked) - len(closed)} connections of revoked tokens still open after {CLOSE_WAIT:.0f} s")
        self.check(self.figures["closed_others"][0] == 0,
                   f"{self.figures['closed_others'][0]} connections of tokens not revoked were closed")
        live = CONNECTIONS - len(of_revoked) + 2
        try:
            self.observer.wait_for("$SYS/broker/tokens/connections", live)
        except LoadError:
            self.check(False, f"$SYS/broker/tokens/connections is "
                       f"{self.observer.values['$SYS/broker/tokens/connections'][1]}, not {live}")

    def check_publishing(self, remaining):
        """Each remaining connection publishes once. At most PUBLISH_WINDOW
        messages are on their way at a time: the broker drops messages for
        a subscriber beyond its queue (max_queued_messages, 1000)."""
        received = self.observer.received
        received.clear()
        for sent, record in enumerate(remaining):
            record.client.publish(f"load/{record.client_id}", b"still here", qos=1)
            try:
                self.loop.run_until(lambda: sent + 1 - len(received) < PUBLISH_WINDOW, REPLY_TIMEOUT,
                                    "the remaining connections' messages")
            except LoadError:
                break
        try:
            self.loop.run_until(lambda: len(received) == len(remaining), REPLY_TIMEOUT,
                                "the remaining connections' messages")
        except LoadError:
            pass
        self.figures["published"] = (len(self.observer.received), len(remaining))
        self.check(len(self.observer.received) == len(remaining),
                   f"{len(remaining) - len(self.observer.received)} remaining connections could not publish")

    def back(self, held, names):
        for record in held:
            if record.closed_at is None:
                record.client.disconnect()
        self.loop.run_until(lambda: all(r.closed_at for r in held), REPLY_TIMEOUT, "the disconnects")
        for name in names:
            self.admin.revoke_token(name)
        self.loop.clients = [c for c in self.loop.clients if c.socket() is not None]
        self.observer.wait_for("$SYS/broker/clients/connected", 2)
        self.observer.wait_for("$SYS/broker/tokens/total", STANDING_TOKENS)
        self.observer.wait_for("$SYS/broker/tokens/connections", 2)
        self.figures.update(read_memory(self.loop, self.broker, self.observer))


def read_memory(loop, broker, observer):
    loop.run_for(2.0)   # let the broker finish what the last requests started
    return dict(broker.probe.sample(loop), rss_kib=broker.rss_kib(),
                heap=observer.fresh("$SYS/broker/heap/current"))


class HeapProbe:
    """Reads the file that build/heap_probe.so writes in the broker: one
    line, "<sample> <bytes in use> <bytes in small blocks> <large blocks>",
    replaced whole every 0.1 s."""

    def __init__(self, path):
        self.path = path

    def _read(self):
        try:
            with open(self.path) as f:
                sample, in_use, small, large = f.read().split()
            return int(sample), {"in_use": int(in_use), "small": int(small), "large_blocks": int(large)}
        except (OSError, ValueError):
            return 0, None

    def sample(self, loop):
        """The figures, measured after this call began: the probe may have
        measured the next sample just before, so this waits for the one
        after that (the loop's clients are served meanwhile)."""
        wanted = self._read()[0] + 2
        loop.run_until(lambda: self._read()[0] >= wanted, PROBE_WAIT, "the heap probe's report")
        return self._read()[1]


def start_broker(folder):
    state = os.path.join(folder, "tokens.json")
    admin_token = init_tokens(state, "admin")
    report = os.path.join(folder, "heap-in-use")
    broker = Broker(folder, ["allow_anonymous false", "sys_interval 1", "log_type warning",
                             f"plugin {PLUGIN}", f"plugin_opt_state_file {state}",
                             "plugin_opt_metrics_interval 1"], "load",
                    # glibc counts the blocks in its per-thread cache (tcache, up to
                    # tens of KB) as in use; without it the figure is what is really held.
                    env={"LD_PRELOAD": HEAP_PROBE, "HEAP_PROBE_FILE": report,
                         "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}).start()
    broker.probe = HeapProbe(report)
    return broker, admin_token


def warm_up(loop, broker, admin_token):
    """The roles, the observer and the base tokens; returns (admin, observer)."""
    admin = Admin(loop, broker.port, admin_token)
    admin.request({"command": "createRole", "rolename": "load", "acls": [
        {"acltype": "publishClientSend", "topic": "load/#", "allow": True}]})
    admin.request({"command": "createRole", "rolename": "observer", "acls": [
        {"acltype": "subscribeLiteral", "topic": topic, "allow": True} for topic in OBSERVED + ("load/#",)]})
    observer_token, _ = admin.create_token("observer", "observer")
    observer = Observer(loop, broker.port, observer_token)
    for i in range(BASE_TOKENS):
        admin.create_token(f"base-{i:04d}", "load")
    observer.wait_for("$SYS/broker/tokens/total", STANDING_TOKENS)
    return admin, observer


def print_figures(baseline, cycles):
    print(f"\n{'':<44}" + "".join(f"{'cycle ' + str(c.number):>22}" for c in cycles))

    def row(label, show):
        print(f"{label:<44}" + "".join(f"{show(c.figures):>22}" for c in cycles))

    row("connections opened in", lambda f: f"{f['open_seconds']:.1f} s")
    row("replies / requests", lambda f: "%d / %d" % f["replies"])
    row("createToken median / p99 / max (ms)", lambda f: "%.2f / %.2f / %.1f" % f["create_ms"])
    row("revokeToken median / p99 / max (ms)", lambda f: "%.2f / %.2f / %.1f" % f["revoke_ms"])
    row("all requests median / p99 / max (ms)", lambda f: "%.2f / %.2f / %.1f" % f["all_ms"])
    row("revoked tokens' connections closed", lambda f: "%d / %d" % f["closed_revoked"])
    row("  after the revoke, median / max (ms)",
        lambda f: "%.0f / %.0f" % f["close_delay_ms"] if f["close_delay_ms"] else "-")
    row("other connections closed", lambda f: "%d / %d" % f["closed_others"])
    row("remaining connections that published", lambda f: "%d / %d" % f["published"])
    row("cycle took", lambda f: f"{f['cycle_seconds']:.1f} s")
    print(f"\n{'broker memory':<40}{'heap in use':>14}{'vs baseline':>13}"
          f"{'VmRSS':>14}{'vs baseline':>13}{'heap/current':>14}{'vs baseline':>13}")

    def memory(label, in_use, rss, heap):
        print(f"{label:<40}{in_use:>14}{in_use - baseline['in_use']:>+13}"
              f"{rss:>10} KiB{rss - baseline['rss_kib']:>+9} KiB"
              f"{heap:>14}{heap - baseline['heap']:>+13}")

    memory("baseline (warm-up done)", baseline["in_use"], baseline["rss_kib"], baseline["heap"])
    for c in cycles:
        memory(f"cycle {c.number}, {CONNECTIONS} connections held", c.figures["in_use_held"],
               c.figures["rss_held_kib"], c.figures["heap_held"])
        memory(f"cycle {c.number}, end", c.figures["in_use"], c.figures["rss_kib"], c.figures["heap"])
    print(f"\n{'heap in use by block size':<40}{'under 4 KiB':>14}{'vs baseline':>13}{'blocks >= 4 KiB':>17}")

    def blocks(label, figures):
        print(f"{label:<40}{figures['small']:>14}{figures['small'] - baseline['small']:>+13}"
              f"{figures['large_blocks']:>17}")

    blocks("baseline (warm-up done)", baseline)
    for c in cycles:
        blocks(f"cycle {c.number}, end", c.figures)


def memory_failures(baseline, cycles):
    first, last = cycles[0].figures, cycles[-1].figures
    failures = []
    for c in cycles:
        grown = c.figures["in_use"] - baseline["in_use"]
        if abs(grown) > IN_USE_TOLERANCE_BYTES:
            failures.append(f"the broker's heap in use ended cycle {c.number} {grown:+} bytes from the baseline "
                            f"(tolerance {IN_USE_TOLERANCE_BYTES} bytes): memory not given back")
        small = c.figures["small"] - baseline["small"]
        if abs(small) > SMALL_TOLERANCE_BYTES:
            failures.append(f"the broker's small blocks ended cycle {c.number} {small:+} bytes from the baseline "
                            f"(tolerance {SMALL_TOLERANCE_BYTES} bytes): records not freed")
        more = c.figures["large_blocks"] - first["large_blocks"]
        if more > LARGE_BLOCKS_TOLERANCE:
            failures.append(f"the broker held {more} more blocks of 4 KiB or more at the end of cycle {c.number} "
                            f"than at the end of cycle 1 (tolerance {LARGE_BLOCKS_TOLERANCE}): buffers not freed")
    # The small blocks are the records: from cycle 1 on, a cycle must end
    # where the one before ended (the tables and queues are large blocks).
    previous = cycles[-2].figures
    repeat = last["small"] - previous["small"]
    if abs(repeat) > SMALL_REPEAT_TOLERANCE_BYTES:
        failures.append(f"the broker's small blocks moved by {repeat:+} bytes from the end of cycle {len(cycles) - 1} "
                        f"to the end of cycle {len(cycles)} (tolerance {SMALL_REPEAT_TOLERANCE_BYTES} bytes): "
                        "a leak per cycle")
    if last["rss_kib"] - first["rss_kib"] > RSS_TOLERANCE_KIB:
        failures.append(f"VmRSS grew by {last['rss_kib'] - first['rss_kib']} KiB from the end of cycle 1 "
                        f"to the end of cycle {len(cycles)} (tolerance {RSS_TOLERANCE_KIB} KiB)")
    # The heap counter is exact: a drop means the count itself is off (the
    # plugin handed mosquitto memory it never counted); a rise is one of
    # mosquitto's tables doubling, or a leak of what the plugin allocates
    # through mosquitto (its publishes).
    moved = last["heap"] - first["heap"]
    if moved < -HEAP_DROP_TOLERANCE_BYTES or moved > HEAP_GROWTH_TOLERANCE_BYTES:
        failures.append(f"heap/current moved by {moved:+} bytes from the end of cycle 1 "
                        f"to the end of cycle {len(cycles)} (tolerance -{HEAP_DROP_TOLERANCE_BYTES} "
                        f"to +{HEAP_GROWTH_TOLERANCE_BYTES} bytes)")
    return failures


def main():
    for binary in ("mosquitto_tokens.so", "mosquitto_ctrl_tokens.so", "heap_probe.so"):
        if not os.path.exists(os.path.join(BUILD, binary)):
            sys.exit(f"build/{binary} is missing: run make load")
    raise_file_limit()
    print(f"mosquitto-tokens load, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores: "
          f"{CONNECTIONS} connections ({HELD_TOKENS} tokens x {CONNECTIONS_PER_TOKEN}), "
          f"{CREATES} creates and {REVOKES} revokes while held, {BASE_TOKENS} base tokens, {CYCLES} cycles")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tokens-load-") as folder:
        broker, admin_token = start_broker(folder)
        try:
            loop = EventLoop()
            admin, observer = warm_up(loop, broker, admin_token)
            baseline = read_memory(loop, broker, observer)
            cycles = []
            for number in range(1, CYCLES + 1):
                cycles.append(Cycle(number, loop, broker, admin, observer))
                cycles[-1].run()
                print(f"cycle {number} done in {cycles[-1].figures['cycle_seconds']:.1f} s", flush=True)
        except LoadError as error:
            print(f"\nFAILED: {error}\nbroker log (end):\n{open(broker.log).read()[-3000:]}")
            sys.exit(1)
        finally:
            broker.stop()
    print_figures(baseline, cycles)
    failures = [f for c in cycles for f in c.failures] + memory_failures(baseline, cycles)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
