"""The verifier as a specification: unsafe programs rejected (one per reason, with the message a C
programmer can act on), tricky safe programs accepted, and what an accepted program's proof says."""

import pytest

from iotbpf.ebpf import isa
from iotbpf.ebpf import maps as maps_module
from iotbpf.ebpf.engines.vm import VM
from iotbpf.ebpf.errors import VerifierError
from iotbpf.ebpf.program import Program
from iotbpf.ebpf.types import (
    ARG_ANYTHING,
    ARG_CONST_MAP_PTR,
    ARG_CONST_SIZE,
    ARG_PTR_TO_CTX,
    ARG_PTR_TO_MAP_KEY,
    ARG_PTR_TO_MAP_VALUE,
    ARG_PTR_TO_MEM,
    ARG_PTR_TO_UNINIT_MEM,
    BPF_F_RDONLY_PROG,
    BPF_MAP_TYPE_ARRAY,
    BPF_MAP_TYPE_HASH,
    BPF_MAP_TYPE_PROG_ARRAY,
    RET_INTEGER,
    RET_PTR_TO_MAP_VALUE_OR_NULL,
    ContextField,
    ContextLayout,
    HelperSpec,
    HelperTable,
    MapSpec,
)
from iotbpf.ebpf.verifier import verify


def _ret0(ex, *args):
    return 0


HELPERS = HelperTable([
    HelperSpec(1, "map_lookup_elem", [ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_KEY], RET_PTR_TO_MAP_VALUE_OR_NULL,
               _ret0),
    HelperSpec(2, "map_update_elem", [ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_KEY, ARG_PTR_TO_MAP_VALUE,
                                      ARG_ANYTHING], RET_INTEGER, _ret0),
    HelperSpec(5, "ktime_get_ns", [], RET_INTEGER, _ret0),
    HelperSpec(12, "tail_call", [ARG_PTR_TO_CTX, ARG_CONST_MAP_PTR, ARG_ANYTHING], RET_INTEGER, _ret0),
    HelperSpec(0x1000, "send", [ARG_PTR_TO_MEM, ARG_CONST_SIZE], RET_INTEGER, _ret0),
    HelperSpec(0x1001, "fill", [ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE], RET_INTEGER, _ret0),
])

TIMER = ContextLayout("timer", 24, [
    ContextField("now_ns", 0, 8),
    ContextField("timer_id", 8, 4),
    ContextField("flags", 12, 4, writable=True),
    ContextField("result", 16, 8, writable=True),
])

MAPS = [MapSpec("counters", BPF_MAP_TYPE_ARRAY, 4, 24, 4),
        MapSpec("progs", BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4),
        MapSpec(".rodata", BPF_MAP_TYPE_ARRAY, 4, 16, 1, flags=BPF_F_RDONLY_PROG),
        MapSpec("table", BPF_MAP_TYPE_HASH, 8, 8, 16)]


def prog(text, maps=True):
    p = Program.from_asm(text, name="t.s")
    if maps:
        p.maps = list(MAPS)
    return p


def check(text, hook=TIMER, mem_size=None, **kw):
    return verify(prog(text), helpers=HELPERS, hook=hook, mem_size=mem_size, **kw)


def rejected(text, hook=TIMER, mem_size=None, **kw):
    with pytest.raises(VerifierError) as info:
        check(text, hook=hook, mem_size=mem_size, **kw)
    err = info.value
    assert err.exit_code == 1
    assert err.errors and str(err) == err.errors[0]
    assert err.errors[0].startswith("pc ")
    return err.errors[0]


LOOKUP = """
    stw [%r10-4], 0
    lddw %r1, map_fd 0
    mov %r2, %r10
    add %r2, -4
    call 1
"""


# ---------------------------------------------------------------- unsafe programs, one per reason
def test_reading_an_uninitialised_register_is_rejected():
    msg = rejected("mov %r0, %r3\nexit")
    assert msg.startswith("pc 0: mov %r0, %r3: r3 is read before it is written")


def test_reading_an_uninitialised_stack_slot_is_rejected():
    msg = rejected("ldxdw %r0, [%r10-8]\nexit")
    assert "reads uninitialised stack at fp-8" in msg


def test_registers_r1_to_r5_are_dead_after_a_call():
    msg = rejected("call 5\nmov %r0, %r1\nexit")
    assert "r1 is read before it is written" in msg and "r1-r5 do not survive a call" in msg


