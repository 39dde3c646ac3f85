"""`iotbpf deploy APP --port PORT`: verify, pack and copy an app and the device profile to a board."""

from __future__ import annotations

import argparse

from iotbpf.ebpf import boundedjson
from iotbpf.ebpf.errors import IotbpfError
from iotbpf.platforms import device

NAME = "deploy"
HELP = "verify an app on the host and copy it with the device profile to a MicroPython board"
EXAMPLE = """iotbpf deploy sensor_node --port /dev/ttyUSB0 --board esp32_devkit
iotbpf deploy sensor_node --port /dev/ttyACM0 --dry-run
iotbpf deploy apps/rx_filter --to-folder /tmp/board-fs"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", help="bundled app name, app folder or app.json")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--port", help="serial port of the board (mpremote connect PORT)")
    target.add_argument("--to-folder", metavar="DIR",
                        help="write the board's files into DIR instead (for `mpremote mount` or an SD card)")
    parser.add_argument("--board", metavar="B", help="board model for on-device energy accounting")
    parser.add_argument("--policy", metavar="P", help="scheduler policy on the device")
    parser.add_argument("--device-config", metavar="FILE",
                        help="JSON: the board's GPIO pins, ADC sensors and outputs (see iotbpf.platforms.mcu)")
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
    plan = device.plan_deploy(args.app, board=args.board, policy=args.policy, device_config=config)
    destination = args.port or args.to_folder
    if args.dry_run:
        try:
            print("would copy %d files to %s, then reset:" % (len(plan.files), destination))
            for line in plan.lines():
                print("  " + line)
        finally:   # the staging folder plan_deploy made: a dry run leaves nothing behind
            import shutil

            shutil.rmtree(plan.workdir, ignore_errors=True)
        return 0
    transport = device.MpremoteTransport(args.port, args.mpremote) if args.port \
        else device.FolderTransport(args.to_folder)
    device.deploy(plan, transport)
    print("deployed %s: %d files to %s" % (args.app, len(plan.files), destination))
    return 0
