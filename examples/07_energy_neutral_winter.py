"""A solar LoRa node through a sub-arctic winter: fixed sampling periods die, an energy-neutral controller lives.

The node (apps/neutral_node on boards/lora_solar_node: nRF52840 + SX1276 at SF12, a 100 mAh LiPo
cell, a 2 x 2 cm solar cell lying flat) sits at Sand Point, Alaska (55.3 N) from November 1 under
the site's measured NREL TMY3 weather. It samples a sensor and sends every reading. With a fixed
period of 1 or 2 minutes (periods its summer sun easily sustains) the battery runs out in the
winter; with the energy-neutral controller (iotbpf.energy.neutral, after Kansal et al., ACM TECS
2007: per-hour-slot EWMA harvest prediction, the shortest period the predicted day sustains,
written into the app's .data.duty map every hour) it lives and keeps its battery near 60 %.
Prints one line per policy and saves a plot (state of charge, the controller's period, daily
harvest).

    python examples/07_energy_neutral_winter.py                 # 120 days, neutral_winter.png
    python examples/07_energy_neutral_winter.py --quick         # 75 days
"""

import argparse
import struct
import sys

import iotbpf
from iotbpf.energy.neutral import EnergyNeutral

NS = 1000000000
DAY = 86400 * NS


def run(policy, days, seed=1):
    """One node for ``days``: policy "neutral" or a fixed period in seconds. Returns a dict."""
    node = iotbpf.Node("neutral_node", seed=seed)
    rt = node.build()
    sched = node.scheduler
    controller = None
    if policy == "neutral":
        controller = EnergyNeutral(period_min_ns=60 * NS, period_max_ns=3600 * NS, target_soc=0.6)
        controller.attach(rt, "neutral_node")
    else:
        struct.pack_into("<Q", rt.apps[0].maps[".data.duty"].values, 0, int(policy) * NS)
    end = days * DAY
    rt.boot()
    rt.start_platform(end)
    soc = [(0.0, sched.battery.soc())]
    for day in range(1, days + 1):
        rt.run_until(day * DAY)
        rt.battery_permille()
        soc.append((min(day * DAY, rt.dead_at_ns or day * DAY) / DAY, sched.battery.soc()))
        if rt.dead_at_ns is not None:
            break
    summary = rt.summary()
    battery = summary["energy"]["battery"]
    return {"policy": policy, "dead_days": None if rt.dead_at_ns is None else rt.dead_at_ns / DAY,
            "samples": rt.hook_stats["timer"].runs, "soc": soc, "battery": battery,
            "lifetime_days": summary["energy"]["lifetime_days"], "controller": controller,
            "harvester": sched.harvester}


def plot(runs, days, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for r in runs:
        label = "energy-neutral" if r["policy"] == "neutral" else "fixed %d s" % r["policy"]
        if r["dead_days"] is not None:
            label += " (dies day %.1f)" % r["dead_days"]
        ax1.plot([d for d, _ in r["soc"]], [100 * s for _, s in r["soc"]], label=label)
    ax1.set_ylabel("state of charge (%)")
    ax1.legend(loc="lower left")
    ax1.set_title("Sand Point AK (55.3 N) from November 1, NREL TMY3 weather, 2 x 2 cm cell, 100 mAh LiPo")
    neutral = [r for r in runs if r["policy"] == "neutral"][0]
    hist = [(t / DAY, p / NS) for t, p, _soc, _h, _d in neutral["controller"].history if p is not None]
    ax2.plot([t for t, _ in hist], [p for _, p in hist], color="tab:green")
    ax2.set_ylabel("controller's period (s)")
    harvester = neutral["harvester"]
    ax3.bar([d + 0.5 for d in range(days)], [harvester.energy_j(d * DAY, (d + 1) * DAY) for d in range(days)],
            width=0.9, color="tab:orange")
    ax3.set_ylabel("harvest (J/day)")
    ax3.set_xlabel("day")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="simulate 75 days instead of 120")
    parser.add_argument("--plot", default="neutral_winter.png", help="image to write (.png/.svg/.pdf)")
    args = parser.parse_args(argv)
    days = 75 if args.quick else 120
    runs = [run(60, days), run(120, days), run("neutral", days)]
    print("%-16s %12s %9s %10s %10s" % ("policy", "dies (day)", "samples", "drawn mAh", "harvested"))
    for r in runs:
        b = r["battery"]
        print("%-16s %12s %9d %10.1f %10.1f" % (
            "energy-neutral" if r["policy"] == "neutral" else "fixed %d s" % r["policy"],
            "lives" if r["dead_days"] is None else "%.2f" % r["dead_days"], r["samples"], b["drawn_mah"],
            b["harvested_mah"]))
    plot(runs, days, args.plot)
    print("plot: %s" % args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
