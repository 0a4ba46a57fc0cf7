"""
The console's token endpoints beyond the seed's (SPEC section 8): the
`role` and `namePrefix` filters of GET /api/tokens, POST
/api/tokens/{hash}/rotate, and `issueDate` beside `issuedAt` in every
token object the API returns.
"""
import itertools
import time
from urllib.parse import quote, urlencode

import pytest

from test_console_api import (  # noqa: F401  (fixtures)
    console_built, env, expect_error, expect_json, rest_token, well_formed_unknown_token,
)
from tokens_helpers import FUTURE, check_rotated, format_time, parse_time, sha256_hex


def listing(env, **query):
    return expect_json(env.get("/api/tokens?" + urlencode(query, quote_via=quote)), 200)


def names(data):
    return [t["name"] for t in data["tokens"]]


# ---------------------------------------------------------------- role and namePrefix

@pytest.fixture
def fleet(env):
    """Tokens of three roles under a few prefixes; returns the full listing."""
    env.admin.role("cams", ("subscribePattern", "cams/#", "allow"))
    env.admin.role("cam", ("subscribePattern", "cam/#", "allow"))
    for i in range(4):
        for prefix, role in (("cam-", "cams"), ("camera-", "cam"), ("door-", "admin"), ("caf\u00e9 ", "cams")):
            expect_json(env.post("/api/tokens", {"name": f"{prefix}{i}", "role": role, "validUntil": FUTURE}), 201)
    return listing(env)


def reference(everything, status="all", role=None, prefix=None):
    return [t["name"] for t in everything["tokens"]
            if (status == "all" or t["status"] == status)
            and (role is None or t["role"] == role)
            and (prefix is None or t["name"].startswith(prefix))]


def test_role_and_name_prefix_filter_the_list(env, fleet):
    assert fleet["totalCount"] == 18
    roles = [None, "cams", "cam", "admin", "no-such-role", "CAMS", "cam "]
    prefixes = [None, "", "cam", "cam-", "camera", "caf\u00e9", "caf\u00e9 1", "door-3", "x", "Cam",
                "cam-0-and-more"]
    for status, role, prefix in itertools.product(["all", "valid", "invalid"], roles, prefixes):
        query = {"status": status}
        if role is not None:
            query["role"] = role
        if prefix is not None:
            query["namePrefix"] = prefix
        data = listing(env, **query)
        expected = reference(fleet, status, role, prefix)
        assert names(data) == expected, query
        assert data["totalCount"] == len(expected), query


def test_filters_combine_with_count_and_offset(env, fleet):
    expected = reference(fleet, role="cams", prefix="ca")
    assert len(expected) == 8
    pages = [listing(env, role="cams", namePrefix="ca", count=3, offset=offset) for offset in (0, 3, 6, 9)]
    assert [names(p) for p in pages] == [expected[0:3], expected[3:6], expected[6:8], []]
    assert {p["totalCount"] for p in pages} == {8}


def test_an_unknown_role_gives_an_empty_page(env, fleet):
    assert listing(env, role="nobody") == {"totalCount": 0, "tokens": []}
    assert listing(env, namePrefix="zzz", count=5) == {"totalCount": 0, "tokens": []}


def test_the_expired_token_is_filtered_too(env, fleet):
    data = listing(env, status="invalid", role="admin", namePrefix="exp")
    assert names(data) == ["expired-bot"]


@pytest.mark.parametrize("query", ["role=%FF", "namePrefix=a%FFb"])
def test_a_filter_that_is_not_utf8_is_400(env, query):
    error = expect_error(env.get(f"/api/tokens?{query}"), 400, "invalid")
    assert query.split("=")[0] in error["error"], error


def test_a_huge_filter_gives_an_empty_page(env):
    assert listing(env, namePrefix="n" * 4000, role="r" * 4000) == {"totalCount": 0, "tokens": []}


def test_a_nul_in_a_filter_is_400(env):
    expect_error(env.get("/api/tokens?namePrefix=a%00b"), 400, "invalid")


# ---------------------------------------------------------------- issueDate

def test_every_token_object_has_issue_date(env):
    created = expect_json(env.post("/api/tokens", {"name": "dated", "role": "admin", "validUntil": FUTURE}), 201)
    assert created["issueDate"] == created["issuedAt"]
    keys = list(created)
    assert keys.index("issueDate") == keys.index("issuedAt") + 1
    for token in listing(env)["tokens"]:
        rest_token(token)
    rest_token(expect_json(env.get(f"/api/tokens/{created['hash']}"), 200))
    rotated = expect_json(env.post(f"/api/tokens/{created['hash']}/rotate", None), 201)
    rest_token(rotated)
    revoked = expect_json(env.delete(f"/api/tokens/{rotated['hash']}"), 200)
    assert "issueDate" not in revoked


# ---------------------------------------------------------------- rotate

def create(env, name, valid_until=FUTURE):
    return expect_json(env.post("/api/tokens", {"name": name, "role": "admin", "validUntil": valid_until}), 201)


