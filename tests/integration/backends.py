# Real PostgreSQL and Redis servers for the scale-out integration tests: each started on a free
# loopback port, stoppable hard (a crash) or gently, restartable on the same port (PostgreSQL
# also on the same data), and torn down with everything it wrote. Missing binaries skip.
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import free_port

START_TIMEOUT = 60.0
CMD_TIMEOUT = 60.0


def _tail(path, lines=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def postgres_bin_dir():
    """The newest installed server binaries (Debian: /usr/lib/postgresql/<major>/bin), or None."""
    value = os.environ.get("FETCHD_PG_BIN")
    if value:
        return Path(value) if (Path(value) / "pg_ctl").exists() else None
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")]
    if not found:
        return None

    def major(path):
        try:
            return int(path.parent.name)
        except ValueError:
            return -1

    return max(found, key=major)


class PostgresServer:
    """One cluster, initdb'd into a temporary directory on first start. Trust authentication for
    the superuser `fetchd`, database `fetchd`, fsync off: the data is thrown away anyway."""

    USER = "fetchd"
    DATABASE = "fetchd"

    def __init__(self, workdir):
        self.workdir = Path(workdir)  # where the server log is copied at cleanup
        self.bin = postgres_bin_dir()
        if self.bin is None:
            pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql; "
                        "or set FETCHD_PG_BIN)")
        if shutil.which("psql") is None and not (self.bin / "psql").exists():
            pytest.skip("psql not found")
        self.as_user = []
        self.owner = None
        if os.geteuid() == 0:
            # postgres refuses to run as root: the cluster belongs to the postgres user.
            try:
                self.owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no `postgres` user to run PostgreSQL")
            if shutil.which("runuser") is None:
                pytest.skip("running as root and runuser is missing")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        # Not under pytest's tmp dir: /tmp/pytest-of-root is 0700, the postgres user could not
        # reach a data directory below it.
        self.base = Path(tempfile.mkdtemp(prefix="fetchd-pg-", dir="/tmp"))
        os.chmod(self.base, 0o755)
        if self.owner is not None:
            os.chown(self.base, self.owner.pw_uid, self.owner.pw_gid)
        self.data_dir = self.base / "data"
        self.log_path = self.base / "server.log"
        self.port = None
        self.initialised = False
        self.running = False

    # -- commands

    def _run(self, args, *, as_owner=True, check=True, timeout=CMD_TIMEOUT):
        cmd = (self.as_user if as_owner else []) + [str(a) for a in args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL, cwd=self.base)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited with {result.returncode}:\n"
                               f"{result.stdout}\n{result.stderr}\nserver log:\n"
                               f"{_tail(self.log_path)}")
        return result

    def _tool(self, name):
        path = self.bin / name
        return str(path) if path.exists() else name

    @property
    def url(self):
        return self.database_url(self.DATABASE)

    def database_url(self, database):
        assert self.port is not None, "not started"
        return f"postgres://{self.USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name):
        """A new empty database (a test's own, so that tests never see each other's rows);
        its URL."""
        self.psql(f"CREATE DATABASE {name}")
        return self.database_url(name)

    def _pg_ctl_start(self):
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=400")
        return self._run([self._tool("pg_ctl"), "-D", self.data_dir, "-l", self.log_path, "-w",
                          "-t", int(START_TIMEOUT), "-o", options, "start"], check=False)

    def start(self):
        assert not self.running, "already running"
        if not self.initialised:
            self._run([self._tool("initdb"), "-D", self.data_dir, "-U", self.USER, "-A", "trust",
                       "-E", "UTF8", "--locale=C", "--no-sync"])
            self.initialised = True
        if self.port is None:
            # A free port may be taken by someone else before postgres binds it: try a few.
            for _ in range(5):
                self.port = free_port()
                result = self._pg_ctl_start()
                if result.returncode == 0:
                    break
            else:
                raise RuntimeError(f"pg_ctl start failed: {result.stdout}\n{result.stderr}\n"
                                   f"{_tail(self.log_path)}")
            self.running = True
            self._run([self._tool("createdb"), "-h", "127.0.0.1", "-p", self.port, "-U",
                       self.USER, self.DATABASE], as_owner=False)
            return self
        result = self._pg_ctl_start()  # a restart: same port, same data
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start (restart on port {self.port}) failed: "
                               f"{result.stdout}\n{result.stderr}\n{_tail(self.log_path)}")
        self.running = True
        return self

    def stop(self, mode="immediate"):
        """`immediate` is a crash as far as clients are concerned (connections cut, recovery at
        the next start); `fast` is a clean shutdown that still disconnects every client."""
        if not self.running:
            return
        self._run([self._tool("pg_ctl"), "-D", self.data_dir, "-m", mode, "-w", "-t",
                   int(START_TIMEOUT), "stop"], check=False)
        self.running = False

    def kill(self):
        self.stop("immediate")

    def restart(self, mode="fast"):
        self.stop(mode)
        return self.start()

    def psql(self, sql, database=None, timeout=CMD_TIMEOUT):
        """Runs `sql` on `database` (default: fetchd); the unaligned, tuples-only output."""
        result = self._run([self._tool("psql"), "-h", "127.0.0.1", "-p", self.port, "-U",
                            self.USER, "-d", database or self.DATABASE, "-v", "ON_ERROR_STOP=1",
                            "-At", "-c", sql], as_owner=False, timeout=timeout)
        return result.stdout.strip()

    def log_tail(self, lines=40):
        return _tail(self.log_path, lines)

    def cleanup(self):
        try:
            self.stop("immediate")
        finally:
            try:
                if self.log_path.exists():
                    self.workdir.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(self.log_path, self.workdir / "postgres.log")
            except OSError:
                pass
            shutil.rmtree(self.base, ignore_errors=True)


