# Smoke test of the benchmark harness (issue 5): `bench/run --quick` on a few scenarios completes
# against the built binary ($FETCHD_BIN), exits 0 and writes bench/results/quick.md with the
# result table. Benchmarks are not tests: this checks that the harness works, not the figures
# (targets may fail on a loaded machine without failing the run).
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "bench" / "run"
QUICK_MD = REPO / "bench" / "results" / "quick.md"
# The harness's cheapest scenarios that still exercise every part of it: wrk and nginx
# (api_status), seeding straight into SQLite, bursts sampled from /metrics and the jobs table
# (engine_throughput), and spawning fetchd to time its start (memory_startup).
SCENARIOS = ["api_status", "engine_throughput", "memory_startup"]
BUDGET_S = 60  # what the run should take on an idle machine
TIMEOUT_S = 240  # when it is killed: a loaded machine (other tests, ASan) is slower
HEADER = "| scenario | figure | limit | ratio | target | pass/fail |"
ROW = re.compile(r"^\| (?P<scenario>[^|]+?) \| (?P<figure>[^|]+?) \| [^|]+ \| (?P<ratio>[^|]+) "
                 r"\| (?P<target>[^|]+) \| (?P<verdict>[^|]+) \|$")


def test_bench_quick_completes_and_writes_the_table():
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (bench/run installs it; the test does not)")
    binary = os.environ.get("FETCHD_BIN", str(REPO / "build" / "fetchd"))
    if not os.access(binary, os.X_OK):
        pytest.skip(f"no fetchd binary at {binary}")
    before = QUICK_MD.stat().st_mtime if QUICK_MD.exists() else 0.0
    env = {k: v for k, v in os.environ.items() if not k.startswith("FETCHD_")}
    env["FETCHD_BIN"] = binary

    started = time.monotonic()
    done = subprocess.run([sys.executable, str(RUN), "--quick", *SCENARIOS], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - started
    output = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == 0, output
    if elapsed > BUDGET_S:
        print(f"bench/run --quick took {elapsed:.0f} s (budget {BUDGET_S} s on an idle machine)")

    assert QUICK_MD.exists() and QUICK_MD.stat().st_mtime > before, "quick.md was not written"
    text = QUICK_MD.read_text()
    assert "- scenarios: " + ", ".join(SCENARIOS) + " (--quick)" in text
    lines = text.splitlines()
    assert HEADER in lines, text
    rows = [ROW.match(line) for line in lines[lines.index(HEADER) + 2:] if line.startswith("| ")]
    assert rows and all(rows), text
    scenarios = {row["scenario"] for row in rows}
    # Every scenario gave figures, none of them a failure to measure.
    for prefix in ("api_status", "engine_small", "engine_large_changing", "memory", "startup"):
        assert any(s.startswith(prefix) for s in scenarios), (prefix, text)
    assert not any(row["figure"].startswith("failed") for row in rows), text
    # Each figure with a target is judged, and the ratios are numbers where there is a limit.
    judged = [row for row in rows if row["target"] != "—"]
    assert len(judged) >= 5, text
    assert all(row["verdict"] in ("pass", "**fail**") for row in judged), text
    for row in rows:
        if row["scenario"].startswith(("api_status", "engine_")) and row["target"] != "—":
            assert re.fullmatch(r"\d+\.\d\d", row["ratio"]), row.group(0)
    # The fetch layer's floor beside the engine: two rows with their ratio to wrk, when
    # fetch_floor was built beside the binary (the test build builds every target).
    floors = [row for row in rows if row["scenario"] == "engine_small fetch layer alone"]
    if (Path(binary).parent / "bench" / "micro" / "fetch_floor").exists():
        assert len(floors) == 2, text
        assert all(re.fullmatch(r"\d+\.\d\d", row["ratio"]) for row in floors), text
        assert all(" fetches/s at " in row["figure"] for row in floors), text
    else:
        assert len(floors) == 1 and floors[0]["figure"].startswith("not measured"), text
    # The same table went to stdout.
    assert HEADER in done.stdout
