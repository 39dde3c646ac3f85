"""engines/vm.py: RFC 9669 semantics, calls, helpers, maps, callbacks, tail calls, budget, tracing."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotbpf.ebpf import helpers as linux
from iotbpf.ebpf import maps, types
from iotbpf.ebpf.engines.vm import VM, BPFFault, Environment, HelperFault, engine_available
from iotbpf.ebpf.program import Program

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
u64 = st.integers(0, M64)


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


def run(text, mem=b"", **kw):
    run_kw = {k: kw.pop(k) for k in ("ctx", "packet", "trace", "profile") if k in kw}
    vm = make_vm(Program.from_asm(text), **kw)
    return vm.run(mem=mem, **run_kw)


def binop(op, a, b):
    return run("lddw %%r0, %d\nlddw %%r1, %d\n%s %%r0, %%r1\nexit" % (a, b, op))


def sx(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def trunc_div(a, b):
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


# Reference semantics written straight from RFC 9669 section 4.1, independent of the engines.
REF64 = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a // b if b else 0, "mod": lambda a, b: a % b if b else a,
    "or": lambda a, b: a | b, "and": lambda a, b: a & b, "xor": lambda a, b: a ^ b,
    "lsh": lambda a, b: a << (b % 64), "rsh": lambda a, b: a >> (b % 64),
    "arsh": lambda a, b: sx(a, 64) >> (b % 64), "mov": lambda a, b: b,
    "sdiv": lambda a, b: trunc_div(sx(a, 64), sx(b, 64)) if b else 0,
    "smod": lambda a, b: sx(a, 64) - sx(b, 64) * trunc_div(sx(a, 64), sx(b, 64)) if b else a,
}


@pytest.mark.parametrize("op", sorted(REF64))
@given(a=u64, b=st.one_of(u64, st.sampled_from([0, 1, M64, 1 << 63, 63, 64, 65])))
def test_alu64_matches_the_rfc(op, a, b):
    assert binop(op, a, b) == REF64[op](a, b) & M64


@pytest.mark.parametrize("op", sorted(REF64))
@given(a=u64, b=st.one_of(u64, st.sampled_from([0, 1, M32, 1 << 31, 31, 32, 33])))
def test_alu32_matches_the_rfc_and_zero_extends(op, a, b):
    a32, b32 = a & M32, b & M32
    ref = {
        "arsh": lambda: sx(a32, 32) >> (b32 % 32),
        "lsh": lambda: a32 << (b32 % 32), "rsh": lambda: a32 >> (b32 % 32),
        "sdiv": lambda: trunc_div(sx(a32, 32), sx(b32, 32)) if b32 else 0,
        "smod": lambda: (sx(a32, 32) - sx(b32, 32) * trunc_div(sx(a32, 32), sx(b32, 32))) if b32 else a32,
    }.get(op, lambda: REF64[op](a32, b32))()
    assert binop(op + "32", a, b) == ref & M32


@given(a=u64, imm=st.integers(-(1 << 31), (1 << 31) - 1))
def test_immediates_are_sign_extended_to_64_bits(a, imm):
    assert run("lddw %%r0, %d\nadd %%r0, %d\nexit" % (a, imm)) == (a + imm) & M64
    assert run("lddw %%r0, %d\ndiv %%r0, %d\nexit" % (a, imm)) == (a // (imm & M64) if imm else 0)
    assert run("lddw %%r0, %d\nxor32 %%r0, %d\nexit" % (a, imm)) == (a ^ imm) & M32


def test_division_edge_cases():
    assert binop("sdiv", 1 << 63, M64) == 1 << 63  # INT_MIN / -1 wraps
    assert binop("smod", 1 << 63, M64) == 0
    assert binop("smod", -7 & M64, 2) == -1 & M64  # sign of the dividend
    assert binop("mod32", 0xFFFFFFFF00000005, 0) == 5  # x % 0 = x, upper half zeroed


@given(u64)
def test_neg_movsx_and_byte_swaps(a):
    assert run("lddw %%r0, %d\nneg %%r0\nexit" % a) == -a & M64
    assert run("lddw %%r0, %d\nneg32 %%r0\nexit" % a) == -a & M32
    assert run("lddw %%r1, %d\nmovsx864 %%r0, %%r1\nexit" % a) == sx(a, 8) & M64
    assert run("lddw %%r1, %d\nmovsx1632 %%r0, %%r1\nexit" % a) == sx(a, 16) & M32
    assert run("lddw %%r1, %d\nmovsx3264 %%r0, %%r1\nexit" % a) == sx(a, 32) & M64
    swapped16 = int.from_bytes((a & 0xFFFF).to_bytes(2, "big"), "little")
    assert run("lddw %%r0, %d\nbe16 %%r0\nexit" % a) == swapped16
    assert run("lddw %%r0, %d\nbswap64 %%r0\nexit" % a) == int.from_bytes(a.to_bytes(8, "big"), "little")
    assert run("lddw %%r0, %d\nle32 %%r0\nexit" % a) == a & M32


COND = {
    "jeq": lambda a, b: a == b, "jne": lambda a, b: a != b, "jgt": lambda a, b: a > b,
    "jge": lambda a, b: a >= b, "jlt": lambda a, b: a < b, "jle": lambda a, b: a <= b,
    "jset": lambda a, b: a & b != 0,
}


@pytest.mark.parametrize("op", sorted(COND) + ["jsgt", "jsge", "jslt", "jsle"])
@given(a=u64, b=st.one_of(u64, st.sampled_from([0, 1, M64, 1 << 63, M32, 1 << 31])))
def test_conditional_jumps_64_and_32(op, a, b):
    for bits, suffix in ((64, ""), (32, "32")):
        x, y = a & ((1 << bits) - 1), b & ((1 << bits) - 1)
        if op.startswith("js") and op != "jset":
            x, y = sx(x, bits), sx(y, bits)
            expect = COND["j" + op[2:]](x, y)
        else:
            expect = COND[op](x, y)
        prog = "lddw %%r1, %d\nlddw %%r2, %d\nmov %%r0, 1\n%s%s %%r1, %%r2, +1\nmov %%r0, 0\nexit" % (
            a, b, op, suffix)
        assert run(prog) == int(expect)


def test_loads_stores_and_sign_extending_loads():
    mem = bytes([0x80, 0xFF, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08])
    assert run("ldxsb %r0, [%r1]\nexit", mem) == 0xFFFFFFFFFFFFFF80
    assert run("ldxsh %r0, [%r1]\nexit", mem) == 0xFFFFFFFFFFFFFF80
    assert run("ldxh %r0, [%r1+1]\nexit", mem) == 0x01FF  # misaligned is fine
    assert run("ldxdw %r0, [%r1+2]\nexit", mem) == 0x0807060504030201
    assert run("stdw [%r10-8], -1\nldxdw %r0, [%r10-8]\nexit") == M64
    assert run("sth [%r1+1], 0x1234\nldxw %r0, [%r1]\nexit", mem) == 0x02123480


def test_atomics_update_memory_and_fetch_old_values():
    prog = """
        stdw [%r10-8], 10
        mov %r1, 5
        lock fetch add [%r10-8], %r1
        ldxdw %r2, [%r10-8]
        lsh %r1, 8
        add %r1, %r2
        mov %r0, %r1
        exit"""
    assert run(prog) == (10 << 8) + 15
    prog = """
        stw [%r10-4], 7
        mov %r0, 7
        mov %r1, 9
        lock cmpxchg32 [%r10-4], %r1
        ldxw %r2, [%r10-4]
        lsh %r0, 8
        or %r0, %r2
        exit"""
    assert run(prog) == (7 << 8) | 9


def test_local_calls_preserve_r6_to_r9_and_give_each_frame_its_own_stack():
    prog = """
        mov %r6, 6
        stdw [%r10-8], 111
        mov %r1, %r10
        call local f
        ldxdw %r1, [%r10-8]
        add %r0, %r1
        add %r0, %r6
        exit
    f:
        mov %r6, 0
        stdw [%r10-8], 222
        ldxdw %r0, [%r1-8]
        ldxdw %r2, [%r10-8]
        add %r0, %r2
        exit"""
    # callee reads the caller's slot through a pointer (111) and its own (222)
    assert run(prog) == 111 + 222 + 111 + 6


def test_helper_calls_get_the_execution_and_five_arguments():
    seen = []

    def helper(ex, r1, r2, r3, r4, r5):
        seen.append((r1, r2, r3, r4, r5))
        return ex.memory.load(r1, 1) - 10  # negative: masked to u64

    prog = "mov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\ncall 99\nadd %r0, %r2\nexit"
    vm = make_vm(Program.from_asm(prog), helpers={99: helper})
    assert vm.run(mem=b"\x07") == ((7 - 10) + 2) & M64  # r2 survives the call
    assert seen[0][1:] == (2, 3, 4, 5)


def test_helper_returning_none_gives_zero_and_stop_ends_the_run():
    def stop(ex, *args):
        ex.stop(42)

    assert run("mov %r0, 5\ncall 1\nexit", helpers={1: lambda ex, *a: None}) == 0
    assert run("call 1\nmov %r0, 5\nexit", helpers={1: stop}) == 42


def array_map(name="counts", value_size=8, max_entries=4):
    return maps.create_map(types.MapSpec(name, types.BPF_MAP_TYPE_ARRAY, 4, value_size, max_entries))


COUNT_WITH_LOOKUP = """
    stw [%r10-4], 2
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    mov %r1, 1
    lock add [%r0], %r1
    ldxdw %r0, [%r0]