def redis_inline(port, command, timeout=1.0):
    """The first reply line of an inline command (`PING`, `FLUSHALL`), or None when nothing
    answers on 127.0.0.1:port; no redis-cli needed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(command.encode() + b"\r\n")
            return s.recv(256).split(b"\r\n", 1)[0].decode(errors="replace")
    except OSError:
        return None


def redis_ping(port, timeout=1.0):
    return redis_inline(port, "PING", timeout) == "+PONG"


class RedisServer:
    """redis-server without persistence: a restart loses everything, as a crashed broker would."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.binary = shutil.which("redis-server") or "/usr/sbin/redis-server"
        if not os.access(self.binary, os.X_OK):
            pytest.skip("redis-server not found (apt-get install redis-server)")
        self.port = None
        self.proc = None
        self.log_path = self.workdir / "redis.log"
        self.starts = 0

    @property
    def url(self):
        assert self.port is not None, "not started"
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self):
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"===== start #{self.starts} on port {self.port}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.workdir), "--maxclients", "1000"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if redis_ping(self.port):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        self.kill()
        return False

    def start(self):
        assert not self.running, "already running"
        if self.port is None:
            for _ in range(5):
                self.port = free_port()
                if self._spawn():
                    return self
            raise RuntimeError(f"redis-server did not start:\n{_tail(self.log_path)}")
        if not self._spawn():  # a restart: same port
            raise RuntimeError(f"redis-server did not restart on port {self.port}:\n"
                               f"{_tail(self.log_path)}")
        return self

    def kill(self):
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    stop = kill

    def restart(self):
        self.kill()
        return self.start()

    def flushall(self):
        reply = redis_inline(self.port, "FLUSHALL", timeout=10)
        assert reply == "+OK", f"FLUSHALL: {reply!r}"

    def cli(self, *args):
        """A command through redis-cli; its stdout."""
        result = subprocess.run(["redis-cli", "-p", str(self.port), *map(str, args)],
                                capture_output=True, text=True, timeout=CMD_TIMEOUT, check=True)
        return result.stdout.strip()

    def cleanup(self):
        self.kill()
