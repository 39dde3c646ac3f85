"""`iotbpf run`: execute an eBPF program once per input and print r0 (thin: logic is in api.Program)."""

from __future__ import annotations

import argparse
import json

from iotbpf.api import Program
from iotbpf.ebpf import isa
from iotbpf.ebpf.engines.vm import BPFFault
from iotbpf.ebpf.errors import IotbpfError, RuntimeFailure

NAME = "run"
HELP = "run an eBPF program (.s, .bin, .data, .o, .ibpf) and print r0 as 0x<hex>"
EXAMPLE = """iotbpf run prog.s --mem "01 02 03 04"
iotbpf run /path/to/conformance/add.data
iotbpf run bench/programs/arith_loop.s --budget 100000000 --profile
iotbpf run app.o --section timer --mem 00000000 --engine compiled --json"""

DEFAULT_BUDGET = 100_000_000


def parse_hex(text: str, option: str = "--mem") -> bytes:
    """``--mem HEX`` (or another ``option``'s value): hex bytes, optional 0x prefix, spaces allowed."""
    t = text.strip()
    if t[:2].lower() == "0x":
        t = t[2:]
    t = "".join(t.split())
    try:
        if len(t) % 2:
            raise ValueError
        return bytes.fromhex(t)
    except ValueError:
        raise IotbpfError("bad %s %r: expected hex bytes like '01 02 ff' or 0x0102ff" % (option, text)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("program", metavar="PROGRAM", help=".s, .bin, .data, .o or .ibpf file")
    parser.add_argument("--mem", action="append", default=[], metavar="HEX",
                        help="input memory as hex bytes (repeat for several runs; default: the "
                             ".data file's own mem, else empty)")
    parser.add_argument("--engine", choices=("interp", "compiled", "compact"), default="interp",
                        help="interp: reference interpreter; compiled: translated to Python; "
                             "compact: the low-memory interpreter used on MicroPython")
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET, metavar="N",
                        help="instruction budget per run (default %d)" % DEFAULT_BUDGET)
    parser.add_argument("--trace", action="store_true",
                        help="print each executed instruction and the registers it changed")
    parser.add_argument("--profile", action="store_true", help="print execution counts per pc")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--verify", action="store_true",
                        help="verify first (the input size is taken as the smallest --mem given)")
    parser.add_argument("--section", metavar="NAME", help="program section (or function) of a .o or "
                        ".ibpf file; `all` runs every program of the object in turn")
    parser.add_argument("--trace-log", metavar="FILE",
                        help="write bpf_trace_printk lines to FILE ('-': stdout) as they happen")


def run(args: argparse.Namespace) -> int:
    if args.budget is not None and args.budget < 0:
        raise IotbpfError("--budget must be >= 0")
    if args.section is not None and not args.program.lower().endswith((".o", ".ibpf")):
        raise IotbpfError("--section picks a program of a .o or .ibpf file; %s holds one program" % args.program)
    if args.section == "all":
        return _run_all(args)
    program = Program.from_file(args.program, section=args.section)
    inputs = [parse_hex(m) for m in args.mem] or [program.mem]
    if args.verify:
        # standalone run: the verifier may assume the smallest input actually given
        program.verify(mem_size=min(len(m) for m in inputs), budget=args.budget)
    results = []
    failed = None
    trace_log = env = None
    if args.trace_log:
        from iotbpf.report import tracelog

        trace_log = tracelog.TraceLog(args.trace_log)
        env = tracelog.standalone_env(trace_log, program.name or args.program)
    try:
        failed = _run_inputs(program, inputs, args, results, env)
    finally:
        if trace_log is not None:
            trace_log.close()
    if args.json:
        print(json.dumps({"version": 1, "program": args.program, "engine": args.engine,
                          "results": results}, indent=2))
        return 1 if failed else 0
    if failed is not None:
        raise RuntimeFailure(str(failed))
    return 0


def _run_all(args: argparse.Namespace) -> int:
    """--section all: every program of the object on every input, sharing the object's maps."""
    from iotbpf.commands.disasm import object_programs

    programs = object_programs(args.program, "all")
    inputs = [parse_hex(m) for m in args.mem] or [b""]
    report = []
    failed = None
    for name, program in programs:
        if args.verify:
            program.verify(mem_size=min(len(m) for m in inputs), budget=args.budget)
        results: list = []
        if not args.json:
            print("%s:" % name)
        failed = _run_inputs(program, inputs, args, results, None) or failed
        report.append({"name": name, "results": results})
    if args.json:
        print(json.dumps({"version": 1, "program": args.program, "engine": args.engine,
                          "programs": report}, indent=2))
        return 1 if failed else 0
    if failed is not None:
        raise RuntimeFailure(str(failed))
    return 0


def _run_inputs(program: Program, inputs: list, args: argparse.Namespace, results: list, env) -> BPFFault | None:
    failed = None
    for mem in inputs:
        try:
            res = program.execute(mem=mem, engine=args.engine, budget=args.budget,
                                  trace=_TraceStream(args.json) if args.trace else False,
                                  profile=args.profile, env=env)
        except BPFFault as fault:
            failed = fault
            res = program.last_run
            entry = {"mem": mem.hex(), "error": str(fault), "kind": fault.kind, "pc": fault.pc,
                     "insns": res.insns if res else 0}
            results.append(entry)
            if not args.json:
                _print_details(program, res, args)
            break
        results.append({"mem": mem.hex(), "r0": res.r0, "r0_hex": "0x%x" % res.r0, "insns": res.insns})
        if not args.json:
            _print_details(program, res, args)
            print("0x%x" % res.r0)
    return failed


class _TraceStream:
    """--trace: each executed instruction is printed as it runs, never kept (an endless program
    under a large --budget must not fill the memory); with --json nothing is printed."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.count = 0

    def __bool__(self) -> bool:
        return True

    def append(self, entry) -> None:
        self.count += 1
        if not self.quiet:
            pc, text, changed = entry
            regs = " ".join("r%d=0x%x" % (reg, value) for reg, value in changed)
            print(("%5d: %-36s %s" % (pc, text, regs)).rstrip())


def _print_details(program: Program, res, args) -> None:
    if res is None:
        return
    if args.profile and res.profile is not None:
        print("%5s %12s  %s" % ("pc", "count", "instruction"))
        for pc in sorted(res.profile):
            print("%5d %12d  %s" % (pc, res.profile[pc], isa.format_insn(program.insns[pc], pc)))
        print("total %d instructions" % res.insns)
