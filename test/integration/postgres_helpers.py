"""
A real PostgreSQL server for the integration tests of the PostgreSQL
backend (issue 19: several brokers sharing one token store).

PostgresServer is a throwaway cluster: initdb into a fresh folder, trust
authentication, a superuser `tokens`, listening on 127.0.0.1 on a free port
and on a Unix socket in its own folder. conftest.py starts one for the
whole session (postgres_server) and gives each test a fresh database of it
(postgres, a PostgresDatabase).

initdb, pg_ctl and postgres refuse to run as root: as root (CI) they run as
Debian's `postgres` user (runuser), which owns the folder; otherwise as the
current user. psql runs as whoever runs the tests: it connects over TCP
with trust authentication, so its Unix user does not matter.
"""
import glob
import itertools
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

from tokens_helpers import free_port

# The unprivileged user the server runs as when the tests run as root.
SERVER_USER_FOR_ROOT = "postgres"
SUPERUSER = "tokens"
START_TIMEOUT = 30     # seconds pg_ctl waits for the server to accept connections
STOP_TIMEOUT = 30
PSQL_TIMEOUT = 60

# Settings appended to postgresql.conf. fsync off: only a crash of the
# machine would lose what the server wrote, and that is not under test.
# synchronous_commit stays on: with it off a commit returns before its WAL
# leaves the server's memory, and a kill -9 of the postmaster (kill())
# loses it. max_connections: every broker of a test keeps its own.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "shared_buffers": "16MB",
    "fsync": "off",
    "full_page_writes": "off",
    "log_line_prefix": "'%m [%p] %d '",
}

# The watchdog (PostgresServer._watch): reads its stdin, a pipe from the
# test process, which only ends when that process does. An end without a
# stop before it (pytest killed, by a CI timeout say) makes it stop the
# server (SIGINT: a fast shutdown) and remove its folder ($2 = 1): the
# postmaster is a daemon, nothing else would. $1: the server's folder.
WATCHDOG = r"""
read -r _ignored
pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null) && kill -INT "$pid" 2>/dev/null &&
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
[ "$2" = 1 ] && rm -rf "$1"
"""

NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresError(Exception):
    """A PostgreSQL program failed; the message has its output."""


def bindir():
    """The folder of initdb, pg_ctl and postgres: the highest version under
    /usr/lib/postgresql (Debian keeps them off PATH), else `pg_config
    --bindir`. None when there is none."""
    def version(path):
        number = path.split(os.sep)[-2]
        return int(number) if number.isdigit() else -1
    found = [os.path.dirname(p) for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    if found:
        return max(found, key=lambda d: version(os.path.join(d, "initdb")))
    try:
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    path = done.stdout.strip()
    return path if done.returncode == 0 and os.path.exists(os.path.join(path, "initdb")) else None


def missing_programs():
    """What keeps a server from running here, as a list of sentences
    (empty: nothing), for the fixture's skip message."""
    missing = []
    if bindir() is None:
        missing.append("PostgreSQL server programs (initdb, pg_ctl, postgres under "
                       "/usr/lib/postgresql/*/bin or pg_config --bindir)")
    if shutil.which("psql") is None:
        missing.append("psql")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER_FOR_ROOT)
        except KeyError:
            missing.append(f"the unprivileged user {SERVER_USER_FOR_ROOT!r} (initdb and postgres "
                           "refuse to run as root; Debian's postgresql package creates it)")
    return missing


def clean_env():
    """The environment without PG* variables (PGHOST, PGDATA, PGOPTIONS...):
    everything the programs need is given on their command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_MESSAGES"] = "C"   # errors in English, for the messages we raise
    return env


def quote_name(name):
    """A database name as an SQL identifier; only names that need no
    escaping are accepted."""
    if not NAME_RE.match(name):
        raise ValueError(f"not a plain database name: {name!r}")
    return f'"{name}"'


# ---------------------------------------------------------------- processes

def _proc_state(pid):
    """The state letter of /proc/<pid>/stat (R, S, Z...), None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid):
    """Running and not a zombie: a killed postmaster may stay a zombie when
    the init of the machine does not reap orphans."""
    return _proc_state(pid) not in (None, "Z")


