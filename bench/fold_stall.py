"""5. The fold's stall (issue 18): the longest round trip a client sees
while the journal is folded into a new snapshot of a large store, with the
fold in the background (the default) and on the broker's thread
(plugin_opt_background_fold false), and how long the fold takes.

A pinger (a second admin connection) sends a `listRoles` request every
5 ms and times each reply; meanwhile an admin makes the changes after which
a fold is due (plugin_opt_snapshot_after). The fold counts from the reply to
the change that made it due until the state file is another file (the new
snapshot renamed into place). Target: no round trip above 20 ms.
"""
import json
import os
import shutil
import socket
import threading
import time

CHANGES = 1000


def connect(port, secret, name, on_message):
    import paho.mqtt.client as mqtt
    client = mqtt.Client(client_id=name, protocol=mqtt.MQTTv311)
    client.username_pw_set("admin", secret)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    client.subscribe("$CONTROL/tokens/v1/response")
    time.sleep(0.2)
    return client


class Pinger(threading.Thread):
    """Round trips every few ms; records (sent at, seconds) for each."""

    def __init__(self, port, secret):
        super().__init__(daemon=True)
        self.got = threading.Event()
        self.client = connect(port, secret, "bench-pinger", lambda c, u, m: self.got.set())
        self.trips = []
        self.stopping = threading.Event()

    def run(self):
        payload = json.dumps({"commands": [{"command": "listRoles"}]})
        while not self.stopping.is_set():
            self.got.clear()
            started = time.perf_counter()
            self.client.publish("$CONTROL/tokens/v1", payload)
            if not self.got.wait(30):
                raise RuntimeError("the pinger got no reply in 30 s")
            self.trips.append((started, time.perf_counter() - started))
            time.sleep(0.005)

    def stop(self):
        self.stopping.set()
        self.join()
        self.client.loop_stop()
        self.client.disconnect()


def make_changes(port, secret, count):
    """count createToken requests one after the other; returns when the
    last one was sent and when its reply arrived (perf_counter): a fold on
    the broker's thread runs in between."""
    got = threading.Event()
    client = connect(port, secret, "bench-admin", lambda c, u, m: got.set())
    expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400 * 30))
    for i in range(count):
        got.clear()
        sent = time.perf_counter()
        client.publish("$CONTROL/tokens/v1", json.dumps({"commands": [
            {"command": "createToken", "name": f"fold-{i}", "role": "devices", "validUntil": expiry}]}))
        if not got.wait(30):
            raise RuntimeError("no reply to createToken")
    done = time.perf_counter()
    client.loop_stop()
    client.disconnect()
    return sent, done


def one_fold(folder, broker_class, plugin, state, secret, background):
    name = "fold-" + ("background" if background else "foreground")
    path = os.path.join(folder, name + ".json")
    shutil.copyfile(state, path)
    broker = broker_class(folder, ["allow_anonymous false", f"plugin {plugin}", f"plugin_opt_state_file {path}",
                                   f"plugin_opt_snapshot_after {CHANGES}",
                                   f"plugin_opt_background_fold {'true' if background else 'false'}"], name)
    broker.start()
    try:
        inode = os.stat(path).st_ino
        installed = []

        def watch():   # the new snapshot renamed into place
            while os.stat(path).st_ino == inode:
                time.sleep(0.002)
            installed.append(time.perf_counter())
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        pinger = Pinger(broker.port, secret)
        pinger.start()
        time.sleep(0.5)
        started = time.perf_counter()
        due, _ = make_changes(broker.port, secret, CHANGES)
        watcher.join(120)
        time.sleep(0.5)
        pinger.stop()
    finally:
        broker.stop()
    os.unlink(path)
    if not installed:
        raise RuntimeError("no fold within 120 s")
    during = [seconds for at, seconds in pinger.trips if started <= at <= installed[0]]
    return {"fold": installed[0] - due, "max": max(during), "trips": len(during),
            "median": sorted(during)[len(during) // 2]}


def fold_stall(folder, broker_class, plugin, make_state, quick):
    count = 100000 if quick else 1000000
    print(f"\n5. The longest stall while a fold runs ({count} tokens, a fold due after {CHANGES} changes; "
          "a round trip every 5 ms; target: max <= 20 ms in the background):")
    state = os.path.join(folder, "fold.json")
    secret = make_state(state, count)
    print(f"   {'fold':>11}  {'fold takes':>10}  {'round trips':>11}  {'median':>8}  {'max':>9}")
    for background in (True, False):
        result = one_fold(folder, broker_class, plugin, state, secret, background)
        print(f"   {'background' if background else 'foreground':>11}  {result['fold']:>9.3f}s  "
              f"{result['trips']:>11}  {result['median'] * 1000:>6.2f}ms  {result['max'] * 1000:>7.2f}ms")
    os.unlink(state)
