# The scheduler seen from outside: runs start on time at start_time + k * task_interval inside
# [start_time, end_time), overlapping due times are skipped, pause/resume, run now (409 while in
# flight), and API changes (update, delete) reaching the scheduler without a restart.
import time

import pytest

from conftest import (assert_problem, engine_task, finished_jobs, iso_ms, list_jobs, now_ms,
                      parse_ms, register_and_login, sleep_until_ms, task_status, wait_for,
                      wait_for_jobs)

JOB_KEYS = {
    "id", "task_id", "attempt", "scheduled_at", "started_at", "finished_at", "duration_ms",
    "execution_time", "status", "http_status", "error", "response_bytes", "records", "changed",
    "worker_id", "data_id",
}

# "Runs start within 100 ms of their due time" (issue 3). The sanitizer build on a shared
# 2-core machine gets a little slack on the worst case only.
LAG_P95_MS = 100
LAG_MAX_MS = 250


def lag_ms(job):
    return parse_ms(job["started_at"]) - parse_ms(job["scheduled_at"])


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def test_runs_are_anchored_on_time_and_inside_the_window(fixture_server, runner):
    """Tasks of 1 s and 2 s intervals over a 10 s window: exactly the anchored due times run
    (the one at start_time does, the one at end_time does not), each started within 100 ms."""
    url = fixture_server.url("/json/small.json")
    start = now_ms() + 1500
    window = 10_000
    two = engine_task(runner, url, name="every2s", start_ms=start, task_interval=2,
                      end_time=iso_ms(start + window))
    ones = [engine_task(runner, url, name=f"every1s-{i}", start_ms=start + 250 + 100 * i,
                        task_interval=1, end_time=iso_ms(start + 250 + 100 * i + window))
            for i in range(3)]
    # Created with start_time in the past at an arbitrary phase: the first run is the next
    # anchored due time, not "now" (creating a task is not a missed run to catch up).
    past_start = now_ms() - 6_900
    past = engine_task(runner, url, name="past-start", start_ms=past_start, task_interval=2,
                       end_time=iso_ms(past_start + 3_600_000))
    created = parse_ms(past["created_at"])

    sleep_until_ms(start + window + 250 + 200 + 1500)
    observed_until = now_ms()

    samples = []
    jobs = finished_jobs(runner, two["id"])
    assert [parse_ms(j["scheduled_at"]) for j in jobs] == [start + 2000 * k for k in range(5)], \
        [j["scheduled_at"] for j in jobs]
    for j in jobs:
        assert set(j) == JOB_KEYS, sorted(set(j) ^ JOB_KEYS)
        assert j["status"] == "succeeded", j
        assert j["task_id"] == two["id"] and j["attempt"] == 1, j
        started, finished = parse_ms(j["started_at"]), parse_ms(j["finished_at"])
        assert started <= finished and abs((finished - started) - j["duration_ms"]) <= 1, j
        assert j["execution_time"] == pytest.approx(j["duration_ms"] / 1000.0, abs=0.0011), j
        assert isinstance(j["worker_id"], str) and j["worker_id"], j
    samples += jobs
    assert task_status(runner, two["id"])["next_run_at"] is None  # the window is over

    for i, task in enumerate(ones):
        first = start + 250 + 100 * i
        jobs = finished_jobs(runner, task["id"])
        assert [parse_ms(j["scheduled_at"]) for j in jobs] == \
            [first + 1000 * k for k in range(10)], [j["scheduled_at"] for j in jobs]
        assert all(j["status"] == "succeeded" for j in jobs), jobs
        samples += jobs

    # The past-start task: due at past_start + 2000 k; those at or after its creation and
    # safely before now must all have run, none before creation.
    jobs = finished_jobs(runner, past["id"])
    got = [parse_ms(j["scheduled_at"]) for j in jobs]
    expected = [past_start + 2000 * k for k in range(0, 100)
                if created <= past_start + 2000 * k <= observed_until - 700]
    assert got[:len(expected)] == expected, (got, expected, past["created_at"])
    assert len(got) - len(expected) <= 1, (got, expected)  # at most the one due just now
    assert all((t - past_start) % 2000 == 0 for t in got), got
    samples += jobs[:len(expected)]

    lags = [lag_ms(j) for j in samples]
    assert len(lags) >= 40
    assert min(lags) >= 0, f"a run started before its due time: lags {sorted(lags)}"
    p95 = percentile(lags, 0.95)
    assert p95 < LAG_P95_MS, f"p95 start lag {p95} ms; lags {sorted(lags)}"
    assert max(lags) < LAG_MAX_MS, f"max start lag {max(lags)} ms; lags {sorted(lags)}"


def test_a_due_time_during_a_run_in_flight_is_skipped(fixture_server, runner, engine_server):
    start = now_ms() + 800
    task = engine_task(runner, fixture_server.url("/slow?ms=1500"), start_ms=start,
                       task_interval=1, end_time=iso_ms(start + 2500))
    sleep_until_ms(start + 2000 + 1500 + 700)
    jobs = sorted(list_jobs(runner, task["id"]), key=lambda j: parse_ms(j["scheduled_at"]))
    got = [(parse_ms(j["scheduled_at"]) - start, j["status"]) for j in jobs]
    # Due at +0 (runs until ~+1.5 s), +1 s (in flight: skipped), +2 s (runs).
    assert got == [(0, "succeeded"), (1000, "skipped"), (2000, "succeeded")], got
    # Never two runs of one task at once.
    ran = [j for j in jobs if j["status"] == "succeeded"]
    assert parse_ms(ran[1]["started_at"]) >= parse_ms(ran[0]["finished_at"]), ran
    assert list_jobs(runner, task["id"], status="skipped") == [jobs[1]]


