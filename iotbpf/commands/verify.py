"""`iotbpf verify`: prove a program safe before it runs, or print why not (thin: the verifier lives
in iotbpf/ebpf/verifier/, hook layouts and IoT helpers in iotbpf/kernel)."""

from __future__ import annotations

import argparse
import json
import sys

from iotbpf.ebpf.errors import IotbpfError, VerifierError

NAME = "verify"
HELP = "statically verify an eBPF program (memory safety, termination within the budget)"
EXAMPLE = """iotbpf verify prog.s
iotbpf verify /path/to/conformance/ldxw.data --mem-size 8
iotbpf verify apps/sensor_node/sensor_node.o --section timer --hook timer --budget 4096
iotbpf verify app.o --section radio_rx --json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("program", metavar="PROGRAM", help=".s, .bin, .data, .o or .ibpf file")
    parser.add_argument("--section", metavar="NAME", help="program section (or function) of a .o or .ibpf "
                        "file (default: every program of the object, each verified for its own hook)")
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
    from iotbpf.commands.disasm import object_programs

    programs = object_programs(args.program, args.section)
    if len(programs) > 1:
        return _verify_each(args, programs)
    program = programs[0][1]
    layout = _hook_layout(args.hook, program.program.section or args.section, args.mem_size is not None)
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


def _verify_each(args: argparse.Namespace, programs: list) -> int:
    """Every program of an object, each for the hook its section names (standalone otherwise)."""
    verdicts = []
    for name, program in programs:
        layout = _hook_layout(args.hook, program.program.section, args.mem_size is not None)
        entry = {"name": name, "section": program.program.section}
        try:
            result = program.verify(helpers=_helpers(layout is not None), hook=layout,
                                    mem_size=args.mem_size, max_insns=args.max_insns, budget=args.budget)
        except VerifierError as exc:
            entry.update(ok=False, errors=getattr(exc, "errors", None) or [str(exc)])
        else:
            entry.update(ok=True, summary="%s (%s)" % (result.summary(), result.mode))
        verdicts.append(entry)
    bad = [v for v in verdicts if not v["ok"]]
    if args.json:
        print(json.dumps({"version": 1, "program": args.program, "ok": not bad, "programs": verdicts},
                         indent=2))
    else:
        for v in verdicts:
            if v["ok"]:
                print("%s: %s" % (v["name"], v["summary"]))
        for v in bad:
            sys.stderr.write("error: %s: %s\n" % (v["name"], v["errors"][0]))
    return 1 if bad else 0
