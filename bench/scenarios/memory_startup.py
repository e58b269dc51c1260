"""memory_startup (issue 5, scenario 5): what a task costs in memory, and how long a restart
takes, with many tasks. N active tasks (start a day ago, interval one day, next due in two
hours: all in the scheduler's heap, none running) are written straight into SQLite.

- RSS per task: `fetchd serve`'s resident set once its scheduler holds the N tasks, minus that
  of the same process on a store without tasks, divided by N.
- Start-up: from spawning `fetchd serve` until it serves: /readyz answers 200 *and* the
  scheduler has loaded every task (its log line "scheduler loaded N tasks"; fetchd logs at
  info here). Measured on two starts in a row, the slower counts."""

from __future__ import annotations

import http.client
import re
import time

import metrics
from harness import Bench, BenchError, Row, Server, rss_bytes, tail
from seeding import DAY_MS, Burst, seed_sqlite

DESCRIPTION = "1 000 000 active tasks: RSS per task beyond the empty process (≤ 1 KiB) and " \
              "time from start to serving (≤ 3 s)"

TASKS, QUICK_TASKS = 1_000_000, 20_000
RSS_TARGET = 1024  # bytes per task
START_TARGET = 3.0  # seconds
STARTS = 2
SETTLE_S = 2.0  # after loading, before RSS is read
START_TIMEOUT = 120.0
_LOADED = re.compile(r"scheduler loaded (\d+) tasks")


def ready(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/readyz")
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except OSError:
        return False


def start_and_time(bench: Bench, name: str) -> tuple[Server, float, int]:
    """Spawns `fetchd serve` on `name`'s store; (server, seconds until serving, tasks loaded)."""
    started = time.monotonic()
    server = bench.spawn_fetchd(name, log_level="info")
    ready_at = loaded_at = None
    loaded = -1
    while ready_at is None or loaded_at is None:
        now = time.monotonic()
        if server.process.poll() is not None:
            raise BenchError(f"fetchd exited with {server.process.returncode}:\n"
                             f"{tail(server.log)}")
        if now - started > START_TIMEOUT:
            raise BenchError(f"fetchd did not serve within {START_TIMEOUT:.0f} s:\n"
                             f"{tail(server.log)}")
        if ready_at is None and ready(server.port):
            ready_at = time.monotonic()
        if loaded_at is None:
            match = _LOADED.search(server.log.read_text(errors="replace"))
            if match:
                loaded_at, loaded = time.monotonic(), int(match.group(1))
        time.sleep(0.01)
    return server, max(ready_at, loaded_at) - started, loaded


def run(bench: Bench) -> list[Row]:
    tasks = QUICK_TASKS if bench.quick else TASKS
    url = "http://127.0.0.1:9/feed.json"  # never fetched: the first due time is 2 h away
    anchor_ms = int(time.time() * 1000) + 2 * 3600 * 1000 - DAY_MS

    seed_sqlite(bench, "memory-empty", 0, url, Burst(86400, anchor_ms))
    empty, _, _ = start_and_time(bench, "memory-empty")
    time.sleep(SETTLE_S)
    rss_empty = rss_bytes(empty.process.pid)
    bench.stop(empty.process)

    seed_sqlite(bench, "memory-full", tasks, url, Burst(86400, anchor_ms))
    times = []
    rss_full = None
    scheduled = None
    for i in range(STARTS):
        server, seconds, loaded = start_and_time(bench, "memory-full")
        times.append(seconds)
        if loaded != tasks:
            bench.stop(server.process)
            raise BenchError(f"the scheduler loaded {loaded} tasks instead of {tasks}")
        if i == 0:
            time.sleep(SETTLE_S)
            rss_full = rss_bytes(server.process.pid)
            scheduled = metrics.scrape(server.port).get("fetchd_scheduled_tasks")
        bench.stop(server.process, timeout=30)
    per_task = (rss_full - rss_empty) / tasks
    slowest = max(times)
    return [
        Row(f"memory N={tasks:,}",
            f"{per_task:,.0f} B/task: RSS {rss_full / 2**20:,.1f} MiB with {tasks:,} tasks "
            f"scheduled (fetchd_scheduled_tasks {scheduled:,.0f}), {rss_empty / 2**20:,.1f} MiB "
            f"without tasks",
            target=f"≤ {RSS_TARGET} B/task", passed=per_task <= RSS_TARGET),
        Row(f"startup N={tasks:,}",
            f"{slowest:.2f} s to serving (/readyz 200 and every task loaded; starts: "
            f"{', '.join(f'{t:.2f} s' for t in times)})",
            target=f"≤ {START_TARGET:g} s", passed=slowest <= START_TARGET),
    ]
