"""disasm.py: readable text that assembles back to exactly the same bytes."""

import struct

from hypothesis import given
from hypothesis import strategies as st

from iotbpf.ebpf import isa
from iotbpf.ebpf.isa.asm import assemble_bytes
from iotbpf.ebpf.isa.disasm import disassemble
from iotbpf.ebpf.loader.data import load_case


def test_every_conformance_program_round_trips_byte_for_byte(conformance_dir):
    files = sorted(conformance_dir.glob("*.data"))
    assert len(files) == 313
    for path in files:
        data = load_case(str(path)).program().to_bytes()
        insns = isa.decode(data)
        for labels in (True, False):
            assert assemble_bytes(disassemble(insns, labels=labels)) == data, path.name


def test_jump_targets_become_labels():
    data = assemble_bytes("mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 5, loop\ncall local f\nexit\nf:\nexit")
    text = disassemble(isa.decode(data))
    assert text == ("mov %r0, 0\nL1:\nadd %r0, 1\njlt %r0, 5, L1\ncall local L5\nexit\nL5:\nexit\n")


def test_pcs_option_adds_comments_that_still_assemble():
    data = assemble_bytes("lddw %r0, 7\nexit")
    text = disassemble(isa.decode(data), pcs=True)
    assert "# 2" in text
    assert assemble_bytes(text) == data


def test_unknown_and_non_canonical_slots_print_as_raw_slots():
    data = struct.pack("<QQ", 0x00000000000000FF, 0x0000000000010095)  # bad opcode; exit with off=1
    text = disassemble(isa.decode(data))
    assert text == ".slot 0x00000000000000ff\n.slot 0x0000000000010095\n"
    assert assemble_bytes(text) == data


@given(st.lists(st.integers(0, (1 << 64) - 1), min_size=1, max_size=10))
def test_any_decodable_bytes_round_trip(values):
    data = b"".join(struct.pack("<Q", v) for v in values)
    try:
        insns = isa.decode(data)
    except isa.DecodeError:
        return
    assert assemble_bytes(disassemble(insns)) == data


@given(st.lists(st.sampled_from(sorted(isa.OPCODES)), min_size=1, max_size=10),
       st.integers(0, 10), st.integers(0, 10), st.integers(-3, 3), st.integers(-(1 << 31), (1 << 31) - 1))
def test_valid_opcodes_with_random_fields_round_trip(opcodes, dst, src, off, imm):
    data = b"".join(struct.pack("<BBhi", op, (src << 4) | dst, off, imm) for op in opcodes)
    data += struct.pack("<BBhi", 0, 0, 0, imm)  # a tail slot, in case the last one is lddw
    insns = isa.decode(data)
    assert assemble_bytes(disassemble(insns)) == data
