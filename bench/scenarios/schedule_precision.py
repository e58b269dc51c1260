"""schedule_precision (issue 5, scenario 3): how close to their due times runs start when many
tasks with different intervals are active. N tasks are written straight into SQLite with
intervals spread evenly over 1–60 s and anchors spread over each interval (so due times fall
at every millisecond, about N × 0.078 runs/s in all), each fetching the small feed from nginx;
`fetchd serve` runs them for the window. Afterwards the jobs table says everything, exactly:
lag = started_at − scheduled_at of every run due in the window (p50, p99, max), missed = due
times in the window with no job at all, skipped = due times recorded as skipped."""

from __future__ import annotations

import sqlite3
import sys
import time
from dataclasses import dataclass

import engine
from feeds import feed_path, start_feeds
from harness import OTHER_LOAD_LIMIT, Bench, BenchError, Row, fmt_rate
from seeding import Spread, expected_dues_sql, seed_sqlite

DESCRIPTION = "100 000 (then 1 000 000) tasks, intervals 1–60 s: lag p50/p99/max and missed " \
              "runs from the jobs table (targets p99 ≤ 5 ms, max ≤ 50 ms, none missed)"


@dataclass
class Setting:
    tasks: int
    window_s: int
    p99_ms: float  # targets (issue 5)
    max_ms: float | None  # None: no target for max and missed runs
    max_interval_s: int = 60

    @property
    def scenario(self) -> str:
        spread = "" if self.max_interval_s == 60 else f", intervals 1–{self.max_interval_s} s"
        return f"precision N={self.tasks:,}{spread}"


# Issue 5 asks for 100 000 tasks for 2 minutes, then 1 000 000. With intervals over 1–60 s, a
# million tasks offer about 78 000 runs/s, more than this machine fetches at all; the third
# setting (intervals over 1–600 s) offers about 11 600 runs/s, near the 100 000 tasks' rate, to
# see what ten times the tasks cost.
SETTINGS = (
    Setting(100_000, 120, 5, 50),
    Setting(1_000_000, 30, 20, None),
    Setting(1_000_000, 30, 20, None, max_interval_s=600),
)
QUICK = Setting(5_000, 10, 5, 50)
WARMUP_S, QUICK_WARMUP_S = 5, 2  # after the scheduler loaded, before the window opens
MARGIN_S = 2  # after the window closes, before fetchd is stopped (runs due last finish)
LOAD_TIMEOUT = 300.0


def analyse(db, w0: int, w1: int) -> dict:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
    try:
        expected, offered = conn.execute(
            f"SELECT sum({expected_dues_sql(w0, w1)}), sum(1.0 / task_interval) FROM tasks"
        ).fetchone()
        # Jobs at due times only (a retry or catch-up run is at another time).
        ran, skipped, failed = conn.execute(
            """SELECT count(DISTINCT j.task_id || ':' || j.scheduled_at),
                      sum(j.status = 'skipped'), sum(j.status IN ('failed', 'timed_out'))
               FROM jobs j JOIN tasks t ON t.id = j.task_id
               WHERE j.scheduled_at >= ? AND j.scheduled_at < ?
                 AND (j.scheduled_at - t.start_time) % (t.task_interval * 1000) = 0""",
            (w0, w1)).fetchone()
        other = conn.execute(
            """SELECT count(*) FROM jobs j JOIN tasks t ON t.id = j.task_id
               WHERE j.scheduled_at >= ? AND j.scheduled_at < ?
                 AND (j.scheduled_at - t.start_time) % (t.task_interval * 1000) <> 0""",
            (w0, w1)).fetchone()[0]
    finally:
        conn.close()
    return dict(expected=expected or 0, ran=ran or 0, skipped=skipped or 0, failed=failed or 0,
                other=other, offered=offered or 0.0)


