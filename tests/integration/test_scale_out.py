# Scale-out roles under faults: `fetchd api`, `fetchd scheduler` and `fetchd worker` as
# separate processes over a real PostgreSQL and a real Redis (tests/integration/backends.py).
# Kill -9 a worker and the leading scheduler, restart Redis and PostgreSQL under load, then read
# every job back: one run per (task, due time), nothing lost outside the bounded leaderless
# gap, nothing left running, every success with its data.
import itertools
import re
import time
from collections import Counter

import pytest
import requests

from backends import PostgresServer, RedisServer
from conftest import (ENGINE_ARGS, FetchdStartError, engine_task, fixture_json, iso_ms,
                      list_jobs, now_ms, parse_ms, register_and_login, sleep_until_ms, wait_for,
                      wait_for_jobs)

SCHEDULER_LEASE_TTL_S = 5
WORKER_LEASE_S = 5
# How late past the lease TTL a follower may take over: its polling period plus a loaded machine.
TAKEOVER_SLACK_S = 2
# A due time just before the leader died may not have been enqueued yet (a scheduling pass is
# not instantaneous): the leaderless gap may start this much before the kill.
GAP_LEAD_MS = 1000
FEED = "/json/small.json"
FINAL_STATUSES = {"succeeded", "skipped"}
LEADER_RE = re.compile(r"^fetchd_scheduler_leader(?:\{[^}]*\})?\s+([0-9.eE+-]+)\s*$", re.M)

_databases = itertools.count(1)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    pg = PostgresServer(tmp_path_factory.mktemp("postgres"))
    try:
        pg.start()
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def backends(postgres, redis):
    """A fresh database of this test's own and an empty Redis (a test that failed half-way
    through a restart may have left a server down)."""
    if not postgres.running:
        postgres.start()
    if not redis.running:
        redis.start()
    redis.flushall()
    db_url = postgres.create_database(f"scale_{next(_databases)}_{now_ms()}")
    return db_url, redis.url


def role(factory, subcommand, name, db_url, broker_url, *extra):
    return factory.create(name=name, subcommand=subcommand, db=db_url,
                          args=[*ENGINE_ARGS, "--broker", broker_url, *map(str, extra)])


def leader_gauge(proc):
    """The scheduler's `fetchd_scheduler_leader` value, or None when it cannot be read."""
    try:
        r = requests.get(proc.url("/metrics"), timeout=2)
    except requests.RequestException:
        return None
    if r.status_code != 200:
        return None
    match = LEADER_RE.search(r.text)
    return float(match.group(1)) if match else None


def readyz(proc):
    try:
        return requests.get(proc.url("/readyz"), timeout=2).status_code
    except requests.RequestException:
        return None


def database_name(db_url):
    return db_url.rsplit("/", 1)[1]


def unfinished_jobs(postgres, db_url):
    return int(postgres.psql("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')",
                             database=database_name(db_url)))


def wait_until_settled(postgres, db_url, end_ms, timeout):
    """After the tasks' end_time: waits until no job is queued or running (runs a dead worker
    held come back after the worker lease)."""
    sleep_until_ms(end_ms + 1500)
    deadline = time.monotonic() + timeout
    while True:
        left = unfinished_jobs(postgres, db_url)
        if left == 0:
            return
        if time.monotonic() > deadline:
            statuses = postgres.psql("SELECT status, count(*) FROM jobs GROUP BY status",
                                     database=database_name(db_url))
            pytest.fail(f"{left} jobs still queued/running {timeout}s after end_time "
                        f"(+1.5 s); jobs by status: {statuses!r}", pytrace=False)
        time.sleep(0.25)


def due_times(start_ms, end_ms, interval_ms=1000):
    """Due times of an enabled task: start + k * interval while start <= t < end."""
    return list(range(start_ms, end_ms, interval_ms))


def create_tasks(account, url, count, start_ms, end_ms, prefix):
    tasks = [engine_task(account, url, start_ms=start_ms, end_time=iso_ms(end_ms),
                         task_interval=1, max_attempt=100, name=f"{prefix}-{i}")
             for i in range(count)]
    assert now_ms() < start_ms - 500, \
        "creating the tasks took until their start_time: the first due times are not testable"
    return tasks


