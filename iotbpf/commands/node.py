"""`iotbpf node APP --platform rpi|linux`: run an app in real time on this machine. Thin: the runtime,
GPIO and INA219 live in iotbpf.platforms.rpi; this wires GPIO, the meter and MQTT and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.report.attach import add_mqtt_arguments, default_outbox
from iotbpf.report.text import eng

NAME = "node"
HELP = "run an app in real time on a Raspberry Pi (GPIO, INA219) or any Linux box"
EXAMPLE = """iotbpf node sensor_node --platform linux --duration 30s
iotbpf node sensor_node --platform rpi --board rpi_zero2w --gpio BUTTON=17 --mqtt mqtt://broker
iotbpf node sensor_node --platform linux --mqtt mqtt://broker --key node.key --duration 1h
iotbpf node sensor_node --platform rpi --ina219 0x40 --shunt-ohms 0.1 --max-amps 0.8"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", help="bundled app name, app folder or app.json")
    parser.add_argument("--platform", required=True, choices=("rpi", "linux"),
                        help="rpi: real GPIO (gpiozero) and INA219; linux: timers and simulated sensors")
    parser.add_argument("--board", metavar="B", help="board of the energy model (e.g. rpi_zero2w)")
    parser.add_argument("--gpio", action="append", default=[], metavar="NAME=PIN",
                        help="a button on BCM pin PIN (pull-up, pressed = low); repeatable")
    parser.add_argument("--duration", default="10s", metavar="D", help="how long to run")
    parser.add_argument("--report-every", default="10s", metavar="T", help="report period")
    mqtt = parser.add_argument_group("reporting")
    add_mqtt_arguments(mqtt)
    parser.add_argument("--node", dest="node_name", help=argparse.SUPPRESS)   # the old name of --node-name
    parser.add_argument("--key", metavar="FILE",
                        help="accept signed remote commands (map updates, program updates) with this key")
    parser.add_argument("--ina219", metavar="ADDR", help="read measured power from an INA219 at ADDR")
    parser.add_argument("--i2c-bus", type=int, default=1, metavar="N", help="I2C bus of the INA219")
    parser.add_argument("--shunt-ohms", type=float, default=0.1, metavar="R", help="INA219 shunt resistance (ohm)")
    parser.add_argument("--max-amps", type=float, default=None, metavar="A", help="INA219 max current")
    parser.add_argument("--ina219-replay", metavar="TRACE",
                        help="replay a recorded INA219 register trace instead of the I2C bus")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the simulated sensors")
    parser.add_argument("--json", action="store_true", help="print the final report as JSON")
    parser.add_argument("--pin-dir", metavar="DIR",
                        help="restore app maps from DIR/<app>/<map>.pin and pin them there at the end")
    parser.add_argument("--trace-log", metavar="FILE",
                        help="write bpf_trace_printk and iot_log lines to FILE ('-': stdout) as they happen")
    parser.add_argument("--events-out", metavar="FILE",
                        help="write ring buffer / perf event array records to FILE as JSON lines")


def run(args: argparse.Namespace) -> int:
    from iotbpf.api import Node
    from iotbpf.kernel.clock import MonotonicClock
    from iotbpf.platforms import rpi

    duration_s = duration_ns(args.duration) / 1e9
    report_s = duration_ns(args.report_every) / 1e9
    if duration_s <= 0 or report_s <= 0:
        raise IotbpfError("--duration and --report-every must be positive")
    pins = rpi.parse_gpio_specs(args.gpio)
    if pins and args.platform != "rpi":
        raise IotbpfError("--gpio needs --platform rpi (on a plain Linux box the app's sim section "
                          "generates GPIO edges)")
    meter = make_meter(args)
    node = Node(args.app, board=args.board, seed=args.seed, clock=MonotonicClock(), pin_dir=args.pin_dir)
    runtime = node.build()
    from iotbpf.report import tracelog

    trace = tracelog.attach(runtime, args.trace_log)
    events = tracelog.EventsOut(runtime, args.events_out) if args.events_out else None
    gpio = None
    if pins:
        try:
            gpio = rpi.GpioInputs(pins, runtime.inject)
        except IotbpfError as exc:
            raise IotbpfError("%s (not a Raspberry Pi? try --platform linux, or "
                              "GPIOZERO_PIN_FACTORY=mock to try it out)" % exc) from None
    runtime.platform = rpi.RealtimePlatform(sim=node.platform, gpio=gpio)
    if args.platform == "rpi" and not _on_a_pi() and os.environ.get("GPIOZERO_PIN_FACTORY") != "mock":
        raise IotbpfError("--platform rpi: this machine is not a Raspberry Pi (%s); use --platform linux, "
                          "or GPIOZERO_PIN_FACTORY=mock to try it with mock pins" % os.uname().machine)
    if args.key and not args.mqtt:
        raise IotbpfError("--key needs --mqtt (commands arrive on iotbpf/<node>/cmd)")
    publisher = _publisher(args, node, start=False)
    handler = None
    if publisher is not None and args.key:
        from iotbpf.report.node import remote_control

        handler = remote_control(runtime, publisher, args.key)   # counter beside the key, not in /tmp
    if publisher is not None:
        publisher.start()
    reports = []

    def reporter(report):
        reports.append(report)
        if publisher is not None:
            seconds = max(1e-9, report["now_ns"] / 1e9)
            energy = report["measured_j"] if report["measured_j"] is not None else report["estimate_j"] or 0.0
            data = {"power_w": energy / seconds, "energy_j": energy, "source": report["measured_source"]}
            for key in ("estimate_j", "measured_j", "error_pct"):
                data[key] = report[key]
            publisher.report("energy", data)
            if "soc_percent" in report:
                publisher.report("battery", {"soc_percent": report["soc_percent"],
                                             "lifetime_days": report["lifetime_days"]})
                publisher.report("apps", {"apps": dict((name, {"energy_j": joules})
                                                       for name, joules in report["apps_j"].items())})
        if not args.json and sys.stdout.isatty():
            sys.stdout.write(_line(report) + "\n")

    realtime = rpi.RealtimeNode(runtime, gpio=gpio, meter=meter, reporter=reporter, report_every_s=report_s,
                                between=handler.process_pending if handler is not None else None)
    try:
        final = realtime.run(duration_s)
    finally:
        if trace is not None:
            trace.close()
        if events is not None:
            events.close()
    runtime.pin_maps()
    final["app"] = [m.name for m in node.manifests]
    final["platform"] = args.platform
    final["gpio"] = pins
    if publisher is not None:
        final["mqtt"] = {"delivered": close_publisher(publisher), "node": publisher.node}
    if args.json:
        print(json.dumps(final, indent=2))
    else:
        sys.stdout.write(_text(final))
    return 0


