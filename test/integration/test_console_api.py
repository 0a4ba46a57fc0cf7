"""
The web console's REST API (SPEC section 8), end to end: the real
build/mosquitto_tokens_console in front of a real broker that only token
logins get into (allow_anonymous false, an acl_file that grants nothing,
state from `mosquitto_ctrl tokens init`), spoken to with plain HTTP.

Every endpoint and every status code of the section: 200, 201, 400, 401,
403, 404, 405, 409, 413, 502, 504; every error body is
{"error": "...", "code": "..."}. The daemon must write no token on its
stdout or stderr: every test checks that after stopping it.
"""
import base64
import concurrent.futures
import http.client
import json
import os
import re
import socket
import subprocess
import time
import uuid

import pytest

from console_helpers import CONSOLE, Console, FakeBroker
from ctrl_helpers import (  # noqa: F401  (fixtures)
    ADMIN_ACLS, TOKEN_IN_TEXT, finish_broker, processes, publish, start_admin_broker,
    wait_subscribed,
)
from tokens_helpers import (
    FUTURE, check_created, check_metadata, check_token_format, format_time,
    sha256_hex, state_token, token_checksum,
)

EXPIRED = state_token("expired-bot", "admin", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z")
PAST = "2020-01-01T00:00:00Z"
MAX_BODY = 16 * 1024


@pytest.fixture(scope="session", autouse=True)
def console_built():
    if not os.access(CONSOLE, os.X_OK):
        pytest.fail(f"missing {CONSOLE} (run `make` first)", pytrace=False)


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def well_formed_unknown_token():
    """Token-shaped (SPEC section 1, checksum included) and in no store."""
    first = "mqtk_" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    token = first + token_checksum(first)
    check_token_format(token)
    return token


def new_connections(broker):
    return len(re.findall(r"New connection from", broker.log))


# ---------------------------------------------------------------- fixtures

class Setup:
    """A token-only broker with `admin` (from tokens init) and one expired
    token `expired-bot`, and the console in front of it."""

    def __init__(self, admin, console):
        self.admin = admin
        self.broker = admin.broker
        self.console = console
        self.token = admin.token

    def get(self, path, token=None, **kwargs):
        return self.console.get(path, token=self.token if token is None else token, **kwargs)

    def post(self, path, body, token=None, **kwargs):
        return self.console.post(path, body, token=self.token if token is None else token, **kwargs)

    def delete(self, path, token=None, **kwargs):
        return self.console.delete(path, token=self.token if token is None else token, **kwargs)

    def request(self, method, path, token=None, **kwargs):
        return self.console.request(method, path, token=self.token if token is None else token, **kwargs)

    def create(self, name=None, role="admin", valid_until=FUTURE, token=None):
        """POST /api/tokens that must succeed; returns the reply's data."""
        name = name or unique()
        reply = self.post("/api/tokens", {"name": name, "role": role, "validUntil": valid_until}, token=token)
        expect_json(reply, 201)
        return reply.json


def start_setup(directory):
    admin = start_admin_broker(os.path.join(directory, "env"),
                               edit_state=lambda state: state["tokens"].append(dict(EXPIRED)))
    try:
        console = Console(os.path.join(directory, "console"), admin.port).start()
    except BaseException:
        finish_broker(admin.broker)
        raise
    return Setup(admin, console)


def finish_setup(env):
    try:
        code = env.console.stop()
        env.console.check_no_secret_written()
        assert code == 0, f"the console exited with status {code}:\n{env.console.output}"
    finally:
        finish_broker(env.broker)


@pytest.fixture
def env(tmp_path):
    made = start_setup(str(tmp_path))
    yield made
    finish_setup(made)


@pytest.fixture
def fake_console(tmp_path):
    """make(FakeBroker) -> a Console pointed at it; both stopped after."""
    made = []

    def make(fake):
        console = Console(os.path.join(str(tmp_path), f"console{len(made)}"), fake.port).start()
        made.append((fake, console))
        return console

    yield make
    for fake, console in made:
        code = console.stop()
        fake.close()
        console.check_no_secret_written()
        assert code == 0, console.output


# ---------------------------------------------------------------- checkers

def expect_api_headers(reply):
    assert reply.content_type == "application/json", str(reply)
    assert reply.header("Cache-Control") == "no-store", str(reply)
    assert reply.header("X-Content-Type-Options") == "nosniff", str(reply)


def expect_json(reply, status):
    assert reply.status == status, str(reply)
    expect_api_headers(reply)
    return reply.json


def expect_error(reply, status, code=None):
    """An error reply: the status, and a body {"error": sentence, "code": word}."""
    assert reply.status == status, str(reply)
    expect_api_headers(reply)
    body = reply.json
    assert isinstance(body, dict) and set(body) == {"error", "code"}, str(reply)
    assert isinstance(body["error"], str) and body["error"], str(reply)
    assert isinstance(body["code"], str) and re.match(r"^[a-zA-Z]+$", body["code"]), str(reply)
    if code is not None:
        assert body["code"] == code, str(reply)
    assert not TOKEN_IN_TEXT.search(reply.body.decode("utf-8", "replace")), str(reply)
    return body


def rest_token(meta):
    """A token object from the REST API: `issueDate` beside `issuedAt`, the
    same value (SPEC section 8); returned without it, as the plugin sent it."""
    assert meta.get("issueDate") == meta["issuedAt"], meta
    return {k: v for k, v in meta.items() if k != "issueDate"}


def names(listing):
    return [t["name"] for t in listing["tokens"]]


# ---------------------------------------------------------------- GET /api/tokens

def test_list_tokens(env):
    data = expect_json(env.get("/api/tokens"), 200)
    assert set(data) == {"totalCount", "tokens"}
    assert data["totalCount"] == 2
    expired, admin = data["tokens"]
    check_metadata(rest_token(expired), name="expired-bot", role="admin", requested_by="init",
                   valid_until="2021-01-01T00:00:00Z", status="invalid")
    # The admin token logged in (the console's connection): lastUsed is set.
    assert admin["name"] == "admin" and admin["hash"] == env.admin.hash
    assert admin["lastUsed"] is not None
    assert admin["status"] == "valid" and admin["role"] == "admin"
    assert "token" not in admin


def test_list_tokens_filters_and_pages(env):
    created = [env.create(name) for name in ("c-one", "c-two", "c-three")]
    everything = expect_json(env.get("/api/tokens"), 200)
    assert everything["totalCount"] == 5
    assert names(everything)[:2] == ["expired-bot", "admin"]
    assert sorted(names(everything)[2:]) == ["c-one", "c-three", "c-two"]
    assert {t["hash"] for t in everything["tokens"][2:]} == {c["hash"] for c in created}

    valid = expect_json(env.get("/api/tokens?status=valid"), 200)
    assert valid["totalCount"] == 4 and "expired-bot" not in names(valid)
    invalid = expect_json(env.get("/api/tokens?status=invalid"), 200)
    assert invalid["totalCount"] == 1 and names(invalid) == ["expired-bot"]
    assert expect_json(env.get("/api/tokens?status=all"), 200) == everything

    page = expect_json(env.get("/api/tokens?count=2&offset=1"), 200)
    assert page["totalCount"] == 5
    assert names(page) == names(everything)[1:3]
    last = expect_json(env.get("/api/tokens?status=valid&count=10&offset=3"), 200)
    assert names(last) == names(valid)[3:]
    assert expect_json(env.get("/api/tokens?offset=5"), 200)["tokens"] == []


@pytest.mark.parametrize("query", ["status=bogus", "count=0", "count=-1", "offset=-1", "count=abc",
                                   "offset=", "count=1.5", "count=nan", "count=inf", "offset=1e400"])
def test_list_tokens_refuses_bad_query_values(env, query):
    expect_error(env.get(f"/api/tokens?{query}"), 400, "invalid")


# ---------------------------------------------------------------- GET /api/tokens/{hash}

def test_get_token(env):
    data = expect_json(env.get(f"/api/tokens/{sha256_hex(env.token)}"), 200)
    assert data["name"] == "admin" and data["hash"] == env.admin.hash
    assert data["role"] == "admin" and data["status"] == "valid"
    assert "token" not in data
    expired = expect_json(env.get(f"/api/tokens/{EXPIRED['hash']}"), 200)
    check_metadata(rest_token(expired), name="expired-bot", status="invalid")


def test_get_unknown_token_is_404(env):
    expect_error(env.get("/api/tokens/" + "f" * 64), 404, "notFound")


@pytest.mark.parametrize("bad", ["abc", "f" * 63, "f" * 65, "F" * 64, "g" * 64, "",
                                 "f" * 64 + "/extra", "%66" * 64])
def test_malformed_hash_is_404(env, bad):
    expect_json(env.get("/api/roles"), 200)
    connections = new_connections(env.broker)
    for method in ("GET", "DELETE"):
        expect_error(env.request(method, f"/api/tokens/{bad}"), 404, "notFound")
    assert new_connections(env.broker) == connections


# ---------------------------------------------------------------- POST /api/tokens

def test_create_token_returns_201_with_the_secret(env):
    before = time.time()
    reply = env.post("/api/tokens", {"name": "ci-bot", "role": "admin",
                                     "validUntil": "2099-01-01T02:00:00+02:00"})
    data = expect_json(reply, 201)
    secret = check_created(rest_token(data), name="ci-bot", role="admin", requested_by="admin",
                           valid_until="2099-01-01T00:00:00Z", issued_near=before)
    # Shown once: the listing and getToken never hold it.
    listing = env.get("/api/tokens").body.decode()
    assert secret not in listing
    assert secret not in env.get(f"/api/tokens/{data['hash']}").body.decode()
    assert secret not in env.broker.log
    # The new token unlocks the API itself (admin role).
    assert expect_json(env.get("/api/roles", token=secret), 200)["totalCount"] == 1


def test_created_token_logs_in_to_the_broker(env, processes):
    env.admin.role("devices", ("subscribePattern", "sensors/#", "allow"),
                   ("publishClientSend", "sensors/#", "allow"))
    data = env.create("sensor-1", role="devices")
    secret = data["token"]
    client_id = unique("sub")
    subscriber = processes.subscriber(env.broker.port, "sensor-1", secret, "sensors/x", client_id,
                                      count=1, extra=["-W", "10"])
    wait_subscribed(env.broker, client_id)
    sent = publish(env.broker.port, "sensor-1", secret, "sensors/x", "21.5")
    assert sent.returncode == 0, sent.stderr
    out, err = subscriber.communicate(timeout=15)
    assert subscriber.returncode == 0, err
    assert out == "sensors/x 21.5\n"
    assert expect_json(env.get(f"/api/tokens/{data['hash']}"), 200)["lastUsed"] is not None


@pytest.mark.parametrize("body", [
    b'{"name": "x", "role": "admin", "validUntil": ',     # cut short
    b"not json",
    b"",                                                  # no body at all
    b'{"name": "x"} trailing',
    b'\xff\xfe{"name": 1}',
], ids=["truncated", "not-json", "empty", "trailing-garbage", "bad-utf8"])
def test_create_refuses_a_body_that_is_not_json(env, body):
    error = expect_error(env.post("/api/tokens", body, headers={"Content-Type": "application/json"}),
                         400, "invalid")
    assert error["error"]
    assert expect_json(env.get("/api/tokens"), 200)["totalCount"] == 2


@pytest.mark.parametrize("body", ['["name", "role", "validUntil"]', '"ci-bot"', "42", "null", "true"])
def test_create_refuses_a_body_that_is_not_an_object(env, body):
    expect_error(env.post("/api/tokens", body), 400, "invalid")
    assert expect_json(env.get("/api/tokens"), 200)["totalCount"] == 2


@pytest.mark.parametrize("missing", ["name", "role", "validUntil"])
def test_create_refuses_a_missing_field(env, missing):
    body = {"name": "ci-bot", "role": "admin", "validUntil": FUTURE}
    del body[missing]
    error = expect_error(env.post("/api/tokens", body), 400, "invalid")
    assert missing in error["error"], error
    assert expect_json(env.get("/api/tokens"), 200)["totalCount"] == 2


@pytest.mark.parametrize("field, value", [
    ("name", 42), ("name", ""), ("name", "x" * 31), ("name", " padded"), ("name", "bell\u0007"),
    ("role", "no-such-role"), ("role", None), ("validUntil", PAST), ("validUntil", "tomorrow"),
    ("validUntil", 4102444800),
])
def test_create_refuses_a_bad_field(env, field, value):
    body = {"name": "ci-bot", "role": "admin", "validUntil": FUTURE}
    body[field] = value
    error = expect_error(env.post("/api/tokens", body), 400, "invalid")
    assert field in error["error"], error
    assert expect_json(env.get("/api/tokens"), 200)["totalCount"] == 2


def test_create_ignores_unknown_fields(env):
    body = {"name": "ci-bot", "role": "admin", "validUntil": FUTURE,
            "requestedBy": "mallory", "issuedAt": "2001-01-01T00:00:00Z", "hash": "0" * 64,
            "token": "mqtk_chosen", "lastUsed": PAST, "status": "invalid", "command": "revokeToken",
            "commands": [{"command": "deleteRole", "rolename": "admin"}], "extra": {"deep": [1, 2]}}
    data = expect_json(env.post("/api/tokens", body), 201)
    check_created(rest_token(data), name="ci-bot", role="admin", requested_by="admin", valid_until=FUTURE,
                  issued_near=time.time())
    assert data["hash"] != "0" * 64
    roles = expect_json(env.get("/api/roles"), 200)
    assert [r["rolename"] for r in roles["roles"]] == ["admin"]


def test_create_with_a_duplicate_name_is_409(env):
    first = env.create("ci-bot")
    error = expect_error(env.post("/api/tokens", {"name": "ci-bot", "role": "admin", "validUntil": FUTURE}),
                         409, "exists")
    assert "ci-bot" in error["error"] or "exists" in error["error"]
    listing = expect_json(env.get("/api/tokens"), 200)
    assert [t["hash"] for t in listing["tokens"] if t["name"] == "ci-bot"] == [first["hash"]]
    # The name of a token from the state file counts too, expired or not.
    expect_error(env.post("/api/tokens", {"name": "expired-bot", "role": "admin", "validUntil": FUTURE}),
                 409, "exists")


def test_create_with_a_body_of_exactly_16_kib(env):
    body = {"name": "big-body", "role": "admin", "validUntil": FUTURE, "padding": ""}
    body["padding"] = "p" * (MAX_BODY - len(json.dumps(body)))
    raw = json.dumps(body).encode()
    assert len(raw) == MAX_BODY
    expect_json(env.post("/api/tokens", raw), 201)


# ---------------------------------------------------------------- 413

def test_a_body_over_16_kib_is_413(env):
    body = {"name": "too-big", "role": "admin", "validUntil": FUTURE, "padding": ""}
    body["padding"] = "p" * (MAX_BODY + 1 - len(json.dumps(body)))
    raw = json.dumps(body).encode()
    assert len(raw) == MAX_BODY + 1
    expect_error(env.post("/api/tokens", raw), 413)
    expect_error(env.post("/api/tokens", b"x" * (1024 * 1024)), 413)
    assert "too-big" not in names(expect_json(env.get("/api/tokens"), 200))
    # A chunked upload is bounded the same way.
    connection = http.client.HTTPConnection("127.0.0.1", env.console.port, timeout=20)
    try:
        connection.request("POST", "/api/tokens", body=iter([raw[:10000], raw[10000:]]),
                           headers={"Authorization": f"Bearer {env.token}"}, encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 413
        response.read()
    finally:
        connection.close()
    assert "too-big" not in names(expect_json(env.get("/api/tokens"), 200))


# ---------------------------------------------------------------- DELETE /api/tokens/{hash}

def test_revoke_token_then_404(env):
    data = env.create("short-lived")
    revoked = expect_json(env.delete(f"/api/tokens/{data['hash']}"), 200)
    assert revoked == {"name": "short-lived", "hash": data["hash"], "disconnected": 0, "offlineSessionsEnded": 0}
    expect_error(env.delete(f"/api/tokens/{data['hash']}"), 404, "notFound")
    expect_error(env.get(f"/api/tokens/{data['hash']}"), 404, "notFound")
    assert "short-lived" not in names(expect_json(env.get("/api/tokens"), 200))
    assert env.broker.wait_for_log(r"revokeToken \| name=short-lived")


def test_revoke_disconnects_the_tokens_clients(env, processes):
    data = env.create("watcher")
    client_id = unique("sub")
    subscriber = processes.subscriber(env.broker.port, "watcher", data["token"],
                                      "$CONTROL/tokens/v1/response", client_id)
    wait_subscribed(env.broker, client_id)
    revoked = expect_json(env.delete(f"/api/tokens/{data['hash']}"), 200)
    assert revoked["disconnected"] == 1
    subscriber.wait(10)


# ---------------------------------------------------------------- GET /api/roles

def test_list_roles(env):
    data = expect_json(env.get("/api/roles"), 200)
    with open(env.broker.state_file) as f:
        on_disk = json.load(f)["roles"]
    assert [r["rolename"] for r in on_disk] == ["admin"]
    assert data == {"totalCount": 1, "roles": on_disk}
    for acl in ADMIN_ACLS:
        assert acl in data["roles"][0]["acls"]
    env.admin.role("devices", ("subscribePattern", "sensors/#", "allow"))
    data = expect_json(env.get("/api/roles"), 200)
    assert data["totalCount"] == 2
    assert [r["rolename"] for r in data["roles"]] == ["admin", "devices"]
    assert data["roles"][1]["acls"] == [{"acltype": "subscribePattern", "topic": "sensors/#",
                                         "priority": 0, "allow": True}]


# ---------------------------------------------------------------- 401

ENDPOINTS = [("GET", "/api/tokens"), ("GET", "/api/tokens/" + "a" * 64), ("POST", "/api/tokens"),
             ("DELETE", "/api/tokens/" + "a" * 64), ("GET", "/api/roles")]


@pytest.mark.parametrize("method, path", ENDPOINTS)
@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", "Bearer secret", "Basic YWRtaW46c2VjcmV0",
    "Bearer mqtk_", "Bearer mqtk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA00000000",
    "<admin>x", "Bearer <admin> extra", "<admin-no-bearer>",
], ids=["missing", "empty", "bearer-only", "bearer-space", "not-token", "basic", "prefix-only",
        "bad-checksum", "appended-char", "trailing-words", "no-scheme"])
