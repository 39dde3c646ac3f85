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
iotbpf simulate app_monitor --duration 1d
iotbpf simulate apps/app_monitor --events apps/app_monitor/usage.jsonl --report usage.json
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
                        help="JSON-lines event trace to replay instead of the generators (or an Android "
                        "batterystats --checkin/--history or usagestats dump)")
    parser.add_argument("--policy", metavar="P", help="scheduler policy (default: the app's)")
    parser.add_argument("--compare", metavar="P1,P2,...",
                        help="run once per policy (same seed) and print a table with the oracle")
    parser.add_argument("--json", action="store_true", help="print the node-result (or comparison) document as JSON: "
                        "the same document --report FILE.json writes")
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
    with progress.bar("simulate %s" % args.app, ns, enabled=not args.json) as bar:
        result = node.simulate(ns, progress=bar)
    if trace is not None:
        trace.close()
    if events is not None:
        events.close()
    if session is not None:
        session.finish(result)
    phone = getattr(node.platform, "phone", None) is not None
    if args.json:
        doc = session.last_document if session is not None else None
        if doc is None:
            raise IotbpfError("--json needs an energy model (this node has no board)")
        if phone:
            from iotbpf.report.apps import from_node

            doc = dict(doc, apps_report=from_node(node).to_dict())
        print(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False))
    else:
        sys.stdout.write(result.text())
        if phone:
            from iotbpf.report.apps import from_node

            sys.stdout.write(from_node(node).text())
        energy = result.summary.get("energy")
        if energy:
            sys.stdout.write(duty_cycle_line(duty_cycle_percent(energy["components"], energy["duration_ns"])))
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
    if first.startswith(("{", "[")):
        return path  # JSON lines (the node's bounded JSON reader reports anything malformed)
    from iotbpf.platforms.android_usage import load_trace

    trace = load_trace(path)
    for note in trace.notes:
        sys.stderr.write("note: %s: %s\n" % (path, note))
    return trace.events


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
    events = _events(args.events)
    with progress.bar("compare %s" % ",".join(policies), ns * len(policies), enabled=not args.json) as bar:
        for index, policy in enumerate(policies):
            node = Node(args.app, board=args.board, seed=args.seed, policy=policy, events=events,
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
