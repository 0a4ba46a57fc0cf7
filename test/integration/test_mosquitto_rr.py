"""
The broker's own request/response client, mosquitto_rr, as an operator
would use it against the control topic (MQTT 5 and 3.1.1).
"""
import json
import subprocess

import pytest

from tokens_helpers import CONTROL_TOPIC, FUTURE, MOSQUITTO_RR, RESPONSE_TOPIC, check_created, mosquitto_env


def rr(broker, payload, *options, response_topic=RESPONSE_TOPIC):
    command = [MOSQUITTO_RR, "-h", "127.0.0.1", "-p", str(broker.port), "-t", CONTROL_TOPIC,
               "-e", response_topic, "-m", payload, "-W", "5", *options]
    result = subprocess.run(command, capture_output=True, text=True, timeout=10, env=mosquitto_env())
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout)


@pytest.mark.parametrize("options", [(), ("-V", "mqttv311"), ("-V", "mqttv5", "-q", "1")],
                         ids=["mqtt5", "mqtt311", "mqtt5-qos1"])
def test_mosquitto_rr(broker, options):
    payload = json.dumps({"commands": [
        {"command": "createRole", "rolename": "r", "correlationData": "1"},
        {"command": "createToken", "name": "from-rr", "role": "r", "validUntil": FUTURE, "correlationData": "2"},
        {"command": "getToken", "name": "nope", "correlationData": "3"},
    ]})
    reply = rr(broker, payload, "-i", "rr-client", *options)
    responses = reply["responses"]
    assert [r["command"] for r in responses] == ["createRole", "createToken", "getToken"]
    assert [r["correlationData"] for r in responses] == ["1", "2", "3"]
    check_created(responses[1]["data"], name="from-rr", role="r", requested_by="rr-client")
    assert responses[2]["code"] == "notFound"

    listed = rr(broker, '{"commands":[{"command":"listTokens"}]}', *options)
    assert listed["responses"][0]["data"]["totalCount"] == 1
    assert "token" not in listed["responses"][0]["data"]["tokens"][0]


def test_mosquitto_rr_with_its_own_response_topic(broker):
    """MQTT 5: the reply goes to the request's Response Topic."""
    reply = rr(broker, '{"commands":[{"command":"listRoles"}]}', response_topic="ops/rr/replies")
    assert reply == {"responses": [{"command": "listRoles", "data": {"totalCount": 0, "roles": []}}]}


def test_mosquitto_rr_gets_an_error_for_garbage(broker):
    reply = rr(broker, "hello")
    assert reply["responses"][0]["command"] == "Unknown command"
    assert reply["responses"][0]["code"] == "invalid"
