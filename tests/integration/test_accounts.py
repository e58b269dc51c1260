# Accounts over HTTP: /register, /login, /logout, /me, token expiry and closed registration.
import time

import pytest

from conftest import (DEFAULT_PASSWORD, RFC3339_MS_UTC, assert_problem,
                      error_fields, login, register, register_and_login, run_cli, unique_name)

USER_KEYS = {"id", "username", "role", "disabled", "created_at"}


def test_register_returns_the_user(server):
    name = unique_name()
    r = server.post("/register", json={"username": name, "password": DEFAULT_PASSWORD})
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    user = r.json()
    assert set(user) == USER_KEYS, user
    assert isinstance(user["id"], int) and user["id"] > 0
    assert user["username"] == name
    assert user["role"] == "user"
    assert RFC3339_MS_UTC.match(user["created_at"]), user["created_at"]


def test_register_taken_name_is_409(server):
    name = unique_name()
    register(server, name)
    r = server.post("/register", json={"username": name, "password": "another password"})
    assert_problem(r, 409)


@pytest.mark.parametrize(
    "username, password, fields",
    [
        ("ab", DEFAULT_PASSWORD, {"username"}),  # 2 chars: one under the minimum
        ("u" * 65, DEFAULT_PASSWORD, {"username"}),  # one over the maximum
        ("bad name", DEFAULT_PASSWORD, {"username"}),
        ("bad/name", DEFAULT_PASSWORD, {"username"}),
        ("héllo", DEFAULT_PASSWORD, {"username"}),
        (None, "1234567", {"password"}),  # 7 bytes
        (None, "p" * 1025, {"password"}),
        ("x!", "short", {"username", "password"}),  # every bad field at once
    ],
)
def test_register_invalid_fields_are_422(server, username, password, fields):
    r = server.post("/register", json={"username": username or unique_name(), "password": password})
    body = assert_problem(r, 422, fields)
    assert error_fields(r) == fields, body


def test_register_missing_fields_are_422(server):
    r = server.post("/register", json={})
    assert_problem(r, 422, {"username", "password"})


@pytest.mark.parametrize(
    "username, password",
    [
        ("abc", DEFAULT_PASSWORD),  # 3 chars: the minimum
        (None, "12345678"),  # 8 bytes: the minimum
        (None, "p" * 1024),  # the maximum
    ],
)
def test_register_accepts_the_bounds(server, username, password):
    username = username or unique_name()
    r = server.post("/register", json={"username": username, "password": password})
    assert r.status_code == 201, r.text
    login(server, username, password)


def test_register_accepts_every_allowed_character_and_64_chars(server):
    name = ("Az09_.-" + unique_name())[:64].ljust(64, "x")
    assert len(name) == 64
    r = server.post("/register", json={"username": name, "password": DEFAULT_PASSWORD})
    assert r.status_code == 201, r.text
    assert r.json()["username"] == name


@pytest.mark.parametrize("body", [b'{"username": "x", ', b"[1, 2]", b'"text"', b"not json"])
def test_register_malformed_body_is_400(server, body):
    r = server.post("/register", data=body, headers={"Content-Type": "application/json"})
    assert_problem(r, 400)


def test_login_returns_a_bearer_token(server):
    acct = register_and_login(server)
    body = acct.login
    assert set(body) == {"access_token", "token_type", "expires_in"}, body
    assert body["token_type"] == "Bearer"
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 32
    assert body["expires_in"] == 24 * 3600  # auth.token_ttl default


def test_each_login_gets_a_new_token(server):
    acct = register_and_login(server)
    second = login(server, acct.username)
    assert second["access_token"] != acct.token
    for token in (acct.token, second["access_token"]):
        assert server.get("/me", token=token).status_code == 200


def test_login_failure_is_401_with_the_same_detail(server):
    acct = register_and_login(server)
    wrong_password = server.post("/login", json={"username": acct.username,
                                                 "password": "wrong password"})
    unknown_user = server.post("/login", json={"username": unique_name(),
                                               "password": DEFAULT_PASSWORD})
    a = assert_problem(wrong_password, 401)
    b = assert_problem(unknown_user, 401)
    assert a["detail"] == b["detail"] == "invalid username or password"


def test_login_malformed_json_is_400(server):
    r = server.post("/login", data=b"{", headers={"Content-Type": "application/json"})
    assert_problem(r, 400)


def test_me_returns_the_user(server):
    acct = register_and_login(server)
    r = server.get("/me", token=acct.token)
    assert r.status_code == 200, r.text
    assert r.json() == acct.user


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-real-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "bearer-without-space"},
    ],
    ids=["none", "empty", "unknown", "basic", "garbage"],
)
def test_me_without_a_valid_token_is_401(server, headers):
    r = server.get("/me", headers=headers)
    assert_problem(r, 401)
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_logout_revokes_only_the_presented_token(server):
    acct = register_and_login(server)
    other = login(server, acct.username)["access_token"]
    r = server.post("/logout", token=acct.token)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_problem(server.get("/me", token=acct.token), 401)
    assert_problem(server.post("/logout", token=acct.token), 401)
    assert server.get("/me", token=other).status_code == 200


def test_logout_without_token_is_401(server):
    r = server.post("/logout")
    assert_problem(r, 401)
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")


def test_expired_token_is_401(fetchd_factory):
    ttl = 2
    srv = fetchd_factory(env={"FETCHD_AUTH_TOKEN_TTL": "2s"})
    acct = register_and_login(srv)
    issued = time.monotonic()
    assert acct.login["expires_in"] == ttl
    assert srv.get("/me", token=acct.token).status_code == 200  # still valid
    time.sleep(max(0.0, issued + ttl + 1.2 - time.monotonic()))
    r = srv.get("/me", token=acct.token)
    assert_problem(r, 401)
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
    fresh = login(srv, acct.username)  # the account itself is fine
    assert srv.get("/me", token=fresh["access_token"]).status_code == 200


def test_closed_registration_is_403_but_cli_users_can_log_in(fetchd_factory):
    srv = fetchd_factory(args=["--auth-open-registration=false"])
    r = srv.post("/register", json={"username": unique_name(), "password": DEFAULT_PASSWORD})
    assert_problem(r, 403)
    name = unique_name()
    added = run_cli("user", "add", name, "--db", srv.db_url, input=DEFAULT_PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    body = login(srv, name)
    me = srv.get("/me", token=body["access_token"])
    assert me.status_code == 200 and me.json()["role"] == "user", me.text
