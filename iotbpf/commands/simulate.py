"""`iotbpf simulate APP`: run a node in virtual time and print what happened (same seed, same bytes)."""

from __future__ import annotations

import argparse
import json
import sys

from iotbpf.api import Node, duration_ns
from iotbpf.ebpf.errors import IotbpfError
from iotbpf.report import attach as report_attach
from iotbpf.report import progress
from iotbpf.report.export import duty_cycle_percent
from iotbpf.report.text import duty_cycle_line

NAME = "simulate"
HELP = "simulate a node running an app for days to years of virtual time"
EXAMPLE = """iotbpf simulate sensor_node --duration 1y
iotbpf simulate rx_filter --duration 1d --seed 7 --json
iotbpf simulate sensor_node --duration 30d --compare always_on,duty_cycle,batching
iotbpf simulate apps/app_monitor --events usage.jsonl --report usage.json
iotbpf simulate sensor_node --fleet 20 --duration 30d"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from iotbpf.commands import fleet_cli

    parser.add_argument("app", nargs="?", help="bundled app name, app folder or app.json "
                        "(optional with --fleet SPEC.json)")
    parser.add_argument("--board", metavar="B", help="board (bundled name or JSON file; default: the app's)")
    parser.add_argument("--duration", default="1d", metavar="D",
                        help="virtual time to simulate: 1h, 1d, 30d, 1y (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="seed of every generator (default: %(default)s)")
    parser.add_argument("--events", metavar="FILE",
                        help="JSON-lines event trace to replay instead of the generators")
    parser.add_argument("--policy", metavar="P", help="scheduler policy (default: the app's)")
    parser.add_argument("--compare", metavar="P1,P2,...",
                        help="run once per policy (same seed) and print a table with the oracle")
    parser.add_argument("--json", action="store_true", help="print the node-result (or comparison) document as JSON: "
                        "the same document --report FILE.json writes")
    parser.add_argument("--engine", default="compiled", choices=("compiled", "interp"),
                        help=argparse.SUPPRESS)
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
    node = Node(args.app, board=args.board, seed=args.seed, policy=args.policy, events=args.events,
                engine=args.engine)
    node.build()
    session = report_attach.attach(node, args, ns)
    with progress.bar("simulate %s" % args.app, ns, enabled=not args.json) as bar:
        result = node.simulate(ns, progress=bar)
    if session is not None:
        session.finish(result)
    if args.json:
        doc = session.last_document if session is not None else None
        if doc is None:
            raise IotbpfError("--json needs an energy model (this node has no board)")
        print(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False))
    else:
        sys.stdout.write(result.text())
        energy = result.summary.get("energy")
        if energy:
            sys.stdout.write(duty_cycle_line(duty_cycle_percent(energy["components"], energy["duration_ns"])))
    return 0


def _compare(args: argparse.Namespace, ns: int) -> int:
    from iotbpf.kernel.scheduler import POLICIES, compare
    from iotbpf.report.export import comparison_document, comparison_rows
    from iotbpf.report.text import format_comparison

    policies = [p.strip() for p in args.compare.split(",") if p.strip()]
    if not policies:
        raise IotbpfError("--compare needs a comma-separated list of policies (known: %s)"
                          % ", ".join(POLICIES))
    plot, report, html = report_attach.check_output_args(args)
    if getattr(args, "mqtt", None):
        raise IotbpfError("--mqtt publishes one node's reports: run the policies one at a time to publish them")
    per_policy = bool(plot or report or html or args.plot_dir or args.json)
    schedulers, dead, nodes = {}, {}, {}
    with progress.bar("compare %s" % ",".join(policies), ns * len(policies), enabled=not args.json) as bar:
        for index, policy in enumerate(policies):
            node = Node(args.app, board=args.board, seed=args.seed, policy=policy, events=args.events,
                        engine=args.engine)
            runtime = node.build()
            if node.scheduler is None:
                raise IotbpfError("--compare needs a board (--board B, or \"board\" in app.json)")
            session = None
            if per_policy:
                session = report_attach.Session(runtime, _meta(runtime, policy, ns), ns, args.samples,
                                                timeline=bool(html)).start()
            offset = index * ns
            result = node.simulate(ns, progress=None if bar is None else (lambda t, o=offset: bar(o + t)))
            if session is not None:
                session.take_sample()
                result.events_handled -= session.samples_taken
                nodes[policy] = session.document(result)
            schedulers[policy] = node.scheduler
            dead[policy] = runtime.dead_at_ns
    rows = comparison_rows(schedulers, compare(schedulers), dead)
    meta = {"app": args.app, "board": next(iter(schedulers.values())).board.name, "seed": args.seed}
    doc = comparison_document(rows, ns, meta, nodes)
    report_attach.write_outputs(doc, report, plot, args.plot_dir, html)
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False))
    else:
        sys.stdout.write(format_comparison(rows))
    return 0


def _meta(runtime, policy: str, ns: int) -> dict:
    scheduler = runtime.scheduler
    app = ",".join(a.name for a in runtime.apps)
    return {"app": app, "node": "%s-%s" % (app, runtime.node_id), "node_id": runtime.node_id,
            "seed": runtime.seed, "policy": policy, "board": scheduler.board.name, "clock": "virtual",
            "duration_ns": ns}
