"""The verifier over the whole bpf_conformance suite: every program is accepted, or its rejection
is justified here, file by file; accepted programs run within the instruction bound it proved."""

import pytest

from iotbpf.ebpf.conformance import CONFORMANCE_HELPERS
from iotbpf.ebpf.engines.vm import VM
from iotbpf.ebpf.errors import VerifierError
from iotbpf.ebpf.loader.data import load_case
from iotbpf.ebpf.types import ARG_ANYTHING, RET_INTEGER, HelperSpec, HelperTable
from iotbpf.ebpf.verifier import verify

# Reasons a conformance program is rejected, as the message says them.
UNCHECKED_INPUT = "may go past the end of the input"  # standalone: r2 never compared; fine with mem_size
TEST_HELPER = "unknown helper 5"  # uBPF's test-only "unwind" helper, not a real helper
CALLX = "call through a register (callx) cannot be verified"  # uBPF extension; Linux has no callx

# Standalone mode (r1 = input, r2 = its length): programs that access the input at fixed
# offsets without ever comparing r2 are rejected, as Linux rejects unchecked packet reads.
REJECTED_STANDALONE = {
    "be16-high.data": UNCHECKED_INPUT,
    "be16.data": UNCHECKED_INPUT,
    "be32-high.data": UNCHECKED_INPUT,
    "be32.data": UNCHECKED_INPUT,
    "be64.data": UNCHECKED_INPUT,
    "ldxb-all.data": UNCHECKED_INPUT,
    "ldxb.data": UNCHECKED_INPUT,
    "ldxdw.data": UNCHECKED_INPUT,
    "ldxh-all.data": UNCHECKED_INPUT,
    "ldxh-all2.data": UNCHECKED_INPUT,
    "ldxh-same-reg.data": UNCHECKED_INPUT,
    "ldxh.data": UNCHECKED_INPUT,
    "ldxw-all.data": UNCHECKED_INPUT,
    "ldxw.data": UNCHECKED_INPUT,
    "le16-high.data": UNCHECKED_INPUT,
    "le16.data": UNCHECKED_INPUT,
    "le32-high.data": UNCHECKED_INPUT,
    "le32.data": UNCHECKED_INPUT,
    "le64.data": UNCHECKED_INPUT,
    "mul64-intmin-by-negone-imm.data": UNCHECKED_INPUT,
    "mul64-intmin-by-negone-reg.data": UNCHECKED_INPUT,
    "neg64-intmin-imm.data": UNCHECKED_INPUT,
    "neg64-intmin-reg.data": UNCHECKED_INPUT,
    "sdiv64-intmin-by-negone-imm.data": UNCHECKED_INPUT,
    "sdiv64-intmin-by-negone-reg.data": UNCHECKED_INPUT,
    "smod64-intmin-by-negone-imm.data": UNCHECKED_INPUT,
    "smod64-intmin-by-negone-reg.data": UNCHECKED_INPUT,
    "stb.data": UNCHECKED_INPUT,
    "stdw.data": UNCHECKED_INPUT,
    "sth.data": UNCHECKED_INPUT,
    "stw.data": UNCHECKED_INPUT,
    "stxb-all.data": UNCHECKED_INPUT,
    "stxb-all2.data": UNCHECKED_INPUT,
    "stxb-chain.data": UNCHECKED_INPUT,
    "stxb.data": UNCHECKED_INPUT,
    "stxdw.data": UNCHECKED_INPUT,
    "stxh.data": UNCHECKED_INPUT,
    "stxw.data": UNCHECKED_INPUT,
    "subnet.data": UNCHECKED_INPUT,
    "call_unwind_fail.data": TEST_HELPER,
    "callx.data": CALLX,
}
# With --mem-size (the input's real length declared), only these two remain.
REJECTED_WITH_MEM_SIZE = {
    "call_unwind_fail.data": TEST_HELPER,
    "callx.data": CALLX,
}

# The suite's own helper, declared: r1 is anything, r0 a number.
SUITE_HELPERS = HelperTable([HelperSpec(5, "unwind", [ARG_ANYTHING], RET_INTEGER, CONFORMANCE_HELPERS[5])])


def cases(conformance_dir):
    out = []
    for path in sorted(conformance_dir.glob("*.data")):
        case = load_case(str(path))
        case.name = path.name
        out.append(case)
    assert len(out) == 313
    return out


def _verdict(case, **kw):
    try:
        return verify(case.program(), **kw), None
    except VerifierError as exc:
        return None, exc.errors[0]


def test_standalone_mode_accepts_or_justifies_every_program(conformance_dir):
    accepted = 0
    for case in cases(conformance_dir):
        result, error = _verdict(case)
        if case.name in REJECTED_STANDALONE:
            assert error is not None, case.name + " is now accepted: update the table"
            assert REJECTED_STANDALONE[case.name] in error, (case.name, error)
        else:
            assert error is None, (case.name, error)
            accepted += 1
    assert accepted == 313 - len(REJECTED_STANDALONE)


def test_with_the_memory_size_declared_every_safe_program_is_accepted(conformance_dir):
    for case in cases(conformance_dir):
        size = len(case.mem) if case.mem else None
        result, error = _verdict(case, mem_size=size)
        if case.name in REJECTED_WITH_MEM_SIZE:
            assert REJECTED_WITH_MEM_SIZE[case.name] in (error or ""), (case.name, error)
        else:
            assert error is None, (case.name, error)


def test_declaring_the_suite_helper_accepts_the_helper_test(conformance_dir):
    case = load_case(str(conformance_dir / "call_unwind_fail.data"))
    assert verify(case.program(), helpers=SUITE_HELPERS)


def test_accepted_programs_run_within_the_proven_bound(conformance_dir):
    ran = 0
    for case in cases(conformance_dir):
        size = len(case.mem) if case.mem else None
        result, error = _verdict(case, mem_size=size, helpers=SUITE_HELPERS)
        if error is not None:
            continue
        program = case.program()
        vm = VM(program, helpers=CONFORMANCE_HELPERS, budget=result.max_path_insns)
        r0 = vm.run(mem=case.mem)
        assert r0 == case.result, case.name
        assert vm.last.insns_executed <= result.max_path_insns, case.name
        ran += 1
    assert ran == 312


@pytest.mark.parametrize("name", ["prime.data", "subnet.data", "call_local.data", "lock_fetch_add.data"])
def test_interesting_programs_report_their_proof(conformance_dir, name):
    case = load_case(str(conformance_dir / name))
    result = verify(case.program(), mem_size=len(case.mem) if case.mem else None)
    assert result.max_path_insns >= 1
    assert result.states_explored >= 1
