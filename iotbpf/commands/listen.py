"""`iotbpf listen URL`: subscribe to nodes' reports and show a live table (battery, power, lifetime).
Thin: subscribing, validation and de-duplication live in iotbpf.report.mqtt.Receiver.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from iotbpf.api import duration_ns
from iotbpf.ebpf.errors import RuntimeFailure

NAME = "listen"
HELP = "watch nodes' MQTT reports live: battery, power, lifetime, last seen"
EXAMPLE = """iotbpf listen mqtt://localhost
iotbpf listen mqtt://user:secret@broker:1883 --nodes 'greenhouse-*' --save reports.jsonl
iotbpf listen mqtt://localhost --duration 30s --json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL", help="broker: mqtt://[user[:password]@]host[:port] or mqtts://...")
    parser.add_argument("--nodes", default="*", metavar="PATTERN",
                        help="only nodes whose name matches this glob (default: all)")
    parser.add_argument("--save", metavar="FILE", help="append every report received to FILE (JSON lines)")
    parser.add_argument("--duration", metavar="D", help="stop after D (default: until Ctrl-C)")
    parser.add_argument("--refresh", default="1s", metavar="T", help="table refresh period on a terminal")
    parser.add_argument("--client-id", metavar="ID",
                        help="fixed client id with a persistent session (reports sent while away arrive later)")
    parser.add_argument("--mqtt-ca", metavar="FILE",
                        help="CA certificate that signed the broker's (mqtts://; default: the system's CAs)")
    parser.add_argument("--mqtt-insecure", action="store_true",
                        help="mqtts:// without checking the broker's certificate (testing only)")
    parser.add_argument("--ca", dest="mqtt_ca", help=argparse.SUPPRESS)   # the old names
    parser.add_argument("--insecure", dest="mqtt_insecure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--connect-timeout", default="10s", metavar="T",
                        help="give up if the broker cannot be reached within T (or --duration, if shorter)")
    parser.add_argument("--json", action="store_true", help="print the final table as JSON")


def run(args: argparse.Namespace) -> int:
    stop_after = duration_ns(args.duration) / 1e9 if args.duration else None
    refresh = max(0.1, duration_ns(args.refresh) / 1e9)
    from iotbpf.report.mqtt import Receiver  # paho: imported only when listening
    receiver = Receiver(args.url, nodes=args.nodes, client_id=args.client_id, persistent=bool(args.client_id),
                        keep=False, save=args.save, ca_certs=args.mqtt_ca, tls_insecure=args.mqtt_insecure).start()
    live = sys.stdout.isatty() and not args.json
    try:
        connect_s = duration_ns(args.connect_timeout) / 1e9
        if not receiver.wait_connected(connect_s if stop_after is None else min(connect_s, stop_after)):
            raise RuntimeFailure("cannot reach MQTT broker %r%s" % (
                receiver.url, ": " + receiver.last_error if receiver.last_error else ""))
        started = time.monotonic()
        while stop_after is None or time.monotonic() - started < stop_after:
            wait = refresh if stop_after is None else min(refresh, stop_after - (time.monotonic() - started))
            time.sleep(max(0.0, wait))
            if live:
                sys.stdout.write("\x1b[H\x1b[2J" + format_table(receiver) + "\n")
                sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    if args.json:
        print(json.dumps({"nodes": [v.as_dict() for _n, v in sorted(receiver.nodes.items())],
                          "duplicates_dropped": receiver.duplicates, "invalid": receiver.invalid[:20],
                          "invalid_count": receiver.invalid_count},
                         indent=2, sort_keys=True))
    elif not live:
        print(format_table(receiver))
    return 0


def format_table(receiver, now: float | None = None) -> str:
    """The live table: one row per node."""
    now = time.time() if now is None else now
    lines = ["%-24s %-8s %9s %11s %13s %10s %8s" % ("node", "status", "battery", "power", "lifetime",
                                                   "last seen", "reports")]
    for name, v in sorted(receiver.nodes.items()):
        lines.append("%-24s %-8s %9s %11s %13s %10s %8d" % (
            name[:24], v.status or "-", "-" if v.soc_percent is None else "%.1f %%" % v.soc_percent,
            _power(v.power_w), "-" if v.lifetime_days is None else "%.1f d" % v.lifetime_days,
            "-" if v.last_seen is None else "%.0f s ago" % max(0.0, now - v.last_seen), v.reports))
    if len(lines) == 1:
        lines.append("(no reports yet)")
    if receiver.duplicates:
        lines.append("%d duplicate reports dropped" % receiver.duplicates)
    if getattr(receiver, "invalid_count", 0):
        lines.append("%d invalid messages dropped (latest reasons: %s)" % (
            receiver.invalid_count, "; ".join(receiver.invalid[-3:])))
    return "\n".join(lines)


def _power(watts) -> str:
    if watts is None:
        return "-"
    if abs(watts) >= 1:
        return "%.3g W" % watts
    if abs(watts) >= 1e-3:
        return "%.3g mW" % (watts * 1e3)
    return "%.3g µW" % (watts * 1e6)
