"""The closures the interpreter is built of: one unrolled closure per basic block (``make_block``)
and fast paths for the hottest ALU and jump instructions."""

from iotbpf.ebpf import isa
from iotbpf.ebpf.isa import M32, M64


def make_block(ops, term, end):
    """One closure running ``ops`` then ``term`` (or falling through to ``end``); unrolled."""
    n = len(ops)
    if term is None:
        if n == 1:
            a = ops[0]

            def b1():
                a()
                return end
            return b1
        if n == 2:
            a, b = ops

            def b2():
                a()
                b()
                return end
            return b2
        if n == 3:
            a, b, c = ops

            def b3():
                a()
                b()
                c()
                return end
            return b3
        if n == 4:
            a, b, c, d = ops

            def b4():
                a()
                b()
                c()
                d()
                return end
            return b4
        ops = tuple(ops)

        def bn():
            for o in ops:
                o()
            return end
        return bn
    if n == 0:
        return term
    if n == 1:
        a = ops[0]

        def t1():
            a()
            return term()
        return t1
    if n == 2:
        a, b = ops

        def t2():
            a()
            b()
            return term()
        return t2
    if n == 3:
        a, b, c = ops

        def t3():
            a()
            b()
            c()
            return term()
        return t3
    if n == 4:
        a, b, c, d = ops

        def t4():
            a()
            b()
            c()
            d()
            return term()
        return t4
    ops = tuple(ops)

    def tn():
        for o in ops:
            o()
        return term()
    return tn


# ---------------------------------------------------------------- fast paths for hot ops
def _k_add(r, d, b):
    def op():
        r[d] = (r[d] + b) & M64
    return op


def _k_sub(r, d, b):
    def op():
        r[d] = (r[d] - b) & M64
    return op


def _k_mul(r, d, b):
    def op():
        r[d] = (r[d] * b) & M64
    return op


def _k_mov(r, d, b):
    def op():
        r[d] = b
    return op


def _k_and(r, d, b):
    def op():
        r[d] &= b
    return op


def _k_or(r, d, b):
    def op():
        r[d] |= b
    return op


def _k_xor(r, d, b):
    def op():
        r[d] ^= b
    return op


def _k_lsh(r, d, b):
    b &= 63

    def op():
        r[d] = (r[d] << b) & M64
    return op


def _k_rsh(r, d, b):
    b &= 63

    def op():
        r[d] >>= b
    return op


def _k_add32(r, d, b):
    def op():
        r[d] = (r[d] + b) & M32
    return op


def _k_mov32(r, d, b):
    b &= M32

    def op():
        r[d] = b
    return op


def _x_add(r, d, s):
    def op():
        r[d] = (r[d] + r[s]) & M64
    return op


def _x_sub(r, d, s):
    def op():
        r[d] = (r[d] - r[s]) & M64
    return op


def _x_mul(r, d, s):
    def op():
        r[d] = (r[d] * r[s]) & M64
    return op


def _x_mov(r, d, s):
    def op():
        r[d] = r[s]
    return op


def _x_and(r, d, s):
    def op():
        r[d] &= r[s]
    return op


def _x_or(r, d, s):
    def op():
        r[d] |= r[s]
    return op


def _x_xor(r, d, s):
    def op():
        r[d] ^= r[s]
    return op


def _x_add32(r, d, s):
    def op():
        r[d] = (r[d] + r[s]) & M32
    return op


def _x_mov32(r, d, s):
    def op():
        r[d] = r[s] & M32
    return op


_A64, _A32 = isa.BPF_ALU64, isa.BPF_ALU
FAST_K = {
    _A64 | isa.BPF_ADD: _k_add, _A64 | isa.BPF_SUB: _k_sub, _A64 | isa.BPF_MUL: _k_mul,
    _A64 | isa.BPF_MOV: _k_mov, _A64 | isa.BPF_AND: _k_and, _A64 | isa.BPF_OR: _k_or,
    _A64 | isa.BPF_XOR: _k_xor, _A64 | isa.BPF_LSH: _k_lsh, _A64 | isa.BPF_RSH: _k_rsh,
    _A32 | isa.BPF_ADD: _k_add32, _A32 | isa.BPF_MOV: _k_mov32,
}
FAST_X = {
    _A64 | isa.BPF_X | isa.BPF_ADD: _x_add, _A64 | isa.BPF_X | isa.BPF_SUB: _x_sub,
    _A64 | isa.BPF_X | isa.BPF_MUL: _x_mul, _A64 | isa.BPF_X | isa.BPF_MOV: _x_mov,
    _A64 | isa.BPF_X | isa.BPF_AND: _x_and, _A64 | isa.BPF_X | isa.BPF_OR: _x_or,
    _A64 | isa.BPF_X | isa.BPF_XOR: _x_xor, _A32 | isa.BPF_X | isa.BPF_ADD: _x_add32,
    _A32 | isa.BPF_X | isa.BPF_MOV: _x_mov32,
}


def _jk_eq(r, d, b, t, n):
    return lambda: t if r[d] == b else n


def _jk_ne(r, d, b, t, n):
    return lambda: t if r[d] != b else n


def _jk_gt(r, d, b, t, n):
    return lambda: t if r[d] > b else n


def _jk_ge(r, d, b, t, n):
    return lambda: t if r[d] >= b else n


def _jk_lt(r, d, b, t, n):
    return lambda: t if r[d] < b else n


def _jk_le(r, d, b, t, n):
    return lambda: t if r[d] <= b else n


def _jk_set(r, d, b, t, n):
    return lambda: t if r[d] & b else n


def _jx_eq(r, d, s, t, n):
    return lambda: t if r[d] == r[s] else n


def _jx_ne(r, d, s, t, n):
    return lambda: t if r[d] != r[s] else n


def _jx_gt(r, d, s, t, n):
    return lambda: t if r[d] > r[s] else n


def _jx_ge(r, d, s, t, n):
    return lambda: t if r[d] >= r[s] else n


def _jx_lt(r, d, s, t, n):
    return lambda: t if r[d] < r[s] else n


def _jx_le(r, d, s, t, n):
    return lambda: t if r[d] <= r[s] else n


FAST_JK = {isa.BPF_JEQ: _jk_eq, isa.BPF_JNE: _jk_ne, isa.BPF_JGT: _jk_gt, isa.BPF_JGE: _jk_ge,
            isa.BPF_JLT: _jk_lt, isa.BPF_JLE: _jk_le, isa.BPF_JSET: _jk_set}
FAST_JX = {isa.BPF_JEQ: _jx_eq, isa.BPF_JNE: _jx_ne, isa.BPF_JGT: _jx_gt, isa.BPF_JGE: _jx_ge,
            isa.BPF_JLT: _jx_lt, isa.BPF_JLE: _jx_le}