def test_stack_access_beyond_512_bytes_is_rejected():
    msg = rejected("stb [%r10-513], 1\nmov %r0, 0\nexit")
    assert "stack access out of bounds" in msg and "512 bytes of stack" in msg


def test_stack_access_above_the_frame_pointer_is_rejected():
    assert "stack access out of bounds" in rejected("stdw [%r10-4], 1\nmov %r0, 0\nexit")


def test_out_of_bounds_map_value_access_is_rejected():
    msg = rejected(LOOKUP + "jeq %r0, 0, +1\nldxdw %r0, [%r0+20]\nmov %r0, 0\nexit")
    assert "out-of-bounds access: 8 bytes at offset 20 of the 24-byte value of map counters" in msg


def test_mis_sized_context_access_is_rejected():
    msg = rejected("ldxdw %r0, [%r1+8]\nexit")
    assert "invalid context access: offset 8 size 8 is not inside a field of the timer context" in msg
    assert "timer_id@8/4" in msg


def test_context_access_outside_the_layout_is_rejected():
    assert "offset 24 size 4" in rejected("ldxw %r0, [%r1+24]\nexit")


def test_write_to_a_read_only_context_field_is_rejected():
    msg = rejected("stw [%r1+8], 1\nmov %r0, 0\nexit")
    assert "field timer_id of the timer context is read-only" in msg


def test_variable_context_offset_is_rejected():
    msg = rejected("ldxw %r2, [%r1+8]\nand %r2, 4\nadd %r1, %r2\nldxw %r0, [%r1]\nexit")
    assert "variable offset into the context" in msg


def test_unchecked_map_lookup_result_is_rejected_with_a_hint():
    msg = rejected(LOOKUP + "ldxdw %r0, [%r0]\nexit")
    assert "pc 6: ldxdw %r0, [%r0]: r0 may be NULL (map lookup result not checked)" in msg
    assert "check it before dereferencing" in msg
    assert "(t.s:7: ldxdw %r0, [%r0])" in msg  # the source line


def test_null_pointer_dereference_is_rejected():
    msg = rejected(LOOKUP + "jne %r0, 0, +1\nldxdw %r0, [%r0]\nmov %r0, 0\nexit")
    assert "r0 is NULL" in msg
    assert msg.endswith("; path: 6 -> 7")


def test_forbidden_pointer_arithmetic_is_rejected():
    assert "forbidden pointer arithmetic" in rejected("mul %r1, 2\nmov %r0, 0\nexit")
    assert "adding two pointers" in rejected("add %r1, %r10\nmov %r0, 0\nexit")
    assert "32-bit add on a pointer" in rejected("add32 %r1, 4\nmov %r0, 0\nexit")
    msg = rejected(LOOKUP + "add %r0, 8\nmov %r0, 0\nexit")
    assert "arithmetic on r0, which is a map value pointer that may be NULL" in msg
    assert "check it against NULL first" in msg


def test_pointer_stored_into_a_map_value_is_a_leak():
    msg = rejected(LOOKUP + "jeq %r0, 0, +1\nstxdw [%r0], %r10\nmov %r0, 0\nexit")
    assert "storing a pointer (a pointer to the stack (fp+0)) into a map value would leak it" \
        in msg


def test_returning_a_pointer_leaks_it():
    assert "r0 is a pointer to the context: returning a pointer leaks an address" in rejected(
        "mov %r0, %r1\nexit")


def test_exit_without_setting_r0_is_rejected():
    assert "r0 is not set at exit" in rejected("exit")


def test_write_to_r10_is_rejected():
    msg = rejected("mov %r10, 0\nmov %r0, 0\nexit")
    assert "r10 (the frame pointer) is read-only" in msg


def test_helper_argument_of_the_wrong_type_is_rejected():
    msg = rejected("mov %r1, 0\nmov %r2, 0\ncall 1\nmov %r0, 0\nexit")
    assert "argument 1 (r1) of map_lookup_elem is the number 0, expected a map" in msg


