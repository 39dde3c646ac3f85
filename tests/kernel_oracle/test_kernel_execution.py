"""The running kernel as the execution oracle: every conformance program it accepts runs through
BPF_PROG_TEST_RUN (as a sleepable BPF_PROG_TYPE_SYSCALL program, input in an array map value, all 64
bits of r0 saved to a map before exit) and gives the same r0 as our interpreter and compiled engine;
a bounded differential fuzz does the same for random programs both verifiers accept.

IOTBPF_KERNEL_FUZZ=N runs N fuzz programs (default 150; long runs by hand).
"""

import os
import random

import pytest

from iotbpf.ebpf import isa
from iotbpf.ebpf.conformance import CONFORMANCE_HELPERS, load_case
from iotbpf.ebpf.errors import IotbpfError, VerifierError
from iotbpf.ebpf.program import Program
from iotbpf.ebpf.verifier import verify
from iotbpf.ebpf.vm import VM

M64 = (1 << 64) - 1
# Programs whose result depends on a helper: the suite's helper 5 ("unwind") is the kernel's
# bpf_ktime_get_ns, so the kernel runs them but cannot be compared.
SUITE_HELPER_PROGRAMS = {"call_unwind_fail.data"}


@pytest.fixture
def oracle(no_bpf_left):
    from iotbpf.platforms.kernel.oracle import Oracle

    with Oracle() as o:
        yield o


def ours(program, mem, engine):
    try:
        return VM(program, helpers=CONFORMANCE_HELPERS, engine=engine).run(mem=mem)
    except IotbpfError as exc:
        return "error: %s" % exc


def test_every_conformance_program_the_kernel_accepts_gives_our_r0(oracle, conformance_dir):
    compared = rejected = 0
    mismatches = []
    for path in sorted(conformance_dir.glob("*.data")):
        case = load_case(str(path))
        program = case.program()
        verdict = oracle.check(program.to_bytes(), case.mem)
        if not verdict.accepted:
            rejected += 1
            continue
        if case.result is None or path.name in SUITE_HELPER_PROGRAMS:
            continue
        assert not verdict.run_error, (path.name, verdict.run_error)
        interp = ours(program, case.mem, "interp")
        compiled = ours(program, case.mem, "compiled")
        if not verdict.r0 == interp == compiled:
            mismatches.append((path.name, verdict.r0, interp, compiled))
        compared += 1
    print("kernel oracle: %d conformance programs loaded, %d rejected by the kernel, %d compared "
          "(kernel r0 == interp == compiled, all 64 bits)" % (oracle.loaded, rejected, compared))
    assert not mismatches, mismatches
    assert compared >= 290  # 300 of 313 load on 6.x kernels; the 13 others: shifts and callx


def test_r0_high_bits_reach_us(oracle):
    """The test-run retval has 32 bits: the framed exit must deliver all 64."""
    program = Program.from_asm("lddw %r0, 0x8badf00d12345678\nexit\n")
    verdict = oracle.check(program.to_bytes())
    assert verdict.r0 == 0x8BADF00D12345678


def test_a_rejected_program_says_why(oracle):
    verdict = oracle.check(Program.from_asm("ldxdw %r0, [%r1+8]\nexit\n").to_bytes(), b"\x00" * 8)
    assert not verdict.accepted
    assert "outside of the allowed memory range" in verdict.reason


# ------------------------------------------------------------------ differential fuzz

ALU = [isa.BPF_ADD, isa.BPF_SUB, isa.BPF_MUL, isa.BPF_DIV, isa.BPF_OR, isa.BPF_AND, isa.BPF_LSH,
       isa.BPF_RSH, isa.BPF_MOD, isa.BPF_XOR, isa.BPF_MOV, isa.BPF_ARSH]
JMP = [isa.BPF_JEQ, isa.BPF_JGT, isa.BPF_JGE, isa.BPF_JSET, isa.BPF_JNE, isa.BPF_JSGT, isa.BPF_JSGE,
       isa.BPF_JLT, isa.BPF_JLE, isa.BPF_JSLT, isa.BPF_JSLE]
IMMS = [0, 1, -1, 2, 7, 31, 32, 63, 0x7FFFFFFF, -0x80000000, 255, -8]
I = isa.Instruction  # noqa: E741


