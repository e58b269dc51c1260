# Fixtures of the integration suite: start the real `fetchd` binary ($FETCHD_BIN) on a free
# loopback port with a temporary SQLite database, talk HTTP to it, and always clean it up.
# A failing test gets the tail of every involved server's stderr attached to its report.
import calendar
import itertools
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

STARTUP_TIMEOUT = 15.0  # the ASan build starts slowly
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0  # Argon2id under a loaded 2-core machine is not instant
CLI_TIMEOUT = 30.0

LISTENING_RE = re.compile(r"listening on http://([0-9A-Za-z.\-\[\]:]+?):(\d+)")
RFC3339_MS_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

# The seed's example body: must be accepted exactly as written (docs/api.md).
SEED_TASK = json.loads((Path(__file__).resolve().parent / "seed_task.json").read_text())

DEFAULT_PASSWORD = "correct horse battery"

# What the engine changes on a task as it runs it (the seed body's task is active and runs
# every 2 s): left out when a test compares what the user stored.
RUN_STATE_KEYS = {"consecutive_failures", "suspended", "next_run_at", "last_execution_status",
                  "last_execute_time", "execution_time", "last_execution_error", "last_job_id"}


def user_view(task):
    """A task without the fields its runs change."""
    return {k: v for k, v in task.items() if k not in RUN_STATE_KEYS}


def fetchd_bin() -> str:
    value = os.environ.get("FETCHD_BIN")
    if value:
        return value
    # Convenience outside ctest: the default build directory of the repository.
    return str(Path(__file__).resolve().parents[2] / "build" / "fetchd")


def clean_env(extra=None):
    """The environment for a child: ours without any FETCHD_* (ctest sets FETCHD_BIN and
    FETCHD_FIXTURES, which are not options), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FETCHD_")}
    # Leak reports are wanted (they fail the exit code check), but not a symbolizer hunt.
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0")
    env.update(extra or {})
    return env


def unique_name(prefix="user"):
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def run_cli(*args, input=None, env=None, timeout=CLI_TIMEOUT, cwd=None):
    """Runs `fetchd ARGS…` to completion; returns the CompletedProcess (text mode)."""
    return subprocess.run(
        [fetchd_bin(), *map(str, args)],
        input=input,
        capture_output=True,
        text=True,
        env=clean_env(env),
        timeout=timeout,
        cwd=cwd,
    )


class FetchdStartError(Exception):
    def __init__(self, message, returncode=None, stderr=""):
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class Fetchd:
    """One `fetchd serve` process over a database that outlives restarts."""

    _counter = itertools.count(1)

    def __init__(self, workdir, *, name=None, args=(), env=None, db_path=None,
                 listen="127.0.0.1:0", log_level="info", db_flag=True, subcommand="serve",
                 db=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name or f"fetchd{next(Fetchd._counter)}"
        self.db_path = Path(db_path) if db_path else self.workdir / f"{self.name}.db"
        self.args = list(args)
        self.env = dict(env or {})
        self.listen = listen
        self.log_level = log_level
        self.db_flag = db_flag
        self.subcommand = subcommand  # serve, or a scale-out role: api, scheduler, worker
        self.db = db  # a database URL (postgres://…) instead of the SQLite file
        self.stderr_path = self.workdir / f"{self.name}.stderr"
        self.stdout_path = self.workdir / f"{self.name}.stdout"
        self.proc = None
        self.host = None
        self.port = None
        self.starts = 0

    @property
    def db_url(self):
        if self.db is not None:
            return self.db
        return f"sqlite://{self.db_path}"  # db_path is absolute: sqlite:///abs/path.db

    def command(self):
        cmd = [fetchd_bin(), self.subcommand]
        if self.db_flag:
            cmd += ["--db", self.db_url]
        if self.listen is not None:
            cmd += ["--listen", self.listen]
        if self.log_level is not None:
            cmd += ["--log-level", self.log_level]
        return cmd + [str(a) for a in self.args]

    def start(self, timeout=STARTUP_TIMEOUT):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        with open(self.stderr_path, "ab") as f:
            f.write(f"===== start #{self.starts}: {' '.join(self.command())}\n".encode())
            offset = f.tell()
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, env=clean_env(self.env),
                                         cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while True:
            text = self._read_from(self.stderr_path, offset)
            match = LISTENING_RE.search(text)
            if match:
                self.host, self.port = match.group(1).strip("[]"), int(match.group(2))
                return self
            code = self.proc.poll()
            if code is not None:
                raise FetchdStartError(
                    f"{self.name} exited with code {code} before listening; stderr:\n{text}",
                    returncode=code, stderr=text)
            if time.monotonic() > deadline:
                self.kill()
                hint = ""
                if LISTENING_RE.search(self._read_from(self.stdout_path, 0)):
                    hint = " (the line is on stdout; the contract says stderr)"
                raise FetchdStartError(
                    f"{self.name}: no 'listening on http://HOST:PORT' on stderr within "
                    f"{timeout}s{hint}; stderr:\n{text}")
            time.sleep(0.05)

    @staticmethod
    def _read_from(path, offset):
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def url(self, path):
        assert self.port is not None, "not started"
        return f"http://{self.host}:{self.port}{path}"

    def request(self, method, path, *, token=None, headers=None, timeout=HTTP_TIMEOUT, **kw):
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.url(path), headers=headers, timeout=timeout,
                                allow_redirects=False, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def signal_and_wait(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends `sig` and returns the exit code (None if it did not exit in time: then killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Graceful stop; the exit code must be 0."""
        code = self.signal_and_wait(sig, timeout)
        assert code is not None, f"{self.name} did not exit within {timeout}s of {sig!r}"
        assert code == 0, \
            f"{self.name} exited with {code} after {sig!r}; stderr tail:\n{self.tail()}"

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)

    def restart(self):
        self.stop()
        return self.start()

    def stderr_text(self):
        return self._read_from(self.stderr_path, 0)

    def tail(self, lines=80):
        return "\n".join(self.stderr_text().splitlines()[-lines:])


