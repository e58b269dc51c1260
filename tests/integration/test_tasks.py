# Tasks over HTTP: create/read/update/delete, validation (422/400), isolation between users
# (404), admins, pagination, status and reset-attempt.
import json
from urllib.parse import urlparse

import pytest

from conftest import (RFC3339_MS_UTC, SEED_TASK, add_admin, assert_problem, create_task,
                      error_fields, register_and_login, user_view)

TASK_KEYS = {
    "id", "owner_id", "name", "url", "parameters", "start_time", "end_time", "task_interval",
    "max_execution_time", "max_attempt", "paused", "suspended", "consecutive_failures",
    "next_run_at", "last_execution_status", "last_execute_time", "execution_time",
    "last_execution_error", "last_job_id", "created_at", "updated_at",
}
STATUS_KEYS = {
    "id", "execution_time", "last_execute_time", "last_execution_status",
    "last_execution_error", "last_execution_data", "consecutive_failures", "suspended",
    "next_run_at",
}


DROP = object()  # body_with(field=DROP) removes the field


def body_with(**overrides):
    body = dict(SEED_TASK)
    for key, value in overrides.items():
        if value is DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def assert_next_run_at(value):
    # No runs are scheduled in part 1; part 2's scheduler may fill it in.
    assert value is None or RFC3339_MS_UTC.match(value), value


@pytest.fixture(scope="module")
def owner(server):
    return register_and_login(server)


@pytest.fixture(scope="module")
def stranger(server):
    return register_and_login(server)


@pytest.fixture(scope="module")
def admin(server):
    return add_admin(server)


@pytest.fixture
def task(owner):
    return create_task(owner)


# --- create / read ---------------------------------------------------------------------------


def test_create_the_seed_example_exactly(server, owner):
    r = server.post("/tasks", token=owner.token, json=SEED_TASK)
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    t = r.json()
    assert set(t) == TASK_KEYS, sorted(set(t) ^ TASK_KEYS)
    assert urlparse(r.headers["Location"]).path == f"/tasks/{t['id']}"
    assert isinstance(t["id"], int) and t["id"] > 0
    assert t["owner_id"] == owner.id
    assert t["name"] == "amazingexpo"
    assert t["url"] == "https://example.com/php-architecture/"
    assert t["parameters"] == {}  # sent as the string "{}", returned as an object
    assert t["start_time"] == "2023-01-04T21:41:38.930Z"
    assert t["end_time"] == "2033-01-04T21:41:38.930Z"
    assert (t["task_interval"], t["max_execution_time"], t["max_attempt"]) == (2, 0, 3)
    assert t["paused"] is False and t["suspended"] is False
    assert t["consecutive_failures"] == 0
    assert t["last_execution_status"] == "pending"
    for key in ("last_execute_time", "execution_time", "last_execution_error", "last_job_id"):
        assert t[key] is None, (key, t[key])
    assert_next_run_at(t["next_run_at"])
    assert RFC3339_MS_UTC.match(t["created_at"]) and RFC3339_MS_UTC.match(t["updated_at"]), t

    got = server.get(urlparse(r.headers["Location"]).path, token=owner.token)
    assert got.status_code == 200, got.text
    assert user_view(got.json()) == user_view(t)


def test_create_applies_defaults(server, owner):
    body = body_with(parameters=DROP, max_execution_time=DROP, max_attempt=DROP)
    r = server.post("/tasks", token=owner.token, json=body)
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["parameters"], t["max_execution_time"], t["max_attempt"]) == ({}, 0, 3)


def test_parameters_object_and_string_are_both_stored_as_object(server, owner):
    params = {"method": "POST", "headers": {"X-A": "1"}, "query": {"a": "x", "b": 2, "c": True},
              "path": "feed.json", "eventfile": "amazingexpo2020.json", "token": "secret"}
    for sent in (params, json.dumps(params)):
        r = server.post("/tasks", token=owner.token, json=body_with(parameters=sent))
        assert r.status_code == 201, r.text
        assert r.json()["parameters"] == params


def test_times_are_normalised_to_utc_milliseconds(server, owner):
    r = server.post("/tasks", token=owner.token, json=body_with(
        start_time="2023-01-04T22:41:38.930+01:00", end_time="2033-01-04T21:41:38Z"))
    assert r.status_code == 201, r.text
    assert r.json()["start_time"] == "2023-01-04T21:41:38.930Z"
    assert r.json()["end_time"] == "2033-01-04T21:41:38.000Z"


