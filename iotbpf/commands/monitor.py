"""`iotbpf monitor`: per-app CPU, wakeups, I/O and energy on this Linux box, or from an Android dump.
Thin: sampling and attribution live in iotbpf.platforms.linux and .android; this wires and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.report.attach import add_mqtt_arguments, check_output_args, default_outbox, write_outputs
from iotbpf.report.export import android_app_usage, monitor_document

MIN_INTERVAL_S = 0.01   # --interval: a sample of /proc costs milliseconds itself

NAME = "monitor"
HELP = "per-app CPU, wakeups, I/O and energy of this Linux box (or an Android batterystats dump)"
EXAMPLE = """iotbpf monitor
iotbpf monitor --interval 1s --duration 10s --group-by uid --json
iotbpf monitor --duration 1m --mqtt mqtt://localhost --report usage.json
iotbpf monitor --backend ebpf --duration 10s     (as root: counted inside the kernel)
iotbpf monitor --android-checkin checkin.txt --power-profile power_profile.xml"""

DEFAULT_BOARD = "rpi4"  # the sourced ARM Linux host among the bundled boards


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interval", default="1s", metavar="T", help="sampling interval")
    parser.add_argument("--duration", metavar="D", help="stop after D (default: run until Ctrl-C)")
    parser.add_argument("--backend", default="proc", choices=("proc", "ebpf", "auto"),
                        help="where per-process numbers come from: /proc polling (default), an in-kernel eBPF "
                             "collector (root or CAP_BPF, BTF), or auto (eBPF when the kernel allows it)")
    parser.add_argument("--group-by", default="exe", choices=("exe", "comm", "uid", "cgroup"),
                        help="what makes an app (exe: the executable's name)")
    parser.add_argument("--board", metavar="B",
                        help="board whose CPU model prices CPU time (default %s)" % DEFAULT_BOARD)
    parser.add_argument("--top", type=int, default=20, metavar="N", help="rows in the live table")
    reporting = parser.add_argument_group("reporting")
    add_mqtt_arguments(reporting)
    parser.add_argument("--node", dest="node_name", help=argparse.SUPPRESS)   # the old name of --node-name
    reporting.add_argument("--plot", metavar="FILE.png", help="save all plots in one image")
    reporting.add_argument("--plot-dir", metavar="DIR", help="save one image per plot in DIR")
    reporting.add_argument("--report", metavar="FILE",
                           help="save the document as FILE.json, or FILE.csv with a FILE.meta.json sidecar")
    reporting.add_argument("--html", metavar="FILE.html",
                           help="save a self-contained interactive report (opens offline)")
    parser.add_argument("--json", action="store_true",
                        help="print the monitor (or app-usage) document as JSON: the same one --report writes")
    parser.add_argument("--ina219", metavar="ADDR", help="measured power from an INA219 at ADDR (I2C bus 1)")
    parser.add_argument("--shunt-ohms", type=float, default=0.1, metavar="R", help="INA219 shunt resistance (ohm)")
    parser.add_argument("--max-amps", type=float, default=None, metavar="A", help="INA219 max current")
    parser.add_argument("--ina219-replay", metavar="TRACE",
                        help="replay a recorded INA219 register trace as the measured power")
    parser.add_argument("--android-checkin", metavar="FILE",
                        help="import `dumpsys batterystats --checkin` output instead of sampling")
    parser.add_argument("--power-profile", metavar="FILE",
                        help="the device's power_profile.xml (with --android-checkin)")
    parser.add_argument("--proc-root", default="/proc", help=argparse.SUPPRESS)
    parser.add_argument("--sys-root", default="/sys", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if args.power_profile and not args.android_checkin:
        raise IotbpfError("--power-profile goes with --android-checkin")
    if args.top < 1:
        raise IotbpfError("--top must be >= 1")
    check_output_args(args)
    if args.android_checkin:
        return _android(args)
    interval_s = duration_ns(args.interval) / 1e9
    duration_s = duration_ns(args.duration) / 1e9 if args.duration else None
    if interval_s < MIN_INTERVAL_S:
        raise IotbpfError("--interval %s is too short: at least %gms (a sample reads /proc)"
                          % (args.interval, MIN_INTERVAL_S * 1e3))
    if duration_s is None and not sys.stdout.isatty():
        raise IotbpfError("--duration is required when the output is not a terminal")
    return _linux(args, interval_s, duration_s)


# ------------------------------------------------------------------ Linux


def _cpu_model(board):
    """The board's CPU model, and a note when the default board is not this machine's kind."""
    from iotbpf.platforms.linux import cpu_model_for_board

    if board is not None:
        return cpu_model_for_board(board), None
    note = None
    machine = os.uname().machine
    if machine not in ("aarch64", "armv7l", "armv8l"):
        note = ("no CPU model for this %s host: energy is what this CPU time costs on board %s (a sourced "
                "Raspberry Pi 4 model); pass --board, or read RAPL as root to measure" % (machine, DEFAULT_BOARD))
    return cpu_model_for_board(DEFAULT_BOARD), note


class _AppMonitorFeed:
    """Delivers each interval's app_usage events to the app_monitor eBPF app on a real-time node."""

    def __init__(self):
        from iotbpf.api import Node
        from iotbpf.kernel.clock import MonotonicClock

        self.node = Node("app_monitor", clock=MonotonicClock())
        self.runtime = self.node.build()
        self.runtime.boot()
        self.names = {}

    def feed(self, events: list) -> None:
        for event in events:
            self.names[event["uid"]] = event["app"]
            fields = dict((k, v) for k, v in event.items() if k != "app")
            self.runtime.raise_event("app_usage", fields)

    def counters(self) -> dict:
        stats = self.node.app_stats("app_monitor")
        return dict((self.names.get(uid, "uid %d" % uid), values) for uid, values in stats.items())