class FetchdFactory:
    """Starts servers for one test; they are all killed at teardown whatever happened."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.fetchd_instances = []

    def create(self, **kw):
        server = Fetchd(self.workdir, **kw)
        self.fetchd_instances.append(server)
        return server

    def __call__(self, **kw):
        return self.create(**kw).start()

    def cleanup(self):
        for server in self.fetchd_instances:
            server.kill()


class Account:
    def __init__(self, server, username, password, user, token, login):
        self.server = server
        self.username = username
        self.password = password
        self.user = user
        self.token = token
        self.login = login

    @property
    def id(self):
        return self.user["id"]

    @property
    def headers(self):
        return {"Authorization": f"Bearer {self.token}"}


def register(server, username=None, password=DEFAULT_PASSWORD):
    username = username or unique_name()
    r = server.post("/register", json={"username": username, "password": password})
    assert r.status_code == 201, f"register {username}: {r.status_code} {r.text}"
    return r.json()


def login(server, username, password=DEFAULT_PASSWORD):
    r = server.post("/login", json={"username": username, "password": password})
    assert r.status_code == 200, f"login {username}: {r.status_code} {r.text}"
    return r.json()


def login_account(server, username, password=DEFAULT_PASSWORD):
    body = login(server, username, password)
    me = server.get("/me", token=body["access_token"])
    assert me.status_code == 200, me.text
    return Account(server, username, password, me.json(), body["access_token"], body)


def register_and_login(server, username=None, password=DEFAULT_PASSWORD):
    user = register(server, username, password)
    body = login(server, user["username"], password)
    return Account(server, user["username"], password, user, body["access_token"], body)


def add_admin(server, username="root", password=DEFAULT_PASSWORD):
    """`fetchd user add NAME --admin` on the server's database, then log in."""
    r = run_cli("user", "add", username, "--admin", "--db", server.db_url, input=password + "\n")
    assert r.returncode == 0, f"user add --admin: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return login_account(server, username, password)


def create_task(account, **overrides):
    body = dict(SEED_TASK)
    body.update(overrides)
    r = account.server.post("/tasks", token=account.token, json=body)
    assert r.status_code == 201, f"create task: {r.status_code} {r.text}"
    return r.json()


