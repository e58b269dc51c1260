# Bad luck, tried on purpose (issue 6): `fetchd serve` killed with -9 under load twenty times
# in a row, and the database's disk filled up while it runs. Nothing may be lost or corrupted,
# no process may crash, and service must resume by itself. (A disk made read-only under a
# running process cannot be staged: the kernel refuses to remount a filesystem read-only while
# a file on it is open for writing. SQLITE_READONLY takes the same path as SQLITE_FULL: 503.)
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (ENGINE_ARGS, Fetchd, engine_task, list_jobs, now_ms, parse_ms,
                      register_and_login, sqlite_rows, wait_for)

KILLS = 20
TASKS = 30


def test_kill_minus_9_twenty_times_loses_and_corrupts_nothing(fixture_server, tmp_path):
    srv = Fetchd(tmp_path, name="crashy", args=ENGINE_ARGS)
    srv.start()
    account = register_and_login(srv)
    start = now_ms() + 500
    # Runs take 300 ms of a 1 s interval: a kill often lands while some are in flight.
    tasks = [engine_task(account, fixture_server.url("/slow?ms=300"), start_ms=start,
                         task_interval=1, max_execution_time=5, name=f"crash-{i}")
             for i in range(TASKS)]
    rng = random.Random(int(os.environ.get("FETCHD_TEST_SEED", "6")))
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.2))
            srv.kill()  # SIGKILL: no graceful anything
            srv.start()
        final_start = now_ms()
        # After the last start every task runs again: the interrupted runs first (their
        # next_run_at never moved), then on schedule.
        for task in tasks:
            wait_for(lambda t=task: any(j["status"] == "succeeded" and
                                        parse_ms(j["scheduled_at"]) >= final_start - 1000
                                        for j in list_jobs(account, t["id"], limit=100)),
                     timeout=15, interval=0.2, message=f"task {task['id']} running again")
        srv.stop()
    finally:
        srv.kill()

    db = srv.db_path
    assert sqlite_rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert sqlite_rows(db, "SELECT count(*) FROM tasks") == [(TASKS,)]
    statuses = dict(sqlite_rows(db, "SELECT status, count(*) FROM jobs GROUP BY status"))
    assert set(statuses) <= {"succeeded", "skipped", "failed", "timed_out"}, statuses
    assert statuses.get("succeeded", 0) >= TASKS * 5, statuses
    # One job per (task, due time), whatever was killed when.
    assert sqlite_rows(db, "SELECT count(*) FROM (SELECT task_id, scheduled_at FROM jobs "
                           "GROUP BY 1, 2 HAVING count(*) > 1)") == [(0,)]
    # Every task is still scheduled (none stuck behind a run that died with a process).
    stuck = sqlite_rows(db, "SELECT id FROM tasks WHERE next_run_at IS NULL OR next_run_at < ?",
                        (final_start,))
    assert stuck == [], f"tasks without a next run after the crashes: {stuck}"


# --- the database's disk --------------------------------------------------------------------


@pytest.fixture
def small_disk():
    """A 6 MiB tmpfs of our own (skipped where mounting is not allowed)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    path = Path(tempfile.mkdtemp(prefix="fetchd-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        path.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def fill(directory: Path) -> Path:
    """Writes a file until the disk is full; returns it."""
    filler = directory / "filler"
    f = open(filler, "wb", buffering=0)
    chunk = b"\0" * 65536
    try:
        while True:
            f.write(chunk)
    except OSError:
        pass
    try:
        f.close()
    except OSError:
        pass
    return filler


def post_task(account, url, **overrides):
    body = {"name": "disk", "url": url, "start_time": "2030-01-01T00:00:00Z",
            "end_time": "2031-01-01T00:00:00Z", "task_interval": 60, **overrides}
    return account.server.post("/tasks", token=account.token, json=body)


def test_a_full_disk_is_503_with_a_clear_message_and_service_resumes(fixture_server, small_disk,
                                                                       tmp_path):
    # Only the database is on the small disk; the log is not.
    srv = Fetchd(tmp_path, name="full", args=ENGINE_ARGS, db_path=small_disk / "fetchd.db")
    srv.start()
    try:
        account = register_and_login(srv)
        task = engine_task(account, fixture_server.url("/unique"), start_ms=now_ms() + 200,
                           task_interval=1, name="writer")
        wait_for(lambda: len(list_jobs(account, task["id"])) >= 2, timeout=10,
                 message="runs recorded before the disk fills")
        filler = fill(small_disk)
        # Writes now fail: the API says so plainly (503), and keeps answering.
        big = {"padding": "x" * 60_000}

        # (A tuple: a requests.Response is falsy when its status is an error.)
        def refused():
            r = post_task(account, fixture_server.url("/json/small.json"), parameters=big)
            return (r,) if r.status_code == 503 else None
        (r,) = wait_for(refused, timeout=15, interval=0.1, message="a 503 while the disk is full")
        assert "full" in r.json()["detail"], r.text
        assert srv.get("/healthz").status_code == 200
        time.sleep(2)  # runs keep coming due meanwhile; their records wait in the run writer
        assert srv.running, srv.tail()
        before = len(list_jobs(account, task["id"]))

        filler.unlink()
        wait_for(lambda: post_task(account, fixture_server.url("/json/small.json"),
                                   parameters=big).status_code == 201,
                 timeout=15, interval=0.2, message="writes accepted again once the disk frees")
        wait_for(lambda: len(list_jobs(account, task["id"])) >= before + 2, timeout=15,
                 message="runs recorded again")
        assert "the database or its disk is full" in srv.stderr_text()
        srv.stop()
    finally:
        srv.kill()
    assert sqlite_rows(srv.db_path, "PRAGMA integrity_check") == [("ok",)]
