#!/usr/bin/python3
"""Writes the hand-made seeds of the fuzz corpora (fuzz/corpus/<target>/seed-*).

The seeds are the inputs a person would try first: the API's example task and its variants,
the sample feeds' names, valid and broken timestamps, the example configuration and pieces of
it, and one HTTP request per route. libFuzzer grows the corpora from there (`make fuzz` merges
what it finds, under hash names). Run from anywhere; rerunning rewrites the same files.
"""
import json
import re
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent

# The seed's example body (docs/api.md), as the original client sends it.
SEED_TASK = json.loads((ROOT / "tests" / "integration" / "seed_task.json").read_text())
FEEDS = ["amazingexpo2020.json", "salesmeeting2020.json", "ceosummersummit2020.json"]

# Fixed bearer tokens the HTTP target's accounts hold (fuzz/targets/http_server.cpp).
USER_TOKEN = "fuzzUserToken-0123456789abcdefghijklmnopqrs"
ADMIN_TOKEN = "fuzzAdminToken-0123456789abcdefghijklmnopqr"


def task(**overrides):
    body = dict(SEED_TASK)
    body.update(overrides)
    return body


def task_bodies():
    feed_params = [{"eventfile": f} for f in FEEDS]
    return {
        "seed": task(),
        "object-params": task(parameters={"eventfile": FEEDS[0], "token": "t", "apiuser": "u"}),
        "string-params": task(parameters=json.dumps({"eventfile": FEEDS[1]})),
        "full-params": task(url="https://api.example.com/{version}/events?x=1#top", parameters={
            "method": "POST", "headers": {"Accept": "application/json", "X-Key": "k\tv"},
            "query": {"page": 2, "all": True, "q": "a b&c"}, "body": {"ids": [1, 2.5, None]},
            "path": "/feeds/%20x/", "version": "v2"}),
        "feed-2": task(name="salesmeeting", parameters=feed_params[1]),
        "feed-3": task(name="ceosummersummit", parameters=feed_params[2], task_interval=60,
                       max_execution_time=30, max_attempt=1000),
        "offset-times": task(start_time="2023-01-04T22:41:38+01:00",
                             end_time="2033-01-04 21:41:38.9301234z"),
        "patch-name": {"name": "renamed"},
        "patch-interval": {"task_interval": 3600, "max_attempt": 5},
        "patch-url": {"url": "http://[::1]:8080/x", "parameters": {"method": "delete"}},
        "missing": {"name": "x"},
        "wrong-types": task(name=7, url=None, parameters=[1], start_time=0, end_time=True,
                            task_interval="2", max_execution_time=-1, max_attempt=1e300),
        "huge-numbers": task(task_interval=18446744073709551615, max_attempt=-9223372036854775808,
                             max_execution_time=9007199254740993.0),
        "bad-times": task(start_time="2023-02-30T00:00:00Z", end_time="2023-01-04T21:41:38"),
        "reversed-times": task(start_time="2033-01-04T21:41:38.930Z",
                               end_time="2023-01-04T21:41:38.930Z"),
        "bad-url": task(url="ftp://example.com/", parameters={"headers": {"a b": "c\r\nd"}}),
        "private-url": task(url="http://169.254.169.254/latest/meta-data/"),
        "unicode-name": task(name="\u00e9v\u00e9nement \U0001F389", url="http://b\u00fccher.de/"),
        "blank-name": task(name="\u2003\u00a0 "),
        "unknown-fields": task(extra={"a": [1, {"b": None}]}, id=5, owner_id=1),
    }


def write(target, name, data):
    directory = FUZZ / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (directory / f"seed-{name}").write_bytes(data)


def seed_task_json():
    for name, body in task_bodies().items():
        write("task_json", name, json.dumps(body))
    write("task_json", "truncated", json.dumps(task())[:57])
    write("task_json", "not-object", "[1, 2, 3]")
    write("task_json", "deep", "{\"parameters\": " + "[" * 70 + "]" * 70 + "}")
    write("task_json", "invalid-utf8", b'{"name": "\xff\xfe", "url": "http://a/"}')


def seed_request_builder():
    base = "https://example.com/php-architecture/"
    cases = {
        "empty": (base, "{}"),
        "string": (base, json.dumps(json.dumps({"eventfile": FEEDS[0]}))),
        "null": (base, "null"),
        "not-json": (base, "{\"eventfile\": "),
        "full": ("https://api.example.com/{version}/events?page=1&x=y#top", json.dumps({
            "method": "post", "headers": {"Accept": "application/json"},
            "query": {"page": 2, "all": True, "q": "a b&c=d"}, "body": {"ids": [1, 2]},
            "path": "/feeds/%20x/", "version": "v2"})),
        "placeholder-missing": ("http://example.com/{id}/{x.y}", json.dumps({"id": 3})),
        "braces": ("http://example.com/{}/{a b}/{", "{\"path\": \"a?b#c\"}"),
        "string-body": ("http://example.com", json.dumps({"method": "PUT", "body": "raw"})),
        "bad-method": ("http://example.com", json.dumps({"method": "TRACE"})),
        "bad-header": ("http://example.com", json.dumps({"headers": {"X": "a\r\nInjected: 1"}})),
        "bad-scheme": ("file:///etc/passwd", "{}"),
        "query-types": ("http://example.com/?a=1&b=2", json.dumps({"query": {"a": None}})),
        "userinfo": ("http://user:pass@example.com:8080", json.dumps({"eventfile": "../x"})),
    }
    for feed in FEEDS:
        cases["feed-" + feed] = (base, json.dumps({"eventfile": feed}))
    for name, (url, params) in cases.items():
        write("request_builder", name, url + "\n" + params)