def test_helper_memory_argument_of_the_wrong_size_is_rejected():
    msg = rejected("stdw [%r10-8], 0\nmov %r1, %r10\nadd %r1, -8\nmov %r2, 16\ncall 0x1000\nexit")
    assert "16 bytes at fp-8 do not fit in the stack" in msg
    msg = rejected("stw [%r10-8], 0\nmov %r1, %r10\nadd %r1, -8\nmov %r2, 8\ncall 0x1000\nexit")
    assert "points to uninitialised stack at fp-4" in msg


def test_helper_size_must_be_bounded():
    msg = rejected("ldxdw %r2, [%r1]\nmov %r1, %r10\nadd %r1, -8\ncall 0x1001\nexit")
    assert "unbounded size" in msg or "may be 0" in msg


def test_unknown_helper_is_rejected():
    assert "unknown helper 999" in rejected("call 999\nexit")
    with pytest.raises(VerifierError, match="unknown helper 5"):
        verify(prog("call 5\nexit"))  # no helper table at all


def test_jump_out_of_range_is_rejected():
    assert "jump out of range (target pc 6, program has 3 slots)" in rejected("ja +5\nmov %r0, 0\nexit")


def test_jump_into_the_middle_of_lddw_is_rejected():
    insns = isa.decode(isa.encode([isa.Instruction(isa.JA, off=1)] + isa.lddw(0, 1) +
                                  [isa.Instruction(isa.EXIT)]))
    with pytest.raises(VerifierError, match="jump into the middle of the lddw at pc 1"):
        verify(insns)


def test_unreachable_instruction_is_rejected():
    msg = rejected("mov %r0, 0\nexit\nmov %r0, 1\nexit")
    assert msg.startswith("pc 2: mov %r0, 1: unreachable instruction")


def test_falling_off_the_end_is_rejected():
    assert "execution falls off the end of the program" in rejected("mov %r0, 0")


def test_program_over_the_size_limit_is_rejected():
    text = "mov %r0, 0\n" * 4096 + "exit"
    assert "the program has 4097 instructions, more than the limit of 4096" in rejected(text)
    assert check(text, max_insns=5000).insn_count == 4097
    assert "more than the limit of 10" in rejected("mov %r0, 0\n" * 10 + "exit", max_insns=10)


def test_unknown_opcode_and_reserved_fields_are_rejected():
    with pytest.raises(VerifierError, match="unknown opcode 0xff"):
        verify([isa.Instruction(0xFF), isa.Instruction(isa.EXIT)])
    with pytest.raises(VerifierError, match="reserved fields"):
        verify([isa.Instruction(isa.BPF_ALU64 | isa.BPF_MOV, 0, 3, 0, 0), isa.Instruction(isa.EXIT)])


def test_loop_that_repeats_its_state_is_an_infinite_loop():
    msg = rejected("mov %r0, 0\nl:\nja l")
    assert "infinite loop" in msg
    msg = rejected("ldxdw %r3, [%r1]\nl:\nsub %r3, 1\njne %r3, 0, l\nmov %r0, 0\nexit")
    assert "infinite loop" in msg


def test_loop_not_bounded_within_the_budget_is_rejected():
    msg = rejected("mov %r0, 0\nl:\nadd %r0, 1\njne %r0, 0, l\nexit", budget=1000)
    assert "a run may execute more than 1000 instructions (the budget)" in msg
    assert "loop not provably bounded" in msg
    ok = "mov %r0, 0\nl:\nadd %r0, 1\njlt %r0, 100, l\nexit"
    assert check(ok, budget=1000).max_path_insns == 1 + 2 * 100 + 1
    assert "more than 150 instructions" in rejected(ok, budget=150)


def test_budget_is_checked_across_pruned_paths():
    # Each path alone is short, but a pruned path joins a long suffix: the bound must add up.
    text = """
        ldxdw %r3, [%r1]
        mov %r0, 0
        jeq %r3, 0, +1
        mov %r4, 1
        mov %r4, 1
        mov %r5, 0
    l:
        add %r5, 1
        jlt %r5, 50, l
        exit
    """
    result = check(text)
    assert result.max_path_insns == 1 + 1 + 1 + 1 + 1 + 1 + 2 * 50 + 1
    assert "more than 100" in rejected(text, budget=100)


