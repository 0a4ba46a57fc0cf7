"""
Fault injection against a real broker (docs/state-file.md): the state
folder's write, fsync and rename fail (an LD_PRELOAD shim,
test/faults/fail_io.c), the disk fills up (a small tmpfs, as root), and
the folder becomes unwritable. A change that cannot be saved fails with
code `storage` and leaves memory and disk as they were; a snapshot that
cannot be written leaves the journal in charge; the broker keeps serving
throughout, succeeds again once the fault is gone, and what it leaves on
disk always loads (after kill -9 too).
"""
import errno
import os
import subprocess
import time

import pytest

from access_helpers import attempt_login, device
from tokens_helpers import FUTURE, REPO

SHIM = os.path.join(REPO, "build", "fail_io.so")


def setup_module():
    if not os.path.exists(SHIM):
        pytest.fail(f"missing {SHIM} (run `make` first)", pytrace=False)


class Faults:
    """Switches the shim's faults on and off through its control file."""

    def __init__(self, folder, control):
        self.folder = str(folder)
        self.control = str(control)

    @property
    def env(self):
        return {"LD_PRELOAD": SHIM, "FAIL_IO_FOLDER": self.folder, "FAIL_IO_CONTROL": self.control}

    def on(self, words):
        """words: the calls to fail and the errno name (fail_io.c), for
        example "write ENOSPC partial"."""
        # Written aside and renamed: the shim never reads half a file.
        with open(self.control + ".new", "w") as f:
            f.write(words + "\n")
        os.rename(self.control + ".new", self.control)

    def off(self):
        os.unlink(self.control)


# ---------------------------------------------------------------- helpers

def listing(admin):
    """What an operator sees: every token and role."""
    return admin.call("listTokens")["tokens"], admin.call("listRoles")["roles"]


def without_last_used(tokens):
    """lastUsed is saved lazily (every last_used_save_interval), so memory
    may be ahead of the disk there, and a kill -9 may lose it."""
    return [{k: v for k, v in t.items() if k not in ("lastUsed", "status")} for t in tokens]


def assert_disk_matches(broker, admin):
    """The snapshot plus the journal, read independently, is what memory holds."""
    tokens, roles = listing(admin)
    on_disk = broker.read_state()
    assert on_disk["roles"] == roles
    assert without_last_used(on_disk["tokens"]) == without_last_used(tokens)


def same_state(first, second):
    return without_last_used(first[0]) == without_last_used(second[0]) and first[1] == second[1]


def assert_survives_kill_9(broker, admin, make_client):
    """Disk matches memory, and what kill -9 leaves loads into the same state."""
    assert_disk_matches(broker, admin)
    memory = listing(admin)
    admin.close()
    broker.restart(hard=True)
    assert same_state(listing(make_client(broker=broker)), memory)


