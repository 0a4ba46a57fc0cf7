"""
Replies go only to the requesting client (SPEC section 4), and a token's
secret appears nowhere but in that one reply: not to other subscribers, not
in the broker's log, not in the state file (SPEC sections 1 and 5).
"""
import json
import os

from tokens_helpers import FUTURE, RESPONSE_TOPIC, V5, V311, check_token_format, response_properties

SPY_TOPICS = ["#", "$CONTROL/#", RESPONSE_TOPIC, "$CONTROL/tokens/v1/+", "my/reply/topic", "my/#", "$SYS/#"]


def spy(make_client, protocol):
    return make_client(protocol=protocol, client_id=f"spy-{protocol}", subscriptions=SPY_TOPICS)


def leaked(messages, secrets=()):
    """Messages a spy got that it must not have: any control reply, or any
    payload holding a secret ($SYS statistics and the lifecycle events, which
    carry metadata only, are fine)."""
    bad = []
    for message in messages:
        public = message.topic.startswith("$SYS/") or message.topic == "$CONTROL/tokens/v1/events"
        if not public or any(s.encode() in message.payload for s in secrets) or b"mqtk_" in message.payload:
            bad.append((message.topic, message.payload[:200]))
    return bad


def test_other_subscribers_never_see_replies(broker, make_client):
    spies = [spy(make_client, V5), spy(make_client, V311)]
    requester = make_client(protocol=V5, client_id="requester")
    old = make_client(protocol=V311, client_id="requester-311")

    secrets = []
    requester.call("createRole", rolename="r")
    secrets.append(requester.call("createToken", name="a", role="r", validUntil=FUTURE)["token"])
    secrets.append(old.call("createToken", name="b", role="r", validUntil=FUTURE)["token"])
    # MQTT 5 with a Response Topic that the spies subscribe to.
    message = requester.request_message(json.dumps({"commands": [
        {"command": "createToken", "name": "c", "role": "r", "validUntil": FUTURE}]}),
        properties=response_properties("my/reply/topic", b"abc"))
    assert message.topic == "my/reply/topic"
    secrets.append(json.loads(message.payload)["responses"][0]["data"]["token"])
    # Errors too.
    assert requester.request([{"command": "getToken", "name": "ghost"}])[0]["code"] == "notFound"
    for secret in secrets:
        check_token_format(secret)

    for s in spies:
        assert leaked(s.drain(), secrets) == []

    # The spies do hear ordinary messages on those topics (so the silence
    # above means something).
    requester.publish("my/reply/topic", b"canary", qos=1)
    for s in spies:
        heard = {(m.topic, m.payload) for m in s.drain(0.3) if not m.topic.startswith("$SYS/")}
        assert heard == {("my/reply/topic", b"canary")}
    # The requesters got exactly their replies, nothing more.
    assert requester.drain(0.2) == []
    assert old.drain(0.2) == []


def test_reply_goes_to_the_requester_not_to_a_namesake_subscriber(broker, make_client):
    """Two clients subscribed to the response topic; only the one that asked
    gets the answer, whichever of them asks."""
    one = make_client(client_id="one")
    two = make_client(client_id="two", protocol=V311)
    one.call("createRole", rolename="r")
    assert two.drain(0.3) == []
    two.call("createToken", name="t", role="r", validUntil=FUTURE)
    assert one.drain(0.3) == []


def test_secret_not_in_log_or_state_file(broker, make_client):
    client = make_client()
    client.call("createRole", rolename="r")
    secrets = [client.call("createToken", name=f"t{i}", role="r", validUntil=FUTURE)["token"]
               for i in range(3)]
    hashes = [client.call("getToken", name=f"t{i}")["hash"] for i in range(3)]
    client.call("revokeToken", name="t0")
    client.close()
    broker.stop()

    log = broker.log
    assert "| createToken |" in log, "the change log lines are missing"
    for secret, hash_hex in zip(secrets, hashes):
        assert secret not in log
        assert secret[5:48] not in log        # nor the random part alone
        assert secret not in open(broker.state_file).read()
    # Every file the broker left beside the state file, lock and temp files too.
    folder = os.path.dirname(broker.state_file)
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and name != os.path.basename(broker.log_path):
            content = open(path, "rb").read()
            for secret in secrets:
                assert secret.encode() not in content, f"secret found in {name}"
