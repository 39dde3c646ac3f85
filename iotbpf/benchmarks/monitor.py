"""`iotbpf bench monitor`: the Linux monitor's own overhead on this machine, CPU seconds per sample
and % of one core (docs/platforms.md, "The monitor's own cost").
"""

from __future__ import annotations

import resource
import time

from iotbpf.platforms.linux import CpuModel, LinuxMonitor, run_monitor

MODEL = CpuModel("benchmark (1 W idle, 1 W per busy core)", 1.0, 1.0)


def _per_sample(monitor: LinuxMonitor, samples: int) -> tuple[float, int]:
    """Median thread-CPU seconds of one sample() and the number of processes seen."""
    monitor.sample()  # warm: exe names cached, baseline taken
    costs = []
    for _ in range(samples):
        t0 = time.thread_time()
        monitor.sample()
        costs.append(time.thread_time() - t0)
    costs.sort()
    return costs[len(costs) // 2], len(monitor.last.processes)


def run(quick: bool = False) -> list[dict]:
    samples = 5 if quick else 40
    rows = []
    cold = LinuxMonitor(MODEL, power_sources=[])
    t0 = time.thread_time()
    cold.sample()
    first = time.thread_time() - t0
    per_sample, processes = _per_sample(LinuxMonitor(MODEL, power_sources=[]), samples)
    no_threads, _ = _per_sample(LinuxMonitor(MODEL, power_sources=[], thread_wakeups=False), samples)
    rows.append({"name": "processes on this machine", "value": processes, "unit": "processes",
                 "note": "what one sample reads (/proc/PID/stat, status, io)"})
    rows.append({"name": "first sample (cold: exe names resolved)", "value": first * 1000, "unit": "ms CPU"})
    rows.append({"name": "CPU per sample (median)", "value": per_sample * 1000, "unit": "ms CPU",
                 "note": "thread CPU time of sample(), %d samples" % samples})
    rows.append({"name": "CPU per process per sample", "value": per_sample / max(1, processes) * 1e6,
                 "unit": "us CPU"})
    rows.append({"name": "% of one core at 1 s sampling", "value": per_sample * 100.0, "unit": "%",
                 "note": "target < 1 %"})
    ratio = per_sample / no_threads if no_threads else 0.0
    rows.append({"name": "per-thread wakeups cost ratio", "value": ratio, "unit": "x",
                 "note": "sample() with / without summing task/*/status"})
    # a real run at 1 s sampling (0.2 s in quick mode), the whole process measured by the kernel
    interval = 0.2 if quick else 1.0
    duration = 1.0 if quick else 10.0
    monitor = LinuxMonitor(MODEL, power_sources=[])
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.monotonic()
    run_monitor(monitor, interval, duration)
    wall = time.monotonic() - wall0
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rows.append({"name": "live run: process CPU %% of one core at %g s" % interval,
                 "value": 100.0 * used / wall, "unit": "%",
                 "note": "getrusage over a %.0f s run_monitor (sleeps included)" % wall})
    rows.append({"name": "live run: monitor's own figure", "value": monitor.overhead()["percent_of_one_core"],
                 "unit": "%", "note": "what the monitor reports about itself (thread CPU of sample())"})
    return rows
