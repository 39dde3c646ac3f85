"""`iotbpf bench`: run the benchmarks of every area and print them as ratios within one run."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil

from iotbpf import benchmarks
from iotbpf.ebpf.errors import IotbpfError

NAME = "bench"
HELP = "measure the VM, compiler, runtime and reporting (numbers for bench/RESULTS.md)"
EXAMPLE = """iotbpf bench
iotbpf bench vm compiler --quick
iotbpf bench runtime --json"""


def areas() -> list[str]:
    """Benchmark areas: the modules of iotbpf.benchmarks."""
    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if not m.name.startswith("_"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("areas", nargs="*", metavar="AREA",
                        help="which areas to run (default: all): " + ", ".join(areas()))
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args: argparse.Namespace) -> int:
    known = areas()
    chosen = args.areas or known
    for area in chosen:
        if area not in known:
            raise IotbpfError("unknown benchmark area %r (known: %s)" % (area, ", ".join(known)))
    results = []
    for area in chosen:
        module = importlib.import_module("iotbpf.benchmarks." + area)
        for row in module.run(quick=args.quick):
            row.setdefault("area", area)
            results.append(row)
            if not args.json:
                print("%-10s %-48s %14s %s" % (row["area"], row["name"], _fmt(row["value"]),
                                               row.get("unit", "")), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def _fmt(value) -> str:
    if isinstance(value, float):
        return "%.4g" % value
    return str(value)
