"""engine_throughput: end-to-end runs/s of the embedded engine (scheduler, libcurl fetcher,
workers, batched SQLite writer) in `fetchd serve`, fetching feeds from nginx on loopback, next to
what wrk gets from the same nginx on the same files. Tasks come from `fetchd db seed` (interval
2 s), so the offered rate is N / 2 s: below that cap the result is whether fetchd keeps up
(runs/s = offered, no skipped runs, small lag), not how far it could go."""

from __future__ import annotations

import http.client
import re
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness import (
    HTTP_TIMEOUT,
    OTHER_LOAD_LIMIT,
    REPO_DIR,
    Bench,
    BenchError,
    Row,
    Server,
    fmt_rate,
    load_note,
)

DESCRIPTION = "fetchd serve: completed runs/s (seeded tasks, nginx feeds) vs wrk on the same feeds"

# The seed's three feeds (`fetchd db seed` gives task i the feed i % 3) and its interval.
FEEDS = ("amazingexpo2020.json", "salesmeeting2020.json", "ceosummersummit2020.json")
INTERVAL_S = 2
DEMO_DIR = REPO_DIR / "data" / "demo"
FIXTURES_DIR = REPO_DIR.parent / "shared" / "fixtures"

RAW_CONNECTIONS = 64
SEED_TIMEOUT = 600.0  # seconds for `fetchd db seed` (one transaction per task)
FLOW_TIMEOUT = 120.0  # seconds for the first N runs (the catch-up burst) to complete

# Settings: (payload, task count, task count with --quick).
SETTINGS = (("small", 2000, 200), ("small", 20000, 2000), ("large", 2000, 200))

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class Sample:
    """What one GET /metrics said about runs."""

    runs: dict[str, float]  # fetchd_runs_total by status
    skipped: float
    lag_buckets: list[tuple[float, float]]  # (le, cumulative count), ascending, +Inf last

    @property
    def finished(self) -> float:
        return sum(self.runs.values())

    @property
    def bad(self) -> float:
        return sum(v for status, v in self.runs.items() if status != "succeeded")


def scrape(server: Server) -> Sample:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        text = response.read().decode()
        if response.status != 200:
            raise BenchError(f"GET /metrics: {response.status}: {text[:300]}")
    except OSError as e:
        raise BenchError(f"GET /metrics: {e}") from e
    finally:
        conn.close()
    runs: dict[str, float] = {}
    skipped = None
    buckets = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, labels, value = match.group(1), dict(_LABEL.findall(match.group(2) or "")), match[3]
        if name == "fetchd_runs_total":
            runs[labels.get("status", "")] = float(value)
        elif name == "fetchd_skipped_runs_total":
            skipped = float(value)
        elif name == "fetchd_schedule_lag_seconds_bucket":
            buckets.append((float(labels["le"]), float(value)))  # "+Inf" parses as inf
    if not runs or skipped is None or not buckets:
        raise BenchError("GET /metrics lacks fetchd_runs_total, fetchd_skipped_runs_total or "
                         "fetchd_schedule_lag_seconds")
    return Sample(runs, skipped, sorted(buckets))


def lag_quantile(before: Sample, after: Sample, q: float) -> str:
    """The q-quantile of the lag observed between two samples, interpolated linearly within
    its histogram bucket (as Prometheus' histogram_quantile does)."""
    deltas = [(le, a - b) for (le, a), (_, b) in zip(after.lag_buckets, before.lag_buckets)]
    total = deltas[-1][1]
    if total <= 0:
        return "—"
    rank = q * total
    lower, below = 0.0, 0.0
    for le, count in deltas:
        if count >= rank:
            if le == float("inf"):
                return f"> {lower:g} s"
            share = (rank - below) / (count - below) if count > below else 1.0
            return f"{(lower + (le - lower) * share) * 1000:.1f} ms"
        lower, below = le, count
    return "—"


def db_size(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.glob("bench.db*") if p.is_file())


def db_counts(data_dir: Path) -> tuple[int, int, int]:
    """(jobs rows, data rows, bytes of the documents), read once fetchd has stopped."""
    conn = sqlite3.connect(f"file:{data_dir / 'bench.db'}?mode=ro", uri=True, timeout=10)
    try:
        jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        data, body_bytes = conn.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM data").fetchone()
        return jobs, data, body_bytes
    finally:
        conn.close()


def wait_for_flow(fetchd: Server, tasks: int, deadline: float) -> Sample:
    """Waits until `tasks` runs have finished (the catch-up run of every task at start)."""
    while True:
        if fetchd.process.poll() is not None:
            raise BenchError(f"fetchd exited with {fetchd.process.returncode}")
        sample = scrape(fetchd)
        if sample.bad:
            raise BenchError(f"runs failed while warming up: {sample.runs}")
        if sample.finished >= tasks:
            return sample
        if time.monotonic() > deadline:
            raise BenchError(f"only {sample.finished:.0f} of {tasks} runs finished in time")
        time.sleep(0.2)


