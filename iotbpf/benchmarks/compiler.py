"""`iotbpf bench compiler`: compiled engine vs interpreter vs hand-written Python on the standard
programs (same r0 checked), and the translation cost up to 4096 instructions (docs/compiler.md).
"""

from __future__ import annotations

import importlib.util
import random
import struct
import time
from types import ModuleType

from iotbpf.ebpf.engines import compiler
from iotbpf.ebpf.engines.vm import VM
from iotbpf.ebpf.program import Program
from iotbpf.resources import data_root

PROGRAMS = ("arith_loop", "mem_loop", "call_loop")
TARGET = 1.5  # compiled time / hand-written time
SIZES = (100, 1000, 4096)


def handwritten() -> ModuleType:
    path = data_root("bench") / "handwritten.py"
    spec = importlib.util.spec_from_file_location("iotbpf_bench_handwritten", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(name: str) -> Program:
    path = data_root("bench") / "programs" / (name + ".s")
    return Program.from_asm(path.read_text(), name=name)


def _best(fn, repeats: int) -> tuple[float, object]:
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def engine_runner(program: Program, engine: str, n: int):
    """A no-argument callable doing one run (after a warm-up run that also translates)."""
    vm = VM(program, engine=engine)
    vm.run(mem=struct.pack("<Q", 10) + bytes(64))
    mem = struct.pack("<Q", n) + bytes(64)
    ctx = bytearray(mem)

    def once():
        ctx[:] = mem
        return vm.run(ctx=ctx), bytes(ctx[8:])
    return once


def handwritten_runner(module: ModuleType, name: str, n: int):
    buf = bytearray(64)
    fn = getattr(module, name)

    def once():
        buf[:] = bytes(64)
        r0 = fn(n, buf) if name == "mem_loop" else fn(n)
        return r0, bytes(buf)
    return once


def interleaved(runners: dict, repeats: int) -> tuple[dict, dict]:
    """Best time and last result of each runner, taking turns so machine load hits all alike."""
    best = {key: float("inf") for key in runners}
    results = {}
    for _ in range(repeats):
        for key, once in runners.items():
            start = time.perf_counter()
            results[key] = once()
            best[key] = min(best[key], time.perf_counter() - start)
    return best, results


def generated_program(size: int, seed: int = 1) -> Program:
    """A structured program of about ``size`` slots: ALU runs, if/else, counted loops, stack traffic."""
    rng = random.Random(seed)
    lines = ["mov %r1, 1", "mov %r2, 2", "mov %r3, 3"]
    count = 3
    label = 0
    alu = ("add %r1, 3", "xor %r2, %r1", "mul %r3, 5", "rsh %r2, 1", "or %r1, %r3", "sub %r3, %r2",
           "lsh %r1, 2", "and %r2, 0xffff", "add32 %r3, %r1", "mov %r5, %r2")
    while count < size - 3:
        kind = rng.randrange(5)
        label += 1
        if kind == 0:
            for _ in range(3):
                lines.append(rng.choice(alu))
            count += 3
        elif kind == 1:
            lines += ["jgt %%r1, %d, skip%d" % (rng.randrange(1000), label), rng.choice(alu), rng.choice(alu),
                      "skip%d:" % label]
            count += 3
        elif kind == 2:
            lines += ["jeq %%r2, 0, else%d" % label, rng.choice(alu), "ja join%d" % label,
                      "else%d:" % label, rng.choice(alu), "join%d:" % label]
            count += 4
        elif kind == 3:
            lines += ["mov %r4, 4", "loop%d:" % label, rng.choice(alu), rng.choice(alu), "sub %r4, 1",
                      "jne %%r4, 0, loop%d" % label]
            count += 5
        else:
            off = 8 * rng.randrange(1, 60)
            lines += ["stxdw [%%r10-%d], %%r1" % off, "ldxdw %%r5, [%%r10-%d]" % off, "add %r2, %r5"]
            count += 3
    lines += ["mov %r0, %r1", "exit"]
    return Program.from_asm("\n".join(lines), name="generated%d" % size)


def translation_seconds(program: Program, repeats: int) -> float:
    def once():
        compiler.clear_cache()
        return compiler.compile_program(program)
    seconds, _ = _best(once, repeats)
    return seconds


def simulated_day_seconds() -> float | None:
    """Wall time of `iotbpf simulate sensor_node --duration 1d` (None if the runtime is missing)."""
    try:
        from iotbpf.api import Node
    except ImportError:
        return None
    start = time.perf_counter()
    Node(app="sensor_node").simulate("1d")
    return time.perf_counter() - start


def run(quick: bool) -> list[dict]:
    n = 20_000 if quick else 300_000
    repeats = 1 if quick else 7
    hand = handwritten()
    rows = []
    for name in PROGRAMS:
        program = load(name)
        runners = {"interp": engine_runner(program, "interp", n),
                   "compiled": engine_runner(program, "compiled", n),
                   "python": handwritten_runner(hand, name, n)}
        best, res = interleaved(runners, repeats)
        t_interp, t_comp, t_hand = best["interp"], best["compiled"], best["python"]
        same = res["interp"] == res["compiled"] and res["compiled"][0] == res["python"][0] and (
            name != "mem_loop" or res["compiled"][1] == res["python"][1])
        check = "same result" if same else "RESULTS DIFFER: %r" % (res,)
        rows.append({"name": "%s interp" % name, "value": t_interp, "unit": "s",
                     "note": "%d iterations, best of %d" % (n, repeats)})
        rows.append({"name": "%s compiled" % name, "value": t_comp, "unit": "s", "note": check})
        rows.append({"name": "%s hand-written python" % name, "value": t_hand, "unit": "s",
                     "note": "bench/handwritten.py"})
        ratio = t_comp / t_hand
        rows.append({"name": "%s compiled/hand-written" % name, "value": ratio, "unit": "x",
                     "note": "target <= %.1f: %s" % (TARGET, "met" if ratio <= TARGET else
                                                     "missed by %.0f%%" % ((ratio / TARGET - 1) * 100))})
        rows.append({"name": "%s interp/compiled" % name, "value": t_interp / t_comp, "unit": "x",
                     "note": "speed-up over the interpreter"})
    day = None if quick else simulated_day_seconds()
    for size in SIZES:
        program = generated_program(size)
        seconds = translation_seconds(program, repeats)
        note = "%d slots, structured" % len(program.insns)
        if day:
            note += "; %.2f%% of one simulated sensor_node day (%.2f s)" % (100 * seconds / day, day)
        rows.append({"name": "translate %d insns" % size, "value": seconds * 1000, "unit": "ms", "note": note})
    return rows
