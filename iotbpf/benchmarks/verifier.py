"""`iotbpf bench verifier`: how long the static verifier takes on generated programs up to the
4096-instruction limit and on the bundled apps (docs/verifier.md).
"""

from __future__ import annotations

import time

from iotbpf.ebpf.loader.files import load_program
from iotbpf.ebpf.program import Program
from iotbpf.ebpf.verifier import verify
from iotbpf.resources import data_root


def straight_line(n: int) -> str:
    """n-1 ALU and stack instructions with constant input reads, then exit."""
    lines = ["mov %r0, 0", "jlt %%r2, 64, +%d" % (n - 3)]
    i = 0
    while len(lines) < n - 1:
        k = i % 6
        if k == 0:
            lines.append("ldxw %%r3, [%%r1+%d]" % (4 * (i % 15)))
        elif k == 1:
            lines.append("add %r0, %r3")
        elif k == 2:
            lines.append("stxdw [%%r10-%d], %%r0" % (8 * (1 + (i // 6) % 60)))
        elif k == 3:
            lines.append("ldxdw %%r4, [%%r10-%d]" % (8 * (1 + (i // 6) % 60)))
        elif k == 4:
            lines.append("xor %r0, %r4")
        else:
            lines.append("lsh %r3, 3")
        i += 1
    lines.append("exit")
    return "\n".join(lines) + "\n"


def branchy(n: int) -> str:
    """Diamonds on input bytes (if/else blocks), as compiled C with many conditions looks."""
    lines = ["mov %r0, 0", "mov %r4, 0", "jlt %%r2, 64, +%d" % (n - 4)]
    i = 0
    while len(lines) + 5 <= n - 1:
        lines += ["ldxb %%r3, [%%r1+%d]" % (i % 64), "jgt %r3, 127, +2",
                  "add %r4, %r3", "ja +1", "sub %r4, 1"]
        i += 1
    while len(lines) < n - 1:
        lines.append("add %r0, 1")
    lines.append("exit")
    return "\n".join(lines) + "\n"


def loops(n: int, iterations: int = 64) -> str:
    """A bounded loop whose body fills the program: iterations x body instructions processed."""
    body = n - 6
    lines = ["mov %r0, 0", "mov %r6, 0", "loop:"]
    for i in range(body):
        lines.append(("add %%r0, %d" % (i % 7 + 1)) if i % 2 == 0 else "rsh %r0, 1")
    lines += ["add %r6, 1", "jlt %%r6, %d, loop" % iterations, "exit"]
    return "\n".join(lines) + "\n"


def loop_branchy(n: int, iterations: int = 32) -> str:
    """A bounded loop over the input whose body is diamonds on the byte it reads."""
    lines = ["mov %r0, 0", "jlt %r2, 64, out", "mov %r6, 0", "loop:", "mov %r7, %r6", "and %r7, 63",
             "mov %r8, %r1", "add %r8, %r7", "ldxb %r3, [%r8]"]
    while len(lines) + 5 <= n - 3:
        lines += ["jgt %r3, 127, +2", "add %r0, %r3", "ja +1", "sub %r0, 1", "rsh %r3, 1"]
    lines += ["add %r6, 1", "jlt %%r6, %d, loop" % iterations, "out:", "exit"]
    return "\n".join(lines) + "\n"


def calls(n: int) -> str:
    """A main function calling a chain of small functions that take a stack pointer."""
    funcs = max(1, (n - 2) // 9)
    lines = []
    for f in range(funcs):
        lines += ["mov %r1, %r10", "add %r1, -8", "stdw [%r10-8], 0", "call local f%d" % f]
    lines += ["mov %r0, 0", "exit"]
    for f in range(funcs):
        lines += ["f%d:" % f, "ldxdw %r2, [%r1]", "add %r2, 1", "stxdw [%r1], %r2", "mov %r0, %r2"]
        lines.append("exit")
    return "\n".join(lines) + "\n"


def _time_verify(program: Program, repeats: int, **options) -> tuple[float, object]:
    best = None
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = verify(program, **options)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best, result


def run(quick: bool = False) -> list[dict]:
    size = 512 if quick else 4096
    repeats = 1 if quick else 3
    rows = []
    cases = (("straight-line", straight_line(size)), ("branchy (diamonds)", branchy(size)),
             ("bounded loop x64", loops(size if not quick else 128)),
             ("loop x32 over branchy body", loop_branchy(size)), ("function calls", calls(size)))
    for label, text in cases:
        program = Program.from_asm(text, name=label)
        seconds, result = _time_verify(program, repeats, max_insns=4096)
        rows.append({"name": "verify %d-insn %s" % (result.insn_count, label), "value": round(seconds, 4),
                     "unit": "s", "note": "%d insns processed (%.0f/s), %d states" % (
                         result.insns_processed, result.insns_processed / max(seconds, 1e-9),
                         result.states_explored)})
    rows.extend(_apps(repeats))
    return rows


def _apps(repeats: int) -> list[dict]:
    from iotbpf.ebpf.helpers import linux_helpers
    from iotbpf.kernel import helpers as iot_helpers
    from iotbpf.kernel.hooks import HOOKS

    table = linux_helpers()
    iot_helpers.register(table)
    obj = data_root("apps") / "sensor_node" / "sensor_node.o"
    program = load_program(str(obj), section="timer")
    seconds, result = _time_verify(program, repeats, helpers=table, hook=HOOKS["timer"].layout())
    return [{"name": "verify sensor_node timer (%d insns)" % result.insn_count, "value": round(seconds, 4),
             "unit": "s", "note": "worst case %d insns per run" % result.max_path_insns}]
