# Retries and suspension (DESIGN.md §3): a failed run is retried after 1 s, 2 s, 4 s… (±10%,
# capped at the interval), consecutive_failures counts the failed tries and resets on success,
# at max_attempt the task is suspended until reset-attempt, which also runs it at once.
import time

from conftest import (engine_task, finished_jobs, now_ms, parse_ms, task_status, wait_for,
                      wait_for_jobs)

JITTER = 0.10
# The retry time is computed when the run finishes; finished_at is stamped a moment before.
SCHEDULE_SLACK_MS = 60
LAG_MAX_MS = 250


def retry_gap(before, after):
    """ms from one try's end to the next try's due time."""
    return parse_ms(after["scheduled_at"]) - parse_ms(before["finished_at"])


def assert_backoff(gap, seconds):
    low = seconds * 1000 * (1 - JITTER) - SCHEDULE_SLACK_MS
    high = seconds * 1000 * (1 + JITTER) + SCHEDULE_SLACK_MS
    assert low <= gap <= high, f"retry after {gap} ms, want {seconds} s ±10%"


def test_retry_suspension_and_reset(fixture_server, runner):
    name = f"suspend-{now_ms()}"
    task = engine_task(runner, fixture_server.url(f"/flaky/{name}?fail=3"),
                       start_ms=now_ms() + 300, max_attempt=3)

    # After the first failure, before the retry: consecutive_failures is 1, not suspended.
    wait_for_jobs(runner, task["id"], 1, timeout=5)
    status = task_status(runner, task["id"])
    assert status["consecutive_failures"] == 1 and status["suspended"] is False, status
    assert status["last_execution_status"] == "failed", status
    assert status["next_run_at"] is not None, status

    jobs = wait_for_jobs(runner, task["id"], 3, timeout=8)
    assert [j["attempt"] for j in jobs] == [1, 2, 3], jobs
    assert all(j["status"] == "failed" and j["http_status"] == 500 for j in jobs), jobs
    assert_backoff(retry_gap(jobs[0], jobs[1]), 1)
    assert_backoff(retry_gap(jobs[1], jobs[2]), 2)
    for j in jobs[1:]:
        assert 0 <= parse_ms(j["started_at"]) - parse_ms(j["scheduled_at"]) < LAG_MAX_MS, j

    # max_attempt reached: suspended, nothing more runs (the next retry would be after ~4 s).
    time.sleep(0.2)
    status = task_status(runner, task["id"])
    assert status["consecutive_failures"] == 3, status
    assert status["suspended"] is True, status
    assert status["next_run_at"] is None, status
    assert status["last_execution_error"].startswith("HTTP 500"), status
    got = runner.server.get(f"/tasks/{task['id']}", token=runner.token).json()
    assert got["suspended"] is True and got["consecutive_failures"] == 3, got
    time.sleep(4.6)
    assert len(finished_jobs(runner, task["id"])) == 3, "a suspended task ran again"

    # reset-attempt: back to 0, not suspended, and run right away (the flaky URL now succeeds).
    asked = now_ms()
    r = runner.server.post(f"/tasks/{task['id']}/reset-attempt", token=runner.token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["consecutive_failures"] == 0 and body["suspended"] is False, body
    assert body["next_run_at"] is not None, body
    assert asked - 50 <= parse_ms(body["next_run_at"]) <= now_ms() + 50, body
    jobs = wait_for_jobs(runner, task["id"], 4, timeout=3)
    reset_run = jobs[3]
    assert reset_run["attempt"] == 1 and reset_run["status"] == "succeeded", reset_run
    assert parse_ms(reset_run["started_at"]) - asked < 500, (asked, reset_run)
    status = task_status(runner, task["id"])
    assert status["consecutive_failures"] == 0 and status["suspended"] is False, status
    assert status["last_execution_status"] == "succeeded", status
    assert status["last_execution_data"] == {"ok": True, "attempt": 4}, status
    # Back on the schedule: the next run is the next anchored due time, an hour after start.
    assert parse_ms(status["next_run_at"]) == parse_ms(task["start_time"]) + 3_600_000, status


def test_a_success_before_max_attempt_resets_the_count(fixture_server, runner):
    name = f"recover-{now_ms()}"
    task = engine_task(runner, fixture_server.url(f"/flaky/{name}?fail=2"),
                       start_ms=now_ms() + 300, max_attempt=3)
    jobs = wait_for_jobs(runner, task["id"], 3, timeout=8)
    assert [(j["attempt"], j["status"]) for j in jobs] == \
        [(1, "failed"), (2, "failed"), (3, "succeeded")], jobs
    status = task_status(runner, task["id"])
    assert status["consecutive_failures"] == 0 and status["suspended"] is False, status
    assert parse_ms(status["next_run_at"]) == parse_ms(task["start_time"]) + 3_600_000, status


def test_max_attempt_1_suspends_after_the_first_failure(fixture_server, runner):
    task = engine_task(runner, fixture_server.url("/status/500"), start_ms=now_ms() + 300,
                       max_attempt=1)
    wait_for_jobs(runner, task["id"], 1, timeout=5)
    time.sleep(1.6)  # a retry would have come after ~1 s
    jobs = finished_jobs(runner, task["id"])
    assert len(jobs) == 1, jobs
    status = task_status(runner, task["id"])
    assert status["suspended"] is True and status["consecutive_failures"] == 1, status
    assert status["next_run_at"] is None, status


def test_backoff_is_capped_at_the_interval(fixture_server, runner):
    # Interval 2 s: tries at +0, ~+1 s, then at most 2 s apart (4 s would be the uncapped delay).
    start = now_ms() + 300
    task = engine_task(runner, fixture_server.url("/status/503"), start_ms=start,
                       task_interval=2, max_attempt=4)
    jobs = wait_for_jobs(runner, task["id"], 4, timeout=10)
    assert [j["attempt"] for j in jobs] == [1, 2, 3, 4], jobs
    assert_backoff(retry_gap(jobs[0], jobs[1]), 1)
    for before, after in zip(jobs[1:], jobs[2:]):
        gap = retry_gap(before, after)
        assert 0 < gap <= 2000 * (1 + JITTER) + SCHEDULE_SLACK_MS, (gap, jobs)
    time.sleep(2.5)
    assert len(finished_jobs(runner, task["id"])) == 4
    assert task_status(runner, task["id"])["suspended"] is True


def test_reset_attempt_of_a_healthy_task_runs_it_now(fixture_server, runner):
    task = engine_task(runner, fixture_server.url("/json/small.json"),
                       start_ms=now_ms() - 10_000)
    asked = now_ms()
    r = runner.server.post(f"/tasks/{task['id']}/reset-attempt", token=runner.token)
    assert r.status_code == 200, r.text
    job = wait_for(lambda: finished_jobs(runner, task["id"]), timeout=3,
                   message="the run reset-attempt schedules")[0]
    assert job["status"] == "succeeded" and job["attempt"] == 1, job
    assert parse_ms(job["started_at"]) - asked < 500, (asked, job)
