"""Every fault class stops a run with BPFFault(pc, instruction, reason); nothing else escapes."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotbpf.ebpf import isa
from iotbpf.ebpf.engines.vm import FAULT_KINDS, VM, BPFFault, HelperFault, engine_available
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.program import Program

ENGINE = "interp"


ENGINES = ["interp", "compact"] + (["compiled"] if engine_available("compiled") else [])


@pytest.fixture(scope="module", autouse=True, params=ENGINES)
def engine(request):
    """Every test runs on every engine: both interpreters and the compiled engine (identical
    results, fault kinds, pcs and texts are the contract)."""
    global ENGINE
    ENGINE = request.param
    yield request.param
    ENGINE = "interp"


def make_vm(*args, **kw):
    kw.setdefault("engine", ENGINE)
    return VM(*args, **kw)


def fault(text, mem=b"", budget=None, helpers=None, **run_kw):
    vm = make_vm(Program.from_asm(text), helpers=helpers, budget=budget)
    with pytest.raises(BPFFault) as info:
        vm.run(mem=mem, **run_kw)
    exc = info.value
    assert exc.kind in FAULT_KINDS
    assert str(exc) == "pc %d: %s: %s" % (exc.pc, exc.insn_text, exc.reason)
    return exc


def fault_raw(slots, **kw):
    data = b"".join(struct.pack("<Q", s) for s in slots)
    with pytest.raises(BPFFault) as info:
        make_vm(Program.from_bytes(data)).run(**kw)
    return info.value


@pytest.mark.parametrize("text, mem, pc, words", [
    ("ldxw %r0, [%r1+6]\nexit", b"12345678", 0, ["out-of-bounds read of 4 bytes", "mem+6", "8 bytes"]),
    ("mov %r0, 0\nldxb %r0, [%r1]\nexit", b"", 1, ["NULL"]),
    ("stdw [%r10-520], 1\nexit", b"", 0, ["write", "8 bytes below the start of stack0"]),
    ("ldxdw %r0, [%r10]\nexit", b"", 0, ["stack0+512"]),
    ("lddw %r1, 0x7000000000\nstb [%r1], 1\nexit", b"", 2, ["invalid address"]),
])
def test_out_of_bounds_accesses(text, mem, pc, words):
    exc = fault(text, mem)
    assert exc.kind == "oob" and exc.pc == pc
    for word in words:
        assert word in exc.reason


def test_map_handles_are_not_pointers():
    class Spec:
        name, value_size = "m", 8

    class FakeMap:
        spec = Spec()
        values = bytearray(8)

        def lookup(self, key):
            return None

    prog = Program.from_asm("lddw %r1, map_fd 0\nldxdw %r0, [%r1]\nexit")
    with pytest.raises(BPFFault) as info:
        make_vm(prog, maps=[FakeMap()]).run()
    assert info.value.kind == "oob" and "map handle" in info.value.reason


def test_write_to_read_only_memory():
    exc = fault("stb [%r1], 1\nexit", ctx=b"abc")
    assert exc.kind == "readonly" and "read-only" in exc.reason


@pytest.mark.parametrize("slots, pc, words", [
    ([0x00000000000000FF, 0x95], 0, ["unknown opcode 0xff"]),
    ([0x00000000000000B7 | (11 << 8), 0x95], 0, ["r11"]),
    ([0x0000000000000018 | (1 << 8), 0x0000000000000095, 0x95], 0, ["malformed lddw"]),
    ([0x00000000000000B7 | (10 << 8), 0x95], 0, ["read-only"]),
    ([0x00000000000000DC | (7 << 32), 0x95], 0, ["byte swap width"]),
    ([0x00000000000000DB | (0x33 << 32), 0x95], 0, ["unknown atomic"]),
    ([0x00000000000000BF | (1 << 12) | (4 << 16), 0x95], 0, ["movsx"]),
])
def test_unknown_or_malformed_instructions(slots, pc, words):
    exc = fault_raw(slots)
    assert exc.kind == "opcode" and exc.pc == pc
    for word in words:
        assert word in exc.reason


def test_unknown_opcode_faults_only_when_executed():
    prog = Program.from_bytes(struct.pack("<QQQ", 0x0000000000010005, 0xFF, 0x95))  # ja +1 over it
    assert make_vm(prog).run() == 0


@pytest.mark.parametrize("text, pc, words", [
    ("ja +5\nexit", 0, ["jump target 6 out of range"]),
    ("mov %r0, 1\njeq %r0, 1, -3\nexit", 1, ["out of range"]),
    ("mov %r0, 1", 0, ["fell off the end"]),
    ("ja32 +7\nexit", 0, ["out of range"]),
    ("call local +9\nexit", 0, ["call target"]),
])
def test_jumps_out_of_range(text, pc, words):
    exc = fault(text)
    assert exc.kind == "jump" and exc.pc == pc
    for word in words:
        assert word in exc.reason


def test_jump_into_the_middle_of_a_lddw():
    exc = fault_raw([0x0000000000010005, 0x0000000000000018, 0, 0x95])  # ja +1 -> slot 2
    assert exc.kind == "jump" and exc.pc == 2 and "second slot" in exc.reason


def test_not_taken_bad_jump_does_not_fault():
    assert make_vm(Program.from_asm("mov %r0, 0\njeq %r0, 1, +9\nexit")).run() == 0


def test_call_depth_is_limited_to_eight_frames():
    exc = fault("f:\ncall local f\nexit")
    assert exc.kind == "depth" and exc.pc == 0 and "8 frames" in exc.reason
    # 7 nested calls (8 frames) are fine
    text = "\n".join("call local f%d\nexit\nf%d:" % (i, i) for i in range(7)) + "\nmov %r0, 7\nexit"
    assert make_vm(Program.from_asm(text)).run() == 7


@pytest.mark.parametrize("text, helpers, words", [
    ("call 1234\nexit", None, ["unknown helper 1234"]),
    ("mov %r2, 77\ncall %r2\nexit", {1: lambda ex, *a: 0}, ["unknown helper 77"]),
    ("call 1\nexit", {1: lambda ex, *a: 1 // 0}, ["ZeroDivisionError"]),
    ("call 1\nexit", {1: lambda ex, *a: "x"}, ["returned str"]),
    ("call 1\nexit", {1: lambda ex, *a: ex.memory.load(0, 4)}, ["NULL"]),
    ("call 1\nexit", {1: lambda ex, *a: ex.call_callback(5)}, ["not a function address"]),
    ("call runtime 3\nexit", None, ["kernel function"]),
])
def test_helper_faults(text, helpers, words):
    exc = fault(text, helpers=helpers)
    assert exc.kind in ("helper", "oob")
    for word in words:
        assert word in exc.reason


def test_helper_fault_reason_is_kept():
    def bad(ex, *a):
        raise HelperFault("flags must be 0")

    exc = fault("mov %r1, 1\ncall 9\nexit", helpers={9: bad})
    assert exc.kind == "helper" and exc.pc == 1 and exc.reason.endswith("flags must be 0")


def test_budget_exhausted_in_an_infinite_loop():
    exc = fault("mov %r0, 0\nloop:\nadd %r0, 1\nja loop", budget=1000)
    assert exc.kind == "budget" and exc.pc == 1 and "1000" in exc.reason


@pytest.mark.parametrize("text, source", [
    ("lddw %r1, btf_id 7\nexit", "BTF"),
    ("lddw %r1, map_fd 3\nexit", "map index 3 out of range"),
    ("lddw %r1, 0x5, src 9\nexit", "pseudo source 9"),
])
def test_unresolvable_lddw_sources_are_load_errors(text, source):
    with pytest.raises(LoadError) as info:
        make_vm(Program.from_asm(text))
    assert source in str(info.value) and "pc 0" in str(info.value)


@given(st.lists(st.tuples(st.sampled_from(sorted(isa.OPCODES) + [0x00, 0xFF]), st.integers(0, 11),
                          st.integers(0, 11), st.integers(-4, 4), st.integers(-8, 600)),
                min_size=1, max_size=12),
       st.binary(max_size=16))
def test_random_programs_end_with_a_result_or_a_fault(fields, mem):
    data = b"".join(struct.pack("<BBhi", op, (s << 4) | d, off, imm) for op, d, s, off, imm in fields)
    data += struct.pack("<Q", 0x95)
    try:
        prog = Program.from_bytes(data)
        vm = make_vm(prog, helpers={1: lambda ex, *a: a[0]}, budget=500)
    except LoadError:
        return
    try:
        r0 = vm.run(mem=mem)
    except BPFFault as exc:
        assert exc.kind in FAULT_KINDS
        return
    assert 0 <= r0 < 1 << 64


def test_lddw_whose_second_slot_is_a_jump_target_still_runs_when_not_jumped_into():
    prog = Program.from_bytes(struct.pack("<QQQQ", 0x0000000000010115, 0x0000000500000018, 0, 0x95))
    assert make_vm(prog).run(mem=b"\x01") == 5  # jeq not taken: lddw then exit
    with pytest.raises(BPFFault) as info:
        make_vm(prog).run()  # r1 == 0: the jump lands in the lddw's second slot
    assert (info.value.kind, info.value.pc) == ("jump", 2)


def test_faults_name_the_nearest_source_line_of_the_same_function():
    prog = Program.from_asm("mov %r0, 0\nmov %r1, 0\ncall local f\nexit\nf:\nmov %r2, 0\nldxb %r0, [%r2]\nexit")
    prog.line_info = {0: ("a.c", 3, "int x = 0;"), 1: ("a.c", 4, "  ")}
    with pytest.raises(BPFFault) as info:
        make_vm(prog).run()
    assert info.value.source is None  # f (from pc 4) has no line info of its own
    prog.line_info[4] = ("a.c", 9, "return *p;")
    with pytest.raises(BPFFault) as info:
        make_vm(prog).run()
    assert info.value.source == ("a.c", 9, "return *p;")
    assert str(info.value).endswith("(NULL) [a.c:9: return *p;]")
    prog = Program.from_asm("ldxb %r0, [%r1]\nexit")
    prog.line_info = {0: ("a.c", 4, "  ")}
    with pytest.raises(BPFFault) as info:
        make_vm(prog).run()
    assert str(info.value).endswith(" [a.c:4]")
