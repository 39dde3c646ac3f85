"""`iotbpf simulate APP`: run a node in virtual time and print what happened (same seed, same bytes)."""

from __future__ import annotations

import argparse
import json
import sys

from iotbpf.api import Node, duration_ns
from iotbpf.ebpf.errors import IotbpfError
from iotbpf.report import attach as report_attach

NAME = "simulate"
HELP = "simulate a node running an app for days to years of virtual time"
EXAMPLE = """iotbpf simulate sensor_node --duration 1y
iotbpf simulate rx_filter --duration 1d --seed 7 --json
iotbpf simulate sensor_node --duration 30d --compare always_on,duty_cycle,batching
iotbpf simulate app_monitor --duration 1d
iotbpf simulate apps/app_monitor --events apps/app_monitor/usage.jsonl --report usage.json
iotbpf simulate sensor_node --fleet 20 --duration 30d"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from iotbpf.commands import fleet_cli

    parser.add_argument("app", nargs="?", help="bundled app name, app folder or app.json "
                        "(optional with --fleet SPEC.json)")
    parser.add_argument("--board", metavar="B", help="board (bundled name or JSON file; default: the app's)")
    parser.add_argument("--duration", default="1d", metavar="D",
                        help="virtual time to simulate (1d, 30d, 1y)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="seed of every generator (default 0)")
    parser.add_argument("--events", metavar="FILE",
                        help="JSON-lines event trace to replay instead of the generators (or an Android "
                        "batterystats --checkin/--history or usagestats dump)")
    parser.add_argument("--policy", metavar="P", help="scheduler policy (default: the app's)")
    parser.add_argument("--compare", metavar="P1,P2,...",
                        help="run once per policy (same seed) and print a table with the oracle")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--engine", default="compiled", choices=("compiled", "interp"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--trace-log", metavar="FILE",
                        help="write bpf_trace_printk and iot_log lines with their virtual times to "
                             "FILE as they happen ('-': stdout)")
    parser.add_argument("--trace-limit", type=int, default=100_000, metavar="N",
                        help="write at most N trace/log lines, count the rest (default 100000)")
    parser.add_argument("--pin-dir", metavar="DIR",
                        help="restore app maps from DIR/<app>/<map>.pin at boot and pin them there "
                             "after the run (read them with `iotbpf map dump`)")
    parser.add_argument("--events-out", metavar="FILE",
                        help="write every ring buffer / perf event array record the programs emit "
                             "to FILE as JSON lines, when it is emitted ('-': stdout)")
    report_attach.add_arguments(parser)
    fleet_cli.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "fleet", None):
        from iotbpf.commands import fleet_cli

        return fleet_cli.run(args)
    if not args.app:
        raise IotbpfError("simulate needs an APP (a bundled name, an app folder or an app.json)")
    ns = duration_ns(args.duration)
    if args.compare:
        return _compare(args, ns)
    node = Node(args.app, board=args.board, seed=args.seed, policy=args.policy, events=_events(args.events),
                engine=args.engine, pin_dir=args.pin_dir)
    from iotbpf.report import tracelog

    runtime = node.build()
    trace = tracelog.attach(runtime, args.trace_log, args.trace_limit)
    events = tracelog.EventsOut(runtime, args.events_out) if args.events_out else None
    session = report_attach.attach(node, args, ns)
    progress = _progress_bar(ns) if sys.stderr.isatty() and not args.json else None
    result = node.simulate(ns, progress=progress)
    if progress is not None:
        sys.stderr.write("\r" + " " * 60 + "\r")
    if trace is not None:
        trace.close()
    if events is not None:
        events.close()
    if session is not None:
        session.finish(result)
    phone = getattr(node.platform, "phone", None) is not None
    if args.json:
        if phone:
            from iotbpf.report.apps import from_node

            data = json.loads(result.to_json())
            data["apps_report"] = from_node(node).to_dict()
            print(json.dumps(data, indent=2, sort_keys=True))
        else:
            print(result.to_json())
    else:
        sys.stdout.write(result.text())
        if phone:
            from iotbpf.report.apps import from_node

            sys.stdout.write(from_node(node).text())
    return 0


def _events(path: str | None):
    """``--events FILE``: a JSON-lines trace as it is, or an Android dump (`dumpsys batterystats
    --checkin` or `--history`, `dumpsys usagestats`) converted to app_usage events."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096)
    except OSError:
        return path  # the node reports the unreadable file
    first = next((line.strip() for line in head.splitlines() if line.strip() and not line.startswith("#")), "")
    if first.startswith("{"):
        return path
    from iotbpf.platforms.android_usage import load_trace

    trace = load_trace(path)
    for note in trace.notes:
        sys.stderr.write("note: %s: %s\n" % (path, note))
    return trace.events


def _compare(args: argparse.Namespace, ns: int) -> int:
    from iotbpf.kernel.scheduler import POLICIES, compare, format_compare

    policies = [p.strip() for p in args.compare.split(",") if p.strip()]
    if not policies:
        raise IotbpfError("--compare needs a comma-separated list of policies (known: %s)"
                          % ", ".join(POLICIES))
    schedulers = {}
    session = None
    first = None
    events = _events(args.events)
    for policy in policies:
        node = Node(args.app, board=args.board, seed=args.seed, policy=policy, events=events,
                    engine=args.engine)
        node.build()
        if node.scheduler is None:
            raise IotbpfError("--compare needs a board (--board B, or \"board\" in app.json)")
        if session is None and first is None:
            session = report_attach.attach(node, args, ns)
        result = node.simulate(ns)
        first = first or result
        schedulers[policy] = node.scheduler
    rows = compare(schedulers)
    if session is not None:
        session.finish(first, policies=rows)
    if args.json:
        print(json.dumps({"version": 1, "duration_ns": ns, "seed": args.seed, "policies": rows},
                         indent=2, sort_keys=True))
    else:
        sys.stdout.write(format_compare(rows).rstrip("\n") + "\n")
    return 0


def _progress_bar(total_ns: int):
    width = 40

    def show(now_ns: int) -> None:
        done = min(width, int(width * now_ns / total_ns)) if total_ns else width
        sys.stderr.write("\r[%s%s] %3d%%" % ("#" * done, "." * (width - done), 100 * done // width))
        sys.stderr.flush()

    return show