def _publisher(args):
    if not args.mqtt:
        return None
    from iotbpf.report.mqtt import Publisher

    node = args.node_name or ("monitor-" + os.uname().nodename.split(".")[0]).replace("_", "-")
    outbox = args.outbox or default_outbox(node)
    os.makedirs(os.path.dirname(os.path.abspath(outbox)), exist_ok=True)
    # monitor publishes energy (power, total) and apps, never a battery: announce only those
    announce = () if args.android_checkin else ("power", "energy")
    return Publisher(args.mqtt, node, outbox, model="iotbpf monitor", announce=announce, ca_certs=args.mqtt_ca,
                     tls_insecure=args.mqtt_insecure).start()


def _linux(args, interval_s, duration_s) -> int:
    from iotbpf.commands.node import close_publisher, make_meter
    from iotbpf.platforms.linux import (
        LinuxMonitor,
        app_usage_events,
        find_power_sources,
        format_table,
        run_monitor,
    )
    from iotbpf.platforms.rpi import PowerIntegrator

    model, model_note = _cpu_model(args.board)
    meter = make_meter(args)
    sources = None
    integrator = None
    notes = []
    if meter is not None:
        integrator = PowerIntegrator(meter, period_s=min(0.1, interval_s / 4))
        found, notes = find_power_sources(args.sys_root)
        sources = [integrator] + found  # the INA219 first: it measures the whole board
    collector, backend_note = _collector(args)
    if collector is not None:
        from iotbpf.platforms.kernel.collector import KernelMonitor

        monitor = KernelMonitor(model, collector, group_by=args.group_by, proc_root=args.proc_root,
                                sys_root=args.sys_root, power_sources=sources)
    else:
        monitor = LinuxMonitor(model, group_by=args.group_by, proc_root=args.proc_root, sys_root=args.sys_root,
                               power_sources=sources)
    if backend_note:
        monitor.note(backend_note)
    for note in notes:
        monitor.note(note)
    if integrator is not None:
        integrator.start()
    if model_note:
        monitor.note(model_note)
    try:
        feed = _AppMonitorFeed()
    except (IotbpfError, ImportError) as exc:
        feed = None
        monitor.note("app_monitor eBPF app not loaded (%s): counters are kept in Python only" % exc)
    publisher = _publisher(args)
    live = sys.stdout.isatty() and not args.json
    timeline = []
    app_energy = {}

    def on_interval(interval):
        events = app_usage_events(interval, now_ns=int(interval.end * 1e9))
        for u in interval.apps:  # the idle baseline and unattributed CPU are the report's "system"
            name = "system" if u.app.startswith("[") else u.app
            app_energy[name] = app_energy.get(name, 0.0) + u.energy_j
        if feed is not None:
            feed.feed(events)
        timeline.append((interval.end, dict((u.app, u.energy_j / interval.seconds) for u in interval.apps
                                            if interval.seconds > 0)))
        if publisher is not None:
            apps = dict((u.app, _app_dict(u, interval.seconds)) for u in interval.apps)
            publisher.report("apps", {"apps": apps})
            power = interval.estimate_j / interval.seconds if interval.seconds else 0.0
            publisher.report("energy", {"power_w": power, "energy_j": monitor.total_estimate_j,
                                        "estimate_j": interval.estimate_j, "measured_j": interval.measured_j,
                                        "error_pct": interval.error_pct, "source": interval.energy_source})
        if live:
            sys.stdout.write("\x1b[H\x1b[2J" + format_table(interval, monitor, args.top))
            sys.stdout.flush()

    interrupted = False
    try:
        run_monitor(monitor, interval_s, duration_s, on_interval)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if integrator is not None:
            integrator.stop()
    try:
        summary = monitor.summary()
    finally:
        if collector is not None:
            collector.close()  # detach and unload: nothing stays in the kernel
    if collector is None:
        from iotbpf.platforms.kernel.collector import PROC_SOURCES

        summary["backend"] = "proc"
        summary["sources"] = dict(PROC_SOURCES)
    if feed is not None:
        from iotbpf.report.apps import from_counters

        summary["app_monitor"] = feed.counters()
        total = sum(app_energy.values())
        summary["apps_report"] = from_counters(feed.node.app_stats("app_monitor"), feed.names, app_energy,
                                               total, "linux monitor").to_dict()
    if publisher is not None:
        summary["mqtt"] = {"delivered": close_publisher(publisher), "node": publisher.node}
    doc = monitor_document(summary, timeline, os.uname().nodename, model_note is None)
    if "mqtt" in summary:
        doc["mqtt"] = summary["mqtt"]
    write_outputs(doc, args.report, args.plot, args.plot_dir, args.html)
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False))
    else:  # after the live table too: the totals of the whole run
        sys.stdout.write(("\n" if live else "") + _summary_text(summary, args.top))
    return 130 if interrupted else 0