def test_no_token_shaped_bearer_is_401_without_reaching_the_broker(env, method, path, authorization):
    headers = {}
    if authorization is not None:
        authorization = (authorization.replace("<admin>x", f"Bearer {env.token}x")
                         .replace("<admin-no-bearer>", env.token)
                         .replace("<admin>", env.token))
        headers["Authorization"] = authorization
    connections = new_connections(env.broker)
    body = {"name": "x", "role": "admin", "validUntil": FUTURE} if method == "POST" else None
    reply = env.console.request(method, path, body=body, headers=headers)
    expect_error(reply, 401)
    time.sleep(0.2)
    assert new_connections(env.broker) == connections, "the console connected to the broker"


def test_a_token_shaped_unknown_token_is_refused_by_the_broker(env):
    unknown = well_formed_unknown_token()
    connections = new_connections(env.broker)
    for method, path in ENDPOINTS:
        body = {"name": "x", "role": "admin", "validUntil": FUTURE} if method == "POST" else None
        expect_error(env.console.request(method, path, token=unknown, body=body), 401)
    assert new_connections(env.broker) > connections
    env.broker.wait_for_log(r"unknown token")
    assert unknown not in env.broker.log


def test_an_expired_token_is_401(env):
    """The expired-bot's secret is unknown to us, so expire a real one."""
    data = env.create("brief", valid_until=format_time(time.time() + 2))
    assert expect_json(env.get("/api/tokens", token=data["token"]), 200)["totalCount"] == 3
    time.sleep(4.5)
    expect_error(env.get("/api/tokens", token=data["token"]), 401)