out:
    exit
"""


def test_map_handles_and_in_place_value_updates_with_the_linux_helpers():
    counts = array_map()
    prog = Program.from_asm(COUNT_WITH_LOOKUP)
    vm = make_vm(prog, helpers=linux.linux_helpers(), maps=[counts])
    assert [vm.run() for _ in range(3)] == [1, 2, 3]
    assert struct.unpack("<Q", counts.lookup(struct.pack("<I", 2)))[0] == 3


def test_map_specs_in_a_program_are_instantiated():
    prog = Program.from_asm(COUNT_WITH_LOOKUP)
    prog.maps = [types.MapSpec("counts", types.BPF_MAP_TYPE_ARRAY, 4, 8, 4)]
    vm = make_vm(prog, helpers=linux.linux_helpers())
    assert vm.run() == 1 and vm.run() == 2
    assert vm.maps[0].lookup(struct.pack("<I", 2)) == struct.pack("<Q", 2)


def test_lddw_map_value_points_into_the_value_storage():
    data = array_map("data", 16, 1)
    prog = Program.from_asm("lddw %r1, map_value 0, 8\nldxdw %r0, [%r1]\nstdw [%r1], 9\nexit")
    data.update(struct.pack("<I", 0), bytes(8) + struct.pack("<Q", 77))
    vm = make_vm(prog, maps=[data])
    assert vm.run() == 77
    assert data.lookup(struct.pack("<I", 0))[8:] == struct.pack("<Q", 9)


def test_map_from_handle_rejects_values_that_are_not_handles():
    def use(ex, r1, *rest):
        ex.map_from_handle(r1)
        return 0

    with pytest.raises(BPFFault) as info:
        run("mov %r1, 12\ncall 1\nexit", helpers={1: use})
    assert info.value.kind == "helper" and "not a map" in str(info.value)


def test_bpf_loop_runs_a_callback_given_by_lddw_func():
    prog = """
        stdw [%r10-8], 0
        mov %r1, 5
        lddw %r2, func body
        mov %r3, %r10
        add %r3, -8
        mov %r4, 0
        mov %r6, 66
        call 181
        ldxdw %r1, [%r10-8]
        lsh %r0, 16
        add %r0, %r1
        add %r0, %r6
        exit
    body:
        ldxdw %r3, [%r2]
        add %r3, %r1
        stxdw [%r2], %r3
        mov %r6, 0
        mov %r0, 0
        exit
    """
    # 5 iterations, sum of i = 10, r6 preserved across callbacks
    assert run(prog, helpers=linux.linux_helpers()) == (5 << 16) + 10 + 66


def test_callx_calls_a_function_address_or_a_helper_id():
    prog = "lddw %r2, func f\ncall %r2\nmov %r3, 7\ncall %r3\nexit\nf:\nmov %r0, 40\nexit"
    assert run(prog, helpers={7: lambda ex, *a: 2}) == 2
    prog = "lddw %r2, func f\nmov %r1, 1\ncall %r2\nexit\nf:\nmov %r0, 40\nadd %r0, %r1\nexit"
    assert run(prog) == 41


def self_tail_calling_vm(**kw):
    """A program that counts its runs in a map, then tail-calls slot 0 (itself) until that fails;
    returns (count << 8) + the context's first byte."""
    counter = array_map("n", 8, 1)
    jumps = maps.create_map(types.MapSpec("jumps", types.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 2))
    text = """
        mov %r6, %r1
        lddw %r7, map_value 1, 0
        mov %r1, 1
        lock add [%r7], %r1
        mov %r1, %r6
        lddw %r2, map_fd 0
        mov %r3, 0
        call 12
        ldxdw %r0, [%r7]
        lsh %r0, 8
        ldxb %r1, [%r6]
        add %r0, %r1
        exit
    """
    prog = Program.from_asm(text)
    jumps.set_program(0, prog)
    return make_vm(prog, helpers=linux.linux_helpers(), maps=[jumps, counter], **kw)


