"""
Clients that do not use tokens (README "Clients that do not use tokens"):
password_file users with an acl_file, the dynamic-security plugin loaded
after this one, and allow_anonymous false, each beside token clients that
stay governed by their role alone.
"""
import json
import subprocess

import pytest

from access_helpers import (
    NOT_AUTHORIZED, SUBACK_FAILURE_V311, Device, MosquittoSub, acl, attempt_login, device, issue,
    make_role, mosquitto_pub, refused,
)
# The release's own dynamic-security plugin and mosquitto_ctrl (MOSQUITTO_PREFIX).
from tokens_helpers import CONTROL_TOPIC, DYNSEC_PLUGIN, MOSQUITTO_CTRL, V5, V311, mosquitto_env


def topics(seen):
    return [topic for topic, _ in seen]


# ---------------------------------------------------------------- password_file + acl_file

ACL_FILE = """\
# anonymous clients: read everything, write nothing
topic read #

user ops
topic readwrite $CONTROL/tokens/#
topic read #

user alice
topic readwrite alice/#
topic read shared/#

# The token client's username: the acl_file would give it all this, but a
# token client is decided by its role only.
user boiler-7
topic readwrite alice/#
topic readwrite #

pattern write devices/%u/#
"""


@pytest.fixture
def file_broker(broker_factory):
    return broker_factory(users={"ops": "ops-password", "alice": "alice-password", "boiler-7": "file-password"},
                          acl=ACL_FILE)


@pytest.fixture
def file_setup(file_broker, make_client):
    ops = make_client(broker=file_broker, username="ops", password="ops-password")
    make_role(ops, "sensors", [acl("publishClientSend", "sensors/#"), acl("subscribePattern", "sensors/#"),
                               acl("publishClientSend", "shared/#")])
    secret, _ = issue(ops, "boiler-7", "sensors")
    return file_broker, ops, secret


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_password_file_users_keep_their_acl_file_rights(file_setup, devices, protocol):
    broker, _, secret = file_setup
    observer = devices(broker, subscriptions=["#"])
    alice = devices(broker, "alice", "alice-password", protocol=protocol)
    denied = NOT_AUTHORIZED if protocol == V5 else 0
    assert alice.publish_code("shared/news", "no") == denied
    assert alice.publish_code("sensors/x", "no") == denied
    assert alice.publish_code("devices/alice/state", "pattern") == 0
    assert alice.publish_code("alice/status", "yes") == 0
    seen = observer.expect("alice/status", "yes")
    assert topics(seen) == ["devices/alice/state", "alice/status"]

    # Mosquitto's acl_file grants every subscription and checks reads at
    # delivery: alice gets shared/ but not sensors/.
    assert alice.subscribe_code("shared/#") == 1
    assert alice.subscribe_code("sensors/#") == 1
    with device(broker, "boiler-7", secret) as dev:
        assert dev.publish_code("sensors/boiler-7", "not for alice") == 0
        assert dev.publish_code("shared/news", "for alice") == 0
    assert topics(alice.expect("shared/news", "for alice")) == ["shared/news"]

    # The same login refused with a wrong password.
    assert refused(protocol, attempt_login(broker.port, "alice", "wrong", protocol))


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_token_clients_follow_their_role_not_the_acl_file(file_setup, devices, protocol):
    broker, _, secret = file_setup
    observer = devices(broker, subscriptions=["#"])
    dev = devices(broker, "boiler-7", secret, protocol=protocol)
    denied = NOT_AUTHORIZED if protocol == V5 else 0
    assert dev.publish_code("alice/status", "acl_file would allow") == denied
    assert dev.publish_code("devices/boiler-7/x", "pattern would allow") == denied
    assert dev.publish_code("sensors/boiler-7", "role allows") == 0
    seen = observer.expect("sensors/boiler-7", "role allows")
    assert topics(seen) == ["sensors/boiler-7"]
    assert dev.subscribe_code("alice/#") == (NOT_AUTHORIZED if protocol == V5 else SUBACK_FAILURE_V311)
    assert dev.subscribe_code("sensors/#") == 1

    # The same username with its password_file password is an ordinary user.
    file_user = devices(broker, "boiler-7", "file-password", protocol=protocol, client_id="file-boiler")
    assert file_user.publish_code("alice/status", "acl_file allows") == 0
    observer.expect("alice/status", "acl_file allows")


