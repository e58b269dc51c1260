# The HTTP server as a whole: health, routing (404/405), request ids, problem+json, body limit
# (413), keep-alive, graceful stop on signals, and data surviving a restart or a crash.
import http.client
import json
import signal
import time

import pytest
import requests

from conftest import (DEFAULT_PASSWORD, SEED_TASK, Fetchd, assert_problem, create_task, login,
                      register_and_login, unique_name, user_view)


def test_healthz(server):
    r = server.get("/healthz")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"status": "ok"}


def test_readyz(server):
    r = server.get("/readyz")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"status": "ready"}


@pytest.mark.parametrize("method, path", [
    ("GET", "/nope"), ("POST", "/nope"), ("GET", "/tasksx"), ("GET", "/tasks/1/nope"),
    ("GET", "/healthz/extra"), ("GET", "/"),
])
def test_unknown_route_is_404(server, method, path):
    assert_problem(server.request(method, path), 404)


@pytest.mark.parametrize("method, path, allowed", [
    ("DELETE", "/healthz", {"GET"}),
    ("POST", "/readyz", {"GET"}),
    ("POST", "/openapi.json", {"GET"}),
    ("GET", "/login", {"POST"}),
    ("GET", "/register", {"POST"}),
    ("GET", "/logout", {"POST"}),
    ("DELETE", "/me", {"GET"}),
    ("PUT", "/tasks", {"GET", "POST"}),
    ("PUT", "/tasks/{id}", {"GET", "PATCH", "DELETE"}),
    ("POST", "/tasks/{id}/status", {"GET"}),
    ("GET", "/tasks/{id}/reset-attempt", {"POST"}),
])
def test_wrong_method_is_405_with_allow(server, alice, method, path, allowed):
    tid = create_task(alice)["id"] if "{id}" in path else None
    r = server.request(method, path.format(id=tid), token=alice.token)
    assert_problem(r, 405)
    allow = {m.strip().upper() for m in r.headers.get("Allow", "").split(",") if m.strip()}
    assert allowed <= allow, f"Allow: {r.headers.get('Allow')!r}"
    assert method not in allow


def test_every_response_has_a_distinct_request_id(server, alice):
    task = create_task(alice)
    responses = [
        server.get("/healthz"),
        server.get("/readyz"),
        server.get("/nope"),
        server.delete("/healthz"),
        server.get("/me"),
        server.get("/me", token=alice.token),
        server.post("/tasks", token=alice.token, json={}),
        server.post("/tasks", token=alice.token, data=b"{",
                    headers={"Content-Type": "application/json"}),
        server.get(f"/tasks/{task['id']}", token=alice.token),
        server.get("/openapi.json"),
        server.post("/login", json={"username": unique_name(), "password": DEFAULT_PASSWORD}),
    ]
    ids = []
    for r in responses:
        rid = r.headers.get("X-Request-Id")
        assert rid, f"{r.request.method} {r.request.path_url} -> {r.status_code}: no X-Request-Id"
        ids.append(rid)
    assert len(set(ids)) == len(ids), ids


def test_errors_are_problem_json_with_request_id(server, alice):
    for r, status in [
        (server.get("/nope"), 404),
        (server.get("/me"), 401),
        (server.request("PUT", "/tasks", token=alice.token), 405),
        (server.post("/tasks", token=alice.token, json={}), 422),
        (server.post("/tasks", token=alice.token, data=b"[",
                     headers={"Content-Type": "application/json"}), 400),
    ]:
        assert_problem(r, status)  # checks content type, fields and request_id == header


def test_access_log_line_has_the_request_id(server):
    r = server.get("/readyz?probe=1")
    rid = r.headers["X-Request-Id"]
    deadline = time.monotonic() + 3
    while True:
        lines = [line for line in server.stderr_text().splitlines() if rid in line]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert lines, f"request id {rid} not in the log"
    assert "GET" in lines[-1] and "/readyz" in lines[-1] and "200" in lines[-1], lines


