"""storage (issue 5, scenario 6): what runs cost on disk, and whether the pruner bounds it.

- Bytes per run: M tasks every second fetch the ~67 KB feed, first the same document every
  time (fetchd stores it once per task: a run adds a job row), then a new document on every
  fetch (/nonce/: a run adds a job row and a document). After a warm-up (every task has stored
  its first document), the database's pages in use ((page_count − freelist_count) × page_size,
  read through a read-only connection while fetchd runs, WAL included) are read at the start
  and the end of a window; their growth over the runs recorded meanwhile is the cost of a run.
- Soak: tasks fetch the small feed with a new document every time, with
  --retention-jobs-per-task 10, for --soak seconds (600 by default, 70 with --quick). The
  pruner wakes every 60 s; bounded means the jobs table stays under tasks × (10 + a pruner
  period of runs) and the database file stops growing: over the second half of the soak it
  grows by less than 5 %. The files on disk (bench.db, -wal, -shm) are reported too; the
  WAL's file rises and falls between the times the WAL starts over (its size is bounded by the
  writer's own checkpoints, not by the pruner), so it is not judged."""

from __future__ import annotations

import sqlite3
import time

import engine
from feeds import feed_path, feed_size, start_feeds
from harness import Bench, BenchError, Row
from seeding import Spread, seed_sqlite

DESCRIPTION = "bytes on disk per run (same / new 67 KB document), and the database's bound " \
              "under a soak with the pruner (retention 10 jobs per task)"

TASKS, QUICK_TASKS = 100, 50
WINDOW_S, QUICK_WINDOW_S = 20, 5
WARMUP_S = 3
SOAK_TASKS, QUICK_SOAK_TASKS = 100, 50
RETENTION = 10  # jobs per task during the soak
PRUNER_PERIOD_S = 60  # fetchd's pruner wakes this often (not configurable)
GROWTH_LIMIT = 0.05  # the database file may grow this much over the soak's second half


def used_bytes(db) -> tuple[int, int, int]:
    """(bytes of the pages in use, jobs rows, data rows), as a reader sees them now."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        data = conn.execute("SELECT count(*) FROM data").fetchone()[0]
        return (pages - free) * size, jobs, data
    finally:
        conn.close()


def files_bytes(data_dir) -> int:
    return engine.db_size(data_dir)


def per_run(bench: Bench, nginx, changing: bool) -> Row:
    tasks = QUICK_TASKS if bench.quick else TASKS
    window = QUICK_WINDOW_S if bench.quick else WINDOW_S
    label = "new document every run" if changing else "same document every run"
    name = f"storage-{'changing' if changing else 'same'}"
    seed_sqlite(bench, name, tasks, nginx.url + feed_path("large", changing), Spread(1))
    fetchd = bench.start_fetchd(name)
    db = bench.fetchd_dir(name) / "bench.db"
    try:
        engine.wait_loaded(fetchd, tasks, 60)
        time.sleep(WARMUP_S)
        used0, jobs0, data0 = used_bytes(db)
        time.sleep(window)
        used1, jobs1, data1 = used_bytes(db)
        if fetchd.process.poll() is not None:
            raise BenchError(f"fetchd exited with {fetchd.process.returncode}")
    finally:
        bench.stop(fetchd.process)
    runs = jobs1 - jobs0
    if runs <= 0:
        raise BenchError(f"{name}: no runs recorded in {window} s")
    return Row(
        f"storage {feed_size('large') / 1024:.0f} KB, {label}",
        f"{(used1 - used0) / runs:,.0f} B/run ({runs:,} runs and {data1 - data0:,} new "
        f"documents in {window} s, {tasks} tasks every second)",
    )


def soak(bench: Bench, nginx) -> list[Row]:
    tasks = QUICK_SOAK_TASKS if bench.quick else SOAK_TASKS
    duration = bench.soak_s
    name = "storage-soak"
    seed_sqlite(bench, name, tasks, nginx.url + feed_path("small", True), Spread(1))
    fetchd = bench.start_fetchd(name, ("--retention-jobs-per-task", RETENTION))
    data_dir = bench.fetchd_dir(name)
    db = data_dir / "bench.db"
    step = 5.0 if duration < 300 else 10.0
    samples = []  # (seconds since start, files bytes, used bytes, jobs, data, db file bytes)
    try:
        started = time.time()
        engine.wait_loaded(fetchd, tasks, 60)
        while True:
            elapsed = time.time() - started
            used, jobs, data = used_bytes(db)
            samples.append((elapsed, files_bytes(data_dir), used, jobs, data,
                            db.stat().st_size))
            if elapsed >= duration:
                break
            if fetchd.process.poll() is not None:
                raise BenchError(f"fetchd exited with {fetchd.process.returncode}")
            time.sleep(min(step, max(0.0, duration - elapsed)))
    finally:
        bench.stop(fetchd.process)
    # A task runs once a second: between two pruner passes it adds a period's worth of jobs.
    bound = tasks * (RETENTION + PRUNER_PERIOD_S + 10)
    after_first_pass = [s for s in samples if s[0] > PRUNER_PERIOD_S + 5]
    peak_jobs = max((s[3] for s in after_first_pass), default=None)
    half = [s for s in samples if s[0] >= duration / 2]
    growth = (half[-1][5] - half[0][5]) / half[0][5] if len(half) > 1 and half[0][5] else None
    enough = duration >= 3 * PRUNER_PERIOD_S  # the second half holds pruner passes
    last = samples[-1]
    peak_files = max(s[1] for s in samples)
    jobs_ok = peak_jobs is not None and peak_jobs <= bound
    db_ok = growth is not None and growth <= GROWTH_LIMIT
    shown = sorted(set(range(0, len(samples), max(1, -(-len(samples) // 10)))) |
                   {len(samples) - 1})
    trace = ", ".join(f"{samples[i][0]:.0f} s: {samples[i][1] / 2**20:.1f}/"
                      f"{samples[i][5] / 2**20:.1f} MiB/{samples[i][3]:,} jobs" for i in shown)
    rows = [
        Row(
            f"storage soak {duration:.0f} s",
            f"database file {last[5] / 2**20:.1f} MiB at the end ("
            + (f"{growth * 100:+.1f} % over the second half" if growth is not None else "—")
            + f"), all files {last[1] / 2**20:.1f} MiB (peak {peak_files / 2**20:.1f} MiB); "
            f"jobs {last[3]:,} (peak after the first pruner pass "
            + (f"{peak_jobs:,}" if peak_jobs is not None else "— (no pass yet)")
            + f", bound {bound:,}); {tasks} tasks every second, new 1.5 KB document every run, "
            f"--retention-jobs-per-task {RETENTION}",
            target="bounded",
            passed=(jobs_ok and db_ok) if enough else (jobs_ok if peak_jobs else None),
        ),
        Row(f"storage soak {duration:.0f} s",
            f"trace (all files / database file / jobs): {trace}"),
    ]
    if not enough:
        rows[0].figure += (f" — a soak under {3 * PRUNER_PERIOD_S} s judges the jobs bound "
                           "only")
    return rows


def run(bench: Bench) -> list[Row]:
    nginx = start_feeds(bench)
    try:
        rows = [per_run(bench, nginx, changing=False), per_run(bench, nginx, changing=True)]
        rows += soak(bench, nginx)
    finally:
        bench.stop(nginx.process)
    return rows