def seed_rfc3339():
    stamps = [
        "2023-01-04T21:41:38.930Z", "2023-01-04T22:41:38+01:00", "2023-01-04t21:41:38z",
        "2023-01-04 21:41:38.9301234-05:30", "1969-12-31T23:59:59.999Z", "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999Z", "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z",
        "2023-01-04T21:41:60Z", "2023-01-04T24:00:00Z", "2023-01-04T21:41:38", "2023-1-4T1:2:3Z",
        "2023-01-04T21:41:38.Z", "2023-01-04T21:41:38+24:00", "", "Z",
    ]
    for i, stamp in enumerate(stamps):
        write("rfc3339", f"{i:02d}", stamp)


def seed_config_loader():
    example = (ROOT / "fetchd.example.toml").read_text()
    write("config_loader", "example", example)
    # The same with every option set (uncommented), whole and one section at a time, so that
    # the values themselves are exercised.
    active = [re.sub(r"^# (?=\[\w+\]$|\w+ = )", "", line) for line in example.splitlines()]
    write("config_loader", "uncommented", "\n".join(active) + "\n")
    section, lines = "top", []
    for line in active + ["[end]"]:
        if line.startswith("["):
            write("config_loader", "section-" + section, "\n".join(lines) + "\n")
            section, lines = line.strip("[]"), []
        lines.append(line)
    others = {
        "empty": "",
        "unknown": "listne = \"127.0.0.1:8000\"\n",
        "types": "[auth]\ntoken_ttl = true\n[limits]\nmax_parameters_bytes = \"12 parsecs\"\n",
        "syntax": "[auth\ntoken_ttl = \n",
        "dates": "x = 1979-05-27T07:32:00Z\n[fetch]\ntimeout = [1, 2]\n",
        "inline": "fetch = { timeout = \"30s\", allow_private = false }\n",
        "quoted-key": "\"a.b\" = 1\n[\"auth\"]\n'token_ttl' = \"1h\"\n",
    }
    for name, text in others.items():
        write("config_loader", name, text)


def http(method, path, body=None, token=USER_TOKEN, headers=()):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines += list(headers)
    data = b""
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def seed_http_server():
    requests = {
        "healthz": http("GET", "/healthz", token=None),
        "readyz": http("GET", "/readyz", token=None),
        "metrics": http("GET", "/metrics", token=None),
        "openapi": http("HEAD", "/openapi.json", token=None),
        "swagger": http("GET", "/swagger-ui", token=None),
        "demo": http("GET", "/demo/" + FEEDS[0], token=None),
        "register": http("POST", "/register", {"username": "alice", "password": "x" * 12}, None),
        "login": http("POST", "/login", {"username": "alice", "password": "x" * 12}, None),
        "logout": http("POST", "/logout"),
        "me": http("GET", "/me"),
        "password": http("POST", "/password", {"current_password": "a", "new_password": "b"}),
        "users": http("GET", "/users?limit=2", token=ADMIN_TOKEN),
        "users-forbidden": http("GET", "/users"),
        "user-patch": http("PATCH", "/users/1", {"role": "admin"}, ADMIN_TOKEN),
        "user-delete": http("DELETE", "/users/3", token=ADMIN_TOKEN),
        "tasks-create": http("POST", "/tasks", task()),
        "tasks-create-params": http("POST", "/tasks", task_bodies()["full-params"]),
        "tasks-list": http("GET", "/tasks?limit=1&cursor=abc"),
        "tasks-all": http("GET", "/tasks?all=true", token=ADMIN_TOKEN),
        "task-get": http("GET", "/tasks/1"),
        "task-patch": http("PATCH", "/tasks/1", {"name": "renamed", "task_interval": 5}),
        "task-delete": http("DELETE", "/tasks/2"),
        "task-status": http("GET", "/tasks/1/status"),
        "task-reset": http("POST", "/tasks/1/reset-attempt"),
        "task-run": http("POST", "/tasks/1/run"),
        "task-pause": http("POST", "/tasks/1/pause"),
        "task-resume": http("POST", "/tasks/1/resume"),
        "task-jobs": http("GET", "/tasks/1/jobs?limit=5&status=failed"),
        "task-data": http("GET", "/tasks/1/data/latest"),
        "job": http("GET", "/jobs/1"),
        "no-token": http("GET", "/tasks", token=None),
        "bad-auth": http("GET", "/me", token=None, headers=["Authorization: Basic Zm9vOmJhcg=="]),
        "method-not-allowed": http("PUT", "/tasks/1", {}),
        "ids": http("GET", "/tasks/-1") + http("GET", "/tasks/99999999999999999999999")
        + http("GET", "/tasks/%41%zz"),
        "pipelined": http("GET", "/healthz", token=None) + http("GET", "/me"),
        "absolute-form": b"GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "http10": b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "chunked": (b"POST /tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + USER_TOKEN.encode()
                    + b"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"na\r\n0\r\n\r\n"),
        "expect": (b"POST /tasks HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                   b"Content-Length: 2\r\n\r\n{}"),
        "too-long-body": b"POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n{",
        "bad-request-line": b"GET\r\n\r\n",
        "bad-header": b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        "request-id": http("GET", "/healthz", token=None, headers=["X-Request-Id: abc.DEF_1-2"]),
        "invalid-utf8": http("POST", "/tasks", b'{"name": "\xc3\x28", "url": 1}'),
    }
    for name, data in requests.items():
        write("http_server", name, data)


if __name__ == "__main__":
    seed_task_json()
    seed_request_builder()
    seed_rfc3339()
    seed_config_loader()
    seed_http_server()