def children(pid):
    """The pids whose parent is `pid` (the postmaster's backends and
    auxiliary processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(entry))
    return found


def wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


# ---------------------------------------------------------------- the server

class PostgresServer:
    """A PostgreSQL cluster of its own in `directory` (a fresh temporary
    folder by default, removed by cleanup()): directory/data (initdb, at
    the first start), directory/socket (the Unix socket), directory/postgres.log.

    stop() and start() keep the data folder and the port, so a test can
    take the database away and bring it back; kill() is a crash. Not
    thread-safe.
    """

    _names = itertools.count(1)

    def __init__(self, directory=None, port=None):
        self.bindir = bindir()
        if self.bindir is None:
            raise PostgresError("no PostgreSQL server programs: " + "; ".join(missing_programs()))
        self._owned_directory = directory is None
        # Not under pytest's tmp dir: as root that is a 0700 folder of
        # root's, which the server's user could not enter.
        self.directory = str(directory or tempfile.mkdtemp(prefix="tokens-pg-"))
        self.data = os.path.join(self.directory, "data")
        self.socket_dir = os.path.join(self.directory, "socket")
        self.log_path = os.path.join(self.directory, "postgres.log")
        self._auto_port = port is None
        self.port = port or free_port()
        self.starts = 0
        self.user = SERVER_USER_FOR_ROOT if os.geteuid() == 0 else None
        self._watchdog = None
        os.makedirs(self.socket_dir, exist_ok=True)
        self._give_to_server_user(self.directory, self.socket_dir)

    # -- running programs as the server's user

    def _give_to_server_user(self, *paths):
        if self.user is None:
            return
        entry = pwd.getpwnam(self.user)
        for path in paths:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run_as_server(self, program, *args, timeout=START_TIMEOUT + 30):
        """Runs a server program (initdb, pg_ctl) as the server's user, in
        the server's folder (runuser keeps the cwd: root's would be
        unreadable). Raises PostgresError with its output on failure."""
        command = [os.path.join(self.bindir, program), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--"] + command
        done = subprocess.run(command, capture_output=True, text=True, env=clean_env(), cwd=self.directory,
                              stdin=subprocess.DEVNULL, timeout=timeout)
        if done.returncode != 0:
            raise PostgresError(f"{program} {' '.join(args)} failed with status {done.returncode}:\n"
                                f"{done.stdout}{done.stderr}\n-- {self.log_path}:\n{self.log_tail()}")
        return done.stdout

    # -- the cluster

    def _initdb(self):
        """A new cluster: trust for local and loopback connections (initdb
        -A trust writes both), the superuser `tokens`, C locale. --no-sync:
        a crash of the machine is not under test."""
        self._run_as_server("initdb", "-D", self.data, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                            "--locale=C", "--no-sync", "--no-instructions")
        self._write_settings()

    def _write_settings(self):
        """SETTINGS, the socket folder and the port, appended to postgresql.conf
        (the last occurrence of a setting wins): written again when the
        port changes."""
        lines = [f"{k} = {v}" for k, v in SETTINGS.items()]
        lines += [f"unix_socket_directories = '{self.socket_dir}'", f"port = {self.port}"]
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# test harness (postgres_helpers.py)\n" + "\n".join(lines) + "\n")

    def start(self):
        """Starts the server (initdb at the first start) and waits until it
        accepts connections (pg_ctl -w). A port that free_port picked and
        someone else took meanwhile is replaced, at the first start only:
        afterwards the port stays, as clients have it."""
        assert not self.is_running(), "postgres already running"
        if not os.path.exists(os.path.join(self.data, "PG_VERSION")):
            self._initdb()
        first = self.starts == 0
        self.starts += 1
        self._watch()
        for attempt in range(3):
            try:
                return self._pg_ctl_start()
            except PostgresError as error:
                if not (first and self._auto_port and attempt < 2 and "could not bind" in str(error)):
                    raise
                self.port = free_port()
                self._write_settings()

    def _watch(self):
        """Starts the watchdog (WATCHDOG) once, in a session of its own so
        that a signal to pytest's process group does not end it too."""
        if self._watchdog is None:
            self._watchdog = subprocess.Popen(
                ["sh", "-c", WATCHDOG, "postgres-watchdog", self.directory, "1" if self._owned_directory else "0"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)

    def _unwatch(self):
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog.stdin.close()
            self._watchdog = None

    def _pg_ctl_start(self):
        self._run_as_server("pg_ctl", "-D", self.data, "-l", self.log_path, "-w", "-t", str(START_TIMEOUT),
                            "-s", "start")
        return self

    def stop(self):
        """pg_ctl -m fast stop: open sessions are ended, the server shuts
        down cleanly. Nothing to do when it is not running."""
        if self.is_running():
            self._run_as_server("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", str(STOP_TIMEOUT),
                                "-s", "stop", timeout=STOP_TIMEOUT + 30)

    def kill(self):
        """kill -9 of the postmaster: a crash, with no shutdown checkpoint;
        the next start() recovers from the WAL. Returns once its processes
        are gone, so that start() can run: the backends exit by themselves
        when they see the postmaster die; any still there after 5 s (one
        busy in a query, which only notices when it waits) get a SIGKILL too."""
        pid = self.pid()
        if pid is None or not alive(pid):
            return
        others = children(pid)
        os.kill(pid, signal.SIGKILL)
        if not wait_gone([pid] + others, 5):
            for other in others:
                if alive(other):
                    os.kill(other, signal.SIGKILL)
            assert wait_gone([pid] + others, 5), f"postgres processes outlived SIGKILL: {[pid] + others}"
        if _proc_state(pid) == "Z":
            # Not reaped yet (this machine's init reaps orphans only every
            # second or two): the pid of a zombie still answers kill(pid, 0),
            # which postgres takes for a live postmaster owning its lock
            # files. It is dead, so they are stale, as postgres would judge.
            self._remove_lock_files()

    def _remove_lock_files(self):
        for path in (os.path.join(self.data, "postmaster.pid"),
                     os.path.join(self.socket_dir, f".s.PGSQL.{self.port}.lock")):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def pid(self):
        """The postmaster's pid, from postmaster.pid (None without one)."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def is_running(self):
        pid = self.pid()
        return pid is not None and alive(pid)

    def cleanup(self):
        """Stops the server (kills it if that fails) and its watchdog, and
        removes the folder it made. Safe to call more than once, and at exit. Waits a little
        for the postmaster to be reaped, so that no `postgres` process, not
        even a zombie, outlives the session where init reaps lazily."""
        pid = self.pid()
        try:
            self.stop()
        except Exception:
            self.kill()
        self._unwatch()
        if pid is not None:
            deadline = time.monotonic() + 5
            while _proc_state(pid) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
        if self._owned_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, size=4000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-size:]
        except OSError:
            return "(no log)"

    # -- clients

    def conninfo(self, dbname="postgres"):
        """A libpq keyword/value connection string, over TCP."""
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={SUPERUSER}"

    def uri(self, dbname="postgres"):
        """The same as a libpq connection URI."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def psql(self, sql, dbname="postgres", conninfo=None):
        """Runs `sql` (one or more statements) through psql and returns its
        stdout: unaligned, tuples only (-At), so each row is a line "a|b".
        ON_ERROR_STOP: the first error stops it, and raises PostgresError
        with psql's stderr. `conninfo` (a conninfo string or URI) instead
        of the server's TCP address for `dbname`."""
        command = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo or self.conninfo(dbname),
                   "-f", "-"]
        env = dict(clean_env(), PGCONNECT_TIMEOUT="10")
        done = subprocess.run(command, input=sql, capture_output=True, text=True, env=env, timeout=PSQL_TIMEOUT)
        if done.returncode != 0:
            raise PostgresError(f"psql on {dbname} failed with status {done.returncode}: "
                                f"{done.stderr.strip()}\n-- sql:\n{sql}")
        return done.stdout

    def create_database(self, name=None):
        """CREATE DATABASE; returns its name (a new unique one by default)."""
        name = name or f"test_{os.getpid()}_{next(self._names)}"
        self.psql(f"CREATE DATABASE {quote_name(name)}")
        return name

    def drop_database(self, name):
        """DROP DATABASE, ending the sessions still on it (brokers a test left
        running); nothing when it does not exist."""
        self.psql(f"DROP DATABASE IF EXISTS {quote_name(name)} WITH (FORCE)")


class PostgresDatabase:
    """One database of a PostgresServer, as the `postgres` fixture gives it:
    .server, .dbname, .conninfo, .uri, .psql(sql)."""

    def __init__(self, server, dbname):
        self.server = server
        self.dbname = dbname

    @property
    def conninfo(self):
        return self.server.conninfo(self.dbname)

    @property
    def uri(self):
        return self.server.uri(self.dbname)

    def psql(self, sql):
        return self.server.psql(sql, self.dbname)

    def __repr__(self):
        return f"<PostgresDatabase {self.uri}>"