def test_call_depth_over_8_frames_is_rejected():
    funcs = "".join("f%d:\ncall local f%d\nexit\n" % (i, i + 1) for i in range(8))
    text = "call local f0\nexit\n" + funcs + "f8:\nmov %r0, 0\nexit\n"
    assert "call depth exceeds 8 frames" in rejected(text)
    funcs = "".join("f%d:\ncall local f%d\nexit\n" % (i, i + 1) for i in range(6))
    assert check("call local f0\nexit\n" + funcs + "f6:\nmov %r0, 0\nexit\n")


def test_recursion_is_rejected():
    msg = rejected("call local f\nexit\nf:\nmov %r0, 0\ncall local f\nexit")
    assert "recursive call" in msg and "use a loop" in msg


def test_tail_call_misuse_is_rejected():
    msg = rejected("lddw %r2, map_fd 0\nmov %r3, 0\ncall 12\nmov %r0, 0\nexit")
    assert "tail call through map counters of type array, which is not a prog_array" in msg
    msg = rejected("stw [%r10-4], 0\nlddw %r1, map_fd 1\nmov %r2, %r10\nadd %r2, -4\ncall 1\n"
                   "mov %r0, 0\nexit")
    assert "prog_array map progs passed to map_lookup_elem" in msg
    msg = rejected("call local f\nexit\nf:\nlddw %r2, map_fd 1\nmov %r3, 0\ncall 12\nmov %r0, 0\nexit")
    assert "argument 1 (r1) of tail_call" in msg or "tail call from inside" in msg
    assert check("lddw %r2, map_fd 1\nmov %r3, 0\ncall 12\nmov %r0, 0\nexit")


def test_write_to_a_read_only_map_is_rejected():
    msg = rejected("lddw %r1, map_value 2, 0\nstw [%r1+4], 1\nmov %r0, 0\nexit")
    assert "map .rodata is read-only" in msg
    assert check("lddw %r1, map_value 2, 0\nldxw %r0, [%r1+12]\nexit")


def test_input_read_without_a_length_check_is_rejected_in_standalone_mode():
    msg = rejected("ldxw %r0, [%r1+4]\nexit", hook=None)
    assert "reading 4 bytes at input offset 4 may go past the end of the input" in msg
    assert "if (len < 8) return 0;" in msg
    assert check("ldxw %r0, [%r1+4]\nexit", hook=None, mem_size=8)
    assert "8 bytes at offset 4 of the 8-byte input buffer" in rejected(
        "ldxdw %r0, [%r1+4]\nexit", hook=None, mem_size=8)


def test_callx_is_rejected():
    assert "callx" in rejected("mov %r2, 5\ncall %r2\nexit")


def test_dangling_stack_pointer_from_a_function_is_rejected():
    msg = rejected("call local f\nmov %r0, 0\nexit\nf:\nmov %r0, %r10\nadd %r0, -8\nexit")
    assert "returns a pointer to its own stack" in msg


def test_every_error_has_the_design_shape():
    msg = rejected("mov %r0, %r3\nexit")
    pc, text, reason = msg.split(": ", 2)
    assert pc == "pc 0" and text == "mov %r0, %r3" and reason.startswith("r3 is read")


# ---------------------------------------------------------------- tricky safe programs
def test_bounded_loop_is_accepted():
    result = check("mov %r1, 0\nmov %r0, 0\nl:\nadd %r0, %r1\nadd %r1, 1\njlt %r1, 100, l\nexit")
    assert result.max_path_insns == 2 + 3 * 100 + 1


def test_nested_bounded_loops_are_accepted():
    text = """
        mov %r0, 0
        mov %r1, 0
    outer:
        mov %r2, 0
    inner:
        add %r0, 1
        add %r2, 1
        jlt %r2, 10, inner
        add %r1, 1
        jlt %r1, 10, outer
        exit
    """
    assert check(text).max_path_insns == 2 + 10 * (1 + 3 * 10 + 2) + 1


def test_checked_map_pointer_is_accepted():
    result = check(LOOKUP + "jeq %r0, 0, +2\nldxdw %r1, [%r0+16]\nstxdw [%r0], %r1\nmov %r0, 0\nexit")
    assert {7, 8} <= result.safe_access_pcs
    assert result.access_regions[7] == {"map_value"}


def test_null_check_on_a_copy_covers_the_original():
    assert check(LOOKUP + "mov %r6, %r0\njeq %r6, 0, +1\nldxdw %r0, [%r0]\nmov %r0, 0\nexit")


