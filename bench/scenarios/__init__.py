"""The scenarios of bench/run, in the order they run and are listed (issue 5's order): one
module each, with `DESCRIPTION` and `run(bench) -> list[Row]`. Adding one: a file here and its
name below."""

ALL = [
    "engine_throughput",  # 1. end-to-end throughput, embedded
    "scaleout_throughput",  # 2. the same, PostgreSQL + Redis, 1 then 2 workers
    "schedule_precision",  # 3. lag and missed runs with 100 000 (and 1 000 000) tasks
    "api_status",  # 4. GET /tasks/{id}/status vs nginx
    "api_create",  # 4. POST /tasks
    "memory_startup",  # 5. RSS per task and start-up time with 1 000 000 tasks
    "storage",  # 6. bytes per run, and the pruner's bound under a soak
]
