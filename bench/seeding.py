"""Many tasks at once, written straight into the database: `fetchd db seed` creates the schema,
the owner and one template task (one transaction per task: too slow for a million), then one
INSERT ... SELECT generates the rest inside SQLite or PostgreSQL.

Every task fetches one URL with empty parameters and has next_run_at NULL, so that fetchd plans
it from its anchor (the first due time at or after its start) with no catch-up run. Two plans:
- `Burst`: every task anchored at the same instant with the same interval, so all are due at
  once, every `interval_s`;
- `Spread`: intervals spread evenly over 1..max_interval_s and anchors spread over each
  interval (a deterministic hash of the task's number), so due times fall at every ms."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from harness import Bench, BenchError

SEED_TIMEOUT = 120.0
DAY_MS = 86_400_000
WINDOW_DAYS = 30  # end_time: far enough for any benchmark


@dataclass
class Burst:
    interval_s: int
    anchor_ms: int  # every task's start_time


@dataclass
class Spread:
    max_interval_s: int = 60
    anchor_ms: int = 0  # the earliest start_time; 0: a day ago


def _hash(i: str) -> str:
    # Knuth's multiplicative hash, in SQL both dialects evaluate the same (64-bit integers).
    return f"(({i} * 2654435761) % 4294967296)"


def _columns(plan, i: str) -> tuple[str, str]:
    """SQL expressions for (start_time, task_interval) of task number `i` (1-based)."""
    if isinstance(plan, Burst):
        return str(plan.anchor_ms), str(plan.interval_s)
    anchor = plan.anchor_ms or int(time.time() * 1000) - DAY_MS
    interval = f"(1 + ({_hash(i)} / 256) % {plan.max_interval_s})"
    # The offset within the interval: another hash of i, modulo the interval in ms.
    offset = f"(({i} * 40503 + {_hash(i)}) % ({interval} * 1000))"
    return f"({anchor} + {offset})", interval


def _template(bench: Bench, name: str, db: str) -> None:
    """Schema and owner: `fetchd db seed --count 1` (its one task is deleted afterwards)."""
    bench.run_fetchd(
        ["db", "seed", "--db", db, "--count", 1, "--owner", "bench",
         "--base-url", "http://127.0.0.1:9/"],
        name, SEED_TIMEOUT,
    )  # fmt: skip


def seed_sqlite(bench: Bench, name: str, count: int, url: str, plan) -> None:
    """`count` tasks fetching `url` in start_fetchd(name)'s SQLite database."""
    _template(bench, name, bench.fetchd_db(name))
    start, interval = _columns(plan, "i")
    now = int(time.time() * 1000)
    end = now + WINDOW_DAYS * DAY_MS
    conn = sqlite3.connect(bench.fetchd_dir(name) / "bench.db", timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        with conn:
            owner = conn.execute("SELECT id FROM users WHERE username = 'bench'").fetchone()[0]
            conn.execute("DELETE FROM tasks")
            # count 0: the schema and the owner only (the empty process of memory_startup).
            conn.execute(
                f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                INSERT INTO tasks (owner_id, name, url, parameters, start_time, end_time,
                                   task_interval, max_execution_time, max_attempt,
                                   created_at, updated_at)
                SELECT ?, 'bench ' || i, ?, '{{}}', {start}, ?, {interval}, 0, 3, ?, ?
                FROM n WHERE i <= ?""",
                (count, owner, url, end, now, now, count),
            )
        got = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    if got != count:
        raise BenchError(f"seeded {got} tasks instead of {count}")


def seed_postgres(bench: Bench, pg, name: str, count: int, url: str, plan) -> None:
    """`count` tasks fetching `url` in the PostgreSQL database `pg` (services.Postgres)."""
    _template(bench, name, pg.url)
    start, interval = _columns(plan, "i")
    now = int(time.time() * 1000)
    end = now + WINDOW_DAYS * DAY_MS
    pg.psql(
        f"""DELETE FROM tasks;
        INSERT INTO tasks (owner_id, name, url, parameters, start_time, end_time, task_interval,
                           max_execution_time, max_attempt, created_at, updated_at)
        SELECT (SELECT id FROM users WHERE username = 'bench'), 'bench ' || i, '{url}', '{{}}',
               {start}, {end}, {interval}, 0, 3, {now}, {now}
        FROM generate_series(1::bigint, {count}::bigint) AS i;
        ANALYZE tasks;"""
    )
    got = int(pg.psql("SELECT count(*) FROM tasks"))
    if got != count:
        raise BenchError(f"seeded {got} tasks instead of {count}")


def expected_dues_sql(w0: int, w1: int) -> str:
    """SQL (both dialects) for the number of due times of each task in [w0, w1): the k >= 0
    with start_time + k * interval in the window (every task's start_time is before w0)."""
    i = "(task_interval * 1000)"
    first = f"(({w0} - start_time + {i} - 1) / {i})"  # ceil, start_time <= w0
    last = f"(({w1} - 1 - start_time) / {i})"  # floor
    return f"({last} - {first} + 1)"
