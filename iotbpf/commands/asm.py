"""`iotbpf asm`: assemble bpf_conformance-syntax text into raw instruction bytes."""

from __future__ import annotations

import argparse

from iotbpf.api import Program

NAME = "asm"
HELP = "assemble a .s file (bpf_conformance syntax, labels allowed) into a .bin"
EXAMPLE = """iotbpf asm prog.s -o prog.bin
iotbpf asm bench/programs/arith_loop.s"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN.s", help="assembly source")
    parser.add_argument("-o", "--output", metavar="OUT.bin", help="output file (default: IN with .bin)")


def run(args: argparse.Namespace) -> int:
    with open(args.input, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        from iotbpf.ebpf.errors import LoadError

        raise LoadError("%s: not a text file" % args.input) from None
    program = Program.from_asm(text, name=args.input)
    out = args.output
    if out is None:
        out = (args.input[:-2] if args.input.endswith(".s") else args.input) + ".bin"
    code = program.to_bytes()
    if not code:  # run/disasm/verify refuse an empty program: do not write one
        from iotbpf.ebpf.errors import LoadError

        raise LoadError("%s: empty program (no instructions)" % args.input)
    with open(out, "wb") as f:
        f.write(code)
    print("%s: %d instructions (%d bytes)" % (out, len(code) // 8, len(code)))
    return 0