def make_meter(args):
    """The INA219 meter the options ask for (--ina219 ADDR or --ina219-replay TRACE), or None."""
    from iotbpf.platforms import rpi

    if args.ina219_replay:
        import time

        trace = rpi.Ina219Trace.load(args.ina219_replay)
        bus = rpi.ReplayI2CBus(trace, clock=time.monotonic, loop=True)
        max_amps = args.max_amps if args.max_amps is not None else trace.max_expected_amps
        return rpi.Ina219Meter(trace.shunt_ohms or args.shunt_ohms, max_amps, address=trace.address, bus=bus)
    if args.ina219:
        try:
            address = int(args.ina219, 0)
        except ValueError:
            raise IotbpfError("--ina219 %r: expected an I2C address such as 0x40" % args.ina219) from None
        busnum = getattr(args, "i2c_bus", 1)  # node has --i2c-bus; monitor always reads bus 1
        return rpi.Ina219Meter(args.shunt_ohms, args.max_amps, address=address, busnum=busnum)
    return None


def _publisher(args, node, start=True):
    if not args.mqtt:
        return None
    from iotbpf.report.mqtt import Publisher

    name = (args.node_name or node.manifests[0].name).replace("_", "-")
    outbox = args.outbox or default_outbox(name)
    os.makedirs(os.path.dirname(os.path.abspath(outbox)), exist_ok=True)
    # battery and lifetime are sent only by a node with an energy model (see reporter in run)
    announce = ("power", "energy") + (("battery", "lifetime") if node.scheduler is not None else ())
    publisher = Publisher(args.mqtt, name, outbox, model="iotbpf node", announce=announce, ca_certs=args.mqtt_ca,
                          tls_insecure=args.mqtt_insecure)
    return publisher.start() if start else publisher


def _on_a_pi() -> bool:
    try:
        with open("/proc/device-tree/model", errors="replace") as f:
            return "Raspberry Pi" in f.read()
    except OSError:
        return False


def close_publisher(publisher, timeout: float = 5.0) -> bool:
    """Deliver what is queued (connecting first if the run was too short to connect) and close;
    True when the broker acknowledged everything (else the outbox keeps it for the next run)."""
    publisher.wait_connected(timeout)
    return publisher.close(timeout=timeout)


def _line(report: dict) -> str:
    runs = sum(h["runs"] for h in report["hooks"].values())
    return "t=%.1fs  handler runs %d  faults %d  model %s J  measured %s J  error %s%%" % (
        report["now_ns"] / 1e9, runs, report["faults"], _j(report["estimate_j"]), _j(report["measured_j"]),
        "-" if report["error_pct"] is None else "%+.1f" % report["error_pct"])


def _j(value) -> str:
    return "-" if value is None else "%.3f" % value


def _text(final: dict) -> str:
    lines = ["node %s on %s: %.1f s real time" % (", ".join(final["app"]), final["platform"],
                                                  final["now_ns"] / 1e9)]
    for hook, stats in sorted(final["hooks"].items()):
        lines.append("  %-14s events %6d  runs %6d  faults %d" % (hook, stats["events"], stats["runs"],
                                                                  stats["faults"]))
    if final["measured_j"] is None:
        lines.append("energy: model %s (no power meter, nothing measured: --ina219 ADDR measures)"
                     % eng(final["estimate_j"], "J"))
    else:
        lines.append("energy: model %s, measured %s (%s), error %s%%" % (
            eng(final["estimate_j"], "J"), eng(final["measured_j"], "J"), final["measured_source"],
            "-" if final["error_pct"] is None else "%+.1f" % final["error_pct"]))
    if not any(stats["runs"] for hook, stats in final["hooks"].items() if hook != "boot"):
        lines.append("note: only the boot handler ran in %.1f s: the app's timers and events come less often; "
                     "run it longer (--duration)" % (final["now_ns"] / 1e9))
    return "\n".join(lines) + "\n"


def duration_ns(value: str) -> int:
    from iotbpf.api import duration_ns as api_duration_ns

    return api_duration_ns(value)
