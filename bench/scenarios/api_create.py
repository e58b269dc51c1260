"""api_create: POST /tasks with the seed's body and a bearer token, as fast as 50 connections
go; each creation is one committed SQLite write (WAL), so this is the store's write path."""

from __future__ import annotations

import json

from harness import Bench, Client, Row, fmt_ms, fmt_rate, load_note, task_body

DESCRIPTION = "POST /tasks throughput (creations/s)"

SCENARIO = "api_create"


def run(bench: Bench) -> list[Row]:
    fetchd = bench.start_fetchd()
    client = Client(fetchd.port)
    try:
        token = client.register_and_login("bench_create")
    finally:
        client.close()
    body_file = bench.write("create-body.json", json.dumps(task_body("amazingexpo")))

    result = bench.wrk("create-fetchd", fetchd.url + "/tasks", "create.lua", [token, body_file])
    bench.stop(fetchd.process)

    connections = f"wrk -t{bench.threads} -c{bench.connections} -d{bench.duration_s}s"
    rows = [
        Row(SCENARIO, f"{fmt_rate(result.rate)} creations/s ({connections}){load_note(result)}"),
        Row(
            SCENARIO,
            f"latency p50 {fmt_ms(result.latency_us['p50'])}, "
            f"p99 {fmt_ms(result.latency_us['p99'])}",
        ),
    ]
    if result.failed:
        rows.append(Row(SCENARIO, f"{result.failed} failed or non-2xx requests", ok=False))
    return rows
