"""
listTokens' filters (SPEC section 4): `status`, `role` and `namePrefix`
combine with each other and with `count`/`offset`; the order stays
issuedAt, then name (bytes); `totalCount` counts every token that passes
the filters, not just the page.

Every combination is checked against a reference computed here from the
same tokens, on a store loaded from a state file and then changed by
commands (create, revoke, rotate, expiry), so that whatever the plugin
keeps to answer fast must follow every change.
"""
import calendar
import random
import time

import pytest

from tokens_helpers import FUTURE, format_time, state_token, write_state

ROLES = ["sensors", "ops", "dash board"]
PREFIXES = ["dev-", "device-", "ops/", "é", "D", "dev"]
PAST = "2021-06-01T00:00:00Z"


def issued(seconds):
    return format_time(1_600_000_000 + seconds)


def prepared_tokens(rng):
    tokens = []
    for i in range(400):
        name = f"{rng.choice(PREFIXES)}{i:03d}"
        # Few distinct issue times, so many share a second and the name decides.
        valid_until = PAST if i % 5 == 0 else FUTURE
        tokens.append(state_token(name, ROLES[i % 3], issued(rng.randrange(40) * 3600), valid_until))
    return tokens


class Reference:
    """The store as a list of metadata, filtered and ordered the plugin's way."""

    def __init__(self, tokens):
        self.tokens = {t["name"]: dict(t) for t in tokens}

    def select(self, now, status=None, role=None, prefix=None):
        chosen = []
        for t in self.tokens.values():
            valid = t["validUntil"] > format_time(now)
            if status == "valid" and not valid or status == "invalid" and valid:
                continue
            if role is not None and t["role"] != role:
                continue
            if prefix is not None and not t["name"].encode().startswith(prefix.encode()):
                continue
            chosen.append(t)
        chosen.sort(key=lambda t: (t["issuedAt"], t["name"].encode()))
        return [t["name"] for t in chosen]


def list_names(client, **fields):
    fields = {k: v for k, v in fields.items() if v is not None}
    data = client.call("listTokens", **fields)
    return [t["name"] for t in data["tokens"]], data["totalCount"], data["tokens"]


FILTERS = [(status, role, prefix)
           for status in (None, "valid", "invalid")
           for role in (None, "sensors", "dash board", "no such role")
           for prefix in (None, "", "dev", "dev-", "device-1", "é", "x", "ops/00")]


def check_every_filter(client, reference):
    now = time.time()
    for status, role, prefix in FILTERS:
        wanted = reference.select(now, status, role, prefix)
        got, total, tokens = list_names(client, status=status, role=role, namePrefix=prefix)
        assert (got, total) == (wanted, len(wanted)), (status, role, prefix)
        assert all(role is None or t["role"] == role for t in tokens)


def check_pages(client, reference, status, role, prefix):
    wanted = reference.select(time.time(), status, role, prefix)
    for count in (1, 7, 50):
        seen = []
        for offset in range(0, len(wanted) + count, count):
            page, total, _ = list_names(client, status=status, role=role, namePrefix=prefix,
                                        count=count, offset=offset)
            assert total == len(wanted)
            assert page == wanted[offset:offset + count]
            seen += page
        assert seen == wanted
    # Pages read from the end, as a console's "last page" does.
    last, total, _ = list_names(client, status=status, role=role, namePrefix=prefix, count=5,
                                offset=max(len(wanted) - 5, 0))
    assert last == wanted[-5:] and total == len(wanted)


@pytest.fixture
def loaded(broker_factory, tmp_path):
    rng = random.Random(18)
    tokens = prepared_tokens(rng)
    state = tmp_path / "filters.json"
    write_state(state, [{"rolename": r, "acls": []} for r in ROLES], tokens)
    return broker_factory(state_file=state), Reference(tokens)


@pytest.fixture
def store(loaded, make_client):
    broker, reference = loaded
    return make_client(broker=broker), reference


def test_every_filter_on_a_loaded_store(store):
    client, reference = store
    check_every_filter(client, reference)


