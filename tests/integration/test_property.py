# Tried as an attacker would (issue #6): thousands of random and mutated requests to every route
# of /openapi.json on a running server (wrong methods, mutated bodies, odd headers, junk path
# parameters), then malformed HTTP over raw sockets and slow clients. The properties: never a
# 5xx, the process never dies, its memory stays bounded, and /healthz keeps answering.
#
# Reproducible: the random generator's seed is printed (FETCHD_PROPERTY_SEED overrides it), and
# every failure shows the exact request bytes. FETCHD_PROPERTY_REQUESTS and
# FETCHD_PROPERTY_SECONDS change the budget (6000 requests, at most 60 s).
import json
import os
import random
import re
import socket
import string
import time

import pytest

from conftest import SEED_TASK, FetchdFactory, add_admin, register_and_login

SEED = int(os.environ.get("FETCHD_PROPERTY_SEED", "20240601"))
REQUESTS = int(os.environ.get("FETCHD_PROPERTY_REQUESTS", "6000"))
SECONDS = float(os.environ.get("FETCHD_PROPERTY_SECONDS", "60"))
MIN_REQUESTS = min(REQUESTS, 300)  # below this the run proved too little (a very slow machine)
WARM_UP = 200  # requests before the memory baseline is taken
REQUEST_TIMEOUT = 15.0  # one answer; the ASan build on a loaded machine is slow
HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
# Password hashing (Argon2id) makes these slow: they get a smaller share of the requests.
SLOW_ROUTES = {("POST", "/register"), ("POST", "/login"), ("POST", "/password"),
               ("POST", "/users")}
# ASan keeps freed memory in quarantine (256 MB by default), which would swamp the RSS bound.
SERVER_ENV = {"ASAN_OPTIONS": "abort_on_error=0:quarantine_size_mb=16"}
MiB = 1024 * 1024


class Raw:
    """JSON text inserted as is by encode(): what json.dumps cannot write (1e400, bad UTF-8)."""

    def __init__(self, text):
        self.text = text if isinstance(text, bytes) else text.encode()

    def __repr__(self):
        return f"Raw({self.text[:40]!r})"


