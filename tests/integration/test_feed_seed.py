# `fetchd feed` (one scheduling pass, fetched to completion in-process, exit 1 if a run failed,
# a one-line summary) and `fetchd db seed` (demo tasks like the original's, pointed by default
# at fetchd's own /demo/ feeds), end to end against the real binary.
import json
import re
import time

import pytest

from conftest import (ENGINE_ARGS, Fetchd, add_admin, engine_task, fixture_json, free_port,
                      list_jobs, now_ms, register_and_login, run_cli, sleep_until_ms,
                      sqlite_rows, unique_name, wait_for)

SUMMARY_RE = re.compile(r"^feed: (\d+) runs?, (\d+) succeeded, (\d+) failed$")
EVENT_FILES = {"amazingexpo2020.json", "salesmeeting2020.json", "ceosummersummit2020.json"}
DAY_MS = 86_400_000


def summary(r):
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, f"want a one-line summary on stdout, got {r.stdout!r}\n{r.stderr}"
    m = SUMMARY_RE.match(lines[0].strip())
    assert m, f"summary {lines[0]!r} is not 'feed: N runs, S succeeded, F failed'"
    return tuple(int(g) for g in m.groups())


def jobs_of(db_path, task_id):
    return sqlite_rows(db_path, "SELECT status, http_status, error FROM jobs WHERE task_id = ? "
                       "ORDER BY id", (task_id,))


def tasks_due_soon(fetchd_factory, make):
    """A server creates tasks (via `make(account, start)`) due 3 s from now, then stops, so
    that only `fetchd feed` runs them. Returns (server, tasks, start)."""
    srv = fetchd_factory(args=ENGINE_ARGS)  # the tasks fetch the loopback fixture server
    account = register_and_login(srv)
    start = now_ms() + 3000
    tasks = make(account, start)
    srv.stop()
    assert now_ms() < start, "the server stopped after the tasks were due: test too slow"
    sleep_until_ms(start + 50)
    assert sqlite_rows(srv.db_path, "SELECT count(*) FROM jobs") == [(0,)]
    return srv, tasks, start


def test_feed_runs_every_due_task_to_completion(fixture_server, fetchd_factory):
    def make(account, start):
        t = {
            "small": engine_task(account, fixture_server.url("/json/small.json"), start_ms=start),
            "slow": engine_task(account, fixture_server.url("/slow?ms=800"), start_ms=start),
            "bad": engine_task(account, fixture_server.url("/status/500"), start_ms=start),
            "later": engine_task(account, fixture_server.url("/json/small.json"),
                                 start_ms=start + 3_600_000),
            "paused": engine_task(account, fixture_server.url("/json/small.json"),
                                  start_ms=start),
        }
        r = account.server.post(f"/tasks/{t['paused']['id']}/pause", token=account.token)
        assert r.status_code == 200, r.text
        return t

    srv, tasks, start = tasks_due_soon(fetchd_factory, make)
    began = time.monotonic()
    r = run_cli("feed", "--db", srv.db_url, "--fetch-allow-private")
    assert r.returncode == 1, f"exit {r.returncode} with a failed run\n{r.stdout}\n{r.stderr}"
    assert summary(r) == (3, 2, 1)
    assert time.monotonic() - began >= 0.8  # it waited for the slow fetch

    db = srv.db_path
    assert jobs_of(db, tasks["small"]["id"]) == [("succeeded", 200, None)]
    assert jobs_of(db, tasks["slow"]["id"]) == [("succeeded", 200, None)]
    assert [(s, h) for s, h, _ in jobs_of(db, tasks["bad"]["id"])] == [("failed", 500)]
    assert jobs_of(db, tasks["later"]["id"]) == []
    assert jobs_of(db, tasks["paused"]["id"]) == []
    body = sqlite_rows(db, "SELECT d.body FROM jobs j JOIN data d ON d.id = j.data_id "
                       "WHERE j.task_id = ?", (tasks["small"]["id"],))
    assert [json.loads(b) for (b,) in body] == [fixture_json("small.json")]
    assert sqlite_rows(db, "SELECT last_status, consecutive_failures FROM tasks WHERE id = ?",
                       (tasks["bad"]["id"],)) == [("failed", 1)]
    next_small = sqlite_rows(db, "SELECT next_run_at FROM tasks WHERE id = ?",
                             (tasks["small"]["id"],))
    assert next_small == [(start + 3_600_000,)]
    assert sqlite_rows(db, "SELECT count(*) FROM jobs WHERE status IN ('running', 'queued')") \
        == [(0,)]


def test_feed_exits_0_when_all_runs_succeed_and_runs_nothing_twice(fixture_server,
                                                                   fetchd_factory):
    def make(account, start):
        return [engine_task(account, fixture_server.url("/json/small.json"), start_ms=start)]

    srv, tasks, _ = tasks_due_soon(fetchd_factory, make)
    r = run_cli("feed", "--db", srv.db_url, "--fetch-allow-private")
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert summary(r) == (1, 1, 0)
    r = run_cli("feed", "--db", srv.db_url, "--fetch-allow-private")
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert summary(r) == (0, 0, 0)
    assert len(jobs_of(srv.db_path, tasks[0]["id"])) == 1