def test_the_token_query_parameter_is_accepted(env):
    data = expect_json(env.console.get(f"/api/tokens?token={env.token}"), 200)
    assert data["totalCount"] == 2
    data = expect_json(env.console.get(f"/api/tokens?status=invalid&token={env.token}&count=5"), 200)
    assert names(data) == ["expired-bot"]
    expect_json(env.console.get(f"/api/roles?token={env.token}"), 200)
    expect_json(env.console.get(f"/api/tokens/{env.admin.hash}?token={env.token}"), 200)
    expect_json(env.console.post(f"/api/tokens?token={env.token}",
                                 {"name": "by-query", "role": "admin", "validUntil": FUTURE}), 201)
    expect_error(env.console.get("/api/tokens?token=nonsense"), 401)


# ---------------------------------------------------------------- 403

def test_a_role_without_the_control_topic_is_403(env):
    env.admin.role("devices", ("subscribePattern", "sensors/#", "allow"),
                   ("publishClientSend", "sensors/#", "allow"))
    device = env.create("device-1", role="devices")["token"]
    for method, path in ENDPOINTS:
        body = {"name": "x", "role": "admin", "validUntil": FUTURE} if method == "POST" else None
        expect_error(env.console.request(method, path, token=device, body=body), 403)
    listing = expect_json(env.get("/api/tokens"), 200)
    assert "x" not in names(listing)
    # The login itself worked: the device's lastUsed is set.
    device_meta = [t for t in listing["tokens"] if t["name"] == "device-1"][0]
    assert device_meta["lastUsed"] is not None


