"""`iotbpf pack`: turn a clang BPF object into a portable .ibpf bundle (thin: see ebpf/loader/bundle.py)."""

from __future__ import annotations

import argparse

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.ebpf.loader.bundle import save_bundle
from iotbpf.ebpf.loader.elf import load_elf_object, printable

NAME = "pack"
HELP = "pack a clang -target bpf object (.o) into a portable .ibpf bundle"
EXAMPLE = """iotbpf pack apps/sensor_node/sensor_node.o -o sensor_node.ibpf
iotbpf run sensor_node.ibpf --section timer"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("object", metavar="APP.o", help="object compiled with clang -O2 -g -target bpf")
    parser.add_argument("-o", "--output", metavar="APP.ibpf", help="bundle to write (default: APP.ibpf)")


def run(args: argparse.Namespace) -> int:
    out = args.output
    if out is None:
        out = (args.object[:-2] if args.object.endswith(".o") else args.object) + ".ibpf"
    obj = load_elf_object(args.object)
    if not obj.programs:
        raise IotbpfError("%s: no programs to pack" % args.object)
    try:
        data = save_bundle(obj, out)
    except OSError as exc:
        raise IotbpfError("cannot write %s: %s" % (out, exc.strerror or exc)) from None
    print(printable("wrote %s: %d bytes, %d program(s) (%s), %d map(s)%s"
                    % (out, len(data), len(obj.programs), ", ".join(obj.programs), len(obj.maps),
                       ", license " + obj.license if obj.license else "")))
    return 0