def test_tail_calls_switch_programs_keep_r1_and_stop_after_33():
    vm = self_tail_calling_vm()
    assert vm.run(mem=b"\x05") == (34 << 8) + 5
    assert vm.last.tail_calls == 33


def test_run_event_equals_run_with_a_context_address_through_tail_calls_and_faults():
    # run_event is the event loop's entry: the same r0, counts, tail calls and faults as run(ctx=...)
    vm = self_tail_calling_vm(budget=10000)
    addr = vm.memory.add_region(bytearray(b"\x05"), "ctx")
    first = (vm.run(ctx=addr), vm.last.tail_calls, vm.last.insns_executed)
    second = (vm.run_event(addr), vm.last.tail_calls, vm.last.insns_executed)
    assert first == ((34 << 8) + 5, 33, first[2]) and second == ((68 << 8) + 5, 33, first[2])
    faulty = make_vm(Program.from_asm("ldxdw %r0, [%r1+8]\nexit"), budget=100)
    with pytest.raises(BPFFault) as a:
        faulty.run(ctx=addr)
    with pytest.raises(BPFFault) as b:
        faulty.run_event(addr)
    assert (a.value.pc, a.value.kind, str(a.value)) == (b.value.pc, b.value.kind, str(b.value))


@pytest.mark.parametrize("tail_calls", [False, True])
def test_run_event_after_runs_of_every_kind_returns_what_a_fresh_run_returns(tail_calls):
    # run_event skips re-setting the execution state after a run that ended cleanly; faults,
    # budget faults, traced runs, budget changes and (for code that may tail-call, which gets
    # no shortcut) tail calls in between must not leak into the next run
    jumps = maps.create_map(types.MapSpec("jumps", types.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 2))
    target = Program.from_asm("mov %r0, 99\nexit")
    jumps.set_program(0, target)
    tail = """
        lddw %r2, map_fd 0
        mov %r3, 0
        call 12
    """ if tail_calls else "mov %r2, 7\n"
    text = """
        ldxb %r2, [%r1]
        jeq %r2, 1, tail
        jeq %r2, 2, boom
        jeq %r2, 3, spin
        mov %r0, %r2
        add %r0, 10
        exit
    tail:
        """ + tail + """
        mov %r0, 5
        exit
    boom:
        ldxdw %r0, [%r1+68]
        exit
    spin:
        mov %r0, 0
    again:
        add %r0, 1
        jlt %r0, 1000, again
        exit
    """
    program = Program.from_asm(text)
    modes = ["unlimited", 0, 0, "limited", 3, 0, 1, 0, 2, 0, 3, 0, 1, 1, 4, "trace", 0, "unlimited", 0, 3, 1, 0,
             "limited", 0, 3, 2, 2, 0]

    def outcome(vm, run):
        try:
            r0 = run()
        except BPFFault as exc:
            r0 = (exc.pc, exc.kind, str(exc))
        ex = vm.last
        return r0, ex.insns_executed, ex.tail_calls, ex.program is program, list(ex.regs), ex.trace is None

    def play(use_run_event):
        vm = make_vm(program, helpers=linux.linux_helpers(), maps=[jumps], budget=500)
        vm.clear_stack = False  # the program never reads the stack (as the verifier would prove)
        ctxs = [bytearray(72), bytearray(72)]  # two contexts in turn (r1 changes between runs)
        addrs = [vm.memory.add_region(ctx, "ctx") for ctx in ctxs]
        seen = []
        shortcuts = 0
        for step, mode in enumerate(modes):
            ctx, addr = ctxs[step % 2], addrs[step % 2]
            if mode == "trace":
                ctx[0] = 0
                seen.append((outcome(vm, lambda a=addr: vm.run(ctx=a, trace=True)), len(vm.last.trace)))
                continue
            if mode in ("unlimited", "limited"):
                vm.budget = None if mode == "unlimited" else 500
                continue
            ctx[0] = mode
            shortcuts += vm._event_fn is not None
            run = (lambda a=addr: vm.run_event(a)) if use_run_event else (lambda a=addr: vm.run(ctx=a))
            seen.append(outcome(vm, run))
        return seen, shortcuts

    seen, shortcuts = play(True)
    assert seen == play(False)[0]
    assert [seen[i][0] for i in (0, 1, 3, 4)] == [10, 10, 10, 99 if tail_calls else 5]
    assert seen[2][0][1] == "budget" and seen[6][0][1] == "oob"
    # the shortcut is taken where it may be, and only there
    assert shortcuts > (0 if ENGINE == "compiled" and not tail_calls else -1)
    assert shortcuts == 0 or (ENGINE == "compiled" and not tail_calls)


