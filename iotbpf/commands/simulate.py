"""`iotbpf simulate APP`: run a node in virtual time and print what happened (same seed, same bytes)."""

from __future__ import annotations

import argparse
import sys

from iotbpf.api import Node, duration_ns

NAME = "simulate"
HELP = "simulate a node running an app for days to years of virtual time"
EXAMPLE = """iotbpf simulate sensor_node --duration 1y
iotbpf simulate rx_filter --duration 1d --seed 7 --json
iotbpf simulate apps/app_monitor --events usage.jsonl"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", help="bundled app name, app folder or app.json")
    parser.add_argument("--board", metavar="B", help="board (bundled name or JSON file)")
    parser.add_argument("--duration", default="1d", metavar="D",
                        help="virtual time to simulate (1d, 30d, 1y)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="seed of every generator (default 0)")
    parser.add_argument("--events", metavar="FILE",
                        help="JSON-lines event trace to replay instead of the generators")
    parser.add_argument("--policy", metavar="P", help="scheduler policy")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--engine", default="compiled", choices=("compiled", "interp"),
                        help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    ns = duration_ns(args.duration)
    node = Node(args.app, board=args.board, seed=args.seed, policy=args.policy, events=args.events,
                engine=args.engine)
    progress = _progress_bar(ns) if sys.stderr.isatty() and not args.json else None
    result = node.simulate(ns, progress=progress)
    if progress is not None:
        sys.stderr.write("\r" + " " * 60 + "\r")
    if args.json:
        print(result.to_json())
    else:
        sys.stdout.write(result.text())
    return 0


def _progress_bar(total_ns: int):
    width = 40

    def show(now_ns: int) -> None:
        done = min(width, int(width * now_ns / total_ns)) if total_ns else width
        sys.stderr.write("\r[%s%s] %3d%%" % ("#" * done, "." * (width - done), 100 * done // width))
        sys.stderr.flush()

    return show
