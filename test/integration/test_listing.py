"""
listTokens (SPEC section 4): ordered by issuedAt then name, status filter,
count/offset paging, totalCount counting every match (not just the page).
"""
import time

import pytest

from tokens_helpers import (
    FUTURE, check_metadata, format_time, state_token, write_state,
)


def names(data):
    return [t["name"] for t in data["tokens"]]


def wait_until(seconds):
    while time.time() < seconds:
        time.sleep(min(0.05, max(0.0, seconds - time.time())))


def test_order_status_and_paging_live(client):
    """Without any prepared file: a batch shares one issuedAt (so name
    decides), a later batch sorts after it, a token given a one-second
    lifetime turns invalid."""
    client.call("createRole", rolename="r")
    # Start right after a second boundary so that "now + 1 s" is in the future for the plugin.
    wait_until(int(time.time()) + 1.02)
    first_second = int(time.time())
    batch = [{"command": "createToken", "name": n, "role": "r", "validUntil": FUTURE}
             for n in ("delta", "bravo", "charlie")]
    batch.append({"command": "createToken", "name": "short", "role": "r",
                  "validUntil": format_time(first_second + 1)})
    responses = client.request(batch)
    assert all("data" in r for r in responses), responses
    issued = {r["data"]["issuedAt"] for r in responses}
    assert len(issued) == 1

    wait_until(first_second + 1.1)
    later = client.call("createToken", name="alpha", role="r", validUntil=FUTURE)
    assert later["issuedAt"] > responses[0]["data"]["issuedAt"]

    everything = client.call("listTokens")
    assert names(everything) == ["bravo", "charlie", "delta", "short", "alpha"]
    assert everything["totalCount"] == 5
    status = {t["name"]: t["status"] for t in everything["tokens"]}
    assert status == {"bravo": "valid", "charlie": "valid", "delta": "valid", "short": "invalid", "alpha": "valid"}
    for item in everything["tokens"]:
        check_metadata(item, status=status[item["name"]])
    assert client.call("listTokens", status="all") == everything

    valid = client.call("listTokens", status="valid")
    assert names(valid) == ["bravo", "charlie", "delta", "alpha"] and valid["totalCount"] == 4
    invalid = client.call("listTokens", status="invalid")
    assert names(invalid) == ["short"] and invalid["totalCount"] == 1
    assert invalid["tokens"][0]["status"] == "invalid"
    # getToken agrees.
    assert client.call("getToken", name="short")["status"] == "invalid"

    # Paging: totalCount is the number of matches, not the page size.
    page = client.call("listTokens", count=2, offset=1)
    assert names(page) == ["charlie", "delta"] and page["totalCount"] == 5
    page = client.call("listTokens", status="valid", count=2, offset=2)
    assert names(page) == ["delta", "alpha"] and page["totalCount"] == 4
    page = client.call("listTokens", status="valid", count=1, offset=3)
    assert names(page) == ["alpha"]
    assert client.call("listTokens", offset=5) == {"totalCount": 5, "tokens": []}
    assert client.call("listTokens", offset=1000, count=1) == {"totalCount": 5, "tokens": []}
    assert names(client.call("listTokens", count=1000)) == names(everything)
    assert names(client.call("listTokens", count=5, offset=0)) == names(everything)
    # Walking one page at a time gives the whole list, once.
    walked = []
    for offset in range(6):
        walked += names(client.call("listTokens", count=1, offset=offset))
    assert walked == names(everything)


def test_empty_store(client):
    assert client.call("listTokens") == {"totalCount": 0, "tokens": []}
    assert client.call("listTokens", status="valid", count=3) == {"totalCount": 0, "tokens": []}
    assert client.call("listRoles") == {"totalCount": 0, "roles": []}


def test_same_second_is_ordered_by_name_bytes(client):
    client.call("createRole", rolename="r")
    wanted = ["Zed", "a", "b-2", "b10", "é", "😀"]
    responses = client.request([{"command": "createToken", "name": n, "role": "r", "validUntil": FUTURE}
                                for n in reversed(wanted)])
    assert len({r["data"]["issuedAt"] for r in responses}) == 1
    # strcmp order: ASCII upper case first, then UTF-8 bytes.
    assert names(client.call("listTokens")) == sorted(wanted, key=lambda n: n.encode())


PREPARED_ROLES = [{"rolename": "r", "acls": []}]
PREPARED_TOKENS = [
    state_token("zulu", "r", "2020-01-01T00:00:00Z", FUTURE),
    state_token("mike", "r", "2023-05-05T00:00:00Z", "2024-01-01T00:00:00Z", requested_by="ops",
                last_used="2023-06-01T12:00:00Z"),
    state_token("alpha", "r", "2022-01-01T00:00:00Z", FUTURE),
    state_token("bravo", "r", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"),
]


@pytest.fixture
def prepared(broker_factory, tmp_path):
    state = tmp_path / "prepared.json"
    write_state(state, PREPARED_ROLES, PREPARED_TOKENS)
    return broker_factory(state_file=state)


def test_order_and_status_from_a_state_file(prepared, make_client):
    client = make_client(broker=prepared)
    everything = client.call("listTokens")
    assert names(everything) == ["bravo", "zulu", "alpha", "mike"]
    assert everything["totalCount"] == 4
    by_name = {t["name"]: t for t in everything["tokens"]}
    assert by_name["mike"] == dict(PREPARED_TOKENS[1], status="invalid")
    assert by_name["bravo"]["status"] == "invalid"
    assert by_name["zulu"]["status"] == "valid"
    assert by_name["alpha"] == dict(PREPARED_TOKENS[2], status="valid")

    assert names(client.call("listTokens", status="valid")) == ["zulu", "alpha"]
    invalid = client.call("listTokens", status="invalid")
    assert names(invalid) == ["bravo", "mike"] and invalid["totalCount"] == 2
    page = client.call("listTokens", status="invalid", count=1, offset=1)
    assert names(page) == ["mike"] and page["totalCount"] == 2
    assert client.call("getToken", name="mike")["status"] == "invalid"
    assert client.call("getToken", hash=by_name["bravo"]["hash"])["status"] == "invalid"
