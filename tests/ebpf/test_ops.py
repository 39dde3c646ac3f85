"""isa/ops.py: each operation's function, compiler template and the verifier's concrete transfer agree."""

import itertools

import pytest

from iotbpf.ebpf import isa, verifier
from iotbpf.ebpf.engines.compiler import analysis as compiler_analysis
from iotbpf.ebpf.isa import ops

M64 = (1 << 64) - 1
EDGES = [0, 1, 2, 3, 7, 31, 32, 63, 64, 65, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF,
         0x80000000, 0xFFFFFFFF, 0x100000000, 0x123456789ABCDEF0, 0x7FFFFFFFFFFFFFFF,
         0x8000000000000000, 0xFFFFFFFFFFFFFFFE, M64]
NAMESPACE = {}
for bits in (64, 32):
    NAMESPACE["SD%d" % bits] = ops.SIGNED[isa.BPF_DIV][1 if bits == 64 else 3]
    NAMESPACE["SM%d" % bits] = ops.SIGNED[isa.BPF_MOD][1 if bits == 64 else 3]


def _forms():
    for code in ops.ALU:
        for is64 in (True, False):
            offs = [0]
            if code in ops.SIGNED:
                offs.append(1)
            if code == isa.BPF_MOV:
                offs.extend((8, 16, 32) if is64 else (8, 16))
            for off in offs:
                yield code, is64, off


@pytest.mark.parametrize("code,is64,off", list(_forms()))
def test_template_computes_the_function(code, is64, off):
    f = ops.alu_func(code, is64, off)
    for register in (True, False):
        if off > 1 and not register:
            continue
        template = ops.alu_template(code, is64, off, register)
        for a, b in itertools.product(EDGES, EDGES):
            k = None if register else b & (M64 if is64 else 0xFFFFFFFF)
            if k == 0 and code in (isa.BPF_DIV, isa.BPF_MOD) and off != 1:
                continue  # the compiler folds a zero divisor itself
            s = "b" if register else str(k)
            text = template.format(**compiler_analysis.template_fields(is64, s, register, k, off, "a"))
            got = eval(text, dict(NAMESPACE, a=a, b=b))
            want = f(a, b if register else k)
            assert got == want, (text, a, b)


@pytest.mark.parametrize("code,is64,off", list(_forms()))
def test_verifier_constant_folding_is_the_interpreter(code, is64, off):
    f = ops.alu_func(code, is64, off)
    bits = 64 if is64 else 32
    for a, b in itertools.product(EDGES, EDGES):
        assert verifier.alu_concrete(code, bits, off, a, b) == f(a, b) & ((1 << bits) - 1)


def test_signed_division_truncates_toward_zero():
    sdiv64 = ops.alu_func(isa.BPF_DIV, True, 1)
    smod64 = ops.alu_func(isa.BPF_MOD, True, 1)
    assert sdiv64((-7) & M64, 2) == (-3) & M64
    assert smod64((-7) & M64, 2) == (-1) & M64
    assert sdiv64(5, 0) == 0 and smod64(5, 0) == 5


def test_unknown_alu_code_has_no_function():
    assert ops.alu_func(0xE0, True) is None
    assert verifier.alu_concrete(0xE0, 64, 0, 3, 4) == 0


def test_every_condition_has_a_relation_and_both_widths():
    for code, row in ops.COND.items():
        assert ops.COND64[code] is row[1] and code in ops.COND32 and ops.RELATION[code]
    assert ops.COND32[isa.BPF_JSLT](0x80000000, 0) and not ops.COND64[isa.BPF_JSLT](0x80000000, 0)


@pytest.mark.parametrize("opcode", [isa.BPF_ALU | isa.BPF_END | isa.BPF_TO_LE,
                                    isa.BPF_ALU | isa.BPF_END | isa.BPF_TO_BE,
                                    isa.BPF_ALU64 | isa.BPF_END | isa.BPF_TO_LE])
def test_verifier_folds_byte_swaps_like_the_interpreter(opcode):
    swaps = opcode & isa.BPF_TO_BE or opcode & 0x07 == isa.BPF_ALU64
    for width in (16, 32, 64):
        f = (ops.SWAP_FUNCS if swaps else ops.LE_FUNCS)[width]
        for v in EDGES:
            insn = isa.Instruction(opcode, 1, 0, 0, width)
            assert verifier.end_bounds(insn, verifier.const_bounds(v)) == verifier.const_bounds(f(v, 0))
    assert ops.SWAP_FUNCS[16](0x1234, 0) == 0x3412 and ops.LE_FUNCS[16](0x51234, 0) == 0x1234
