"""
Helpers for watching what the plugin publishes (SPEC section 4, "Beyond
the seed"): the events on $CONTROL/tokens/v1/events and the retained
metrics under $SYS/broker/tokens/.

- EventWatcher: a Device subscribed to the events topic that parses, checks
  (shape, no secret) and keeps every event it receives;
- read_metrics / wait_metrics: what a $SYS scraper sees when it subscribes;
- acl_file texts for brokers whose anonymous clients may also read $SYS, or
  whose offline persistent sessions keep receiving after a restart.
"""
import json
import queue
import re
import time

from access_helpers import Device
from tokens_helpers import (
    HASH_RE, METADATA_KEYS, QUIET_PERIOD, TIMEOUT, parse_time,
)

EVENTS_TOPIC = "$CONTROL/tokens/v1/events"
METRICS_PREFIX = "$SYS/broker/tokens/"
METRIC_NAMES = ["total", "valid", "invalid", "connections", "logins/accepted", "logins/refused"]

EVENT_NAMES = {"tokenCreated", "tokenRevoked", "tokenRotated", "tokenExpiring", "tokenExpired"}
EVENTS_WITH_BY = {"tokenCreated", "tokenRevoked", "tokenRotated"}
# A secret anywhere in a text.
SECRET_RE = re.compile(r"mqtk_[A-Za-z0-9_-]{43}[0-9a-f]{8}")
DECIMAL_RE = re.compile(r"^(0|[1-9][0-9]*)$")

# The test broker's acl_file (tokens_helpers.Broker) ...
BASE_ACL = "topic readwrite #\ntopic readwrite $CONTROL/#\n"
# ... plus $SYS, which `#` does not match: a $SYS scraper's rights.
ACL_WITH_SYS = BASE_ACL + "topic read $SYS/#\n"
# ... plus a pattern, so that a persistent session restored from mosquitto's
# own persistence after a restart may receive events while it is offline
# (mosquitto 2.0 checks a restored, not yet reconnected client against
# patterns only).
ACL_EVENTS_PATTERN = BASE_ACL + f"pattern read {EVENTS_TOPIC}\n"


def mosquitto_persistence(directory, autosave=None):
    """extra_config lines: mosquitto keeps sessions (and queues QoS 0
    messages for offline ones) across restarts."""
    lines = ["persistence true", f"persistence_location {directory}/", "queue_qos0_messages true"]
    if autosave is not None:
        lines.append(f"autosave_interval {autosave}")
    return lines


# ---------------------------------------------------------------- events

def check_event(event, raw):
    """One event (SPEC section 4): the token's metadata fields plus `event`
    and `at`; `by` on created, revoked and rotated; `previousHash` on
    rotated; never a secret."""
    assert isinstance(event, dict), f"an event is one JSON object: {raw!r}"
    assert not SECRET_RE.search(raw), f"a secret in an event: {raw}"
    assert "token" not in event, f"an event with a `token` field: {raw}"
    kind = event.get("event")
    assert kind in EVENT_NAMES, f"unknown event: {raw}"
    required = set(METADATA_KEYS) | {"event", "at"}
    if kind in EVENTS_WITH_BY:
        required.add("by")
    if kind == "tokenRotated":
        required.add("previousHash")
    # previousValidUntil is a metadata field while a rotated token's old
    # secret still works (getToken shows it then); clientId when the token
    # is bound to one.
    extra = set(event) - required
    assert set(event) >= required, f"{kind} lacks {sorted(required - set(event))}: {raw}"
    assert extra <= {"previousValidUntil", "clientId"}, f"{kind} has unexpected fields {sorted(extra)}: {raw}"
    if "clientId" in event:
        assert isinstance(event["clientId"], str) and event["clientId"], raw
    parse_time(event["at"])
    parse_time(event["issuedAt"])
    parse_time(event["validUntil"])
    if event["lastUsed"] is not None:
        parse_time(event["lastUsed"])
    if "previousValidUntil" in event:
        parse_time(event["previousValidUntil"])
    assert HASH_RE.match(event["hash"]), raw
    assert event["status"] in ("valid", "invalid"), raw
    if "by" in event:
        assert isinstance(event["by"], str) and event["by"], raw
    if kind == "tokenRotated":
        assert HASH_RE.match(event["previousHash"]) and event["previousHash"] != event["hash"], raw
    return event


def matches(event, kind=None, **fields):
    if kind is not None and event["event"] != kind:
        return False
    return all(event.get(k) == v for k, v in fields.items())


class EventWatcher(Device):
    """A Device subscribed to the events topic (by default), keeping every
    event it received in `history` (checked as it arrives) with its arrival
    time; messages on other topics go to `others`."""

    def __init__(self, port, topics=(EVENTS_TOPIC,), **kwargs):
        self.history = []
        self.arrivals = []
        self.others = []
        kwargs.setdefault("subscriptions", list(topics))
        super().__init__(port, **kwargs)

    def _take(self, message):
        if message.topic != EVENTS_TOPIC:
            self.others.append(message)
            return None
        raw = message.payload.decode("utf-8")
        event = check_event(json.loads(raw), raw)
        self.history.append(event)
        self.arrivals.append(time.time())
        return event

    def pump(self, wait=QUIET_PERIOD):
        """Takes in whatever arrives within `wait` seconds; returns the new events."""
        new = []
        for message in self.drain(wait):
            event = self._take(message)
            if event is not None:
                new.append(event)
        return new

    def arrived(self, event):
        for i, seen in enumerate(self.history):
            if seen is event:
                return self.arrivals[i]
        raise KeyError("not an event of this watcher")

    def find(self, kind=None, **fields):
        return [e for e in self.history if matches(e, kind, **fields)]

    def wait_for(self, kind=None, timeout=TIMEOUT, **fields):
        """The first event (seen before or arriving within `timeout`) of
        that kind with those field values."""
        found = self.find(kind, **fields)
        if found:
            return found[0]
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind or 'event'} {fields} within {timeout}s; "
                                     f"got {[(e['event'], e['name']) for e in self.history]}")
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            event = self._take(message)
            if event is not None and matches(event, kind, **fields):
                return event

    def count(self, kind=None, **fields):
        return len(self.find(kind, **fields))


# ---------------------------------------------------------------- metrics

def read_metrics(port, wait=0.4):
    """Subscribes like a $SYS scraper, anonymously, to $SYS/broker/tokens/#
    (the broker needs ACL_WITH_SYS) and returns ({name: payload text},
    {names delivered as retained}) of what arrives within `wait` seconds.
    A name published twice meanwhile has its later value."""
    values, retained = {}, set()
    with Device(port) as scraper:
        code = scraper.subscribe_code(METRICS_PREFIX + "#")
        assert code in (0, 1, 2), f"subscription to {METRICS_PREFIX}# refused: {code}"
        for message in scraper.drain(wait):
            assert message.topic.startswith(METRICS_PREFIX), message.topic
            name = message.topic[len(METRICS_PREFIX):]
            values[name] = message.payload.decode("utf-8", "replace")
            if message.retain:
                retained.add(name)
    return values, retained


def wait_metrics(port, expected, timeout=4.0):
    """Reads the metrics until every name in `expected` has that value
    (given as an int); returns the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        values, retained = read_metrics(port)
        if all(values.get(name) == str(value) for name, value in expected.items()):
            return values, retained
        if time.monotonic() > deadline:
            wanted = {k: str(v) for k, v in expected.items()}
            raise AssertionError(f"metrics not {wanted} within {timeout}s; last seen {values}")
        time.sleep(0.2)


def seconds(text):
    return parse_time(text).timestamp()