def encode(value):
    """JSON bytes of `value`, with Raw parts inserted verbatim."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        items = (encode(str(k)) + b": " + encode(v) for k, v in value.items())
        return b"{" + b", ".join(items) + b"}"
    if isinstance(value, list):
        return b"[" + b", ".join(encode(v) for v in value) + b"]"
    return json.dumps(value).encode()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # names lower-case
        self.body = body


class ServerGone(Exception):
    pass


class RawClient:
    """HTTP/1.1 over one kept-alive socket, writing exactly the bytes it is given (paths,
    headers and bodies that an ordinary client would refuse or normalise)."""

    def __init__(self, host, port):
        self.address = (host, port)
        self.sock = None
        self.buffer = b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.buffer = b""

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise ServerGone("the server closed the connection without a complete answer")
        self.buffer += data

    def _read_until(self, marker):
        while marker not in self.buffer:
            self._recv()
        head, self.buffer = self.buffer.split(marker, 1)
        return head

    def _read_exactly(self, n):
        while len(self.buffer) < n:
            self._recv()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def send(self, data, head_request=False):
        """Sends one request (bytes) and reads its answer, reconnecting when the server has
        closed a kept-alive connection in between."""
        for attempt in (1, 2):
            fresh = self.sock is None
            if fresh:
                self.sock = socket.create_connection(self.address, timeout=REQUEST_TIMEOUT)
            try:
                self.sock.sendall(data)
                answer = self._read_answer(head_request)
            except (ServerGone, ConnectionError) as e:
                self.close()
                if fresh or attempt == 2:
                    raise ServerGone(str(e)) from e
                continue  # the kept-alive connection had been closed: once more on a new one
            if answer.headers.get("connection", "").lower() == "close":
                self.close()
            return answer

    def _read_answer(self, head_request):
        while True:
            head = self._read_until(b"\r\n\r\n").decode("latin-1")
            lines = head.split("\r\n")
            match = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
            assert match, f"not a status line: {lines[0]!r}"
            status = int(match.group(1))
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if status == 100:
                continue
            length = 0 if head_request else int(headers.get("content-length", "0"))
            return Answer(status, headers, self._read_exactly(length))


def http_request(method, path, headers, body):
    """The bytes of a request: Content-Length always matches the body."""
    if isinstance(method, str):
        method = method.encode()
    if isinstance(path, str):
        path = path.encode()
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1"]
    for name, value in headers:
        lines.append((name.encode() if isinstance(name, str) else name) + b": "
                     + (value.encode() if isinstance(value, str) else value))
    if body is not None:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


# ---------------------------------------------------------------------------------------------
# What is sent


def resolve(spec, schema):
    while isinstance(schema, dict) and "$ref" in schema:
        node = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def example_of(spec, schema, depth=0):
    """A plausible value for a JSON schema: its example, or one built from its type."""
    schema = resolve(spec, schema or {})
    if "example" in schema:
        return schema["example"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("oneOf", "anyOf"):
        if schema.get(key):
            return example_of(spec, schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        return {name: example_of(spec, sub, depth + 1)
                for name, sub in schema.get("properties", {}).items()}
    return {"string": "x", "integer": 1, "number": 1.5, "boolean": True, "array": [],
            "null": None}.get(kind, "x")


class Routes:
    """The operations of /openapi.json, each with its query parameters and a valid body."""

    def __init__(self, spec, valid_bodies):
        self.operations = []
        for path, item in spec["paths"].items():
            shared = item.get("parameters", [])
            for method, op in item.items():
                if method.upper() not in HTTP_METHODS:
                    continue
                params = [resolve(spec, p) for p in shared + op.get("parameters", [])]
                query = [p["name"] for p in params if p.get("in") == "query"]
                body = None
                content = op.get("requestBody", {}).get("content", {})
                if "application/json" in content:
                    body = example_of(spec, content["application/json"].get("schema"))
                body = valid_bodies.get((method.upper(), path), body)
                self.operations.append((method.upper(), path, query, body))
        assert self.operations, "no operations in /openapi.json"

    def pick(self, rng):
        # Operations with a body have more to get wrong.
        weights = [0.25 if (m, p) in SLOW_ROUTES else 3.0 if body is not None else 1.0
                   for m, p, _, body in self.operations]
        return rng.choices(self.operations, weights)[0]


JUNK_IDS = ["0", "-1", "-0", "00001", "1.0", "1e3", "0x10", "abc", "%20", "%2e%2e", "..",
            "9223372036854775807", "9223372036854775808", "18446744073709551616",
            "9" * 40, "-9223372036854775809", "1;DROP TABLE tasks", "%00", "%ZZ", "%",
            "%C3%A9", "%FF%FE", "%2F", "1%2F2", "null", "true", "[]", "{}", "%E2%80%AE",
            "a" * 3000]
# JSON an ordinary encoder never writes, but a parser must survive.
ODD_JSON = [Raw("1e400"), Raw("-1e400"), Raw("1E-400"), Raw("123456789012345678901234567890"),
            Raw("-123456789012345678901234567890"), Raw("1" + "0" * 400), Raw("0.1e99999"),
            Raw(b'"\xff\xfe"'), Raw(b'"\xc3\x28"'), Raw(b'"\xed\xa0\x80"'), Raw('"\\ud800"'),
            Raw('"\\udc00\\ud800"'), Raw('"\\u0000"'), Raw("NaN"), Raw("Infinity"),
            Raw("[1,]"), Raw('"a\nb"'), Raw("01"), Raw("-"), Raw("1.e5"), Raw("tru")]
ODD_VALUES = [None, True, False, 0, -1, 1.5, -0.0, "", " ", "x" * 5000, [], {}, [1, [2, [3]]],
              {"a": {"b": None}}, 2 ** 63, -2 ** 63 - 1, 2 ** 64, 10 ** 30, 1e308,
              "2023-02-30T00:00:00Z", "0000-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59",
              "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd",
              "http://[::1]/", "javascript:alert(1)", "{url}", "\u202e\u0000\U0001F600"]


def deep(rng):
    n = rng.choice([65, 100, 1000, 20000, 200000])
    kind = rng.choice(["[]", "{}"])
    if kind == "[]":
        return Raw("[" * n + "]" * n)
    return Raw('{"a":' * n + "1" + "}" * n)


def mutate_value(rng, value):
    """A body (dict) changed in one way an attacker or a broken client would try."""
    if not isinstance(value, dict):
        value = {}
    value = dict(value)
    op = rng.randrange(10)
    keys = list(value) or ["x"]
    if op == 0:
        value[rng.choice(keys)] = rng.choice(ODD_VALUES)
    elif op == 9:
        value[rng.choice(keys)] = rng.choice(ODD_JSON)
    elif op == 1 and value:
        del value[rng.choice(keys)]
    elif op == 2:
        value["".join(rng.choices(string.ascii_letters, k=8))] = rng.choice(ODD_VALUES)
    elif op == 3:
        value[rng.choice(keys)] = deep(rng)
    elif op == 4:
        value["parameters"] = rng.choice([
            "{", "[]", '{"method": 5}', json.dumps({"headers": {"X": "a\r\nB: c"}}),
            "[" * 5000 + "]" * 5000, json.dumps({"query": {"a": [1]}, "path": 3}),
            {"method": "TRACE"}, {"headers": {"a b": "c"}}, {"url": "{x}"}, {"body": {"a": 1}},
            {"eventfile": "../../etc/passwd"}, Raw(b'"\xff"')])
    elif op == 5:
        value[rng.choice(keys)] = Raw(b'"' + bytes(rng.randrange(256)
                                                   for _ in range(rng.randrange(1, 30))) + b'"')
    elif op == 6:
        value = {k: v for k, v in value.items()}
        value.update({f"k{i}": i for i in range(rng.choice([100, 5000]))})
    elif op == 7:
        value[rng.choice(keys)] = rng.choice([2 ** 53 + 1, -2 ** 31, 366 * 24 * 3600 + 1, 0, 1, 3])
    else:
        value = rng.choice(ODD_VALUES)
    return value


def body_bytes(rng, valid):
    """A body derived from a valid one: unchanged, mutated, truncated or replaced by junk."""
    choice = rng.random()
    if choice < 0.15:
        return encode(valid) if valid is not None else b"{}"
    if choice < 0.70:
        value = valid
        for _ in range(rng.randint(1, 3)):
            value = mutate_value(rng, value)
        data = encode(value)
    elif choice < 0.80:
        data = encode(valid if valid is not None else {"a": 1})
        data = data[:rng.randrange(len(data) + 1)]
    elif choice < 0.88:
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    elif choice < 0.93:
        data = rng.choice([b"", b" ", b"null", b"[]", b"{}", b'"{}"', b"{}{}", b'{"a":1,"a":2}',
                           b"\xef\xbb\xbf{}", b"{\x00}", b"{" * 100000])
    else:
        # Big, but within the body limit (1 MiB).
        filler = "x" * rng.choice([1000, 100_000, 900_000])
        value = dict(valid) if isinstance(valid, dict) else {}
        value[rng.choice(list(value) or ["name"])] = filler
        data = encode(value)
    if data and rng.random() < 0.05:
        flip = bytearray(data)
        for _ in range(rng.randint(1, 5)):
            flip[rng.randrange(len(flip))] = rng.randrange(256)
        data = bytes(flip)
    return data


def header_set(rng, tokens, has_body, logout=False):
    headers = []
    if logout:
        # Logging out the tokens the test runs on (in any spelling the server accepts) would
        # leave it nothing but 401s to look at.
        tokens = {name: tokens["victim"] for name in tokens}
    auth = rng.random()
    if auth < 0.65:
        headers.append(("Authorization", "Bearer " + tokens["user"]))
    elif auth < 0.75:
        headers.append(("Authorization", "Bearer " + tokens["admin"]))
    elif auth < 0.80:
        headers.append(("Authorization", "Bearer " + tokens["victim"]))
    elif auth < 0.92:
        headers.append(("Authorization", rng.choice([
            "Bearer", "Bearer ", "bearer " + tokens["user"], "Bearer  " + tokens["user"],
            "Bearer " + tokens["user"] + " ", "Bearer " + tokens["user"][:-1],
            "Basic dXNlcjpwYXNz", "Bearer " + "A" * 8000, b"Bearer \xff\xfe\x00",
            "Bearer " + tokens["user"] + ", Bearer " + tokens["admin"], "Token abc",
            "Bearer ../../etc/passwd", "Bearer %00"])))
    if has_body and rng.random() < 0.85:
        headers.append(("Content-Type", rng.choice(
            ["application/json"] * 6 + ["text/plain", "application/json; charset=latin1",
                                        "multipart/form-data; boundary=x", "", "*/*",
                                        "application/" + "x" * 4000])))
    for _ in range(rng.choice([0, 0, 0, 1, 2, 30])):
        headers.append(rng.choice([
            ("X-Request-Id", rng.choice(["abc", "a" * 200, "bad id\t", "../x", "\u00e9"])),
            ("Accept", rng.choice(["*/*", "text/html", "application/xml", "x" * 2000])),
            ("Accept-Encoding", "gzip, br, zstd"), ("Connection", "keep-alive"),
            ("X-Forwarded-For", "1.2.3.4, 10.0.0.1"), ("Cookie", "a=" + "b" * 4000),
            ("X-Junk", bytes(rng.randrange(32, 256) for _ in range(50))),
            ("Origin", "http://evil.example"), ("Range", "bytes=0-1,5-"),
            ("Expect", "100-continue")]))
    if rng.random() < 0.02:
        headers.append(("Authorization", "Bearer " + tokens["admin"]))  # a second one
    return headers


def junk_path(rng, path):
    op = rng.randrange(8)
    if op == 0:
        return path + "/"
    if op == 1:
        return path.replace("/", "//", 1)
    if op == 2:
        return path + "/" + rng.choice(["..", "%2e%2e", ".", "x", "%00", "%ff"])
    if op == 3:
        return "".join("%%%02X" % ord(c) if c.isalnum() and rng.random() < 0.3 else c
                       for c in path)
    if op == 4:
        return path.upper()
    if op == 5:
        return path + "/" + "a" * rng.choice([100, 8000])
    if op == 6:
        return "/" + "".join(rng.choices(string.printable[:94], k=rng.randrange(1, 40)))
    return "http://127.0.0.1" + path  # absolute form


def query_string(rng, names):
    if not names or rng.random() < 0.5:
        return ""
    pairs = []
    for _ in range(rng.randint(1, 4)):
        name = rng.choice(names + ["x", "limit", "cursor"])
        value = rng.choice(["1", "0", "-1", "1000000", "abc", "", "%FF", "true", "false",
                            "9" * 30, "a" * 1000, "%00", "1&limit=2", "null", "MQ", "eyJ9"])
        pairs.append(f"{name}={value}")
    return "?" + "&".join(pairs)


def describe(data, limit=600):
    text = repr(data[:limit])
    return text + (f"... ({len(data)} bytes)" if len(data) > limit else "")


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def target(fetchd_factory_module):
    server = fetchd_factory_module(env=SERVER_ENV)
    # User id 1, which junk ids such as "00001" may reach: not one the test needs.
    register_and_login(server)
    user = register_and_login(server)
    victim = register_and_login(server)
    admin = add_admin(server, username="property_admin")
    own = [create_task_for(user) for _ in range(3)]
    theirs = [create_task_for(victim) for _ in range(2)]
    spec = server.get("/openapi.json").json()
    return {"server": server, "user": user, "victim": victim, "admin": admin, "own": own,
            "theirs": theirs, "spec": spec}


@pytest.fixture(scope="module")
def fetchd_factory_module(tmp_path_factory):
    factory = FetchdFactory(tmp_path_factory.mktemp("property"))
    yield factory
    factory.cleanup()


def create_task_for(account):
    # Far in the future, so that the engine never fetches anything during the test.
    body = dict(SEED_TASK, start_time="2090-01-01T00:00:00Z", end_time="2091-01-01T00:00:00Z")
    r = account.server.post("/tasks", token=account.token, json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def valid_bodies(target):
    task = dict(SEED_TASK, start_time="2090-01-01T00:00:00Z", end_time="2091-01-01T00:00:00Z",
                parameters={"eventfile": "amazingexpo2020.json"})
    return {
        ("POST", "/tasks"): task,
        ("PATCH", "/tasks/{task_id}"): {"name": "renamed", "task_interval": 30},
        # Existing names: a valid body then costs one hash and a 409, not a new account.
        ("POST", "/register"): {"username": target["victim"].username,
                                "password": "correct horse battery"},
        ("POST", "/login"): {"username": target["victim"].username, "password": "wrong password"},
        ("POST", "/password"): {"current_password": "wrong password",
                                "new_password": "another horse battery"},
        ("PATCH", "/users/{user_id}"): {"role": "user"},
    }


# ---------------------------------------------------------------------------------------------
# Tests


def test_random_requests_never_get_a_5xx(target):
    server = target["server"]
    rng = random.Random(SEED)
    print(f"\nproperty test seed: {SEED} (FETCHD_PROPERTY_SEED={SEED} reproduces this run)")
    routes = Routes(target["spec"], valid_bodies(target))
    tokens = {"user": target["user"].token, "admin": target["admin"].token,
              "victim": target["victim"].token}
    # Path parameters: ids that exist (the caller's, another user's), and junk. The admin's and
    # the caller's own user ids are left out: deleting or disabling them would end the test.
    ids = {
        "task_id": [str(i) for i in target["own"] + target["theirs"]],
        "job_id": ["1", "2"],
        "user_id": [str(target["victim"].id), str(target["admin"].id)],
    }
    client = RawClient(server.host, server.port)
    failures, statuses = [], {}
    baseline = None
    started = time.monotonic()
    sent = 0
    while sent < REQUESTS and time.monotonic() - started < SECONDS:
        method, pattern, query_names, valid = routes.pick(rng)
        if rng.random() < 0.1:
            method = rng.choice(HTTP_METHODS + ["TRACE", "FOO", "get", "CONNECT"])

        def fill(match):
            name = match.group(1)
            pool = ids.get(name, ["1"])
            return rng.choice(pool) if rng.random() < 0.6 else rng.choice(JUNK_IDS)

        path = re.sub(r"\{([^}]+)\}", fill, pattern)
        if rng.random() < 0.1:
            path = junk_path(rng, path)
        path += query_string(rng, query_names)
        has_body = valid is not None or rng.random() < 0.1
        body = body_bytes(rng, valid) if has_body else None
        headers = header_set(rng, tokens, has_body, logout=pattern == "/logout")
        data = http_request(method, path, headers, body)
        sent += 1
        try:
            answer = client.send(data, head_request=(method == "HEAD"))
        except (ServerGone, OSError) as e:
            client.close()
            if not server.running:
                pytest.fail(f"the server died on request #{sent} (seed {SEED}): "
                            f"{describe(data)}\nstderr tail:\n{server.tail()}")
            failures.append(f"#{sent}: no answer ({e}): {describe(data)}")
            continue
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        if answer.status == 201 and pattern == "/tasks":
            created = json.loads(answer.body)
            ids["task_id"].append(str(created["id"]))
        if answer.status >= 500:
            failures.append(f"#{sent}: {answer.status} {answer.body[:300]!r}\n"
                            f"    request: {describe(data)}")
        elif answer.status >= 400 and method != "HEAD":
            problem = answer.headers.get("content-type", "").startswith("application/problem+json")
            if not problem:
                failures.append(f"#{sent}: {answer.status} without problem+json "
                                f"({answer.headers.get('content-type')!r}): {describe(data)}")
        if sent == WARM_UP:
            baseline = rss_kib(server.proc.pid)
        if len(failures) >= 20:
            break
    client.close()
    elapsed = time.monotonic() - started
    print(f"sent {sent} requests in {elapsed:.1f} s; statuses: {dict(sorted(statuses.items()))}")

    assert server.running, f"the server died; stderr tail:\n{server.tail()}"
    errors = [line for line in server.stderr_text().splitlines()
              if re.search(r" (error|critical|warn(ing)?) ", line)]
    assert not failures, (f"{len(failures)} bad answer(s) (seed {SEED}):\n"
                          + "\n".join(failures) + "\nthe server's errors and warnings:\n"
                          + "\n".join(errors[-20:]))
    assert sent >= MIN_REQUESTS, f"only {sent} requests in {SECONDS} s"
    assert server.get("/healthz").status_code == 200
    if baseline is not None:
        final = rss_kib(server.proc.pid)
        print(f"RSS after warm-up {baseline // 1024} MiB, at the end {final // 1024} MiB")
        assert final * 1024 < 2 * baseline * 1024 + 50 * MiB, \
            f"RSS grew from {baseline} KiB after warm-up to {final} KiB"
    # After all that, a graceful stop with exit status 0 (and no leak report).
    server.stop()


# Malformed HTTP on fresh connections: each must get a 4xx or be closed, never a 5xx or a hang.
MALFORMED = {
    "garbage": b"GARBAGE\r\n\r\n",
    "no-target": b"GET\r\n\r\n",
    "bad-version": b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
    "binary": bytes(range(256)) * 4,
    "nul-in-line": b"GET /he\x00althz HTTP/1.1\r\nHost: x\r\n\r\n",
    "nul-escape": b"GET /he%00althz HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-escape": b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    "huge-header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 40000 + b"\r\n\r\n",
    "huge-url": b"GET /" + b"a" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "many-headers": b"GET /healthz HTTP/1.1\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n",
    "header-no-colon": b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n",
    "header-space-name": b"GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n",
    "obs-fold": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
    "leading-fold": b"GET /healthz HTTP/1.1\r\n Host: x\r\n\r\n",
    "bare-lf": b"GET /healthz HTTP/1.1\nHost: x\n\n",
    "bare-cr": b"GET /healthz HTTP/1.1\rHost: x\r\r",
    "two-lengths": (b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                    b"Content-Length: 6\r\n\r\nhello!"),
    "length-and-chunked": (b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                           b"GET /healthz HTTP/1.1\r\n\r\n"),
    "negative-length": b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
    "huge-length": (b"POST /tasks HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 99999999999999999999\r\n\r\n"),
    "length-over-limit": b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n{",
    "huge-chunk": (b"POST /tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"fffffffffffffffff\r\nab\r\n0\r\n\r\n"),
    "bad-chunk": (b"POST /tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"zz\r\nab\r\n0\r\n\r\n"),
    "chunks-over-limit": (b"POST /tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          + (b"10000\r\n" + b"a" * 0x10000 + b"\r\n") * 20 + b"0\r\n\r\n"),
    "unknown-coding": (b"POST /tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
                       b"abc"),
    "bad-utf8-header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: \xff\xfe\xc3\x28\r\n\r\n",
    "absolute-other-host": b"GET http://evil.example/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "connect": b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
    "asterisk": b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    "tabs": b"GET\t/healthz\tHTTP/1.1\r\nHost: x\r\n\r\n",
    "many-spaces": b"GET  /healthz  HTTP/1.1\r\nHost: x\r\n\r\n",
    "lowercase-method": b"get /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "http09": b"GET /healthz\r\n",
    "pipelined": b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 200,
    "expect-no-body": (b"POST /tasks HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                       b"Content-Length: 10\r\n\r\n"),
    "upgrade": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                b"Upgrade: websocket\r\n\r\n"),
}


def exchange(host, port, data, wait):
    """Sends `data`, half-closes, and collects what comes back until the server closes or
    `wait` seconds pass. Returns (bytes, closed)."""
    with socket.create_connection((host, port), timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before reading it all
        received = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                return received, True
            if not chunk:
                return received, True
            received += chunk
        return received, False


@pytest.fixture(scope="module")
def quick_server(fetchd_factory_module):
    """Short deadlines, so that slow clients are dealt with within the test's patience."""
    return fetchd_factory_module(
        env=SERVER_ENV,
        args=["--http-header-timeout", "1s", "--http-body-timeout", "1s",
              "--http-idle-timeout", "2s"])


