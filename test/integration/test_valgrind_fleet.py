"""
A fleet member under valgrind's memcheck: its libpq link (connect, LISTEN,
the fetch from the tick, commits, lastUsed batches), the loss of the
database and the reconnection, the other member's changes applied
(a revoke that closes a session), then a clean stop. The report must hold
no error with a frame in the plugin (see test_valgrind.py).
"""
import os

from access_helpers import Device, issue
from fleet_helpers import command, dev_role, logs_in, member, member_config, token_rows, wait_for
from test_valgrind import PLUGIN_CODE, SLOW
from tokens_helpers import FUTURE, Broker
from valgrind_helpers import check_reports, skip_without_valgrind, valgrind_command

pytestmark = skip_without_valgrind


def test_a_member_under_valgrind(tmp_path, broker_factory, postgres):
    directory = str(tmp_path / "valgrind-member")
    watched = Broker(directory, name="a", wrapper=valgrind_command(f"{directory}/valgrind-%p.xml"),
                     start_timeout=SLOW, stop_timeout=120.0,
                     extra_config=member_config(postgres, ["plugin_opt_last_used_save_interval 1"]))
    watched.start()
    pid = watched.process.pid
    other = member(broker_factory, postgres, "b")
    admin_a, admin_b = watched.client(), other.client()
    try:
        dev_role(admin_b)
        secret, _ = issue(admin_b, "seen-by-a", "dev")
        dev = wait_for(lambda: logs_in(watched, secret), SLOW)
        assert dev is not None
        admin_b.call("revokeToken", name="seen-by-a")
        assert dev.wait_disconnected(SLOW)
        dev.close()

        mine, _ = issue(admin_a, "made-on-a", "dev")
        held = Device(watched.port, username="dev", password=mine)
        assert wait_for(lambda: token_rows(postgres)["made-on-a"]["lastUsed"], SLOW)
        postgres.server.stop()
        assert command(admin_a, "createToken", name="lost", role="dev", validUntil=FUTURE)["code"] == "storage"
        postgres.server.start()
        assert wait_for(lambda: "data" in command(admin_a, "createToken", name="after", role="dev",
                                                 validUntil=FUTURE), SLOW)
        admin_a.call("rotateToken", name="made-on-a", graceSeconds=60)
        held.close()
    finally:
        admin_a.close()
        admin_b.close()
    code = watched.stop()
    assert code == 0, watched.log[-3000:]
    path = os.path.join(directory, f"valgrind-{pid}.xml")
    assert os.path.exists(path), watched.log[-3000:]
    check_reports([(f"run {pid}", path)], PLUGIN_CODE)
