"""
The broker under valgrind's memcheck, with the plugin loaded, used the way
an operator and devices use it: roles and tokens made through the control
topic, logins (good, malformed, unknown, revoked, expired), publishes and
subscriptions allowed and denied by role, rotation with a grace period,
revocation of a connected token, listing, events, metrics, the configured
limits, malformed requests, a reload, then a clean stop (SIGTERM) that folds
the journal. A second run loads that state, and a third replays a journal.

After each run, valgrind's report must hold no error (invalid access, use of
uninitialised memory, definite or indirect leak) with a frame in the plugin.
What it reports against mosquitto or the libraries alone is not ours to fix:
it is printed (pytest -s shows it) and given as a warning.

The tests share one broker and run in order; the last one stops it and reads
the report.
"""
import json
import os
import shutil
import signal
import time
import types

import pytest

from access_helpers import (
    NOT_AUTHORIZED, Device, acl, attempt_login, device, forge_token, issue,
    issue_short_lived, make_role, refused, wait_until,
)
from events_metrics_helpers import ACL_WITH_SYS, EventWatcher, read_metrics
from tokens_helpers import (
    FUTURE, PLUGIN, V5, V311, Broker, format_time, response_properties,
)
from valgrind_helpers import OursIn, check_reports, skip_without_valgrind, valgrind_command

PLUGIN_CODE = OursIn("the plugin", [PLUGIN], ["plugin"])
pytestmark = skip_without_valgrind

# Everything is 10 to 50 times slower under valgrind; these are waits for
# something that must happen, not measurements.
SLOW = 30.0
DAY = 86400

# Small limits, so that reaching them takes a few commands.
MAX_COMMANDS = 20
MAX_TOKENS = 12
MAX_ACLS = 5
MAX_TOPIC_BYTES = 64
MAX_REQUEST_BYTES = 4096

def valgrind_broker(directory, **kwargs):
    return Broker(directory, wrapper=valgrind_command(f"{directory}/valgrind-%p.xml"), start_timeout=SLOW,
                  stop_timeout=120.0,
                  acl=ACL_WITH_SYS, users={"alice": "alice-password"},
                  extra_config=["plugin_opt_metrics_interval 1",
                                f"plugin_opt_max_commands {MAX_COMMANDS}",
                                f"plugin_opt_max_tokens {MAX_TOKENS}",
                                f"plugin_opt_max_acls_per_role {MAX_ACLS}",
                                f"plugin_opt_max_topic_bytes {MAX_TOPIC_BYTES}",
                                f"plugin_opt_max_request_bytes {MAX_REQUEST_BYTES}",
                                "plugin_opt_last_used_save_interval 1"],
                  **kwargs)


# ---------------------------------------------------------------- the report

def check_report(broker, pid):
    """Fails on every error of ours in the run with that pid; prints the rest."""
    path = os.path.join(broker.directory, f"valgrind-{pid}.xml")
    assert os.path.exists(path), f"no valgrind report {path}:\n{broker.log[-3000:]}"
    check_reports([(f"run {pid}", path)], PLUGIN_CODE)


def stop_and_check(broker):
    pid = broker.process.pid
    code = broker.stop()
    assert code == 0, f"mosquitto exited with status {code}:\n{broker.log[-3000:]}"
    check_report(broker, pid)


# ---------------------------------------------------------------- shared broker

@pytest.fixture(scope="module")
def vg(tmp_path_factory):
    """The broker under valgrind, an admin client and an event watcher."""
    broker = valgrind_broker(str(tmp_path_factory.mktemp("valgrind")))
    broker.start()
    shared = types.SimpleNamespace(broker=broker, admin=broker.client(), events=EventWatcher(broker.port),
                                   devices=[], secrets={})

    def make_device(*args, **kwargs):
        kwargs.setdefault("subscribe_response", False)
        shared.devices.append(device(broker, *args, **kwargs))
        return shared.devices[-1]

    shared.device = make_device
    yield shared
    for d in shared.devices:
        d.close()
    shared.events.close()
    shared.admin.close()
    broker.stop()


def codes(responses):
    return [r.get("code") for r in responses]


