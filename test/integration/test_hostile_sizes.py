"""
Requests and replies of hostile size (issue 13, items 1 and 2), against a
real broker:

- a control request far over plugin_opt_max_request_bytes is refused
  before it is parsed: the broker's peak memory grows by about the
  request's size (its own copy), not by the gigabytes a JSON tree of it
  would take;
- a reply never outgrows plugin_opt_max_reply_bytes: a listTokens whose
  answer would not fit is refused with a way to page, the request's other
  answers still arrive, and the connection keeps working for the next
  request.

How long other clients wait meanwhile is a measurement, in make bench.
"""
import json

from tokens_helpers import FUTURE

MiB = 1 << 20


def peak_memory_kib(broker):
    with open(f"/proc/{broker.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_huge_request_is_refused_before_it_costs_memory(broker_factory):
    # 2.1 refuses packets over 2,000,000 bytes itself by default (2.0 has no
    # limit): let the request through to the plugin on every release.
    broker = broker_factory(extra_config=[f"max_packet_size {64 * MiB}"])
    with broker.client() as admin:
        admin.call("createRole", rolename="r")
        before = peak_memory_kib(broker)
        # 40 MB of valid JSON: a tree of it would take gigabytes.
        huge = json.dumps({"commands": [{"command": "listRoles", "pad": "x" * 100}] * (40 * MiB // 130)})
        assert len(huge) > 40 * MiB
        reply = admin.request_raw(huge, timeout=60)
        assert [(r["code"], "larger than" in r["error"]) for r in reply["responses"]] == [("limit", True)]
        grown_mib = (peak_memory_kib(broker) - before) / 1024
        assert grown_mib < 3 * 40, f"the broker's peak memory grew by {grown_mib:.0f} MiB for a 40 MB request"
        # And the broker goes on answering.
        assert admin.call("listRoles")["totalCount"] == 1


def create_tokens(admin, count, role="r", per_request=20):
    for first in range(0, count, per_request):
        responses = admin.request([{"command": "createToken", "name": f"device-{i:05d}", "role": role,
                                    "validUntil": FUTURE} for i in range(first, min(first + per_request, count))])
        assert all("error" not in r for r in responses), responses


def test_a_reply_never_outgrows_the_reply_limit(broker_factory):
    broker = broker_factory(extra_config=["plugin_opt_max_reply_bytes 65536"])
    with broker.client() as admin:
        admin.call("createRole", rolename="r")
        create_tokens(admin, 600)
        message = admin.request_message(json.dumps({"commands": [{"command": "listTokens"}] * 99
                                                   + [{"command": "getRole", "rolename": "r"}]}), timeout=30)
        assert len(message.payload) <= 65536, len(message.payload)
        responses = json.loads(message.payload)["responses"]
        assert len(responses) == 100
        assert responses[0]["code"] == "limit" and "'count'" in responses[0]["error"], responses[0]
        assert all(r.get("code") == "limit" for r in responses[:99])
        assert responses[99]["data"]["rolename"] == "r", responses[99]
        # Paging works, and so does the connection.
        seen = []
        while len(seen) < 600:
            page = admin.call("listTokens", count=100, offset=len(seen))
            assert page["totalCount"] == 600
            seen += [t["name"] for t in page["tokens"]]
        assert seen == [f"device-{i:05d}" for i in range(600)]


def test_commands_after_a_full_reply_do_not_run(broker_factory):
    broker = broker_factory(extra_config=["plugin_opt_max_reply_bytes 16384"])
    with broker.client() as admin:
        admin.call("createRole", rolename="r")
        create_tokens(admin, 40)
        responses = admin.request([{"command": "listTokens", "count": 30}] * 2
                                  + [{"command": "revokeToken", "name": "device-00000"}])
        assert responses[2]["code"] == "limit" and "not run" in responses[2]["error"], responses[2]
        assert admin.call("getToken", name="device-00000")["name"] == "device-00000"