def test_the_stack_is_cleared_between_runs_unless_the_vm_is_told_not_to():
    # a program that reads stack bytes it did not write (the verifier rejects it) sees zeros,
    # or, with clear_stack off (for verified programs only), what the previous run left there
    prog = Program.from_asm("ldxdw %r0, [%r10-8]\nstdw [%r10-8], 7\nexit")
    vm = make_vm(prog)
    assert [vm.run(), vm.run()] == [0, 0]
    vm.clear_stack = False
    assert [vm.run(), vm.run_event(0), vm.run_event(0), vm.run_event(0)] == [7, 7, 7, 7]
    vm.clear_stack = True  # after run_event's shortcut too
    assert [vm.run_event(0), vm.run_event(0)] == [0, 0]


def test_tail_call_to_an_empty_slot_continues_the_program():
    jumps = maps.create_map(types.MapSpec("jumps", types.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 2))
    prog = Program.from_asm("lddw %r2, map_fd 0\nmov %r3, 1\ncall 12\nexit")
    assert make_vm(prog, helpers=linux.linux_helpers(), maps=[jumps]).run() == (-2) & M64  # -ENOENT


def test_legacy_packet_loads_are_big_endian_and_end_the_program_when_out_of_range():
    packet = bytes([0x12, 0x34, 0x56, 0x78, 0x9A])
    assert run("ldabsh 1\nexit", packet) == 0x3456
    assert run("ldabsw 0\nexit", packet) == 0x12345678
    assert run("mov %r2, 3\nldindb %r2, 1\nexit", packet) == 0x9A
    assert run("mov %r0, 7\nldabsw 2\nmov %r0, 1\nexit", packet) == 0
    assert run("ldabsb 0\nexit", mem=b"", packet=b"\xaa") == 0xAA