def test_keep_alive(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        assert first.status == 200
        assert (first.getheader("Connection") or "").lower() != "close"
        assert sock is not None, "the server closed a keep-alive connection"
        for _ in range(3):
            conn.request("GET", "/readyz")
            r = conn.getresponse()
            r.read()
            assert r.status == 200
            assert conn.sock is sock, "a new connection was needed"
    finally:
        conn.close()


# --- body limit ------------------------------------------------------------------------------

LIMIT = 2048


def body_of_size(size, base=SEED_TASK):
    """A valid task body of exactly `size` bytes (padded with an ignored unknown field)."""
    pad = dict(base, padding="")
    empty = len(json.dumps(pad).encode())
    pad["padding"] = "x" * (size - empty)
    data = json.dumps(pad).encode()
    assert len(data) == size
    return data


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    srv = Fetchd(tmp_path_factory.mktemp("small"), name="small",
                 args=["--http-max-body-bytes", str(LIMIT)])
    try:
        srv.start()
        yield srv
        srv.stop()
    finally:
        srv.kill()


def test_body_at_the_limit_is_accepted(small_server):
    acct = register_and_login(small_server)
    r = small_server.post("/tasks", token=acct.token, data=body_of_size(LIMIT),
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    r = small_server.post("/tasks", token=acct.token, data=body_of_size(LIMIT - 1),
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text


def test_body_over_the_limit_is_413(small_server):
    acct = register_and_login(small_server)
    r = small_server.post("/tasks", token=acct.token, data=body_of_size(LIMIT + 1),
                          headers={"Content-Type": "application/json"})
    assert_problem(r, 413)
    listed = small_server.get("/tasks", token=acct.token).json()["items"]
    assert listed == []  # the handler never ran


def test_413_comes_before_the_handler(small_server):
    # No token and a register body: the limit is the server's, not the handlers'.
    r = small_server.post("/tasks", data=body_of_size(LIMIT + 1),
                          headers={"Content-Type": "application/json"})
    assert_problem(r, 413)
    big = json.dumps({"username": unique_name(), "password": "p" * (LIMIT + 10)}).encode()
    r = small_server.post("/register", data=big, headers={"Content-Type": "application/json"})
    assert_problem(r, 413)


def test_server_still_works_after_413(small_server):
    r = small_server.post("/register", data=b"{" + b" " * (LIMIT * 4) + b"}",
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert small_server.get("/healthz").status_code == 200


# --- signals, restart, crash -----------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_gracefully_with_exit_0(fetchd_factory, sig):
    srv = fetchd_factory()
    assert srv.get("/healthz").status_code == 200
    started = time.monotonic()
    srv.stop(sig)  # asserts exit code 0
    assert time.monotonic() - started < 10
    with pytest.raises(requests.ConnectionError):
        srv.get("/healthz", timeout=2)


def test_sigterm_finishes_the_in_flight_request(fetchd_factory):
    srv = fetchd_factory()
    acct = register_and_login(srv)
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=15)
    try:
        conn.request("GET", "/healthz")  # the connection is established and accepted
        conn.getresponse().read()
        body = json.dumps({"username": acct.username, "password": acct.password})
        conn.request("POST", "/login", body=body, headers={"Content-Type": "application/json"})
        time.sleep(0.02)  # the login is hashing (Argon2id) when the signal arrives
        srv.proc.send_signal(signal.SIGTERM)
        r = conn.getresponse()
        assert r.status == 200, r.read()
        assert json.loads(r.read())["token_type"] == "Bearer"
    finally:
        conn.close()
    srv.stop()


def test_restart_keeps_users_tasks_and_tokens(fetchd_factory):
    srv = fetchd_factory()
    acct = register_and_login(srv)
    task = create_task(acct)
    old_port = srv.port
    srv.restart()  # SIGTERM (exit 0 asserted), then start on the same database
    assert srv.port != 0 and old_port
    me = srv.get("/me", token=acct.token)  # the token survived
    assert me.status_code == 200, me.text
    assert me.json() == acct.user
    got = srv.get(f"/tasks/{task['id']}", token=acct.token)
    assert got.status_code == 200 and user_view(got.json()) == user_view(task)
    login(srv, acct.username)  # the password hash survived
    r = srv.post("/register", json={"username": acct.username, "password": DEFAULT_PASSWORD})
    assert_problem(r, 409)


def test_crash_keeps_committed_data(fetchd_factory):
    srv = fetchd_factory()
    acct = register_and_login(srv)
    task = create_task(acct)
    srv.kill()  # SIGKILL: no clean shutdown, the WAL must still hold the commits
    srv.start()
    got = srv.get(f"/tasks/{task['id']}", token=acct.token)
    assert got.status_code == 200, got.text
    assert user_view(got.json()) == user_view(task)
