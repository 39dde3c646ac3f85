"""Value ranges of 64-bit registers: unsigned and signed intervals plus known bits (tnum.py), as
tuples ``(umin, umax, smin, smax, tv, tm)``; the one ALU and branch transfer of the verifier and
of the compiler's range analysis. MicroPython-compatible; imports only isa, ops and tnum."""

from iotbpf.ebpf import isa, tnum
from iotbpf.ebpf.isa import M32, M64, ops

SIGN = 1 << 63
S64_MIN = -(1 << 63)
S64_MAX = (1 << 63) - 1


def s64(x):
    """A 64-bit pattern read as a signed number."""
    return x - (1 << 64) if x & SIGN else x


FULL = (0, M64, S64_MIN, S64_MAX, 0, M64)
ZERO_B = (0, 0, 0, 0, 0, 0)


def const_bounds(v):
    """Bounds of the single value ``v`` (taken modulo 2**64)."""
    v &= M64
    return (v, v, s64(v), s64(v), v, 0)



def unknown_bits(nbits):
    """Bounds of an unknown value zero-extended from ``nbits`` bits."""
    if nbits >= 64:
        return FULL
    m = (1 << nbits) - 1
    return (0, m, 0, m, 0, m)


def signed_bits(nbits):
    """Bounds of an unknown value sign-extended from ``nbits`` bits."""
    h = 1 << (nbits - 1)
    return sync(0, M64, -h, h - 1, 0, M64) or FULL


def sync(umin, umax, smin, smax, tv, tm):
    """Make ranges and known bits agree (Linux's reg_bounds_sync); None if no value fits."""
    if tm == 0:
        if umin <= tv <= umax and smin <= s64(tv) <= smax:
            return (tv, tv, s64(tv), s64(tv), tv, 0)
        return None
    for _ in range(2):
        a = s64(tv | (tm & SIGN))
        b = s64(tv | (tm & ~SIGN & M64))
        if a > smin:
            smin = a
        if b < smax:
            smax = b
        if tv > umin:
            umin = tv
        if (tv | tm) < umax:
            umax = tv | tm
        if (umin ^ umax) & SIGN == 0:
            a = s64(umin)
            b = s64(umax)
            if a > smin:
                smin = a
            if b < smax:
                smax = b
        if (smin < 0) == (smax < 0):
            a = smin & M64
            b = smax & M64
            if a > umin:
                umin = a
            if b < umax:
                umax = b
        if umin > umax or smin > smax:
            return None
        rv, rm = tnum.trange(umin, umax)
        if (rv ^ tv) & ~rm & ~tm & M64:
            return None
        tv, tm = tnum.intersect((tv, tm), (rv, rm))
        if tm == 0:
            if umin <= tv <= umax and smin <= s64(tv) <= smax:
                return (tv, tv, s64(tv), s64(tv), tv, 0)
            return None
    if umin > umax or smin > smax:
        return None
    return (umin, umax, smin, smax, tv, tm)


def from_tnum(t, umin=0, umax=M64, smin=S64_MIN, smax=S64_MAX):
    """Bounds of known bits ``t`` within the given ranges (the tnum alone if they disagree)."""
    return sync(umin, umax, smin, smax, t[0], t[1]) or (0, M64, S64_MIN, S64_MAX, t[0], t[1])



# ------------------------------------------------------------------ concrete ALU (constants)
def sext(x, bits):
    """The low ``bits`` bits of ``x`` as a signed number."""
    x &= (1 << bits) - 1
    return x - (1 << bits) if x >> (bits - 1) else x


def alu_concrete(code, bits, signed_off, x, y):
    """The value of one ALU operation on constants: the interpreters' function from ops.py."""
    m = (1 << bits) - 1
    f = ops.alu_func(code, bits == 64, signed_off)
    return f(x & m, y & m) if f is not None else 0


# ------------------------------------------------------------------ abstract scalar ALU
def unbounded(code, bits, a, b):
    """Interval of ``a <code> b`` on unbounded integers, before wrap-around, for add, sub, mul and a
    left shift by a constant; ``a`` and ``b`` start with unsigned (lo, hi); None for other codes."""
    if code == isa.BPF_ADD:
        return a[0] + b[0], a[1] + b[1]
    if code == isa.BPF_SUB:
        return a[0] - b[1], a[1] - b[0]
    if code == isa.BPF_MUL:
        return a[0] * b[0], a[1] * b[1]
    if code == isa.BPF_LSH and b[0] == b[1]:
        n = b[0] & (bits - 1)
        return a[0] << n, a[1] << n
    return None