def test_unknown_fields_are_ignored(server, owner):
    r = server.post("/tasks", token=owner.token, json=body_with(colour="blue", id=999999,
                                                                owner_id=424242))
    assert r.status_code == 201, r.text
    t = r.json()
    assert "colour" not in t
    assert t["owner_id"] == owner.id


# --- validation ------------------------------------------------------------------------------

VALID_BOUNDS = [
    ("name", "n"),
    ("name", "n" * 200),
    ("url", "http://example.com"),
    ("url", "https://example.com/" + "a" * (2048 - len("https://example.com/"))),
    ("task_interval", 1),
    ("task_interval", 31622400),
    ("max_execution_time", 0),
    ("max_execution_time", 86400),
    ("max_attempt", 1),
    ("max_attempt", 1000),
    ("parameters", {"method": "DELETE"}),
    ("parameters", {"headers": {"a": "b"}, "query": {"n": 1.5, "b": False, "s": "x"}}),
    ("parameters", {"path": "a/b.json", "eventfile": "x.json"}),
    ("end_time", "2023-01-04T21:41:38.931Z"),  # one ms after start_time
]

INVALID_BOUNDS = [
    ("name", ""),
    ("name", "n" * 201),
    ("name", 5),
    ("url", "ftp://example.com/"),
    ("url", "example.com/path"),
    ("url", "/relative/path"),
    ("url", "http://"),
    ("url", "https://example.com/" + "a" * (2049 - len("https://example.com/"))),
    ("start_time", "2023-01-04T21:41:38.930"),  # no offset
    ("start_time", "yesterday"),
    ("start_time", "2023-02-30T00:00:00Z"),
    ("end_time", "2023-01-04T21:41:38.930Z"),  # == start_time
    ("end_time", "2022-01-04T21:41:38.930Z"),  # before start_time
    ("task_interval", 0),
    ("task_interval", 31622401),
    ("task_interval", 2.5),
    ("task_interval", "2"),
    ("max_execution_time", -1),
    ("max_execution_time", 86401),
    ("max_attempt", 0),
    ("max_attempt", 1001),
    ("parameters", "not json"),
    ("parameters", "[1, 2]"),
    ("parameters", [1, 2]),
    ("parameters", {"method": "FETCH"}),
    ("parameters", {"headers": {"a": 1}}),
    ("parameters", {"headers": ["a"]}),
    ("parameters", {"query": {"a": {"b": 1}}}),
    ("parameters", {"path": 5}),
    ("parameters", {"eventfile": ["x"]}),
]


@pytest.mark.parametrize("field, value", VALID_BOUNDS, ids=lambda v: repr(v)[:40])
def test_valid_bound_is_accepted(server, owner, field, value):
    r = server.post("/tasks", token=owner.token, json=body_with(**{field: value}))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("field, value", INVALID_BOUNDS, ids=lambda v: repr(v)[:40])
def test_invalid_value_is_422_naming_the_field(server, owner, field, value):
    r = server.post("/tasks", token=owner.token, json=body_with(**{field: value}))
    assert_problem(r, 422, {field})


def test_422_lists_every_bad_field(server, owner):
    r = server.post("/tasks", token=owner.token, json=body_with(
        name="", url="ftp://x", start_time="soon", task_interval=0, max_execution_time=-1,
        max_attempt=0, parameters={"method": "FETCH"}))
    assert_problem(r, 422, {"name", "url", "start_time", "task_interval", "max_execution_time",
                            "max_attempt", "parameters"})


def test_missing_required_fields_are_each_listed(server, owner):
    r = server.post("/tasks", token=owner.token, json={})
    assert_problem(r, 422, {"name", "url", "start_time", "end_time", "task_interval"})
    assert not error_fields(r) & {"parameters", "max_execution_time", "max_attempt"}


@pytest.mark.parametrize("body", [b'{"name": "x", ', b"[]", b"42", b"null", b""],
                         ids=["truncated", "array", "number", "null", "empty"])
def test_malformed_body_is_400(server, owner, body):
    r = server.post("/tasks", token=owner.token, data=body,
                    headers={"Content-Type": "application/json"})
    assert_problem(r, 400)


# --- authentication and isolation ------------------------------------------------------------

BEARER_ROUTES = [
    ("GET", "/me"), ("POST", "/logout"), ("POST", "/tasks"), ("GET", "/tasks"),
    ("GET", "/tasks/1"), ("PATCH", "/tasks/1"), ("DELETE", "/tasks/1"),
    ("GET", "/tasks/1/status"), ("POST", "/tasks/1/reset-attempt"),
]


