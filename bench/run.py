#!/usr/bin/python3
"""make bench: the plugin's speed and memory, measured against a real broker.

1. Login storm: CONNECT/CONNACK/DISCONNECT cycles per second from 2 client
   threads on one broker, for anonymous, password_file, dynamic-security and
   token logins, interleaved in rounds (median of the rounds).
2. In-process: ns per call of the login callback (1k, 100k, 1M tokens) and
   of the ACL check (a role of 10 ACLs); instructions per call under
   callgrind (1k tokens), which do not depend on the machine's load.
   2b: the ordered index at 1M tokens (seeks, pages, inserts, removals,
   build, refresh, bytes per token).
3. Store scale: start-up time and resident memory per token with 100k and 1M
   tokens; createToken latency over MQTT (median, p99) with 10, 10k, 100k
   and 1M tokens in the store.
4. Hostile sizes (bench/hostile.py): a 40 MB request, and large replies.
5. The fold's stall (bench/fold_stall.py): the longest round trip while the
   journal is folded into a snapshot of 1M tokens, in the background and on
   the broker's thread, and how long the fold takes.
6. Listing a million tokens (bench/listing.py): pages of 50 per filter, and
   another client's round trips while pages are read.
7. A fleet of two brokers on PostgreSQL (bench/fleet.py): how soon a revoke
   on one closes the token's connections on the other, the revoke's round
   trip, and token logins against the file backend's.

Usage: bench/run.py [--quick] [--only SECTION,...]   (--quick: shorter runs,
smaller stores; --only: those sections, see ONLY below)
"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import json

import fold_stall
import hostile
import listing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
PLUGIN = os.path.join(BUILD, "mosquitto_tokens.so")
# MOSQUITTO_PREFIX, as for the integration tests (test/integration/
# tokens_helpers.py): another Mosquitto release's install prefix, relative
# to the repository (build/mosquitto-2.1.2/_prefix, from make
# vendor-brokers), whose broker, tools, libmosquitto (LD_LIBRARY_PATH) and
# dynamic-security plugin are used; unset, Debian's (the tools on PATH).
PREFIX = os.path.join(ROOT, os.environ["MOSQUITTO_PREFIX"]) if os.environ.get("MOSQUITTO_PREFIX") else None
DYNSEC = os.path.join(os.path.join(PREFIX, "lib") if PREFIX else "/usr/lib/x86_64-linux-gnu",
                      "mosquitto_dynamic_security.so")


def tool(name, folder="bin"):
    """A broker (folder "sbin") or tool of the release."""
    return os.path.join(PREFIX, folder, name) if PREFIX else name


def tool_env(extra=None):
    """The environment for the release's broker and tools: the release's
    lib/ first in LD_LIBRARY_PATH (2.1's libmosquitto keeps the soname
    libmosquitto.so.1: without it, Debian's would be loaded)."""
    env = dict(os.environ, **(extra or {}))
    if PREFIX:
        env["LD_LIBRARY_PATH"] = ":".join(p for p in (os.path.join(PREFIX, "lib"), env.get("LD_LIBRARY_PATH")) if p)
    return env
QUICK = "--quick" in sys.argv
# --only NAME[,NAME]: run only these sections (logins, callbacks, index,
# startup, create, hostile, fold, listing, fleet).
ONLY = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else None


def wanted(section):
    return ONLY is None or section in ONLY


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """env ({name: value}) adds to the broker's environment (LD_PRELOAD, say)."""

    def __init__(self, folder, lines, name="broker", env=None):
        self.port = free_port()
        self.env = tool_env(env)
        self.conf = os.path.join(folder, name + ".conf")
        self.log = os.path.join(folder, name + ".log")
        with open(self.conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nset_tcp_nodelay true\nlog_type error\n")
            if os.geteuid() == 0:
                f.write("user root\n")
            f.write("\n".join(lines) + "\n")

    def start(self):
        started = time.monotonic()
        self.process = subprocess.Popen([tool("mosquitto", "sbin"), "-c", self.conf], stdout=open(self.log, "w"),
                                        stderr=subprocess.STDOUT, env=self.env)
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(open(self.log).read())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.05).close()
                break
            except OSError:
                time.sleep(0.002)
        self.startup_seconds = time.monotonic() - started
        return self

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    def stop(self):
        # Sent again each second: mosquitto 2.0 loses a SIGTERM that comes
        # right after its listeners open (it sets its run flag after
        # installing the handlers).
        for _ in range(60):
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=1)
                return
            except subprocess.TimeoutExpired:
                continue
        raise RuntimeError("mosquitto did not stop on SIGTERM")


