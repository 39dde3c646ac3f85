"""`iotbpf bench vm`: instructions per second of the VM engines (interpreter, compact, compiled) on
the standard programs bench/programs/{arith,mem,call}_loop.s (docs/vm.md).
"""

from __future__ import annotations

import struct
import time

from iotbpf.ebpf.engines.vm import VM, engine_available
from iotbpf.ebpf.program import Program
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


def native_arith_loop(n: int) -> int:
    """arith_loop.s written directly in Python (the same 64-bit arithmetic): the baseline."""
    m = 0xFFFFFFFFFFFFFFFF
    r0, r2 = 0, 1
    while n:
        r0 = (r0 + r2) & m
        r2 = (r2 * 3) & m
        r0 ^= r2
        r2 >>= 1
        r2 = (r2 + 7) & m
        r0 &= 0xFFFFFF
        r0 = (r0 << 1) & m
        n -= 1
    return r0


def native_rate(iterations: int, repeats: int, insns: int) -> float:
    """eBPF instructions per second if plain Python did arith_loop's work."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        native_arith_loop(iterations)
        best = max(best, insns / (time.perf_counter() - start))
    return best


def run(quick: bool) -> list[dict]:
    iterations = 20_000 if quick else 300_000
    repeats = 1 if quick else 3
    engines = ["interp", "compact"] + (["compiled"] if engine_available("compiled") else [])
    rows = []
    for name, what in PROGRAMS:
        program = load(name)
        rates = {}
        for engine in engines:
            rate, insns = measure(program, engine, iterations, repeats)
            rates[engine] = rate
            rows.append({"name": "%s %s" % (engine, name), "value": round(rate), "unit": "insn/s",
                         "note": "%s, %d instructions per run, best of %d" % (what, insns, repeats)})
        if name == "arith_loop":
            check = VM(program).run(mem=struct.pack("<Q", 1000) + bytes(64))
            assert check == native_arith_loop(1000), "the native baseline must compute the same"
            native = native_rate(iterations, repeats, insns)
            rows.append({"name": "interp/native-python arith_loop", "value": rates["interp"] / native,
                         "unit": "x", "note": "interpreter speed relative to the same loop in plain "
                                              "Python (%.3g insn/s), same run" % native})
        if "compiled" in rates:
            rows.append({"name": "compiled/interp %s" % name, "value": rates["compiled"] / rates["interp"],
                         "unit": "x", "note": "speed-up of the compiled engine, same run"})
    return rows
