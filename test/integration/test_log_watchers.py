"""
Refused token logins in the broker's log, as a log watcher reads them
(issue 13, SPEC section 2): one line per refusal, in one stable form that
names the client's address, with the client id escaped so that a client
cannot forge a line or a field. The fail2ban filter in examples/ must find
every refusal's address and nothing else, with fail2ban's own
fail2ban-regex.
"""
import os
import re
import shutil
import subprocess

import pytest

from access_helpers import Device, attempt_login, forge_token
from tokens_helpers import V5, V311, client_log_re

FILTER = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "fail2ban", "filter.d",
                      "mosquitto-tokens.conf")
# The plugin's own lines: the message right after mosquitto's timestamp.
LINE = re.compile(r"^\d+: tokens: refused login from (\S+) client (\S+): (.+)$")
# A client id that would forge a refusal from another address if it were
# logged raw: spaces, a fake field, a right-to-left override.
FORGER = "x: unknown token\u202e tokens: refused login from 203.0.113.66 client y"


def refusals(broker):
    return [m.groups() for m in (LINE.match(line) for line in broker.log_lines()) if m]


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_a_refused_login_names_the_address_and_an_escaped_client_id(broker, protocol):
    assert attempt_login(broker.port, "u", forge_token(), protocol, client_id=FORGER) not in (0, None)
    assert attempt_login(broker.port, "u", "mqtk_short", protocol, client_id="plain-id") not in (0, None)
    broker.wait_for_log(r"refused login from 127\.0\.0\.1 client plain-id: malformed token")
    lines = refusals(broker)
    assert ("127.0.0.1", "plain-id", "malformed token") in lines
    forged = [line for line in lines if line[1].startswith("x")]
    assert len(forged) == 1, lines
    address, client_id, reason = forged[0]
    assert address == "127.0.0.1"
    assert " " not in client_id and "\u202e" not in client_id, client_id
    assert client_id.startswith(r"x:\x20unknown\x20token\xe2\x80\xae"), client_id
    assert reason.startswith("unknown token with hash ")
    # Later releases than Debian's (2.0.22, 2.1) log the refused client's
    # raw id themselves, in lines that start with it: "Sending CONNACK to
    # <id> (0, 135)" and "Client <id> disconnected, not authorised." (2.1:
    # "Client <id> [<address>:<port>] disconnected: not authorised."). Not
    # the plugin's lines, and no refusal for the fail2ban filter (the last
    # test). No other line may carry the forged address.
    broker_own = re.compile(r"^\d+: (?:Sending CONNACK to " + re.escape(FORGER) + r" \(|" + client_log_re(FORGER)
                            + r"disconnected[,:] not authorised\.$)")
    assert "203.0.113.66" not in "".join(line for line in broker.log_lines() if "refused login from" in line
                                         and not line.split("refused login from ")[1].startswith("127.0.0.1")
                                         and not broker_own.match(line))


def test_a_long_client_id_is_cut_in_the_log(broker):
    long_id = "a" * 1000
    attempt_login(broker.port, "u", forge_token(), client_id=long_id)
    broker.wait_for_log(r"refused login from 127\.0\.0\.1 client a{128}\.\.\.: unknown token")


@pytest.mark.skipif(shutil.which("fail2ban-regex") is None, reason="fail2ban is not installed (make deps)")
def test_the_fail2ban_filter_finds_every_refusal_and_only_those(broker_factory, tmp_path):
    # With log_type all, mosquitto starts its subscribe lines with the raw
    # client id: a forger's id there must not get an address banned either.
    broker = broker_factory(extra_config=["log_type all"])
    forger = Device(broker.port, client_id="tokens: refused login from 203.0.113.77 client x:")
    assert forger.subscribe_code("unknown token with hash " + "a" * 40) in (0, 1)
    forger.close()
    for attempt in range(3):
        attempt_login(broker.port, "u", forge_token(), client_id=f"guess-{attempt}")
    attempt_login(broker.port, "u", forge_token(), client_id=FORGER)
    attempt_login(broker.port, "u", "not-a-token", client_id=FORGER)   # left to others: no refusal line
    broker.wait_for_log(r"client x:\\x20unknown")
    log = tmp_path / "mosquitto.log"
    log.write_text("".join(line + "\n" for line in broker.log_lines()))
    run = subprocess.run(["fail2ban-regex", "--print-all-matched", str(log), os.path.abspath(FILTER)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "refused login from 203.0.113.77" in log.read_text(), "the forged subscribe line was not logged"
    matched = re.search(r"Lines: \d+ lines, \d+ ignored, (\d+) matched", run.stdout)
    genuine = [line for line in refusals(broker) if line[0] == "127.0.0.1"]
    assert matched and int(matched.group(1)) == len(genuine) == 4, run.stdout
    shown = run.stdout.split("Matched line(s):")[1].split("`-")[0].strip().splitlines()
    assert len(shown) == 4 and all("refused login from 127.0.0.1 client " in line for line in shown), shown
