"""make bench, section 4: requests and replies of hostile size (issue 13).

4a. A 40 MB control request: how long until its `limit` answer, how much
    the broker's peak memory grows, and the longest round trip another
    client saw meanwhile.
4b. Replies from a store of 50,000 tokens (plugin_opt_max_reply_bytes at
    its default, 1,000,000): a listTokens of everything (refused: it would
    not fit), 100 of them in one request, and a page of 1,000; the reply
    sizes, the time to answer, and the longest round trip of another client.
    Pages that cannot fit are refused before the store is sorted.

Used by bench/run.py, which passes its broker factory.
"""
import json
import socket
import threading
import time

import paho.mqtt.client as mqtt

RESPONSE_TOPIC = "$CONTROL/tokens/v1/response"


class Client:
    """A control client logged in with the admin token (TCP_NODELAY)."""

    def __init__(self, port, token, name):
        self.replies = []
        self.arrived = threading.Condition()
        self.mqtt = mqtt.Client(client_id=name, protocol=mqtt.MQTTv311)
        self.mqtt.username_pw_set("admin", token)
        self.mqtt.on_message = self._on_message
        self.mqtt.connect("127.0.0.1", port)
        self.mqtt.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.mqtt.loop_start()
        self.mqtt.subscribe(RESPONSE_TOPIC)
        time.sleep(0.2)

    def _on_message(self, client, userdata, message):
        with self.arrived:
            self.replies.append(message.payload)
            self.arrived.notify_all()

    def request(self, payload, timeout=120):
        with self.arrived:
            self.replies.clear()
        started = time.perf_counter()
        self.mqtt.publish("$CONTROL/tokens/v1", payload)
        with self.arrived:
            if not self.arrived.wait_for(lambda: self.replies, timeout):
                raise RuntimeError("no reply")
            return self.replies[0], time.perf_counter() - started

    def close(self):
        self.mqtt.loop_stop()
        self.mqtt.disconnect()


class RoundTrips:
    """Another client's getRole round trips, back to back, while something
    else happens; the longest one is what everybody else waited."""

    def __init__(self, port, token):
        self.client = Client(port, token, "bench-bystander")
        self.longest = 0.0
        self.count = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self):
        payload = json.dumps({"commands": [{"command": "getRole", "rolename": "devices"}]})
        while not self.stop.is_set():
            _, seconds = self.client.request(payload)
            self.longest = max(self.longest, seconds)
            self.count += 1

    def finish(self):
        self.stop.set()
        self.thread.join()
        self.client.close()
        return self.longest


def peak_kib(broker):
    with open(f"/proc/{broker.process.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def huge_request(folder, tokens_broker):
    print("\n4a. A 40 MB control request (plugin_opt_max_request_bytes 65536; "
          "target: others' round trips under 100 ms):")
    broker, admin = tokens_broker(folder, 10, "hostile-request")
    broker.start()
    try:
        client = Client(broker.port, admin, "bench-attacker")
        payload = json.dumps({"commands": [{"command": "listRoles", "pad": "x" * 100}] * 330000})
        before = peak_kib(broker)
        bystander = RoundTrips(broker.port, admin)
        time.sleep(0.3)
        reply, seconds = client.request(payload)
        time.sleep(0.3)
        longest = bystander.finish()
        code = json.loads(reply)["responses"][0].get("code")
        print(f"   {len(payload) / 1e6:.1f} MB: answered `{code}` in {seconds * 1000:.0f} ms; broker peak memory "
              f"+{(peak_kib(broker) - before) / 1024:.0f} MiB; longest round trip of another client "
              f"{longest * 1000:.1f} ms ({bystander.count} round trips)")
        client.close()
    finally:
        broker.stop()


def large_replies(folder, tokens_broker):
    count = 50000
    print(f"\n4b. Replies from {count} tokens (plugin_opt_max_reply_bytes 1000000):")
    broker, admin = tokens_broker(folder, count, "hostile-reply")
    broker.start()
    try:
        client = Client(broker.port, admin, "bench-lister")
        cases = [
            ("listTokens, everything", [{"command": "listTokens"}]),
            ("100 x listTokens, everything", [{"command": "listTokens"}] * 100),
            ("listTokens, count 1000", [{"command": "listTokens", "count": 1000, "offset": 25000}]),
            ("100 x listTokens, count 1000", [{"command": "listTokens", "count": 1000, "offset": 25000}] * 100),
        ]
        for label, commands in cases:
            bystander = RoundTrips(broker.port, admin)
            time.sleep(0.2)
            reply, seconds = client.request(json.dumps({"commands": commands}))
            time.sleep(0.2)
            longest = bystander.finish()
            codes = {r.get("code", "ok") for r in json.loads(reply)["responses"]}
            print(f"   {label:<30} {len(reply):>9} bytes in {seconds * 1000:>6.0f} ms ({', '.join(sorted(codes))}); "
                  f"longest round trip of another client {longest * 1000:.1f} ms")
        client.close()
    finally:
        broker.stop()


def hostile_sizes(folder, tokens_broker):
    huge_request(folder, tokens_broker)
    large_replies(folder, tokens_broker)
