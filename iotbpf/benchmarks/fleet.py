"""`iotbpf bench fleet`: node-years per second with 1 and 2 worker processes and a Dask LocalCluster,
and the parallel efficiency; the 1000 node-year figure is projected, not run (docs/fleet.md).
"""

from __future__ import annotations

import os
import time

from iotbpf import fleet

NODE_YEAR_S = 365 * 86400


def _spec(nodes: int, days: int) -> fleet.FleetSpec:
    return fleet.FleetSpec.from_dict({
        "version": 1, "name": "bench", "seed": 1, "duration": "%dd" % days,
        "groups": [{"count": nodes, "app": "sensor_node", "board": "nrf52840_dk",
                    "vary": {"battery_capacity_spread": 0.05, "link_loss": {"min": 0.0, "max": 0.1}}}],
    })


def run(quick: bool = False) -> list[dict]:
    nodes, days = (4, 10) if quick else (16, 91)
    spec = _spec(nodes, days)
    node_years = nodes * days / 365.0
    rows = []
    rates = {}
    for label, backend, workers in (("1 worker", "processes", 1), ("2 workers", "processes", 2),
                                    ("dask LocalCluster, 2 workers", "dask", 2)):
        started = time.perf_counter()
        fleet.run_fleet(spec, backend=backend, workers=workers, cluster=None)
        seconds = time.perf_counter() - started
        rates[label] = node_years / seconds
        rows.append({"name": "fleet %s (%d nodes x %d d)" % (label, nodes, days), "value": rates[label],
                     "unit": "node-years/s"})
    efficiency = rates["2 workers"] / (2 * rates["1 worker"])
    rows.append({"name": "parallel efficiency at 2 workers", "value": 100.0 * efficiency, "unit": "%"})
    best = max(rates.values())
    rows.append({"name": "projected time for 1000 node-years (best backend)", "value": 1000.0 / best / 60.0,
                 "unit": "min", "note": "projection from the measured throughput"})
    rows.append({"name": "cores on this machine", "value": os.cpu_count() or 1, "unit": ""})
    return rows
