"""
The console's role endpoints (SPEC section 8): GET /api/roles/{rolename},
POST /api/roles, DELETE /api/roles/{rolename}, POST and DELETE
/api/roles/{rolename}/acls, against a real token-only broker. A role name
in the path is percent-decoded segment by segment: a '/' in a name is
written %2F (a bare '/' separates segments), '+' is a plus sign.
"""
import json
from urllib.parse import quote

import pytest

from ctrl_helpers import ADMIN_ACLS, publish, wait_subscribed  # noqa: F401
from ctrl_helpers import processes  # noqa: F401  (fixture)
from test_console_api import (  # noqa: F401  (fixtures)
    MAX_BODY, console_built, env, expect_error, expect_json, unique,
)
from tokens_helpers import FUTURE


def role_path(rolename, tail=""):
    return "/api/roles/" + quote(rolename, safe="") + tail


def acl(acltype, topic, allow=True, priority=0):
    return {"acltype": acltype, "topic": topic, "priority": priority, "allow": allow}


def listed_roles(env):
    return {r["rolename"]: r["acls"] for r in expect_json(env.get("/api/roles"), 200)["roles"]}


def create_role(env, rolename, acls=None):
    body = {"rolename": rolename} if acls is None else {"rolename": rolename, "acls": acls}
    reply = env.post("/api/roles", body)
    assert expect_json(reply, 201) == {}, str(reply)


# ---------------------------------------------------------------- get

def test_get_role(env):
    data = expect_json(env.get("/api/roles/admin"), 200)
    assert data == {"rolename": "admin", "acls": listed_roles(env)["admin"]}
    for entry in ADMIN_ACLS:
        assert entry in data["acls"]


def test_unknown_role_is_404_on_every_role_endpoint(env):
    path = role_path("no-such-role")
    expect_error(env.get(path), 404, "notFound")
    expect_error(env.delete(path), 404, "notFound")
    expect_error(env.post(path + "/acls", acl("subscribePattern", "a/#")), 404, "notFound")
    expect_error(env.request("DELETE", path + "/acls", body={"acltype": "subscribePattern", "topic": "a/#"}),
                 404, "notFound")
    assert set(listed_roles(env)) == {"admin"}


# ---------------------------------------------------------------- create

def test_create_role_with_acls_then_get_it(env):
    acls = [acl("subscribePattern", "sensors/#"), acl("publishClientSend", "sensors/+/x", allow=False, priority=3)]
    create_role(env, "devices", acls)
    data = expect_json(env.get("/api/roles/devices"), 200)
    assert data["rolename"] == "devices"
    assert sorted(data["acls"], key=json.dumps) == sorted(acls, key=json.dumps)
    create_role(env, "empty")
    assert expect_json(env.get("/api/roles/empty"), 200) == {"rolename": "empty", "acls": []}
    assert set(listed_roles(env)) == {"admin", "devices", "empty"}
    assert env.broker.wait_for_log(r"tokens: admin \| createRole \| .*devices")


def test_a_role_made_over_rest_grants_its_rights(env, processes):
    create_role(env, "sensors", [acl("subscribePattern", "sensors/#"), acl("publishClientSend", "sensors/#")])
    token = expect_json(env.post("/api/tokens", {"name": "s-1", "role": "sensors", "validUntil": FUTURE}),
                        201)["token"]
    client_id = unique("sub")
    subscriber = processes.subscriber(env.broker.port, "s-1", token, "sensors/x", client_id, count=1,
                                      extra=["-W", "10"])
    wait_subscribed(env.broker, client_id)
    assert publish(env.broker.port, "s-1", token, "sensors/x", "1").returncode == 0
    out, err = subscriber.communicate(timeout=15)
    assert out == "sensors/x 1\n", err
    # The role has no control-topic rights: its own token gets 403 from the API.
    expect_error(env.get("/api/roles/sensors", token=token), 403, "forbidden")


def test_create_a_role_that_exists_is_409(env):
    expect_error(env.post("/api/roles", {"rolename": "admin"}), 409, "exists")
    assert listed_roles(env)["admin"] == expect_json(env.get("/api/roles/admin"), 200)["acls"]


@pytest.mark.parametrize("body", [b"not json", b"", b'{"rolename": "x"', b'["rolename"]', b'"x"', b"null",
                                  b'{"rolename": "x"} trailing', b'{"rolename": "x\x00y"}'],
                         ids=["not-json", "empty", "truncated", "array", "string", "null", "trailing", "raw-nul"])
def test_create_role_refuses_a_bad_body(env, body):
    expect_error(env.post("/api/roles", body, headers={"Content-Type": "application/json"}), 400, "invalid")
    assert set(listed_roles(env)) == {"admin"}