# ---------------------------------------------------------------- 404

@pytest.mark.parametrize("path", ["/api/", "/api", "/api/token", "/api/tokensx", "/api/roles/admin/",
                                  "/api/roles/", "/api/users", "/api/tokens/../roles", "/nope",
                                  "/index.htm", "/app.js.map", "/favicon.ico"])
def test_unknown_path_is_404(env, path):
    expect_error(env.get(path), 404)


def test_unknown_api_path_is_404_even_without_a_token(env):
    expect_error(env.console.get("/api/nothing-here"), 404, "notFound")


# ---------------------------------------------------------------- 405

@pytest.mark.parametrize("method, path, allowed", [
    ("PUT", "/api/tokens", {"GET", "POST"}),
    ("DELETE", "/api/tokens", {"GET", "POST"}),
    ("PATCH", "/api/tokens", {"GET", "POST"}),
    ("POST", "/api/tokens/" + "a" * 64, {"GET", "DELETE"}),
    ("PUT", "/api/tokens/" + "a" * 64, {"GET", "DELETE"}),
    ("PUT", "/api/roles", {"GET", "POST"}),
    ("DELETE", "/api/roles", {"GET", "POST"}),
    ("POST", "/", {"GET", "HEAD"}),
    ("DELETE", "/app.js", {"GET", "HEAD"}),
])
def test_a_wrong_method_is_405_with_an_allow_header(env, method, path, allowed):
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    reply = env.request(method, path, body=body)
    expect_error(reply, 405)
    allow = {m.strip() for m in (reply.header("Allow") or "").split(",") if m.strip()}
    assert allowed <= allow, str(reply)
    assert method not in allow, f"Allow lists the refused method {method}: {reply.header('Allow')}"


