"""scaleout_throughput (issue 5, scenario 2): scenario 1's small-feed measurement with the
scale-out roles. bench/run starts PostgreSQL (initdb in its temp dir, fsync off: see
bench/services.py) and Redis (no persistence), seeds N tasks all due at once every `interval`
s straight into PostgreSQL, then runs one `fetchd scheduler` and one `fetchd worker`, and
later a second worker beside the first. Runs/s is the steady completion rate of each burst,
summed over the workers' GET /metrics; the limit is wrk's raw rate on the same URL."""

from __future__ import annotations

import time

import engine
from feeds import feed_path, start_feeds
from harness import OTHER_LOAD_LIMIT, Bench, BenchError, Row, fmt_rate
from seeding import Burst, seed_postgres
from services import start_postgres, start_redis

DESCRIPTION = "PostgreSQL + Redis, 1 scheduler, 1 then 2 workers: steady runs/s vs wrk " \
              "(target ≥ 0.3 with one worker)"

TARGET = 0.3  # issue 5, with one worker
TASKS, QUICK_TASKS = 20000, 2000
INTERVAL_S, QUICK_INTERVAL_S = 10, 4
BURSTS, QUICK_BURSTS = 3, 2
LEAD_S = 6  # seconds from seeding to the first due time
LOAD_TIMEOUT = 120.0


def lag_postgres(pg, w0_ms: int, w1_ms: int) -> engine.Lag:
    out = pg.psql(
        f"SELECT count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY lag), "
        f"percentile_disc(0.99) WITHIN GROUP (ORDER BY lag), max(lag) FROM "
        f"(SELECT started_at - scheduled_at AS lag FROM jobs WHERE scheduled_at >= {w0_ms} "
        f"AND scheduled_at < {w1_ms} AND status <> 'skipped' AND started_at IS NOT NULL) l")
    count, p50, p99, top = (out.split("|") + ["", "", "", ""])[:4]
    as_int = lambda v: int(v) if v else None  # noqa: E731
    return engine.Lag(int(count or 0), as_int(p50), as_int(p99), as_int(top))


def run(bench: Bench) -> list[Row]:
    tasks = QUICK_TASKS if bench.quick else TASKS
    interval = QUICK_INTERVAL_S if bench.quick else INTERVAL_S
    count = QUICK_BURSTS if bench.quick else BURSTS
    nginx = start_feeds(bench, sizes=("small",))
    path = feed_path("small", False)
    raw, limit_text = engine.raw_limit(bench, nginx, path, "raw-scaleout")

    pg = start_postgres(bench)
    redis = start_redis(bench)
    name = "scaleout"
    anchor_ms = int((time.time() + LEAD_S) * 1000)
    seed_postgres(bench, pg, name, tasks, nginx.url + path, Burst(interval, anchor_ms))
    common = dict(db=pg.url, broker=redis.url)
    scheduler = bench.start_fetchd("scheduler", ("--no-migrate",), role="scheduler", **common)
    workers = [bench.start_fetchd("worker-1", ("--no-migrate",), role="worker", **common)]
    engine.wait_loaded(scheduler, tasks, LOAD_TIMEOUT)

    def alive():
        for server in (scheduler, *workers):
            if server.process.poll() is not None:
                raise BenchError(f"{server.name} exited with {server.process.returncode}")

    rows: list[Row] = []
    for n_workers in (1, 2):
        if n_workers == 2:
            workers.append(bench.start_fetchd("worker-2", ("--no-migrate",), role="worker",
                                              **common))
        first = engine.next_due(anchor_ms, interval, time.time() + 0.5)
        dues = [first + i * interval for i in range(count)]
        probes = [bench.load_probe(w) for w in workers]
        other_probe = bench.load_probe(scheduler)
        pg_probe, redis_probe, nginx_probe = (bench.load_probe(s) for s in (pg, redis, nginx))
        burst_run = engine.sample_bursts([w.port for w in workers], dues, interval, alive)
        worker_cores = sum(p.stop()[1] for p in probes)
        other_cores, scheduler_cores = other_probe.stop()
        pg_cores, redis_cores, nginx_cores = (p.stop()[1]
                                              for p in (pg_probe, redis_probe, nginx_probe))
        lag = lag_postgres(pg, int(dues[1 if count > 1 else 0] * 1000),
                           int((dues[-1] + interval) * 1000))
        rate = burst_run.rate(skip_first=count > 1)
        window = burst_run.last.at - burst_run.first.at
        finished = burst_run.last.runs - burst_run.first.runs
        failed = burst_run.last.bad_runs - burst_run.first.bad_runs
        per_run = lambda cores: cores * window / finished * 1e6 if finished else 0.0  # noqa: E731
        all_cores = worker_cores + scheduler_cores + pg_cores + redis_cores + nginx_cores
        ratio = rate / raw.rate if rate and raw.rate else None
        load = f" (other load: {other_cores:.2f} cores)" if other_cores > OTHER_LOAD_LIMIT else ""
        scenario = f"scaleout {n_workers} worker{'s' if n_workers > 1 else ''} N={tasks}"
        rows += [
            Row(
                scenario,
                (f"{fmt_rate(rate)} runs/s" if rate else "no steady rate")
                + f" (steady part of {tasks:,} runs due at once, median of "
                f"{len(burst_run.steady_rates(count > 1))} bursts; 1.5 KB){load}",
                limit_text,
                ratio,
                target=f"≥ {TARGET}" if n_workers == 1 else "—",
                passed=(ratio is not None and ratio >= TARGET) if n_workers == 1 else None,
            ),
            Row(
                scenario,
                f"bursts: {engine.describe_bursts(burst_run, count > 1)}; lag {lag.text()}; "
                f"failed {failed:.0f}; workers {worker_cores:.2f} cores "
                f"({per_run(worker_cores):.0f} µs CPU/run), scheduler {scheduler_cores:.2f} "
                f"cores, PostgreSQL {pg_cores:.2f} cores ({per_run(pg_cores):.0f} µs/run), "
                f"Redis {redis_cores:.2f} cores ({per_run(redis_cores):.0f} µs/run), nginx "
                f"{nginx_cores:.2f} cores ({per_run(nginx_cores):.0f} µs/run); all of them "
                f"{per_run(all_cores):.0f} µs CPU/run",
            ),
        ]
        if failed:
            rows.append(Row(scenario, f"{failed:.0f} runs failed", ok=False))
    for server in (*workers, scheduler):
        bench.stop(server.process)
    bench.stop(redis.process)
    bench.stop(pg.process)
    bench.stop(nginx.process)
    return rows
