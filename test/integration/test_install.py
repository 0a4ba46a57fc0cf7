"""
`make install` (PREFIX, DESTDIR): both libraries land in
<DESTDIR><PREFIX>/lib/<multiarch>, where Debian's mosquitto keeps its
plugins and the dynamic loader finds mosquitto_ctrl modules; and what is
installed works: a broker loads the installed plugin, the installed
mosquitto_ctrl module makes its state file, and a token logs in.
"""
import filecmp
import os
import stat
import subprocess

import pytest

from ctrl_helpers import (  # noqa: F401  (fixtures)
    BUILD, admin_factory, ctrl_env, expect_ok, gcc_multiarch, processes, publish, run_ctrl,
    the_token, wait_subscribed,
)
from tokens_helpers import REPO

LIBRARIES = ["mosquitto_ctrl_tokens.so", "mosquitto_tokens.so"]


def make(*args):
    """make -C <repository root> args..., with no install variables taken
    from the environment (or from an outer make)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PREFIX", "DESTDIR", "LIBDIR", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    done = subprocess.run(["make", "--no-print-directory", "-C", REPO, *args], capture_output=True,
                          text=True, env=env, stdin=subprocess.DEVNULL, timeout=300)
    assert done.returncode == 0, f"make {' '.join(args)}: status {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def installed_files(root):
    found = []
    for folder, _, files in os.walk(root):
        found += [os.path.relpath(os.path.join(folder, f), root) for f in files]
    return sorted(found)


@pytest.fixture(scope="module")
def multiarch():
    value = gcc_multiarch()
    assert value, "gcc -print-multiarch printed nothing"
    return value


@pytest.fixture(scope="module")
def installed(tmp_path_factory, multiarch):
    """make install DESTDIR=<tmp>: (destdir, libdir inside it, make's output)."""
    destdir = str(tmp_path_factory.mktemp("destdir"))
    done = make("install", f"DESTDIR={destdir}")
    return destdir, os.path.join(destdir, "usr", "lib", multiarch), done.stdout


CONSOLE = "mosquitto_tokens_console"


def test_install_puts_both_libraries_in_the_multiarch_folder(installed, multiarch):
    destdir, libdir, output = installed
    assert installed_files(destdir) == sorted(
        [os.path.join("usr", "lib", multiarch, name) for name in LIBRARIES] + [os.path.join("usr", "bin", CONSOLE)])
    console = os.path.join(destdir, "usr", "bin", CONSOLE)
    assert stat.S_IMODE(os.stat(console).st_mode) == 0o755
    assert filecmp.cmp(console, os.path.join(BUILD, CONSOLE), shallow=False)
    for name in LIBRARIES:
        path = os.path.join(libdir, name)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
        assert filecmp.cmp(path, os.path.join(BUILD, name), shallow=False), f"{path} differs from the build"
    # What to put in mosquitto.conf: the path on the target system, without DESTDIR.
    assert f"plugin /usr/lib/{multiarch}/mosquitto_tokens.so" in output
    assert f"Installed in {libdir}" in output


def test_install_with_a_prefix(tmp_path, multiarch):
    destdir = str(tmp_path / "staging")
    done = make("install", "PREFIX=/usr/local", f"DESTDIR={destdir}")
    assert installed_files(destdir) == sorted([os.path.join("usr", "local", "lib", multiarch, name)
                                               for name in LIBRARIES] + [os.path.join("usr", "local", "bin", CONSOLE)])
    assert f"plugin /usr/local/lib/{multiarch}/mosquitto_tokens.so" in done.stdout


def test_install_for_a_broker_from_upstream(tmp_path):
    """An upstream build keeps its plugins in its own lib folder (CMake's
    default: /usr/local/lib): LIBDIR puts both libraries there, and the
    line to load the plugin names it. (The suite's runs against 2.0.22 and
    2.1.2 load an installed plugin and module in those releases' broker and
    mosquitto_ctrl: test_installed_plugin_and_module_work_together.)"""
    destdir = str(tmp_path / "staging")
    done = make("install", "PREFIX=/usr/local", "LIBDIR=/usr/local/lib", f"DESTDIR={destdir}")
    assert installed_files(destdir) == sorted([os.path.join("usr", "local", "lib", name) for name in LIBRARIES]
                                              + [os.path.join("usr", "local", "bin", CONSOLE)])
    assert "plugin /usr/local/lib/mosquitto_tokens.so" in done.stdout


def test_uninstall_removes_everything(tmp_path):
    destdir = str(tmp_path / "staging")
    make("install", f"DESTDIR={destdir}")
    assert len(installed_files(destdir)) == 3
    make("uninstall", f"DESTDIR={destdir}")
    assert installed_files(destdir) == []


def test_the_installed_module_is_the_one_mosquitto_ctrl_loads(installed):
    _, libdir, _ = installed
    result = run_ctrl("help", env=ctrl_env(libdir, {"LD_DEBUG": "libs"}))
    assert result.returncode == 0, str(result)
    assert "tokens create" in result.stdout
    assert f"calling init: {os.path.join(libdir, 'mosquitto_ctrl_tokens.so')}" in result.raw_stderr, \
        result.raw_stderr[-3000:]


def test_installed_plugin_and_module_work_together(installed, admin_factory, processes):
    _, libdir, _ = installed
    plugin = os.path.join(libdir, "mosquitto_tokens.so")
    # init with the installed module, a broker with the installed plugin.
    admin = admin_factory(plugin=plugin, libdir=libdir)
    state = os.path.join(os.path.dirname(admin.broker.directory), "tokens.json")
    assert admin.broker.state_file == state
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    assert f"Loading plugin: {plugin}" in admin.broker.log
    assert f"loaded 1 tokens and 1 roles from {state}" in admin.broker.log

    # The admin token logs in (mosquitto_ctrl, installed module) ...
    assert "1 of 1 token shown." in expect_ok(admin.ctrl("list")).stdout
    admin.role("devices", ("publishClientSend", "devices/#", "allow"),
               ("subscribePattern", "devices/#", "allow"))
    token = the_token(expect_ok(admin.ctrl("create", "gateway", "devices", "1d")).stdout)

    # ... and so does a device token, with mosquitto_sub and mosquitto_pub.
    sub = processes.subscriber(admin.port, "gateway", token, "devices/#", "gateway-sub", count=1,
                               extra=["-W", "10"])
    wait_subscribed(admin.broker, "gateway-sub")
    sent = publish(admin.port, "gateway", token, "devices/door", "open")
    assert sent.returncode == 0 and sent.stderr == "", sent
    out, err = sub.communicate(timeout=10)
    assert (sub.returncode, out) == (0, "devices/door open\n"), err
    refused = publish(admin.port, "gateway", "mqtk_" + token[5:47] + "x" + token[48:], "devices/door", "x")
    assert refused.returncode != 0
