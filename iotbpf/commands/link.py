"""`iotbpf link APP -o APP.dimg`: verify an app and link it into a signed device image."""

from __future__ import annotations

import argparse
import json

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.platforms import devimage

NAME = "link"
HELP = "verify an app and link it into a device image for the thin device runtime (iotbpf/device)"
EXAMPLE = """iotbpf link sensor_node -o sensor_node.dimg --board nrf52840_dk
iotbpf link apps/rx_filter --key node.key --counter 2 -o rx_filter.dimg"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", help="bundled app name, app folder or app.json")
    parser.add_argument("-o", "--output", metavar="FILE", help="image to write (default: APP.dimg)")
    parser.add_argument("--board", metavar="B", help="board model: its energy parameters go into the image")
    parser.add_argument("--device-config", metavar="FILE", help="JSON: the board's GPIO pins, ADC sensors, outputs")
    parser.add_argument("--key", metavar="FILE", help="the node's key (hex): sign with HMAC-SHA256")
    parser.add_argument("--counter", type=int, default=0,
                        help="image counter (an over-the-air update must carry a larger one)")


def run(args: argparse.Namespace) -> int:
    from iotbpf.platforms.device import check_device_config

    config = None
    if args.device_config:
        try:
            with open(args.device_config) as handle:
                config = json.load(handle)
        except OSError as exc:
            raise IotbpfError("cannot read %s: %s" % (args.device_config, exc.strerror)) from None
        except ValueError as exc:
            raise IotbpfError("%s is not valid JSON: %s" % (args.device_config, exc)) from None
        check_device_config(config, args.device_config)
    if args.counter < 0:
        raise IotbpfError("--counter must be >= 0")
    key = devimage.read_key(args.key) if args.key else None
    data = devimage.link(args.app, board=args.board, device_config=config, key=key, counter=args.counter)
    out = args.output or args.app.rstrip("/").split("/")[-1].replace(".json", "") + ".dimg"
    try:
        with open(out, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise IotbpfError("cannot write %s: %s" % (out, exc.strerror)) from None
    print("wrote %s: %d bytes%s" % (out, len(data), ", signed" if key else ""))
    return 0
