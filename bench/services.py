"""The scale-out backends bench/run starts for itself: PostgreSQL (initdb into its temp dir, the
server in the foreground as the `postgres` user when bench/run runs as root, on a free loopback
port) and Redis (no persistence). Both are processes of the Bench, so they are stopped with
everything else however the run ends. Settings that trade durability for speed are listed in
POSTGRES_SETTINGS, and docs/benchmarks.md says so."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness import STARTUP_TIMEOUT, Bench, BenchError, free_port, tail

# fsync=off: the data is thrown away at the end, and SQLite runs with synchronous=NORMAL (no
# fsync per commit) in the embedded scenarios. Commits still wait for the WAL write
# (synchronous_commit stays on), so a commit is a write() as it is for SQLite.
POSTGRES_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "256MB",
}

USER = "fetchd"
DATABASE = "fetchd"


def postgres_bin_dir() -> Path:
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/postgres")]
    if not found:
        raise BenchError("PostgreSQL server binaries not found (apt-get install postgresql)")

    def major(path: Path) -> int:
        try:
            return int(path.parent.name)
        except ValueError:
            return -1

    return max(found, key=major)


@dataclass
class Postgres:
    port: int
    bin: Path
    socket_dir: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"postgres://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def psql(self, sql: str, timeout: float = 600.0) -> str:
        """Runs `sql` (one or more statements); the unaligned, tuples-only output."""
        psql = self.bin / "psql" if (self.bin / "psql").exists() else "psql"
        done = subprocess.run(
            [str(psql), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", DATABASE,
             "-v", "ON_ERROR_STOP=1", "-X", "-q", "-At", "-c", sql],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if done.returncode != 0:
            raise BenchError(f"psql: {done.stderr.strip()[:500]}")
        return done.stdout.strip()


def _as_postgres_user() -> tuple[list[str], pwd.struct_passwd | None]:
    if os.geteuid() != 0:
        return [], None
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError as e:
        raise BenchError("running as root and there is no `postgres` user to run PostgreSQL") from e
    if shutil.which("runuser") is None:
        raise BenchError("running as root and runuser is missing")
    return ["runuser", "-u", "postgres", "--"], owner


def start_postgres(bench: Bench, name: str = "postgres") -> Postgres:
    """A fresh cluster in the bench's temp dir with the database `fetchd` (trust auth)."""
    bin_dir = postgres_bin_dir()
    as_user, owner = _as_postgres_user()
    base = bench.tmp / name
    base.mkdir()
    bench.tmp.chmod(0o755)  # the postgres user must reach its directory
    base.chmod(0o755)
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    data = base / "data"
    init_log = bench.tmp / f"{name}-initdb.log"
    with open(init_log, "wb") as out:
        done = subprocess.run(
            [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120,
        )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"initdb exited with {done.returncode}:\n{tail(init_log)}")
    settings = [f"-c{key}={value}" for key, value in POSTGRES_SETTINGS.items()]
    for _ in range(3):
        port = free_port()
        log = bench.tmp / f"{name}.log"
        # In the foreground, so that it is one of the bench's processes; SIGINT is its "fast"
        # shutdown (SIGTERM would wait for every client to disconnect).
        process = bench.spawn(
            [*as_user, bin_dir / "postgres", "-D", data, "-p", port, "-k", base,
             "-clisten_addresses=127.0.0.1", *settings],
            log, stop_signal=signal.SIGINT,
        )  # fmt: skip
        server = Postgres(port, bin_dir, base, process)
        deadline = time.monotonic() + STARTUP_TIMEOUT * 2
        while time.monotonic() < deadline and process.poll() is None:
            probe = subprocess.run(
                [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", USER,
                 "-d", "postgres", "-q"], stdin=subprocess.DEVNULL)  # fmt: skip
            if probe.returncode == 0:
                break
            time.sleep(0.1)
        if process.poll() is None and probe.returncode == 0:
            createdb = subprocess.run(
                [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER,
                 DATABASE], capture_output=True, text=True, stdin=subprocess.DEVNULL)  # fmt: skip
            if createdb.returncode != 0:
                raise BenchError(f"createdb: {createdb.stderr.strip()}")
            return server
        bench.stop(process)
    raise BenchError(f"PostgreSQL did not start:\n{tail(bench.tmp / f'{name}.log')}")


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class Redis:
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def start_redis(bench: Bench, name: str = "redis") -> Redis:
    """redis-server without persistence (nothing in Redis is the only copy of anything)."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(binary, os.X_OK):
        raise BenchError("redis-server not found (apt-get install redis-server)")
    workdir = bench.tmp / name
    workdir.mkdir(exist_ok=True)
    for _ in range(3):
        port = free_port()
        process = bench.spawn(
            [binary, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", workdir, "--maxclients", "1000"],
            bench.tmp / f"{name}.log",
        )  # fmt: skip
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if redis_ping(port):
                return Redis(port, process)
            time.sleep(0.05)
        bench.stop(process)
    raise BenchError(f"redis-server did not start:\n{tail(bench.tmp / f'{name}.log')}")