def healthy(server):
    data, _ = exchange(server.host, server.port,
                       b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5)
    return data.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_http_gets_4xx_or_close(quick_server, name):
    server = quick_server
    data, closed = exchange(server.host, server.port, MALFORMED[name], wait=8)
    statuses = [int(s) for s in re.findall(rb"(?:^|\r\n)HTTP/1\.1 (\d{3}) ", data)]
    assert closed, f"{name}: the connection is still open 8 s later; got {data[:200]!r}"
    assert all(s < 500 for s in statuses), f"{name}: {statuses}: {data[:300]!r}"
    if data:
        assert data.startswith(b"HTTP/1.1 "), f"{name}: not HTTP: {data[:100]!r}"
    assert server.running, f"{name}: the server died; stderr:\n{server.tail()}"
    assert healthy(server), f"{name}: /healthz does not answer afterwards"


def test_slow_clients_are_cut_off_and_do_not_block_others(quick_server):
    server = quick_server
    partial = {
        "silent": b"",
        "slow-header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ",
        "slow-body": (b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{\"name\": "),
    }
    socks = {}
    for name, data in partial.items():
        for i in range(5):
            s = socket.create_connection((server.host, server.port), timeout=5)
            s.sendall(data)
            socks[f"{name}-{i}"] = s
    try:
        # A trickle of bytes does not extend the deadline: one byte every 0.2 s.
        started = time.monotonic()
        closed_at = {}
        while len(closed_at) < len(socks) and time.monotonic() - started < 8:
            for name, s in socks.items():
                if name in closed_at:
                    continue
                try:
                    if not name.startswith("silent"):
                        s.send(b"a")
                    s.settimeout(0.01)
                    if s.recv(65536) == b"":
                        closed_at[name] = time.monotonic() - started
                except socket.timeout:
                    pass
                except OSError:
                    closed_at[name] = time.monotonic() - started
            # Meanwhile the server answers others at once.
            t0 = time.monotonic()
            assert healthy(server), "/healthz does not answer while slow clients are connected"
            assert time.monotonic() - t0 < 3, "/healthz is slow while slow clients are connected"
            time.sleep(0.2)
        open_ones = sorted(set(socks) - set(closed_at))
        assert not open_ones, f"still open after 8 s (header/body timeout 1 s): {open_ones}"
        assert max(closed_at.values()) < 6, f"closed late: {closed_at}"
    finally:
        for s in socks.values():
            s.close()
    assert healthy(server)
    assert server.running
