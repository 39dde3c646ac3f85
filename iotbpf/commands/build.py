"""`iotbpf build apps/NAME`: recompile an app's C source into its committed object with clang-19."""

from __future__ import annotations

import argparse

from iotbpf.api import build_app

NAME = "build"
HELP = "compile an app's C source to its BPF object (clang-19 -O2 -g -target bpf)"
EXAMPLE = """iotbpf build apps/sensor_node
iotbpf build rx_filter -o /tmp/rx_filter.o
iotbpf build apps/app_monitor --clang /usr/bin/clang-19"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", help="app folder, app.json, or bundled app name")
    parser.add_argument("-o", "--output", metavar="FILE", help="object to write (default: the manifest's)")
    parser.add_argument("--clang", metavar="PATH", help="the clang to use (default: clang-19)")
    parser.add_argument("--cpu", default="v3", choices=("v1", "v2", "v3", "v4"), help="BPF ISA version")


def run(args: argparse.Namespace) -> int:
    out = build_app(args.app, args.output, args.clang, args.cpu)
    print("built %s" % out)
    return 0