def test_ctx_runs_write_through_a_bytearray_and_reject_writes_to_bytes():
    ctx = bytearray(8)
    assert run("stw [%r1+4], 9\nmov %r0, %r2\nexit", ctx=ctx) == 0
    assert ctx[4] == 9
    with pytest.raises(BPFFault) as info:
        run("stw [%r1+4], 9\nexit", ctx=bytes(8))
    assert info.value.kind == "readonly"


def test_no_mem_means_null_r1_and_zero_r2():
    assert run("mov %r0, %r1\nadd %r0, %r2\nexit") == 0
    assert run("mov %r0, %r2\nexit", b"abc") == 3


def test_the_stack_is_zeroed_for_each_run():
    vm = make_vm(Program.from_asm("ldxdw %r0, [%r10-8]\nstdw [%r10-8], 5\nexit"))
    assert vm.run() == 0 and vm.run() == 0


def test_callee_frames_are_zeroed_for_each_run_too():
    vm = make_vm(Program.from_asm("call local f\nexit\nf:\nldxdw %r0, [%r10-8]\nstdw [%r10-8], 5\nexit"))
    assert vm.run() == 0 and vm.run() == 0


def test_budget_is_charged_per_basic_block_on_entry():
    text = "mov %r0, 0\nmov %r1, 3\nloop:\nadd %r0, 1\nsub %r1, 1\njne %r1, 0, loop\nexit"
    prog = Program.from_asm(text)
    total = 2 + 3 * 3 + 1
    vm = make_vm(prog, budget=total)
    assert vm.run() == 3 and vm.last.insns_executed == total
    with pytest.raises(BPFFault) as info:
        make_vm(prog).run(budget=total - 1)
    # the last block (exit) cannot be paid: fault at its first pc, before running it
    assert info.value.kind == "budget" and info.value.pc == 5
    with pytest.raises(BPFFault) as info:
        make_vm(prog).run(budget=6)  # 2 + 3, then the loop block again needs 3
    assert info.value.pc == 2