@pytest.mark.parametrize("method, path", BEARER_ROUTES)
def test_bearer_routes_without_token_are_401(server, method, path):
    kw = {"json": SEED_TASK} if method in ("POST", "PATCH") else {}
    r = server.request(method, path, **kw)
    assert_problem(r, 401)
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")


OWN_TASK_ROUTES = [
    ("GET", "/tasks/{id}", None),
    ("PATCH", "/tasks/{id}", {"name": "stolen"}),
    ("DELETE", "/tasks/{id}", None),
    ("GET", "/tasks/{id}/status", None),
    ("POST", "/tasks/{id}/reset-attempt", None),
]


@pytest.mark.parametrize("method, path, body", OWN_TASK_ROUTES)
def test_another_users_task_is_404(server, owner, stranger, task, method, path, body):
    kw = {"json": body} if body is not None else {}
    r = server.request(method, path.format(id=task["id"]), token=stranger.token, **kw)
    assert_problem(r, 404)
    after = server.get(f"/tasks/{task['id']}", token=owner.token)
    assert after.status_code == 200 and user_view(after.json()) == user_view(task)  # untouched


def test_another_users_tasks_are_not_listed(server, owner, stranger, task):
    r = server.get("/tasks", token=stranger.token, params={"limit": 500})
    assert r.status_code == 200
    assert all(t["owner_id"] == stranger.id for t in r.json()["items"])
    assert task["id"] not in {t["id"] for t in r.json()["items"]}


@pytest.mark.parametrize("task_id", ["0", "-1", "abc", "1.5", "999999999",
                                     "99999999999999999999999"])
def test_task_id_not_a_positive_integer_or_absent_is_404(server, owner, task_id):
    for method, path, body in OWN_TASK_ROUTES:
        kw = {"json": body} if body is not None else {}
        r = server.request(method, path.format(id=task_id), token=owner.token, **kw)
        assert_problem(r, 404)