def test_rotate_without_a_body(env):
    before = create(env, "rot-1", valid_until=format_time(time.time() + 3600))
    now = time.time()
    reply = env.request("POST", f"/api/tokens/{before['hash']}/rotate")
    data = rest_token(expect_json(reply, 201))
    secret = check_rotated(data, rest_token(before), requested_by="admin", issued_near=now)
    # The same lifetime from now, and the old secret stops at once (no grace).
    assert abs(parse_time(data["validUntil"]).timestamp() - (now + 3600)) <= 3
    expect_error(env.get(f"/api/tokens/{before['hash']}"), 404, "notFound")
    expect_error(env.get("/api/roles", token=before["token"]), 401)
    assert expect_json(env.get("/api/roles", token=secret), 200)["totalCount"] == 1
    assert expect_json(env.get(f"/api/tokens/{data['hash']}"), 200)["name"] == "rot-1"
    assert secret not in env.broker.log and sha256_hex(secret) == data["hash"]


def test_rotate_with_a_grace_period_and_a_new_expiry(env):
    before = create(env, "rot-2")
    expect_json(env.get("/api/roles", token=before["token"]), 200)
    now = time.time()
    body = {"validUntil": "2098-06-01T00:00:00Z", "graceSeconds": 120, "name": "renamed", "role": "nobody",
            "hash": "0" * 64}
    data = rest_token(expect_json(env.post(f"/api/tokens/{before['hash']}/rotate", body), 201))
    check_rotated(data, rest_token(before), requested_by="admin", issued_near=now,
                  previous_valid_until=now + 120)
    assert data["validUntil"] == "2098-06-01T00:00:00Z" and data["name"] == "rot-2"
    # In its grace period the old secret still works.
    assert expect_json(env.get("/api/roles", token=before["token"]), 200)["totalCount"] == 1
    shown = expect_json(env.get(f"/api/tokens/{data['hash']}"), 200)
    assert shown["previousValidUntil"] == data["previousValidUntil"]


def test_rotate_an_unknown_or_malformed_hash_is_404(env):
    expect_error(env.post("/api/tokens/" + "f" * 64 + "/rotate", None), 404, "notFound")
    for bad in ("abc", "F" * 64, "g" * 64):
        expect_error(env.post(f"/api/tokens/{bad}/rotate", None), 404, "notFound")
    expect_error(env.post(f"/api/tokens/{env.admin.hash}/rotate/x", None), 404, "notFound")
    expect_error(env.post(f"/api/tokens/{env.admin.hash}/rotat", None), 404, "notFound")


@pytest.mark.parametrize("body", [b"not json", b"[]", b'"x"', b"null", b'{"graceSeconds": 1} x',
                                  b'{"validUntil": "2099-01-01T00:00:00Z\x00"}'],
                         ids=["not-json", "array", "string", "null", "trailing", "raw-nul"])
def test_rotate_refuses_a_bad_body(env, body):
    before = create(env, "rot-3")
    expect_error(env.post(f"/api/tokens/{before['hash']}/rotate", body), 400, "invalid")
    assert expect_json(env.get(f"/api/tokens/{before['hash']}"), 200)["name"] == "rot-3"


@pytest.mark.parametrize("body, field", [
    ({"graceSeconds": -1}, "graceSeconds"), ({"graceSeconds": 8 * 86400}, "graceSeconds"),
    ({"graceSeconds": "60"}, "graceSeconds"), ({"validUntil": "2001-01-01T00:00:00Z"}, "validUntil"),
    ({"validUntil": "soon"}, "validUntil"), ({"validUntil": "2099-01-01T00:00:00Z\u0000"}, "validUntil"),
])
def test_rotate_refuses_a_bad_field(env, body, field):
    before = create(env, "rot-4")
    error = expect_error(env.post(f"/api/tokens/{before['hash']}/rotate", body), 400, "invalid")
    assert field in error["error"], error
    assert expect_json(env.get(f"/api/tokens/{before['hash']}"), 200)["name"] == "rot-4"


def test_rotate_a_huge_body_is_413(env):
    before = create(env, "rot-5")
    expect_error(env.post(f"/api/tokens/{before['hash']}/rotate", b"x" * (1024 * 1024)), 413)
    assert expect_json(env.get(f"/api/tokens/{before['hash']}"), 200)["name"] == "rot-5"


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_rotate_takes_only_post(env, method):
    reply = env.request(method, f"/api/tokens/{env.admin.hash}/rotate")
    expect_error(reply, 405)
    assert reply.header("Allow") == "POST"


def test_rotate_callers(env):
    env.admin.role("devices", ("subscribePattern", "sensors/#", "allow"))
    device = expect_json(env.post("/api/tokens", {"name": "dev", "role": "devices", "validUntil": FUTURE}), 201)
    path = f"/api/tokens/{device['hash']}/rotate"
    expect_error(env.post(path, None, token=device["token"]), 403, "forbidden")
    expect_error(env.console.post(path, None), 401)
    expect_error(env.post(path, None, token=well_formed_unknown_token()), 401)
    other = create(env, "other")
    expect_json(env.get("/api/roles", token=other["token"]), 200)
    expect_json(env.delete(f"/api/tokens/{other['hash']}"), 200)
    expect_error(env.post(path, None, token=other["token"]), 401)
    assert expect_json(env.get(f"/api/tokens/{device['hash']}"), 200)["name"] == "dev"