# ---------------------------------------------------------------- 502 and 504

def test_broker_down_is_502(env):
    expect_json(env.get("/api/tokens"), 200)          # a pooled connection exists
    env.broker.stop()
    started = time.monotonic()
    expect_error(env.get("/api/tokens"), 502)
    # A token the console never used (no pooled connection) too.
    expect_error(env.get("/api/roles", token=well_formed_unknown_token()), 502)
    assert time.monotonic() - started < 15
    # The broker comes back: the next request logs in anew.
    env.broker.start()
    assert expect_json(env.get("/api/tokens"), 200)["totalCount"] == 2


def test_nothing_listening_is_502(fake_console):
    fake = FakeBroker("silent")
    console = fake_console(fake)
    fake.close()
    expect_error(console.get("/api/tokens", token=well_formed_unknown_token()), 502)


def test_a_broker_that_never_answers_is_504(fake_console):
    fake = FakeBroker("silent")
    console = fake_console(fake)
    token = well_formed_unknown_token()
    reply = console.get("/api/tokens", token=token)
    expect_error(reply, 504)
    assert fake.connections >= 1
    assert 2.0 <= reply.seconds <= 12.0, str(reply)
    # The console did speak MQTT 5 to it: a CONNECT with the token as password.
    first, body = fake.packets[0]
    assert first == 0x10 and b"MQTT\x05" in body[:8]
    assert token.encode() in body