def test_feed_refuses_private_addresses_without_the_flag(fixture_server, fetchd_factory):
    def make(account, start):
        return [engine_task(account, fixture_server.url("/json/small.json"), start_ms=start)]

    srv, tasks, _ = tasks_due_soon(fetchd_factory, make)
    r = run_cli("feed", "--db", srv.db_url)
    assert r.returncode == 1, f"{r.stdout}\n{r.stderr}"
    assert summary(r) == (1, 0, 1)
    [(status, http_status, error)] = jobs_of(srv.db_path, tasks[0]["id"])
    assert (status, http_status) == ("failed", None)
    assert "address 127.0.0.1 is private; set fetch.allow_private to allow it" in error, error


# --- db seed ---------------------------------------------------------------------------------


def seeded_tasks(db_path):
    rows = sqlite_rows(db_path, "SELECT t.id, u.username, t.url, t.parameters, t.start_time, "
                       "t.end_time, t.task_interval FROM tasks t JOIN users u ON u.id = "
                       "t.owner_id ORDER BY t.id")
    return [dict(zip(("id", "owner", "url", "parameters", "start", "end", "interval"), row))
            for row in rows]


def assert_seed_shape(task, owner, url, seeded_at):
    assert task["owner"] == owner, task
    assert task["url"] == url, task
    params = json.loads(task["parameters"])
    assert params.get("eventfile") in EVENT_FILES, params
    assert isinstance(params.get("token"), str) and params["token"], params
    assert isinstance(params.get("apiuser"), str) and params["apiuser"], params
    assert task["interval"] == 2, task
    assert abs(task["start"] - (seeded_at - 10 * DAY_MS)) < 120_000, task
    assert abs(task["end"] - (seeded_at + 10 * DAY_MS)) < 120_000, task


def test_db_seed_defaults(tmp_path):
    db = tmp_path / "seed.db"
    url = f"sqlite://{db}"
    seeded_at = now_ms()
    r = run_cli("db", "seed", "--db", url)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    tasks = seeded_tasks(db)
    assert len(tasks) == 10, tasks
    for t in tasks:
        assert_seed_shape(t, "demo", "http://127.0.0.1:8000/demo/", seeded_at)
    assert len({json.loads(t["parameters"])["eventfile"] for t in tasks}) >= 2, tasks
    # Again: ten more, for the same (existing) demo user.
    r = run_cli("db", "seed", "--db", url)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert len(seeded_tasks(db)) == 20
    assert sqlite_rows(db, "SELECT count(*) FROM users WHERE username = 'demo'") == [(1,)]


def test_db_seed_with_count_base_url_and_owner(tmp_path, fixture_server):
    db = tmp_path / "seed.db"
    owner = unique_name("ops")
    base = fixture_server.url("/json/")
    seeded_at = now_ms()
    r = run_cli("db", "seed", "--db", f"sqlite://{db}", "--count", "3", "--base-url", base,
                "--owner", owner)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    tasks = seeded_tasks(db)
    assert len(tasks) == 3, tasks
    for t in tasks:
        assert_seed_shape(t, owner, base, seeded_at)


@pytest.mark.parametrize("count", ["-1", "abc"])
def test_db_seed_rejects_a_bad_count(tmp_path, count):
    r = run_cli("db", "seed", "--db", f"sqlite://{tmp_path / 'seed.db'}", "--count", count)
    assert r.returncode != 0, f"--count {count} accepted\n{r.stdout}\n{r.stderr}"


def test_seed_then_serve_runs_against_the_demo_feeds(tmp_path):
    port = free_port()
    srv = Fetchd(tmp_path, name="demo", listen=f"127.0.0.1:{port}", args=ENGINE_ARGS)
    r = run_cli("db", "seed", "--db", srv.db_url, "--count", "3", "--listen",
                f"127.0.0.1:{port}")
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    tasks = seeded_tasks(srv.db_path)
    assert [t["url"] for t in tasks] == [f"http://127.0.0.1:{port}/demo/"] * 3, tasks
    try:
        srv.start()
        assert srv.port == port
        # The demo feeds are served in the original's shape.
        for name in EVENT_FILES:
            r = srv.get(f"/demo/{name}")
            assert r.status_code == 200, (name, r.status_code)
            doc = r.json()
            assert isinstance(doc, list) and doc and all(isinstance(x, dict) for x in doc), name
            assert set(doc[0]) >= {"id", "name_first", "name_last", "decription", "title"}
        assert srv.get("/demo/amazingexpo2020.json").json() == \
            fixture_json("amazingexpo2020.json")
        assert srv.get("/demo/salesmeeting2020.json").json() == \
            fixture_json("salesmeeting2020.json")
        assert srv.get("/demo/nope.json").status_code == 404

        admin = add_admin(srv)
        for t in tasks:
            job = wait_for(lambda: [j for j in list_jobs(admin, t["id"])
                                    if j["status"] != "skipped"], timeout=6,
                           message=f"a run of seeded task {t['id']}")[-1]
            assert job["status"] == "succeeded", job
            detail = srv.get(f"/jobs/{job['id']}", token=admin.token).json()
            eventfile = json.loads(t["parameters"])["eventfile"]
            assert detail["data"] == srv.get(f"/demo/{eventfile}").json()
            assert job["records"] == len(detail["data"]), job
        srv.stop()
    finally:
        srv.kill()
