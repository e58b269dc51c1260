"""What the execution-engine scenarios share: the raw limit (wrk on the very URL the tasks
fetch), waiting for fetchd's scheduler to hold every task, sampling bursts of runs, and reading
what the jobs table says about lag, missed and skipped runs afterwards."""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import metrics
from harness import Bench, BenchError, Server, WrkResult, fmt_rate, load_note, tail

RAW_CONNECTIONS = 64  # wrk's connections for the raw limit (fetchd keeps up to 512 fetches)


def raw_limit(bench: Bench, nginx: Server, path: str, label: str) -> tuple[WrkResult, str]:
    """wrk on nginx's `path` (round robin over one path: bench/wrk/paths.lua): the most
    requests/s this machine serves of that URL, and a description for the limit column."""
    paths = bench.write(f"paths-{label}.txt", path + "\n")
    result = bench.wrk(label, nginx.url, "paths.lua", [paths], connections=RAW_CONNECTIONS)
    if result.failed:
        raise BenchError(f"wrk on {path}: {result.failed} failed requests")
    text = (f"wrk -t{bench.threads} -c{RAW_CONNECTIONS} -d{bench.duration_s}s on {path}: "
            f"{fmt_rate(result.rate)} req/s{load_note(result)}")
    return result, text


@dataclass
class Floor:
    """What build/bench/micro/fetch_floor measured: fetchd's fetch layer alone."""
    in_flight: int
    rate: float  # completed fetches/s over the measured window
    cpu_us: float  # fetch_floor's CPU per fetch (its fetch thread, mostly)
    nginx_us: float  # nginx's CPU per request meanwhile
    other_cores: float  # other people's load meanwhile


def fetch_floor(bench: Bench, nginx: Server, path: str, in_flight: int) -> Floor | None:
    """bench/micro/fetch_floor on nginx's `path` for as long as wrk runs: `in_flight` requests
    kept going through fetchd's CurlFetcher, each response classified as the fetch thread does
    a small body (JSON check, record count, SHA-256); no scheduler, queue or store. None when
    the tool was not built beside the fetchd binary (`make bench` builds it)."""
    tool = bench.fetchd_bin.parent / "bench" / "micro" / "fetch_floor"
    if not tool.exists():
        return None
    log = bench.tmp / f"{bench.unique(f'fetch-floor-{in_flight}')}.log"
    warmup = 0.5 if bench.quick else 1.0
    argv = [tool, nginx.url + path, "--in-flight", in_flight, "--classify",
            "--seconds", bench.duration_s, "--warmup", warmup]  # fmt: skip
    process, other_cores, nginx_cores = bench.run_measured(
        argv, log, bench.duration_s + warmup + 30, "fetch_floor", nginx)
    lines = log.read_text(errors="replace").strip().splitlines()
    if process.returncode != 0 or not lines:
        raise BenchError(f"fetch_floor exited with {process.returncode}:\n{tail(log)}")
    data = json.loads(lines[-1])
    rate = data["rate"]
    return Floor(in_flight, rate, data["cpu_seconds"] / max(data["completed"], 1) * 1e6,
                 nginx_cores / rate * 1e6 if rate else 0.0, other_cores)


def wait_loaded(server: Server, tasks: int, timeout: float, poll: float = 0.05) -> float:
    """Waits until fetchd's scheduler holds `tasks` tasks (gauge fetchd_scheduled_tasks);
    the time.time() when it did. Each GET /metrics also counts the suspended tasks in the
    store (a scan of the tasks table): with many tasks, poll less often."""
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited with {server.process.returncode}")
        try:
            sample = metrics.scrape(server.port)
            if (sample.get("fetchd_scheduled_tasks") or 0) >= tasks:
                return time.time()
        except BenchError:
            pass  # not answering yet
        if time.monotonic() > deadline:
            raise BenchError(f"{server.name}: the scheduler did not load {tasks} tasks within "
                             f"{timeout:.0f} s")
        time.sleep(poll)