def test_no_reply_after_the_puback_is_504(fake_console):
    fake = FakeBroker("puback", code=0)
    console = fake_console(fake)
    reply = console.get("/api/roles", token=well_formed_unknown_token())
    expect_error(reply, 504)
    assert 2.0 <= reply.seconds <= 12.0, str(reply)
    publishes = [body for first, body in fake.packets if first >> 4 == 3]
    assert len(publishes) == 1
    assert publishes[0][2:2 + len(b"$CONTROL/tokens/v1")] == b"$CONTROL/tokens/v1"
    assert b'"listRoles"' in publishes[0]


@pytest.mark.parametrize("code, status", [(0x86, 401), (0x87, 401), (0x88, 502), (0x80, 502), (0x9F, 502)])
def test_connack_refusals(fake_console, code, status):
    console = fake_console(FakeBroker("connack", code=code))
    expect_error(console.get("/api/tokens", token=well_formed_unknown_token()), status)


@pytest.mark.parametrize("code, status", [(0x87, 403), (0x80, 502), (0x97, 502), (0x99, 502)])
def test_puback_refusals(fake_console, code, status):
    fake = FakeBroker("puback", code=code)
    console = fake_console(fake)
    expect_error(console.get("/api/tokens", token=well_formed_unknown_token()), status)
    assert [first >> 4 for first, _ in fake.packets][:2] == [1, 3]      # CONNECT, PUBLISH