def _app_dict(usage, seconds) -> dict:
    """An app's interval as reported over MQTT; the eBPF backend adds its network bytes."""
    out = usage.to_dict(seconds)
    if hasattr(usage, "net_tx_bytes"):
        out["net_tx_bytes"] = usage.net_tx_bytes
        out["net_rx_bytes"] = usage.net_rx_bytes
    return out


def _collector(args):
    """(the in-kernel collector or None, a note on the backend) for --backend."""
    if args.backend == "proc":
        return None, None
    from iotbpf.platforms.kernel.libbpf import KernelError, KernelUnavailable

    try:
        if args.proc_root != "/proc" or args.sys_root != "/sys":
            raise KernelUnavailable("the eBPF collector watches this machine, not --proc-root/--sys-root trees")
        from iotbpf.platforms.kernel.collector import Collector

        collector = Collector()
    except (KernelUnavailable, KernelError) as exc:
        if args.backend == "ebpf":
            raise KernelUnavailable("--backend ebpf: %s" % exc) from None
        return None, "backend proc (/proc polling): the eBPF collector is not available: %s" % exc
    return collector, "backend ebpf: per-process numbers counted in the kernel (%s)" % ", ".join(collector.attached)


def _summary_text(summary: dict, top: int) -> str:
    net = summary.get("backend") == "ebpf"
    lines = ["iotbpf monitor: %d intervals, %.1f s, group by %s, model %s, backend %s" % (
        summary["intervals"], summary["seconds"], summary["group_by"], summary["model"]["name"],
        summary.get("backend", "proc")),
        "%-28s %5s %9s %9s %10s  %s" % ("APP", "PROCS", "CPU s", "WAKEUPS", "ENERGY J", "SOURCE")
        + ("  %10s %10s" % ("NET TX", "NET RX") if net else "")]
    apps = [a for a in summary["apps"] if a["app"] != "[idle]"][:max(0, top - 1)] + \
        [a for a in summary["apps"] if a["app"] == "[idle]"]
    for app in apps:
        source = "model" if app["source"].startswith("model") else app["source"].split(",")[0]
        lines.append("%-28s %5d %9.2f %9d %10.3f  %s" % (app["app"][:28], app["processes"], app["cpu_s"],
                                                         app["wakeups"], app["energy_j"], source)
                     + ("  %10d %10d" % (app.get("net_tx_bytes", 0), app.get("net_rx_bytes", 0)) if net else ""))
    if summary["measured_j"] is not None:
        lines.append("model vs measurement: estimate %.3f J, measured %.3f J, error %s%%" % (
            summary["estimate_j"], summary["measured_j"],
            "-" if summary["error_pct"] is None else "%+.1f" % summary["error_pct"]))
    else:
        lines.append("model estimate %.3f J (no measured power source)" % summary["estimate_j"])
    mon = summary["monitor"]
    lines.append("monitor itself: %.2f ms CPU per sample = %.3f%% of one core at 1 s sampling; whole process "
                 "%s" % (mon["cpu_s_per_sample"] * 1000.0, mon["percent_at_1s_sampling"],
                         "-" if mon["process_percent_of_one_core"] is None
                         else "%.2f%% of one core" % mon["process_percent_of_one_core"]))
    if "kernel_cpu_s" in mon and mon["kernel_cpu_s"] is not None:
        lines.append("in-kernel collector: %.3f ms of BPF programs = %.4f%% of one core; with the reader %.4f%%" % (
            mon["kernel_cpu_s"] * 1000.0, mon["kernel_percent_of_one_core"], mon["total_percent_of_one_core"]))
    if "app_monitor" in summary:
        lines.append("app_monitor eBPF counters: %d apps" % len(summary["app_monitor"]))
    for field, source in sorted(summary.get("sources", {}).items()):
        lines.append("source of %s: %s" % (field, source))
    for note in summary["notes"]:
        lines.append("note: " + note)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ Android