def test_real_clients_with_password_file_and_tokens(file_setup):
    broker, _, secret = file_setup
    sub = MosquittoSub(broker.port, "alice/#", username="alice", password="alice-password")
    try:
        sub.wait_subscribed()
        assert mosquitto_pub(broker.port, "alice/a", "from-alice", "alice", "alice-password", qos=1).returncode == 0
        assert mosquitto_pub(broker.port, "alice/a", "from-token", "boiler-7", secret, qos=1).returncode == 0
        assert mosquitto_pub(broker.port, "alice/a", "from-token-file", "boiler-7", "file-password",
                             qos=1).returncode == 0
        assert sub.wait_message("alice/a from-token-file"), sub.output()
        assert sub.messages().count("alice/a from-token") == 0
        assert "alice/a from-alice" in sub.messages()
    finally:
        sub.stop()


def test_password_file_user_manages_tokens_through_the_acl_file(file_setup, make_client):
    broker, ops, _ = file_setup
    created = ops.call("createToken", name="by-ops", role="sensors", validUntil="2099-01-01T00:00:00Z")
    assert created["requestedBy"] == "ops"
    alice = make_client(broker=broker, username="alice", password="alice-password", subscribe_response=False)
    info = alice.mqtt.publish(CONTROL_TOPIC, json.dumps({"commands": [{"command": "listTokens"}]}), qos=1)
    info.wait_for_publish(5)
    assert alice.drain() == [], "the acl_file gives alice no right on the control topic"


# ---------------------------------------------------------------- dynamic security

def ctrl(broker, *args):
    result = subprocess.run([MOSQUITTO_CTRL, "-h", "127.0.0.1", "-p", str(broker.port),
                             "-u", "dynadmin", "-P", "dynadmin-password", "dynsec", *args],
                            capture_output=True, text=True, timeout=10, env=mosquitto_env())
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


