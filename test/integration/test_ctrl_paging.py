"""
`mosquitto_ctrl tokens list` on stores larger than one reply (issue 13):
the module pages through the store by itself over its own connection
(500 tokens a request), and prints one table, every token exactly once, in
the plugin's order (issuedAt, then name), with one width per column for the
whole list.

The stores are written as state files before the broker starts (as an
operator's restored backup would be): a few thousand tokens with spread-out
issue times, some sharing an issue second (so that the name decides), and
names of different lengths on different pages (so that the columns must be
as wide as the widest cell of any page).
"""
import io
import json
import os
import random
import re
import socket
import struct
import threading

import pytest

import ctrl_helpers
from ctrl_helpers import (  # noqa: F401  (fixtures)
    COLUMNS, CTRL_MODULE, TokenOnlyBroker, admin_factory, expect_error, expect_ok, finish_broker, init_state, run_ctrl, table,
)
from tokens_helpers import format_time
from valgrind_helpers import OursIn, check_reports, skip_without_valgrind, valgrind_command

PAGE = 500


@pytest.fixture(autouse=True)
def exporting_ctrl(monkeypatch):
    """Paging needs mosquitto_ctrl's client_opts_set and client_connect,
    which Debian's build exports and upstream's CMake builds of 2.0.22 and
    2.1.2 do not (those list in one reply, test_ctrl_releases.py): page with
    Debian's mosquitto_ctrl against every release's broker."""
    monkeypatch.setattr(ctrl_helpers, "DEFAULT_CTRL", ctrl_helpers.DEBIAN_CTRL)
BASE = 1767225600          # 2026-01-01T00:00:00Z