def jobs_by_task(account, tasks):
    return {t["id"]: list_jobs(account, t["id"], limit=500) for t in tasks}


def duplicates(jobs):
    counts = Counter(j["scheduled_at"] for j in jobs)
    return sorted(at for at, n in counts.items() if n > 1)


def in_windows(ms, windows):
    return any(lo <= ms <= hi for lo, hi in windows)


def check_schedule(jobs_of, start_ms, end_ms, allowed_gaps):
    """Per task: no due time twice, every due time present except inside `allowed_gaps`
    ([lo, hi] ms), and no job outside the grid except inside a gap (a coalesced catch-up run
    may be stamped off the grid). Returns the missing due times of all tasks, for the callers'
    own bounds."""
    grid = due_times(start_ms, end_ms)
    grid_set = set(grid)
    problems, all_missing = [], []
    for task_id, jobs in jobs_of.items():
        dup = duplicates(jobs)
        if dup:
            problems.append(f"task {task_id}: scheduled_at twice: {dup[:5]}")
        seen = {parse_ms(j["scheduled_at"]) for j in jobs}
        outside = sorted(ms for ms in seen - grid_set if not in_windows(ms, allowed_gaps))
        if outside:
            problems.append(f"task {task_id}: jobs off the due-time grid "
                            f"(start {iso_ms(start_ms)}, 1 s): {[iso_ms(m) for m in outside[:5]]}")
        missing = [ms for ms in grid if ms not in seen]
        all_missing += missing
        unexplained = [ms for ms in missing if not in_windows(ms, allowed_gaps)]
        if unexplained:
            problems.append(f"task {task_id}: due times without a job outside the allowed gaps "
                            f"{[(iso_ms(a), iso_ms(b)) for a, b in allowed_gaps]}: "
                            f"{[iso_ms(m) for m in unexplained[:5]]} ({len(unexplained)} in all)")
    assert not problems, f"{len(problems)} tasks wrong:\n" + "\n".join(problems[:20])
    return all_missing


