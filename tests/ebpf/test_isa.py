"""isa/encoding.py: the opcode tables, slot encoding and the text every error message uses."""

import struct

from hypothesis import given
from hypothesis import strategies as st

from iotbpf.ebpf import isa
from iotbpf.ebpf.isa import Instruction


def slots(*values):
    return b"".join(struct.pack("<Q", v) for v in values)


def test_linux_constant_values():
    assert (isa.BPF_LD, isa.BPF_LDX, isa.BPF_ST, isa.BPF_STX) == (0, 1, 2, 3)
    assert (isa.BPF_ALU, isa.BPF_JMP, isa.BPF_JMP32, isa.BPF_ALU64) == (4, 5, 6, 7)
    assert (isa.BPF_W, isa.BPF_H, isa.BPF_B, isa.BPF_DW) == (0x00, 0x08, 0x10, 0x18)
    assert (isa.BPF_MEM, isa.BPF_MEMSX, isa.BPF_ATOMIC) == (0x60, 0x80, 0xC0)
    assert (isa.BPF_XCHG, isa.BPF_CMPXCHG) == (0xE1, 0xF1)
    assert (isa.BPF_PSEUDO_MAP_FD, isa.BPF_PSEUDO_MAP_VALUE, isa.BPF_PSEUDO_FUNC,
            isa.BPF_PSEUDO_MAP_IDX, isa.BPF_PSEUDO_MAP_IDX_VALUE) == (1, 2, 4, 5, 6)
    assert (isa.LDDW, isa.CALL, isa.CALLX, isa.EXIT, isa.JA32) == (0x18, 0x85, 0x8D, 0x95, 0x06)


def test_opcode_table_covers_every_rfc9669_group():
    kinds = {}
    for opcode, (kind, _name) in isa.OPCODES.items():
        kinds.setdefault(kind, []).append(opcode)
    # 13 ALU ops x K/X x 32/64, minus neg with X (2), plus le/be and bswap
    assert len(kinds["alu"]) == 13 * 2 * 2 - 2
    assert sorted(kinds["end"]) == [0xD4, 0xD7, 0xDC]
    assert len(kinds["jcond"]) == 11 * 2 * 2
    assert len(kinds["ldx"]) == 4 and len(kinds["ldxs"]) == 3
    assert len(kinds["st"]) == 4 and len(kinds["stx"]) == 4
    assert sorted(kinds["atomic"]) == [0xC3, 0xDB]
    assert len(kinds["ldabs"]) == 4 and len(kinds["ldind"]) == 4


def test_decode_merges_lddw_into_one_instruction_with_a_tail_slot():
    insns = isa.decode(slots(0x5566778800000018, 0x1122334400000000, 0x95))
    assert len(insns) == 3
    assert insns[0].opcode == isa.LDDW and insns[0].imm == 0x1122334455667788
    assert insns[1].is_lddw_tail()
    assert insns[2] == Instruction(isa.EXIT)


def test_decode_rejects_partial_slots_and_a_lddw_without_its_second_slot():
    for data in (b"\x95" * 7, slots(0x18)):
        try:
            isa.decode(data)
        except isa.DecodeError:
            continue
        raise AssertionError("decoded %r" % data)


@given(st.lists(st.integers(0, (1 << 64) - 1), max_size=12))
def test_encode_inverts_decode_for_any_slots(values):
    data = slots(*values)
    try:
        insns = isa.decode(data)
    except isa.DecodeError:
        return
    assert isa.encode(insns) == data


def test_fields_are_signed_where_the_rfc_says():
    insn = isa.decode(slots(0xFFFFFFFFFFFF0055 | 0x1000))[0]
    assert insn.off == -1 and insn.imm == -1
    assert insn.dst == 0 and insn.src == 1


def test_format_insn_uses_the_conformance_syntax():
    cases = [
        (Instruction(0xB7, 0, 0, 0, 1), "mov %r0, 1"),
        (Instruction(0xBC, 1, 2), "mov32 %r1, %r2"),
        (Instruction(0x3F, 1, 2, 1), "sdiv %r1, %r2"),
        (Instruction(0xBF, 1, 2, 16), "movsx1664 %r1, %r2"),
        (Instruction(0x87, 3), "neg %r3"),
        (Instruction(0xDC, 0, 0, 0, 16), "be16 %r0"),
        (Instruction(0xD7, 0, 0, 0, 64), "bswap64 %r0"),
        (Instruction(0x61, 0, 1, 4), "ldxw %r0, [%r1+4]"),
        (Instruction(0x91, 0, 1, -2), "ldxsb %r0, [%r1-2]"),
        (Instruction(0x62, 10, 0, -4, 7), "stw [%r10-4], 7"),
        (Instruction(0x7B, 10, 0, -8), "stxdw [%r10-8], %r0"),
        (Instruction(0xDB, 10, 1, -8, 0x01), "lock fetch add [%r10-8], %r1"),
        (Instruction(0xC3, 10, 1, 0, 0xF1), "lock cmpxchg32 [%r10], %r1"),
        (Instruction(0x15, 1, 0, 3, 5), "jeq %r1, 5, +3"),
        (Instruction(0x6E, 1, 2, -2), "jsgt32 %r1, %r2, -2"),
        (Instruction(0x06, 0, 0, 0, 9), "ja32 +9"),
        (Instruction(0x85, 0, 0, 0, 5), "call 5"),
        (Instruction(0x85, 0, 1, 0, 4), "call local +4"),
        (Instruction(0x8D, 2), "call %r2"),
        (Instruction(0x30, 0, 0, 0, 12), "ldabsb 12"),
        (Instruction(0x48, 0, 3, 0, 2), "ldindh %r3, 2"),
        (Instruction(0x95), "exit"),
        (Instruction(0xFF), ".slot 0x00000000000000ff"),
    ]
    for insn, text in cases:
        assert isa.format_insn(insn) == text
    assert isa.format_insn(Instruction(0x05, 0, 0, 2), pc=3, labels={6: "out"}) == "ja out"
    assert isa.format_insn(isa.lddw(1, 3, isa.BPF_PSEUDO_MAP_FD)[0]) == "lddw %r1, map_fd 3"


def test_basic_blocks_split_at_jumps_targets_calls_and_exits():
    insns = [
        Instruction(0xB7, 0, 0, 0, 0),  # 0
        *isa.lddw(1, 5),  # 1, 2
        Instruction(0x15, 1, 0, 1, 0),  # 3: jeq -> 5
        Instruction(0x85, 0, 0, 0, 7),  # 4: call 7
        Instruction(0x07, 0, 0, 0, 1),  # 5
        Instruction(0x95),  # 6
    ]
    assert isa.block_leaders(insns) == [0, 4, 5]
    # a lddw counts once; a block ends at a call
    assert isa.basic_blocks(insns) == [(0, 4, 3), (4, 5, 1), (5, 7, 2)]


def test_operand_error_names_the_bad_register():
    assert "r11" in isa.operand_error(Instruction(0xB7, 11))
    assert "read-only" in isa.operand_error(Instruction(0xB7, 10))
    assert isa.operand_error(Instruction(0x7B, 10, 1, -8)) is None


def test_a_lddw_tail_that_is_a_jump_target_splits_the_block_after_the_lddw():
    insns = [Instruction(0x15, 1, 0, 1, 0), *isa.lddw(0, 5), Instruction(0x95)]
    assert isa.block_leaders(insns) == [0, 1, 2, 3]
