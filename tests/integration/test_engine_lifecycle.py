# The engine across process lifetimes: SIGTERM drains runs in flight (up to shutdown_grace) and
# exits 0 with nothing left running; after kill -9 during runs, a restart redoes every
# interrupted run promptly, coalesces missed due times into one catch-up run and loses no task.
import signal
import time

from conftest import (ENGINE_ARGS, engine_task, finished_jobs, list_jobs, now_ms, parse_ms,
                      register_and_login, sleep_until_ms, sqlite_rows, task_status,
                      wait_for_jobs)

PROMPT_AFTER_RESTART_MS = 1000
UNFINISHED = "SELECT count(*) FROM jobs WHERE status IN ('running', 'queued')"


def jobs_in_db(server, task_id):
    return sqlite_rows(server.db_path,
                       "SELECT status, scheduled_at, http_status FROM jobs WHERE task_id = ? "
                       "ORDER BY scheduled_at", (task_id,))


def next_run_in_db(server, task_id):
    return sqlite_rows(server.db_path, "SELECT next_run_at FROM tasks WHERE id = ?",
                       (task_id,))[0][0]


def test_sigterm_drains_a_run_in_flight(fixture_server, fetchd_factory):
    srv = fetchd_factory(args=ENGINE_ARGS)
    account = register_and_login(srv)
    start = now_ms() + 700
    task = engine_task(account, fixture_server.url("/slow?ms=1500"), start_ms=start)
    sleep_until_ms(start + 400)  # the run is in flight, ~1.1 s from done

    sent = time.monotonic()
    code = srv.signal_and_wait(signal.SIGTERM, timeout=15)
    elapsed = time.monotonic() - sent
    assert code == 0, f"exit code {code}; stderr:\n{srv.tail()}"
    assert elapsed >= 0.9, f"exited {elapsed:.2f}s after SIGTERM: the run was not waited for"
    assert elapsed < 5, f"draining took {elapsed:.2f}s for a run ~1.1 s from done"

    assert jobs_in_db(srv, task["id"]) == [("succeeded", start, 200)]
    assert sqlite_rows(srv.db_path, UNFINISHED) == [(0,)]
    assert next_run_in_db(srv, task["id"]) == start + 3_600_000


def test_sigterm_gives_up_after_the_grace_and_the_run_is_redone(fixture_server,
                                                                fetchd_factory):
    srv = fetchd_factory(args=[*ENGINE_ARGS, "--shutdown-grace", "1s"])
    account = register_and_login(srv)
    start = now_ms() + 700
    task = engine_task(account, fixture_server.url("/slow?ms=2500"), start_ms=start)
    sleep_until_ms(start + 300)

    sent = time.monotonic()
    code = srv.signal_and_wait(signal.SIGTERM, timeout=15)
    elapsed = time.monotonic() - sent
    assert code == 0, f"exit code {code}; stderr:\n{srv.tail()}"
    assert 0.8 <= elapsed < 3.0, f"exited {elapsed:.2f}s after SIGTERM with a 1 s grace"
    # The unfinished run is not recorded (nor left running): its due time did not move.
    assert jobs_in_db(srv, task["id"]) == []
    assert sqlite_rows(srv.db_path, UNFINISHED) == [(0,)]
    assert next_run_in_db(srv, task["id"]) == start

    restarted = now_ms()
    srv.start()
    ready = now_ms()
    job = wait_for_jobs(account, task["id"], 1, timeout=6)[0]
    assert job["status"] == "succeeded", job
    assert restarted <= parse_ms(job["started_at"]) <= ready + PROMPT_AFTER_RESTART_MS, \
        (restarted, ready, job)
    assert parse_ms(task_status(account, task["id"])["next_run_at"]) == start + 3_600_000
    srv.stop()


def test_kill_9_during_runs_then_restart_redoes_them(fixture_server, fetchd_factory):
    srv = fetchd_factory(args=ENGINE_ARGS)
    account = register_and_login(srv)
    start = now_ms() + 800
    slow = [engine_task(account, fixture_server.url("/slow?ms=3000"), name=f"slow{i}",
                        start_ms=start) for i in range(3)]
    fast = [engine_task(account, fixture_server.url("/json/small.json"), name=f"fast{i}",
                        start_ms=start, task_interval=1) for i in range(2)]
    ids = sorted(t["id"] for t in slow + fast)
    sleep_until_ms(start + 1500)  # slow runs ~halfway; fast tasks ran at +0 and +1 s
    srv.kill()  # SIGKILL
    killed = now_ms()

    assert sqlite_rows(srv.db_path, "SELECT count(*) FROM jobs WHERE status = 'running'") == \
        [(0,)]
    assert sorted(r[0] for r in sqlite_rows(srv.db_path, "SELECT id FROM tasks")) == ids
    for t in slow:
        assert jobs_in_db(srv, t["id"]) == [], "a run in flight at the kill was recorded"
        assert next_run_in_db(srv, t["id"]) == start
    before = {t["id"]: len(jobs_in_db(srv, t["id"])) for t in fast}
    assert all(n >= 1 for n in before.values()), before

    time.sleep(1.2)  # a little downtime: due times of the fast tasks are missed
    restarted = now_ms()
    srv.start()
    ready = now_ms()

    for t in slow:
        job = wait_for_jobs(account, t["id"], 1, timeout=8)[0]
        assert job["status"] == "succeeded" and job["attempt"] == 1, job
        assert restarted <= parse_ms(job["started_at"]) <= ready + PROMPT_AFTER_RESTART_MS, \
            (restarted, ready, job)
    for t in fast:
        jobs = wait_for_jobs(account, t["id"], before[t["id"]] + 2, timeout=5)
        after = [j for j in jobs if parse_ms(j["scheduled_at"]) > killed]
        assert parse_ms(after[0]["started_at"]) <= ready + PROMPT_AFTER_RESTART_MS, after
        # The due times missed while down coalesce into one catch-up run (due "now" at the
        # restart, or labelled with a missed due time): every other run is a regular one.
        catch_up = [j for j in after if parse_ms(j["scheduled_at"]) < restarted
                    or (parse_ms(j["scheduled_at"]) - start) % 1000 != 0]
        assert len(catch_up) <= 1, after
        scheduled = [j["scheduled_at"] for j in list_jobs(account, t["id"])]
        assert len(scheduled) == len(set(scheduled)), scheduled

    r = srv.get("/tasks", token=account.token)
    assert r.status_code == 200, r.text
    assert sorted(t["id"] for t in r.json()["items"]) == ids
    for task_id in ids:
        assert list_jobs(account, task_id, status="running") == []
    for t in slow:
        assert parse_ms(task_status(account, t["id"])["next_run_at"]) == start + 3_600_000
        assert len(finished_jobs(account, t["id"])) == 1
    srv.stop()
    assert sqlite_rows(srv.db_path, UNFINISHED) == [(0,)]