def test_roles(vg):
    admin = vg.admin
    make_role(admin, "dev", [acl("publishClientSend", "d/#"), acl("subscribePattern", "d/#"),
                             acl("publishClientReceive", "d/secret", allow=False, priority=5)])
    admin.call("addRoleACL", rolename="dev", acltype="subscribeLiteral", topic="lit/x", allow=True)
    make_role(admin, "spare", [acl("unsubscribePattern", "x/#", allow=False)])
    admin.call("addRoleACL", rolename="spare", acltype="publishClientSend", topic="x/+/y", priority=3,
               allow=True)
    admin.call("removeRoleACL", rolename="spare", acltype="unsubscribePattern", topic="x/#")
    role = admin.call("getRole", rolename="dev")
    assert [a["acltype"] for a in role["acls"]] == ["publishClientSend", "publishClientReceive",
                                                    "subscribeLiteral", "subscribePattern"]
    listed = admin.call("listRoles")
    assert listed["totalCount"] == 2
    admin.call("deleteRole", rolename="spare")
    assert admin.call("listRoles")["totalCount"] == 1

    too_many = admin.request([dict(command="addRoleACL", rolename="dev", acltype="unsubscribeLiteral",
                                   topic="u/1", allow=True)] * 2)
    assert codes(too_many) == [None, "limit"], too_many
    long_topic = admin.request([dict(command="createRole", rolename="long",
                                     acls=[acl("publishClientSend", "t/" + "a" * MAX_TOPIC_BYTES)])])
    assert codes(long_topic) == ["limit"], long_topic
    missing = admin.request([dict(command="getRole", rolename="nobody"),
                             dict(command="createRole", rolename="dev")])
    assert codes(missing) == ["notFound", "exists"], missing


def test_tokens_and_logins(vg):
    admin, broker = vg.admin, vg.broker
    for name in ("dev-1", "dev-2", "dev-3"):
        vg.secrets[name], _ = issue(admin, name, "dev", format_time(time.time() + 30 * DAY))
    # Inside the expiry warning window at once: a tokenExpiring event.
    vg.secrets["soon"], _ = issue(admin, "soon", "dev", format_time(time.time() + 2 * DAY))
    assert admin.request([dict(command="deleteRole", rolename="dev")])[0]["code"] == "inUse"

    listing = admin.call("listTokens", status="valid", count=2, offset=1)
    assert listing["totalCount"] == 4 and len(listing["tokens"]) == 2
    assert admin.call("getToken", name="dev-1")["role"] == "dev"

    d5 = vg.device("dev-1", vg.secrets["dev-1"], client_id="dev-1-v5")
    d3 = vg.device("dev-1", vg.secrets["dev-1"], protocol=V311, client_id="dev-1-v311")
    assert d5.is_connected and d3.is_connected
    typo = vg.secrets["dev-1"][:-1] + ("1" if vg.secrets["dev-1"][-1] == "0" else "0")
    assert refused(V5, attempt_login(broker.port, "dev-1", typo, timeout=SLOW))
    assert refused(V5, attempt_login(broker.port, "dev-1", forge_token(), timeout=SLOW))
    assert refused(V311, attempt_login(broker.port, "x", "mqtk_short", protocol=V311, timeout=SLOW))
    # Not a token: left to the broker's password_file.
    assert attempt_login(broker.port, "alice", "alice-password", timeout=SLOW) == 0
    assert refused(V5, attempt_login(broker.port, "alice", "wrong-password", timeout=SLOW))
    broker.wait_for_log("malformed token")
    broker.wait_for_log("unknown token")
    assert admin.call("getToken", name="dev-1")["lastUsed"] is not None


def test_access_by_role(vg):
    d = vg.device("dev-2", vg.secrets["dev-2"], client_id="dev-2-a")
    assert d.subscribe_code("d/#") in (0, 1)
    assert d.subscribe_code("lit/x") in (0, 1)
    assert d.subscribe_code("e/#") == NOT_AUTHORIZED
    assert d.unsubscribe_code("d/#") == 0
    assert d.subscribe_code("d/+") in (0, 1)
    assert d.publish_code("d/open", "hello") == 0
    assert d.publish_code("e/closed", "no") == NOT_AUTHORIZED
    assert d.publish_code("d/secret", "not delivered to a dev") == 0
    assert d.publish_code("d/marker", "last") == 0
    seen = d.expect("d/marker", "last", timeout=SLOW)
    assert ("d/open", b"hello") in seen
    assert ("d/secret", b"not delivered to a dev") not in seen


