"""The monitor's overhead benchmark runs and reports every row (no timing assertions)."""

from iotbpf.benchmarks import monitor


def test_monitor_benchmark_reports_its_rows():
    rows = monitor.run(quick=True)
    names = [r["name"] for r in rows]
    assert "% of one core at 1 s sampling" in names and "CPU per sample (median)" in names
    assert any(n.startswith("live run: process CPU") for n in names)
    for row in rows:
        assert isinstance(row["value"], (int, float)) and row["value"] >= 0 and row["unit"]
