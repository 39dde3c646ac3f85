"""Tracked numbers (tnums) for the verifier: ``(value, mask)`` pairs saying which bits of a 64-bit
value are known, the abstract domain of Linux's kernel/bpf/tnum.c written afresh."""

from iotbpf.ebpf.isa.encoding import M32, M64

UNKNOWN = (0, M64)


def const(v):
    """The tnum holding exactly ``v`` (taken modulo 2**64)."""
    return (v & M64, 0)


def is_const(t):
    return t[1] == 0


def bit_length(x):
    """Number of bits needed for the non-negative int ``x`` (0 for 0)."""
    n = 0
    while x >= 0x10000:
        x >>= 16
        n += 16
    while x:
        x >>= 1
        n += 1
    return n


def trange(lo, hi):
    """The smallest tnum containing every value in [lo, hi] (unsigned)."""
    chi = lo ^ hi
    bits = bit_length(chi)
    if bits > 63:
        return UNKNOWN
    delta = (1 << bits) - 1
    return (lo & ~delta & M64, delta)


def lshift(a, n):
    return ((a[0] << n) & M64, (a[1] << n) & M64)


def rshift(a, n):
    return (a[0] >> n, a[1] >> n)


def _s64(x):
    return x - (1 << 64) if x >> 63 else x


def _s32(x):
    return x - (1 << 32) if x >> 31 else x


def arshift(a, n, bits=64):
    """Arithmetic right shift of a ``bits``-wide tnum (32 or 64) by ``n``."""
    if bits == 32:
        return ((_s32(a[0] & M32) >> n) & M32, (_s32(a[1] & M32) >> n) & M32)
    return ((_s64(a[0]) >> n) & M64, (_s64(a[1]) >> n) & M64)


def add(a, b):
    sm = a[1] + b[1]
    sv = a[0] + b[0]
    sigma = sm + sv
    chi = sigma ^ sv
    mu = (chi | a[1] | b[1]) & M64
    return (sv & ~mu & M64, mu)


def sub(a, b):
    dv = a[0] - b[0]
    alpha = dv + a[1]
    beta = dv - b[1]
    chi = alpha ^ beta
    mu = (chi | a[1] | b[1]) & M64
    return (dv & ~mu & M64, mu)


def neg(a):
    return sub((0, 0), a)


def tand(a, b):
    alpha = a[0] | a[1]
    beta = b[0] | b[1]
    v = a[0] & b[0]
    return (v, alpha & beta & ~v & M64)


def tor(a, b):
    v = a[0] | b[0]
    mu = a[1] | b[1]
    return (v, mu & ~v & M64)


def txor(a, b):
    v = a[0] ^ b[0]
    mu = a[1] | b[1]
    return (v & ~mu & M64, mu)


def mul(a, b):
    """Multiplication: the known product of the known parts plus shifted partial products."""
    acc_v = (a[0] * b[0]) & M64
    acc_m = (0, 0)
    av, am = a
    bv, bm = b
    while av or am:
        if av & 1:
            acc_m = add(acc_m, (0, bm))
        elif am & 1:
            acc_m = add(acc_m, (0, (bv | bm) & M64))
        av >>= 1
        am >>= 1
        bv = (bv << 1) & M64
        bm = (bm << 1) & M64
    return add((acc_v, 0), acc_m)


def intersect(a, b):
    """Bits known in either (the two must be compatible: a common member exists)."""
    v = a[0] | b[0]
    mu = a[1] & b[1]
    return (v & ~mu & M64, mu)


def union(a, b):
    """The smallest tnum containing every member of ``a`` and of ``b``."""
    mu = a[1] | b[1] | (a[0] ^ b[0])
    return (a[0] & ~mu & M64, mu & M64)


def cast(a, size):
    """Truncate to ``size`` bytes (zero-extending)."""
    m = (1 << (size * 8)) - 1
    return (a[0] & m, a[1] & m)


def subreg(a):
    return (a[0] & M32, a[1] & M32)


def is_aligned(a, size):
    return not ((a[0] | a[1]) & (size - 1))


def contains(a, b):
    """True if every member of ``b`` is a member of ``a`` (Linux's tnum_in)."""
    if b[1] & ~a[1]:
        return False
    return a[0] == (b[0] & ~a[1])


def member(a, x):
    """True if the concrete value ``x`` is a member of ``a``."""
    return (x & ~a[1] & M64) == a[0]


def umin(a):
    return a[0]


def umax(a):
    return a[0] | a[1]


def smin(a):
    """Smallest signed value: the sign bit set if it may be, other unknown bits clear."""
    return _s64(a[0] | (a[1] & (1 << 63)))


def smax(a):
    return _s64(a[0] | (a[1] & 0x7FFFFFFFFFFFFFFF))


def to_str(a):
    if a[1] == 0:
        return "%#x" % a[0]
    return "(%#x; %#x)" % (a[0], a[1])
