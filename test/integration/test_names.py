"""
Look-alike and invisible names (issue 13, item 5): the plugin refuses
them with `invalid` naming the field, through the control topic and
through `mosquitto_ctrl tokens create`, whose module links the same rule;
state files holding them are refused at start-up like any bad field.
Names that merely use other scripts keep working.
"""
import pytest

from ctrl_helpers import admin_factory, admin  # noqa: F401 (fixtures)
from tokens_helpers import FUTURE

LOOK_ALIKES = {
    "zero-width space": "admin\u200b",
    "byte order mark": "\ufeffadmin",
    "right-to-left override": "\u202enimda",
    "no-break space only": "\u00a0",
    "ideographic spaces": "\u3000x\u3000",
    "line separator": "a\u2028b",
    "combining marks only": "\u0301\u0301",
    "not NFC": "Cafe\u0301",
}


@pytest.mark.parametrize("name", list(LOOK_ALIKES.values()), ids=list(LOOK_ALIKES))
def test_a_look_alike_name_is_refused(client, name):
    client.call("createRole", rolename="r")
    response = client.request([{"command": "createToken", "name": name, "role": "r", "validUntil": FUTURE}])[0]
    assert response.get("code") == "invalid" and "'name'" in response["error"], response
    role = client.request([{"command": "createRole", "rolename": name}])[0]
    assert role.get("code") == "invalid" and "'rolename'" in role["error"], role
    assert client.call("listTokens")["totalCount"] == 0


def test_names_in_other_scripts_still_work(client):
    client.call("createRole", rolename="r")
    for name in ("Caf\u00e9", "\u6771\u4eac-1", "\u041c\u043e\u0441\u043a\u0432\u0430", "a\u00a0b"):
        client.call("createToken", name=name, role="r", validUntil=FUTURE)
    assert client.call("listTokens")["totalCount"] == 4


def test_mosquitto_ctrl_refuses_them_too(admin):  # noqa: F811
    result = admin.ctrl("create", "admin\u200b", "admin", "1d")
    assert result.returncode != 0
    assert "name" in (result.stdout + result.stderr).lower(), result


def test_names_stored_before_the_rule_still_load(broker_factory, tmp_path):
    """An upgrade must not lock a fleet out: a state file holding names the
    new rule refuses (written before it) loads, and they log in and list."""
    from tokens_helpers import state_token, write_state
    state = str(tmp_path / "tokens.json")
    old_names = ["Cafe\u0301", "sensor\u200d1", "pump\u00a0"]
    write_state(state, roles=[{"rolename": "r", "acls": []}],
                tokens=[state_token(name, "r", "2026-11-01T00:00:00Z", FUTURE) for name in old_names])
    broker = broker_factory(state_file=state)
    with broker.client() as client:
        listed = sorted(t["name"] for t in client.call("listTokens")["tokens"])
    assert listed == sorted(old_names)
