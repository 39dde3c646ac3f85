"""`iotbpf cbpf`: run a classic BPF filter (tcpdump -d / -dd listing) on packets (see ebpf/loader/cbpf.py)."""

from __future__ import annotations

import argparse
import sys

from iotbpf.commands.run import parse_hex
from iotbpf.ebpf.errors import IotbpfError
from iotbpf.ebpf.loader import cbpf

NAME = "cbpf"
HELP = "translate a classic BPF filter (tcpdump -d or -dd output) to eBPF and run it on packets"
EXAMPLE = """iotbpf cbpf ip_udp.txt --packet "000000000000 000000000000 0800 4500001c00000000401100000a0000010a000002"
iotbpf cbpf ip_udp.txt --ebpf     (ip_udp.txt: the output of tcpdump -d 'ip and udp')
iotbpf cbpf ip_udp.txt --pcap capture.pcap
tcpdump -d 'udp dst port 53' | iotbpf cbpf - --pcap capture.pcapng"""

LINKTYPE_ETHERNET = 1
MAX_PCAP_PACKETS = 10_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="tcpdump -d, -dd or -ddd output ('-': standard input)")
    parser.add_argument("--packet", action="append", default=[], metavar="HEX",
                        help="packet bytes as hex, from the Ethernet header on (repeatable)")
    parser.add_argument("--pcap", metavar="CAPTURE",
                        help="run the filter over every packet of a pcap or pcapng file (Ethernet) and count")
    parser.add_argument("--ebpf", action="store_true", help="print the translated eBPF program")
    parser.add_argument("--engine", choices=("interp", "compiled"), default="interp")


def _read_program(path: str) -> str:
    if path == "-":
        return sys.stdin.read(1 << 20)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20)
    except OSError as exc:
        raise IotbpfError("cannot read %s: %s" % (path, exc.strerror or exc)) from None


def pcap_packets(path: str):
    """(timestamp, bytes) of every packet of a pcap/pcapng capture with Ethernet framing (dpkt)."""
    try:
        import dpkt
    except ImportError:
        raise IotbpfError("--pcap needs dpkt (pip install dpkt)") from None
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise IotbpfError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    with f:
        magic = f.read(4)
        f.seek(0)
        try:
            reader = dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        except (ValueError, dpkt.dpkt.Error) as exc:
            raise IotbpfError("%s is not a pcap or pcapng capture (%s)" % (path, exc)) from None
        link = reader.datalink()
        if link != LINKTYPE_ETHERNET:
            raise IotbpfError("%s: link type %d; tcpdump filters here assume Ethernet (link type 1)"
                              % (path, link))
        try:
            for count, (ts, buf) in enumerate(reader):
                if count >= MAX_PCAP_PACKETS:
                    raise IotbpfError("%s: more than %d packets" % (path, MAX_PCAP_PACKETS))
                yield ts, bytes(buf)
        except (ValueError, dpkt.dpkt.Error) as exc:
            raise IotbpfError("%s: truncated or corrupt capture (%s)" % (path, exc)) from None


def run(args: argparse.Namespace) -> int:
    insns = cbpf.parse(_read_program(args.file))
    cbpf.check(insns)
    if args.ebpf:
        from iotbpf.ebpf.isa import disasm

        print(disasm.disassemble(cbpf.translate(insns)), end="")
    if not args.packet and not args.ebpf and not args.pcap:
        raise IotbpfError("give --packet HEX (one or more), --pcap FILE or --ebpf")
    for packet in args.packet:
        print(cbpf.run_filter(insns, parse_hex(packet, "--packet"), engine=args.engine))
    if args.pcap:
        from iotbpf.ebpf.engines.vm import VM

        vm = VM(cbpf.to_program(insns), engine=args.engine, budget=len(insns) * 16 + 64)  # as run_filter
        total = passed = 0
        passed_bytes = 0
        for _ts, packet in pcap_packets(args.pcap):
            total += 1
            if vm.run(mem=packet) & 0xFFFFFFFF:
                passed += 1
                passed_bytes += len(packet)
        print("%s: %d packets, %d passed (%d bytes), %d dropped" % (args.pcap, total, passed, passed_bytes,
                                                                 total - passed))
    return 0
