"""`iotbpf simulate --fleet`: the fleet options of `simulate` and how their results are printed. Not a
subcommand of its own (not in iotbpf.cli.COMMANDS): `simulate` adds these options and hands over.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from iotbpf import fleet
from iotbpf.ebpf.errors import IotbpfError
from iotbpf.report.export import fleet_document
from iotbpf.report.progress import NodeBar

HISTOGRAM_MIN_SPREAD_S = 60.0  # lifetimes closer than this get no histogram in the text summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fleets")
    group.add_argument("--fleet", metavar="SPEC|N",
                       help="simulate a fleet: a fleet.json spec, or a node count for APP on --board")
    group.add_argument("--workers", type=int, metavar="N", help="worker processes (default: all cores)")
    group.add_argument("--backend", choices=fleet.BACKENDS, default=None,
                       help="where nodes run (default: processes; dask when --cluster is given)")
    group.add_argument("--cluster", metavar="URL",
                       help="a Dask scheduler (tcp://host:8786), or 'local' for a LocalCluster "
                       "started for you")


def spec_from_args(args: argparse.Namespace) -> fleet.FleetSpec:
    """A FleetSpec from ``--fleet SPEC.json`` or ``--fleet N`` plus APP/--board/--policy/--duration/--seed."""
    value = args.fleet
    if value.isdigit():
        if not getattr(args, "app", None):
            raise IotbpfError("--fleet N needs an APP (or give a fleet.json spec)")
        data = {"version": fleet.SPEC_VERSION, "seed": getattr(args, "seed", 0) or 0,
                "duration": getattr(args, "duration", "1d") or "1d",
                "groups": [{"count": int(value), "app": args.app,
                            "board": getattr(args, "board", None) or "nrf52840_dk"}]}
        if getattr(args, "policy", None):
            data["policy"] = args.policy
        return fleet.FleetSpec.from_dict(data, where="--fleet %s" % value)
    if not os.path.exists(value):
        raise IotbpfError("--fleet: %s is neither a node count nor an existing fleet spec file" % value)
    return fleet.FleetSpec.from_file(value)


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    backend = args.backend or ("dask" if args.cluster else "processes")
    if args.cluster and backend != "dask":
        raise IotbpfError("--cluster needs --backend dask")
    if args.cluster and args.cluster != "local":
        fleet.check_cluster_address(args.cluster)
    if args.workers is not None and args.workers < 1:
        raise IotbpfError("--workers must be at least 1")
    as_json = getattr(args, "json", False)
    progress = NodeBar("fleet" if spec.name == "fleet" else "fleet " + spec.name) if not as_json else None
    report = fleet.run_fleet(spec, backend=backend, workers=args.workers, cluster=args.cluster,
                             progress=progress)
    doc = fleet_document(report)
    _write_outputs(doc, args)
    if as_json:
        print(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False))
    else:
        sys.stdout.write(format_report(report))
    return 0


def _write_outputs(doc: dict, args: argparse.Namespace) -> None:
    from iotbpf.report.attach import check_output_args, write_outputs

    plot, report, html = check_output_args(args)
    write_outputs(doc, report, plot, getattr(args, "plot_dir", None), html)


def format_report(report: dict) -> str:
    spec, stats = report["spec"], report["stats"]
    groups = ", ".join("%d x %s on %s" % (g["count"], g["app"], g["board"]) for g in spec["groups"])
    days = spec["duration_s"] / 86400.0
    lines = ["fleet %s: %d nodes (%s), %.4g days simulated, policy %s, seed %d"
             % (spec["name"], stats["nodes"], groups, days, spec["policy"], spec["seed"])]
    node_years = stats["nodes"] * days / 365.0
    rate = node_years / max(report["seconds"], 1e-9)
    lines.append("backend %s, %d worker%s, %.1f s (%.3g node-years/s)"
                 % (report["backend"], report["workers"], "" if report["workers"] == 1 else "s",
                    report["seconds"], rate))
    life = stats["lifetime_days"]
    if life["min"] is not None:
        lines.append("lifetime (days): min %.1f  p5 %.1f  p25 %.1f  median %.1f  p75 %.1f  p95 %.1f"
                     "  max %.1f" % tuple(life[k] for k in ("min", "p5", "p25", "p50", "p75", "p95", "max")))
    first = stats["first_death"]
    if first is None:
        lines.append("no node ran out of battery during the run")
    else:
        lines.append("first node to die: %s after %.2f days (%d of %d nodes died)"
                     % (first["node"], first["days"], stats["dead_nodes"], stats["nodes"]))
    lines.append("energy %.6g J in all, deadline misses %d, faults %d"
                 % (stats["energy_j_total"], stats["deadline_misses_total"], stats["faults_total"]))
    hist = stats["lifetime_histogram"]
    spread_s = (life["max"] - life["min"]) * 86400.0 if life["min"] is not None else 0.0
    if hist["counts"] and stats["nodes"] > 1 and spread_s < HISTOGRAM_MIN_SPREAD_S:
        # bins narrower than a second would only show float noise as a distribution
        lines.append("lifetime histogram: none, every lifetime is within %.3g s of the others" % spread_s)
    elif hist["counts"]:
        top = max(hist["counts"])
        edges = hist["edges"]
        width = edges[1] - edges[0]
        decimals = 1  # enough for neighbouring edges to print differently
        while decimals < 6 and width < 10.0 ** -decimals:
            decimals += 1
        lines.append("lifetime histogram:")
        for i, count in enumerate(hist["counts"]):
            bar = "#" * ((40 * count + top - 1) // top)
            lines.append("  %s-%s d %6d %s" % (("%.*f" % (decimals, edges[i])).rjust(8),
                                               ("%.*f" % (decimals, edges[i + 1])).ljust(8), count, bar))
    return "\n".join(lines) + "\n"