def test_map_value_pointer_arithmetic_with_a_bounded_index_is_accepted():
    text = LOOKUP + """
        jeq %r0, 0, out
        ldxdw %r3, [%r0]
        and %r3, 15
        add %r0, %r3
        ldxdw %r4, [%r0]
        ldxb %r4, [%r0+8]
    out:
        mov %r0, 0
        exit
    """
    assert check(text)
    assert "out-of-bounds access: 8 bytes at offset 9..24" in rejected(text.replace("[%r0+8]", "[%r0+9]")
                                                                        .replace("ldxb", "ldxdw"))


def test_variable_offset_stack_access_with_bounds_is_accepted():
    text = """
        stdw [%r10-16], 0
        stdw [%r10-8], 0
        ldxw %r3, [%r1+8]
        and %r3, 15
        mov %r4, %r10
        add %r4, -16
        add %r4, %r3
        ldxb %r0, [%r4]
        stb [%r4], 1
        exit
    """
    result = check(text)
    assert result.max_stack == 16
    assert "unbounded variable offset into the stack" in rejected(text.replace("and %r3, 15", "mov %r3, %r3"))
    assert "stack access out of bounds" in rejected(text.replace("and %r3, 15", "and %r3, 31"))


def test_input_length_checks_prove_accesses():
    assert check("mov %r0, 0\njlt %r2, 8, +1\nldxdw %r0, [%r1]\nexit", hook=None)
    assert check("mov %r0, 0\njle %r2, 7, +1\nldxdw %r0, [%r1]\nexit", hook=None)
    assert check("mov %r0, 0\njgt %r2, 3, +1\nexit\nldxw %r0, [%r1]\nexit", hook=None)
    assert "may go past the end" in rejected("mov %r0, 0\njlt %r2, 7, +1\nldxdw %r0, [%r1]\nexit", hook=None)


def test_pointer_against_end_pointer_proves_accesses():
    text = """
        mov %r0, 0
        mov %r3, %r1
        add %r3, %r2
        mov %r4, %r1
        add %r4, 14
        jgt %r4, %r3, out
        ldxh %r0, [%r1+12]
    out:
        exit
    """
    assert check(text, hook=None)
    assert "may go past the end" in rejected(text.replace("+12", "+13"), hook=None)


def test_loop_over_the_input_with_an_index_check_is_accepted():
    text = """
        mov %r0, 0
        jgt %r2, 64, out
        mov %r3, 0
    loop:
        jge %r3, %r2, out
        mov %r4, %r1
        add %r4, %r3
        ldxb %r5, [%r4]
        add %r0, %r5
        add %r3, 1
        ja loop
    out:
        exit
    """
    result = check(text, hook=None)
    assert result.max_path_insns <= 3 + 64 * 7 + 2
    vm = VM(Program.from_asm(text), budget=result.max_path_insns)
    assert vm.run(mem=bytes(range(64))) == sum(range(64))


def test_spilled_pointer_is_restored():
    assert check("stxdw [%r10-8], %r1\nldxdw %r3, [%r10-8]\nldxw %r0, [%r3+8]\nexit")
    msg = rejected("stxdw [%r10-8], %r1\nstb [%r10-8], 0\nldxdw %r3, [%r10-8]\nldxw %r0, [%r3+8]\nexit")
    # the bytes a partial write leaves of a saved pointer are unreadable (issue 24: no leak)
    assert "reads uninitialised stack at fp-7" in msg


def test_function_call_with_a_stack_pointer_argument():
    text = """
        mov %r1, %r10
        add %r1, -8
        call local fill
        ldxdw %r0, [%r10-8]
        exit
    fill:
        stdw [%r1], 42
        mov %r0, 0
        exit
    """
    result = check(text)
    assert result.max_stack == 8


def test_helper_fills_uninitialised_memory():
    assert check("mov %r1, %r10\nadd %r1, -16\nmov %r2, 16\ncall 0x1001\nldxdw %r0, [%r10-16]\nexit")


def test_many_diamonds_are_joined_and_verified_quickly():
    body = "".join("ldxb %%r3, [%%r1+%d]\njeq %%r3, 0, +2\nmov %%r4, %d\nja +1\nmov %%r4, %d\n" % (
        i % 24, i, i + 1) for i in range(40))
    result = check(body + "mov %r0, 0\nexit", hook=None, mem_size=24)
    assert result.states_explored < 2000
    assert result.max_path_insns == 40 * 4 + 2