def interval_alu(code, bits, soff, a, b):
    """Unsigned (lo, hi) of ``a <code> b`` for unsigned operand intervals (the compiler's ranges)."""
    r = scalar_alu(code, bits, soff, interval_bounds(a[0], a[1]), interval_bounds(b[0], b[1]))
    return r[0], r[1]


def interval_bounds(lo, hi):
    """Bounds of the unsigned interval [lo, hi] (constants and the full range without sync)."""
    if lo == hi:
        return const_bounds(lo)
    if lo == 0 and hi == M64:
        return FULL
    return sync(lo, hi, S64_MIN, S64_MAX, 0, M64) or FULL


def add_bounds(a, b):
    """Bounds of the 64-bit sum ``a + b``."""
    tv, tm = tnum.add((a[4], a[5]), (b[4], b[5]))
    smin = a[2] + b[2]
    smax = a[3] + b[3]
    if smin < S64_MIN or smax > S64_MAX:
        smin, smax = S64_MIN, S64_MAX
    umin, umax = unbounded(isa.BPF_ADD, 64, a, b)
    if umax > M64:
        umin, umax = 0, M64
    return sync(umin, umax, smin, smax, tv, tm) or from_tnum((tv, tm))


def sub_bounds(a, b):
    """Bounds of the 64-bit difference ``a - b``."""
    tv, tm = tnum.sub((a[4], a[5]), (b[4], b[5]))
    smin = a[2] - b[3]
    smax = a[3] - b[2]
    if smin < S64_MIN or smax > S64_MAX:
        smin, smax = S64_MIN, S64_MAX
    umin, umax = unbounded(isa.BPF_SUB, 64, a, b)
    if umin < 0:
        umin, umax = 0, M64
    return sync(umin, umax, smin, smax, tv, tm) or from_tnum((tv, tm))


def mul_bounds(a, b):
    """Bounds of the 64-bit product ``a * b``."""
    t = tnum.mul((a[4], a[5]), (b[4], b[5]))
    umin, umax = unbounded(isa.BPF_MUL, 64, a, b)
    if umax > M64:
        umin, umax = 0, M64
    smin, smax = S64_MIN, S64_MAX
    p = (a[2] * b[2], a[2] * b[3], a[3] * b[2], a[3] * b[3])
    if min(p) >= S64_MIN and max(p) <= S64_MAX:
        smin, smax = min(p), max(p)
    return sync(umin, umax, smin, smax, t[0], t[1]) or from_tnum(t)


