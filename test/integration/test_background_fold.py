"""
The background fold (docs/state-file.md, "Folding in the background"): when
the journal is due to be folded into a new snapshot, a forked child writes
the snapshot while the broker goes on answering commands and logins; the
broker installs it and rebases the journal at a later tick. The fault shim
(test/faults/fail_io.c) holds the child in the middle of its fsync
("child fsync stall"), fails its writes ("child write ENOSPC"), or holds
the broker itself in a step of the install ("parent ... stall"), so that
each moment can be looked at, killed, and restarted from.
"""
import json
import os
import signal
import time

import pytest

from access_helpers import attempt_login
from test_faults import Faults, SHIM, fold_children, assert_disk_matches, leftovers, listing, same_state
from tokens_helpers import FUTURE

FOLD_AFTER = 5   # plugin_opt_snapshot_after: a fold is due every 5 changes


def setup_module():
    if not os.path.exists(SHIM):
        pytest.fail(f"missing {SHIM} (run `make` first)", pytrace=False)


@pytest.fixture
def faults(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    return Faults(folder, tmp_path / "faults")


@pytest.fixture
def fold_broker(broker_factory, faults):
    def make(**kwargs):
        return broker_factory(state_file=os.path.join(faults.folder, "tokens.json"), env=faults.env,
                              extra_config=[f"plugin_opt_snapshot_after {FOLD_AFTER}"], **kwargs)
    return make


# ---------------------------------------------------------------- helpers

def children(pid):
    """The broker's fold children, reaped or not."""
    return fold_children(pid)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(condition, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def snapshot_header(broker):
    try:
        with open(broker.state_file) as f:
            document = json.load(f)
    except FileNotFoundError:
        return None
    return document.get("journalSequence"), document.get("journalId")


def make_changes(admin, prefix, count):
    for i in range(count):
        admin.call("createToken", name=f"{prefix}-{i}", role="dev", validUntil=FUTURE)


def start_stalled_fold(broker, faults, admin, words="child fsync stall"):
    """Makes a fold due with the child held in its fsync; returns the
    child's pid and the snapshot header before it."""
    admin.call("createRole", rolename="dev")
    before = snapshot_header(broker)
    faults.on(words)
    make_changes(admin, "before", FOLD_AFTER - 1)   # with the role: the fold is due
    wait_until(lambda: os.path.exists(faults.control + ".stalled"), "the fold child to be held")
    os.unlink(faults.control + ".stalled")
    [child] = children(broker.process.pid)
    return child, before


def nudge(admin):
    """A command that fails harmlessly: the broker's loop turns (a tick runs)."""
    admin.request([{"command": "getToken", "name": "nobody"}])


def wait_for_fold_installed(broker, admin, previous_header):
    def installed():
        nudge(admin)
        return not children(broker.process.pid) and snapshot_header(broker) != previous_header
    wait_until(installed, "the fold to be installed")
    # The journal is rebased in the same tick, just after: one more round
    # trip waits for that tick to end.
    nudge(admin)


def journal_first_id(broker):
    with open(broker.journal_file) as f:
        return json.loads(f.readline()).get("journalId")


# ---------------------------------------------------------------- the broker goes on

def test_commands_and_logins_are_answered_while_a_fold_runs(fold_broker, faults, make_client):
    broker = fold_broker()
    admin = make_client(broker=broker)
    child, before = start_stalled_fold(broker, faults, admin)

    # The child is held in its fsync: the broker answers meanwhile.
    secret = admin.call("createToken", name="during", role="dev", validUntil=FUTURE)["token"]
    assert attempt_login(broker.port, "during", secret) == 0
    assert "during" in [t["name"] for t in listing(admin)[0]]
    # Due again (the journal holds 8 changes), but postponed: never a second
    # child. After the install, the 3 changes made meanwhile are not enough
    # for another fold.
    make_changes(admin, "also-during", 2)
    assert children(broker.process.pid) == [child]
    assert snapshot_header(broker) == before
    assert_disk_matches(broker, admin)

    faults.off()
    wait_for_fold_installed(broker, admin, before)
    sequence, snapshot_id = snapshot_header(broker)
    # The snapshot holds the changes up to the fork; the journal the rest,
    # under the new snapshot's id.
    assert sequence == FOLD_AFTER
    assert journal_first_id(broker) == snapshot_id
    assert leftovers(broker) == []
    assert_disk_matches(broker, admin)
    memory = listing(admin)
    admin.close()
    broker.restart(hard=True)
    assert same_state(listing(make_client(broker=broker)), memory)


def test_the_child_holds_no_socket_no_lock_and_no_client(fold_broker, faults, make_client):
    broker = fold_broker()
    admin = make_client(broker=broker)
    child, _ = start_stalled_fold(broker, faults, admin)
    targets = []
    for fd in os.listdir(f"/proc/{child}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{child}/fd/{fd}"))
        except FileNotFoundError:
            pass
    # The shim's own control files, which it opens and closes as it polls.
    targets = [t for t in targets if not t.startswith(faults.control)]

    assert not [t for t in targets if t.startswith("socket:")], targets
    assert not [t for t in targets if t.endswith(".lock")], targets
    assert [t for t in targets if ".tmp." in t], targets   # its own temporary file
    assert set(t for t in targets if ".tmp." not in t and not t.startswith("pipe:")) == {"/dev/null"}, targets
    faults.off()


# ---------------------------------------------------------------- crashes

def test_kill_9_of_the_broker_during_a_fold_loses_nothing(fold_broker, faults, make_client):
    broker = fold_broker()
    admin = make_client(broker=broker)
    child, before = start_stalled_fold(broker, faults, admin)
    make_changes(admin, "during", 3)
    memory = listing(admin)
    admin.close()

    broker.kill()
    wait_until(lambda: not alive(child), "the child to die with its broker")
    faults.off()
    assert snapshot_header(broker) == before
    broker.start()
    assert same_state(listing(make_client(broker=broker)), memory)


@pytest.mark.parametrize("step", ["parent rename stall", "parent fsync stall"],
                         ids=["before-the-snapshot-is-renamed", "after-the-snapshot-is-renamed"])
def test_kill_9_of_the_broker_during_the_install_loses_nothing(fold_broker, faults, make_client, step):
    """The broker is held in the rename that installs the child's snapshot,
    or in the folder fsync after it (the journal not rebased yet), and killed."""
    broker = fold_broker()
    admin = make_client(broker=broker)
    child, before = start_stalled_fold(broker, faults, admin)
    make_changes(admin, "during", 3)
    memory = listing(admin)
    faults.on(step)                       # lets the child go; holds the broker's next such call
    wait_until(lambda: not alive(child), "the child to finish")
    admin.mqtt.publish("$CONTROL/tokens/v1", json.dumps({"commands": [{"command": "listRoles"}]}))
    time.sleep(0.5)                       # the tick that reaps it, held in the step
    admin.close()

    broker.kill()
    faults.off()
    if step == "parent fsync stall":
        assert snapshot_header(broker) != before   # installed, the old journal still beside it
    broker.start()
    assert same_state(listing(make_client(broker=broker)), memory)
    assert_disk_matches(broker, make_client(broker=broker))


def test_killed_child_leaves_the_journal_and_the_fold_is_retried(fold_broker, faults, make_client):
    broker = fold_broker()
    admin = make_client(broker=broker)
    child, before = start_stalled_fold(broker, faults, admin)
    os.kill(child, signal.SIGKILL)
    faults.off()
    nudge(admin)
    broker.wait_for_log(r"tokens: could not write a snapshot .*killed by signal 9")
    assert snapshot_header(broker) == before
    assert leftovers(broker) == []
    assert_disk_matches(broker, admin)

    # Retried once the journal has doubled (from 5 changes to 11), and with
    # no change after it, no fold due after that one.
    make_changes(admin, "after", FOLD_AFTER + 1)
    wait_for_fold_installed(broker, admin, before)
    broker.wait_for_log(r"tokens: a snapshot was written again")
    assert_disk_matches(broker, admin)
    assert leftovers(broker) == []


def test_child_whose_write_fails_is_logged_once_and_retried(fold_broker, faults, make_client):
    broker = fold_broker()
    admin = make_client(broker=broker)
    admin.call("createRole", rolename="dev")
    faults.on("child write ENOSPC")
    make_changes(admin, "before", FOLD_AFTER)
    nudge(admin)
    broker.wait_for_log(r"tokens: could not write a snapshot .*write failed: No space left on device")
    make_changes(admin, "more", 3)   # not yet doubled: no second try, no second line
    nudge(admin)
    assert broker.log.count("could not write a snapshot") == 1
    assert not os.path.exists(broker.state_file)
    assert leftovers(broker) == []
    assert_disk_matches(broker, admin)

    faults.off()
    make_changes(admin, "after", 2 * (1 + FOLD_AFTER))
    wait_for_fold_installed(broker, admin, None)
    assert_disk_matches(broker, admin)
    memory = listing(admin)
    admin.close()
    broker.restart(hard=True)
    assert same_state(listing(make_client(broker=broker)), memory)


def test_broker_restarted_while_an_orphan_child_runs(fold_broker, faults, make_client):
    """A child that outlives its killed broker (the shim clears its death
    signal, as for one stuck in the kernel) keeps neither the port nor the
    lock, and its snapshot is never installed: only a broker renames."""
    broker = fold_broker()
    admin = make_client(broker=broker)
    child, before = start_stalled_fold(broker, faults, admin, words="child fsync stall orphan")
    [orphans_file] = [os.stat(f"/proc/{child}/fd/{fd}").st_ino for fd in os.listdir(f"/proc/{child}/fd")
                      if ".tmp." in os.readlink(f"/proc/{child}/fd/{fd}")]
    memory = listing(admin)
    admin.close()
    broker.kill()
    time.sleep(0.2)
    assert alive(child)

    broker.start()                         # binds the port, takes the lock
    admin = make_client(broker=broker)
    assert same_state(listing(admin), memory)
    admin.call("createToken", name="new-broker", role="dev", validUntil=FUTURE)
    faults.off()                           # the orphan finishes its file and exits
    wait_until(lambda: not alive(child), "the orphan to exit")
    nudge(admin)
    # The new broker may have folded by now, but never with the orphan's file.
    assert not os.path.exists(broker.state_file) or os.stat(broker.state_file).st_ino != orphans_file
    assert_disk_matches(broker, admin)
    memory = listing(admin)
    admin.close()
    broker.restart(hard=True)
    assert same_state(listing(make_client(broker=broker)), memory)


def test_shutdown_during_a_fold_folds_everything(fold_broker, faults, make_client):
    broker = fold_broker()
    admin = make_client(broker=broker)
    child, _ = start_stalled_fold(broker, faults, admin)
    make_changes(admin, "during", 3)
    memory = listing(admin)
    admin.close()

    assert broker.stop() == 0
    assert not alive(child)
    faults.off()
    assert not os.path.exists(broker.journal_file)
    assert leftovers(broker) == []
    broker.start()
    assert same_state(listing(make_client(broker=broker)), memory)
