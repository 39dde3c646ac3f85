"""`iotbpf conformance`: run bpf_conformance .data files and report failures."""

from __future__ import annotations

import argparse

from iotbpf.ebpf import conformance
from iotbpf.ebpf.engines.vm import engine_available
from iotbpf.ebpf.errors import IotbpfError

NAME = "conformance"
HELP = "run bpf_conformance .data tests (files or folders) and print 'N passed, M failed'"
EXAMPLE = """iotbpf conformance bpf_conformance/tests   # git clone https://github.com/Alan-Jowett/bpf_conformance
iotbpf conformance bpf_conformance/tests/add.data --engine both   # (the vectors are not shipped)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help=".data files or folders of them")
    parser.add_argument("--engine", choices=("interp", "compiled", "compact", "both"), default="interp",
                        help="both: interp and compiled")
    parser.add_argument("--budget", type=int, default=conformance.DEFAULT_BUDGET, metavar="N",
                        help="instruction budget per test")
    parser.add_argument("-v", "--verbose", action="store_true", help="also list passing files")


def run(args: argparse.Namespace) -> int:
    if args.budget < 0:
        raise IotbpfError("--budget must be >= 0")
    engines = ("interp", "compiled") if args.engine == "both" else (args.engine,)
    for engine in engines:
        if not engine_available(engine):
            raise IotbpfError("engine %r is not available in this build" % engine)
    files = conformance.collect(args.paths)
    if not files:
        raise IotbpfError("no .data files found in %s (the bpf_conformance vectors are not shipped with iotbpf: "
                          "git clone https://github.com/Alan-Jowett/bpf_conformance, then pass its tests/ folder)"
                          % ", ".join(args.paths))
    passed = failed = 0
    for path in files:
        for engine in engines:
            result = conformance.run_file(path, engine, args.budget)
            if result.passed:
                passed += 1
                if args.verbose:
                    print("PASS %s [%s]%s" % (path, engine,
                                              " (skipped: %s)" % result.skipped if result.skipped else ""))
            else:
                failed += 1
                print("FAIL %s [%s]: expected %s, got %s" % (path, engine, result.expected, result.actual))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