def test_takeover_and_withdrawn_right(vg):
    """A token with no rights takes over a dev-1 session that holds d/#
    (issue 12): it receives nothing there. Then dev loses its right to a
    subtree, and dev-1's live subscription stops delivering it."""
    admin = vg.admin
    make_role(admin, "nothing")
    vg.secrets["nobody"], _ = issue(admin, "nobody", "nothing")
    victim = vg.device("dev-1", vg.secrets["dev-1"], protocol=V311, client_id="taken", clean_session=False)
    assert victim.subscribe_code("d/#") in (0, 1)
    thief = vg.device("nobody", vg.secrets["nobody"], protocol=V311, client_id="taken", clean_session=False)
    assert victim.wait_disconnected(SLOW), "the taken-over session's connection stayed open"
    watcher = vg.device("dev-1", vg.secrets["dev-1"], client_id="dev-1-watch")
    assert watcher.subscribe_code("d/#") in (0, 1)
    assert watcher.publish_code("d/taken", "not for the thief") == 0
    watcher.expect("d/taken", "not for the thief", timeout=SLOW)
    stolen = [m.topic for m in thief.drain(1.0) if m.topic.startswith("d/")]
    assert stolen == [], f"the session taken over by a token without rights received {stolen}"
    # The role is at the ACL limit: make room, then put it back.
    admin.call("removeRoleACL", rolename="dev", acltype="subscribeLiteral", topic="lit/x")
    admin.call("addRoleACL", rolename="dev", acltype="subscribePattern", topic="d/hidden/#", priority=9,
               allow=False)
    assert watcher.publish_code("d/hidden/x", "withdrawn") == 0
    assert watcher.publish_code("d/shown", "marker") == 0
    seen = watcher.expect("d/shown", "marker", timeout=SLOW)
    assert ("d/hidden/x", b"withdrawn") not in seen
    admin.call("removeRoleACL", rolename="dev", acltype="subscribePattern", topic="d/hidden/#")
    admin.call("addRoleACL", rolename="dev", acltype="subscribeLiteral", topic="lit/x", allow=True)
    # The later tests count tokens and roles.
    admin.call("revokeToken", name="nobody")
    assert thief.wait_disconnected(SLOW)
    admin.call("deleteRole", rolename="nothing")


def test_rotation_with_grace(vg):
    admin = vg.admin
    old = vg.device("dev-3", vg.secrets["dev-3"], client_id="dev-3-old")
    data = admin.call("rotateToken", name="dev-3", graceSeconds=8)
    assert "previousValidUntil" in data
    assert old.is_connected, "the old secret's connection was closed during its grace period"
    assert attempt_login(vg.broker.port, "dev-3", vg.secrets["dev-3"], timeout=SLOW) == 0, \
        "the old secret was refused during its grace period"
    new = vg.device("dev-3", data["token"], client_id="dev-3-new")
    assert old.wait_disconnected(SLOW), "the old secret's connection outlived its grace period"
    assert new.is_connected
    assert refused(V5, attempt_login(vg.broker.port, "dev-3", vg.secrets["dev-3"], timeout=SLOW))
    vg.secrets["dev-3"] = data["token"]
    vg.events.wait_for("tokenRotated", name="dev-3", timeout=SLOW)


def test_revoke_while_connected(vg):
    d = vg.device("dev-2", vg.secrets["dev-2"], client_id="dev-2-b")
    data = vg.admin.call("revokeToken", name="dev-2")
    assert data["disconnected"] >= 1
    assert d.wait_disconnected(SLOW), "a revoked token's connection stayed open"
    assert refused(V5, attempt_login(vg.broker.port, "dev-2", vg.secrets["dev-2"], timeout=SLOW))
    vg.events.wait_for("tokenRevoked", name="dev-2", timeout=SLOW)


def test_expiry(vg):
    secret, token_hash, until = issue_short_lived(vg.admin, "brief", "dev", 4)
    d = vg.device("brief", secret, client_id="brief-1")
    assert d.wait_disconnected(SLOW), "an expired token's connection stayed open"
    wait_until(lambda: time.time() > until + 1, timeout=SLOW, message="past validUntil")
    assert refused(V5, attempt_login(vg.broker.port, "brief", secret, timeout=SLOW))
    vg.broker.wait_for_log("expired token brief")
    vg.events.wait_for("tokenExpired", name="brief", timeout=SLOW)
    vg.events.wait_for("tokenExpiring", name="soon", timeout=SLOW)
    vg.events.wait_for("tokenCreated", name="dev-1", timeout=SLOW)
    assert vg.admin.call("getToken", hash=token_hash)["status"] == "invalid"
    assert vg.admin.call("listTokens", status="invalid")["totalCount"] == 1


def test_metrics(vg):
    def shown():
        values, _ = read_metrics(vg.broker.port, wait=1.0)
        return values if values.get("total") == str(4) and values.get("logins/refused") not in (None, "0") \
            else None

    values = wait_until(shown, timeout=SLOW, interval=0.5, message="metrics showing 4 tokens")
    assert int(values["logins/accepted"]) >= 5, values


