"""
Limits are plugin options (README): a bad value stops the broker with a
message naming the option; a set limit is enforced over MQTT with code
"limit", and nothing of a refused request runs.
"""
import pytest

from tokens_helpers import port_open


@pytest.mark.parametrize("line, words", [
    ("plugin_opt_max_commands 0", ["plugin_opt_max_commands", "from 1"]),
    ("plugin_opt_max_request_bytes lots", ["plugin_opt_max_request_bytes", "lots"]),
    ("plugin_opt_max_topic_bytes 70000", ["plugin_opt_max_topic_bytes", "65535"]),
])
def test_a_bad_limit_stops_the_broker(broker_factory, line, words):
    broker = broker_factory(start=False, extra_config=[line])
    assert broker.start_expecting_failure() != 0
    assert not port_open(broker.port)
    lines = [l for l in broker.log_lines() if "tokens:" in l]
    assert any(all(w in l for w in words) for l in lines), broker.log


def test_limits_set_in_the_configuration_apply(broker_factory, make_client):
    broker = broker_factory(extra_config=["plugin_opt_max_commands 2", "plugin_opt_max_tokens 1"])
    client = make_client(broker=broker)
    refused = client.request_raw('{"commands": [{"command": "createRole", "rolename": "a"},'
                                 '{"command": "createRole", "rolename": "b"},'
                                 '{"command": "createRole", "rolename": "c"}]}')["responses"]
    assert len(refused) == 1 and refused[0]["code"] == "limit"
    assert client.call("listRoles")["totalCount"] == 0
    client.call("createRole", rolename="r")
    client.call("createToken", name="one", role="r", validUntil="2099-01-01T00:00:00Z")
    second = client.request([{"command": "createToken", "name": "two", "role": "r",
                              "validUntil": "2099-01-01T00:00:00Z"}])[0]
    assert second["code"] == "limit"
    assert client.call("listTokens")["totalCount"] == 1