@pytest.fixture
def dynsec_broker(broker_factory, tmp_path):
    config = tmp_path / "dynsec.json"
    init = subprocess.run([MOSQUITTO_CTRL, "dynsec", "init", str(config), "dynadmin", "dynadmin-password"],
                          capture_output=True, text=True, timeout=10, env=mosquitto_env())
    assert init.returncode == 0, init.stderr
    broker = broker_factory(extra_config=[f"plugin {DYNSEC_PLUGIN}", f"plugin_opt_config_file {config}"])
    ctrl(broker, "createRole", "writer")
    ctrl(broker, "addRoleACL", "writer", "publishClientSend", "dyn/#", "allow")
    ctrl(broker, "addRoleACL", "writer", "subscribePattern", "dyn/#", "allow")
    ctrl(broker, "createClient", "dyn-alice", "-p", "dyn-alice-password")
    ctrl(broker, "addClientRole", "dyn-alice", "writer")
    return broker


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_dynamic_security_clients_beside_token_clients(dynsec_broker, make_client, devices, protocol):
    broker = dynsec_broker
    admin = make_client(broker=broker)   # anonymous: dynsec defers, the acl_file grants
    make_role(admin, "sensors", [acl("publishClientSend", "sensors/#")])
    secret, _ = issue(admin, "boiler-7", "sensors")
    same_name, _ = issue(admin, "dyn-alice", "sensors")
    observer = devices(broker, subscriptions=["dyn/#", "sensors/#"])
    denied = NOT_AUTHORIZED if protocol == V5 else 0

    alice = devices(broker, "dyn-alice", "dyn-alice-password", protocol=protocol)
    assert alice.publish_code("sensors/x", "dynsec role denies") == denied
    assert alice.publish_code("dyn/alice", "dynsec role allows") == 0
    assert alice.subscribe_code("dyn/#") == 1
    assert refused(protocol, attempt_login(broker.port, "dyn-alice", "wrong-password", protocol))

    dev = devices(broker, "boiler-7", secret, protocol=protocol)
    assert dev.publish_code("dyn/x", "role denies") == denied
    assert dev.publish_code("sensors/boiler-7", "role allows") == 0

    # A token whose name is a dynsec client's: the token and its role decide.
    impostor = devices(broker, "dyn-alice", same_name, protocol=protocol, client_id="token-alice")
    assert impostor.publish_code("dyn/alice", "dynsec would allow") == denied
    assert impostor.publish_code("sensors/alice", "token role allows") == 0

    seen = observer.expect("sensors/alice", "token role allows")
    assert [(t, p.decode()) for t, p in seen] == [
        ("dyn/alice", "dynsec role allows"), ("sensors/boiler-7", "role allows"),
        ("sensors/alice", "token role allows")]

    # dynsec's own control topic still works for its admin.
    assert "dyn-alice" in ctrl(broker, "listClients")
    # Revoking a token does not touch dynsec clients.
    admin.call("revokeToken", name="dyn-alice")
    assert impostor.wait_disconnected(1.0)
    assert alice.is_connected and dev.is_connected
    assert alice.publish_code("dyn/alice", "still here") == 0


def test_dynamic_security_with_real_clients(dynsec_broker, make_client):
    broker = dynsec_broker
    admin = make_client(broker=broker)
    make_role(admin, "sensors", [acl("publishClientSend", "dyn/from-token")])
    secret, _ = issue(admin, "boiler-7", "sensors")
    sub = MosquittoSub(broker.port, "dyn/#", username="dyn-alice", password="dyn-alice-password")
    try:
        sub.wait_subscribed()
        assert mosquitto_pub(broker.port, "dyn/from-dynsec", "1", "dyn-alice", "dyn-alice-password",
                             qos=1).returncode == 0
        assert mosquitto_pub(broker.port, "dyn/other", "2", "boiler-7", secret, qos=1).returncode == 0
        assert mosquitto_pub(broker.port, "dyn/from-token", "3", "boiler-7", secret, qos=1).returncode == 0
        assert sub.wait_message("dyn/from-token 3"), sub.output()
        assert [m for m in sub.messages() if m.startswith("dyn/")] == ["dyn/from-dynsec 1", "dyn/from-token 3"]
    finally:
        sub.stop()


# ---------------------------------------------------------------- allow_anonymous false

@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_allow_anonymous_false(broker_factory, make_client, protocol):
    broker = broker_factory(users={"ops": "ops-password"}, allow_anonymous=False)
    ops = make_client(broker=broker, username="ops", password="ops-password")
    make_role(ops, "sensors", [acl("publishClientSend", "sensors/#")])
    secret, _ = issue(ops, "boiler-7", "sensors")

    assert refused(protocol, attempt_login(broker.port, None, None, protocol))
    assert attempt_login(broker.port, "boiler-7", secret, protocol) == 0
    assert attempt_login(broker.port, "ops", "ops-password", protocol) == 0
    assert refused(protocol, attempt_login(broker.port, "boiler-7", secret[:-1], protocol))
    with Device(broker.port, protocol=protocol, username="boiler-7", password=secret) as dev:
        assert dev.publish_code("sensors/1", "x") == 0
    result = mosquitto_pub(broker.port, "sensors/1", "x")
    assert result.returncode != 0 and "not authorised" in result.stderr
    assert mosquitto_pub(broker.port, "sensors/1", "x", "boiler-7", secret).returncode == 0
