"""api_status: GET /tasks/{id}/status with a bearer token, round robin over 1 000 tasks, next to
nginx answering the same paths with a static copy of a status response (same size, same wrk
script): the ratio says how far the API is from what this machine can serve at all."""

from __future__ import annotations

from harness import Bench, Client, Row, fmt_ms, fmt_rate, load_note, task_body

DESCRIPTION = "GET /tasks/{id}/status over 1 000 tasks vs nginx serving a status-sized file"

SCENARIO = "api_status"
TARGET = 0.5  # issue 5: at least half of what nginx serves


def run(bench: Bench) -> list[Row]:
    task_count = 100 if bench.quick else 1000
    fetchd = bench.start_fetchd()
    client = Client(fetchd.port)
    try:
        token = client.register_and_login("bench_status")
        ids = [client.create_task(task_body(f"status-{i}")) for i in range(task_count)]
        sample = client.expect(200, "GET", f"/tasks/{ids[0]}/status")
    finally:
        client.close()
    ids_file = bench.write("status-ids.txt", "\n".join(map(str, ids)) + "\n")

    ours = bench.wrk("status-fetchd", fetchd.url, "status.lua", [token, ids_file])
    bench.stop(fetchd.process)  # idle or not, it is not part of nginx's measurement
    nginx = bench.start_nginx({"status.json": sample})
    reference = bench.wrk("status-nginx", nginx.url, "status.lua", [token, ids_file])
    bench.stop(nginx.process)

    connections = f"wrk -t{bench.threads} -c{bench.connections} -d{bench.duration_s}s"
    ratio = ours.rate / reference.rate if reference.rate else None
    rows = [
        Row(
            SCENARIO,
            f"{fmt_rate(ours.rate)} req/s ({connections}, {task_count} tasks){load_note(ours)}",
            f"nginx, {len(sample)} B static file: {fmt_rate(reference.rate)} req/s"
            f"{load_note(reference)}",
            ratio,
            target=f"≥ {TARGET}",
            passed=ratio is not None and ratio >= TARGET,
        ),
        Row(
            SCENARIO,
            f"latency p50 {fmt_ms(ours.latency_us['p50'])}, p99 {fmt_ms(ours.latency_us['p99'])}",
            f"nginx: p50 {fmt_ms(reference.latency_us['p50'])}, "
            f"p99 {fmt_ms(reference.latency_us['p99'])}",
        ),
    ]
    for who, result in (("fetchd", ours), ("nginx", reference)):
        if result.failed:
            rows.append(Row(SCENARIO, f"{who}: {result.failed} failed or non-2xx requests",
                            ok=False))
    return rows