def ctrl_env():
    return tool_env({"LD_LIBRARY_PATH": BUILD})


def init_tokens(path, name):
    out = subprocess.run([tool("mosquitto_ctrl"), "tokens", "init", path, name], env=ctrl_env(),
                         check=True, capture_output=True, text=True).stdout
    return next(word for word in out.split() if word.startswith("mqtk_"))


# ---------------------------------------------------------------- 1. login storm

def login_storm(folder):
    seconds = 1
    rounds = 1 if QUICK else 15
    passwd = os.path.join(folder, "passwd")
    subprocess.run([tool("mosquitto_passwd"), "-b", "-c", passwd, "alice", "alice-password"], check=True,
                   env=tool_env())
    dynsec = os.path.join(folder, "dynsec.json")
    subprocess.run([tool("mosquitto_ctrl"), "dynsec", "init", dynsec, "bob", "bob-password"], check=True,
                   capture_output=True, env=tool_env())
    token = init_tokens(os.path.join(folder, "storm.json"), "carol")
    broker = Broker(folder, [
        "allow_anonymous true",
        f"password_file {passwd}",
        f"plugin {PLUGIN}",
        f"plugin_opt_state_file {os.path.join(folder, 'storm.json')}",
        f"plugin {DYNSEC}",
        f"plugin_opt_config_file {dynsec}",
    ], "storm").start()
    kinds = {
        "anonymous": [],
        "password_file": ["alice", "alice-password"],
        "dynamic-security": ["bob", "bob-password"],
        "token": ["carol", token],
    }
    rates = {kind: [] for kind in kinds}
    try:
        for round_number in range(rounds):
            # Alternate the order so that no kind always runs first or last.
            order = list(kinds.items())
            if round_number % 2:
                order.reverse()
            for kind, credentials in order:
                out = subprocess.run([os.path.join(BUILD, "login_storm"), "127.0.0.1", str(broker.port),
                                      str(seconds), "2"] + credentials, check=True, capture_output=True,
                                     text=True).stdout.split()
                if int(out[1]):
                    raise RuntimeError(f"{kind}: {out[1]} logins refused")
                rates[kind].append(float(out[0]))
    finally:
        broker.stop()
    median = {kind: statistics.median(values) for kind, values in rates.items()}

    def paired(other):
        """The median over rounds of token/other measured in the same round:
        the machine's drifts cancel out of each ratio."""
        return statistics.median(t / o for t, o in zip(rates["token"], rates[other]))

    print(f"\n1. Login storm (2 client threads, {rounds} rounds x {seconds} s per kind, median):")
    print(f"   {'kind':<18} {'logins/s':>9}  rounds")
    for kind in kinds:
        print(f"   {kind:<18} {median[kind]:>9.0f}  {' '.join(f'{r:.0f}' for r in rates[kind])}")
    print(f"   token / anonymous        = {paired('anonymous'):.3f}  (median of per-round ratios; target >= 0.97)")
    print(f"   token / password_file    = {paired('password_file'):.2f}   (target >= 1.25)")
    print(f"   token / dynamic-security = {paired('dynamic-security'):.2f}")


# ---------------------------------------------------------------- 2. in-process

