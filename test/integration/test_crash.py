"""
Crash safety of the snapshot + journal persistence (docs/state-file.md):
the broker is killed with SIGKILL at random moments during a stream of
creates and revokes, with snapshots taken every few changes so that kills
also land while a snapshot is being written. After each kill the broker
must start, and every acknowledged change must be there.
"""
import random
import threading

from tokens_helpers import FUTURE

ROUNDS = 12


def stream_changes(client, acknowledged, pending, stop, prefix):
    """Creates tokens and revokes every other one until stopped or the
    connection dies; records each change whose reply arrived, and in
    pending the one that was sent last (it may or may not have happened)."""
    number = 0
    try:
        while not stop.is_set():
            name = f"{prefix}-{number}"
            pending[:] = [("created", name)]
            response = client.request([{"command": "createToken", "name": name, "role": "r",
                                        "validUntil": FUTURE}], timeout=2)[0]
            if "error" in response:
                return
            acknowledged.append(("created", name, response["data"]["hash"]))
            if number % 2:
                pending[:] = [("revoked", name)]
                response = client.request([{"command": "revokeToken", "name": name}], timeout=2)[0]
                if "error" in response:
                    return
                acknowledged.append(("revoked", name, None))
            pending[:] = []
            number += 1
    except Exception:   # the broker died under us: that is the point
        return


def expected_tokens(acknowledged):
    alive = {}
    for change, name, token_hash in acknowledged:
        if change == "created":
            alive[name] = token_hash
        else:
            alive.pop(name)
    return alive


def test_kill_9_at_random_moments_loses_no_acknowledged_change(broker_factory, make_client):
    rng = random.Random(20261128)
    broker = broker_factory(extra_config=["plugin_opt_snapshot_after 7"])
    with broker.client() as admin:
        admin.call("createRole", rolename="r")
    acknowledged = []
    for round_number in range(ROUNDS):
        client = broker.client()
        stop = threading.Event()
        pending = []
        worker = threading.Thread(target=stream_changes,
                                  args=(client, acknowledged, pending, stop, f"round{round_number}"))
        worker.start()
        threading.Event().wait(rng.uniform(0.05, 0.6))
        broker.kill()
        stop.set()
        worker.join(timeout=10)
        client.close()

        broker.start()   # must load whatever the kill left
        alive = expected_tokens(acknowledged)
        with broker.client() as checker:
            listed = {t["name"]: t["hash"] for t in checker.call("listTokens")["tokens"]}
        # Every acknowledged change is there; only the one in flight at the
        # kill may or may not have happened.
        unsure = {name for _, name in pending}
        for name, token_hash in alive.items():
            if name not in unsure:
                assert listed.get(name) == token_hash, f"round {round_number}: lost {name}"
        for name in set(listed) - set(alive):
            assert name in unsure, f"round {round_number}: {name} came back"
        # What is on disk reads back the same, by an independent reader.
        on_disk = {t["name"]: t["hash"] for t in broker.read_state()["tokens"]}
        assert on_disk == listed
        # Carry on from exactly what the broker holds.
        for change, name in pending:
            if change == "created" and name in listed:
                acknowledged.append(("created", name, listed[name]))
            if change == "revoked" and name not in listed:
                acknowledged.append(("revoked", name, None))
    assert len(expected_tokens(acknowledged)) > 10, "the stream made too few changes to mean anything"