def test_pause_and_resume(fixture_server, runner):
    start = now_ms() + 500
    task = engine_task(runner, fixture_server.url("/json/small.json"), start_ms=start,
                       task_interval=1)
    wait_for_jobs(runner, task["id"], 2, timeout=5)

    r = runner.server.post(f"/tasks/{task['id']}/pause", token=runner.token)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == task["id"]
    assert r.json()["paused"] is True and r.json()["next_run_at"] is None, r.json()
    paused_at = now_ms()
    time.sleep(0.4)  # a run already in flight may still finish
    before = list_jobs(runner, task["id"])
    time.sleep(2.5)
    after = list_jobs(runner, task["id"])
    assert after == before, "runs happened while paused"
    assert all(parse_ms(j["scheduled_at"]) < paused_at for j in after), after
    status = task_status(runner, task["id"])
    assert status["next_run_at"] is None, status
    got = runner.server.get(f"/tasks/{task['id']}", token=runner.token).json()
    assert got["paused"] is True, got

    asked = now_ms()
    r = runner.server.post(f"/tasks/{task['id']}/resume", token=runner.token)
    answered = now_ms()
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["paused"] is False, body
    next_run = parse_ms(body["next_run_at"])
    assert asked <= next_run <= answered + 1000, body  # the first due time >= now
    assert (next_run - start) % 1000 == 0, body  # back on the anchored grid
    jobs = wait_for_jobs(runner, task["id"], len(before) + 1, timeout=3)
    new = jobs[len(before)]
    assert parse_ms(new["scheduled_at"]) == next_run, new
    assert new["status"] == "succeeded", new


def test_pause_and_resume_of_unknown_or_foreign_task_is_404(engine_server, runner):
    other = register_and_login(engine_server)
    task = engine_task(other, "http://127.0.0.1:9/none", start_ms=now_ms() + 3_600_000)
    for action in ("pause", "resume", "run"):
        assert_problem(engine_server.post(f"/tasks/{task['id']}/{action}", token=runner.token),
                       404)
        assert_problem(engine_server.post(f"/tasks/999999999/{action}", token=runner.token), 404)
    assert_problem(engine_server.get(f"/tasks/{task['id']}/jobs", token=runner.token), 404)
    assert_problem(engine_server.get(f"/tasks/{task['id']}/data/latest", token=runner.token), 404)


def test_run_now_runs_at_once_outside_the_schedule(fixture_server, runner):
    start = now_ms() - 10_000
    task = engine_task(runner, fixture_server.url("/json/small.json"), start_ms=start)
    next_due = start + 3_600_000
    assert parse_ms(task["next_run_at"]) == next_due, task

    asked = now_ms()
    r = runner.server.post(f"/tasks/{task['id']}/run", token=runner.token)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["task_id"] == task["id"], body
    scheduled = parse_ms(body["scheduled_at"])
    assert asked - 50 <= scheduled <= now_ms() + 50, body

    jobs = wait_for_jobs(runner, task["id"], 1, timeout=3)
    assert len(jobs) == 1, jobs
    job = jobs[0]
    assert job["status"] == "succeeded" and job["attempt"] == 1, job
    assert parse_ms(job["scheduled_at"]) == scheduled, (job, body)
    assert 0 <= lag_ms(job) < LAG_MAX_MS, job
    # A manual run does not move the schedule.
    assert parse_ms(task_status(runner, task["id"])["next_run_at"]) == next_due


def test_run_now_while_in_flight_is_409(fixture_server, runner):
    task = engine_task(runner, fixture_server.url("/slow?ms=1500"), start_ms=now_ms() - 10_000)
    r = runner.server.post(f"/tasks/{task['id']}/run", token=runner.token)
    assert r.status_code == 202, r.text
    time.sleep(0.3)
    assert_problem(runner.server.post(f"/tasks/{task['id']}/run", token=runner.token), 409)
    wait_for_jobs(runner, task["id"], 1, timeout=5)
    r = runner.server.post(f"/tasks/{task['id']}/run", token=runner.token)
    assert r.status_code == 202, r.text
    jobs = wait_for_jobs(runner, task["id"], 2, timeout=5)
    assert [j["status"] for j in jobs] == ["succeeded", "succeeded"], jobs


def test_an_update_reaches_the_scheduler(fixture_server, runner):
    task = engine_task(runner, fixture_server.url("/json/small.json"),
                       start_ms=now_ms() - 10_000)
    time.sleep(1.2)
    assert list_jobs(runner, task["id"]) == []  # next due is an hour away
    start = now_ms() + 700
    r = runner.server.patch(f"/tasks/{task['id']}", token=runner.token,
                            json={"start_time": iso_ms(start), "task_interval": 1})
    assert r.status_code == 200, r.text
    assert parse_ms(r.json()["next_run_at"]) == start, r.json()
    jobs = wait_for_jobs(runner, task["id"], 2, timeout=4)
    assert [parse_ms(j["scheduled_at"]) for j in jobs[:2]] == [start, start + 1000], jobs


def test_a_deleted_task_stops_running(fixture_server, runner):
    name = f"deleted-{now_ms()}"
    task = engine_task(runner, fixture_server.url(f"/counter/{name}"),
                       start_ms=now_ms() + 300, task_interval=1)
    wait_for(lambda: fixture_server.counter_value(name) >= 2, timeout=5,
             message="two runs before the delete")
    r = runner.server.delete(f"/tasks/{task['id']}", token=runner.token)
    assert r.status_code == 204, r.text
    time.sleep(0.3)  # a run in flight at the delete may still reach the fixture
    count = fixture_server.counter_value(name)
    time.sleep(2.2)
    assert fixture_server.counter_value(name) == count, "a deleted task kept running"
    assert runner.server.get("/healthz").status_code == 200