@pytest.mark.parametrize("payload", [b"not json", b"{}", b'{"responses": []}', b'{"responses": [42]}'])
def test_a_reply_that_is_not_a_tokens_reply_is_502(fake_console, payload):
    console = fake_console(FakeBroker("reply", payload=payload))
    expect_error(console.get("/api/tokens", token=well_formed_unknown_token()), 502)


def test_a_refused_command_without_a_code_is_400_internal(fake_console):
    console = fake_console(FakeBroker("reply", payload=b'{"responses": [{"command": "listTokens", '
                                                        b'"error": "Something"}]}'))
    error = expect_error(console.get("/api/tokens", token=well_formed_unknown_token()), 400)
    assert error["error"] == "Something"


# ---------------------------------------------------------------- security

def test_the_page_has_its_security_headers(env):
    reply = env.console.get("/")
    assert reply.status == 200, str(reply)
    assert reply.content_type == "text/html"
    policy = reply.header("Content-Security-Policy")
    assert policy, str(reply)
    directives = {d.strip().split()[0]: d.strip().split()[1:] for d in policy.split(";") if d.strip()}
    assert directives.get("default-src") == ["'none'"], policy
    assert directives.get("script-src") == ["'self'"], policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, policy
    assert directives.get("frame-ancestors") == ["'none'"], policy
    assert reply.header("X-Content-Type-Options") == "nosniff"
    assert b"<title>" in reply.body and b'src="app.js"' in reply.body
    for path, kind in (("/app.js", "text/javascript"), ("/style.css", "text/css"),
                       ("/index.html", "text/html")):
        asset = env.console.get(path)
        assert asset.status == 200 and asset.content_type == kind, str(asset)
        assert asset.header("X-Content-Type-Options") == "nosniff"
        assert asset.body
    head = env.console.request("HEAD", "/")
    assert head.status == 200 and head.body == b""