def _android(args) -> int:
    from iotbpf.commands.node import close_publisher
    from iotbpf.platforms.android import app_usage_events, attribute, load_checkin, load_power_profile

    if not args.power_profile:
        raise IotbpfError("--android-checkin needs --power-profile FILE (the device's power_profile.xml)")
    checkin = load_checkin(args.android_checkin)
    profile = load_power_profile(args.power_profile)
    comparison = attribute(checkin, profile, os.path.basename(args.power_profile))
    report = comparison.to_dict()
    from iotbpf.report.apps import from_android

    apps_report = from_android(checkin, comparison)
    report["apps_report"] = apps_report.to_dict()
    events = app_usage_events(checkin, comparison)
    try:
        feed = _AppMonitorFeed()
        feed.feed(events)
        report["app_monitor"] = feed.counters()
    except (IotbpfError, ImportError) as exc:
        report["notes"].append("app_monitor eBPF app not loaded (%s)" % exc)
    publisher = _publisher(args)
    if publisher is not None:
        apps = dict((r["name"], {"ours_mah": r["ours_mah"], "android_mah": r["android_mah"],
                                 "diff_mah": r["diff_mah"]}) for r in report["rows"])
        publisher.report("apps", {"apps": apps})
        report["mqtt"] = {"delivered": close_publisher(publisher), "node": publisher.node}
    doc = android_app_usage(report, os.path.basename(args.power_profile))
    doc["run"] = {k: v for k, v in report.items() if k not in ("rows", "notes", "mqtt")}
    if "mqtt" in report:
        doc["mqtt"] = report["mqtt"]
    write_outputs(doc, args.report, args.plot, args.plot_dir, args.html)
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False))
    else:
        sys.stdout.write(comparison.table(args.top) + "\n\n")
        sys.stdout.write(apps_report.text(args.top))
        for note in report["notes"]:
            sys.stdout.write("note: %s\n" % note)
    return 0


def duration_ns(value: str) -> int:
    from iotbpf.api import duration_ns as api_duration_ns

    return api_duration_ns(value)
