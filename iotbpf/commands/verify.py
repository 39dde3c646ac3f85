"""`iotbpf verify`: prove a program safe before it runs, or print why not (thin: the verifier lives
in iotbpf/ebpf/verifier.py, hook layouts and IoT helpers in iotbpf/kernel)."""

from __future__ import annotations

import argparse
import json
import sys

from iotbpf.api import Program
from iotbpf.ebpf.errors import IotbpfError, VerifierError

NAME = "verify"
HELP = "statically verify an eBPF program (memory safety, termination within the budget)"
EXAMPLE = """iotbpf verify prog.s
iotbpf verify /path/to/conformance/ldxw.data --mem-size 8
iotbpf verify apps/sensor_node/sensor_node.o --section timer --hook timer --budget 4096
iotbpf verify app.o --section radio_rx --json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("program", metavar="PROGRAM", help=".s, .bin, .data, .o or .ibpf file")
    parser.add_argument("--section", metavar="NAME", help="program section of a .o or .ibpf file")
    parser.add_argument("--hook", metavar="H",
                        help="hook whose context r1 points to (default: the section name when it names "
                             "a hook, else a standalone run: r1 = input buffer, r2 = its length)")
    parser.add_argument("--mem-size", type=int, metavar="N",
                        help="standalone run with an input of exactly N bytes (instead of checking r2)")
    parser.add_argument("--budget", type=int, metavar="N",
                        help="instruction budget every run must fit in (default: only the complexity limit)")
    parser.add_argument("--max-insns", type=int, default=4096, metavar="N",
                        help="program size limit in instructions (default 4096)")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")


def _hook_layout(name: str | None, section: str | None, standalone: bool):
    from iotbpf.kernel.hooks import HOOK_NAMES, HOOKS

    if name is None:
        if standalone or not section or section not in HOOKS:
            return None
        name = section
    hook = HOOKS.get(name)
    if hook is None:
        raise IotbpfError("unknown hook %r (known: %s)" % (name, ", ".join(HOOK_NAMES)))
    return hook.layout()


def _helpers(hooked: bool):
    from iotbpf.ebpf.helpers import linux_helpers

    table = linux_helpers()
    if hooked:
        from iotbpf.kernel import helpers as iot_helpers

        iot_helpers.register(table)
    return table


def run(args: argparse.Namespace) -> int:
    if args.mem_size is not None and args.mem_size < 0:
        raise IotbpfError("--mem-size must be >= 0")
    if args.mem_size is not None and args.mem_size > 0xFFFFFFFF:
        raise IotbpfError("--mem-size must be <= 4294967295 (a memory region's offsets are 32 bits)")
    if args.mem_size is not None and args.hook is not None:
        raise IotbpfError("--mem-size is for standalone programs; a hooked program gets its context in r1")
    if args.budget is not None and args.budget < 1:
        raise IotbpfError("--budget must be >= 1")
    if args.max_insns < 1:
        raise IotbpfError("--max-insns must be >= 1")
    program = Program.from_file(args.program, section=args.section)
    layout = _hook_layout(args.hook, args.section or program.program.section, args.mem_size is not None)
    try:
        result = program.verify(helpers=_helpers(layout is not None), hook=layout, mem_size=args.mem_size,
                                max_insns=args.max_insns, budget=args.budget)
    except VerifierError as exc:
        errors = getattr(exc, "errors", None) or [str(exc)]
        if args.json:
            print(json.dumps({"version": 1, "program": args.program, "ok": False, "errors": errors},
                             indent=2))
        else:
            # DESIGN.md: one line `error: <message>`; the first rejection, and how many more --json lists
            more = len(errors) - 1
            note = " (and %d more error%s; --json lists all)" % (more, "" if more == 1 else "s") if more else ""
            sys.stderr.write("error: " + errors[0] + note + "\n")
        return 1
    if args.json:
        out = {"version": 1, "program": args.program}
        out.update(result.to_dict())
        print(json.dumps(out, indent=2))
    else:
        print("%s (%s)" % (result.summary(), result.mode))
    return 0
