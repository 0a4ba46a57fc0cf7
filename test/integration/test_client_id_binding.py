"""
Tokens bound to a client id (issue 17; SPEC sections 2, 4, 5, 7 and 8): a
token created with `clientId` logs in only on a connection with exactly
that client id, whichever of its secrets is used (the current one, or the
previous one during a rotation's grace period), and keeps that binding
through a rotation, a clean restart (the snapshot), a crash (the journal's
replay) and the restore of a persistent session; `mosquitto_ctrl tokens
create ... --client-id` and the console's REST API create such tokens.

An attacker with the secret of a token bound to client id X gets nothing
with any other client id: every refusal is a refused CONNACK and one log
line in the SPEC section 2 form, counted in logins/refused.
"""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from access_helpers import Device, MosquittoSub, acl, attempt_login, make_role, refused, reload
from events_metrics_helpers import ACL_WITH_SYS, EventWatcher, mosquitto_persistence, wait_metrics
from console_helpers import CONSOLE, Console
from ctrl_helpers import (  # noqa: F401  (admin_factory is a fixture)
    CLIENT_ID_COLUMN, admin_factory, expect_error, expect_usage_error, fields, finish_broker, start_admin_broker,
    table, the_token,
)
from session_helpers import expected, keep, publish_all, queued_before_marker, token_session  # noqa: F401  (keep is a fixture)
from tokens_helpers import (
    FUTURE, MOSQUITTO_PUB, TIMEOUT, V5, V311, check_created, check_metadata, check_rotated, mosquitto_env,
)

FAIL2BAN_FILTER = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "fail2ban", "filter.d",
                               "mosquitto-tokens.conf")
PROTOCOLS = pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])

BOUND_ID = "boiler-7-dev"
OTHER_IDS = ["intruder", "boiler-7", "boiler-7-dev-2", "Boiler-7-dev"]
# The role "dev" may publish and subscribe under d/.
DEV_ACLS = [acl("publishClientSend", "d/#"), acl("subscribePattern", "d/#")]


def refusal_line(client_id, name="boiler-7"):
    """The broker log line of a login refused for its client id (SPEC
    section 2's form: address, client id, reason)."""
    return f"tokens: refused login from 127.0.0.1 client {client_id}: client id not allowed for token {name}"


def refusals(broker, client_id, name="boiler-7"):
    return broker.log.count(refusal_line(client_id, name))


def create_bound(admin, name="boiler-7", client_id=BOUND_ID, role="dev"):
    """createToken with clientId; checks the data, returns (secret, data)."""
    data = admin.call("createToken", name=name, role=role, validUntil=FUTURE, clientId=client_id)
    secret = check_created(data, name=name, role=role, valid_until=FUTURE, client_id=client_id)
    return secret, data


def get_token(admin, name="boiler-7"):
    return admin.call("getToken", name=name)


def mosquitto_pub(port, client_id, username, password, topic="d/x", message="1"):
    """mosquitto_pub -i client_id over MQTT 3.1.1 (a refused CONNACK makes
    it fail)."""
    return subprocess.run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(port), "-V", "311", "-q", "1",
                           "-i", client_id, "-u", username, "-P", password, "-t", topic, "-m", message],
                          capture_output=True, text=True, timeout=TIMEOUT * 2, stdin=subprocess.DEVNULL,
                          env=mosquitto_env())


def assert_bound(broker, secret, name="boiler-7", client_id=BOUND_ID, protocol=V5):
    """The secret logs in with client_id, and with no other client id."""
    assert attempt_login(broker.port, name, secret, protocol, client_id=client_id) == 0
    for other in OTHER_IDS:
        before = refusals(broker, other, name)
        assert refused(protocol, attempt_login(broker.port, name, secret, protocol, client_id=other)), other
        broker.wait_for_log(re.escape(refusal_line(other, name)))
        assert refusals(broker, other, name) == before + 1


@pytest.fixture
def metered(broker_factory):
    """A broker whose $SYS metrics an anonymous scraper may read, refreshed
    each second."""
    return broker_factory(acl=ACL_WITH_SYS, extra_config=["plugin_opt_metrics_interval 1"])


# ================================================================ logging in