def test_every_api_reply_has_the_api_headers(env):
    replies = [
        env.get("/api/tokens"), env.get(f"/api/tokens/{env.admin.hash}"), env.get("/api/roles"),
        env.post("/api/tokens", {"name": "h", "role": "admin", "validUntil": FUTURE}),
        env.post("/api/tokens", b"nope"), env.get("/api/tokens/" + "f" * 64),
        env.console.get("/api/tokens"), env.request("PUT", "/api/tokens"), env.get("/api/zzz"),
    ]
    for reply in replies:
        expect_api_headers(reply)


def test_the_console_writes_no_secret_to_its_output(env):
    data = env.create("secret-holder")
    env.get("/api/tokens", token=data["token"])
    env.delete(f"/api/tokens/{data['hash']}", token=data["token"])
    env.get("/api/tokens", token=data["token"])
    env.get("/api/tokens", token=well_formed_unknown_token())
    env.console.get("/api/tokens?token=" + env.token)
    for secret in (data["token"], env.token):
        assert secret not in env.console.stdout + env.console.stderr
    env.console.check_no_secret_written()
    # What it does print: the one start-up line, without secrets.
    assert env.console.stdout.splitlines() == [
        f"mosquitto_tokens_console: http://127.0.0.1:{env.console.port}/ (broker 127.0.0.1:{env.broker.port})"]


def _listening_addresses(port):
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == "0A":
                found.append(address)
    return found


def test_the_console_listens_on_loopback_by_default(tmp_path):
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(("0.0.0.0", 8088))
    except OSError:
        pytest.skip("port 8088 is in use on this machine")
    finally:
        probe.close()
    fake = FakeBroker("silent")
    console = Console(str(tmp_path), fake.port, listen=False)
    try:
        console.start()
        assert console.stdout.startswith(f"mosquitto_tokens_console: http://127.0.0.1:8088/ (broker 127.0.0.1:{fake.port})")
        assert _listening_addresses(8088) == ["0100007F"]
        assert console.get("/").status == 200
    finally:
        console.stop()
        fake.close()


def test_usage_names_the_defaults():
    done = subprocess.run([CONSOLE, "--help"], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0
    assert "--listen 127.0.0.1:8088" in done.stdout and "--broker 127.0.0.1:1883" in done.stdout
    done = subprocess.run([CONSOLE, "--listen", "nonsense"], capture_output=True, text=True, timeout=10)
    assert done.returncode == 2 and "--listen" in done.stderr


# ---------------------------------------------------------------- revoked callers

def test_a_revoked_caller_gets_401(env):
    other = env.create("other-admin")
    assert expect_json(env.get("/api/tokens", token=other["token"]), 200)["totalCount"] == 3   # pooled
    revoked = expect_json(env.delete(f"/api/tokens/{other['hash']}"), 200)
    assert revoked["disconnected"] == 1          # the console's pooled connection
    expect_error(env.get("/api/tokens", token=other["token"]), 401)
    expect_error(env.get("/api/roles", token=other["token"]), 401)
    assert expect_json(env.get("/api/tokens"), 200)["totalCount"] == 2


def test_revoking_your_own_token_then_401(env):
    mine = env.create("self-revoker")
    revoked = expect_json(env.delete(f"/api/tokens/{mine['hash']}", token=mine["token"]), 200)
    assert revoked["name"] == "self-revoker" and revoked["disconnected"] == 1
    expect_error(env.get("/api/tokens", token=mine["token"]), 401)
    env.broker.wait_for_log(r"tokens: self-revoker \| revokeToken \| name=self-revoker")


def test_tokens_are_served_in_parallel(env):
    """Different tokens have their own connections; one's slowness (a
    504 on another broker) does not matter here, but many at once must
    all get their answers."""
    tokens = [env.create(f"p-{i}")["token"] for i in range(4)] + [env.token]
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        futures = [pool.submit(env.get, "/api/roles", token) for token in tokens * 4]
        replies = [f.result() for f in futures]
    for reply in replies:
        assert expect_json(reply, 200)["totalCount"] == 1
