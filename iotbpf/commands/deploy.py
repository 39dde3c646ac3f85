"""`iotbpf deploy APP --port PORT`: verify and link an app, copy its device image and the device runtime."""

from __future__ import annotations

import argparse
import tempfile

from iotbpf.ebpf import boundedjson
from iotbpf.ebpf.errors import IotbpfError
from iotbpf.platforms import device, devimage

NAME = "deploy"
HELP = "verify and link an app on the host, copy its image and the device runtime to a MicroPython board"
EXAMPLE = """iotbpf deploy sensor_node --port /dev/ttyUSB0 --board esp32_devkit
iotbpf deploy sensor_node --port /dev/ttyACM0 --dry-run
iotbpf deploy apps/rx_filter --to-folder /tmp/board-fs
iotbpf deploy sensor_node --port /dev/ttyUSB0 --key node.key --update --counter 2"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", help="bundled app name, app folder or app.json")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--port", help="serial port of the board (mpremote connect PORT)")
    target.add_argument("--to-folder", metavar="DIR",
                        help="write the board's files into DIR instead (for `mpremote mount` or an SD card)")
    parser.add_argument("--board", metavar="B", help="board model for on-device energy accounting")
    parser.add_argument("--key", metavar="FILE",
                        help="the node's key (hex, >= 16 bytes): sign the image with HMAC-SHA256 and copy the key")
    parser.add_argument("--device-config", metavar="FILE",
                        help="JSON: the board's GPIO pins, ADC sensors and outputs (see docs/mcu.md)")
    parser.add_argument("--update", action="store_true",
                        help="over-the-air update of a running node: copy only the new image (no reset); "
                             "a program that then faults 3 times is rolled back")
    parser.add_argument("--counter", type=int, default=None,
                        help="image counter (default 0; an --update needs one larger than the running image's)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be copied, copy nothing")
    parser.add_argument("--mpremote", metavar="PATH", help="the mpremote executable (default: python -m mpremote)")


def run(args: argparse.Namespace) -> int:
    config = None
    if args.device_config:
        try:
            with open(args.device_config) as handle:
                config = boundedjson.loads(handle.read())
        except OSError as exc:
            raise IotbpfError("cannot read %s: %s" % (args.device_config, exc.strerror)) from None
        except ValueError as exc:
            raise IotbpfError("%s is not valid JSON: %s" % (args.device_config, exc)) from None
        if not isinstance(config, dict):
            raise IotbpfError("%s: the device config must be a JSON object" % args.device_config)
    if args.counter is not None and args.counter < 0:
        raise IotbpfError("--counter must be >= 0")
    key = devimage.read_key(args.key) if args.key else None
    with tempfile.TemporaryDirectory(prefix="iotbpf-deploy-") as work:  # nothing left behind
        if args.update:
            plan = device.plan_update(args.app, board=args.board, device_config=config, key=key, workdir=work,
                                      counter=1 if args.counter is None else args.counter)
        else:
            plan = device.plan_deploy(args.app, board=args.board, device_config=config, key=key, workdir=work,
                                      counter=args.counter or 0)
        destination = args.port or args.to_folder
        if args.dry_run:
            print("would copy %d files to %s%s:" % (len(plan.files), destination,
                                                    ", then reset" if plan.reset else ""))
            for remote in plan.remotes():
                print("  :" + remote)
            print("flash: %d bytes (of %d)" % (plan.flash_bytes(), device.FLASH_BUDGET_BYTES))
            return 0
        transport = device.MpremoteTransport(args.port, args.mpremote) if args.port \
            else device.FolderTransport(args.to_folder)
        device.deploy(plan, transport)
    print("deployed %s: %d files to %s" % (args.app, len(plan.files), destination))
    return 0
    transport = device.MpremoteTransport(args.port, args.mpremote) if args.port \
        else device.FolderTransport(args.to_folder)
    device.deploy(plan, transport)
    print("deployed %s: %d files to %s" % (args.app, len(plan.files), destination))
    return 0