@pytest.mark.parametrize("status, role, prefix", [
    (None, None, None), ("valid", None, None), ("invalid", "ops", None),
    (None, "sensors", None), ("valid", None, "dev-"), (None, "ops", "dev"), ("invalid", None, "é"),
])
def test_pages_cover_each_filtered_list_once(store, status, role, prefix):
    client, reference = store
    check_pages(client, reference, status, role, prefix)


def record(reference, data):
    reference.tokens[data["name"]] = {k: data[k] for k in
                                      ("name", "role", "requestedBy", "issuedAt", "validUntil", "lastUsed", "hash")}


def test_filters_follow_creates_revokes_rotations_and_expiry(store):
    client, reference = store
    rng = random.Random(7)
    names = sorted(reference.tokens)
    for name in rng.sample(names, 40):
        client.call("revokeToken", name=name)
        del reference.tokens[name]
    for name in rng.sample(sorted(reference.tokens), 20):
        # A rotation issues the token anew: it moves to the end of the order.
        record(reference, client.call("rotateToken", name=name))
    for i in range(30):
        record(reference, client.call("createToken", name=f"{rng.choice(PREFIXES)}new{i}",
                                      role=rng.choice(ROLES), validUntil=FUTURE))
    short = client.call("createToken", name="dev-short", role="ops", validUntil=format_time(time.time() + 2))
    record(reference, short)
    check_every_filter(client, reference)
    expiry = calendar.timegm(time.strptime(short["validUntil"], "%Y-%m-%dT%H:%M:%SZ"))
    time.sleep(max(0.0, expiry - time.time() + 0.2))
    assert client.call("getToken", name="dev-short")["status"] == "invalid"
    check_every_filter(client, reference)
    check_pages(client, reference, "valid", "ops", "dev")


def change_some(client, reference, rng, tag):
    for name in rng.sample(sorted(reference.tokens), 15):
        client.call("revokeToken", name=name)
        del reference.tokens[name]
    for name in rng.sample(sorted(reference.tokens), 10):
        record(reference, client.call("rotateToken", name=name))
    for i in range(10):
        record(reference, client.call("createToken", name=f"{rng.choice(PREFIXES)}{tag}{i}",
                                      role=rng.choice(ROLES), validUntil=FUTURE))


@pytest.mark.parametrize("hard", [True, False], ids=["kill9-journal-replay", "stop-snapshot"])
def test_filters_after_a_restart(loaded, make_client, hard):
    """The orders are rebuilt from what the files hold: after kill -9 the
    journal's changes are replayed onto the loaded file; after a stop, the
    snapshot (in name order) is loaded."""
    broker, reference = loaded
    client = make_client(broker=broker)
    change_some(client, reference, random.Random(3), "before")
    client.close()
    broker.restart(hard=hard)
    again = make_client(broker=broker)
    check_every_filter(again, reference)
    check_pages(again, reference, None, "sensors", "dev")
    # And the orders go on following changes.
    change_some(again, reference, random.Random(4), "after")
    check_every_filter(again, reference)


def test_a_revoked_role_member_leaves_the_role_filter(client):
    client.call("createRole", rolename="a")
    client.call("createRole", rolename="b")
    for name in ("one", "two", "three"):
        client.call("createToken", name=name, role="a", validUntil=FUTURE)
    client.call("createToken", name="four", role="b", validUntil=FUTURE)
    client.call("revokeToken", name="two")
    assert list_names(client, role="a")[:2] == (["one", "three"], 2)
    assert list_names(client, role="b")[:2] == (["four"], 1)


@pytest.mark.parametrize("field, value", [("role", 5), ("role", None), ("namePrefix", ["dev"]),
                                          ("namePrefix", True), ("role", "a\u0000b")])
def test_a_bad_filter_is_refused_naming_it(client, field, value):
    responses = client.request([{"command": "listTokens", field: value}])
    assert responses[0]["code"] == "invalid" and field in responses[0]["error"], responses