def test_limits_and_malformed_requests(vg):
    admin = vg.admin
    many = [dict(command="listRoles")] * (MAX_COMMANDS + 1)
    assert codes(admin.request_raw(json.dumps({"commands": many}))["responses"]) == ["limit"]
    big = json.dumps({"commands": [dict(command="getRole", rolename="r" * MAX_REQUEST_BYTES)]})
    assert codes(admin.request_raw(big)["responses"]) == ["limit"]
    room = MAX_TOKENS - admin.call("listTokens")["totalCount"]
    creates = [dict(command="createToken", name=f"fill-{i}", role="dev", validUntil=FUTURE)
               for i in range(room + 1)]
    assert codes(admin.request(creates)) == [None] * room + ["limit"]
    for i in range(room):
        admin.call("revokeToken", name=f"fill-{i}")

    for payload in (b"not json", b"", b"[1, 2]", b'{"commands": 7}', b"\xff\xfe{", b'{"commands": [7]}'):
        responses = admin.request_raw(payload)["responses"]
        assert len(responses) == 1 and "error" in responses[0], (payload, responses)
    bad = admin.request([
        dict(command="noSuchCommand", correlationData="c1"),
        dict(command="createToken", name="bad\u0000name", role="dev", validUntil=FUTURE),
        dict(command="createToken", name=7, role="dev", validUntil=FUTURE),
        dict(command="createToken", name="past", role="dev", validUntil="2001-01-01T00:00:00Z"),
        dict(command="createToken", name="nope", role="dev", validUntil="tomorrow"),
        dict(command="createToken", name="x" * 31, role="dev", validUntil=FUTURE),
        dict(command="createToken", name="ghost", role="no-role", validUntil=FUTURE),
        dict(command="createToken", name="dev-1", role="dev", validUntil=FUTURE),
        dict(command="getToken", name="dev-1", hash="0" * 64),
        dict(command="revokeToken", hash="not a hash"),
        dict(command="rotateToken", name="dev-1", graceSeconds=-1),
        dict(command="listTokens", count=0),
        dict(command="addRoleACL", rolename="dev", acltype="nonsense", topic="a", allow=True),
        dict(command="createRole", rolename="r", acls=[{"acltype": "publishClientSend"}]),
        dict(command="getRole", correlationData=5),
    ])
    assert all("error" in r for r in bad), [r for r in bad if "error" not in r]
    assert bad[0]["correlationData"] == "c1"


def test_response_topic_and_reload(vg):
    admin, broker = vg.admin, vg.broker
    with Device(broker.port, subscriptions=["answers/me"]) as asker:
        asker.publish("$CONTROL/tokens/v1", json.dumps({"commands": [{"command": "listRoles"}]}),
                      properties=response_properties("answers/me", b"corr-1"))
        message = asker.next_message(SLOW)
        assert message.topic == "answers/me"
        assert message.properties.CorrelationData == b"corr-1"
    d = vg.device("dev-1", vg.secrets["dev-1"], client_id="dev-1-reload")
    count = broker.log.count("Reloading config.")
    broker.process.send_signal(signal.SIGHUP)
    wait_until(lambda: broker.log.count("Reloading config.") > count, timeout=SLOW, message="reload logged")
    assert d.publish_code("d/after-reload", "still here") == 0
    assert admin.call("listRoles")["totalCount"] == 1


def test_clean_stop_then_load_and_replay(vg):
    """The shared broker stops; its report is read. Then a second run loads
    the folded state and changes it, its files are copied while it runs (a
    snapshot and a journal), and a third run replays that journal."""
    broker = vg.broker
    for d in vg.devices:
        d.close()
    vg.events.close()
    vg.admin.close()
    stop_and_check(broker)
    assert not os.path.exists(broker.journal_file), "the journal was not folded in at the stop"
    names = sorted(t["name"] for t in broker.read_state()["tokens"])
    assert names == ["brief", "dev-1", "dev-3", "soon"], names

    broker.start()
    with broker.client() as admin:
        secret, _ = issue(admin, "late", "dev")
        admin.call("revokeToken", name="soon")
        # Revoked during a rotation's grace period: the replay must drop
        # both secrets (issue 12).
        graced, _ = issue(admin, "graced", "dev")
        rotated = admin.call("rotateToken", name="graced", graceSeconds=3600)["token"]
        admin.call("revokeToken", name="graced")
        with device(broker, "late", secret) as late:
            assert late.publish_code("d/late", "hi") == 0
        copy = os.path.join(broker.directory, "copy")
        os.makedirs(copy)
        assert os.path.exists(broker.journal_file), "expected the changes in a journal"
        shutil.copy(broker.state_file, os.path.join(copy, "tokens.json"))
        shutil.copy(broker.journal_file, os.path.join(copy, "tokens.json.journal"))
    stop_and_check(broker)

    replayed = valgrind_broker(copy)
    replayed.start()
    try:
        with device(replayed, "late", secret) as late:
            assert late.publish_code("d/late", "again") == 0
        assert refused(V5, attempt_login(replayed.port, "soon", vg.secrets["soon"], timeout=SLOW))
        for revoked in (graced, rotated):
            assert refused(V5, attempt_login(replayed.port, "graced", revoked, timeout=SLOW))
    finally:
        stop_and_check(replayed)