def many_tokens(count, seed=13):
    """count token records (role "devices") in a shuffled order; their
    expected listing order is by (issuedAt, name)."""
    rng = random.Random(seed)
    tokens = []
    for i in range(count):
        issued = BASE + (i // 3) * 60            # three tokens share each second
        name = f"dev-{rng.randrange(10**6):06d}-{i}"
        if i == count - 7:
            name = "a-rather-long-name-at-the-end"   # 29 characters, on the last page
        tokens.append({
            "name": name, "role": "devices", "requestedBy": "bulk-import",
            "issuedAt": format_time(issued),
            "validUntil": format_time(issued + 86400 * 3650) if i % 5 else format_time(issued + 60),
            "lastUsed": format_time(issued + 30) if i % 4 == 0 else None,
            "hash": "%064x" % rng.getrandbits(256),
        })
    rng.shuffle(tokens)
    return tokens


def with_tokens(tokens):
    def edit(state):
        state["roles"].append({"rolename": "devices", "acls": []})
        state["tokens"].extend(tokens)
    return edit


def expected_order(admin_state_token, tokens):
    everything = [admin_state_token] + tokens
    return [t["name"] for t in sorted(everything, key=lambda t: (t["issuedAt"], t["name"]))]


def admin_record(admin):
    return [t for t in admin.broker.read_state()["tokens"] if t["name"] == admin.name][0]


def check_columns(text):
    """Every column as wide as its widest cell, over all pages: the header's
    gaps are exactly two blanks after the widest cell."""
    lines = text.splitlines()
    header = lines[0]
    starts = [header.index(c) for c in COLUMNS]
    for i in range(len(COLUMNS) - 1):
        widest = max(len(line[starts[i]:starts[i + 1]].rstrip()) for line in lines[:-1])
        assert starts[i + 1] - starts[i] == widest + 2, (COLUMNS[i], widest, header)


def control_requests(broker):
    """Control requests the broker has received so far (log_type all)."""
    return len(re.findall(r"Received PUBLISH from \S+ \(d0, q1, r0, m\d+, '\$CONTROL/tokens/v1',", broker.log))


def test_list_pages_through_thousands_of_tokens(admin_factory):
    """More than the default 1 MB reply holds: the module as it was (one
    request for everything) got a limit error here."""
    tokens = many_tokens(4999)
    admin = admin_factory(edit_state=with_tokens(tokens))
    before = control_requests(admin.broker)
    result = expect_ok(admin.ctrl("list", timeout=60))
    rows, footer = table(result.stdout)
    names = [r["Name"] for r in rows]
    assert len(names) == len(set(names)) == 5000
    assert names == expected_order(admin_record(admin), tokens)
    assert footer == "5000 of 5000 tokens shown. Times are UTC."
    assert result.stderr == ""
    # Ten requests of 500, one after another on one connection.
    assert control_requests(admin.broker) - before == 10
    check_columns(result.stdout)
    by_name = {t["name"]: t for t in tokens}
    for row in rows[1::97]:
        token = by_name.get(row["Name"])
        if token:
            assert row["Hash"] == token["hash"][:12]
            assert row["Issue date"] == token["issuedAt"]
            assert row["Last used"] == (token["lastUsed"] or "never")


def test_list_pages_with_status_count_and_offset(admin_factory):
    tokens = many_tokens(1600, seed=7)
    admin = admin_factory(edit_state=with_tokens(tokens))
    order = expected_order(admin_record(admin), tokens)
    every = table(expect_ok(admin.ctrl("list", timeout=60)).stdout)[0]
    valid = [r["Name"] for r in every if r["Status"] == "Valid"]
    invalid = [r["Name"] for r in every if r["Status"] == "Invalid"]
    assert len(invalid) == 320 and len(valid) == 1281

    rows, footer = table(expect_ok(admin.ctrl("list", "--offset", "333", "--count", "1100", timeout=60)).stdout)
    assert [r["Name"] for r in rows] == order[333:1433]
    assert footer == "1100 of 1601 tokens shown. Times are UTC."

    rows, footer = table(expect_ok(admin.ctrl("list", "--offset", "1200", timeout=60)).stdout)
    assert [r["Name"] for r in rows] == order[1200:]
    assert footer == "401 of 1601 tokens shown. Times are UTC."

    rows, footer = table(expect_ok(admin.ctrl("list", "--status", "valid", timeout=60)).stdout)
    assert [r["Name"] for r in rows] == valid
    assert footer == "1281 of 1281 tokens shown. Times are UTC."

    rows, footer = table(expect_ok(admin.ctrl("list", "--status", "invalid", "--offset", "100", timeout=60)).stdout)
    assert [r["Name"] for r in rows] == invalid[100:]
    assert footer == "220 of 320 tokens shown. Times are UTC."


FILTER_ROLES = ("devices", "cams", "ops", "cam")


def fleet_tokens(count, seed=18):
    """count token records over FILTER_ROLES, under prefixes that are
    prefixes of each other ("cam-", "cam-x-", "camera-"), shuffled."""
    rng = random.Random(seed)
    prefixes = ("dev-", "cam-", "cam-x-", "camera-", "ops-", "\u00e9t\u00e9-")
    tokens = []
    for i in range(count):
        issued = BASE + (i // 4) * 30
        tokens.append({
            "name": f"{prefixes[i % len(prefixes)]}{rng.randrange(10**5):05d}-{i}",
            "role": FILTER_ROLES[(i * 7 + i // 5) % len(FILTER_ROLES)], "requestedBy": "bulk-import",
            "issuedAt": format_time(issued),
            "validUntil": format_time(issued + 86400 * 3650) if i % 7 else format_time(issued + 60),
            "lastUsed": None, "hash": "%064x" % rng.getrandbits(256),
        })
    rng.shuffle(tokens)
    return tokens


def with_roles(tokens):
    def edit(state):
        state["roles"].extend({"rolename": r, "acls": []} for r in FILTER_ROLES if r != "devices")
        state["roles"].append({"rolename": "devices", "acls": []})
        state["tokens"].extend(tokens)
    return edit


def test_list_pages_with_role_and_name_prefix(admin_factory):
    """--role and --name-prefix go to every page request: the pages together
    are the filtered list, every token once, in the plugin's order."""
    tokens = fleet_tokens(3000)
    admin = admin_factory(edit_state=with_roles(tokens))
    everything = [admin_record(admin)] + tokens
    ordered = sorted(everything, key=lambda t: (t["issuedAt"], t["name"]))
    now = format_time(__import__("time").time())

    def reference(role=None, prefix=None, status="all"):
        return [t["name"] for t in ordered
                if (role is None or t["role"] == role) and (prefix is None or t["name"].startswith(prefix))
                and (status == "all" or (t["validUntil"] > now) == (status == "valid"))]

    cases = [
        (["--role", "cams"], reference("cams")),
        (["--name-prefix", "cam-"], reference(prefix="cam-")),
        (["--role", "cams", "--name-prefix", "cam"], reference("cams", "cam")),
        (["--role", "cam", "--name-prefix", "cam-x-", "--status", "valid"], reference("cam", "cam-x-", "valid")),
        (["--name-prefix", "\u00e9t\u00e9-", "--status", "invalid"], reference(prefix="\u00e9t\u00e9-", status="invalid")),
        (["--name-prefix", ""], reference()),
    ]
    for args, expected in cases:
        assert len(expected) > 0, args
        result = expect_ok(admin.ctrl("list", *args, timeout=60))
        rows, footer = table(result.stdout)
        names = [r["Name"] for r in rows]
        assert names == expected, args
        assert len(set(names)) == len(names)
        assert footer == f"{len(expected)} of {len(expected)} tokens shown. Times are UTC.", args
        assert result.stderr == ""
    assert len(reference("cams")) > PAGE and len(reference()) > 5 * PAGE

    # With --offset and --count: a window of the filtered list.
    expected = reference("ops")
    assert len(expected) > 550
    rows, footer = table(expect_ok(admin.ctrl("list", "--role", "ops", "--offset", "100", "--count", "450",
                                              timeout=60)).stdout)
    assert [r["Name"] for r in rows] == expected[100:550]
    assert footer == f"450 of {len(expected)} tokens shown. Times are UTC."


def test_list_with_a_filter_that_matches_nothing(admin_factory):
    admin = admin_factory(edit_state=with_roles(fleet_tokens(300)))
    for args in (["--role", "no-such-role"], ["--name-prefix", "zzz"], ["--role", "ops", "--name-prefix", "dev-0"],
                 ["--role", "CAMS"], ["--name-prefix", "x" * 200]):
        result = expect_ok(admin.ctrl("list", *args, timeout=60))
        rows, footer = table(result.stdout)
        assert rows == [], args
        assert footer == "0 of 0 tokens shown. Times are UTC.", (args, result.stdout)


def test_list_with_a_filter_the_plugin_refuses(admin_factory):
    """Bytes that are no UTF-8: the plugin's error, naming the field, exit 1."""
    admin = admin_factory()
    for option, field in (("--role", "role"), ("--name-prefix", "namePrefix")):
        result = admin.ctrl("list", option, b"ab\xffcd".decode("utf-8", "surrogateescape"), timeout=60)
        assert result.returncode == 1, str(result)
        assert field in result.stderr and result.stdout == "", str(result)


def small_reply_broker(tmp_path, tokens, max_reply_bytes):
    """A token-only broker whose replies may hold at most max_reply_bytes."""
    state = os.path.join(str(tmp_path), "tokens.json")
    init = init_state(state, "admin")
    with open(state) as f:
        document = json.load(f)
    with_tokens(tokens)(document)
    with open(state, "w") as f:
        json.dump(document, f)
    os.chmod(state, 0o600)
    broker = TokenOnlyBroker(os.path.join(str(tmp_path), "broker"), state_file=state,
                             extra_config=[f"plugin_opt_max_reply_bytes {max_reply_bytes}"])
    broker.start()
    return broker, init


def test_list_larger_than_one_reply(tmp_path):
    """A store whose list is several times plugin_opt_max_reply_bytes: one
    request for all of it (what the module did before) gets a limit error;
    the pages each fit."""
    tokens = many_tokens(3000, seed=3)
    broker, init = small_reply_broker(tmp_path, tokens, 300000)
    try:
        one_reply = run_ctrl("list", "--count", "3001", port=broker.port, username="admin", password=init.token,
                             timeout=30)
        # --count N pages too: it is a most, not a page size.
        rows, footer = table(expect_ok(one_reply).stdout)
        assert len(rows) == 3001 and footer == "3001 of 3001 tokens shown. Times are UTC."
        result = expect_ok(run_ctrl("list", port=broker.port, username="admin", password=init.token, timeout=60))
        rows, footer = table(result.stdout)
        assert len({r["Name"] for r in rows}) == len(rows) == 3001
        assert footer == "3001 of 3001 tokens shown. Times are UTC."
    finally:
        finish_broker(broker)


def test_a_page_too_large_for_the_broker_is_asked_for_in_smaller_pages(tmp_path):
    """A reply limit smaller than one page of 500 (16 KiB holds about 50
    tokens): the module halves its page until the broker answers, and still
    lists every token once, in order."""
    tokens = many_tokens(800, seed=5)
    broker, init = small_reply_broker(tmp_path, tokens, 16384)
    try:
        result = expect_ok(run_ctrl("list", port=broker.port, username="admin", password=init.token, timeout=60))
        rows, footer = table(result.stdout)
        assert len({r["Name"] for r in rows}) == len(rows) == 801
        assert footer == "801 of 801 tokens shown. Times are UTC."
    finally:
        finish_broker(broker)


# ================================================================ a stand-in for the broker
# The real broker routes $CONTROL topics only to plugins, so replies a real
# plugin would not send (silence after the first page, a stray reply, an
# error mid-way) come from a minimal MQTT 5 server here: it accepts any
# login and subscription, acknowledges each request, and answers it with
# whatever `answer(command, request number)` returns.

def _varint(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (128 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(read):
    value, shift = 0, 0
    while True:
        byte = read(1)[0]
        value += (byte & 127) << shift
        shift += 7
        if not byte & 128:
            return value


def _string(text):
    data = text.encode()
    return struct.pack("!H", len(data)) + data


class FakeBroker:
    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(connection,), daemon=True).start()

    def _session(self, connection):
        def read(n):
            data = b""
            while len(data) < n:
                chunk = connection.recv(n - len(data))
                if not chunk:
                    raise EOFError
                data += chunk
            return data
        try:
            while True:
                first = read(1)[0]
                body = read(_read_varint(read))
                kind = first >> 4
                if kind == 1:                                   # CONNECT
                    connection.sendall(b"\x20\x03\x00\x00\x00")
                elif kind == 8:                                 # SUBSCRIBE: granted QoS 1
                    connection.sendall(b"\x90\x04" + body[:2] + b"\x00\x01")
                elif kind == 3:                                 # PUBLISH, QoS 1
                    self._request(connection, body)
                elif kind == 12:                                # PINGREQ
                    connection.sendall(b"\xd0\x00")
                elif kind == 14:                                # DISCONNECT
                    break
        except (EOFError, OSError):
            pass
        connection.close()

    def _request(self, connection, body):
        topic_length = struct.unpack("!H", body[:2])[0]
        packet_id = body[2 + topic_length:4 + topic_length]
        rest = body[4 + topic_length:]
        stream = io.BytesIO(rest)
        properties = _read_varint(stream.read)
        payload = rest[len(_varint(properties)) + properties:]
        connection.sendall(b"\x40\x02" + packet_id)          # PUBACK, success
        command = json.loads(payload)["commands"][0]
        self.requests.append(command)
        for response in self.answer(command, len(self.requests)) or []:
            packet = _string("$CONTROL/tokens/v1/response") + b"\x00" + json.dumps({"responses": [response]}).encode()
            connection.sendall(b"\x30" + _varint(len(packet)) + packet)

    def stop(self):
        self.server.close()


@pytest.fixture
def fake_plugin():
    """start(answer) -> FakeBroker, stopped after the test."""
    started = []

    def start(answer):
        started.append(FakeBroker(answer))
        return started[-1]

    yield start
    for fake in started:
        fake.stop()


def fake_page(command, total):
    offset, count = command.get("offset", 0), command["count"]
    tokens = [{"name": f"t{i:05d}", "role": "r", "requestedBy": "x", "issuedAt": format_time(BASE + i),
               "validUntil": format_time(BASE + 10**8), "lastUsed": None, "hash": "%064x" % i, "status": "valid"}
              for i in range(offset, min(offset + count, total))]
    return {"command": "listTokens", "correlationData": command.get("correlationData"),
            "data": {"totalCount": total, "tokens": tokens}}


def list_from(fake, *args):
    return run_ctrl("list", *args, port=fake.port, username="admin", password="x", timeout=30)


def test_a_later_page_that_never_comes(fake_plugin):
    """The broker answered the first page: its later silence is named as
    such, not as a missing plugin, and nothing half-listed is printed."""
    fake = fake_plugin(lambda command, n: [fake_page(command, 1200)] if n == 1 else None)
    result = list_from(fake)
    expect_error(result, "Error: the broker at 127.0.0.1:%d did not answer the request for the tokens from "
                         "offset 500 within 10 s (500 of 1200 tokens had come)" % fake.port)
    assert "plugin loaded" not in result.stderr and "no reply" not in result.stderr, str(result)
    assert 9 < result.seconds < 20, str(result)
    assert [(c["count"], c.get("offset", 0)) for c in fake.requests] == [(500, 0), (500, 500)]


def test_a_first_request_nobody_answers(fake_plugin):
    fake = fake_plugin(lambda command, n: None)
    result = list_from(fake)
    expect_error(result, "Error: no reply from the broker at 127.0.0.1:%d within 10 s. Is the mosquitto_tokens "
                         "plugin loaded, and may this client publish to $CONTROL/tokens/v1 and subscribe to "
                         "$CONTROL/tokens/v1/response?" % fake.port)
    assert len(fake.requests) == 1


def test_stray_replies_are_skipped_and_an_error_mid_way_fails(fake_plugin):
    """A reply naming another request's correlationData is not the answer;
    an error response on page 3 is printed as errors are, exit 1, and the
    pages before it are not printed."""
    def answer(command, n):
        stray = dict(fake_page(command, 1700), correlationData="someone-else")
        stray["data"]["tokens"] = stray["data"]["tokens"][:1]
        if n == 3:
            return [stray, {"command": "listTokens", "correlationData": command["correlationData"],
                            "error": "Something broke", "code": "internal"}]
        return [stray, fake_page(command, 1700)]
    fake = fake_plugin(answer)
    expect_error(list_from(fake), "Error: Something broke (internal)")
    assert [c.get("offset", 0) for c in fake.requests] == [0, 500, 1000]
    assert len({c["correlationData"] for c in fake.requests}) == 3


def test_a_limit_answer_halves_the_page_until_one_fits(fake_plugin):
    """A plugin that answers `limit` to pages of more than 100 tokens: the
    module asks again with 250, 125, then 62 and goes on with that."""
    def answer(command, n):
        if command.get("count", 0) > 100:
            return [{"command": "listTokens", "correlationData": command["correlationData"],
                     "error": "Too large", "code": "limit"}]
        return [fake_page(command, 300)]
    fake = fake_plugin(answer)
    rows, footer = table(expect_ok(list_from(fake)).stdout)
    assert len(rows) == 300
    assert [c["count"] for c in fake.requests][:4] == [500, 250, 125, 62]


def test_pages_follow_a_shrinking_store_and_stop_at_an_empty_page(fake_plugin):
    """totalCount is taken from each page; an empty page ends the list."""
    totals = {1: 1400, 2: 900, 3: 5000}
    def answer(command, n):
        page = fake_page(command, totals.get(n, 0))
        if n == 3:
            page["data"]["tokens"] = []
        return [page]
    fake = fake_plugin(answer)
    rows, footer = table(expect_ok(list_from(fake)).stdout)
    assert [r["Name"] for r in rows] == [f"t{i:05d}" for i in range(900)]
    assert footer == "900 of 900 tokens shown. Times are UTC."
    assert len(fake.requests) == 2

    fake.requests.clear()
    totals.update({1: 1400, 2: 1400, 3: 5000})
    rows, footer = table(expect_ok(list_from(fake, "--count", "1234")).stdout)
    assert len(rows) == 1000 and footer == "1000 of 5000 tokens shown. Times are UTC."
    assert [c["count"] for c in fake.requests] == [500, 500, 234]


# ================================================================ under valgrind
# The paging code has its own connection and buffers: each way out (all
# pages, a later page that never comes, an error mid-way, a refused login)
# must free what it took.

@skip_without_valgrind
def test_paging_under_valgrind(admin_factory, fake_plugin, tmp_path):
    ours = OursIn("the mosquitto_ctrl module", [CTRL_MODULE], ["ctrl", "plugin"])
    reports = []

    def run(label, *args, **kwargs):
        path = str(tmp_path / f"ctrl-{len(reports)}.xml")
        result = run_ctrl("list", *args, wrapper=valgrind_command(path), timeout=120, **kwargs)
        reports.append((f"tokens list {label} (exit {result.returncode})", path))
        return result

    admin = admin_factory(edit_state=with_tokens(many_tokens(1234, seed=11)))
    login = dict(port=admin.port, username=admin.name, password=admin.token)
    rows, footer = table(expect_ok(run("(3 pages)", **login)).stdout)
    assert len(rows) == 1235
    assert len(table(expect_ok(run("--count 700", "--count", "700", **login)).stdout)[0]) == 700
    expect_error(run("(refused login)", port=admin.port, username=admin.name, password="wrong"),
                 "it refused the login")

    silent = fake_plugin(lambda command, n: [fake_page(command, 900)] if n == 1 else None)
    expect_error(run("(silent second page)", port=silent.port, username="a", password="x"),
                 "did not answer the request for the tokens from offset 500")
    failing = fake_plugin(lambda command, n: [fake_page(command, 900)] if n == 1 else [
        {"command": "listTokens", "error": "Nope", "code": "internal"}])
    expect_error(run("(error on page 2)", port=failing.port, username="a", password="x"), "Error: Nope (internal)")
    check_reports(reports, ours)
