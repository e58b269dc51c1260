"""engine_throughput (issue 5, scenario 1): end-to-end runs/s of the embedded engine (scheduler,
libcurl fetcher, workers, batched SQLite writer) in `fetchd serve`. N tasks are all due at the
same instant, every `interval` s; while a burst drains, GET /metrics is sampled every 20 ms,
and the steady completion rate is the runs completed between 10 % and 90 % of the burst over
the time that took (a run counts once its record is committed). The first burst warms up
(connections opened, every task's first document stored) and is not counted when there are
more. The limit is wrk's raw rate on the very URL the tasks fetch, from the same nginx.

Two payloads: the 1.5 KB small.json, the same document on every fetch (stored once per task),
and the ~67 KB feed under /nonce/, a new document on every fetch (stored every time).

For the small feed, the floor beside it: bench/micro/fetch_floor keeps requests going through
fetchd's own fetch layer alone (CurlFetcher, each response checked and hashed as the fetch
thread does), at fetchd's default 512 in flight and at wrk's 64. No engine can run more than
its fetch layer fetches, so that ratio bounds the engine's."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import engine
from feeds import feed_path, feed_size, start_feeds
from harness import OTHER_LOAD_LIMIT, Bench, BenchError, Row, fmt_rate
from seeding import Burst, seed_sqlite

DESCRIPTION = "fetchd serve: N tasks due at once, steady runs/s vs wrk on the same URL (targets " \
              "≥ 0.5 small, ≥ 0.3 changing 67 KB)"


@dataclass
class Setting:
    label: str
    size: str  # feeds.FEEDS key
    changing: bool  # a new document on every fetch
    target: float  # minimum ratio to wrk (issue 5)
    tasks: int
    quick_tasks: int
    interval_s: int  # must exceed the time a burst takes to drain
    quick_interval_s: int
    floor: bool  # also measure the fetch layer alone on this URL


SETTINGS = (
    Setting("small", "small", False, 0.5, 20000, 2000, 8, 3, True),
    Setting("large_changing", "large", True, 0.3, 20000, 2000, 25, 4, False),
)
FLOOR_IN_FLIGHT = (512, engine.RAW_CONNECTIONS)  # fetchd's default fetch.concurrency, wrk's
BURSTS, QUICK_BURSTS = 3, 2
LEAD_S, QUICK_LEAD_S = 5, 3  # seconds from seeding to the first due time (fetchd starts)
LOAD_TIMEOUT = 120.0


def measure(bench: Bench, nginx, setting: Setting, limit: float, limit_text: str) -> list[Row]:
    tasks = setting.quick_tasks if bench.quick else setting.tasks
    interval = setting.quick_interval_s if bench.quick else setting.interval_s
    count = QUICK_BURSTS if bench.quick else BURSTS
    scenario = f"engine_{setting.label} N={tasks}"
    name = f"engine-{setting.label}"
    path = feed_path(setting.size, setting.changing)
    anchor_ms = int((time.time() + (QUICK_LEAD_S if bench.quick else LEAD_S)) * 1000)
    seed_sqlite(bench, name, tasks, nginx.url + path, Burst(interval, anchor_ms))
    fetchd = bench.start_fetchd(name)
    try:
        engine.wait_loaded(fetchd, tasks, LOAD_TIMEOUT)
        first = engine.next_due(anchor_ms, interval, time.time() + 0.5)
        dues = [first + i * interval for i in range(count)]
        fetchd_probe, nginx_probe = bench.load_probe(fetchd), bench.load_probe(nginx)

        def alive():
            if fetchd.process.poll() is not None:
                raise BenchError(f"fetchd exited with {fetchd.process.returncode}")

        run = engine.sample_bursts([fetchd.port], dues, interval, alive)
        other_cores, fetchd_cores = fetchd_probe.stop()
        _, nginx_cores = nginx_probe.stop()
    finally:
        bench.stop(fetchd.process)
    data_dir = bench.fetchd_dir(name)
    db = data_dir / "bench.db"
    skip_first = count > 1
    measured_from = dues[1] if skip_first else dues[0]
    lag = engine.sqlite_lag(db, int(measured_from * 1000), int((dues[-1] + interval) * 1000))
    size = engine.db_size(data_dir)
    jobs, documents, document_bytes = engine.sqlite_counts(db)
    per_job = (size - document_bytes) / jobs if jobs else 0.0

    rate = run.rate(skip_first)
    window = run.last.at - run.first.at
    finished = run.last.runs - run.first.runs
    skipped = (run.last.get("fetchd_skipped_runs_total", 0) or 0) - (
        run.first.get("fetchd_skipped_runs_total", 0) or 0)
    failed = run.last.bad_runs - run.first.bad_runs
    cpu_per_run = fetchd_cores * window / finished * 1e6 if finished else 0.0
    load = f" (other load: {other_cores:.2f} cores)" if other_cores > OTHER_LOAD_LIMIT else ""
    payload = (f"{feed_size(setting.size) / 1024:.1f} KB, "
               + ("a new document every fetch" if setting.changing else "the same document"))
    ratio = rate / limit if rate and limit else None
    rows = [
        Row(
            scenario,
            (f"{fmt_rate(rate)} runs/s" if rate else "no steady rate")
            + f" (steady part of {tasks:,} runs due at once, median of "
            f"{len(run.steady_rates(skip_first))} bursts; {payload}){load}",
            limit_text,
            ratio,
            target=f"≥ {setting.target}",
            passed=ratio is not None and ratio >= setting.target,
        ),
        Row(
            scenario,
            f"bursts: {engine.describe_bursts(run, skip_first)}; lag {lag.text()}; skipped "
            f"{skipped:.0f}; failed {failed:.0f}; fetchd {fetchd_cores:.2f} cores "
            f"({cpu_per_run:.0f} µs CPU/run), nginx {nginx_cores:.2f} cores; DB "
            f"{size / 2**20:.1f} MiB after {jobs:,} jobs and {documents:,} documents "
            f"({document_bytes / 2**20:.1f} MiB): {per_job:.0f} B/job beside them",
        ),
    ]
    if failed or skipped:
        rows.append(Row(scenario, f"runs not succeeded: failed {failed:.0f}, skipped "
                                  f"{skipped:.0f} (a burst did not drain within {interval} s?)",
                        ok=failed == 0))
    return rows


def floor_rows(bench: Bench, nginx, setting: Setting, limit: float, limit_text: str) -> list[Row]:
    scenario = f"engine_{setting.label} fetch layer alone"
    rows = []
    for in_flight in FLOOR_IN_FLIGHT:
        floor = engine.fetch_floor(bench, nginx, feed_path(setting.size, setting.changing),
                                   in_flight)
        if floor is None:
            return [Row(scenario, "not measured: bench/micro/fetch_floor is not built beside "
                                  "fetchd (`make bench` builds it)")]
        rows.append(Row(
            scenario,
            f"{fmt_rate(floor.rate)} fetches/s at {in_flight} in flight (fetch_floor: "
            f"CurlFetcher on one thread, each response checked and hashed, nothing stored); "
            f"{floor.cpu_us:.1f} µs CPU/fetch, nginx {floor.nginx_us:.1f} µs/request"
            + (f" (other load: {floor.other_cores:.2f} cores)"
               if floor.other_cores > OTHER_LOAD_LIMIT else ""),
            limit_text,
            floor.rate / limit if limit else None,
        ))
    return rows


def run(bench: Bench) -> list[Row]:
    nginx = start_feeds(bench)
    rows: list[Row] = []
    for setting in SETTINGS:
        try:
            raw, limit_text = engine.raw_limit(
                bench, nginx, feed_path(setting.size, setting.changing), f"raw-{setting.label}")
            rows += measure(bench, nginx, setting, raw.rate, limit_text)
            if setting.floor:
                rows += floor_rows(bench, nginx, setting, raw.rate, limit_text)
        except BenchError as e:  # the other setting still says something
            print(f"bench: engine_{setting.label} failed: {e}", file=sys.stderr, flush=True)
            rows.append(Row(f"engine_{setting.label}", "failed (see the message above)",
                            ok=False, target=f"≥ {setting.target}", passed=False))
    bench.stop(nginx.process)
    return rows
