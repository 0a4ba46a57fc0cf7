"""examples/fleet.sh, as an operator runs it against a live broker: one
role for the whole fleet, each device token bound to its client id and
confined to devices/<its name>/, a dashboard token that reads them all."""
import os
import stat
import subprocess

from ctrl_helpers import (  # noqa: F401  (admin_factory and processes are fixtures)
    DEFAULT_CTRL, MOSQUITTO_PUB, REPO, TOKEN_IN_TEXT, admin, admin_factory, ctrl_env, processes, wait_subscribed,
)
from tokens_helpers import TIMEOUT, mosquitto_env

FLEET = os.path.join(REPO, "examples", "fleet.sh")


def run_fleet(admin, count, secrets):
    """The script as the broker release's operator runs it: with that
    release's mosquitto_ctrl first on PATH."""
    env = ctrl_env()
    env["PATH"] = os.path.dirname(DEFAULT_CTRL.binary) + os.pathsep + env.get("PATH", "")
    return subprocess.run(["sh", FLEET, str(count), str(secrets), "-h", "127.0.0.1", "-p", str(admin.port),
                           "-u", admin.name, "-P", admin.token],
                          capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)


def read_secrets(path):
    entries = {}
    with open(path) as f:
        for line in f:
            name, client_id, secret = line.split()
            entries[name] = (client_id, secret)
    return entries


def device_publish(port, client_id, secret, topic, message):
    """mosquitto_pub as a device: its token name as username, its client id."""
    return subprocess.run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(port), "-V", "5", "-q", "1",
                           "-i", client_id, "-u", client_id, "-P", secret, "-t", topic, "-m", message],
                          capture_output=True, text=True, timeout=TIMEOUT * 2, stdin=subprocess.DEVNULL,
                          env=mosquitto_env())


def test_fleet_script_makes_one_role_and_bound_tokens(admin, tmp_path):
    secrets = tmp_path / "fleet.txt"
    result = run_fleet(admin, 3, secrets)
    assert result.returncode == 0, result.stderr
    # Secrets go to the file, never to the terminal.
    assert not TOKEN_IN_TEXT.search(result.stdout + result.stderr)
    assert stat.S_IMODE(os.stat(secrets).st_mode) == 0o600
    entries = read_secrets(secrets)
    assert sorted(entries) == ["dashboard", "device-0001", "device-0002", "device-0003"]
    role = admin.ok("getRole", "device").stdout
    assert "devices/%t/#" in role and "inbox/%c" in role
    listed = admin.ok("list").stdout
    for name in ("device-0001", "device-0002", "device-0003"):
        assert entries[name][0] == name
        assert name in listed
    assert "device-0001" in admin.ok("get", "device-0001").stdout.split("Client id:")[1].splitlines()[0]


def test_fleet_devices_stay_in_their_own_topics(admin, processes, tmp_path):
    secrets = tmp_path / "fleet.txt"
    assert run_fleet(admin, 2, secrets).returncode == 0
    entries = read_secrets(secrets)
    one, two = entries["device-0001"][1], entries["device-0002"][1]
    dashboard = processes.subscriber(admin.port, "dashboard", entries["dashboard"][1], "devices/#",
                                     client_id="wall", count=2)
    wait_subscribed(admin.broker, "wall")
    # Refused: another device's topic, and another device's client id.
    forged = device_publish(admin.port, "device-0001", one, "devices/device-0002/temp", "forged")
    assert forged.returncode == 0 and "forged" not in forged.stdout
    borrowed = subprocess.run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(admin.port), "-V", "5", "-q", "1",
                               "-i", "device-0002", "-u", "device-0001", "-P", one,
                               "-t", "devices/device-0002/temp", "-m", "borrowed"],
                              capture_output=True, text=True, timeout=TIMEOUT * 2, stdin=subprocess.DEVNULL,
                              env=mosquitto_env())
    assert borrowed.returncode != 0
    admin.broker.wait_for_log(r"refused login from \S+ client device-0002: client id not allowed for token "
                              r"device-0001")
    # Each device under its own name reaches the dashboard.
    assert device_publish(admin.port, "device-0001", one, "devices/device-0001/temp", "21.5").returncode == 0
    assert device_publish(admin.port, "device-0002", two, "devices/device-0002/temp", "19.0").returncode == 0
    out, _ = dashboard.communicate(timeout=TIMEOUT * 2)
    assert out.splitlines() == ["devices/device-0001/temp 21.5", "devices/device-0002/temp 19.0"]


def test_fleet_script_run_again_leaves_roles_and_stops_at_a_taken_name(admin, tmp_path):
    assert run_fleet(admin, 1, tmp_path / "first.txt").returncode == 0
    again = run_fleet(admin, 1, tmp_path / "second.txt")
    assert again.returncode == 1
    assert "role device exists; left as it is" in again.stdout
    assert "already exists" in again.stderr.lower() or "exists" in again.stderr
    assert read_secrets(tmp_path / "first.txt")["device-0001"][1] not in again.stdout + again.stderr


def test_fleet_script_refuses_a_count_that_is_not_a_number(admin, tmp_path):
    result = run_fleet(admin, "ten", tmp_path / "fleet.txt")
    assert result.returncode == 2
    assert "COUNT must be a number" in result.stderr
    assert not (tmp_path / "fleet.txt").exists()


def test_fleet_script_never_writes_secrets_into_an_existing_file(admin, tmp_path):
    readable = tmp_path / "shared.txt"
    readable.write_text("notes\n")
    os.chmod(readable, 0o644)
    link = tmp_path / "link.txt"
    os.symlink(tmp_path / "elsewhere.txt", link)
    for target in (readable, link):
        result = run_fleet(admin, 1, target)
        assert result.returncode == 2, result.stderr
        assert "exists; give a new file" in result.stderr
    assert readable.read_text() == "notes\n"
    assert not (tmp_path / "elsewhere.txt").exists()
    # Nothing was created either.
    assert "device-0001" not in admin.ok("list").stdout
    assert admin.ctrl("getRole", "device").returncode != 0