def callgrind_per_call(function):
    out_file = os.path.join(tempfile.gettempdir(), f"callgrind.{os.getpid()}.{function}")
    run = subprocess.run(["valgrind", "--tool=callgrind", f"--toggle-collect={function}",
                          f"--callgrind-out-file={out_file}", os.path.join(BUILD, "bench_callbacks"), "--quick"],
                         check=True, capture_output=True, text=True)
    calls = {}
    for line in run.stdout.splitlines():
        if "calls)" in line:
            kind = "login" if line.startswith("login") else "acl"
            calls[kind] = calls.get(kind, 0) + int(line.split("(")[1].split()[0])
    with open(out_file) as f:
        total = next(int(line.split()[1]) for line in f if line.startswith("totals:") or line.startswith("summary:"))
    os.remove(out_file)
    # The extra login that binds the ACL benchmark's connection is negligible.
    return total / calls["login" if "basic_auth" in function else "acl"]


def in_process():
    print("\n2. In-process callbacks (best of 5 runs; targets: login <= 1000 ns with 1M tokens, ACL <= 150 ns):")
    out = subprocess.run([os.path.join(BUILD, "bench_callbacks")] + (["--quick"] if QUICK else []),
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        print("   " + line)
    if shutil.which("valgrind"):
        print("   under callgrind (1k tokens): login callback "
              f"{callgrind_per_call('authentication_on_basic_auth'):.0f} instructions per call, "
              f"ACL check {callgrind_per_call('authorization_on_acl_check'):.0f} instructions per call")


def order_index():
    """The ordered index on its own (bench/bench_order_index.c), 1M tokens."""
    print("\n2b. Ordered index (best of 5 runs):")
    out = subprocess.run([os.path.join(BUILD, "bench_order_index")] + (["--quick"] if QUICK else []),
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        print("   " + line)


# ---------------------------------------------------------------- 3. store scale

def make_state(path, count, mixed=False):
    out = subprocess.run([os.path.join(BUILD, "make_state"), path, str(count)] + (["--mixed"] if mixed else []),
                         check=True, capture_output=True, text=True).stdout
    return out.strip()


def tokens_broker(folder, count, name, mixed=False):
    state = os.path.join(folder, name + ".json")
    admin = make_state(state, count, mixed)
    broker = Broker(folder, ["allow_anonymous false", f"plugin {PLUGIN}", f"plugin_opt_state_file {state}"], name)
    return broker, admin


def startup_and_memory(folder):
    sizes = [10000, 100000] if QUICK else [100000, 1000000]
    print("\n3a. Start-up and memory (targets: 1M tokens start in <= 2 s, <= 300 bytes per token):")
    base_broker, _ = tokens_broker(folder, 0, "empty")
    base_broker.start()
    base_rss = base_broker.rss_kib()
    base_start = base_broker.startup_seconds
    base_broker.stop()
    print(f"   {'tokens':>8}  {'start-up':>9}  {'RSS':>9}  {'bytes/token':>11}")
    print(f"   {0:>8}  {base_start:>8.3f}s  {base_rss:>6} KiB  {'-':>11}")
    for count in sizes:
        broker, _ = tokens_broker(folder, count, f"scale{count}")
        broker.start()
        rss = broker.rss_kib()
        broker.stop()
        print(f"   {count:>8}  {broker.startup_seconds:>8.3f}s  {rss:>6} KiB  {(rss - base_rss) * 1024 / count:>11.0f}")
        # The same state in other valid layouts (a script's json.dumps, `jq
        # -c`, a hand edit): targets <= 400 bytes per token, <= 1.5x the time.
        with open(os.path.join(folder, f"scale{count}.json")) as f:
            document = json.load(f)
        for layout, dump in (("compact", lambda d: json.dumps(d, separators=(",", ":"))),
                             ("indent=2", lambda d: json.dumps(d, indent=2))):
            path = os.path.join(folder, f"layout{count}.json")
            with open(path, "w") as f:
                f.write(dump(document))
            other = Broker(folder, ["allow_anonymous false", f"plugin {PLUGIN}", f"plugin_opt_state_file {path}"],
                           f"layout{count}")
            other.start()
            other_rss = other.rss_kib()
            other.stop()
            os.unlink(path)
            print(f"   {count:>8}  {other.startup_seconds:>8.3f}s  {other_rss:>6} KiB  "
                  f"{(other_rss - base_rss) * 1024 / count:>11.0f}  {layout} "
                  f"({other.startup_seconds / broker.startup_seconds:.2f}x the time)")
        del document


def create_latency(broker, admin, requests):
    import paho.mqtt.client as mqtt
    got = threading.Event()
    client = mqtt.Client(client_id="bench-admin", protocol=mqtt.MQTTv311)
    client.username_pw_set("admin", admin)
    client.on_message = lambda c, u, m: got.set()
    client.connect("127.0.0.1", broker.port)
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    client.subscribe("$CONTROL/tokens/v1/response")
    time.sleep(0.2)
    latencies = []
    expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400 * 30))
    for i in range(requests + 20):
        got.clear()
        payload = json.dumps({"commands": [{"command": "createToken", "name": f"bench-{i}",
                                            "role": "devices", "validUntil": expiry}]})
        started = time.perf_counter()
        client.publish("$CONTROL/tokens/v1", payload)
        if not got.wait(5):
            raise RuntimeError("no reply to createToken")
        if i >= 20:   # warm-up excluded
            latencies.append(time.perf_counter() - started)
    client.loop_stop()
    client.disconnect()
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]