def next_due(anchor_ms: int, interval_s: int, after: float) -> float:
    """The first due time anchor + k * interval at or after `after` (unix seconds)."""
    period = interval_s * 1000
    after_ms = int(after * 1000)
    k = max(0, -(-(after_ms - anchor_ms) // period))
    return (anchor_ms + k * period) / 1000


@dataclass
class BurstRun:
    bursts: list  # metrics.Burst, one per due time
    first: metrics.Sample
    last: metrics.Sample
    peak_queue: float  # most runs waiting in the broker at once
    peak_fetching: float  # most fetches in flight at once

    def steady_rates(self, skip_first: bool) -> list[float]:
        measured = self.bursts[1:] if skip_first and len(self.bursts) > 1 else self.bursts
        return [b.steady_rate for b in measured if b.steady_rate]

    def rate(self, skip_first: bool) -> float | None:
        rates = self.steady_rates(skip_first)
        return statistics.median(rates) if rates else None


def sample_bursts(ports: list[int], dues: list[float], interval_s: int,
                  alive=None) -> BurstRun:
    """Samples the run counters of `ports` (summed) from just before the first due time until
    the last burst's period is over, and splits them into bursts."""
    sampler = metrics.Sampler(ports)
    wait = dues[0] - 0.3 - time.time()
    if wait > 0:
        time.sleep(wait)
    sampler.sample_until(dues[-1] + interval_s - 0.05, alive)
    if sampler.first is None or len(sampler.points) < 3:
        raise BenchError("too few metric samples")
    return BurstRun(metrics.bursts(sampler.points, dues, interval_s), sampler.first,
                    sampler.last, sampler.peak_queue, sampler.peak_fetching)


def describe_bursts(run: BurstRun, skip_first: bool) -> str:
    parts = []
    for i, b in enumerate(run.bursts):
        rate = f"{fmt_rate(b.steady_rate)}/s" if b.steady_rate else "—"
        drain = f"{b.drain_s:.2f} s" if b.drain_s is not None else "—"
        mark = " (warm-up, not counted)" if skip_first and i == 0 and len(run.bursts) > 1 else ""
        parts.append(f"{b.runs:,.0f} runs, {rate}, drained in {drain}{mark}")
    return ("; ".join(parts) + f"; peaks: {run.peak_queue:,.0f} runs queued, "
            f"{run.peak_fetching:,.0f} fetches in flight")


@dataclass
class Lag:
    count: int
    p50: int | None
    p99: int | None
    max: int | None

    def text(self) -> str:
        if not self.count:
            return "no runs"
        return f"p50 {self.p50} ms, p99 {self.p99} ms, max {self.max} ms ({self.count:,} runs)"


def lag_of(values: list[int]) -> Lag:
    values.sort()
    return Lag(len(values), metrics.percentile(values, 0.5), metrics.percentile(values, 0.99),
               values[-1] if values else None)


def sqlite_ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)


def sqlite_lag(db: Path, w0_ms: int, w1_ms: int) -> Lag:
    """Lag (fetch start − due time, ms) of the runs due in [w0, w1) that were fetched."""
    conn = sqlite_ro(db)
    try:
        rows = conn.execute(
            "SELECT started_at - scheduled_at FROM jobs WHERE scheduled_at >= ? AND "
            "scheduled_at < ? AND status <> 'skipped' AND started_at IS NOT NULL",
            (w0_ms, w1_ms)).fetchall()
    finally:
        conn.close()
    return lag_of([r[0] for r in rows])


def db_size(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.glob("bench.db*") if p.is_file())


def sqlite_counts(db: Path) -> tuple[int, int, int]:
    """(jobs rows, data rows, bytes of the documents)."""
    conn = sqlite_ro(db)
    try:
        jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        data, body_bytes = conn.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM data").fetchone()
        return jobs, data, body_bytes
    finally:
        conn.close()