def test_multi_process_no_duplicates_no_loss(fetchd_factory, fixture_server, backends,
                                             postgres):
    db_url, broker_url = backends
    api = role(fetchd_factory, "api", "api", db_url, broker_url).start()
    schedulers = [role(fetchd_factory, "scheduler", f"scheduler{i}", db_url, broker_url,
                       "--scheduler-lease-ttl", f"{SCHEDULER_LEASE_TTL_S}s").start()
                  for i in (1, 2)]
    workers = [role(fetchd_factory, "worker", f"worker{i}", db_url, broker_url, "--concurrency",
                    64, "--worker-lease", f"{WORKER_LEASE_S}s").start() for i in (1, 2, 3)]

    def leaders():
        return [leader_gauge(s) for s in schedulers]

    # Exactly one leads; the other follows (and says so rather than saying nothing).
    gauges = wait_for(lambda: (lambda g: g if sorted(g) == [0.0, 1.0] else None)(leaders()),
                      timeout=SCHEDULER_LEASE_TTL_S + 10, interval=0.1,
                      message="one scheduler leading (fetchd_scheduler_leader 1), one at 0")

    account = register_and_login(api)
    start_ms = now_ms() + 4000
    end_ms = start_ms + 30_000
    tasks = create_tasks(account, fixture_server.url(FEED), 200, start_ms, end_ms, "scale")

    # A worker dies mid-run: what it held is redone by another within the worker lease.
    sleep_until_ms(start_ms + 8000)
    workers[0].kill()
    worker_kill_ms = now_ms()

    sleep_until_ms(start_ms + 14_000)
    gauges = leaders()
    assert sorted(gauges) == [0.0, 1.0], f"leader gauges before the kill: {gauges}"
    leader = schedulers[gauges.index(1.0)]
    survivor = schedulers[1 - gauges.index(1.0)]
    leader_kill_ms = now_ms()
    leader.kill()
    wait_for(lambda: leader_gauge(survivor) == 1.0,
             timeout=SCHEDULER_LEASE_TTL_S + TAKEOVER_SLACK_S + 10, interval=0.1,
             message=f"{survivor.name} taking over the lead")
    takeover_ms = now_ms()
    takeover_bound_ms = (SCHEDULER_LEASE_TTL_S + TAKEOVER_SLACK_S) * 1000
    assert takeover_ms - leader_kill_ms <= takeover_bound_ms, \
        f"{survivor.name} led {takeover_ms - leader_kill_ms} ms after the leader died " \
        f"(lease TTL {SCHEDULER_LEASE_TTL_S} s + {TAKEOVER_SLACK_S} s)"

    wait_until_settled(postgres, db_url, end_ms, timeout=WORKER_LEASE_S + 15)

    alive = [api, survivor, *workers[1:]]
    dead = [p.name for p in alive if not p.running]
    assert not dead, f"exited: {dead}"
    assert leader_gauge(survivor) == 1.0, "the surviving scheduler no longer leads"

    jobs_of = jobs_by_task(account, tasks)
    gap = (leader_kill_ms - GAP_LEAD_MS, min(leader_kill_ms + takeover_bound_ms,
                                             takeover_ms + 1000))
    missing = check_schedule(jobs_of, start_ms, end_ms, [gap])
    if missing:
        span = max(missing) - min(missing)
        assert span <= takeover_bound_ms + GAP_LEAD_MS, f"missing due times span {span} ms"

    all_jobs = [j for jobs in jobs_of.values() for j in jobs]
    statuses = Counter(j["status"] for j in all_jobs)
    assert set(statuses) <= FINAL_STATUSES, f"job statuses: {dict(statuses)}"
    succeeded = [j for j in all_jobs if j["status"] == "succeeded"]
    # 200 tasks x 30 due times, minus the gap, minus runs skipped while a dead worker's run
    # waited for its lease: the bulk must have run.
    assert len(succeeded) >= 200 * 30 * 0.6, f"only {len(succeeded)} runs succeeded: {statuses}"
    expected = fixture_json(FEED[len("/json/"):])
    bad = [j["id"] for j in succeeded
           if j["data_id"] is None or j["http_status"] != 200 or j["records"] != len(expected)]
    assert not bad, f"succeeded jobs without data / 200 / records: {bad[:10]} ({len(bad)})"
    # Every data_id of a success points at a stored document (checked in the database for all
    # of them; through the API for the runs the dead worker held and one run per task).
    orphans = postgres.psql(
        "SELECT count(*) FROM jobs j LEFT JOIN data d ON d.id = j.data_id "
        "WHERE j.status = 'succeeded' AND d.id IS NULL", database=database_name(db_url))
    assert orphans == "0", f"{orphans} succeeded jobs whose data row is missing"
    redone = [j for j in succeeded
              if parse_ms(j["started_at"]) - parse_ms(j["scheduled_at"]) >= 2000]
    sample = redone[:100] + [jobs[len(jobs) // 2] for jobs in jobs_of.values()
                             if jobs[len(jobs) // 2]["status"] == "succeeded"]
    for job in sample:
        r = api.get(f"/jobs/{job['id']}", token=account.token)
        assert r.status_code == 200, f"GET /jobs/{job['id']}: {r.status_code} {r.text}"
        assert r.json()["data"] == expected, f"job {job['id']}: data differs from the feed"

    worker_ids = {j["worker_id"] for j in succeeded}
    assert None not in worker_ids, "a succeeded job without worker_id"
    assert len(worker_ids) >= 2, f"every run done by {worker_ids}"
    late_ids = {j["worker_id"] for j in succeeded
                if parse_ms(j["scheduled_at"]) > worker_kill_ms + 2 * WORKER_LEASE_S * 1000}
    assert 1 <= len(late_ids) <= 2, \
        f"after one of 3 workers died, runs were done by {late_ids} (expected 1 or 2 workers)"

    print(f"leader {leader.name} killed; {survivor.name} led after "
          f"{takeover_ms - leader_kill_ms} ms; {len(missing)} due times missing (in "
          f"{len({m for m in missing})} distinct instants); {len(redone)} runs redone after the "
          f"worker kill; statuses {dict(statuses)}; workers {sorted(worker_ids)}")
    for proc in alive:
        proc.stop()  # graceful exit 0 is part of the contract of every role


def test_restart_redis_and_postgres_under_load(fetchd_factory, fixture_server, backends,
                                               postgres, redis):
    db_url, broker_url = backends
    api = role(fetchd_factory, "api", "api", db_url, broker_url).start()
    scheduler = role(fetchd_factory, "scheduler", "scheduler", db_url, broker_url,
                     "--scheduler-lease-ttl", f"{SCHEDULER_LEASE_TTL_S}s").start()
    worker = role(fetchd_factory, "worker", "worker", db_url, broker_url, "--concurrency", 64,
                  "--worker-lease", f"{WORKER_LEASE_S}s").start()
    procs = [api, scheduler, worker]
    wait_for(lambda: leader_gauge(scheduler) == 1.0, timeout=SCHEDULER_LEASE_TTL_S + 10,
             interval=0.1, message="the scheduler leading")

    account = register_and_login(api)
    start_ms = now_ms() + 3000
    end_ms = start_ms + 22_000
    tasks = create_tasks(account, fixture_server.url(FEED), 50, start_ms, end_ms, "faults")

    # Redis crashes and comes back empty (no persistence): the stream, its group and the
    # scheduler's lease are gone.
    sleep_until_ms(start_ms + 4000)
    redis_down_ms = now_ms()
    redis.restart()
    redis_up_ms = now_ms()

    # PostgreSQL goes away for 2 s (every connection cut) and comes back with its data.
    sleep_until_ms(start_ms + 10_000)
    pg_down_ms = now_ms()
    postgres.stop("fast")
    not_ready = set()
    while now_ms() < pg_down_ms + 2000:
        for p in procs:
            if readyz(p) == 503:
                not_ready.add(p.name)  # informational: how quickly a role notices is not fixed
        time.sleep(0.2)
    postgres.start()
    pg_up_ms = now_ms()

    wait_until_settled(postgres, db_url, end_ms, timeout=WORKER_LEASE_S + 25)
    dead = [f"{p.name} (exit {p.proc.returncode}), stderr tail:\n{p.tail(5)}"
            for p in procs if not p.running]
    assert not dead, "exited during the outages:\n" + "\n".join(dead)
    wait_for(lambda: all(readyz(p) == 200 for p in procs), timeout=15, interval=0.2,
             message="/readyz 200 on every role")

    jobs_of = jobs_by_task(account, tasks)
    # Due times while a backend was away may be coalesced into one catch-up run (or missed while
    # the lease is retaken); bounded by the outage plus the lease TTL and reconnect backoff.
    recovery_ms = (SCHEDULER_LEASE_TTL_S + TAKEOVER_SLACK_S + 3) * 1000
    gaps = [(redis_down_ms - GAP_LEAD_MS, redis_up_ms + recovery_ms),
            (pg_down_ms - GAP_LEAD_MS, pg_up_ms + recovery_ms)]
    check_schedule(jobs_of, start_ms, end_ms, gaps)

    all_jobs = [j for jobs in jobs_of.values() for j in jobs]
    statuses = Counter(j["status"] for j in all_jobs)
    assert set(statuses) <= {"succeeded", "skipped", "failed", "timed_out"}, dict(statuses)
    # No worker died here: a run given up for too many deliveries was lost to the outage (a
    # store that is briefly away must not count as a worker dying with the run).
    abandoned = [(j["task_id"], j["scheduled_at"], j["error"]) for j in all_jobs
                 if "deliver" in (j["error"] or "")]
    assert not abandoned, f"{len(abandoned)} runs abandoned although no worker died: " \
        f"{abandoned[:3]}"
    failed_outside = [j for j in all_jobs if j["status"] in ("failed", "timed_out")
                      and not in_windows(parse_ms(j["scheduled_at"]), gaps)]
    assert not failed_outside, f"runs failed away from the outages: {failed_outside[:3]}"
    resumed_after = pg_up_ms + 3000
    stalled = [t["id"] for t in tasks
               if not any(j["status"] == "succeeded" and j["data_id"] is not None
                          and parse_ms(j["scheduled_at"]) > resumed_after
                          for j in jobs_of[t["id"]])]
    after = Counter((j["status"], j["error"]) for j in all_jobs
                    if parse_ms(j["scheduled_at"]) > resumed_after)
    assert not stalled, f"{len(stalled)} tasks with no success after the restarts (+3 s): " \
        f"{stalled[:10]}; jobs due since then by (status, error): {dict(after.most_common(5))}"
    print(f"/readyz 503 seen during the PostgreSQL outage on: {sorted(not_ready)}; "
          f"statuses {dict(statuses)}")

    for proc in procs:
        proc.stop()


@pytest.mark.parametrize("subcommand", ["api", "scheduler", "worker"])
def test_roles_refuse_a_local_broker(fetchd_factory, backends, subcommand):
    db_url, _ = backends
    with pytest.raises(FetchdStartError) as e:
        fetchd_factory(subcommand=subcommand, db=db_url, args=[*ENGINE_ARGS, "--broker", "local"])
    assert e.value.returncode == 2, f"exit code {e.value.returncode}; stderr:\n{e.value.stderr}"
    assert "broker" in e.value.stderr.lower(), e.value.stderr


def test_changes_through_any_api_process_reach_the_leader_within_a_second(
        fetchd_factory, fixture_server, backends):
    """Two stateless API processes, one scheduler (it never polls the tasks table): a task
    created, paused, resumed or run through either API process is acted on within a second."""
    db_url, broker_url = backends
    apis = [role(fetchd_factory, "api", f"api{i}", db_url, broker_url).start() for i in (1, 2)]
    scheduler = role(fetchd_factory, "scheduler", "scheduler", db_url, broker_url).start()
    role(fetchd_factory, "worker", "worker", db_url, broker_url, "--concurrency", 8).start()
    wait_for(lambda: leader_gauge(scheduler) == 1.0, timeout=15, interval=0.1,
             message="the scheduler leading")
    first = register_and_login(apis[0])
    # Same account through the other API process: a token from one is valid on the other.
    other = first.__class__(apis[1], first.username, first.password, first.user, first.token,
                            first.login)

    # Created through api1 after the scheduler loaded: it runs at its start time.
    start = now_ms() + 1500
    task = engine_task(first, fixture_server.url(FEED), start_ms=start, task_interval=60)
    job = wait_for_jobs(first, task["id"], 1, timeout=5)[0]
    assert parse_ms(job["scheduled_at"]) == start
    assert parse_ms(job["started_at"]) - start < 1000, job

    # Run now through api2: 202, and a second request while it is in flight may be 409.
    r = other.server.post(f"/tasks/{task['id']}/run", token=other.token)
    assert r.status_code == 202, r.text
    run_at = parse_ms(r.json()["scheduled_at"])
    jobs = wait_for_jobs(other, task["id"], 2, timeout=5)
    assert parse_ms(jobs[-1]["scheduled_at"]) == run_at
    assert parse_ms(jobs[-1]["started_at"]) - run_at < 1000, jobs[-1]

    # Paused through api2, a 1 s task stops at once; resumed through api1, it runs again
    # within a second.
    r = other.server.patch(f"/tasks/{task['id']}", token=other.token,
                           json={"task_interval": 1})
    assert r.status_code == 200, r.text
    wait_for_jobs(first, task["id"], 4, timeout=5)
    r = other.server.post(f"/tasks/{task['id']}/pause", token=other.token)
    assert r.status_code == 200, r.text
    time.sleep(1.0)  # a run already in flight may finish
    count = len(list_jobs(first, task["id"]))
    time.sleep(2.5)
    assert len(list_jobs(first, task["id"])) == count, "runs continued after the pause"
    resumed = now_ms()
    r = first.server.post(f"/tasks/{task['id']}/resume", token=first.token)
    assert r.status_code == 200, r.text
    jobs = wait_for_jobs(first, task["id"], count + 1, timeout=5, finished_only=False)
    assert parse_ms(jobs[-1]["started_at"]) - resumed < 2000, jobs[-1]