def test_trace_lists_changed_registers_and_profile_counts_pcs():
    vm = make_vm(Program.from_asm("mov %r0, 1\nmov %r1, 2\nloop:\nsub %r1, 1\njne %r1, 0, loop\nexit"))
    assert vm.run(trace=True, profile=True) == 1
    trace = vm.last.trace
    assert trace[0] == (0, "mov %r0, 1", [(0, 1)])
    assert trace[2] == (2, "sub %r1, 1", [(1, 1)])
    assert [t[0] for t in trace] == [0, 1, 2, 3, 2, 3, 4]
    assert vm.last.profile == {0: 1, 1: 1, 2: 2, 3: 2, 4: 1}


def test_trace_and_fast_loop_agree_on_faults_and_results():
    prog = Program.from_asm("mov %r0, 3\nlddw %r1, 0x100\nldxb %r0, [%r1]\nexit")
    errors = []
    for trace in (False, True):
        with pytest.raises(BPFFault) as info:
            make_vm(prog).run(trace=trace)
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert errors[0].startswith("pc 3: ldxb %r0, [%r1]: ")


def test_default_environment_is_deterministic():
    a, b = Environment(), Environment()
    assert [a.random_u32() for _ in range(5)] == [b.random_u32() for _ in range(5)]
    assert Environment(clock_ns=lambda: 123).clock_ns() == 123
    assert run("call 7\nexit", helpers=linux.linux_helpers()) == Environment().random_u32()


def test_helper_fault_carries_the_call_pc():
    def bad(ex, *args):
        raise HelperFault("size must be positive")

    with pytest.raises(BPFFault) as info:
        run("mov %r0, 0\ncall 3\nexit", helpers={3: bad})
    assert info.value.pc == 1 and "size must be positive" in str(info.value)


def test_a_helper_bound_to_the_environment_is_what_the_compiled_engine_calls():
    # HelperSpec.bind(env) gives the compiled engine a per-environment implementation, bound
    # when its code is bound (not per call); the interpreters call ``func``. Both must mean the
    # same helper.
    class Env(Environment):
        offset = 1000

    bound_for = []

    def generic(ex, r1, r2, r3, r4, r5):
        return ex.env.offset + r1

    def bind(env):
        bound_for.append(env)
        offset = env.offset

        def specialized(ex, r1, r2, r3, r4, r5):
            return offset + r1  # the same value, without looking up ex.env
        return specialized

    table = types.HelperTable([types.HelperSpec(0x1100, "offset_add", (types.ARG_ANYTHING,), types.RET_INTEGER,
                                                generic, bind=bind)])
    program = Program.from_asm("mov %r1, 5\ncall 0x1100\nmov %r1, %r0\ncall 0x1100\nexit")
    env = Env()
    vm = make_vm(program, helpers=table, env=env)
    assert [vm.run() for _ in range(3)] == [2005, 2005, 2005]
    calls = len(bound_for)
    assert vm.run() == 2005 and len(bound_for) == calls  # bound once, not per run
    assert set(bound_for) == ({env} if ENGINE == "compiled" else set())


def test_run_event_sees_map_storage_that_grew_since_its_last_run():
    # an array map's value storage grows as entries are written; run_event's shortcut must still
    # let the program reach values in the new part of it through its direct value pointer
    array = maps.create_map(types.MapSpec("a", types.BPF_MAP_TYPE_ARRAY, 4, 8, 1000))
    array.update(struct.pack("<I", 0), struct.pack("<Q", 5))
    program = Program.from_asm("""
        ldxw %r2, [%r1]
        lsh %r2, 3
        lddw %r1, map_value 0, 0
        add %r1, %r2
        ldxdw %r0, [%r1]
        exit
    """)
    vm = make_vm(program, maps=[array])
    vm.clear_stack = False  # the program never reads the stack
    ctx = bytearray(4)
    addr = vm.memory.add_region(ctx, "ctx")
    grown_before = len(array.values)
    assert [vm.run_event(addr), vm.run_event(addr)] == [5, 5]
    array.update(struct.pack("<I", 900), struct.pack("<Q", 1900))
    assert len(array.values) > grown_before
    ctx[:] = struct.pack("<I", 900)
    assert [vm.run_event(addr), vm.run_event(addr)] == [1900, 1900]
