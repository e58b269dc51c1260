# fetchd serve with the Redis Streams broker (--broker redis://…): the scheduler's runs travel
# through a real redis-server that this module starts on a free loopback port, and are fetched,
# recorded and acknowledged as with the in-process queue.
import shutil
import subprocess
import time

import pytest

from conftest import (ENGINE_ARGS, FetchdStartError, engine_task, free_port, now_ms,
                      register_and_login, wait_for_jobs)

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                                  text=True)
            if ping.stdout.strip() == "PONG":
                break
            time.sleep(0.05)
        else:
            pytest.fail("redis-server did not answer PING")
        yield f"redis://127.0.0.1:{port}/0", port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_runs_go_through_redis_and_succeed(fetchd_factory, fixture_server, redis_url):
    url, port = redis_url
    srv = fetchd_factory(args=[*ENGINE_ARGS, "--broker", url])
    acct = register_and_login(srv)
    start = now_ms() + 300
    tasks = [engine_task(acct, fixture_server.url("/json/small.json"), start_ms=start,
                         task_interval=1, name=f"redis-{i}") for i in range(3)]
    for task in tasks:
        jobs = wait_for_jobs(acct, task["id"], 3, timeout=15)
        assert all(j["status"] == "succeeded" for j in jobs), jobs
        assert len({j["scheduled_at"] for j in jobs}) == len(jobs), jobs  # no run twice
    # The runs went through the stream: the group exists, and every run was acknowledged and
    # deleted (nothing pending once the runs are recorded).
    groups = redis_cli(port, "XINFO", "GROUPS", "fetchd:runs")
    assert "workers" in groups, groups
    srv.stop()
    pending = redis_cli(port, "XPENDING", "fetchd:runs", "workers")
    assert pending.splitlines()[0] == "0", pending


def test_a_bad_broker_url_is_refused_at_start(fetchd_factory):
    with pytest.raises(FetchdStartError) as e:
        fetchd_factory(args=["--broker", "amqp://nowhere"])
    assert e.value.returncode == 2 and "broker" in e.value.stderr, e.value.stderr