def random_program(rng):
    """Straight-line-ish programs over r0-r5 (random 64-bit values, ALU/ALU32 with signed div/mod,
    movsx, byte swaps, stack round trips, input loads, forward jumps), folding everything into r0."""
    body = []
    for reg in range(6):
        body.extend(isa.lddw(reg, rng.getrandbits(64)))
    size = rng.randint(4, 40)
    for _ in range(size):
        kind = rng.random()
        cls = isa.BPF_ALU64 if rng.random() < 0.6 else isa.BPF_ALU
        dst, src = rng.randrange(6), rng.randrange(6)
        if kind < 0.55:
            op = rng.choice(ALU)
            off = 1 if op in (isa.BPF_DIV, isa.BPF_MOD) and rng.random() < 0.4 else 0
            if op == isa.BPF_MOV and rng.random() < 0.3:
                off = rng.choice([8, 16] + ([32] if cls == isa.BPF_ALU64 else []))
                body.append(I(cls | op | isa.BPF_X, dst, src, off))
            elif rng.random() < 0.5:
                body.append(I(cls | op | isa.BPF_X, dst, src, off))
            else:
                imm = rng.choice(IMMS) if rng.random() < 0.6 else rng.randint(-100000, 100000)
                if op in (isa.BPF_LSH, isa.BPF_RSH, isa.BPF_ARSH):
                    imm = rng.randrange(64 if cls == isa.BPF_ALU64 else 32)
                body.append(I(cls | op | isa.BPF_K, dst, 0, off, imm))
        elif kind < 0.62:
            body.append(I(cls | isa.BPF_NEG, dst))
        elif kind < 0.70:
            width = rng.choice([16, 32, 64])
            if rng.random() < 0.3:
                body.append(I(isa.BPF_ALU64 | isa.BPF_END, dst, 0, 0, width))  # bswap
            else:
                body.append(I(isa.BPF_ALU | isa.BPF_END | rng.choice([isa.BPF_TO_LE, isa.BPF_TO_BE]), dst, 0, 0,
                              width))
        elif kind < 0.80:
            size_ = rng.choice([isa.BPF_B, isa.BPF_H, isa.BPF_W, isa.BPF_DW])
            body.append(I(isa.BPF_STX | isa.BPF_MEM | isa.BPF_DW, 10, src, -16))
            body.append(I(isa.BPF_LDX | rng.choice([isa.BPF_MEM, isa.BPF_MEMSX]) | size_, dst, 10, -16)
                        if size_ != isa.BPF_DW else I(isa.BPF_LDX | isa.BPF_MEM | size_, dst, 10, -16))
        else:
            op = rng.choice(JMP)
            jcls = isa.BPF_JMP if rng.random() < 0.6 else isa.BPF_JMP32
            skip = rng.randint(0, 3)
            if rng.random() < 0.5:
                body.append(("J", I(jcls | op | isa.BPF_X, dst, src), skip))
            else:
                body.append(("J", I(jcls | op | isa.BPF_K, dst, 0, 0, rng.choice(IMMS)), skip))
    for reg in range(1, 6):
        body.append(I(isa.BPF_ALU64 | isa.BPF_MUL | isa.BPF_K, 0, 0, 0, 0x01000193))
        body.append(I(isa.BPF_ALU64 | isa.BPF_XOR | isa.BPF_X, 0, reg))
    body.append(I(isa.EXIT))
    # forward jumps: lddw only appears before the first jump, so no target is a lddw tail
    resolved = []
    for i, item in enumerate(body):
        if isinstance(item, tuple):
            _, insn, skip = item
            insn.off = min(i + 1 + skip, len(body) - 1) - i - 1
            item = insn
        resolved.append(item)
    return Program(resolved)


def test_differential_fuzz_kernel_vs_interp_vs_compiled(oracle):
    count = int(os.environ.get("IOTBPF_KERNEL_FUZZ", "150"))
    rng = random.Random(int(os.environ.get("IOTBPF_KERNEL_FUZZ_SEED", "23")))
    compared = 0
    mismatches = []
    for n in range(count):
        program = random_program(rng)
        try:
            verify(program)
            we_accept = True
        except VerifierError:
            we_accept = False
        verdict = oracle.check(program.to_bytes())
        if not (we_accept and verdict.accepted):
            continue
        interp = ours(program, b"", "interp")
        compiled = ours(program, b"", "compiled")
        if not verdict.r0 == interp == compiled:
            mismatches.append((n, program.disasm(), verdict.r0, interp, compiled))
        compared += 1
    print("kernel differential fuzz: %d programs, %d run by both, 0 mismatches expected" % (count, compared))
    assert not mismatches, mismatches[:3]
    assert compared >= count // 2