def fold_children(pid):
    """The broker's background fold children, reaped or not: none once the
    last fold has been installed (or given up)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                if entry.isdigit() and int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def wait_for_folds(broker, admin, timeout=10.0):
    """Until no background fold is running or waiting to be installed
    (each request lets a tick run, which installs a finished one)."""
    deadline = time.monotonic() + timeout
    while fold_children(broker.process.pid):
        assert time.monotonic() < deadline, "a background fold did not end"
        admin.call("listRoles")
        time.sleep(0.01)


def leftovers(broker):
    """Temporary snapshot files left in the state folder."""
    base = os.path.basename(broker.state_file)
    return [n for n in os.listdir(os.path.dirname(broker.state_file)) if n.startswith(base + ".tmp")]


def populate(admin):
    """Roles and tokens every command below can act on; returns the secrets."""
    admin.call("createRole", rolename="dev", acls=[
        {"acltype": "publishClientSend", "topic": "d/#", "priority": 0, "allow": True},
        {"acltype": "subscribePattern", "topic": "d/#", "priority": 0, "allow": True}])
    admin.call("createRole", rolename="spare")
    return {name: admin.call("createToken", name=name, role="dev", validUntil=FUTURE)["token"]
            for name in ("kept", "victim")}


COMMANDS = [
    {"command": "createToken", "name": "new-one", "role": "dev", "validUntil": FUTURE},
    {"command": "revokeToken", "name": "victim"},
    {"command": "rotateToken", "name": "victim"},
    {"command": "createRole", "rolename": "extra"},
    {"command": "deleteRole", "rolename": "spare"},
    {"command": "addRoleACL", "rolename": "dev", "acltype": "subscribeLiteral", "topic": "y", "allow": True},
    {"command": "removeRoleACL", "rolename": "dev", "acltype": "subscribePattern", "topic": "d/#"},
]
# Ends a session of the token it acts on, once it succeeds.
ENDS_VICTIMS_SESSION = {"revokeToken", "rotateToken"}


@pytest.fixture
def faults(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    return Faults(folder, tmp_path / "faults")


@pytest.fixture
def faulty_broker(broker_factory, faults):
    """A broker whose state folder the shim can fail (no fault yet)."""
    def make(**kwargs):
        return broker_factory(state_file=os.path.join(faults.folder, "tokens.json"), env=faults.env, **kwargs)
    return make


# ---------------------------------------------------------------- write and fsync

@pytest.mark.parametrize("fault", ["write EIO", "fsync EIO", "write ENOSPC partial"],
                         ids=lambda f: f.replace(" ", "-"))
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c["command"])
def test_change_that_cannot_be_written_fails_and_changes_nothing(faulty_broker, faults, make_client,
                                                                 command, fault):
    call, error = fault.split()[:2]
    broker = faulty_broker()
    admin = make_client(broker=broker)
    secrets = populate(admin)
    victim = device(broker, "victim", secrets["victim"])
    try:
        before = listing(admin)
        disk_before = broker.state_bytes()

        faults.on(fault)
        response = admin.request([dict(command, correlationData="c")])[0]

        assert response["code"] == "storage", response
        assert response["correlationData"] == "c"
        assert "data" not in response
        assert f"{call} failed: {os.strerror(getattr(errno, error))}" in response["error"], response
        # Nothing changed, in memory or on disk; the token still logs in.
        assert listing(admin) == before
        assert broker.state_bytes() == disk_before
        assert_disk_matches(broker, admin)
        assert victim.is_connected
        assert attempt_login(broker.port, "kept", secrets["kept"]) == 0
        assert attempt_login(broker.port, "victim", secrets["victim"]) == 0

        faults.off()
        response = admin.request([command])[0]

        assert "error" not in response, response
        after = listing(admin)
        assert not same_state(after, before)
        assert_disk_matches(broker, admin)
        if command["command"] in ENDS_VICTIMS_SESSION:
            assert victim.wait_disconnected()
        assert attempt_login(broker.port, "kept", secrets["kept"]) == 0
    finally:
        victim.close()
    # What kill -9 leaves loads, with every acknowledged change.
    admin.close()
    broker.restart(hard=True)
    again = make_client(broker=broker)
    assert same_state(listing(again), after)


def test_failed_fsync_of_a_new_journal_leaves_no_journal(faulty_broker, faults, make_client):
    """The first change after a clean start creates the journal, whose name
    must be made durable (the folder fsync'd) before the line counts."""
    broker = faulty_broker()
    admin = make_client(broker=broker)
    populate(admin)
    admin.close()
    assert broker.stop() == 0
    broker.start()
    admin = make_client(broker=broker)
    before = listing(admin)
    disk_before = broker.state_bytes()
    faults.on("fsync EIO")

    response = admin.request([COMMANDS[0]])[0]

    assert response["code"] == "storage", response
    assert "cannot fsync the folder" in response["error"], response
    assert listing(admin) == before
    assert not os.path.exists(broker.journal_file)
    assert broker.state_bytes() == disk_before
    faults.off()
    assert "error" not in admin.request([COMMANDS[0]])[0]
    assert_disk_matches(broker, admin)


def cut_short(broker, faults, admin):
    """A change whose line reaches the disk all but its newline and cannot
    be taken back (ftruncate fails too): returns the listing before it."""
    before = listing(admin)
    disk_before = broker.state_bytes()
    faults.on("write ftruncate ENOSPC partial")
    response = admin.request([COMMANDS[0]])[0]
    assert response["code"] == "storage", response
    assert listing(admin) == before
    # The line is there, without its newline: it does not count.
    assert len(broker.state_bytes()) > len(disk_before)
    with open(broker.journal_file, "rb") as f:
        assert not f.read().endswith(b"\n")
    assert_disk_matches(broker, admin)
    # Nothing more is appended after it while it cannot be cut off.
    response = admin.request([COMMANDS[3]])[0]
    assert response["code"] == "storage" and "cannot trim" in response["error"], response
    assert listing(admin) == before
    return before


def test_line_that_cannot_be_taken_back_is_cut_off_before_the_next_change(faulty_broker, faults, make_client):
    broker = faulty_broker()
    admin = make_client(broker=broker)
    populate(admin)
    cut_short(broker, faults, admin)

    faults.off()
    assert "error" not in admin.request([COMMANDS[0]])[0]
    with open(broker.journal_file, "rb") as f:
        assert f.read().endswith(b"\n")
    assert_survives_kill_9(broker, admin, make_client)


def test_kill_9_with_a_line_cut_short_loads_without_it(faulty_broker, faults, make_client):
    broker = faulty_broker()
    admin = make_client(broker=broker)
    populate(admin)
    before = cut_short(broker, faults, admin)
    admin.close()
    broker.kill()
    faults.off()

    broker.start()
    broker.wait_for_log(r"tokens: the journal's last change was cut short by a crash")
    admin = make_client(broker=broker)
    assert same_state(listing(admin), before)
    assert "error" not in admin.request([COMMANDS[0]])[0]
    assert_disk_matches(broker, admin)


def test_a_fault_on_every_change_of_a_request_fails_each_alone(faulty_broker, faults, make_client):
    """Commands in one request are independent: under the fault each change
    fails and reads still answer; once it is gone the next change works."""
    broker = faulty_broker()
    admin = make_client(broker=broker)
    populate(admin)
    before = listing(admin)
    faults.on("write EIO")

    responses = admin.request([COMMANDS[0], {"command": "listRoles"}, COMMANDS[3]])

    assert [r.get("code") for r in responses] == ["storage", None, "storage"], responses
    assert responses[1]["data"]["roles"] == before[1]
    faults.off()
    responses = admin.request([COMMANDS[0], COMMANDS[3]])
    assert [r.get("code") for r in responses] == [None, None], responses
    assert_disk_matches(broker, admin)


# ---------------------------------------------------------------- rename (the snapshot)

def journal_lines(broker):
    with open(broker.journal_file, "rb") as f:
        return f.read().count(b"\n")


def test_snapshot_that_cannot_be_renamed_leaves_the_journal_in_charge(faulty_broker, faults, make_client):
    """A snapshot is not part of any command: its failure fails none, and
    every change stays in the journal until a later snapshot works. On the
    broker's thread, as at shutdown (the background fold's own failures are
    test_background_fold.py's)."""
    broker = faulty_broker(extra_config=["plugin_opt_snapshot_after 3", "plugin_opt_background_fold false"])
    admin = make_client(broker=broker)
    secrets = populate(admin)
    with open(broker.state_file, "rb") as f:
        snapshot_before = f.read()

    faults.on("rename EIO")
    for i in range(4):
        admin.call("createToken", name=f"during-{i}", role="dev", validUntil=FUTURE)

    broker.wait_for_log(r"tokens: could not write a snapshot .*rename failed: Input/output error")
    with open(broker.state_file, "rb") as f:
        assert f.read() == snapshot_before
    assert leftovers(broker) == []
    assert_disk_matches(broker, admin)
    assert attempt_login(broker.port, "kept", secrets["kept"]) == 0
    memory = listing(admin)

    # A clean stop cannot fold either: the journal stays, and loads.
    admin.close()
    assert broker.stop() == 0
    assert os.path.exists(broker.journal_file)
    assert leftovers(broker) == []
    broker.start()
    admin = make_client(broker=broker)
    assert same_state(listing(admin), memory)

    # The listing after the restart tried the overdue snapshot, and failed:
    # the next try waits until the journal has doubled, so that a failing
    # disk does not cost a whole snapshot per command.
    faults.off()
    changes_before = journal_lines(broker)
    admin.call("createToken", name="after", role="dev", validUntil=FUTURE)
    assert os.path.exists(broker.journal_file)
    for i in range(changes_before + 1):
        if not os.path.exists(broker.journal_file):
            break
        admin.call("createToken", name=f"after-{i}", role="dev", validUntil=FUTURE)
    assert not os.path.exists(broker.journal_file)
    with open(broker.state_file, "rb") as f:
        assert f.read() != snapshot_before
    assert_disk_matches(broker, admin)
    assert attempt_login(broker.port, "kept", secrets["kept"]) == 0


def test_journal_that_cannot_be_removed_after_a_snapshot_loses_no_later_change(faulty_broker, faults,
                                                                              make_client):
    """A snapshot holds the journal's changes, so the journal is removed; if
    that fails, the old lines stay in the file. A later change that cannot
    be written must then cut off only its own line, not the change before."""
    broker = faulty_broker(extra_config=["plugin_opt_snapshot_after 3"])
    admin = make_client(broker=broker)
    populate(admin)
    faults.on("unlink EIO")
    admin.call("createRole", rolename="folded-1")
    admin.call("createRole", rolename="folded-2")   # the snapshot, whose journal stays
    with open(broker.journal_file, "rb") as f:
        assert f.read().count(b"\n") >= 3

    faults.off()
    admin.call("createToken", name="acknowledged", role="dev", validUntil=FUTURE)
    faults.on("write EIO")
    assert admin.request([COMMANDS[0]])[0]["code"] == "storage"
    faults.off()

    assert_disk_matches(broker, admin)
    memory = listing(admin)
    admin.close()
    broker.restart(hard=True)
    admin = make_client(broker=broker)
    assert same_state(listing(admin), memory)
    assert "acknowledged" in [t["name"] for t in listing(admin)[0]]


# ---------------------------------------------------------------- disk full

def run(*command):
    return subprocess.run(command, capture_output=True, text=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs, unmounted after the test. Tests name it before
    broker_factory: fixtures end in reverse order, so the brokers stop
    before the unmount."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = run("mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(folder))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield folder
    if run("umount", str(folder)).returncode != 0:
        run("umount", "-l", str(folder))


def fill(folder):
    """Writes a file until the disk is full; returns its path."""
    path = os.path.join(folder, "filler")
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x" * 1024)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    return path


def test_disk_full_fails_the_change_and_changes_nothing(small_disk, broker_factory, make_client):
    broker = broker_factory(state_file=small_disk / "tokens.json")
    admin = make_client(broker=broker)
    secrets = populate(admin)
    filler = fill(small_disk)

    # The journal's last page may still have room for a few lines.
    for number in range(100):
        before = listing(admin)
        disk_before = broker.state_bytes()
        command = {"command": "createToken", "name": f"t{number}", "role": "dev", "validUntil": FUTURE}
        response = admin.request([command])[0]
        if "error" in response:
            break
    else:
        pytest.fail("100 tokens fitted on a full 64 KiB disk")

    assert response["code"] == "storage", response
    assert "No space left on device" in response["error"]
    assert listing(admin) == before
    # A line cut short by the full disk was taken back.
    assert broker.state_bytes() == disk_before
    assert_disk_matches(broker, admin)
    assert attempt_login(broker.port, "kept", secrets["kept"]) == 0
    assert admin.request([{"command": "getToken", "name": f"t{number}"}])[0]["code"] == "notFound"

    # Stopping on a full disk: the snapshot does not fit, the journal stays.
    memory = listing(admin)
    admin.close()
    assert broker.stop() == 0
    assert "could not write a snapshot" in broker.current_log
    assert leftovers(broker) == []
    broker.start()
    admin = make_client(broker=broker)
    assert same_state(listing(admin), memory)

    os.unlink(filler)
    assert "error" not in admin.request([command])[0]
    assert_disk_matches(broker, admin)
    memory = listing(admin)
    admin.close()
    assert broker.stop() == 0
    assert not os.path.exists(broker.journal_file)
    broker.start()
    assert same_state(listing(make_client(broker=broker)), memory)


# ---------------------------------------------------------------- unwritable folder

class Unwritable:
    """Makes a folder unwritable to the broker and back. Root ignores file
    modes, so as root the folder gets a read-only bind mount of itself on
    top (what the broker opens by name afterwards is read-only, as with
    chmod; files it already holds open stay writable, as with chmod). Not
    as root, chmod 0555 does it."""

    def __init__(self, folder):
        self.folder = str(folder)
        self.mounted = False

    def __enter__(self):
        if os.geteuid() != 0:
            os.chmod(self.folder, 0o555)
            return self
        bound = run("mount", "--bind", self.folder, self.folder)
        if bound.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {bound.stderr.strip()}")
        self.mounted = True
        read_only = run("mount", "-o", "remount,ro,bind", self.folder)
        assert read_only.returncode == 0, read_only.stderr
        return self

    def __exit__(self, *exc):
        if self.mounted:
            if run("umount", self.folder).returncode != 0:
                run("umount", "-l", self.folder)
            self.mounted = False
        else:
            os.chmod(self.folder, 0o755)


UNWRITABLE_ERROR = "Read-only file system" if os.geteuid() == 0 else "Permission denied"


@pytest.fixture
def state_folder(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    yield folder
    os.chmod(folder, 0o755)


def test_unwritable_folder_fails_the_change_and_changes_nothing(broker_factory, make_client, state_folder):
    broker = broker_factory(state_file=state_folder / "tokens.json")
    admin = make_client(broker=broker)
    secrets = populate(admin)
    # A clean restart folds the journal away: the next change must create it.
    admin.close()
    assert broker.stop() == 0
    broker.start()
    admin = make_client(broker=broker)
    before = listing(admin)
    disk_before = broker.state_bytes()
    command = COMMANDS[0]

    with Unwritable(state_folder):
        response = admin.request([command])[0]

        assert response["code"] == "storage", response
        assert broker.journal_file in response["error"] and UNWRITABLE_ERROR in response["error"], response
        assert listing(admin) == before
        assert broker.state_bytes() == disk_before
        assert not os.path.exists(broker.journal_file)
        assert attempt_login(broker.port, "kept", secrets["kept"]) == 0

    response = admin.request([command])[0]
    assert "error" not in response, response
    assert_survives_kill_9(broker, admin, make_client)


def test_unwritable_folder_with_the_journal_open_keeps_recording(broker_factory, make_client, state_folder):
    """The journal, already open, still takes changes; only the snapshot
    (a new file in the folder) has to wait until the folder is writable."""
    broker = broker_factory(state_file=state_folder / "tokens.json",
                            extra_config=["plugin_opt_snapshot_after 3"])
    admin = make_client(broker=broker)
    populate(admin)
    admin.call("createRole", rolename="opens-the-journal")
    wait_for_folds(broker, admin)   # the one populate made due, which would fail in the folder too
    assert os.path.exists(broker.journal_file)

    with Unwritable(state_folder):
        for i in range(4):
            admin.call("createToken", name=f"during-{i}", role="dev", validUntil=FUTURE)
        broker.wait_for_log(r"tokens: could not write a snapshot .*create a temporary file failed: "
                            + UNWRITABLE_ERROR)
        assert_disk_matches(broker, admin)
        assert leftovers(broker) == []
        memory = listing(admin)
    # What is on disk loads, after kill -9 too.
    admin.close()
    broker.restart(hard=True)
    admin = make_client(broker=broker)
    assert same_state(listing(admin), memory)
    admin.call("createToken", name="after", role="dev", validUntil=FUTURE)
    assert_disk_matches(broker, admin)