@pytest.mark.parametrize("body, field", [
    ({}, "rolename"), ({"rolename": 7}, "rolename"), ({"rolename": ""}, "rolename"),
    ({"rolename": "x\u0000y"}, "rolename"), ({"rolename": "x", "acls": "all"}, "acls"),
    ({"rolename": "x", "acls": [{"acltype": "everything", "topic": "#", "allow": True}]}, "acltype"),
])
def test_create_role_refuses_a_bad_field(env, body, field):
    error = expect_error(env.post("/api/roles", body), 400, "invalid")
    assert field in error["error"], error
    assert set(listed_roles(env)) == {"admin"}


def test_create_role_ignores_unknown_fields(env):
    expect_json(env.post("/api/roles", {"rolename": "quiet", "command": "deleteRole", "extra": [1],
                                        "commands": [{"command": "deleteRole", "rolename": "admin"}]}), 201)
    assert set(listed_roles(env)) == {"admin", "quiet"}


def test_a_body_over_16_kib_is_413(env):
    body = {"rolename": "big", "padding": "p" * MAX_BODY}
    expect_error(env.post("/api/roles", body), 413)
    expect_error(env.post(role_path("admin", "/acls"), body), 413)
    assert "big" not in listed_roles(env)


# ---------------------------------------------------------------- delete

def test_delete_role_then_404(env):
    create_role(env, "brief")
    assert expect_json(env.delete("/api/roles/brief"), 200) == {}
    expect_error(env.get("/api/roles/brief"), 404, "notFound")
    expect_error(env.delete("/api/roles/brief"), 404, "notFound")
    assert set(listed_roles(env)) == {"admin"}


def test_delete_a_role_in_use_is_409(env):
    create_role(env, "used")
    expect_json(env.post("/api/tokens", {"name": "user-1", "role": "used", "validUntil": FUTURE}), 201)
    error = expect_error(env.delete("/api/roles/used"), 409, "inUse")
    assert "revoke" in error["error"]
    assert "used" in listed_roles(env)


# ---------------------------------------------------------------- ACLs

def test_add_and_remove_an_acl(env):
    create_role(env, "r")
    reply = env.post("/api/roles/r/acls", {"acltype": "subscribePattern", "topic": "a/#", "allow": True,
                                           "priority": 5, "rolename": "admin", "extra": {}})
    assert expect_json(reply, 201) == {}
    assert listed_roles(env)["r"] == [acl("subscribePattern", "a/#", priority=5)]
    assert listed_roles(env)["admin"] == expect_json(env.get("/api/roles/admin"), 200)["acls"]
    expect_error(env.post("/api/roles/r/acls", acl("subscribePattern", "a/#")), 409, "exists")
    removed = env.request("DELETE", "/api/roles/r/acls", body={"acltype": "subscribePattern", "topic": "a/#"})
    assert expect_json(removed, 200) == {}
    assert listed_roles(env)["r"] == []
    expect_error(env.request("DELETE", "/api/roles/r/acls", body={"acltype": "subscribePattern", "topic": "a/#"}),
                 404, "notFound")


@pytest.mark.parametrize("body, field", [
    ({"topic": "a", "allow": True}, "acltype"), ({"acltype": "subscribeAll", "topic": "a", "allow": True}, "acltype"),
    ({"acltype": "subscribePattern", "allow": True}, "topic"),
    ({"acltype": "subscribePattern", "topic": "a/#/b", "allow": True}, "topic"),
    ({"acltype": "subscribePattern", "topic": "a"}, "allow"),
    ({"acltype": "subscribePattern", "topic": "a", "allow": "yes"}, "allow"),
    ({"acltype": "subscribePattern", "topic": "a", "allow": True, "priority": "high"}, "priority"),
    ({"acltype": "subscribePattern", "topic": "a\u0000b", "allow": True}, "topic"),
])
def test_add_acl_refuses_a_bad_field(env, body, field):
    create_role(env, "r")
    error = expect_error(env.post("/api/roles/r/acls", body), 400, "invalid")
    assert field in error["error"], error
    assert listed_roles(env)["r"] == []


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize("body", [b"", b"nope", b"[1]", b'{"acltype": "subscribePattern", "topic": "a\x00"}'],
                         ids=["empty", "not-json", "array", "raw-nul"])
def test_acl_endpoints_refuse_a_bad_body(env, method, body):
    create_role(env, "r", [acl("subscribePattern", "a")])
    expect_error(env.request(method, "/api/roles/r/acls", body=body), 400, "invalid")
    assert listed_roles(env)["r"] == [acl("subscribePattern", "a")]


# ---------------------------------------------------------------- names in the path

@pytest.mark.parametrize("rolename", ["team/a", "with space", "r\u00f4le-\u00fc\u4e2d", "acls", "a+b", "%41",
                                      "?x#y", "..", "a/b/c/d"])
