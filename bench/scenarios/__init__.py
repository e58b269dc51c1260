"""The scenarios of bench/run, in the order they run and are listed: one module each, with
`DESCRIPTION` and `run(bench) -> list[Row]`. Adding one: a file here and its name below."""

ALL = ["api_status", "api_create", "engine_throughput"]
