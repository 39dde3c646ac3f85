"""RFC 9669: fields an instruction does not use must be zero. Every engine faults on such an
instruction (as the kernel's verifier refuses it), and the conformance runner reads raw sections
written as eight bytes per line, the form bpf_conformance's negative tests use."""

import pytest

from iotbpf.ebpf import conformance, isa
from iotbpf.ebpf.engines.vm import VM, BPFFault
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.isa.asm import assemble
from iotbpf.ebpf.loader.data import parse_data
from iotbpf.ebpf.program import Program
from iotbpf.ebpf.verifier import verify

_FIELDS = ("dst", "src", "off", "imm")


def _canonical(opcode):
    """A canonical instruction with this opcode (registers r0/r1, a legal swap width), or None."""
    kind = isa.op_kind(opcode)
    if kind in (None, "lddw", "atomic", "call", "callx", "exit", "ja", "ja32", "ldabs", "ldind"):
        return None
    insn = isa.Instruction(opcode, 0, 1 if opcode & isa.BPF_X or kind in ("ldx", "ldxs", "stx") else 0, 0,
                           16 if kind == "end" else 0)
    return insn if isa.is_canonical(insn) else None


def _cases():
    cases = []
    for opcode in sorted(isa.OPCODES):
        kind = isa.op_kind(opcode)
        base = {"exit": isa.Instruction(opcode), "ja": isa.Instruction(opcode),
                "call": isa.Instruction(opcode, imm=1)}.get(kind) or _canonical(opcode)
        if base is None:
            continue
        for field in _FIELDS:
            values = dict(zip(_FIELDS, (base.dst, base.src, base.off, base.imm)))
            values[field] = 3 if field != "imm" else 7
            bad = isa.Instruction(opcode, **values)
            if not isa.is_canonical(bad) and isa.reserved_field_error(bad) is not None:
                cases.append(pytest.param(bad, field, id="%s-%s" % (isa.format_insn(base).split()[0], field)))
    return cases


CASES = _cases()


def test_the_cases_cover_every_class():
    kinds = {isa.op_kind(c.values[0].opcode) for c in CASES}
    assert {"alu", "end", "ldx", "st", "stx", "jcond", "ja", "call", "exit"} <= kinds
    assert len(CASES) > 150


@pytest.mark.parametrize("engine", ["interp", "compiled", "compact"])
@pytest.mark.parametrize("insn, field", CASES)
def test_a_set_reserved_field_faults_in_every_engine(insn, field, engine):
    prog = Program([insn, isa.Instruction(isa.EXIT)] if insn.opcode != isa.EXIT else [insn])
    with pytest.raises(BPFFault) as info:
        VM(prog, engine=engine).run(mem=bytes(64))
    assert "reserved field %s" % field in str(info.value)


@pytest.mark.parametrize("insn, field", CASES[::7])
def test_the_verifier_refuses_a_set_reserved_field(insn, field):
    prog = Program([isa.Instruction(0xB7, 0), insn, isa.Instruction(isa.EXIT)])
    with pytest.raises(Exception, match="reserved fields"):
        verify(prog)


def test_fields_with_a_meaning_keep_their_own_messages():
    movsx = isa.Instruction(0xBF, 0, 1, 4, 0)  # movsx with a size that does not exist
    assert isa.reserved_field_error(movsx) is None
    for engine in ("interp", "compiled"):
        with pytest.raises(BPFFault, match="movsx"):
            VM(Program([movsx, isa.Instruction(isa.EXIT)]), engine=engine).run(mem=bytes(8))
    assert isa.operand_error(isa.Instruction(0x3F, 0, 1, 1, 0)) is None  # sdiv


def test_raw_lines_of_eight_bytes_are_one_instruction_each():
    text = "-- raw\nb7 00 00 00 2a 00 00 00\n95 00 00 00 00 00 00 00\n-- result\n42\n"
    case = parse_data(text, "bytes.data")
    assert case.raw == bytes.fromhex("b70000002a000000" "9500000000000000")
    assert conformance.run_case(case).passed


def test_a_negative_raw_test_with_an_empty_error_passes_when_the_program_faults():
    text = "# mov with a set offset\n-- raw\nb7 00 01 00 01 00 00 00\n95 00 00 00 00 00 00 00\n-- error\n"
    case = parse_data(text, "unused.data")
    for engine in ("interp", "compiled"):
        assert conformance.run_case(case, engine).passed


def test_decimal_immediates_are_signed_and_hex_spells_the_bits():
    assert assemble("mov32 %r0, 0xffffffff\nexit")[0].imm == -1
    assert assemble("mov32 %r0, -2147483648\nexit")[0].imm == -2147483648
    with pytest.raises(LoadError, match="does not fit in 32 bits"):
        assemble("mov32 %r0, 2147483648\nexit")
    with pytest.raises(LoadError, match="does not fit in 32 bits"):
        assemble("mov32 %r0, 0x100000000\nexit")
