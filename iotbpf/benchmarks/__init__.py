"""Benchmarks behind `iotbpf bench`: one module per area, each with run(quick) -> list of result dicts."""