@PROTOCOLS
def test_a_bound_token_logs_in_with_its_client_id_only(metered, make_client, protocol, keep):
    admin = make_client(broker=metered)
    make_role(admin, "dev", DEV_ACLS)
    secret, _ = create_bound(admin)
    free = admin.call("createToken", name="free", role="dev", validUntil=FUTURE)

    dev = keep(Device(metered.port, protocol=protocol, client_id=BOUND_ID, username="boiler-7", password=secret))
    assert dev.publish_code("d/boiler", "21.5") == 0
    rcs = {other: attempt_login(metered.port, "boiler-7", secret, protocol, client_id=other) for other in OTHER_IDS}
    assert all(refused(protocol, rc) for rc in rcs.values()), rcs
    for other in OTHER_IDS:
        metered.wait_for_log(re.escape(refusal_line(other)))
    # One line each, and never the secret; the connection with the right id is untouched.
    assert [refusals(metered, other) for other in OTHER_IDS] == [1] * len(OTHER_IDS)
    assert secret not in metered.log
    assert dev.is_connected
    assert dev.publish_code("d/boiler", "still here") == 0
    # An unbound token logs in with any client id.
    for client_id in ("free-1", BOUND_ID + "-x"):
        assert attempt_login(metered.port, "free", free["token"], protocol, client_id=client_id) == 0
    # Refusals are counted like any refused token login.
    wait_metrics(metered.port, {"logins/refused": len(OTHER_IDS), "logins/accepted": 3})


def test_mosquitto_pub_and_sub_with_bound_tokens(broker, admin):
    """A bound subscriber gets what a bound publisher sends; the publisher's
    secret with the subscriber's client id (a takeover of its session) or
    any other is refused, and the subscriber stays."""
    make_role(admin, "dev", DEV_ACLS)
    sub_secret, _ = create_bound(admin)
    pub_secret, _ = create_bound(admin, name="pub-7", client_id="pub-7-dev")
    sub = MosquittoSub(broker.port, "d/#", username="boiler-7", password=sub_secret, extra=["-i", BOUND_ID])
    try:
        sub.wait_subscribed()
        for client_id in (BOUND_ID, "pub-7"):
            wrong = mosquitto_pub(broker.port, client_id, "pub-7", pub_secret, "d/boiler", "spoofed")
            assert wrong.returncode != 0 and "not authorised" in wrong.stderr.lower(), wrong
            broker.wait_for_log(re.escape(refusal_line(client_id, "pub-7")))
        right = mosquitto_pub(broker.port, "pub-7-dev", "pub-7", pub_secret, "d/boiler", "21.5")
        assert right.returncode == 0, right.stderr
        assert sub.wait_message("d/boiler 21.5"), sub.output()
    finally:
        sub.stop()
    assert not any("spoofed" in line for line in sub.messages())
    assert [line for line in sub.messages() if line.startswith("d/")] == ["d/boiler 21.5"]