def assert_problem(r, status, fields=None):
    """An RFC 9457 problem with `status`; with `fields`, every one is listed in `errors`."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("application/problem+json"), f"Content-Type {ctype!r}"
    body = r.json()
    assert body.get("status") == status, body
    assert isinstance(body.get("title"), str) and body["title"], body
    assert isinstance(body.get("detail"), str), body
    assert body.get("type") == "about:blank", body
    assert r.headers.get("X-Request-Id"), "no X-Request-Id"
    assert body.get("request_id") == r.headers["X-Request-Id"], body
    if fields is not None:
        listed = {e["field"] for e in body.get("errors", [])}
        for e in body.get("errors", []):
            assert isinstance(e.get("message"), str) and e["message"], body
        missing = set(fields) - listed
        assert not missing, f"fields {sorted(missing)} not in errors {sorted(listed)}: {body}"
    return body


def error_fields(r):
    return {e["field"] for e in r.json().get("errors", [])}


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session", autouse=True)
def fetchd_binary():
    path = fetchd_bin()
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        pytest.fail(
            f"fetchd binary not found or not executable: {path!r}. Set FETCHD_BIN to the built "
            "binary (ctest does), e.g. FETCHD_BIN=build/fetchd python3 -m pytest tests/integration",
            pytrace=False)
    return path


@pytest.fixture
def workdir(tmp_path):
    return tmp_path


@pytest.fixture
def fetchd_factory(tmp_path):
    factory = FetchdFactory(tmp_path)
    yield factory
    factory.cleanup()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server shared by a module's tests (each test uses its own users)."""
    srv = Fetchd(tmp_path_factory.mktemp("server"), name="shared")
    try:
        srv.start()
        yield srv
        if srv.running:
            srv.stop()  # a graceful exit 0 (and no sanitizer report) is part of the contract
    finally:
        srv.kill()


@pytest.fixture
def alice(server):
    return register_and_login(server)


@pytest.fixture
def bob(server):
    return register_and_login(server)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    servers = []
    for value in getattr(item, "funcargs", {}).values():
        candidates = [value]
        candidates += list(getattr(value, "fetchd_instances", []))
        if isinstance(getattr(value, "server", None), Fetchd):
            candidates.append(value.server)
        for c in candidates:
            if isinstance(c, Fetchd) and c not in servers:
                servers.append(c)
    for s in servers:
        report.sections.append((f"fetchd stderr ({s.name}, {s.stderr_path})", s.tail()))
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, FixtureServer):
            text = value.stderr_path.read_text(errors="replace") if value.stderr_path.exists() \
                else ""
            report.sections.append(("fixture server stderr", "\n".join(text.splitlines()[-40:])))


# ---------------------------------------------------------------------------------------------
# The execution engine (issue 3): a loopback fixture HTTP server that tasks fetch from, a
# `fetchd serve` allowed to fetch it, and helpers to read jobs and time stamps.

REPO_DIR = Path(__file__).resolve().parents[2]
FIXTURE_SERVER_SCRIPT = REPO_DIR / "tests" / "fixtures" / "fixture_server.py"
FIXTURE_READY_TIMEOUT = 15.0


def fixtures_dir() -> Path:
    value = os.environ.get("FETCHD_FIXTURES")
    return Path(value) if value else REPO_DIR.parent / "shared" / "fixtures"


def fixture_json(name):
    """The parsed content of a sample feed, to compare with what a run stored."""
    with open(fixtures_dir() / name, "rb") as f:
        return json.load(f)


def fixture_bytes(name):
    return (fixtures_dir() / name).read_bytes()


class FixtureServer:
    """`tests/fixtures/fixture_server.py` on a free loopback port (it prints `READY <port>`);
    its stdin is a pipe so that it exits (--exit-on-eof) whenever this process goes."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.proc = None
        self.port = None
        self.stderr_path = self.workdir / "fixture_server.stderr"

    def start(self):
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(FIXTURE_SERVER_SCRIPT), "--port", "0", "--fixtures",
             str(fixtures_dir()), "--exit-on-eof"],
            stdout=subprocess.PIPE, stderr=self._err, stdin=subprocess.PIPE, text=True)
        lines = []
        deadline = time.monotonic() + FIXTURE_READY_TIMEOUT
        # readline blocks; the server prints READY promptly or dies (EOF), so this terminates.
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.match(r"READY (\d+)", line.strip())
            if match:
                self.port = int(match.group(1))
                return self
        self.stop()
        raise RuntimeError(f"fixture server did not print READY <port>: {lines!r}; stderr:\n"
                           f"{self.stderr_path.read_text(errors='replace')}")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path, **kw):
        return requests.get(self.url(path), timeout=HTTP_TIMEOUT, **kw)

    def counter_value(self, name):
        r = self.get(f"/counter/{name}/value")
        r.raise_for_status()
        return r.json()["count"]

    def stop(self):
        if self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()  # --exit-on-eof: it goes even if we die before terminate
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if getattr(self, "_err", None) is not None:
            self._err.close()


@pytest.fixture(scope="session")
def fixture_server(tmp_path_factory):
    srv = FixtureServer(tmp_path_factory.mktemp("fixture_server"))
    try:
        yield srv.start()
    finally:
        srv.stop()


ENGINE_ARGS = ("--fetch-allow-private",)


@pytest.fixture(scope="module")
def engine_server(tmp_path_factory):
    """One `fetchd serve` that may fetch loopback, shared by a module's tests."""
    srv = Fetchd(tmp_path_factory.mktemp("engine"), name="engine", args=ENGINE_ARGS)
    try:
        srv.start()
        yield srv
        if srv.running:
            srv.stop()
    finally:
        srv.kill()


