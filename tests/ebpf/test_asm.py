"""asm.py: the bpf_conformance text syntax, labels, and clear errors with line numbers."""

import pytest

from iotbpf.ebpf import isa
from iotbpf.ebpf.errors import AsmError
from iotbpf.ebpf.isa import Instruction
from iotbpf.ebpf.isa.asm import assemble, assemble_bytes, assemble_with_info


def one(text):
    insns = assemble(text)
    assert len(insns) == 1
    return insns[0]


def test_alu_register_and_immediate_forms():
    assert one("mov %r0, 1") == Instruction(0xB7, 0, 0, 0, 1)
    assert one("add32 %r1, %r2") == Instruction(0x0C, 1, 2, 0, 0)
    assert one("mov32 %r0, 0xffffffff") == Instruction(0xB4, 0, 0, 0, -1)
    assert one("sdiv32 %r1, -3") == Instruction(0x34, 1, 0, 1, -3)
    assert one("smod %r1, %r2") == Instruction(0x9F, 1, 2, 1, 0)
    assert one("neg32 %r4") == Instruction(0x84, 4)
    assert one("movsx832 %r1, %r2") == Instruction(0xBC, 1, 2, 8, 0)
    assert one("movsx3264 %r1, %r2") == Instruction(0xBF, 1, 2, 32, 0)
    assert one("add64 %r1, 1") == one("add %r1, 1")


def test_byte_swaps_and_aliases():
    assert one("be32 %r0") == Instruction(0xDC, 0, 0, 0, 32)
    assert one("le16 %r3") == Instruction(0xD4, 3, 0, 0, 16)
    assert one("swap64 %r1") == one("bswap64 %r1") == Instruction(0xD7, 1, 0, 0, 64)


def test_memory_operands_and_atomics():
    assert one("ldxdw %r0, [%r1]") == Instruction(0x79, 0, 1, 0, 0)
    assert one("ldxh %r0, [%r1+6]") == Instruction(0x69, 0, 1, 6, 0)
    assert one("stxdw [%r10-8], %r0") == Instruction(0x7B, 10, 0, -8, 0)
    assert one("stw [%r10-4], 0x80000001") == Instruction(0x62, 10, 0, -4, -0x7FFFFFFF)
    assert one("ldxsw %r0, [%r1+0x10]") == Instruction(0x81, 0, 1, 16, 0)
    assert one("lock xchg32 [%r10-8], %r1") == Instruction(0xC3, 10, 1, -8, 0xE1)
    assert one("lock fetch or [%r2], %r3") == Instruction(0xDB, 2, 3, 0, 0x41)


def test_lddw_occupies_two_slots_and_jumps_count_them():
    insns = assemble("lddw %r0, 0x1122334455667788\nja out\nmov %r0, 1\nout:\nexit")
    assert insns[0].imm == 0x1122334455667788 and insns[1].is_lddw_tail()
    assert insns[2] == Instruction(0x05, 0, 0, 1, 0)


def test_lddw_pseudo_sources():
    assert assemble("lddw %r1, map_fd 2\nexit")[0] == Instruction(0x18, 1, 1, 0, 2)
    insn = assemble("lddw %r1, map_value 1, 16\nexit")[0]
    assert (insn.src, insn.imm) == (isa.BPF_PSEUDO_MAP_VALUE, 1 | (16 << 32))
    insns = assemble("lddw %r2, func f\nexit\nf:\nexit")
    assert (insns[0].src, insns[0].imm) == (isa.BPF_PSEUDO_FUNC, 2)  # Linux: target = pc + 1 + imm


def test_labels_offsets_and_the_implicit_exit_label():
    insns = assemble("jne %r1, 0, exit\nmov %r0, 1\nexit")
    assert insns[0].off == 1
    insns = assemble("top:\nadd %r0, 1\njlt %r0, 10, top\nja -3\nja +0\nexit")
    assert [i.off for i in insns[1:4]] == [-2, -3, 0]
    insns = assemble("ja32 far\nexit\nfar: exit")
    assert insns[0].imm == 1


def test_calls():
    assert one("call 5") == Instruction(0x85, 0, 0, 0, 5)
    assert one("call %r2") == Instruction(0x8D, 2, 0, 0, 0)
    insns = assemble("call local f\nexit\nf:\nexit")
    assert insns[0] == Instruction(0x85, 0, 1, 0, 1)


def test_raw_slot_directive_and_comments():
    assert assemble_bytes(".slot 0x0000000000000095  # exit\n") == bytes([0x95]) + bytes(7)


def test_line_info_and_labels_are_reported():
    insns, labels, lines = assemble_with_info("# header\nmov %r0, 0\nl:\nlddw %r1, 5\nexit\n")
    assert labels["l"] == 1
    assert lines[1] == (4, "lddw %r1, 5") and lines[3][0] == 5


@pytest.mark.parametrize("text, words", [
    ("mov %r0, 1\nfrob %r0, 1\n", ["line 2", "unknown mnemonic", "frob"]),
    ("mov %r11, 1", ["line 1", "no such register"]),
    ("mov r0 1", ["line 1", "operand"]),
    ("mov %rx, 1", ["expected a register"]),
    ("ja nowhere\nexit", ["line 1", "undefined label", "nowhere"]),
    ("mov %r0, 0xzz", ["expected a number"]),
    ("mov %r0, 0x100000000", ["does not fit in 32 bits"]),
    ("ldxw %r0, [%r1+40000]", ["16 bits"]),
    ("ldxw %r0, %r1", ["memory operand"]),
    ("exit %r0", ["no operands"]),
    ("a:\na:\nexit", ["line 2", "defined twice"]),
    ("lock nand [%r1], %r2", ["unknown atomic"]),
    (".slot 0x123456789abcdef01", ["64-bit slot"]),
    ("lddw %r0", ["lddw takes"]),
])
def test_bad_input_gives_asm_errors_with_line_numbers(text, words):
    with pytest.raises(AsmError) as info:
        assemble(text)
    for word in words:
        assert word in str(info.value)