@pytest.mark.skipif(shutil.which("fail2ban-regex") is None, reason="fail2ban is not installed (make deps)")
def test_the_fail2ban_filter_finds_the_refusals(broker, admin, tmp_path):
    """A stolen secret tried from other client ids is a refused login like
    any other for a log watcher: every one is matched, with its address."""
    make_role(admin, "dev", DEV_ACLS)
    secret, _ = create_bound(admin)
    for other in OTHER_IDS:
        attempt_login(broker.port, "boiler-7", secret, client_id=other)
    assert attempt_login(broker.port, "boiler-7", secret, client_id=BOUND_ID) == 0
    for other in OTHER_IDS:
        broker.wait_for_log(re.escape(refusal_line(other)))
    log = tmp_path / "mosquitto.log"
    log.write_text("".join(line + "\n" for line in broker.log_lines()))
    run = subprocess.run(["fail2ban-regex", "--print-all-matched", str(log), os.path.abspath(FAIL2BAN_FILTER)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    matched = re.search(r"Lines: \d+ lines, \d+ ignored, (\d+) matched", run.stdout)
    assert matched and int(matched.group(1)) == len(OTHER_IDS), run.stdout


def test_another_client_id_gets_nothing_while_the_bound_one_is_connected_and_after_a_reload(broker, admin, keep):
    """No session takeover, no re-check: the SIGHUP re-check keeps the bound
    connection and refuses nothing new; the secret still logs in nowhere
    else."""
    make_role(admin, "dev", DEV_ACLS)
    secret, _ = create_bound(admin)
    dev = keep(Device(broker.port, client_id=BOUND_ID, username="boiler-7", password=secret))
    assert refused(V5, attempt_login(broker.port, "boiler-7", secret, V5, client_id="intruder"))
    reload(broker)
    assert dev.is_connected
    assert dev.publish_code("d/after-reload", "1") == 0
    assert refused(V311, attempt_login(broker.port, "boiler-7", secret, V311, client_id="intruder"))
    assert refusals(broker, "intruder") == 2
    # The bound client taking its own session over works.
    again = keep(Device(broker.port, client_id=BOUND_ID, username="boiler-7", password=secret))
    assert again.publish_code("d/again", "1") == 0


# ================================================================ metadata, rotation, events

def test_metadata_listing_and_events_carry_the_client_id(broker, admin):
    make_role(admin, "dev", DEV_ACLS)
    with EventWatcher(broker.port) as watcher:
        _, data = create_bound(admin)
        free = admin.call("createToken", name="free", role="dev", validUntil=FUTURE)
        assert "clientId" not in free
        check_metadata(get_token(admin), name="boiler-7", client_id=BOUND_ID)
        check_metadata(admin.call("getToken", hash=data["hash"]), name="boiler-7", client_id=BOUND_ID)
        listed = {t["name"]: t for t in admin.call("listTokens")["tokens"]}
        assert listed["boiler-7"]["clientId"] == BOUND_ID
        assert "clientId" not in listed["free"]
        created = watcher.wait_for("tokenCreated", name="boiler-7")
        assert created["clientId"] == BOUND_ID
        assert "clientId" not in watcher.wait_for("tokenCreated", name="free")
    broker.wait_for_log(re.escape("| createToken | name=boiler-7 role=dev hash=") + r"[0-9a-f]{64} clientId=boiler-7-dev")


def test_bad_client_ids_are_refused_and_change_nothing(broker_factory, make_client):
    # Room in a request for a client id one byte over the limit.
    broker = broker_factory(extra_config=["plugin_opt_max_request_bytes 200000"])
    admin = make_client(broker=broker)
    make_role(admin, "dev", DEV_ACLS)
    before = admin.call("listTokens")
    state_before = broker.state_bytes()
    for bad in ["", "a+b", "#", "site/boiler-7", "a\u0000b", "tab\there", "x" * 65536, 7, None]:
        response = admin.request([{"command": "createToken", "name": "bad", "role": "dev",
                                   "validUntil": FUTURE, "clientId": bad}])[0]
        assert response.get("code") == "invalid", (bad if not isinstance(bad, str) else bad[:20], response)
        assert "'clientId'" in response["error"], response
        assert "data" not in response
    # Invalid UTF-8, raw in the payload (json.dumps would escape it).
    raw = (b'{"commands": [{"command": "createToken", "name": "bad", "role": "dev", "validUntil": "'
           + FUTURE.encode() + b'", "clientId": "\xc3\x28"}]}')
    response = admin.request_raw(raw)["responses"][0]
    assert response.get("code") == "invalid" and "'clientId'" in response["error"], response
    assert admin.call("listTokens") == before
    assert broker.state_bytes() == state_before


def test_rotation_keeps_the_binding_for_the_new_and_the_old_secret(broker, admin):
    make_role(admin, "dev", DEV_ACLS)
    old_secret, _ = create_bound(admin)
    before = get_token(admin)
    with EventWatcher(broker.port) as watcher:
        asked = time.time()
        data = admin.call("rotateToken", name="boiler-7", graceSeconds=600)
        new_secret = check_rotated(data, before, requested_by=admin.client_id, issued_near=asked,
                                   previous_valid_until=asked + 600)
        rotated = watcher.wait_for("tokenRotated", name="boiler-7")
        assert rotated["clientId"] == BOUND_ID
    shown = get_token(admin)
    assert shown["clientId"] == BOUND_ID and "previousValidUntil" in shown
    assert_bound(broker, new_secret)
    # The old secret in its grace period: bound the same.
    assert_bound(broker, old_secret, protocol=V311)
    assert "unknown token" not in broker.log


# ================================================================ restarts

def test_the_binding_survives_a_clean_restart(broker, admin, make_client):
    make_role(admin, "dev", DEV_ACLS)
    secret, data = create_bound(admin)
    admin.close()
    assert broker.stop() == 0
    # A stopped broker's state is the snapshot alone: the token line holds it.
    assert not os.path.exists(broker.journal_file)
    with open(broker.state_file) as f:
        saved = [t for t in json.load(f)["tokens"] if t["name"] == "boiler-7"]
    assert [t["clientId"] for t in saved] == [BOUND_ID]
    broker.start()
    check_metadata(get_token(make_client(broker=broker)), name="boiler-7", client_id=BOUND_ID)
    assert_bound(broker, secret)


def test_the_binding_survives_a_crash_through_the_journal(broker, admin, make_client):
    """kill -9 right after the create, then after a rotation with grace:
    the journal's lines carry the binding and its replay keeps it, for both
    secrets."""
    make_role(admin, "dev", DEV_ACLS)
    first, _ = create_bound(admin)
    admin.close()
    broker.kill()
    with open(broker.journal_file) as f:
        created = [json.loads(line) for line in f if '"createToken"' in line]
    assert [c["token"].get("clientId") for c in created] == [BOUND_ID]
    broker.start()
    assert_bound(broker, first)

    admin = make_client(broker=broker)
    second = admin.call("rotateToken", name="boiler-7", graceSeconds=600)["token"]
    admin.close()
    broker.kill()
    broker.start()
    assert_bound(broker, second)
    assert_bound(broker, first, protocol=V311)
    shown = get_token(make_client(broker=broker))
    assert shown["clientId"] == BOUND_ID and "previousValidUntil" in shown


@PROTOCOLS
def test_a_persistent_session_restored_after_a_restart_stays_bound(broker_factory, tmp_path, keep, protocol):
    """The broker restores the bound client's session (persistence true) and
    the plugin its binding: what the role lets it read is queued for it
    meanwhile. Its secret still opens no other client id."""
    mosquitto_db = os.path.join(str(tmp_path), "mosquitto-db")
    os.makedirs(mosquitto_db)
    broker = broker_factory(extra_config=mosquitto_persistence(mosquitto_db))
    with broker.client() as admin:
        make_role(admin, "dev", DEV_ACLS)
        secret, _ = create_bound(admin)
    dev = token_session(broker, "boiler-7", secret, protocol, client_id=BOUND_ID)
    assert dev.subscribe_code("d/#", qos=1) == 1
    dev.leave()
    assert broker.stop() == 0
    with open(broker.state_file) as f:
        sessions = json.load(f).get("sessions", [])
    assert [s["clientId"] for s in sessions] == [BOUND_ID]
    broker.start()

    publisher = keep(Device(broker.port))
    meanwhile = [("d/after-start", "queued for the restored session", 1)]
    publish_all(publisher, meanwhile)
    assert refused(protocol, attempt_login(broker.port, "boiler-7", secret, protocol, client_id="intruder"))
    back = keep(token_session(broker, "boiler-7", secret, protocol, client_id=BOUND_ID))
    assert back.session_present, "the broker did not restore the session"
    assert queued_before_marker(publisher, back) == expected(meanwhile)


# ================================================================ mosquitto_ctrl

def test_mosquitto_ctrl_creates_a_bound_token_and_shows_it(admin_factory):
    admin = admin_factory()
    admin.role("sensors", ("publishClientSend", "d/#", "allow"))
    result = admin.ok("create", "thermo-1", "sensors", "30d", "--client-id", "thermo-1-dev")
    secret = the_token(result.stdout)
    shown = fields(result.stdout)
    assert shown["Client id"] == "thermo-1-dev"
    assert shown["Name"] == "thermo-1"
    # The login example uses it.
    assert "mosquitto_sub -i 'thermo-1-dev' -u 'thermo-1' -P '<token>'" in result.stdout

    got = fields(admin.ok("get", "thermo-1").stdout)
    assert got["Client id"] == "thermo-1-dev"
    assert "Client id" not in fields(admin.ok("get", "admin").stdout)
    rows, footer = table(admin.ok("list").stdout)
    assert {r["Name"]: r.get(CLIENT_ID_COLUMN) for r in rows} == {"admin": "", "thermo-1": "thermo-1-dev"}
    assert footer == "2 of 2 tokens shown. Times are UTC."

    assert mosquitto_pub(admin.port, "thermo-1-dev", "thermo-1", secret).returncode == 0
    wrong = mosquitto_pub(admin.port, "thermo-2-dev", "thermo-1", secret)
    assert wrong.returncode != 0, wrong
    admin.broker.wait_for_log(re.escape(refusal_line("thermo-2-dev", "thermo-1")))

    # The option may come first; the plugin judges the value.
    expect_error(admin.ctrl("create", "--client-id", "site/7", "thermo-2", "sensors", "1d"),
                 "Error: Field 'clientId' must not hold '+', '#' or '/'")
    expect_usage_error(admin.ctrl("create", "thermo-2", "sensors", "1d", "--client-id"), "--client-id")
    expect_usage_error(admin.ctrl("create", "thermo-2", "sensors", "--client-id", "x"),
                       "Usage: mosquitto_ctrl [options] tokens create ")
    assert [r["Name"] for r in table(admin.ok("list").stdout)[0]] == ["admin", "thermo-1"]


def test_mosquitto_ctrl_list_without_bound_tokens_keeps_the_seed_columns(admin_factory):
    admin = admin_factory()
    admin.create("plain", "admin")
    header = admin.ok("list").stdout.splitlines()[0]
    assert CLIENT_ID_COLUMN not in header


# ================================================================ the REST API

@pytest.fixture
def console_env(tmp_path):
    if not os.access(CONSOLE, os.X_OK):
        pytest.fail(f"missing {CONSOLE} (run `make` first)", pytrace=False)
    admin = start_admin_broker(os.path.join(str(tmp_path), "env"))
    try:
        console = Console(os.path.join(str(tmp_path), "console"), admin.port).start()
    except BaseException:
        finish_broker(admin.broker)
        raise
    yield admin, console
    try:
        code = console.stop()
        console.check_no_secret_written()
        assert code == 0, console.output
    finally:
        finish_broker(admin.broker)


def test_the_rest_api_creates_and_shows_bound_tokens(console_env):
    admin, console = console_env
    token = admin.token
    reply = console.post("/api/tokens", {"name": "cam-7", "role": "admin", "validUntil": FUTURE,
                                         "clientId": "cam-7-dev"}, token=token)
    assert reply.status == 201, str(reply)
    data = reply.json
    # The REST API adds issueDate, issuedAt's value under the seed console's name.
    assert data.pop("issueDate") == data["issuedAt"]
    secret = check_created(data, name="cam-7", role="admin", valid_until=FUTURE, client_id="cam-7-dev")
    assert console.get(f"/api/tokens/{data['hash']}", token=token).json["clientId"] == "cam-7-dev"
    listed = {t["name"]: t for t in console.get("/api/tokens", token=token).json["tokens"]}
    assert listed["cam-7"]["clientId"] == "cam-7-dev" and "clientId" not in listed["admin"]
    assert attempt_login(admin.port, "cam-7", secret, client_id="cam-7-dev") == 0
    assert refused(V5, attempt_login(admin.port, "cam-7", secret, client_id="cam-8-dev"))

    # Bad values: 400 invalid, naming the field, nothing created. The NUL
    # is sent as JSON's escape, which a JSON parser would cut the string at.
    for body in ['{"name": "x", "role": "admin", "validUntil": "%s", "clientId": "a#"}' % FUTURE,
                 '{"name": "x", "role": "admin", "validUntil": "%s", "clientId": ""}' % FUTURE,
                 '{"name": "x", "role": "admin", "validUntil": "%s", "clientId": "cam\\u0000-7"}' % FUTURE,
                 '{"name": "x", "role": "admin", "validUntil": "%s", "clientId": 7}' % FUTURE]:
        reply = console.post("/api/tokens", body, token=token, headers={"Content-Type": "application/json"})
        assert reply.status == 400, (body, str(reply))
        assert reply.json["code"] == "invalid" and "'clientId'" in reply.json["error"], (body, reply.json)
    # A raw NUL byte is not JSON at all: refused whole, never cut to "cam".
    body = ('{"name": "x", "role": "admin", "validUntil": "%s", "clientId": "cam\x00-7"}' % FUTURE).encode()
    reply = console.post("/api/tokens", body, token=token, headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.json["code"] == "invalid", str(reply)
    assert [t["name"] for t in console.get("/api/tokens", token=token).json["tokens"]] == ["admin", "cam-7"]