def test_any_role_name_is_addressed_percent_encoded(env, rolename):
    create_role(env, rolename)
    assert expect_json(env.get(role_path(rolename)), 200) == {"rolename": rolename, "acls": []}
    expect_json(env.post(role_path(rolename, "/acls"), acl("subscribeLiteral", "x")), 201)
    assert listed_roles(env)[rolename] == [acl("subscribeLiteral", "x")]
    expect_json(env.request("DELETE", role_path(rolename, "/acls"),
                            body={"acltype": "subscribeLiteral", "topic": "x"}), 200)
    expect_json(env.delete(role_path(rolename)), 200)
    assert set(listed_roles(env)) == {"admin"}


def test_a_slash_must_be_encoded(env):
    create_role(env, "team/a")
    # Unencoded, the '/' separates segments: team's "a" is no route.
    expect_error(env.get("/api/roles/team/a"), 404, "notFound")
    expect_error(env.delete("/api/roles/team/a"), 404, "notFound")
    # Lower- and upper-case hex alike; other characters may be encoded too.
    assert expect_json(env.get("/api/roles/team%2fa"), 200)["rolename"] == "team/a"
    assert expect_json(env.get("/api/roles/%74eam%2Fa"), 200)["rolename"] == "team/a"
    assert expect_json(env.get("/api/roles/%61dmin"), 200)["rolename"] == "admin"
    assert "team/a" in listed_roles(env)


@pytest.mark.parametrize("path", ["/api/roles/%zz", "/api/roles/ab%4", "/api/roles/ab%", "/api/roles/%g1/acls"])
def test_a_malformed_escape_is_400(env, path):
    expect_error(env.get(path), 400, "invalid")


@pytest.mark.parametrize("path", ["/api/roles/", "/api/roles//acls", "/api/roles/admin/acls/x",
                                  "/api/roles/admin/acl", "/api/roles/admin/", "/api/roles%2Fadmin"])
def test_other_role_paths_are_404(env, path):
    expect_error(env.get(path), 404, "notFound")


def test_a_huge_role_name_is_refused_by_the_plugin(env):
    name = "r" * 4000
    error = expect_error(env.get(role_path(name)), 404)
    assert name not in error["error"]
    error = expect_error(env.post("/api/roles", {"rolename": "\u00e9" * 2000}), 400, "invalid")
    assert "rolename" in error["error"]
    assert set(listed_roles(env)) == {"admin"}


# ---------------------------------------------------------------- methods, callers

@pytest.mark.parametrize("method, path, allowed", [
    ("PUT", "/api/roles/admin", {"GET", "DELETE"}),
    ("POST", "/api/roles/admin", {"GET", "DELETE"}),
    ("GET", "/api/roles/admin/acls", {"POST", "DELETE"}),
    ("PUT", "/api/roles/admin/acls", {"POST", "DELETE"}),
    ("PATCH", "/api/roles", {"GET", "POST"}),
])
def test_a_wrong_method_is_405_with_an_allow_header(env, method, path, allowed):
    reply = env.request(method, path, body=b"{}")
    expect_error(reply, 405)
    allow = {m.strip() for m in (reply.header("Allow") or "").split(",")}
    assert allow == allowed, str(reply)
    assert set(listed_roles(env)) == {"admin"}


ROLE_CALLS = [("GET", "/api/roles/admin", None), ("POST", "/api/roles", {"rolename": "x"}),
              ("DELETE", "/api/roles/admin", None),
              ("POST", "/api/roles/admin/acls", acl("subscribeLiteral", "x")),
              ("DELETE", "/api/roles/admin/acls", {"acltype": "subscribeLiteral", "topic": "x"})]


@pytest.mark.parametrize("method, path, body", ROLE_CALLS)
def test_a_role_without_the_control_topic_is_403(env, method, path, body):
    create_role(env, "devices", [acl("subscribePattern", "sensors/#")])
    device = expect_json(env.post("/api/tokens", {"name": "d-1", "role": "devices", "validUntil": FUTURE}),
                         201)["token"]
    expect_error(env.request(method, path, token=device, body=body), 403, "forbidden")
    assert set(listed_roles(env)) == {"admin", "devices"}


@pytest.mark.parametrize("method, path, body", ROLE_CALLS)
def test_a_revoked_bearer_is_401(env, method, path, body):
    other = expect_json(env.post("/api/tokens", {"name": "gone", "role": "admin", "validUntil": FUTURE}), 201)
    expect_json(env.get("/api/roles", token=other["token"]), 200)
    expect_json(env.delete(f"/api/tokens/{other['hash']}"), 200)
    expect_error(env.request(method, path, token=other["token"], body=body), 401)
    assert set(listed_roles(env)) == {"admin"}


@pytest.mark.parametrize("method, path, body", ROLE_CALLS)
def test_no_bearer_is_401(env, method, path, body):
    expect_error(env.console.request(method, path, body=body), 401, "unauthorized")