@pytest.fixture(scope="module")
def runner(engine_server):
    """The account that owns a module's engine tasks."""
    return register_and_login(engine_server)


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_ms(ms: int) -> str:
    """Unix milliseconds → RFC 3339 UTC with milliseconds, as the API writes them."""
    seconds, millis = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def parse_ms(text) -> int:
    """RFC 3339 UTC with milliseconds (the API's format) → unix milliseconds."""
    assert isinstance(text, str) and RFC3339_MS_UTC.match(text), f"not RFC 3339 ms UTC: {text!r}"
    seconds = calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1000 + int(text[20:23])


def sleep_until_ms(ms: int):
    delay = (ms - now_ms()) / 1000.0
    if delay > 0:
        time.sleep(delay)


def wait_for(predicate, timeout, interval=0.05, message="condition"):
    """Polls `predicate` until it returns something truthy (returned) or `timeout` seconds pass
    (the test fails with the last value seen)."""
    deadline = time.monotonic() + timeout
    value = None
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}; last: {value!r}",
                        pytrace=False)
        time.sleep(interval)


def engine_task(account, url, **overrides):
    """Creates a task fetching `url`; by default due every hour from 1 s from now (so nothing
    runs before the test says so, except the first run at start_time)."""
    start = overrides.pop("start_ms", None)
    if start is None:
        start = now_ms() + 1000
    body = {
        "name": overrides.pop("name", "engine"),
        "url": url,
        "parameters": {},
        "start_time": iso_ms(start),
        "end_time": iso_ms(start + 86_400_000),
        "task_interval": 3600,
        "max_execution_time": 0,
        "max_attempt": 3,
    }
    body.update(overrides)
    r = account.server.post("/tasks", token=account.token, json=body)
    assert r.status_code == 201, f"create task: {r.status_code} {r.text}"
    return r.json()


def list_jobs(account, task_id, status=None, limit=None):
    """Every job of a task, newest first, following next_cursor."""
    items, cursor = [], None
    for _ in range(1000):
        params = {}
        if status is not None:
            params["status"] = status
        if limit is not None:
            params["limit"] = limit
        if cursor is not None:
            params["cursor"] = cursor
        r = account.server.get(f"/tasks/{task_id}/jobs", token=account.token, params=params)
        assert r.status_code == 200, f"GET /tasks/{task_id}/jobs: {r.status_code} {r.text}"
        body = r.json()
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items
    pytest.fail("next_cursor never ends")


def finished_jobs(account, task_id):
    """Jobs in chronological order (oldest first), skipped ones excluded."""
    return [j for j in reversed(list_jobs(account, task_id)) if j["status"] != "skipped"]


def wait_for_jobs(account, task_id, count, timeout, finished_only=True):
    """Waits until the task has `count` jobs (not skipped); returns them oldest first."""
    return wait_for(
        lambda: (lambda js: js if len(js) >= count else None)(
            finished_jobs(account, task_id) if finished_only
            else list(reversed(list_jobs(account, task_id)))),
        timeout, interval=0.1, message=f"{count} jobs of task {task_id}")


def task_status(account, task_id):
    r = account.server.get(f"/tasks/{task_id}/status", token=account.token)
    assert r.status_code == 200, f"status: {r.status_code} {r.text}"
    return r.json()


def sqlite_rows(db_path, sql, params=()):
    """Reads the database of a stopped server directly (read-write: after a kill -9 the WAL may
    need recovering, which a read-only connection cannot do)."""
    con = sqlite3.connect(str(db_path), timeout=10)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_run(account, url, timeout=10, **overrides):
    """Creates a task due 300 ms from now (then hourly) and returns (task, its first job)."""
    overrides.setdefault("start_ms", now_ms() + 300)
    task = engine_task(account, url, **overrides)
    jobs = wait_for_jobs(account, task["id"], 1, timeout=timeout)
    return task, jobs[0]