def measure(bench: Bench, nginx: Server, payload: str, tasks: int, limit: float,
            limit_text: str) -> list[Row]:
    scenario = f"engine_{payload} N={tasks}"
    name = f"engine-{payload}-{tasks}"
    bench.run_fetchd(
        ["db", "seed", "--db", bench.fetchd_db(name), "--count", tasks,
         "--base-url", f"{nginx.url}/{payload}/"],
        name, SEED_TIMEOUT,
    )  # fmt: skip
    fetchd = bench.start_fetchd(name, extra_args=("--fetch-allow-private",))
    try:
        wait_for_flow(fetchd, tasks, time.monotonic() + FLOW_TIMEOUT)
        # The start's catch-up burst is at any phase of the schedule; past it, every task is
        # due at the seed's common anchor + k * 2 s. One or two periods let that settle.
        time.sleep(INTERVAL_S * (1 if bench.quick else 2))
        window = bench.duration_s  # a whole number of periods: the increment of a periodic
        # counter over it does not depend on where the window starts.
        fetchd_probe, nginx_probe = bench.load_probe(fetchd), bench.load_probe(nginx)
        before, start = scrape(fetchd), time.monotonic()
        time.sleep(window)
        after, end = scrape(fetchd), time.monotonic()
        other_cores, fetchd_cores = fetchd_probe.stop()
        _, nginx_cores = nginx_probe.stop()
    finally:
        bench.stop(fetchd.process)
    data_dir = bench.fetchd_dir(name)
    size = db_size(data_dir)
    jobs, documents, document_bytes = db_counts(data_dir)
    # What the jobs (and the tasks, and the indexes) take, the documents aside.
    per_job = (size - document_bytes) / jobs if jobs else 0.0

    elapsed = end - start
    finished = after.finished - before.finished
    rate = finished / elapsed
    offered = tasks / INTERVAL_S
    skipped = after.skipped - before.skipped
    p50, p99 = lag_quantile(before, after, 0.5), lag_quantile(before, after, 0.99)
    kept_up = rate >= 0.95 * offered and skipped == 0
    verdict = "kept up" if kept_up else "saturated: below the offered rate"
    load = f" (other load: {other_cores:.2f} cores)" if other_cores > OTHER_LOAD_LIMIT else ""
    cpu_per_run = fetchd_cores * elapsed / finished * 1e6 if finished else 0.0
    rows = [
        Row(
            scenario,
            f"{fmt_rate(rate)} runs/s over {elapsed:.0f} s ({fmt_rate(offered)}/s offered: "
            f"{verdict}){load}",
            limit_text,
            rate / limit if limit else None,
        ),
        Row(
            scenario,
            f"lag p50 {p50}, p99 {p99}; skipped {skipped:.0f}; failed {after.bad:.0f}; "
            f"fetchd {fetchd_cores:.2f} cores ({cpu_per_run:.0f} µs CPU/run), nginx "
            f"{nginx_cores:.2f} cores; DB {size / 2**20:.1f} MiB after {jobs:,} jobs and "
            f"{documents:,} documents ({document_bytes / 2**20:.1f} MiB): "
            f"{per_job:.0f} B/job beside them",
        ),
    ]
    if after.bad:
        rows.append(Row(scenario, f"runs not succeeded: {after.runs}", ok=False))
    return rows


def run(bench: Bench) -> list[Row]:
    small_path = FIXTURES_DIR / "small.json"
    try:
        small = small_path.read_bytes()
        large = {feed: (DEMO_DIR / feed).read_bytes() for feed in FEEDS}
    except OSError as e:
        raise BenchError(f"feed files: {e}") from e
    # Each task fetches <base>/<its feed>: under small/ every feed is a copy of small.json, so
    # that every run moves the same 1.5 KB; under large/ they are the real demo feeds.
    files = {f"small/{feed}": small for feed in FEEDS}
    files.update({f"large/{feed}": body for feed, body in large.items()})
    nginx = bench.start_nginx(files, name="nginx-feeds")

    rows: list[Row] = []
    limits = {}
    for payload in ("small", "large"):
        paths = bench.write(f"engine-{payload}-paths.txt",
                            "".join(f"/{payload}/{feed}\n" for feed in FEEDS))
        raw = bench.wrk(f"engine-{payload}-nginx", nginx.url, "paths.lua", [paths],
                        connections=RAW_CONNECTIONS)
        sizes = sorted(len(files[f"{payload}/{feed}"]) for feed in FEEDS)
        size = (f"{sizes[0] / 1024:.1f} KB" if sizes[0] == sizes[-1]
                else f"{sizes[0] / 1024:.0f}–{sizes[-1] / 1024:.0f} KB")
        limits[payload] = (
            raw.rate,
            f"nginx, wrk -t{bench.threads} -c{RAW_CONNECTIONS} -d{bench.duration_s}s, the same "
            f"{size} feeds: {fmt_rate(raw.rate)} req/s{load_note(raw)}",
        )
        if raw.failed:
            rows.append(Row(f"engine_{payload}", f"nginx: {raw.failed} failed requests",
                            ok=False))

    for payload, tasks, quick_tasks in SETTINGS:
        count = quick_tasks if bench.quick else tasks
        try:
            rows += measure(bench, nginx, payload, count, *limits[payload])
        except BenchError as e:  # the other settings still say something
            print(f"bench: engine_{payload} N={count} failed: {e}", file=sys.stderr, flush=True)
            rows.append(Row(f"engine_{payload} N={count}", "failed (see the message above)",
                            ok=False))
    bench.stop(nginx.process)
    return rows