def test_admin_reads_and_changes_any_task(server, owner, admin, task):
    assert admin.user["role"] == "admin"
    tid = task["id"]
    r = server.get(f"/tasks/{tid}", token=admin.token)
    assert r.status_code == 200 and r.json()["owner_id"] == owner.id, r.text
    r = server.get(f"/tasks/{tid}/status", token=admin.token)
    assert r.status_code == 200, r.text
    r = server.patch(f"/tasks/{tid}", token=admin.token, json={"name": "renamed by admin"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "renamed by admin"
    assert r.json()["owner_id"] == owner.id  # still the owner's
    r = server.post(f"/tasks/{tid}/reset-attempt", token=admin.token)
    assert r.status_code == 200, r.text
    r = server.delete(f"/tasks/{tid}", token=admin.token)
    assert r.status_code == 204, r.text
    assert_problem(server.get(f"/tasks/{tid}", token=owner.token), 404)


def test_all_true_lists_every_users_tasks_for_admin_only(server, owner, stranger, admin):
    mine = create_task(owner)
    theirs = create_task(stranger)
    ids, cursor = [], None
    while True:
        params = {"all": "true", "limit": 500}
        if cursor:
            params["cursor"] = cursor
        r = server.get("/tasks", token=admin.token, params=params)
        assert r.status_code == 200, r.text
        ids += [t["id"] for t in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert {mine["id"], theirs["id"]} <= set(ids)
    # Without all=true an admin lists their own tasks only.
    own = server.get("/tasks", token=admin.token, params={"limit": 500})
    assert own.status_code == 200
    assert all(t["owner_id"] == admin.id for t in own.json()["items"]), own.text
    # A plain user may not ask for everything.
    assert_problem(server.get("/tasks", token=owner.token, params={"all": "true"}), 403)


# --- update / delete -------------------------------------------------------------------------


def test_patch_is_a_partial_update(server, owner, task):
    r = server.patch(f"/tasks/{task['id']}", token=owner.token,
                     json={"name": "renamed", "task_interval": 60, "parameters": '{"a": "b"}'})
    assert r.status_code == 200, r.text
    t = r.json()
    assert (t["name"], t["task_interval"], t["parameters"]) == ("renamed", 60, {"a": "b"})
    unchanged = {k: v for k, v in task.items()
                 if k not in ("name", "task_interval", "parameters", "updated_at", "next_run_at")}
    assert {k: t[k] for k in unchanged} == unchanged
    assert t["updated_at"] >= task["updated_at"]  # same fixed-width format: string order works
    assert user_view(server.get(f"/tasks/{task['id']}", token=owner.token).json()) == user_view(t)


@pytest.mark.parametrize("patch, field", [
    ({"task_interval": 0}, "task_interval"),
    ({"name": ""}, "name"),
    ({"url": "mailto:a@b.c"}, "url"),
    ({"end_time": "2022-01-01T00:00:00Z"}, "end_time"),  # before the stored start_time
    ({"max_attempt": 1001}, "max_attempt"),
])
def test_invalid_patch_is_422_and_changes_nothing(server, owner, task, patch, field):
    r = server.patch(f"/tasks/{task['id']}", token=owner.token, json=patch)
    assert_problem(r, 422, {field})
    assert user_view(server.get(f"/tasks/{task['id']}", token=owner.token).json()) == user_view(task)


def test_malformed_patch_is_400(server, owner, task):
    r = server.patch(f"/tasks/{task['id']}", token=owner.token, data=b"{oops",
                     headers={"Content-Type": "application/json"})
    assert_problem(r, 400)


def test_delete_then_404(server, owner, task):
    r = server.delete(f"/tasks/{task['id']}", token=owner.token)
    assert r.status_code == 204, r.text
    assert r.content == b""
    for method, path, body in OWN_TASK_ROUTES:
        kw = {"json": body} if body is not None else {}
        assert_problem(server.request(method, path.format(id=task["id"]), token=owner.token, **kw),
                       404)
    listed = server.get("/tasks", token=owner.token, params={"limit": 500}).json()["items"]
    assert task["id"] not in {t["id"] for t in listed}


def test_deleted_ids_are_not_reused(server, owner, task):
    assert server.delete(f"/tasks/{task['id']}", token=owner.token).status_code == 204
    assert create_task(owner)["id"] > task["id"]


# --- status and reset-attempt ----------------------------------------------------------------


def test_status_has_exactly_the_contract_fields(server, owner):
    # A task that has not started yet: nothing runs it while the test looks.
    task = create_task(owner, start_time="2100-01-01T00:00:00Z", end_time="2101-01-01T00:00:00Z")
    r = server.get(f"/tasks/{task['id']}/status", token=owner.token)
    assert r.status_code == 200, r.text
    s = r.json()
    assert set(s) == STATUS_KEYS, sorted(set(s) ^ STATUS_KEYS)
    assert s["id"] == task["id"]
    assert s["last_execution_status"] == "pending"
    for key in ("execution_time", "last_execute_time", "last_execution_error",
                "last_execution_data"):
        assert s[key] is None, (key, s[key])
    assert s["consecutive_failures"] == 0 and s["suspended"] is False
    assert_next_run_at(s["next_run_at"])


def test_reset_attempt_returns_the_task(server, owner, task):
    r = server.post(f"/tasks/{task['id']}/reset-attempt", token=owner.token)
    assert r.status_code == 200, r.text
    t = r.json()
    assert set(t) == TASK_KEYS
    assert t["id"] == task["id"]
    assert t["consecutive_failures"] == 0 and t["suspended"] is False


# --- pagination ------------------------------------------------------------------------------


def test_pagination_across_three_pages(server):
    user = register_and_login(server)
    created = [create_task(user, name=f"t{i}")["id"] for i in range(7)]
    pages, cursor = [], None
    for _ in range(4):  # one more than needed: catches a cursor that never ends
        params = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        r = server.get("/tasks", token=user.token, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}, body
        pages.append([t["id"] for t in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor
    assert [len(p) for p in pages] == [3, 3, 1], pages
    ids = [i for p in pages for i in p]
    assert ids == sorted(ids) and len(set(ids)) == 7
    assert set(ids) == set(created)

    r = server.get("/tasks", token=user.token)  # default limit 100
    assert [t["id"] for t in r.json()["items"]] == ids and r.json()["next_cursor"] is None
    r = server.get("/tasks", token=user.token, params={"limit": 500})
    assert len(r.json()["items"]) == 7 and r.json()["next_cursor"] is None
    r = server.get("/tasks", token=user.token, params={"limit": 1})
    assert r.status_code == 200 and len(r.json()["items"]) == 1 and r.json()["next_cursor"]


def test_empty_list(server):
    user = register_and_login(server)
    r = server.get("/tasks", token=user.token)
    assert r.status_code == 200
    assert r.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("limit", ["0", "501", "-1", "abc", "1.5"])
def test_bad_limit_is_422(server, owner, limit):
    r = server.get("/tasks", token=owner.token, params={"limit": limit})
    assert_problem(r, 422, {"limit"})


@pytest.mark.parametrize("cursor", ["garbage!!", "AAAA", "%%%", "eyJ4IjoxfQ"])
def test_bad_cursor_is_422(server, owner, cursor):
    r = server.get("/tasks", token=owner.token, params={"cursor": cursor})
    assert_problem(r, 422, {"cursor"})
