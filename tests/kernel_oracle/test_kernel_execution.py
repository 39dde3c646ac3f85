"""The running kernel as the execution oracle: every conformance program it accepts runs through
BPF_PROG_TEST_RUN (as a sleepable BPF_PROG_TYPE_SYSCALL program, input in an array map value, all 64
bits of r0 saved to a map before exit) and gives the same r0 as our interpreter and compiled engine;
a bounded differential fuzz does the same for random programs both verifiers accept.

IOTBPF_KERNEL_FUZZ=N runs N fuzz programs (default 150; long runs by hand).
"""

import os
import random

import pytest
from kernel_oracle.programs import compares_addresses, mutate, random_program

from iotbpf.ebpf.conformance import CONFORMANCE_HELPERS
from iotbpf.ebpf.engines.vm import VM
from iotbpf.ebpf.errors import IotbpfError, VerifierError
from iotbpf.ebpf.loader.data import load_case
from iotbpf.ebpf.program import Program
from iotbpf.ebpf.verifier import verify

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

def test_differential_fuzz_kernel_vs_interp_vs_compiled(oracle, conformance_dir):
    """Random programs, and single-field mutants of the conformance programs over their input."""
    count = int(os.environ.get("IOTBPF_KERNEL_FUZZ", "150"))
    rng = random.Random(int(os.environ.get("IOTBPF_KERNEL_FUZZ_SEED", "23")))
    cases = [load_case(str(p)) for p in sorted(conformance_dir.glob("*.data"))]
    cases = [c for c in cases if c.result is not None and "call 5" not in c.asm]
    compared = dict(random=0, mutant=0)
    mismatches = []
    for n in range(count):
        kind = "random" if n % 2 == 0 else "mutant"
        if kind == "random":
            program, mem = random_program(rng), b""
        else:
            case = cases[rng.randrange(len(cases))]
            try:
                program, mem = Program(mutate(case.program().insns, rng)), case.mem
            except IotbpfError:
                continue
        try:
            verify(program, mem_size=len(mem))
        except (VerifierError, IotbpfError):
            continue
        if compares_addresses(program, bool(mem)):
            continue  # the outcome depends on addresses, which differ (see compares_addresses)
        verdict = oracle.check(program.to_bytes(), mem)
        if not verdict.accepted:
            continue
        interp = ours(program, mem, "interp")
        compiled = ours(program, mem, "compiled")
        if not verdict.r0 == interp == compiled:
            mismatches.append((kind, n, program.disasm(), verdict.r0, interp, compiled))
        compared[kind] += 1
    print("kernel differential fuzz: %d programs, run by the kernel and both engines: %d random, %d mutants" % (
        count, compared["random"], compared["mutant"]))
    assert not mismatches, mismatches[:3]
    assert compared["random"] >= count // 4 and compared["mutant"] >= count // 20