def scalar_alu(code, bits, soff, a, b):
    """Bounds of ``a <code> b`` for scalar bounds tuples (64-bit, or 32-bit zero-extended)."""
    if a[5] == 0 and b[5] == 0:
        return const_bounds(alu_concrete(code, bits, soff, a[4], b[4]))
    if bits == 32:
        a = view32(a)
        b = view32(b)
        if code == isa.BPF_ARSH or (code in (isa.BPF_DIV, isa.BPF_MOD) and soff == 1):
            if a[1] < (1 << 31) and (b[1] < (1 << 31) or code == isa.BPF_ARSH):
                code = isa.BPF_RSH if code == isa.BPF_ARSH else code
                soff = 0
            else:
                if code == isa.BPF_ARSH and b[5] == 0:
                    return trunc32(from_tnum(tnum.arshift((a[4], a[5]), b[4] & 31, 32), 0, M32))
                return unknown_bits(32)
        if code in (isa.BPF_LSH, isa.BPF_RSH) and b[5] == 0:
            b = const_bounds(b[4] & 31)
        elif code in (isa.BPF_LSH, isa.BPF_RSH):
            b = (0, 31, 0, 31, 0, 31)
        return trunc32(scalar_alu(code, 64, soff, a, b))
    if code == isa.BPF_ADD:
        return add_bounds(a, b)
    if code == isa.BPF_SUB:
        return sub_bounds(a, b)
    if code == isa.BPF_MUL:
        return mul_bounds(a, b)
    if code == isa.BPF_NEG:
        return sub_bounds(ZERO_B, a)
    if code == isa.BPF_MOV:
        if soff in (8, 16, 32):
            if b[1] < (1 << (soff - 1)):
                return b
            return signed_bits(soff)
        return b
    if code == isa.BPF_DIV:
        if soff == 1:
            return FULL
        if b[0] > 0:
            return sync(a[0] // b[1], a[1] // b[0], S64_MIN, S64_MAX, 0, M64) or FULL
        return sync(0, a[1], S64_MIN, S64_MAX, 0, M64) or FULL
    if code == isa.BPF_MOD:
        if soff == 1:
            return FULL
        hi = a[1]
        if b[0] > 0 and b[1] - 1 < hi:
            hi = b[1] - 1
        return sync(0, hi, S64_MIN, S64_MAX, 0, M64) or FULL
    if code == isa.BPF_AND:
        t = tnum.tand((a[4], a[5]), (b[4], b[5]))
        return from_tnum(t, t[0], min(a[1], b[1]))
    if code == isa.BPF_OR:
        t = tnum.tor((a[4], a[5]), (b[4], b[5]))
        return from_tnum(t, max(a[0], b[0]), t[0] | t[1])
    if code == isa.BPF_XOR:
        return from_tnum(tnum.txor((a[4], a[5]), (b[4], b[5])))
    if code == isa.BPF_LSH:
        if b[5] != 0:
            return FULL
        t = tnum.lshift((a[4], a[5]), b[4] & 63)
        lo, hi = unbounded(code, 64, a, (b[4], b[4]))
        if hi <= M64:
            return from_tnum(t, lo, hi)
        return from_tnum(t)
    if code == isa.BPF_RSH:
        if b[5] != 0:
            return sync(0, a[1], S64_MIN, S64_MAX, 0, M64) or FULL
        n = b[4] & 63
        return from_tnum(tnum.rshift((a[4], a[5]), n), a[0] >> n, a[1] >> n)
    if code == isa.BPF_ARSH:
        if b[5] != 0:
            return sync(0, M64, min(a[2], 0), max(a[3], -1), 0, M64) or FULL
        n = b[4] & 63
        return from_tnum(tnum.arshift((a[4], a[5]), n), 0, M64, a[2] >> n, a[3] >> n)
    return FULL


def view32(b):
    """The low 32 bits of a value, as zero-extended bounds."""
    if b[1] <= M32:
        return b
    return from_tnum(tnum.subreg((b[4], b[5])), 0, M32)


def trunc32(b):
    """Bounds of a 32-bit result, zero-extended (as view32, named for results)."""
    if b[1] <= M32:
        return b
    return view32(b)


def end_bounds(insn, b):
    """Bounds after le/be/bswap (little-endian machine: ``le`` truncates)."""
    bits = insn.imm
    if bits not in (16, 32, 64):
        return FULL
    swap = insn.opcode & 0x07 == isa.BPF_ALU64 or insn.opcode & isa.BPF_TO_BE
    if b[5] == 0:
        return const_bounds((ops.SWAP_FUNCS if swap else ops.LE_FUNCS)[bits](b[4], 0))
    if not swap:
        if bits == 64:
            return b
        return from_tnum(tnum.cast((b[4], b[5]), bits // 8), 0, (1 << bits) - 1) if b[1] > (1 << bits) - 1 \
            else b
    return unknown_bits(bits)


# ------------------------------------------------------------------ branch refinement
def meet(a, b):
    """Bounds of the values in both ``a`` and ``b``, or None if there are none."""
    if (a[4] ^ b[4]) & ~a[5] & ~b[5] & M64:
        return None
    t = tnum.intersect((a[4], a[5]), (b[4], b[5]))
    return sync(max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3]), t[0], t[1])


def _lt(a, b, strict, signed):
    """Refine so that a < b (strict) or a <= b; returns (a', b') or None if impossible."""
    s = 1 if strict else 0
    if signed:
        na = sync(a[0], a[1], a[2], min(a[3], b[3] - s), a[4], a[5])
        nb = sync(b[0], b[1], max(b[2], a[2] + s), b[3], b[4], b[5])
    else:
        na = sync(a[0], min(a[1], b[1] - s), a[2], a[3], a[4], a[5]) if b[1] - s >= 0 else None
        nb = sync(max(b[0], a[0] + s), b[1], b[2], b[3], b[4], b[5]) if a[0] + s <= M64 else None
    if na is None or nb is None:
        return None
    return na, nb


def _ne(a, b):
    """Refine a != b (only a constant b can trim a's edges)."""
    if a[5] == 0 and b[5] == 0:
        return None if a[4] == b[4] else (a, b)
    if b[5] != 0:
        return (a, b)
    c = b[4]
    umin, umax, smin, smax = a[0], a[1], a[2], a[3]
    if umin == c:
        umin += 1
    if umax == c:
        umax -= 1
    if smin == s64(c):
        smin += 1
    if smax == s64(c):
        smax -= 1
    na = sync(umin, umax, smin, smax, a[4], a[5])
    return None if na is None else (na, b)


def refine(code, a, b, signed_cmp_ok=True):
    """(taken, not_taken) where each is (a', b') bounds or None when that branch is impossible."""
    if code == isa.BPF_JEQ:
        m = meet(a, b)
        return ((m, m) if m is not None else None), _ne_pair(a, b)
    if code == isa.BPF_JNE:
        m = meet(a, b)
        return _ne_pair(a, b), ((m, m) if m is not None else None)
    if code == isa.BPF_JSET:
        return _jset(a, b)
    signed = code in (isa.BPF_JSGT, isa.BPF_JSGE, isa.BPF_JSLT, isa.BPF_JSLE)
    base = {isa.BPF_JSGT: isa.BPF_JGT, isa.BPF_JSGE: isa.BPF_JGE, isa.BPF_JSLT: isa.BPF_JLT,
            isa.BPF_JSLE: isa.BPF_JLE}.get(code, code)
    if base == isa.BPF_JGT:
        t = _swap_pair(_lt(b, a, True, signed))
        f = _lt(a, b, False, signed)
    elif base == isa.BPF_JGE:
        t = _swap_pair(_lt(b, a, False, signed))
        f = _lt(a, b, True, signed)
    elif base == isa.BPF_JLT:
        t = _lt(a, b, True, signed)
        f = _swap_pair(_lt(b, a, False, signed))
    else:  # JLE
        t = _lt(a, b, False, signed)
        f = _swap_pair(_lt(b, a, True, signed))
    return t, f


def _swap_pair(p):
    """(b, a) for a refined pair (a, b); None stays None."""
    return None if p is None else (p[1], p[0])


def _ne_pair(a, b):
    """Refine both sides of a != b; None if they must be equal."""
    r = _ne(a, b)
    if r is None:
        return None
    r2 = _ne(r[1], r[0])
    if r2 is None:
        return None
    return (r[0], r2[0])


def _jset(a, b):
    """(taken, not_taken) of ``if a & b``: bits that must or cannot be set."""
    if b[5] != 0:
        if a[5] == 0 and a[4] == 0:
            return None, (a, b)
        return (a, b), (a, b)
    c = b[4]
    may = (a[4] | a[5]) & c
    must = a[4] & c
    taken = (a, b) if may else None
    if taken is not None and c and c & (c - 1) == 0:
        na = sync(a[0], a[1], a[2], a[3], a[4] | c, a[5] & ~c)
        taken = None if na is None else (na, b)
    fall = None
    if not must:
        na = sync(a[0], a[1], a[2], a[3], a[4] & ~c, a[5] & ~c & M64)
        fall = None if na is None else (na, b)
    return taken, fall


def to_s32_view(b):
    """The low 32 bits of a value sign-extended to 64 bits (for signed 32-bit comparisons)."""
    v = view32(b)
    if v[5] == 0:
        return const_bounds(sext(v[4], 32) & M64)
    if v[1] < (1 << 31):
        return v
    if v[0] >= (1 << 31):
        hi = M64 ^ M32
        return sync(v[0] | hi, v[1] | hi, s64(v[0] | hi), s64(v[1] | hi), v[4] | hi, v[5]) or signed_bits(32)
    return signed_bits(32)


def from_s32_view(orig, v):
    """Map refined sign-extended view bounds back onto a value known to fit in 32 bits."""
    umin, umax = 0, M32
    if v[2] >= 0:
        umin, umax = v[2], v[3]
    elif v[3] < 0:
        umin, umax = v[2] + (1 << 32), v[3] + (1 << 32)
    t = tnum.subreg((v[4], v[5]))
    if (t[0] ^ orig[4]) & ~t[1] & ~orig[5] & M64:
        return None
    t = tnum.intersect(t, (orig[4], orig[5]))
    return sync(max(orig[0], umin), min(orig[1], umax), orig[2], orig[3], t[0], t[1])

