"""`iotbpf bench vm`: instructions per second of the VM engines on the standard programs.

The programs are bench/programs/{arith,mem,call}_loop.s; each reads its iteration count
from the first 8 bytes of input memory. Best of several runs; the compiled engine is
reported as a ratio to the interpreter when it is available.
"""

from __future__ import annotations

import struct
import time

from iotbpf.ebpf.program import Program
from iotbpf.ebpf.vm import VM, engine_available
from iotbpf.resources import data_root

PROGRAMS = (
    ("arith_loop", "arithmetic loop"),
    ("mem_loop", "memory-heavy loop"),
    ("call_loop", "call-heavy loop"),
)


def load(name: str) -> Program:
    path = data_root("bench") / "programs" / (name + ".s")
    return Program.from_asm(path.read_text(), name=name)


def measure(program: Program, engine: str, iterations: int, repeats: int) -> tuple[float, int]:
    """Best instructions/second over ``repeats`` runs, and the instructions of one run."""
    vm = VM(program, engine=engine)
    mem = struct.pack("<Q", iterations) + bytes(64)
    vm.run(mem=struct.pack("<Q", 10) + bytes(64))  # warm up (and compile, for the compiled engine)
    best = 0.0
    insns = 0
    for _ in range(repeats):
        start = time.perf_counter()
        vm.run(mem=mem)
        elapsed = time.perf_counter() - start
        insns = vm.last.insns_executed
        best = max(best, insns / elapsed)
    return best, insns


def run(quick: bool) -> list[dict]:
    iterations = 20_000 if quick else 300_000
    repeats = 1 if quick else 3
    engines = ["interp"] + (["compiled"] if engine_available("compiled") else [])
    rows = []
    for name, what in PROGRAMS:
        program = load(name)
        rates = {}
        for engine in engines:
            rate, insns = measure(program, engine, iterations, repeats)
            rates[engine] = rate
            rows.append({"name": "%s %s" % (engine, name), "value": round(rate), "unit": "insn/s",
                         "note": "%s, %d instructions per run, best of %d" % (what, insns, repeats)})
        if "compiled" in rates:
            rows.append({"name": "compiled/interp %s" % name, "value": rates["compiled"] / rates["interp"],
                         "unit": "x", "note": "speed-up of the compiled engine, same run"})
    return rows
