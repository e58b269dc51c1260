"""What every bench/run scenario shares: the processes it starts (fetchd in any role, nginx, wrk;
PostgreSQL and Redis through services.py), all on 127.0.0.1, all in their own process group
and all stopped when the run ends, however it ends; CPU and RSS probes; a small HTTP client to
seed fetchd; and the rows of the result table (with issue 5's target and pass/fail).

A scenario is a module in bench/scenarios/ with a `run(bench) -> list[Row]` function. Beside
this file: metrics.py (GET /metrics, bursts, percentiles), engine.py (what the engine
scenarios share), seeding.py (many tasks straight into the database), feeds.py (the feeds
nginx serves) and services.py (PostgreSQL, Redis)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WRK_DIR = BENCH_DIR / "wrk"
NGINX_CONF = BENCH_DIR / "nginx" / "nginx.conf"

STARTUP_TIMEOUT = 15.0  # seconds for a server to answer after it was started
STOP_TIMEOUT = 10.0  # seconds for a process group to exit after SIGTERM, before SIGKILL
HTTP_TIMEOUT = 10.0
WRK_GRACE = 30.0  # seconds a wrk run may take beyond its duration before it is killed

# Tools bench/run needs beyond `make deps` (benchmarks are not part of `make test`, so they stay
# out of scripts/debian-packages.txt): binary -> Debian package.
TOOLS = {"wrk": "wrk", "nginx": "nginx-light"}

PASSWORD = "bench password, not secret"


class BenchError(Exception):
    """A scenario could not produce its figures (a server did not start, wrk failed...)."""


@dataclass
class Row:
    scenario: str
    figure: str
    limit: str = "—"
    ratio: float | None = None
    ok: bool = True  # False when the figure is not trustworthy (e.g. non-2xx answers)
    target: str = "—"  # issue 5's target for this figure, e.g. "≥ 0.5"
    passed: bool | None = None  # whether the figure meets the target; None: no target


def verdict(passed: bool | None) -> str:
    return "—" if passed is None else ("pass" if passed else "**fail**")


# Other processes busier than this (in cores, averaged over a wrk run) make a figure suspect.
OTHER_LOAD_LIMIT = 0.1


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    errors: dict
    latency_us: dict
    other_cores: float  # CPU used meanwhile by processes bench/run did not start, in cores

    @property
    def rate(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def disturbed(self) -> bool:
        return self.other_cores > OTHER_LOAD_LIMIT

    @property
    def failed(self) -> int:
        """Requests that failed or were not answered 2xx/3xx (all wrk error counters)."""
        return sum(self.errors.values())


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ms(micros: float) -> str:
    return f"{micros / 1000:.2f} ms"


def load_note(*results: WrkResult) -> str:
    """' (other load: …)' after a figure measured while other processes used the CPU."""
    worst = max(r.other_cores for r in results)
    return f" (other load: {worst:.2f} cores)" if worst > OTHER_LOAD_LIMIT else ""


def _machine_ticks() -> tuple[int, int]:
    """(busy, all) clock ticks of every CPU since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = values + [0] * (8 - len(values))
    busy = user + nice + system + irq + softirq + steal  # steal: the hypervisor ran others
    return busy, busy + idle + iowait


def _process_ticks(pids: set[int], pgids: set[int]) -> int:
    """CPU ticks used so far by the live (or not yet reaped) processes in `pids` or `pgids`,
    and by their descendants (PostgreSQL's backends start sessions of their own)."""
    procs = {}  # pid -> (ppid, pgid, ticks)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(")", 1)[1].split()  # the name in (...) may hold spaces
        procs[int(entry.name)] = (int(fields[1]), int(fields[2]), int(fields[11]) + int(fields[12]))
    chosen: dict[int, bool] = {}

    def is_chosen(pid: int, depth: int = 0) -> bool:
        if pid in chosen:
            return chosen[pid]
        ppid, pgid, _ = procs.get(pid, (0, 0, 0))
        result = pid in pids or pgid in pgids or (
            ppid in procs and depth < 64 and is_chosen(ppid, depth + 1))
        chosen[pid] = result
        return result

    return sum(ticks for pid, (_, _, ticks) in procs.items() if is_chosen(pid))


