"""
The broker-level differential test (issue 12): random sequences of every
state-changing command against a real broker, which is killed with
SIGKILL (or stopped cleanly) at random points between acknowledged
commands and started again on the same files. After every restart the
broker must hold exactly what it held before (every token and role field
that the protocol shows, lastUsed aside: it is saved lazily), and every
secret ever issued, current, rotated away with or without a grace period
or revoked, must get the same login answer as before.

Some sequences fold the journal into a snapshot every few changes, some
never do, so restarts load from a snapshot alone, a journal alone, and
both.
"""
import random

import pytest

from access_helpers import attempt_login
from tokens_helpers import FUTURE

# (seed, snapshot_after; 0: the default rule)
SEQUENCES = [(seed, (0, 0, 3, 5)[seed % 4]) for seed in range(1, 9)]
STEPS = 60
TOKENS = 3
ROLES = 3
ACL_TYPES = ["publishClientSend", "publishClientReceive", "subscribeLiteral", "subscribePattern"]
TOPICS = ["a/#", "a/b", "devices/+/x", "#"]


def random_command(rng):
    kind = rng.randrange(12)
    token = f"t{rng.randrange(TOKENS)}"
    role = f"r{rng.randrange(ROLES)}"
    if kind < 4:
        return {"command": "createToken", "name": token, "role": role, "validUntil": FUTURE}
    if kind < 6:
        return {"command": "rotateToken", "name": token, "graceSeconds": rng.choice([0, 3600])}
    if kind < 8:
        return {"command": "revokeToken", "name": token}
    acl = {"acltype": rng.choice(ACL_TYPES), "topic": rng.choice(TOPICS)}
    if kind == 8:
        return {"command": "createRole", "rolename": role, "acls": [dict(acl, allow=True)]}
    if kind == 9:
        return {"command": "deleteRole", "rolename": role}
    if kind == 10:
        return dict(acl, command="addRoleACL", rolename=role, priority=rng.randrange(-2, 3),
                    allow=rng.random() < 0.5)
    return dict(acl, command="removeRoleACL", rolename=role)


def view(broker, secrets):
    """What a user can see of the store, and how every secret logs in."""
    with broker.client() as client:
        tokens = client.call("listTokens")["tokens"]
        roles = client.call("listRoles")["roles"]
    for token in tokens:
        token.pop("lastUsed")
    logins = [attempt_login(broker.port, username="check", password=secret) for secret in secrets]
    return {"tokens": tokens, "roles": roles}, logins


@pytest.mark.parametrize("seed,snapshot_after", SEQUENCES)
def test_random_commands_survive_kill_9_and_restarts_unchanged(broker_factory, seed, snapshot_after):
    rng = random.Random(seed)
    extra = [f"plugin_opt_snapshot_after {snapshot_after}"] if snapshot_after else []
    broker = broker_factory(extra_config=extra)
    secrets = []
    restarts = 0
    succeeded = 0
    with broker.client() as admin:
        for role in range(ROLES):
            admin.call("createRole", rolename=f"r{role}")
    for step in range(STEPS):
        with broker.client() as admin:
            response = admin.request([random_command(rng)])[0]
        succeeded += "error" not in response
        if "token" in response.get("data", {}):
            secrets.append(response["data"]["token"])
        if rng.random() < 0.2 or step == STEPS - 1:
            before = view(broker, secrets)
            broker.restart(hard=rng.random() < 0.75)
            restarts += 1
            after = view(broker, secrets)
            assert after[0] == before[0], f"seed {seed}, step {step}: the store changed across a restart"
            assert after[1] == before[1], (f"seed {seed}, step {step}: login answers changed across a restart "
                                           f"(before {before[1]}, after {after[1]})")
    print(f"seed {seed}: {succeeded} of {STEPS} commands changed something, {len(secrets)} secrets, "
          f"{restarts} restarts")
    assert restarts >= 2 and secrets, "the sequence should restart and issue secrets"