def test_jmp32_refinement_bounds_an_index():
    assert check("ldxw %r3, [%r1+8]\njgt32 %r3, 7, +3\nmov %r4, %r10\nadd %r4, -8\nadd %r4, %r3\n"
                 "stdw [%r10-16], 0\nmov %r0, 0\nexit")


def test_sign_extending_loads_and_moves_are_tracked():
    assert check("ldxw %r3, [%r1+8]\nmovsx864 %r3, %r3\njsgt %r3, 0, +2\njslt %r3, -8, +1\n"
                 "stb [%r10-1], 0\nmov %r0, 0\nexit")


# ---------------------------------------------------------------- the proof exported
def test_result_reports_counts_and_safe_accesses():
    result = check("stdw [%r10-8], 1\nldxdw %r0, [%r10-8]\nldxw %r1, [%r1+8]\nexit")
    assert result.insn_count == 4
    assert result.max_stack == 8
    assert result.safe_access_pcs == frozenset({0, 1, 2})
    assert result.access_regions == {0: {"stack"}, 1: {"stack"}, 2: {"ctx"}}
    assert result.max_path_insns == 4
    assert result.summary().startswith("ok: 4 instructions")
    assert result.to_dict()["safe_access_pcs"] == [0, 1, 2]


def test_worst_case_bound_covers_a_real_run():
    text = LOOKUP + """
        jeq %r0, 0, out
        mov %r6, 0
    l:
        ldxdw %r1, [%r0+8]
        add %r1, %r6
        stxdw [%r0+8], %r1
        add %r6, 1
        jlt %r6, 20, l
    out:
        mov %r0, 0
        exit
    """
    spec = MapSpec("counters", BPF_MAP_TYPE_ARRAY, 4, 24, 4)
    the_map = maps_module.create_map(spec)
    p = Program.from_asm(text)
    p.maps = [the_map]
    from iotbpf.ebpf.helpers import linux_helpers

    helpers = linux_helpers()
    result = verify(p, helpers=helpers, hook=TIMER)
    vm = VM(p, helpers=helpers, budget=result.max_path_insns)
    vm.run(ctx=bytearray(24))
    assert vm.last.insns_executed <= result.max_path_insns
    assert vm.last.insns_executed == result.max_path_insns  # the loop path is the longest


RINGBUF_PROGRAM = """
    lddw %r1, map_fd 0
    mov %r2, 16
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    mov %r6, %r0
    stdw [%r6+8], 7
    mov %r1, %r6
    mov %r2, 0
    call 132
out:
    mov %r0, 0
    exit
"""


def _ringbuf(text):
    from iotbpf.ebpf.helpers import linux_helpers
    from iotbpf.ebpf.types import BPF_MAP_TYPE_RINGBUF

    p = Program.from_asm(text)
    p.maps = [MapSpec("events", BPF_MAP_TYPE_RINGBUF, 0, 0, 4096)]
    return verify(p, helpers=linux_helpers(), hook=TIMER)


def test_ring_buffer_record_reserved_checked_and_submitted_is_accepted():
    assert _ringbuf(RINGBUF_PROGRAM)


def test_ring_buffer_record_used_after_submit_is_rejected():
    with pytest.raises(VerifierError, match="r6 is a number") as info:
        _ringbuf(RINGBUF_PROGRAM.replace("call 132\n", "call 132\nstdw [%r6], 1\n"))
    assert "not a pointer" in str(info.value)


def test_ring_buffer_record_out_of_bounds_or_unchecked_is_rejected():
    with pytest.raises(VerifierError, match="out-of-bounds access: 8 bytes at offset 16 of the 16-byte record"):
        _ringbuf(RINGBUF_PROGRAM.replace("[%r6+8]", "[%r6+16]"))
    with pytest.raises(VerifierError, match="may be NULL \\(ring buffer reservation not checked\\)"):
        _ringbuf(RINGBUF_PROGRAM.replace("jeq %r0, 0, out\n", ""))


def test_ring_buffer_record_never_submitted_is_rejected():
    with pytest.raises(VerifierError, match="the ring buffer record reserved at pc 4 is never submitted"):
        _ringbuf(RINGBUF_PROGRAM.replace("call 132\n", "mov %r0, 0\n"))