def measure(bench: Bench, nginx, setting: Setting) -> list[Row]:
    tasks = setting.tasks
    scenario = setting.scenario
    name = bench.unique(f"precision-{tasks}")
    seed_sqlite(bench, name, tasks, nginx.url + feed_path("small", False),
                Spread(setting.max_interval_s))
    fetchd = bench.start_fetchd(name)
    try:
        loaded = engine.wait_loaded(fetchd, tasks, LOAD_TIMEOUT, poll=0.5)
        w0 = loaded + (QUICK_WARMUP_S if bench.quick else WARMUP_S)
        w1 = w0 + setting.window_s
        time.sleep(max(0.0, w0 - time.time()))
        probe = bench.load_probe(fetchd)
        time.sleep(max(0.0, w1 - time.time()))
        other_cores, fetchd_cores = probe.stop()
        time.sleep(MARGIN_S)
        if fetchd.process.poll() is not None:
            raise BenchError(f"fetchd exited with {fetchd.process.returncode}")
    finally:
        bench.stop(fetchd.process, timeout=30)
    db = bench.fetchd_dir(name) / "bench.db"
    w0_ms, w1_ms = int(w0 * 1000), int(w1 * 1000)
    lag = engine.sqlite_lag(db, w0_ms, w1_ms)
    counts = analyse(db, w0_ms, w1_ms)
    missed = counts["expected"] - counts["ran"]
    not_run = missed + counts["skipped"]
    load = f" (other load: {other_cores:.2f} cores)" if other_cores > OTHER_LOAD_LIMIT else ""
    window = f"{setting.window_s} s window"
    # Due times that were not run have no lag to count; past 1 % of them p99 is not known,
    # past none of them max is not (the runs that did start would flatter both).
    expected = counts["expected"] or 1
    p99_known = lag.p99 is not None and not_run <= 0.01 * expected
    max_known = lag.max is not None and not_run == 0
    unknown = f"unknown: {not_run:,} of {counts['expected']:,} due times not run"
    p99 = f"{lag.p99} ms" if p99_known else f"— ({unknown})"
    top = f"{lag.max} ms" if max_known else f"— ({unknown}; {lag.max} ms among the runs)"
    p50 = f"{lag.p50} ms" if lag.p50 is not None else "—"
    rows = [
        Row(scenario, f"lag p99 {p99} ({window}, {lag.count:,} runs){load}",
            target=f"≤ {setting.p99_ms:g} ms",
            passed=p99_known and lag.p99 <= setting.p99_ms),
    ]
    if setting.max_ms is not None:
        rows.append(Row(scenario, f"lag max {top}, p50 {p50}", target=f"≤ {setting.max_ms:g} ms",
                        passed=max_known and lag.max <= setting.max_ms))
    else:
        rows.append(Row(scenario, f"lag max {top}, p50 {p50}"))
    rows.append(Row(
        scenario,
        f"missed {missed:,} of {counts['expected']:,} due times (no job), skipped "
        f"{counts['skipped']:,}, failed {counts['failed']:,}, {counts['other']:,} runs at other "
        f"times (retries, catch-up); offered "
        f"{fmt_rate(counts['offered'])} runs/s; fetchd {fetchd_cores:.2f} cores",
        target="none missed" if setting.max_ms is not None else "—",
        passed=(not_run == 0) if setting.max_ms is not None else None,
    ))
    return rows


def run(bench: Bench) -> list[Row]:
    settings = [QUICK] if bench.quick else list(SETTINGS)
    nginx = start_feeds(bench, sizes=("small",))
    rows: list[Row] = []
    try:
        for setting in settings:
            try:
                rows += measure(bench, nginx, setting)
            except BenchError as e:  # the other setting still says something
                print(f"bench: {setting.scenario} failed: {e}", file=sys.stderr, flush=True)
                rows.append(Row(setting.scenario, "failed (see the message above)", ok=False,
                                target=f"p99 ≤ {setting.p99_ms:g} ms", passed=False))
    finally:
        bench.stop(nginx.process)
    return rows
