"""`iotbpf disasm`: print a program as assembler text (re-assembles to the same bytes)."""

from __future__ import annotations

import argparse

from iotbpf.api import Program

NAME = "disasm"
HELP = "disassemble a .bin (or .data, .s, .o, .ibpf) program into assembler text"
EXAMPLE = """iotbpf disasm prog.bin
iotbpf disasm prog.bin --no-labels --pcs"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN.bin", help="program file")
    parser.add_argument("--no-labels", action="store_true", help="print jump targets as +N offsets")
    parser.add_argument("--pcs", action="store_true", help="append each instruction's pc as a comment")
    parser.add_argument("--section", metavar="NAME", help="program section of a .o or .ibpf file")


def run(args: argparse.Namespace) -> int:
    program = Program.from_file(args.input, section=args.section)
    from iotbpf.ebpf import disasm

    print(disasm.disassemble(program.insns, labels=not args.no_labels, pcs=args.pcs), end="")
    return 0