class LoadProbe:
    """CPU used over an interval by `pgids` (process groups, e.g. the server under test) and by
    everything else on the machine but bench/run's own processes (other people's load)."""

    def __init__(self, ours_pgids: set[int], watched_pgids: set[int] = frozenset()):
        self._ours = ours_pgids
        self._watched = set(watched_pgids)
        self._busy, self._all = _machine_ticks()
        self._ours_ticks = _process_ticks({os.getpid()}, self._ours)
        self._watched_ticks = _process_ticks(set(), self._watched)

    def stop(self, ours_pgids: set[int] | None = None) -> tuple[float, float]:
        """(other cores, cores used by the watched groups), averaged since the probe started.
        `ours_pgids`: bench/run's process groups now, when it started some meanwhile (wrk)."""
        busy, all_ = _machine_ticks()
        ours = _process_ticks({os.getpid()}, self._ours | (ours_pgids or set()))
        watched = _process_ticks(set(), self._watched)
        elapsed = (all_ - self._all) / (os.cpu_count() or 1)
        if elapsed <= 0:
            return 0.0, 0.0
        other = (busy - self._busy) - (ours - self._ours_ticks)
        return max(0.0, other / elapsed), (watched - self._watched_ticks) / elapsed


def render_table(rows: list[Row]) -> str:
    lines = [
        "| scenario | figure | limit | ratio | target | pass/fail |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}"
        lines.append(f"| {row.scenario} | {row.figure} | {row.limit} | {ratio} | {row.target} "
                     f"| {verdict(row.passed)} |")
    return "\n".join(lines) + "\n"


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (all its threads), from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for process {pid}")


def ensure_tools() -> None:
    """Installs the Debian packages of the missing tools, as scripts/deps.sh does for the build."""
    missing = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if not missing:
        return
    print(f"bench: installing {' '.join(missing)}", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=env,
        timeout=600,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def task_body(name: str) -> dict:
    """The seed's example task, with its active window moved to 2100 and its URL to a closed
    loopback port: the API benchmarks must not make the execution engine fetch anything."""
    return {
        "name": name,
        "url": "http://127.0.0.1:9/php-architecture/",
        "parameters": '{"eventfile": "amazingexpo2020.json"}',
        "start_time": "2100-01-04T21:41:38.930Z",
        "end_time": "2101-01-04T21:41:38.930Z",
        "task_interval": 2,
        "max_execution_time": 0,
        "max_attempt": 3,
    }


class Client:
    """A keep-alive JSON client for seeding fetchd (not for measuring: wrk does that)."""

    def __init__(self, port: int):
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
        self.token: str | None = None

    def close(self) -> None:
        self._conn.close()

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._conn.request(method, path, body=data, headers=headers)
        response = self._conn.getresponse()
        return response.status, response.read()

    def expect(self, status: int, method: str, path: str, body: dict | None = None) -> bytes:
        got, payload = self.request(method, path, body)
        if got != status:
            raise BenchError(f"{method} {path}: expected {status}, got {got}: {payload[:300]!r}")
        return payload

    def register_and_login(self, username: str) -> str:
        credentials = {"username": username, "password": PASSWORD}
        self.expect(201, "POST", "/register", credentials)
        self.token = json.loads(self.expect(200, "POST", "/login", credentials))["access_token"]
        return self.token

    def create_task(self, body: dict) -> int:
        return json.loads(self.expect(201, "POST", "/tasks", body))["id"]


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Bench:
    """One run of bench/run: its settings, its temp dir and every process it started."""

    def __init__(self, *, quick: bool, keep: bool, soak_s: float | None = None):
        self.quick = quick
        self.keep = keep
        # The storage scenario's soak: 10 minutes as issue 5 asks, 70 s (one pruner pass) quick.
        self.soak_s = soak_s if soak_s is not None else (70.0 if quick else 600.0)
        self.duration_s = 2 if quick else 10
        self.connections = 50
        self.threads = 1
        self.fetchd_bin = Path(os.environ.get("FETCHD_BIN", REPO_DIR / "build" / "fetchd"))
        self.tmp = Path(tempfile.mkdtemp(prefix="fetchd-bench-"))
        self._processes: list[subprocess.Popen] = []
        self._stop_signals: dict[int, int] = {}
        self._names: dict[str, int] = {}
        self.measurements: list[WrkResult] = []  # every wrk run, for the report's load line

    # --- processes -------------------------------------------------------------------------

    def spawn(self, argv: list, log: Path, env: dict | None = None, cwd: Path | None = None,
              stop_signal: int = signal.SIGTERM) -> subprocess.Popen:
        """Starts a process of this run (close() stops it at the latest) writing to `log`;
        stop() sends `stop_signal` to its process group first."""
        with open(log, "ab") as out:
            # A session of its own: stop() signals the whole group (nginx's workers too).
            process = subprocess.Popen(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        self._processes.append(process)
        self._stop_signals[process.pid] = stop_signal
        return process

    def stop(self, process: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> None:
        """Stops the process and the rest of its group (e.g. postgres run through runuser);
        SIGKILL to the group after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        try:
            os.killpg(process.pid, self._stop_signals.pop(process.pid, signal.SIGTERM))
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        # The leader may exit before the rest of its group (runuser before postgres).
        while time.monotonic() < deadline and _group_alive(process.pid):
            time.sleep(0.05)
        if process.poll() is None or _group_alive(process.pid):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
        if process in self._processes:
            self._processes.remove(process)

    def unique(self, name: str) -> str:
        """`name`, or `name-2`, `name-3`... when it was used before in this run (log files)."""
        n = self._names.get(name, 0) + 1
        self._names[name] = n
        return name if n == 1 else f"{name}-{n}"

    def close(self) -> None:
        for process in list(reversed(self._processes)):
            self.stop(process)
        if self.keep:
            print(f"bench: kept {self.tmp}", flush=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _wait_until_serving(self, server: Server, path: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise BenchError(
                    f"{server.name} exited with {server.process.returncode}:\n{tail(server.log)}"
                )
            try:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=1)
                conn.request("GET", path)
                if conn.getresponse().status < 500:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.05)
        raise BenchError(
            f"{server.name} did not answer within {STARTUP_TIMEOUT}s:\n{tail(server.log)}"
        )

    def process_groups(self) -> set[int]:
        """The process groups of everything bench/run started and has not stopped yet."""
        return {p.pid for p in self._processes}

    def load_probe(self, *watched: Server) -> LoadProbe:
        """Starts measuring CPU use: the watched servers' and that of processes bench/run did
        not start (LoadProbe.stop)."""
        return LoadProbe(self.process_groups(), {s.process.pid for s in watched})

    def _start_server(self, name: str, argv_for_port, ready_path: str, **spawn) -> Server:
        # The port is chosen here and could be taken before the server binds it: retry then.
        for attempt in range(3):
            port = free_port()
            log = self.tmp / f"{self.unique(name)}.log"
            server = Server(name, port, self.spawn(argv_for_port(port), log, **spawn), log)
            try:
                self._wait_until_serving(server, ready_path)
                return server
            except BenchError:
                self.stop(server.process)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _fetchd_env(self) -> dict:
        if not os.access(self.fetchd_bin, os.X_OK):
            raise BenchError(f"{self.fetchd_bin} not found: run `make build` (or set FETCHD_BIN)")
        return {k: v for k, v in os.environ.items() if not k.startswith("FETCHD_")}

    def fetchd_dir(self, name: str = "fetchd") -> Path:
        """The data dir of start_fetchd(name); its database is fetchd_dir(name)/bench.db."""
        data_dir = self.tmp / name
        data_dir.mkdir(exist_ok=True)
        return data_dir

    def fetchd_db(self, name: str = "fetchd") -> str:
        """The --db URL start_fetchd(name) uses, for commands run on it beforehand (db seed)."""
        return f"sqlite://{self.fetchd_dir(name) / 'bench.db'}"

    def run_fetchd(self, args: list, name: str, timeout: float) -> str:
        """A one-shot fetchd command (e.g. `db seed`) in start_fetchd(name)'s data dir; its
        output, or BenchError when it fails or takes longer than `timeout` seconds."""
        env = self._fetchd_env()
        log = self.tmp / f"{self.unique(f'{name}-' + '-'.join(map(str, args[:2])))}.log"
        process = self.spawn([self.fetchd_bin, *args], log, env=env, cwd=self.fetchd_dir(name))
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"fetchd {args[0]} took more than {timeout:.0f}s:\n{tail(log)}")
        finally:
            self.stop(process)
        if process.returncode != 0:
            raise BenchError(f"fetchd {args[0]} exited with {process.returncode}:\n{tail(log)}")
        return log.read_text(errors="replace")

    def fetchd_argv(self, port: int, name: str, role: str, db: str | None, broker: str | None,
                    log_level: str, extra_args) -> list:
        return [
            self.fetchd_bin, role,
            "--listen", f"127.0.0.1:{port}",
            "--db", db or self.fetchd_db(name),
            "--log-level", log_level,
            # Benchmarks create far more tasks than one user may own by default.
            "--limits-max-tasks-per-user", "0",
            # Every target is on loopback, which the address guard refuses by default.
            "--fetch-allow-private",
            *(["--broker", broker] if broker else []),
            *extra_args,
        ]  # fmt: skip

    def start_fetchd(self, name: str = "fetchd", extra_args: tuple = (), *, role: str = "serve",
                     db: str | None = None, broker: str | None = None,
                     log_level: str = "warn") -> Server:
        """`fetchd <role>` (serve by default, on start_fetchd(name)'s own SQLite file unless
        `db` says otherwise), once it answers /healthz. It logs at warn: at info, the access
        log line of every request would be a large part of what is measured."""
        env = self._fetchd_env()
        data_dir = self.fetchd_dir(name)

        def argv(port):
            return self.fetchd_argv(port, name, role, db, broker, log_level, extra_args)

        return self._start_server(name, argv, "/healthz", env=env, cwd=data_dir)

    def spawn_fetchd(self, name: str = "fetchd", extra_args: tuple = (), *, role: str = "serve",
                     db: str | None = None, broker: str | None = None,
                     log_level: str = "warn") -> Server:
        """As start_fetchd, but returns at once (for timing the start-up)."""
        port = free_port()
        log = self.tmp / f"{self.unique(name)}.log"
        argv = self.fetchd_argv(port, name, role, db, broker, log_level, extra_args)
        process = self.spawn(argv, log, env=self._fetchd_env(), cwd=self.fetchd_dir(name))
        return Server(name, port, process, log)

    def start_nginx(self, files: dict[str, bytes], name: str = "nginx",
                    nonce_digits: int = 1) -> Server:
        """nginx (bench/nginx/nginx.conf) in the foreground, serving `files` from a temp dir;
        a name may hold directories ("small/a.json" is served at /small/a.json). A request
        for /nonce/<feed>/feed.json gets /copies/<feed>/<h>.json, <h> being the first
        `nonce_digits` hex digits of a random request id (feeds.feed_files makes the copies)."""
        prefix = self.tmp / name
        root = prefix / "root"
        root.mkdir(parents=True, exist_ok=True)
        # When started as root, nginx's workers run as nobody: they must be able to read root/.
        for path in (self.tmp, prefix, root):
            path.chmod(0o755)
        for file_name, content in files.items():
            path = root / file_name
            if root.resolve() not in path.resolve().parents:
                raise BenchError(f"nginx: {file_name} is outside the document root")
            for directory in reversed(path.relative_to(root).parents[:-1]):
                (root / directory).mkdir(exist_ok=True)
                (root / directory).chmod(0o755)
            path.write_bytes(content)
            path.chmod(0o644)

        def argv(port):
            conf = prefix / "nginx.conf"
            text = NGINX_CONF.read_text()
            for key, value in {"@PORT@": port, "@PREFIX@": prefix, "@ROOT@": root,
                               "@NONCE_DIGITS@": nonce_digits}.items():
                text = text.replace(key, str(value))
            conf.write_text(text)
            return [shutil.which("nginx") or "nginx", "-p", prefix, "-e", "stderr", "-c", conf]

        return self._start_server(name, argv, "/", cwd=prefix)

    # --- wrk -------------------------------------------------------------------------------

    def wrk(
        self, label: str, url: str, script: str, args: list, connections: int | None = None
    ) -> WrkResult:
        """wrk -t1 -c50 (or -c<connections>) -d<duration> with bench/wrk/<script> and its
        arguments."""
        log = self.tmp / f"{self.unique('wrk-' + label)}.log"
        argv = [
            "wrk",
            f"-t{self.threads}", f"-c{connections or self.connections}", f"-d{self.duration_s}s",
            "--timeout", "5s",
            "-s", WRK_DIR / script,
            url, "--", *args,
        ]  # fmt: skip
        env = dict(os.environ, BENCH_WRK_DIR=str(WRK_DIR))
        process, other_cores, _ = self.run_measured(argv, log, self.duration_s + WRK_GRACE,
                                                    f"wrk ({label})", env=env)
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("BENCH_RESULT "):
                data = json.loads(line.removeprefix("BENCH_RESULT "))
                result = WrkResult(
                    requests=data["requests"],
                    duration_s=data["duration_us"] / 1e6,
                    errors=data["errors"],
                    latency_us=data["latency_us"],
                    other_cores=other_cores,
                )
                self.measurements.append(result)
                return result
        raise BenchError(f"wrk ({label}) exited with {process.returncode}:\n{tail(log)}")

    def run_measured(self, argv: list, log: Path, timeout: float, label: str, *watched: Server,
                     env: dict | None = None) -> tuple[subprocess.Popen, float, float]:
        """Runs `argv` (a load generator, a measuring tool) to its end, at most `timeout`
        seconds: the finished process, other people's cores and the `watched` servers' cores
        meanwhile. What the machine did, minus what our processes did, is other people's
        load."""
        probe = self.load_probe(*watched)
        process = self.spawn(argv, log, env=env)
        try:
            self._wait_unreaped(process, timeout, label, log)
            other_cores, watched_cores = probe.stop(ours_pgids=self.process_groups())
        finally:
            self.stop(process)
        return process, other_cores, watched_cores

    @staticmethod
    def _wait_unreaped(process: subprocess.Popen, timeout: float, label: str, log: Path) -> None:
        """Waits for `process` to exit but leaves it a zombie, so that its CPU time can still be
        read from /proc; stop() reaps it."""
        deadline = time.monotonic() + timeout
        while os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
            if time.monotonic() > deadline:
                raise BenchError(f"{label} did not finish:\n{tail(log)}")
            time.sleep(0.05)

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
        path.chmod(0o644)
        return path


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, as another user (started through runuser)
        return True


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
