"""`iotbpf disasm`: print a program as assembler text (re-assembles to the same bytes); for a
.o/.ibpf, every program with its function names, C source lines and helper/map names, as
``bpftool prog dump xlated linum`` shows them."""

from __future__ import annotations

import argparse

from iotbpf.api import Program
from iotbpf.ebpf.errors import IotbpfError

NAME = "disasm"
HELP = "disassemble a .bin (or .data, .s, .o, .ibpf) program into assembler text"
EXAMPLE = """iotbpf disasm prog.bin
iotbpf disasm prog.bin --no-labels --pcs
iotbpf disasm apps/sensor_node/sensor_node.o              # every program, C lines, helper names
iotbpf disasm apps/sensor_node/sensor_node.o --section timer --no-source"""

ALL = "all"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN.bin", help="program file")
    parser.add_argument("--no-labels", action="store_true", help="print jump targets as +N offsets")
    parser.add_argument("--pcs", action="store_true", help="append each instruction's pc as a comment")
    parser.add_argument("--section", metavar="NAME", help="program section (or function) of a .o or "
                        ".ibpf file (default: every program)")
    parser.add_argument("--no-source", action="store_true",
                        help="plain listing of a .o/.ibpf: no function names, C source lines, helper "
                             "or map names")


def object_programs(path: str, section: str | None) -> list:
    """[(name, Program)] for ``--section``: the one program it names, or — for a .o/.ibpf with
    no --section or ``--section all`` — every program of the object (sharing its maps)."""
    is_object = path.lower().endswith((".o", ".ibpf"))
    if section is not None and section != ALL or not is_object:
        if section == ALL:
            raise IotbpfError("--section all needs a .o or .ibpf file; %s holds one program" % path)
        program = Program.from_file(path, section=section)
        return [(program.program.name or path, program)]
    if path.lower().endswith(".o"):
        from iotbpf.ebpf.loader.elf import load_elf_object as load
    else:
        from iotbpf.ebpf.loader.bundle import load_bundle_object as load
    obj = load(path)
    if not obj.programs:
        raise IotbpfError("%s: no programs in this object" % path)
    progs = list(obj.programs.values())
    for p in progs:
        p.siblings = [q for q in progs if q is not p]
    return [(name, Program(p)) for name, p in obj.programs.items()]


def _helper_table():
    from iotbpf.ebpf.helpers import linux_helpers
    from iotbpf.kernel import helpers as iot_helpers

    table = linux_helpers()
    iot_helpers.register(table)
    return table


def run(args: argparse.Namespace) -> int:
    from iotbpf.ebpf.isa import disasm

    programs = object_programs(args.input, args.section)
    annotated = not args.no_source and args.input.lower().endswith((".o", ".ibpf"))
    helpers = _helper_table() if annotated else None
    for i, (name, program) in enumerate(programs):
        if len(programs) > 1:
            section = program.program.section
            if i:
                print()
            print(_safe("# program %s%s" % (name, " (section %s)" % section if section and section != name else "")))
        notes = names = None
        if annotated:
            notes, names = disasm.annotate(program.program, helpers)
        lines = disasm.disassemble_lines(program.insns, labels=not args.no_labels, pcs=args.pcs,
                                         notes=notes, names=names if not args.no_labels else None)
        print("\n".join(_safe(line) for line in lines))
    return 0


def _safe(text: str) -> str:
    """A line for the terminal: names and C source lines from an object may hold escape codes."""
    return "".join(c if c == "\t" or (" " <= c != "\x7f") else "?" for c in text)
