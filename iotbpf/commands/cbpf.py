"""`iotbpf cbpf`: run a classic BPF filter (tcpdump -d / -dd listing) on packets (see ebpf/cbpf.py)."""

from __future__ import annotations

import argparse

from iotbpf.commands.run import parse_hex
from iotbpf.ebpf import cbpf
from iotbpf.ebpf.errors import IotbpfError

NAME = "cbpf"
HELP = "translate a classic BPF filter (tcpdump -d or -dd output) to eBPF and run it on packets"
EXAMPLE = """iotbpf cbpf ip_udp.txt --packet "000000000000 000000000000 0800 4500001c00000000401100000a0000010a000002"
iotbpf cbpf ip_udp.txt --ebpf     (ip_udp.txt: the output of tcpdump -d 'ip and udp')"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="tcpdump -d, -dd or -ddd output")
    parser.add_argument("--packet", action="append", default=[], metavar="HEX",
                        help="packet bytes as hex, from the Ethernet header on (repeatable)")
    parser.add_argument("--ebpf", action="store_true", help="print the translated eBPF program")
    parser.add_argument("--engine", choices=("interp", "compiled"), default="interp")


def run(args: argparse.Namespace) -> int:
    try:
        with open(args.file, encoding="utf-8", errors="replace") as f:
            text = f.read(1 << 20)
    except OSError as exc:
        raise IotbpfError("cannot read %s: %s" % (args.file, exc.strerror or exc)) from None
    insns = cbpf.parse(text)
    cbpf.check(insns)
    if args.ebpf:
        from iotbpf.ebpf import disasm

        print(disasm.disassemble(cbpf.translate(insns)), end="")
    if not args.packet and not args.ebpf:
        raise IotbpfError("give --packet HEX (one or more) or --ebpf")
    for packet in args.packet:
        print(cbpf.run_filter(insns, parse_hex(packet, "--packet"), engine=args.engine))
    return 0
