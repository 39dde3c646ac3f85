"""The compiled engine's range analysis refines a register on each side of a comparison; a 32-bit
ALU op after the join must still be masked whenever either side may hold a wide value. Found by
the kernel-oracle fuzz: jne sent the "equal" range down the taken edge."""

import itertools

import pytest

from iotbpf.ebpf.engines.vm import VM
from iotbpf.ebpf.program import Program

JUMPS = ["jeq", "jne", "jgt", "jge", "jlt", "jle", "jset", "jsgt", "jsge", "jslt", "jsle"]
CONSTANTS = [0x41A1D8B33902C2BE, 2, 0xFFFFFFFF, 0x100000000, 62]
SHRINKS = ["mod %r1, 63", "and %r1, 7", "mov %r1, 5", "rsh %r1, 60"]
OPS = ["add32 %r1, %r1", "lsh32 %r1, 3", "mul32 %r1, 3", "sub32 %r1, 1", "or32 %r1, 1"]


def _program(jump, const, imm, shrink, op):
    return ("lddw %%r1, 0x%x\n%s %%r1, %d, +1\n%s\n%s\nmov %%r0, %%r1\nexit\n"
            % (const, jump, imm, shrink, op))


CASES = [(j, c, k, s, o) for j, c, (k, s, o) in itertools.product(
    JUMPS, CONSTANTS, itertools.product([2, 62, 0x7FFFFFFF], SHRINKS, OPS))]


def test_the_jne_case_the_fuzz_found():
    text = _program("jne", 0x41A1D8B33902C2BE, 2, "mod %r1, 63", "add32 %r1, %r1") + "\n"
    results = {engine: VM(Program.from_asm(text), engine=engine).run() for engine in ("interp", "compiled")}
    assert results == {"interp": 0x7205857C, "compiled": 0x7205857C}


@pytest.mark.parametrize("jump", JUMPS)
def test_engines_agree_after_every_comparison_join(jump):
    for j, const, imm, shrink, op in CASES:
        if j != jump:
            continue
        text = _program(j, const, imm, shrink, op)
        for also32 in (False, True):
            src = text.replace(j + " ", j + "32 ", 1) if also32 else text
            prog = Program.from_asm(src)
            expect = VM(prog, engine="interp").run()
            got = VM(Program.from_asm(src), engine="compiled").run()
            assert got == expect, src