def create_token_latency(folder):
    sizes = [10, 10000, 100000] if QUICK else [10, 10000, 100000, 1000000]
    requests = 100 if QUICK else 300
    print(f"\n3b. createToken latency over MQTT ({requests} requests; target: 1M at most 2x the 10-token figure):")
    print(f"   {'tokens':>8}  {'median':>8}  {'p99':>8}")
    results = {}
    for count in sizes:
        broker, admin = tokens_broker(folder, count, f"latency{count}")
        broker.start()
        try:
            results[count] = create_latency(broker, admin, requests)
        finally:
            broker.stop()
        median, p99 = results[count]
        print(f"   {count:>8}  {median * 1000:>6.2f}ms  {p99 * 1000:>6.2f}ms")
    largest = sizes[-1]
    print(f"   median {largest} / median 10 = {results[largest][0] / results[10][0]:.2f}, "
          f"p99 {largest} / p99 10 = {results[largest][1] / results[10][1]:.2f}")


def fleet_section(folder):
    """Imported here, not at the top: bench/fleet.py imports this module."""
    import fleet
    fleet.fleet(folder)


def main():
    for binary in ("login_storm", "bench_callbacks", "bench_order_index", "make_state", "mosquitto_tokens.so", "mosquitto_ctrl_tokens.so"):
        if not os.path.exists(os.path.join(BUILD, binary)):
            sys.exit(f"build/{binary} is missing: run make bench")
    print(f"mosquitto-tokens benchmarks, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores"
          + (" (quick)" if QUICK else ""))
    with tempfile.TemporaryDirectory(prefix="tokens-bench-") as folder:
        sections = [
            ("logins", lambda: login_storm(folder)),
            ("callbacks", in_process),
            ("index", order_index),
            ("startup", lambda: startup_and_memory(folder)),
            ("create", lambda: create_token_latency(folder)),
            ("hostile", lambda: hostile.hostile_sizes(folder, tokens_broker)),
            ("fold", lambda: fold_stall.fold_stall(folder, Broker, PLUGIN, make_state, QUICK)),
            ("listing", lambda: listing.listing_pages(
                folder, lambda f, count, name: tokens_broker(f, count, name, mixed=True))),
            ("fleet", lambda: fleet_section(folder)),
        ]
        for name, run in sections:
            if wanted(name):
                run()


if __name__ == "__main__":
    main()
