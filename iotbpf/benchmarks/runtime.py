"""`iotbpf bench runtime`: events per second of the node runtime on sensor_node, and a full simulated
year timed end to end (best of five, energy accounting on, not extrapolated), beside a host
reference workload. The method: docs/runtime.md ("Performance").
"""

from __future__ import annotations

import gc
import time

from iotbpf.api import Node

YEAR = "1y"
YEAR_REPEATS = 5
TARGET_S = 5.0


def _simulate(duration: str, energy: bool = True, **kw) -> tuple[float, float, object]:
    """(wall s, CPU s, result) of simulating ``duration`` of a fresh sensor_node; ``energy``
    False: no board, so no energy model or scheduler."""
    node = Node("sensor_node", seed=1, **kw)
    if not energy:
        node.manifests[0].board = None
    node.build()
    gc.collect()  # as timeit does: the previous node's garbage collected first, no collection
    gc.disable()  # while the clock runs
    try:
        wall = time.perf_counter()
        cpu = time.process_time()
        result = node.simulate(duration, samples=0)  # the bare node: no snapshots for plots
        return time.perf_counter() - wall, time.process_time() - cpu, result
    finally:
        gc.enable()


def _reference_cpu(steps: int = 1000000) -> float:
    """CPU seconds of a fixed pure-Python integer workload (the simulated sensor's generator), to
    tell how fast the host is at the moment of the run."""
    mask = 0xFFFFFFFFFFFFFFFF
    x = 0x9E3779B97F4A7C15
    acc = 0
    start = time.process_time()
    for _ in range(steps):
        x ^= x >> 12
        x ^= (x << 25) & mask
        x ^= x >> 27
        acc += ((x * 0x2545F4914F6CDD1D) & mask) >> 56
    elapsed = time.process_time() - start
    if acc < 0:  # never: keeps the loop's result alive
        raise AssertionError(acc)
    return elapsed


def run(quick: bool = False) -> list[dict]:
    rows = []
    day = "7d" if quick else "30d"
    if not quick:
        _simulate("1d")  # warm-up: imports, compiled code, the sensors' tables
        # the year five times, each a fresh node: the best is the node's cost, the others
        # show how much a shared machine adds (all are in the note)
        years = [_simulate(YEAR) for _ in range(YEAR_REPEATS)]
        wall, cpu, result = min(years, key=lambda y: y[1])
        rows.append({"name": "sensor_node node-year (energy on)", "value": round(cpu, 2), "unit": "s CPU",
                     "note": "best of %d full years (%s s CPU), %.2f s wall, %d events, target <= %.0f s: %s" % (
                         len(years), " / ".join("%.2f" % y[1] for y in years), wall, result.events_handled,
                         TARGET_S, "met" if cpu <= TARGET_S else "NOT met")})
        _nwall, ncpu, plain = _simulate(YEAR, energy=False)
        rows.append({"name": "sensor_node node-year (no energy model)", "value": round(ncpu, 2), "unit": "s CPU",
                     "note": "energy accounting costs %.0f %% of the year" % (100.0 * (cpu - ncpu) / cpu)
                     if cpu else ""})
        rows.append({"name": "handler runs in the year", "value": plain.hook("timer")["runs"], "unit": "runs",
                     "note": "timer program runs (one per simulated minute)"})
    dwall, dcpu, dresult = _simulate(day)
    events = dresult.events_handled
    day_rows = [{"name": "sensor_node events/s (%s, compiled, energy on)" % day, "value": round(events / dcpu),
                 "unit": "events/s", "note": "%d events in %.2f s CPU (%.2f s wall)" % (events, dcpu, dwall)}]
    iwall, icpu, iresult = _simulate(day, engine="interp")
    day_rows.append({"name": "sensor_node events/s (%s, interpreter)" % day,
                     "value": round(iresult.events_handled / icpu), "unit": "events/s",
                     "note": "compiled engine speed-up %.2fx" % (icpu / dcpu)})
    rows[0:0] = day_rows
    if quick:
        return rows
    ref = min(_reference_cpu() for _ in range(3))
    rows.append({"name": "host reference: 1M xorshift64* steps in plain Python", "value": round(ref, 3),
                 "unit": "s CPU", "note": "node-year / reference = %.1f (compare this ratio across machines and "
                 "moments: a shared host moves both)" % (cpu / ref)})
    return rows