LOOP_PROGRAM = """
    stdw [%r10-8], 0
    ldxw %r1, [%r1+16]
    and %r1, 15
    lddw %r2, func cb
    mov %r3, %r10
    add %r3, -8
    mov %r4, 0
    call 181
    ldxdw %r0, [%r10-8]
    exit
cb:
    ldxdw %r3, [%r2]
    add %r3, %r1
    stxdw [%r2], %r3
    mov %r0, 0
    exit
"""


def _loop(text, **kw):
    from iotbpf.ebpf.helpers import linux_helpers

    return verify(Program.from_asm(text), helpers=linux_helpers(), hook=TIMER, **kw)


def test_bpf_loop_callback_is_verified_for_every_iteration():
    from iotbpf.ebpf.helpers import linux_helpers

    result = _loop(LOOP_PROGRAM)
    assert result.max_stack == 8
    p = Program.from_asm(LOOP_PROGRAM)
    vm = VM(p, helpers=linux_helpers(), budget=result.max_path_insns)
    ctx = bytearray(24)
    ctx[16] = 15
    assert vm.run(ctx=ctx) == sum(range(15))
    assert vm.last.insns_executed <= result.max_path_insns


def test_bpf_loop_with_an_unbounded_count_is_rejected():
    with pytest.raises(VerifierError, match="bpf_loop may call its callback up to 8388608 times"):
        _loop(LOOP_PROGRAM.replace("and %r1, 15", "mov %r1, %r1"))
    with pytest.raises(VerifierError, match="more than 50 instructions"):
        _loop(LOOP_PROGRAM, budget=50)


def test_bpf_loop_callback_must_be_safe_and_return_a_number():
    with pytest.raises(VerifierError, match="stack access out of bounds"):
        _loop(LOOP_PROGRAM.replace("ldxdw %r3, [%r2]", "ldxdw %r3, [%r2+8]"))
    with pytest.raises(VerifierError, match="callback must return a number"):
        _loop(LOOP_PROGRAM.replace("mov %r0, 0\n    exit\n", "mov %r0, %r2\n    exit\n", 1)
              .replace("stxdw [%r2], %r3\n    mov %r0, 0", "stxdw [%r2], %r3\n    mov %r0, %r2"))
    with pytest.raises(VerifierError, match="expected a function"):
        _loop(LOOP_PROGRAM.replace("lddw %r2, func cb", "lddw %r5, func cb\n    mov %r2, 7"))


def test_helper_writing_over_a_saved_pointer_destroys_it():
    text = """
        stxdw [%r10-8], %r1
        stdw [%r10-16], 0
        ldxw %r3, [%r1+16]
        and %r3, 8
        mov %r1, %r10
        add %r1, -16
        add %r1, %r3
        mov %r2, 8
        call 0x1001
        ldxdw %r3, [%r10-8]
        ldxw %r0, [%r3+16]
        exit
    """
    msg = rejected(text)
    # what may be left of the saved pointer is unreadable, not a number (issue 24: no leak)
    assert "reads uninitialised stack at fp-8" in msg
    assert check(text.replace("and %r3, 8", "and %r3, 0"))


def test_linked_copies_share_what_a_comparison_proves():
    # off + 2 <= len, checked on a copy, proves buf[off] and buf[off + 1] (a TLV parser's loop).
    text = """
        mov %r0, 0
        ldxdw %r4, [%r1]
        and %r4, 255
        mov %r5, %r4
        add %r5, 2
        jgt %r5, %r2, out
        mov %r3, %r1
        add %r3, %r4
        ldxb %r0, [%r3+1]
    out:
        exit
    """
    assert "may go past the end" in rejected(text, hook=None)  # the first load is unchecked
    text = text.replace("ldxdw %r4, [%r1]\n", "ldxdw %r4, [%r10-8]\n").replace(
        "mov %r0, 0\n", "mov %r0, 0\nstdw [%r10-8], 0\n", 1)
    assert check(text, hook=None)
    assert "may go past the end" in rejected(text.replace("[%r3+1]", "[%r3+2]"), hook=None)
    copy = text.replace("add %r5, 2\n", "").replace("jgt %r5, %r2, out", "jge %r5, %r2, out")
    assert check(copy.replace("[%r3+1]", "[%r3]"), hook=None)
