"""
Mosquitto 2.1's HTTP API (a listener with `protocol http_api`): it checks
HTTP Basic credentials through the plugins, then a read of the URL's path.
A token logs in there, but reads only what a publishClientReceive ACL of
its role allows explicitly (never by default), and such a login is never a
session: a revoke disconnects nobody, and the token is refused at once.
Runs against 2.1 only (MOSQUITTO_PREFIX=build/mosquitto-2.1.2/_prefix).
"""
import base64
import urllib.error
import urllib.request

import pytest

from access_helpers import Device, acl, issue, make_role
from tokens_helpers import broker_version, free_port

pytestmark = pytest.mark.skipif(broker_version() < (2, 1), reason="the HTTP API is Mosquitto 2.1's")

VERSION_PATH = "/api/v1/version"


def http_status(port, path, username=None, password=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if password is not None:
        credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {credentials}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def api_broker(broker_factory):
    http_port = free_port()
    broker = broker_factory(extra_config=[f"listener {http_port} 127.0.0.1", "protocol http_api"])
    broker.http_port = http_port
    return broker


def test_a_token_reads_the_api_only_through_an_explicit_receive_acl(api_broker):
    with api_broker.client() as admin:
        make_role(admin, "api-reader", [acl("publishClientReceive", "/api/v1/#")])
        make_role(admin, "everything", [acl("publishClientSend", "#"), acl("subscribePattern", "#")])
        make_role(admin, "denied", [acl("publishClientReceive", "/api/v1/#", allow=False)])
        reader, _ = issue(admin, "reader", "api-reader")
        broad, _ = issue(admin, "broad", "everything")
        denied, _ = issue(admin, "denied", "denied")
    port = api_broker.http_port
    assert http_status(port, VERSION_PATH, "reader", reader) == 200
    assert http_status(port, VERSION_PATH, "broad", broad) == 401, "receiving defaults to allow, not for HTTP"
    assert http_status(port, VERSION_PATH, "denied", denied) == 401
    assert http_status(port, VERSION_PATH, "reader", "mqtk_not-a-token") == 401


def test_an_api_login_is_not_a_session(api_broker):
    with api_broker.client() as admin:
        make_role(admin, "api-reader", [acl("publishClientReceive", "/api/v1/#")])
        make_role(admin, "plain")
        reader, _ = issue(admin, "reader", "api-reader")
        other, _ = issue(admin, "bystander", "plain")
        assert http_status(api_broker.http_port, VERSION_PATH, "reader", reader) == 200
        # An MQTT client that happens to be called like the API's context.
        bystander = Device(api_broker.port, client_id="http-api", username="bystander", password=other)
        try:
            revoked = admin.call("revokeToken", name="reader")
            assert revoked["disconnected"] == 0 and revoked["offlineSessionsEnded"] == 0
            assert not bystander.wait_disconnected(1.0), "a revoke kicked an unrelated client called http-api"
        finally:
            bystander.close()
    assert http_status(api_broker.http_port, VERSION_PATH, "reader", reader) == 401
