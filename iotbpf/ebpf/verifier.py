"""Static verifier: proves an eBPF program safe before it runs, or says why not.

Abstract interpretation over the control-flow graph, as Linux's kernel/bpf/verifier.c does:
every register and stack byte has a type (uninitialised, scalar, pointer to the context /
stack / map value / map value-or-NULL / input buffer / ring-buffer record, map reference,
function); scalars and pointer offsets carry signed and unsigned 64-bit ranges plus known bits
(tnum.py). Paths are explored depth first; at jump targets a state already proven safe that
contains the current one prunes the path, and outside loops states are joined (merged) so
branchy code does not explode. Loops are unrolled until the loop state repeats (rejected:
cannot terminate) or the instruction bound is exceeded (bpf_loop callbacks likewise, once per
possible iteration); the worst-case number of instructions
any run executes is computed from the explored graph, so "accepted" also means "finishes
within the budget". Never executes the program and never imports anything outside ebpf/.
MicroPython-compatible syntax (it runs on the host before deployment).

Result: ``verify(...) -> VerifyResult``; rejection raises ``VerifierError`` whose ``.errors``
lists one-line messages ``pc N: <insn>: <reason>``.
"""

from iotbpf.ebpf import isa
from iotbpf.ebpf import tnum as T
from iotbpf.ebpf import types as ty
from iotbpf.ebpf.errors import VerifierError
from iotbpf.ebpf.isa import cfg, ops

U64 = 0xFFFFFFFFFFFFFFFF
U32 = 0xFFFFFFFF
SIGN = 1 << 63
S64_MIN = -(1 << 63)
S64_MAX = (1 << 63) - 1
MAX_PTR_OFF = 1 << 29
STACK = isa.STACK_SIZE
MAX_FRAMES = isa.MAX_CALL_FRAMES
DEFAULT_MAX_INSNS = 4096
DEFAULT_COMPLEXITY = 1000000  # abstract instructions processed before giving up (as Linux)
JOIN_AFTER = 4  # states kept at a join point outside loops before new ones are merged
MAX_STATES_PER_PC = 64
CHECKPOINT_EVERY = 8  # store a new state only this many instructions after the last (except loops)
LOOP_PROBE_ITERS = 24  # same step and cost this many iterations running: predict the loop's length
BPF_FUNC_TAIL_CALL = 12
BPF_MAX_LOOPS = 1 << 23
BPF_LOOP_ARGS = (ty.ARG_ANYTHING, ty.ARG_PTR_TO_FUNC, ty.ARG_PTR_TO_STACK_OR_NULL, ty.ARG_ANYTHING)

# ------------------------------------------------------------------ register types
NOT_INIT = 0
SCALAR = 1
PTR_CTX = 2
PTR_STACK = 3
PTR_MAP_VALUE = 4
PTR_MAP_VALUE_OR_NULL = 5
PTR_MEM = 6  # the input buffer of a standalone run (r1, length r2)
PTR_MEM_END = 7  # input buffer + its length
CONST_MAP = 8  # a map handle (lddw map_fd / map_idx)
PTR_FUNC = 9  # a subprogram address (lddw func)
PTR_BUF = 10  # memory returned by a helper (ring buffer record), size in k
PTR_BUF_OR_NULL = 11
CONST_MAP_OR_NULL = 12  # a lookup in a map of maps: the inner map (template k), or NULL

TYPE_NAMES = {
    NOT_INIT: "uninitialised", SCALAR: "a number", PTR_CTX: "a pointer to the context",
    PTR_STACK: "a pointer to the stack", PTR_MAP_VALUE: "a pointer to a map value",
    PTR_MAP_VALUE_OR_NULL: "a map value pointer that may be NULL",
    PTR_MEM: "a pointer into the input buffer", PTR_MEM_END: "the end of the input buffer",
    CONST_MAP: "a map reference", PTR_FUNC: "a function address",
    PTR_BUF: "a pointer to helper memory", PTR_BUF_OR_NULL: "a helper memory pointer that may be NULL",
    CONST_MAP_OR_NULL: "an inner map reference that may be NULL",
}
# Region names for VerifyResult.access_regions (what the compiled engine may rely on).
REGION_NAMES = {PTR_CTX: "ctx", PTR_STACK: "stack", PTR_MAP_VALUE: "map_value", PTR_MEM: "mem",
                PTR_BUF: "buf"}
STORE_PLACES = {PTR_CTX: "the context", PTR_MAP_VALUE: "a map value", PTR_MEM: "the input buffer",
                PTR_BUF: "a ring buffer record"}
ARITH_OK = (PTR_CTX, PTR_STACK, PTR_MAP_VALUE, PTR_MEM, PTR_BUF)
NEVER_NULL = (PTR_CTX, PTR_STACK, PTR_MAP_VALUE, PTR_BUF, CONST_MAP, PTR_FUNC)

# stack byte kinds
INVALID = 0
MISC = 1
ZERO = 2
SPILL = 3


def s64(x):
    return x - (1 << 64) if x & SIGN else x


class Reg:
    """One abstract register value; treated as immutable (operations build new ones).

    ``off`` is the fixed offset of a pointer; umin..tm describe a scalar's value or a pointer's
    variable offset; ``id`` links copies (NULL checks, buffer bounds); ``k`` is the map index,
    stack frame, function pc or buffer size; ``rel`` (scalars and input-buffer pointers):
    value (variable part) + rel <= buffer length; ``sym``: the scalar equals length + sym.
    Scalars with the same non-zero ``id`` are linked: each equals one hidden value + its ``dl``
    (copies and copies plus a constant), so a comparison of one bounds the others.
    """

    __slots__ = ("t", "off", "umin", "umax", "smin", "smax", "tv", "tm", "id", "k", "rel", "sym", "dl")

    def __init__(self, t, off=0, umin=0, umax=0, smin=0, smax=0, tv=0, tm=0, id=0, k=0, rel=None,
                 sym=None, dl=0):
        self.t = t
        self.off = off
        self.umin = umin
        self.umax = umax
        self.smin = smin
        self.smax = smax
        self.tv = tv
        self.tm = tm
        self.id = id
        self.k = k
        self.rel = rel
        self.sym = sym
        self.dl = dl

    def bounds(self):
        return (self.umin, self.umax, self.smin, self.smax, self.tv, self.tm)

    def with_bounds(self, b, **kw):
        r = Reg(self.t, self.off, b[0], b[1], b[2], b[3], b[4], b[5], self.id, self.k, self.rel,
                self.sym, self.dl)
        for name in kw:
            setattr(r, name, kw[name])
        return r

    def is_const(self):
        return self.tm == 0

    def __repr__(self):
        return "Reg(%s)" % describe(self)


UNINIT = Reg(NOT_INIT)
FULL = (0, U64, S64_MIN, S64_MAX, 0, U64)
ZERO_B = (0, 0, 0, 0, 0, 0)


def const_bounds(v):
    v &= U64
    return (v, v, s64(v), s64(v), v, 0)


def scalar(b, rel=None, sym=None):
    return Reg(SCALAR, 0, b[0], b[1], b[2], b[3], b[4], b[5], 0, 0, rel, sym)


def known(v):
    return scalar(const_bounds(v))


def unknown_bits(nbits):
    """Bounds of an unknown value zero-extended from ``nbits`` bits."""
    if nbits >= 64:
        return FULL
    m = (1 << nbits) - 1
    return (0, m, 0, m, 0, m)


def signed_bits(nbits):
    """Bounds of an unknown value sign-extended from ``nbits`` bits."""
    h = 1 << (nbits - 1)
    return sync(0, U64, -h, h - 1, 0, U64) or FULL


def sync(umin, umax, smin, smax, tv, tm):
    """Make ranges and known bits agree (Linux's reg_bounds_sync); None if no value fits."""
    if tm == 0:
        if umin <= tv <= umax and smin <= s64(tv) <= smax:
            return (tv, tv, s64(tv), s64(tv), tv, 0)
        return None
    for _ in range(2):
        a = s64(tv | (tm & SIGN))
        b = s64(tv | (tm & ~SIGN & U64))
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
            a = smin & U64
            b = smax & U64
            if a > umin:
                umin = a
            if b < umax:
                umax = b
        if umin > umax or smin > smax:
            return None
        rv, rm = T.trange(umin, umax)
        if (rv ^ tv) & ~rm & ~tm & U64:
            return None
        tv, tm = T.intersect((tv, tm), (rv, rm))
        if tm == 0:
            if umin <= tv <= umax and smin <= s64(tv) <= smax:
                return (tv, tv, s64(tv), s64(tv), tv, 0)
            return None
    if umin > umax or smin > smax:
        return None
    return (umin, umax, smin, smax, tv, tm)


def bsync(b):
    return sync(b[0], b[1], b[2], b[3], b[4], b[5])


def from_tnum(t, umin=0, umax=U64, smin=S64_MIN, smax=S64_MAX):
    return sync(umin, umax, smin, smax, t[0], t[1]) or (0, U64, S64_MIN, S64_MAX, t[0], t[1])


def describe(r):
    """A register value in words, for messages."""
    t = r.t
    if t == SCALAR:
        if r.tm == 0:
            return "the number %d" % s64(r.tv) if r.tv & SIGN else "the number %d" % r.tv
        return "a number in [%d, %d]" % (r.umin, r.umax) if r.umax <= S64_MAX else \
            "a number in [%d, %d] (signed)" % (r.smin, r.smax)
    text = TYPE_NAMES.get(t, "?")
    if t in (PTR_STACK,):
        return "%s (fp%+d)" % (text, r.off) if r.tm == 0 and r.tv == 0 else "%s (fp%+d + variable)" % (
            text, r.off)
    if t in ARITH_OK and r.off:
        return "%s%+d" % (text, r.off)
    return text


# ------------------------------------------------------------------ concrete ALU (constants)
def _sx(x, bits):
    x &= (1 << bits) - 1
    return x - (1 << bits) if x >> (bits - 1) else x


def alu_concrete(code, bits, signed_off, x, y):
    """The value of one ALU operation on constants: the interpreters' function from ops.py."""
    m = (1 << bits) - 1
    f = ops.alu_func(code, bits == 64, signed_off)
    return f(x & m, y & m) if f is not None else 0


# ------------------------------------------------------------------ abstract scalar ALU
def _add(a, b):
    tv, tm = T.add((a[4], a[5]), (b[4], b[5]))
    smin = a[2] + b[2]
    smax = a[3] + b[3]
    if smin < S64_MIN or smax > S64_MAX:
        smin, smax = S64_MIN, S64_MAX
    umin = a[0] + b[0]
    umax = a[1] + b[1]
    if umax > U64:
        umin, umax = 0, U64
    return sync(umin, umax, smin, smax, tv, tm) or from_tnum((tv, tm))


def _sub(a, b):
    tv, tm = T.sub((a[4], a[5]), (b[4], b[5]))
    smin = a[2] - b[3]
    smax = a[3] - b[2]
    if smin < S64_MIN or smax > S64_MAX:
        smin, smax = S64_MIN, S64_MAX
    if a[0] < b[1]:
        umin, umax = 0, U64
    else:
        umin, umax = a[0] - b[1], a[1] - b[0]
    return sync(umin, umax, smin, smax, tv, tm) or from_tnum((tv, tm))


def _mul(a, b):
    t = T.mul((a[4], a[5]), (b[4], b[5]))
    umin, umax = 0, U64
    if a[1] * b[1] <= U64:
        umin, umax = a[0] * b[0], a[1] * b[1]
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
                    return trunc32(from_tnum(T.arshift((a[4], a[5]), b[4] & 31, 32), 0, U32))
                return unknown_bits(32)
        if code in (isa.BPF_LSH, isa.BPF_RSH) and b[5] == 0:
            b = const_bounds(b[4] & 31)
        elif code in (isa.BPF_LSH, isa.BPF_RSH):
            b = (0, 31, 0, 31, 0, 31)
        return trunc32(scalar_alu(code, 64, soff, a, b))
    if code == isa.BPF_ADD:
        return _add(a, b)
    if code == isa.BPF_SUB:
        return _sub(a, b)
    if code == isa.BPF_MUL:
        return _mul(a, b)
    if code == isa.BPF_NEG:
        return _sub(ZERO_B, a)
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
            return sync(a[0] // b[1], a[1] // b[0], S64_MIN, S64_MAX, 0, U64) or FULL
        return sync(0, a[1], S64_MIN, S64_MAX, 0, U64) or FULL
    if code == isa.BPF_MOD:
        if soff == 1:
            return FULL
        hi = a[1]
        if b[0] > 0 and b[1] - 1 < hi:
            hi = b[1] - 1
        return sync(0, hi, S64_MIN, S64_MAX, 0, U64) or FULL
    if code == isa.BPF_AND:
        t = T.tand((a[4], a[5]), (b[4], b[5]))
        return from_tnum(t, t[0], min(a[1], b[1]))
    if code == isa.BPF_OR:
        t = T.tor((a[4], a[5]), (b[4], b[5]))
        return from_tnum(t, max(a[0], b[0]), t[0] | t[1])
    if code == isa.BPF_XOR:
        return from_tnum(T.txor((a[4], a[5]), (b[4], b[5])))
    if code == isa.BPF_LSH:
        if b[5] != 0:
            return FULL
        n = b[4] & 63
        t = T.lshift((a[4], a[5]), n)
        if (a[1] << n) <= U64:
            return from_tnum(t, a[0] << n, a[1] << n)
        return from_tnum(t)
    if code == isa.BPF_RSH:
        if b[5] != 0:
            return sync(0, a[1], S64_MIN, S64_MAX, 0, U64) or FULL
        n = b[4] & 63
        return from_tnum(T.rshift((a[4], a[5]), n), a[0] >> n, a[1] >> n)
    if code == isa.BPF_ARSH:
        if b[5] != 0:
            return sync(0, U64, min(a[2], 0), max(a[3], -1), 0, U64) or FULL
        n = b[4] & 63
        return from_tnum(T.arshift((a[4], a[5]), n), 0, U64, a[2] >> n, a[3] >> n)
    return FULL


def view32(b):
    """The low 32 bits of a value, as zero-extended bounds."""
    if b[1] <= U32:
        return b
    return from_tnum(T.subreg((b[4], b[5])), 0, U32)


def trunc32(b):
    if b[1] <= U32:
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
        return from_tnum(T.cast((b[4], b[5]), bits // 8), 0, (1 << bits) - 1) if b[1] > (1 << bits) - 1 \
            else b
    return unknown_bits(bits)


# ------------------------------------------------------------------ branch refinement
def _meet(a, b):
    if (a[4] ^ b[4]) & ~a[5] & ~b[5] & U64:
        return None
    t = T.intersect((a[4], a[5]), (b[4], b[5]))
    return sync(max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3]), t[0], t[1])


def _lt(a, b, strict, signed):
    """Refine so that a < b (strict) or a <= b; returns (a', b') or None if impossible."""
    s = 1 if strict else 0
    if signed:
        na = sync(a[0], a[1], a[2], min(a[3], b[3] - s), a[4], a[5])
        nb = sync(b[0], b[1], max(b[2], a[2] + s), b[3], b[4], b[5])
    else:
        na = sync(a[0], min(a[1], b[1] - s), a[2], a[3], a[4], a[5]) if b[1] - s >= 0 else None
        nb = sync(max(b[0], a[0] + s), b[1], b[2], b[3], b[4], b[5]) if a[0] + s <= U64 else None
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
        m = _meet(a, b)
        return ((m, m) if m is not None else None), _ne_pair(a, b)
    if code == isa.BPF_JNE:
        m = _meet(a, b)
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
    return None if p is None else (p[1], p[0])


def _ne_pair(a, b):
    r = _ne(a, b)
    if r is None:
        return None
    r2 = _ne(r[1], r[0])
    if r2 is None:
        return None
    return (r[0], r2[0])


def _jset(a, b):
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
        na = sync(a[0], a[1], a[2], a[3], a[4] & ~c, a[5] & ~c & U64)
        fall = None if na is None else (na, b)
    return taken, fall


def to_s32_view(b):
    """The low 32 bits of a value sign-extended to 64 bits (for signed 32-bit comparisons)."""
    v = view32(b)
    if v[5] == 0:
        return const_bounds(_sx(v[4], 32) & U64)
    if v[1] < (1 << 31):
        return v
    if v[0] >= (1 << 31):
        hi = U64 ^ U32
        return sync(v[0] | hi, v[1] | hi, s64(v[0] | hi), s64(v[1] | hi), v[4] | hi, v[5]) or signed_bits(32)
    return signed_bits(32)


def from_s32_view(orig, v):
    """Map refined sign-extended view bounds back onto a value known to fit in 32 bits."""
    umin, umax = 0, U32
    if v[2] >= 0:
        umin, umax = v[2], v[3]
    elif v[3] < 0:
        umin, umax = v[2] + (1 << 32), v[3] + (1 << 32)
    t = T.subreg((v[4], v[5]))
    if (t[0] ^ orig[4]) & ~t[1] & ~orig[5] & U64:
        return None
    t = T.intersect(t, (orig[4], orig[5]))
    return sync(max(orig[0], umin), min(orig[1], umax), orig[2], orig[3], t[0], t[1])


# ------------------------------------------------------------------ state
class Frame:
    """One function's registers and stack. ``cb`` is set for a bpf_loop callback invocation:
    (iteration, most iterations, the context argument to pass again)."""

    __slots__ = ("regs", "stack", "spills", "callsite", "func", "cb")

    def __init__(self, regs, stack, spills, callsite, func, cb=None):
        self.regs = regs
        self.stack = stack
        self.spills = spills
        self.callsite = callsite
        self.func = func
        self.cb = cb

    def copy(self):
        return Frame(list(self.regs), bytearray(self.stack), dict(self.spills), self.callsite,
                     self.func, self.cb)


class State:
    """Frames (innermost last), the proven input length, the path taken, instructions so far and
    the ring-buffer records reserved but not yet submitted ((id, pc) pairs)."""

    __slots__ = ("frames", "mem_min", "path", "depth", "refs")

    def __init__(self, frames, mem_min, path, depth, refs=()):
        self.frames = frames
        self.mem_min = mem_min
        self.path = path
        self.depth = depth
        self.refs = refs

    def copy(self):
        return State([f.copy() for f in self.frames], self.mem_min, self.path, self.depth, self.refs)

    def all_regs(self):
        """(frame, where, reg) for every register and spilled register of every frame."""
        out = []
        for f in self.frames:
            for i in range(11):
                out.append((f, i, f.regs[i]))
            for key in f.spills:
                out.append((f, -1 - key, f.spills[key]))
        return out

    def replace(self, frame, where, reg):
        if where >= 0:
            frame.regs[where] = reg
        else:
            frame.spills[-1 - where] = reg


class Checkpoint:
    """A state stored at a prune point; complete once every path through it has ended."""

    __slots__ = ("parent", "branches", "complete", "state", "seg", "pc", "ckey", "depth")

    def __init__(self, parent, state, seg, pc):
        self.ckey = ()
        self.depth = 0
        self.parent = parent
        self.branches = 1
        self.complete = False
        self.state = state
        self.seg = seg
        self.pc = pc


class Seg:
    """A straight piece of an explored path: its instruction count and what follows it."""

    __slots__ = ("length", "succ")

    def __init__(self):
        self.length = 0
        self.succ = []


class Reject(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


class VerifyResult:
    """What the verifier proved about an accepted program."""

    def __init__(self, insn_count, insns_processed, states_explored, max_stack, max_path_insns,
                 safe_access_pcs, access_regions, mode):
        self.insn_count = insn_count
        self.insns_processed = insns_processed
        self.states_explored = states_explored
        self.max_stack = max_stack
        self.max_path_insns = max_path_insns
        self.safe_access_pcs = safe_access_pcs
        self.access_regions = access_regions
        self.mode = mode

    def summary(self):
        return ("ok: %d instructions, %d states explored, %d instructions processed, max stack %d bytes, "
                "at most %d instructions per run" % (self.insn_count, self.states_explored,
                                                     self.insns_processed, self.max_stack,
                                                     self.max_path_insns))

    def to_dict(self):
        return {"ok": True, "insn_count": self.insn_count, "insns_processed": self.insns_processed,
                "states_explored": self.states_explored, "max_stack": self.max_stack,
                "max_path_insns": self.max_path_insns, "mode": self.mode,
                "safe_access_pcs": sorted(self.safe_access_pcs)}

    def __repr__(self):
        return "VerifyResult(%s)" % self.summary()


def verify(program, helpers=None, hook=None, mem_size=None, max_insns=DEFAULT_MAX_INSNS, budget=None,
           complexity_limit=DEFAULT_COMPLEXITY):
    """Prove ``program`` safe; returns a VerifyResult or raises VerifierError (``.errors``).

    ``program``: a Program (``.insns``, ``.maps``, optional ``.line_info`` / ``.lines``) or a
    slot-indexed Instruction list. ``helpers``: a HelperTable (None: no helper may be called).
    ``hook``: the ContextLayout r1 points to; None means a standalone run (r1 = input buffer of
    length r2; ``mem_size`` declares the length instead). ``max_insns``: program size limit.
    ``budget``: instruction budget every run must fit in (None: only the complexity limit).
    """
    v = Verifier(program, helpers, hook, mem_size, max_insns, budget, complexity_limit)
    return v.run()


def _map_spec(m):
    if hasattr(m, "value_size"):
        return m
    return getattr(m, "spec", m)


class Verifier:
    def __init__(self, program, helpers, hook, mem_size, max_insns, budget, complexity_limit):
        if isinstance(program, (list, tuple)):
            self.insns = list(program)
            self.maps = []
            self.line_info = {}
        else:
            self.insns = list(program.insns)
            self.maps = list(getattr(program, "maps", None) or [])
            self.line_info = getattr(program, "line_info", None) or getattr(program, "lines", None) or {}
        self.helpers = helpers
        self.hook = hook
        self.mem_size = mem_size
        self.max_insns = max_insns
        self.budget = budget
        self.complexity = complexity_limit
        self.n = len(self.insns)
        self.next_id = 1
        self.processed = 0
        self.states = 1
        self.max_stack = {}
        self.access = {}
        self.pending = None
        self.extra_cost = 0

    # ------------------------------------------------------------ messages
    def text(self, pc):
        if 0 <= pc < self.n:
            return isa.format_insn(self.insns[pc], pc)
        return "<end of program>"

    def message(self, pc, reason, hint=None, state=None):
        msg = "pc %d: %s: %s" % (pc, self.text(pc), reason)
        if hint:
            msg += " \u2014 " + hint
        info = self.line_info.get(pc) if hasattr(self.line_info, "get") else None
        if info:
            try:
                if len(info) >= 3:
                    msg += " (%s:%s: %s)" % (info[0], info[1], str(info[2]).strip())
                elif len(info) == 2:
                    msg += " (line %s: %s)" % (info[0], str(info[1]).strip())
            except TypeError:
                pass
        if state is not None and state.path is not None:
            # The branch decisions that led here, oldest first: "pc of the jump -> where it went".
            steps = []
            p = state.path
            while p is not None and len(steps) < 12:
                steps.append("%d -> %d" % p[0])
                p = p[1]
            steps.reverse()
            msg += "; path: " + ", ".join(steps)
        return msg

    def fail(self, pc, reason, hint=None, state=None):
        raise Reject(self.message(pc, reason, hint, state))

    # ------------------------------------------------------------ entry
    def run(self):
        try:
            errors = self.check_static()
            if errors:
                raise VerifierErrorList(errors)
            self.explore()
        except Reject as exc:
            raise _error([exc.message]) from None
        except VerifierErrorList as exc:
            raise _error(exc.errors) from None
        safe = frozenset(self.access)
        regions = {}
        for pc in self.access:
            regions[pc] = frozenset(self.access[pc])
        mode = "hook %s" % self.hook.name if self.hook is not None else (
            "standalone, %d-byte buffer" % self.mem_size if self.mem_size is not None
            else "standalone, buffer length in r2")
        count = sum(1 for pc in range(self.n) if not self.is_tail[pc])
        return VerifyResult(count, self.processed, self.states,
                            max(self.max_stack.values()) if self.max_stack else 0,
                            self.max_path, safe, regions, mode)

    # ------------------------------------------------------------ static checks (check_cfg)
    def check_static(self):
        insns = self.insns
        n = self.n
        errors = []
        self.is_tail = [False] * n
        if n == 0:
            return ["pc 0: <end of program>: the program is empty \u2014 it needs at least an exit"]
        tails = isa.lddw_tails(insns)
        for pc in tails:
            self.is_tail[pc] = True
        count = n - len(tails)
        if count > self.max_insns:
            return ["pc %d: %s: the program has %d instructions, more than the limit of %d"
                    % (self.max_insns, self.text(self.max_insns), count, self.max_insns)]
        for pc in range(n):
            if self.is_tail[pc]:
                continue
            insn = insns[pc]
            op = insn.opcode
            kind = isa.op_kind(op)
            tail = insns[pc + 1] if op == isa.LDDW and pc + 1 < n else None
            if kind is None:
                errors.append(self.message(pc, "unknown opcode 0x%02x" % op,
                                           "this is not an eBPF instruction"))
                continue
            if op == isa.LDDW and tail is None:
                errors.append(self.message(pc, "lddw is missing its second half"))
                continue
            if insn.dst > 10 or insn.src > 10:
                errors.append(self.message(pc, "invalid register r%d" % max(insn.dst, insn.src),
                                           "registers are r0 to r10"))
                continue
            if not isa.is_canonical(insn, tail):
                errors.append(self.message(pc, "reserved fields of the instruction are not zero",
                                           "the encoding is malformed"))
                continue
            if kind in ("ja", "ja32", "jcond"):
                t = insn.jump_target(pc)
                if not 0 <= t < n:
                    errors.append(self.message(pc, "jump out of range (target pc %d, program has %d slots)"
                                               % (t, n)))
                elif self.is_tail[t]:
                    errors.append(self.message(pc, "jump into the middle of the lddw at pc %d" % (t - 1)))
            elif kind == "call" and insn.src == isa.BPF_PSEUDO_CALL:
                t = pc + 1 + insn.imm
                if not 0 <= t < n or self.is_tail[t]:
                    errors.append(self.message(pc, "call target pc %d is not an instruction" % t))
            elif op == isa.LDDW and insn.src == isa.BPF_PSEUDO_FUNC:
                t = pc + 1 + isa.s32(insn.imm)
                if not 0 <= t < n or self.is_tail[t]:
                    errors.append(self.message(pc, "function address pc %d is not an instruction" % t))
            elif op == isa.LDDW and insn.src not in (0, isa.BPF_PSEUDO_MAP_FD, isa.BPF_PSEUDO_MAP_IDX,
                                                     isa.BPF_PSEUDO_MAP_VALUE,
                                                     isa.BPF_PSEUDO_MAP_IDX_VALUE):
                errors.append(self.message(pc, "lddw source %d (%s) is not supported" % (
                    insn.src, isa.LDDW_PSEUDO_NAMES.get(insn.src, "unknown"))))
        if errors:
            return errors
        self.funcs = isa.function_starts(insns)  # every target was checked above
        self.func_of = [0] * n
        starts = self.funcs
        fi = 0
        for pc in range(n):
            while fi + 1 < len(starts) and starts[fi + 1] <= pc:
                fi += 1
            self.func_of[pc] = starts[fi]
        # successors, function boundaries, falling off the end
        self.succ = [()] * n
        for pc in range(n):
            if self.is_tail[pc]:
                continue
            insn = insns[pc]
            kind = isa.op_kind(insn.opcode)
            step = 2 if insn.opcode == isa.LDDW else 1
            f = self.func_of[pc]
            if kind == "exit":
                s = ()
            elif kind in ("ja", "ja32"):
                s = (insn.jump_target(pc),)
            elif kind == "jcond":
                s = (pc + 1, insn.jump_target(pc))
            else:
                s = (pc + step,)
            for t in s:
                if t >= n or (t == pc + step and t < n and self.func_of[t] != f):
                    errors.append(self.message(pc, "execution falls off the end of the %s" % (
                        "program" if t >= n else "function"),
                        "end every path with exit (or a jump)"))
                elif self.func_of[t] != f:
                    errors.append(self.message(pc, "jump to pc %d leaves the function starting at pc %d"
                                               % (t, f)))
            self.succ[pc] = s
        if errors:
            return errors
        # reachability (from pc 0, following calls and function addresses)
        seen = [False] * n
        work = [0]
        seen[0] = True
        while work:
            pc = work.pop()
            insn = insns[pc]
            nxt = list(self.succ[pc])
            if insn.opcode == isa.CALL and insn.src == isa.BPF_PSEUDO_CALL:
                nxt.append(pc + 1 + insn.imm)
            elif insn.opcode == isa.LDDW and insn.src == isa.BPF_PSEUDO_FUNC:
                nxt.append(pc + 1 + isa.s32(insn.imm))
            for t in nxt:
                if not seen[t]:
                    seen[t] = True
                    work.append(t)
        for pc in range(n):
            if not seen[pc] and not self.is_tail[pc]:
                errors.append(self.message(pc, "unreachable instruction",
                                           "no path from the start of the program reaches it"))
                break
        if errors:
            return errors
        # recursion: cycles in the static call graph
        callees = {}
        for pc in range(n):
            insn = insns[pc]
            if not self.is_tail[pc] and insn.opcode == isa.CALL and insn.src == isa.BPF_PSEUDO_CALL:
                callees.setdefault(self.func_of[pc], []).append((pc, pc + 1 + insn.imm))
        err = self._find_recursion(callees)
        if err:
            return [err]
        self._analyse_cfg()
        return []

    def _find_recursion(self, callees):
        color = {}
        for root in self.funcs:
            if root in color:
                continue
            stack = [(root, 0)]
            color[root] = 1
            while stack:
                f, i = stack[-1]
                edges = callees.get(f, ())
                if i >= len(edges):
                    color[f] = 2
                    stack.pop()
                    continue
                stack[-1] = (f, i + 1)
                pc, g = edges[i]
                c = color.get(g, 0)
                if c == 1:
                    return self.message(pc, "recursive call: the function at pc %d calls itself (directly "
                                        "or through others)" % g, "recursion is not allowed; use a loop")
                if c == 0:
                    color[g] = 1
                    stack.append((g, 0))
        return None

    def _analyse_cfg(self):
        """Prune points, pcs inside loops (no joining there) and register liveness."""
        n = self.n
        succ = self.succ
        prune = set(self.funcs)
        for pc in range(n):
            s = succ[pc]
            if len(s) == 2:
                prune.add(s[0])
                prune.add(s[1])
            elif s and s[0] != pc + (2 if self.insns[pc].opcode == isa.LDDW else 1):
                prune.add(s[0])
        self.prune = prune
        # Targets of backward jumps: every cycle has one, and a state is always stored there.
        heads = set()
        for pc in range(n):
            for t in succ[pc]:
                if t <= pc:
                    heads.add(t)
        self.loop_heads = heads
        # strongly connected components (iterative Tarjan) -> pcs on a cycle
        index = {}
        low = {}
        on = set()
        stk = []
        in_loop = set()
        counter = [0]
        for root in range(n):
            if root in index or self.is_tail[root]:
                continue
            work = [(root, 0)]
            index[root] = low[root] = counter[0]
            counter[0] += 1
            stk.append(root)
            on.add(root)
            while work:
                v, i = work[-1]
                if i < len(succ[v]):
                    work[-1] = (v, i + 1)
                    w = succ[v][i]
                    if w not in index:
                        index[w] = low[w] = counter[0]
                        counter[0] += 1
                        stk.append(w)
                        on.add(w)
                        work.append((w, 0))
                    elif w in on:
                        low[v] = min(low[v], index[w])
                else:
                    work.pop()
                    if work:
                        u = work[-1][0]
                        low[u] = min(low[u], low[v])
                    if low[v] == index[v]:
                        comp = []
                        while True:
                            w = stk.pop()
                            on.discard(w)
                            comp.append(w)
                            if w == v:
                                break
                        if len(comp) > 1 or v in succ[v]:
                            in_loop.update(comp)
        self.in_loop = in_loop
        # liveness (bit i = register i), backward fixpoint
        use = [0] * n
        dfn = [0] * n
        args = 0b111110
        for pc, insn, kind, d, s in self._insn_bits():
            op = insn.opcode
            u = 0
            df = 0
            if kind == "alu":
                code = op & 0xF0
                if code == isa.BPF_MOV:
                    u = s if op & isa.BPF_X else 0
                else:
                    u = d | (s if op & isa.BPF_X and code != isa.BPF_NEG else 0)
                df = d
            elif kind == "end":
                u = d
                df = d
            elif kind == "lddw":
                df = d
            elif kind in ("ldx", "ldxs"):
                u = s
                df = d
            elif kind == "st":
                u = d
            elif kind == "stx":
                u = d | s
            elif kind == "atomic":
                u = d | s
                if insn.imm & isa.BPF_FETCH:
                    df = s
                if (insn.imm & U32) == isa.BPF_CMPXCHG:
                    u |= 1
                    df = 1
            elif kind in ("ldabs", "ldind"):
                u = s if kind == "ldind" else 0
                df = 1
            elif kind == "jcond":
                u = d | (s if op & isa.BPF_X else 0)
            elif kind == "call":
                u = args
                df = 0b111111
            elif kind == "callx":
                u = args | d
                df = 0b111111
            elif kind == "exit":
                u = 1
            use[pc] = u | (1 << 10)
            dfn[pc] = df
        order = [pc for pc in range(n - 1, -1, -1) if not self.is_tail[pc]]
        self.live = cfg.backward_fixpoint(order, succ, lambda pc, out: use[pc] | (out & ~dfn[pc]), [0] * n)
        self.precise = self._precision(use, order)

    def _insn_bits(self):
        """(pc, insn, kind, dst bit, src bit) of every instruction, lddw tails left out."""
        for pc in range(self.n):
            if not self.is_tail[pc]:
                insn = self.insns[pc]
                yield pc, insn, isa.op_kind(insn.opcode), 1 << insn.dst, 1 << insn.src

    def _precision(self, use, order):
        """Registers whose value (not just type) can still matter for safety, per pc.

        A value matters if it may flow into a memory address, a branch condition, a helper or
        function argument, a stored value or a function's return value; other scalars can be
        compared by type alone when pruning (a static form of Linux's precision tracking).
        """
        n = self.n
        succ = self.succ
        seed = [0] * n
        flow = [None] * n
        for pc, insn, kind, d, s in self._insn_bits():
            op = insn.opcode
            if kind == "alu":
                if op & 0xF0 == isa.BPF_MOV:
                    flow[pc] = (d, s if op & isa.BPF_X else 0)
                elif op & isa.BPF_X:
                    flow[pc] = (d, d | s)
                else:
                    flow[pc] = (d, d)
            elif kind == "end":
                flow[pc] = (d, d)
            elif kind == "lddw":
                flow[pc] = (d, 0)
            elif kind in ("ldx", "ldxs"):
                flow[pc] = (d, 0)
                seed[pc] = s
            elif kind == "exit":
                seed[pc] = 0 if self.func_of[pc] == 0 else 1
                flow[pc] = (0x7FF, 0)
            elif kind in ("call", "callx"):
                flow[pc] = (0b111111, 0)
                seed[pc] = use[pc]
            else:
                seed[pc] = use[pc]
            seed[pc] |= 1 << 10

        def transfer(pc, out):
            f = flow[pc]
            if f is None:
                v = out
            else:
                kill, gen = f
                v = out & ~kill
                if out & kill:
                    v |= gen
            return v | seed[pc]
        return cfg.backward_fixpoint(order, succ, transfer, [0] * n)

    # ------------------------------------------------------------ exploration
    def initial_state(self):
        regs = [UNINIT] * 11
        if self.hook is not None:
            regs[1] = Reg(PTR_CTX)
            mem_min = 0
        else:
            regs[1] = Reg(PTR_MEM)
            if self.mem_size is not None:
                regs[2] = scalar(const_bounds(self.mem_size), sym=0)
                mem_min = self.mem_size
            else:
                regs[2] = scalar((0, U32, 0, U32, 0, U32), sym=0)
                mem_min = 0
        regs[10] = Reg(PTR_STACK, k=0)
        frame = Frame(regs, bytearray(STACK), {}, -1, 0)
        return State([frame], mem_min, None, 0)

    def explore(self):
        self._probes = {}  # loop condition pc -> [counter, depth, step, cost, steady, left] (_loop_probe)
        self._loop_branches = {}  # loop condition pc -> (depth, both ways possible), last visit
        root_seg = Seg()
        root_cp = Checkpoint(None, None, root_seg, -1)
        visited = {}
        self.visited = visited
        work = [(self.initial_state(), 0, root_seg, root_cp, True)]
        limit = self.budget if self.budget is not None else self.complexity
        prune = self.prune
        insns = self.insns
        while work:
            state, pc, seg, cp, fresh = work.pop()
            while True:
                if pc in prune and not fresh:
                    res = self.checkpoint(state, pc, seg, cp, visited)
                    if res is None:
                        break
                    state, seg, cp = res
                fresh = False
                self.processed += 1
                if self.processed > self.complexity:
                    self.fail(pc, "the program is too complex to verify: gave up after %d instructions%s"
                              % (self.complexity, self._back_edge_text(pc, state)), "a loop may not be "
                              "bounded; simplify it or bound its counter with a constant", state)
                state.depth += 1
                seg.length += 1
                if state.depth > limit:
                    self.fail(pc, "a run may execute more than %d instructions%s" % (
                        limit, " (the budget)" if self.budget is not None else ""),
                        "loop not provably bounded: give the loop a constant bound", state)
                insn = insns[pc]
                kind = isa.op_kind(insn.opcode)
                if kind == "jcond":
                    in_loop = pc in self.in_loop
                    if in_loop:
                        self._loop_probe(state, pc, insn)
                        at_depth = state.depth
                    taken, fall = self.branch(state, pc, insn)
                    if in_loop:  # what _loop_probe asks of the loop's other conditions
                        self._loop_branches[pc] = (at_depth, taken is not None and fall is not None)
                    target = insn.jump_target(pc)
                    if taken is not None and fall is not None:
                        sa = Seg()
                        sb = Seg()
                        seg.succ.append(sa)
                        seg.succ.append(sb)
                        cp.branches += 1
                        taken.path = ((pc, target), taken.path)
                        work.append((taken, target, sa, cp, False))
                        fall.path = ((pc, pc + 1), fall.path)
                        state, pc, seg = fall, pc + 1, sb
                    elif taken is not None:
                        state, pc = taken, target
                    else:
                        state, pc = fall, pc + 1
                    continue
                if kind in ("ja", "ja32"):
                    pc = insn.jump_target(pc)
                    continue
                if kind == "exit":
                    nxt = self.do_exit(state, pc)
                    if self.pending is not None:
                        seg, cp = self.fork_pending(work, seg, cp)
                    if nxt is None:
                        self.finish(cp)
                        break
                    pc = nxt
                    continue
                if kind == "call" and insn.src == isa.BPF_PSEUDO_CALL:
                    pc = self.do_local_call(state, pc, insn)
                    continue
                if kind in ("ldabs", "ldind"):
                    self.do_ldabs(state, pc, insn)
                    pc += 1
                    continue
                self.step(state, pc, insn, kind)
                if self.extra_cost:
                    # A helper's declared extra cost counts against the budget like instructions.
                    seg.length += self.extra_cost
                    state.depth += self.extra_cost
                    self.extra_cost = 0
                if self.pending is not None:
                    seg, cp = self.fork_pending(work, seg, cp)
                pc += 2 if insn.opcode == isa.LDDW else 1
        self.max_path = self.longest(root_seg)
        if self.budget is not None and self.max_path > self.budget:
            raise Reject("pc 0: %s: a run may execute up to %d instructions, more than the budget of %d "
                         "\u2014 bound the loops more tightly" % (self.text(0), self.max_path, self.budget))

    # ------------------------------------------------------------ loops that cannot end in time
    def _back_edge_text(self, pc, state):
        """", back edge pc F -> pc T (file:line: text)": the jump closing the loop the path is in."""
        edge = None
        p = state.path if state is not None else None
        while p is not None:
            f, t = p[0]
            if t <= f and t <= pc <= f:
                edge = (f, t)
                break
            p = p[1]
        if edge is None:
            heads = [h for h in self.loop_heads if h <= pc]
            if not heads:
                return ""
            head = max(heads)
            srcs = [f for f in range(head, self.n) if head in self.succ[f]]
            if not srcs:
                return ""
            edge = (max(srcs), head)
        text = ", back edge pc %d -> pc %d" % edge
        for at in range(edge[0], edge[1] - 1, -1):
            info = self.line_info.get(at) if hasattr(self.line_info, "get") else None
            if info and len(info) >= 3:
                return text + " at %s:%s: %s" % (info[0], info[1], str(info[2]).strip())
        return text

    def _loop_probe(self, state, pc, insn):
        """Reject early a loop the verifier would walk until its limit: at a condition that
        compares a counter (a known value changing by the same step every iteration) with a
        bound, predict how many more iterations can still go either way. When that, times the
        iteration's instructions, exceeds what is left of the limit, and no other such condition
        seen in the last iteration ends sooner, fail now instead of after a million steps."""
        regs = state.frames[-1].regs
        a = regs[insn.dst]
        op = insn.opcode
        if op & isa.BPF_X:
            b = regs[insn.src]
        else:
            is64 = op & 0x07 == isa.BPF_JMP
            b = known(insn.imm & U64 if is64 else insn.imm & U32)
        if a.t != SCALAR or b.t != SCALAR or not (a.is_const() or b.is_const()):
            return
        counter, bound, creg = (a, b, insn.dst) if a.is_const() else (b, a, insn.src)
        code = op & 0xF0
        signed = code in (isa.BPF_JSGT, isa.BPF_JSGE, isa.BPF_JSLT, isa.BPF_JSLE)
        k = s64(counter.umin) if signed else counter.umin
        probes = self._probes
        rec = probes.get(pc)
        probes[pc] = new = [k, state.depth, 0, 0, 0, None]
        if rec is None:
            return
        step = k - rec[0]
        cost = state.depth - rec[1]
        new[2], new[3] = step, cost
        new[4] = rec[4] + 1 if step and cost > 0 and step == rec[2] and cost == rec[3] else 0
        if not step:
            return
        lo, hi = (bound.smin, bound.smax) if signed else (bound.umin, bound.umax)
        left = (hi - k) // step if step > 0 else (k - lo) // -step
        new[5] = left if left > 0 else None
        if new[4] < LOOP_PROBE_ITERS or new[5] is None or bound.is_const():
            return
        room = self.complexity - self.processed
        if left * cost <= room:
            return
        for other_pc in probes:
            o = probes[other_pc]
            if other_pc != pc and o[5] is not None and state.depth - o[1] <= cost and \
                    o[5] * cost <= room:
                return  # another condition of this loop may end it in time
        for other_pc in self._loop_branches:
            depth, undecided = self._loop_branches[other_pc]
            o = probes.get(other_pc)
            if other_pc != pc and undecided and state.depth - depth < cost and \
                    (o is None or o[5] is None or o[5] * cost <= room):
                return  # another open condition (not a counter running away) may end it
        self.fail(pc, "loop without a constant bound: it compares r%d (now %d, %+d every iteration "
                  "of %d instructions) with a value up to %d, so it may run %d more times — more "
                  "than the verifier's %d-instruction limit%s"
                  % (creg, k, step, cost, hi if step > 0 else lo, left, self.complexity,
                     self._back_edge_text(pc, state)),
                  "bound the loop with a constant (e.g. if (n > 64) n = 64;)", state)

    def fork_pending(self, work, seg, cp):
        """Queue the extra path a callback helper or a callback's return opened (self.pending)."""
        other, other_pc = self.pending
        self.pending = None
        sa = Seg()
        sb = Seg()
        seg.succ.append(sa)
        seg.succ.append(sb)
        cp.branches += 1
        work.append((other, other_pc, sa, cp, False))
        return sb, cp

    def enter_callback(self, state, pc, target, k, nr_max, ctx_reg):
        """A state that runs iteration ``k`` of a bpf_loop callback called from ``pc``."""
        st = state.copy()
        if len(st.frames) >= MAX_FRAMES:
            self.fail(pc, "call depth exceeds %d frames (bpf_loop callback)" % MAX_FRAMES, None, state)
        regs = [UNINIT] * 11
        regs[1] = known(k)
        regs[2] = ctx_reg
        regs[10] = Reg(PTR_STACK, k=len(st.frames))
        st.frames.append(Frame(regs, bytearray(STACK), {}, pc, target, (k, nr_max, ctx_reg)))
        st.path = ((pc, target), st.path)
        return st

    def finish(self, cp):
        while cp is not None:
            cp.branches -= 1
            if cp.branches > 0:
                return
            cp.complete = True
            cp = cp.parent

    def checkpoint(self, state, pc, seg, cp, visited):
        """Prune against a completed state that contains this one, or store this one."""
        entries = visited.get(pc)
        if entries is None:
            entries = visited[pc] = []
        live = self.live
        key = self.const_key(state, pc)
        cur_map = None
        for e in entries:
            if e.ckey != key:
                # Quick filter: a constant the stored state relies on must be the same here.
                if cur_map is None:
                    cur_map = dict(key)
                differs = False
                for i, v in e.ckey:
                    if cur_map.get(i) != v:
                        differs = True
                        break
                if differs:
                    continue
            if self.covers(e.state, state, live, pc):
                if e.complete:
                    seg.succ.append(e.seg)
                    self.finish(cp)
                    return None
                self.fail(pc, "infinite loop: this loop can run forever (the state at its start repeats)%s"
                          % self._back_edge_text(pc, state),
                          "make sure the loop counter changes and is compared with a constant bound", state)
        if pc not in self.loop_heads and state.depth - cp.depth < CHECKPOINT_EVERY and cp.pc >= 0:
            return state, seg, cp  # too close to the previous stored state: not worth storing
        joined_from = state
        if len(entries) >= JOIN_AFTER and pc not in self.in_loop:
            joined = self.join(entries[-1].state, state)
            if joined is not None:
                joined.path = state.path
                joined.depth = state.depth
                state = joined
        self.states += 1
        new_seg = Seg()
        seg.succ.append(new_seg)
        new_cp = Checkpoint(cp, state.copy(), new_seg, pc)
        new_cp.ckey = key if state is joined_from else self.const_key(state, pc)
        new_cp.depth = state.depth
        if len(entries) >= MAX_STATES_PER_PC:
            # Forget the oldest completed state (pruning is an optimisation), else the oldest
            # ancestor (only long-period loop detection is lost; the instruction bound remains).
            drop = 0
            for i in range(len(entries)):
                if entries[i].complete:
                    drop = i
                    break
            del entries[drop]
        entries.append(new_cp)
        return state, new_seg, new_cp

    def const_key(self, state, pc):
        """(register, value) of the live, precise registers holding a known number."""
        mask = self.live[pc] & self.precise[pc]
        regs = state.frames[-1].regs
        out = []
        for i in range(10):
            if mask >> i & 1:
                r = regs[i]
                if r.t == SCALAR and r.tm == 0:
                    out.append((i, r.tv))
        return tuple(out)

    def longest(self, root):
        """Longest path (instructions) through the explored graph, which is acyclic."""
        memo = {}
        stack = [(root, 0)]
        while stack:
            s, i = stack[-1]
            if i < len(s.succ):
                stack[-1] = (s, i + 1)
                c = s.succ[i]
                if id(c) not in memo:
                    stack.append((c, 0))
                continue
            stack.pop()
            best = 0
            for c in s.succ:
                v = memo.get(id(c), 0)
                if v > best:
                    best = v
            memo[id(s)] = s.length + best
        return memo[id(root)]

    # ------------------------------------------------------------ state comparison and join
    def covers(self, old, cur, live, pc):
        """True if every concrete state in ``cur`` is in ``old`` (so ``cur`` needs no more work)."""
        if len(old.frames) != len(cur.frames) or old.mem_min > cur.mem_min or len(old.refs) != len(cur.refs):
            return False
        idmap = {}
        top = len(old.frames) - 1
        for fi in range(top + 1):
            fo = old.frames[fi]
            fc = cur.frames[fi]
            if fo.callsite != fc.callsite:
                return False
            if fo.cb is not None or fc.cb is not None:
                if fo.cb is None or fc.cb is None or fo.cb[:2] != fc.cb[:2] or \
                        not reg_covers(fo.cb[2], fc.cb[2], idmap):
                    return False
            if fi == top:
                mask = live[pc]
                prec = self.precise[pc]
            else:
                ret = cur.frames[fi + 1].callsite + 1
                mask = (live[ret] if ret < self.n else 0x7FF) & 0b11111000000
                prec = self.precise[ret] if ret < self.n else 0x7FF
            ro = fo.regs
            rc = fc.regs
            for i in range(11):
                if mask >> i & 1:
                    o = ro[i]
                    if prec >> i & 1:
                        if not reg_covers(o, rc[i], idmap):
                            return False
                    elif o.t != NOT_INIT and o.t != rc[i].t:
                        return False
            so = fo.stack
            sc = fc.stack
            if so != sc:
                for i in range(STACK):
                    ko = so[i]
                    if ko == INVALID or ko == sc[i]:
                        continue
                    kc = sc[i]
                    if ko == MISC and (kc == ZERO or (kc == SPILL and fc.spills[i & ~7].t == SCALAR)):
                        continue
                    return False
            for key in fo.spills:
                if so[key] == SPILL and sc[key] == SPILL:
                    if not reg_covers(fo.spills[key], fc.spills[key], idmap):
                        return False
        return True

    def join(self, a, b):
        """A state containing both ``a`` and ``b``, or None if they do not have the same shape."""
        if len(a.frames) != len(b.frames) or a.refs != b.refs:
            return None
        frames = []
        for fi in range(len(a.frames)):
            fa = a.frames[fi]
            fb = b.frames[fi]
            if fa.callsite != fb.callsite or fa.cb is not None or fb.cb is not None:
                return None
            regs = []
            for i in range(11):
                r = reg_join(fa.regs[i], fb.regs[i])
                if r is None:
                    return None
                regs.append(r)
            stack = bytearray(STACK)
            spills = {}
            sa = fa.stack
            sb = fb.stack
            for i in range(STACK):
                x = sa[i]
                y = sb[i]
                if x == INVALID or y == INVALID:
                    stack[i] = INVALID
                elif x == y and x != SPILL:
                    stack[i] = x
                else:
                    stack[i] = MISC
            for key in fa.spills:
                if sa[key] == SPILL and sb[key] == SPILL and key in fb.spills:
                    r = reg_join(fa.spills[key], fb.spills[key])
                    if r is not None and r.t != NOT_INIT:
                        spills[key] = r
                        for j in range(8):
                            stack[key + j] = SPILL
                        continue
                    if fa.spills[key].t != SCALAR or fb.spills[key].t != SCALAR:
                        return None
            for key in fb.spills:
                if key not in spills and (fb.spills[key].t != SCALAR and sb[key] == SPILL
                                          and sa[key] != INVALID):
                    return None
            for key in fa.spills:
                if key not in spills and (fa.spills[key].t != SCALAR and sa[key] == SPILL
                                          and sb[key] != INVALID):
                    return None
            frames.append(Frame(regs, stack, spills, fa.callsite, fa.func))
        return State(frames, min(a.mem_min, b.mem_min), b.path, b.depth, b.refs)

    # ------------------------------------------------------------ register access helpers
    def read(self, state, pc, r):
        reg = state.frames[-1].regs[r]
        if reg.t == NOT_INIT:
            self.fail(pc, "r%d is read before it is written (uninitialised register)" % r,
                      "assign r%d first" % r if r > 5 or r == 0 else
                      "assign r%d first (r1-r5 do not survive a call)" % r, state)
        return reg

    def write(self, state, pc, r, reg):
        if r == 10:
            self.fail(pc, "r10 (the frame pointer) is read-only", "copy it to another register first",
                      state)
        state.frames[-1].regs[r] = reg

    def new_id(self):
        self.next_id += 1
        return self.next_id

    # ------------------------------------------------------------ one instruction
    def step(self, state, pc, insn, kind):
        op = insn.opcode
        if kind == "alu":
            self.do_alu(state, pc, insn)
        elif kind == "end":
            reg = self.read(state, pc, insn.dst)
            if reg.t != SCALAR:
                self.fail(pc, "byte swap of r%d, which is %s" % (insn.dst, describe(reg)),
                          "only numbers can be byte-swapped", state)
            self.write(state, pc, insn.dst, scalar(end_bounds(insn, reg.bounds())))
        elif kind == "lddw":
            self.do_lddw(state, pc, insn)
        elif kind in ("ldx", "ldxs"):
            base = self.read(state, pc, insn.src)
            size = isa.SIZE_BYTES[op & 0x18]
            val = self.mem_access(state, pc, insn.src, base, insn.off, size, "read", None)
            if kind == "ldxs" and size < 8:
                if val.tm == 0:
                    val = known(_sx(val.tv, size * 8) & U64)
                elif val.umax >= (1 << (size * 8 - 1)):
                    val = scalar(signed_bits(size * 8))
            self.write(state, pc, insn.dst, val)
        elif kind == "st":
            base = self.read(state, pc, insn.dst)
            size = isa.SIZE_BYTES[op & 0x18]
            self.mem_access(state, pc, insn.dst, base, insn.off, size, "write", known(insn.imm & U64))
        elif kind == "stx":
            base = self.read(state, pc, insn.dst)
            val = self.read(state, pc, insn.src)
            size = isa.SIZE_BYTES[op & 0x18]
            self.mem_access(state, pc, insn.dst, base, insn.off, size, "write", val)
        elif kind == "atomic":
            self.do_atomic(state, pc, insn)
        elif kind == "call":
            if insn.src == isa.BPF_PSEUDO_KFUNC_CALL:
                self.fail(pc, "kernel function calls are not supported", None, state)
            self.do_helper_call(state, pc, insn.imm)
        elif kind == "callx":
            self.read(state, pc, insn.dst)
            self.fail(pc, "call through a register (callx) cannot be verified",
                      "call helpers by number and functions with call local", state)
        else:
            self.fail(pc, "unknown instruction", None, state)

    def do_lddw(self, state, pc, insn):
        src = insn.src
        if src == 0:
            self.write(state, pc, insn.dst, known(insn.imm))
            return
        if src == isa.BPF_PSEUDO_FUNC:
            self.write(state, pc, insn.dst, Reg(PTR_FUNC, k=pc + 1 + isa.s32(insn.imm)))
            return
        k = isa.s32(insn.imm)
        if not 0 <= k < len(self.maps):
            self.fail(pc, "map index %d does not exist (the program has %d maps)" % (k, len(self.maps)),
                      None, state)
        if src in (isa.BPF_PSEUDO_MAP_FD, isa.BPF_PSEUDO_MAP_IDX):
            self.write(state, pc, insn.dst, Reg(CONST_MAP, k=k))
            return
        spec = _map_spec(self.maps[k])
        # Direct value access (Linux: map_direct_value_addr) exists only for single-entry array
        # maps (.data/.rodata/.bss and the like); hash, queue, ringbuf... values have no fixed address.
        mtype = getattr(spec, "type", None)
        if mtype != ty.BPF_MAP_TYPE_ARRAY or getattr(spec, "max_entries", 1) != 1:
            self.fail(pc, "lddw map_value on map %s of type %s%s: only a single-entry array map has a "
                      "directly addressable value" % (spec.name, ty.MAP_TYPE_NAMES.get(mtype, mtype),
                                                      "" if mtype != ty.BPF_MAP_TYPE_ARRAY else
                                                      " with %d entries" % spec.max_entries),
                      "use bpf_map_lookup_elem", state)
        off = isa.s32(insn.imm >> 32)
        size = getattr(spec, "value_size", 0)
        if not 0 <= off < size:
            self.fail(pc, "offset %d is outside the %d-byte value of map %s" % (off, size, spec.name),
                      None, state)
        self.write(state, pc, insn.dst, Reg(PTR_MAP_VALUE, off=off, k=k))

    def do_ldabs(self, state, pc, insn):
        if insn.opcode & 0xE0 == isa.BPF_IND:
            r = self.read(state, pc, insn.src)
            if r.t != SCALAR:
                self.fail(pc, "packet load index r%d is %s" % (insn.src, describe(r)), None, state)
        size = isa.SIZE_BYTES[insn.opcode & 0x18]
        self.write(state, pc, 0, scalar(unknown_bits(size * 8)))

    # ------------------------------------------------------------ ALU
    def do_alu(self, state, pc, insn):
        op = insn.opcode
        code = op & 0xF0
        is64 = op & 0x07 == isa.BPF_ALU64
        bits = 64 if is64 else 32
        d = insn.dst
        if code == isa.BPF_MOV:
            if op & isa.BPF_X:
                src = self.read(state, pc, insn.src)
            else:
                src = known(insn.imm & U64 if is64 else insn.imm & U32)
            if src.t != SCALAR:
                if is64 and insn.off == 0:
                    self.write(state, pc, d, src)
                    return
                self.fail(pc, "%s of r%d, which is %s, would turn a pointer into a number"
                          % ("32-bit move" if not is64 else "sign-extending move", insn.src, describe(src)),
                          "forbidden pointer arithmetic", state)
            if is64 and insn.off == 0 and op & isa.BPF_X and src.tm != 0:
                if src.id == 0:
                    src = src.with_bounds(src.bounds(), id=self.new_id())
                    state.frames[-1].regs[insn.src] = src
                self.write(state, pc, d, src)
                return
            if not is64 or insn.off:
                b = scalar_alu(isa.BPF_MOV, bits, insn.off, ZERO_B, src.bounds())
                keep = (not is64 and insn.off == 0 and src.umax <= U32) or (is64 and b == src.bounds())
                self.write(state, pc, d, scalar(b, src.rel if keep else None, src.sym if keep else None))
                return
            self.write(state, pc, d, src)
            return
        dreg = self.read(state, pc, d)
        if code == isa.BPF_NEG:
            sreg = known(0)
        elif op & isa.BPF_X:
            sreg = self.read(state, pc, insn.src)
        else:
            sreg = known(insn.imm & U64 if is64 else insn.imm & U32)
        if dreg.t == SCALAR and sreg.t == SCALAR:
            b = scalar_alu(code, bits, insn.off, dreg.bounds(), sreg.bounds())
            rel = sym = None
            if is64 and sreg.tm == 0 and code in (isa.BPF_ADD, isa.BPF_SUB):
                c = s64(sreg.tv) if code == isa.BPF_ADD else -s64(sreg.tv)
                if dreg.sym is not None:
                    sym = dreg.sym + c
                if dreg.rel is not None and b[3] >= 0 and b[2] >= 0 and dreg.smin >= 0:
                    rel = dreg.rel - c
                if dreg.id and b[5] != 0 and -(1 << 32) < dreg.dl + c < (1 << 32):
                    res = scalar(b, rel, sym)
                    res.id = dreg.id
                    res.dl = dreg.dl + c
                    self.write(state, pc, d, res)
                    return
            self.write(state, pc, d, scalar(b, rel, sym))
            return
        # pointer arithmetic
        name = isa.ALU_NAMES.get(code, "?")
        if not is64:
            self.fail(pc, "32-bit %s on a pointer (r%d is %s, r%d is %s)" % (
                name, d, describe(dreg), insn.src, describe(sreg)),
                "forbidden pointer arithmetic: use 64-bit add/sub on pointers", state)
        if code == isa.BPF_SUB and dreg.t != SCALAR and sreg.t != SCALAR:
            self.write(state, pc, d, self.ptr_diff(state, pc, insn, dreg, sreg))
            return
        if code not in (isa.BPF_ADD, isa.BPF_SUB) or (code == isa.BPF_SUB and dreg.t == SCALAR):
            self.fail(pc, "%s on a pointer (r%d is %s%s)" % (
                name, d, describe(dreg), "" if code == isa.BPF_NEG else ", the other operand is " +
                describe(sreg)), "forbidden pointer arithmetic: only adding or subtracting a number "
                "is allowed", state)
        if dreg.t != SCALAR and sreg.t != SCALAR:
            self.fail(pc, "adding two pointers (r%d and r%d)" % (d, insn.src),
                      "forbidden pointer arithmetic", state)
        ptr, num, ptr_reg = (dreg, sreg, d) if dreg.t != SCALAR else (sreg, dreg, insn.src)
        if ptr.t not in ARITH_OK:
            hint = "check it against NULL first" if ptr.t in (PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL) \
                else "forbidden pointer arithmetic"
            self.fail(pc, "arithmetic on r%d, which is %s" % (ptr_reg, describe(ptr)), hint, state)
        self.write(state, pc, d, self.ptr_add(state, pc, ptr, num, code == isa.BPF_SUB))

    def ptr_add(self, state, pc, ptr, num, sub):
        if num.tm == 0:
            c = s64(num.tv)
            off = ptr.off - c if sub else ptr.off + c
            if not -MAX_PTR_OFF < off < MAX_PTR_OFF:
                self.fail(pc, "pointer offset %d is out of range" % off, "forbidden pointer arithmetic",
                          state)
            r = ptr.with_bounds(ptr.bounds())
            r.off = off
            return r
        if ptr.t == PTR_MEM and not sub and num.sym is not None and num.smin >= 0 and ptr.tm == 0 \
                and ptr.tv == 0:
            return Reg(PTR_MEM_END, off=ptr.off + num.sym)
        nb = (_sub if sub else _add)(ptr.bounds(), num.bounds())
        rel = None
        if ptr.t == PTR_MEM and not sub and ptr.tm == 0 and ptr.tv == 0 and num.rel is not None:
            rel = num.rel
        r = ptr.with_bounds(nb)
        if ptr.t == PTR_MEM:
            r.id = self.new_id()
        r.rel = rel
        return r

    def ptr_diff(self, state, pc, insn, a, b):
        same = a.t == b.t and a.k == b.k and a.t in ARITH_OK
        if a.t == PTR_MEM_END and b.t == PTR_MEM and b.tm == 0 and b.tv == 0:
            return scalar((0, U32, 0, U32, 0, U32), sym=a.off - b.off)
        if not same:
            self.fail(pc, "subtracting pointers into different regions (r%d is %s, r%d is %s)" % (
                insn.dst, describe(a), insn.src, describe(b)), "forbidden pointer arithmetic", state)
        if a.tm == 0 and b.tm == 0:
            return known((a.off + s64(a.tv)) - (b.off + s64(b.tv)))
        return scalar(FULL)

    # ------------------------------------------------------------ branches
    def branch(self, state, pc, insn):
        """(taken_state, fallthrough_state); either is None when that way is impossible."""
        op = insn.opcode
        code = op & 0xF0
        is64 = op & 0x07 == isa.BPF_JMP
        d = insn.dst
        a = self.read(state, pc, d)
        if op & isa.BPF_X:
            b = self.read(state, pc, insn.src)
            s = insn.src
        else:
            b = known(insn.imm & U64 if is64 else insn.imm & U32)
            s = None
        if a.t == SCALAR and b.t == SCALAR:
            return self.branch_scalars(state, pc, insn, code, is64, d, a, s, b)
        return self.branch_pointers(state, pc, code, is64, d, a, s, b)

    def branch_scalars(self, state, pc, insn, code, is64, d, a, s, b):
        ab = a.bounds()
        bb = b.bounds()
        apply_a = apply_b = True
        if not is64:
            signed = code in (isa.BPF_JSGT, isa.BPF_JSGE, isa.BPF_JSLT, isa.BPF_JSLE)
            va = to_s32_view(ab) if signed else view32(ab)
            vb = to_s32_view(bb) if signed else view32(bb)
            taken, fall = refine(code, va, vb)
            apply_a = a.umax <= U32
            apply_b = b.umax <= U32
            if signed:
                taken = self._map32(taken, ab, bb)
                fall = self._map32(fall, ab, bb)
        else:
            taken, fall = refine(code, ab, bb)
        out = []
        for which, res in ((True, taken), (False, fall)):
            if res is None:
                out.append(None)
                continue
            st = state.copy() if which and fall is not None else state
            regs = st.frames[-1].regs
            if apply_a and d != 10:
                regs[d] = a.with_bounds(res[0])
            if s is not None and apply_b and s != 10:
                regs[s] = b.with_bounds(res[1])
            if is64 or (apply_a and apply_b):
                self.refine_len(st, code, which, d, a, s, b, regs)
            self.propagate_links(st, regs[d])
            if s is not None and s != d:
                self.propagate_links(st, regs[s])
            for r in (regs[d], regs[s] if s is not None else None):
                # A number known to equal length + k (no wrap) bounds the length from below.
                if r is not None and r.t == SCALAR and r.sym is not None and r.smin >= 0 and \
                        r.umin - r.sym > st.mem_min:
                    st.mem_min = r.umin - r.sym
            out.append(st)
        return out[0], out[1]

    def propagate_links(self, st, x):
        """Give every scalar linked to ``x`` what a comparison just proved about ``x``."""
        if x.t != SCALAR or not x.id:
            return
        for f, where, y in st.all_regs():
            if y is x or y.t != SCALAR or y.id != x.id:
                continue
            ny = None
            if y.dl == x.dl:
                m = _meet(y.bounds(), x.bounds())
                if m is not None:
                    ny = y.with_bounds(m)
            if x.rel is not None and x.smin >= 0 and y.smin >= 0 and x.smax < (1 << 62) and \
                    y.smax < (1 << 62):
                rel = x.rel + x.dl - y.dl  # x - y == x.dl - y.dl exactly: both small, non-negative
                base = ny if ny is not None else y
                if base.rel is None or base.rel < rel:
                    ny = base.with_bounds(base.bounds())
                    ny.rel = rel
            if ny is not None:
                st.replace(f, where, ny)

    def _map32(self, res, ab, bb):
        if res is None:
            return None
        na = from_s32_view(ab, res[0]) if ab[1] <= U32 else ab
        nb = from_s32_view(bb, res[1]) if bb[1] <= U32 else bb
        if na is None or nb is None:
            return None
        return (na, nb)

    def refine_len(self, st, code, taken, d, a, s, b, regs):
        """Comparisons against the input length (r2 and values derived from it)."""
        if a.sym is None and b.sym is None:
            return
        if (a.sym is None) == (b.sym is None):
            return
        op = _rel_op(code, taken)
        if op is None:
            return
        if a.sym is not None:  # L + k  OP  x   ==> flip to x OP' L + k
            op = _FLIP[op]
            x, xr, lenreg = b, s, a
        else:
            x, xr, lenreg = a, d, b
        k = lenreg.sym
        if op == "eq":
            op = "le"
        if op not in ("lt", "le") or lenreg.smin < 0:
            return
        if xr is not None:
            x = regs[xr]
        slack = 1 if op == "lt" else 0  # x + slack <= L + k (no wrap: L + k >= 0)
        rel = slack - k
        low = x.umin + rel
        if low > st.mem_min:
            st.mem_min = low
        if xr is not None and xr != 10:
            cur = regs[xr]
            if cur.t == SCALAR and cur.smin >= 0:
                r = cur.with_bounds(cur.bounds())
                r.rel = rel if cur.rel is None else max(cur.rel, rel)
                regs[xr] = r

    def branch_pointers(self, state, pc, code, is64, d, a, s, b):
        null_ok = code in (isa.BPF_JEQ, isa.BPF_JNE) and is64
        # NULL checks of map lookups and ring-buffer reservations
        for ptr, other in ((a, b), (b, a)):
            if ptr.t in (PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL, CONST_MAP_OR_NULL) and \
                    other.t == SCALAR and other.tm == 0 and other.tv == 0 and null_ok:
                is_null = state.copy()
                not_null = state
                self.mark_null(is_null, ptr.id, True)
                self.mark_null(not_null, ptr.id, False)
                if code == isa.BPF_JEQ:
                    return is_null, not_null
                return not_null, is_null
        for ptr, other in ((a, b), (b, a)):
            if ptr.t in NEVER_NULL and other.t == SCALAR and other.tm == 0 and other.tv == 0 and null_ok:
                if code == isa.BPF_JEQ:
                    return None, state
                return state, None
        # input buffer pointer against its end: proves bytes readable
        if is64 and {a.t, b.t} == {PTR_MEM, PTR_MEM_END}:
            taken = state.copy()
            self.refine_mem_end(taken, code, True, d, a, s, b)
            self.refine_mem_end(state, code, False, d, a, s, b)
            return taken, state
        return state.copy(), state

    def refine_mem_end(self, st, code, taken, d, a, s, b):
        op = _rel_op(code, taken)
        if op is None:
            return
        if a.t == PTR_MEM_END:
            op = _FLIP[op]
            p, end = b, a
        else:
            p, end = a, b
        if op == "eq":
            op = "le"
        if op not in ("lt", "le") or p.smin < 0 or p.smax >= (1 << 32):
            return
        slack = 1 if op == "lt" else 0  # p.off + var + slack <= L + end.off
        rel = p.off + slack - end.off
        if p.tm == 0:
            low = rel + s64(p.tv)
            if low > st.mem_min:
                st.mem_min = low
            return
        if p.smin >= 0 and p.umin + rel > st.mem_min:
            st.mem_min = p.umin + rel
        if p.id:
            for f, where, r in st.all_regs():
                if r.t == PTR_MEM and r.id == p.id:
                    nr = r.with_bounds(r.bounds())
                    nr.rel = rel if r.rel is None else max(r.rel, rel)
                    st.replace(f, where, nr)

    def mark_null(self, st, rid, is_null):
        if is_null:
            st.refs = tuple(x for x in st.refs if x[0] != rid)
        for f, where, r in st.all_regs():
            if r.t in (PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL, CONST_MAP_OR_NULL) and r.id == rid:
                if is_null:
                    st.replace(f, where, known(0))
                else:
                    nr = r.with_bounds(r.bounds())
                    nr.t = PTR_MAP_VALUE if r.t == PTR_MAP_VALUE_OR_NULL else (
                        CONST_MAP if r.t == CONST_MAP_OR_NULL else PTR_BUF)
                    st.replace(f, where, nr)

    # ------------------------------------------------------------ memory
    def mem_access(self, state, pc, regno, ptr, off, size, mode, value):
        """Check one access of ``size`` bytes at ``ptr + off``; returns the loaded value for reads."""
        t = ptr.t
        if t == SCALAR:
            if ptr.tm == 0 and ptr.tv == 0:
                self.fail(pc, "r%d is NULL: dereferencing a NULL pointer" % regno, None, state)
            self.fail(pc, "r%d is %s, not a pointer" % (regno, describe(ptr)),
                      "only pointers (context, stack, map values, the input) can be dereferenced", state)
        if t in (PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL):
            what = "map lookup result" if t == PTR_MAP_VALUE_OR_NULL else "ring buffer reservation"
            self.fail(pc, "r%d may be NULL (%s not checked)" % (regno, what),
                      "check it before dereferencing: if (!p) return 0;", state)
        if t in (CONST_MAP, PTR_FUNC, PTR_MEM_END, CONST_MAP_OR_NULL):
            self.fail(pc, "r%d is %s, which cannot be dereferenced" % (regno, describe(ptr)), None, state)
        if mode != "read" and value is not None and value.t not in (SCALAR,) and t != PTR_STACK:
            self.fail(pc, "storing a pointer (%s) into %s would leak it" % (describe(value), STORE_PLACES[t]),
                      "only numbers may be stored outside the stack", state)
        region = REGION_NAMES.get(t)
        if region is not None:
            s = self.access.get(pc)
            if s is None:
                s = self.access[pc] = set()
            s.add(region)
        lo = ptr.off + off + ptr.smin
        hi = ptr.off + off + ptr.smax + size
        var = not (ptr.tm == 0)
        if t == PTR_STACK:
            return self.stack_access(state, pc, regno, ptr, off, size, mode, value, lo, hi, var)
        if t == PTR_CTX:
            return self.ctx_access(state, pc, regno, ptr, off, size, mode)
        if t == PTR_MAP_VALUE:
            spec = _map_spec(self.maps[ptr.k])
            limit = spec.value_size
            what = "the %d-byte value of map %s" % (limit, spec.name)
            if mode != "read" and getattr(spec, "readonly", False):
                self.fail(pc, "map %s is read-only" % spec.name, "it holds constants (.rodata)", state)
        elif t == PTR_BUF:
            limit = ptr.k
            what = "the %d-byte record" % limit
        else:  # PTR_MEM
            limit = state.mem_min
            if ptr.rel is not None and var and ptr.off + off + size <= ptr.rel:
                limit = max(limit, hi)
            what = "the input buffer (%d bytes proven)" % state.mem_min if self.mem_size is None else \
                "the %d-byte input buffer" % self.mem_size
        if lo < 0 or hi > limit:
            if t == PTR_MEM and self.mem_size is None and lo >= 0:
                self.fail(pc, "%s %d bytes at input offset %s may go past the end of the input" % (
                    "reading" if mode == "read" else "writing", size, _range_text(lo, hi - size)),
                    "compare with the length in r2 first (e.g. if (len < %d) return 0;) or declare "
                    "--mem-size" % max(hi, 1), state)
            if var and (ptr.smax - ptr.smin) > (1 << 32):
                self.fail(pc, "r%d has an unbounded variable offset into %s" % (regno, what),
                          "bound the index with a comparison before adding it", state)
            self.fail(pc, "out-of-bounds access: %d bytes at offset %s of %s" % (
                size, _range_text(lo, hi - size), what), "check the offset against the size", state)
        if t == PTR_MAP_VALUE and self.insns[pc].opcode != isa.CALL:
            for lock in spin_lock_offsets(spec):
                if lo < lock + 4 and lock < hi:
                    self.fail(pc, "direct access to the struct bpf_spin_lock at offset %d of %s"
                              % (lock, what), "only bpf_spin_lock/bpf_spin_unlock may touch it", state)
        if mode == "read":
            return scalar(unknown_bits(size * 8))
        return None

    def ctx_access(self, state, pc, regno, ptr, off, size, mode):
        if ptr.tm != 0 or ptr.tv != 0:
            self.fail(pc, "variable offset into the context (r%d)" % regno,
                      "context fields must be accessed at constant offsets", state)
        if mode == "atomic":
            self.fail(pc, "atomic operation on the context", None, state)
        o = ptr.off + off
        layout = self.hook
        f = layout.field_at(o, size) if o >= 0 else None
        if f is None:
            names = ", ".join("%s@%d/%d" % (x.name, x.offset, x.size) for x in layout.fields)
            self.fail(pc, "invalid context access: offset %d size %d is not inside a field of the %s context"
                      % (o, size, layout.name), "fields: " + names, state)
        if mode == "write":
            if not f.writable:
                self.fail(pc, "field %s of the %s context is read-only" % (f.name, layout.name), None, state)
            if f.offset != o or f.size != size:
                self.fail(pc, "write to part of field %s (offset %d size %d; the field is %d bytes at %d)" % (
                    f.name, o, size, f.size, f.offset), "write the whole field", state)
            return None
        return scalar(unknown_bits(size * 8))

    def stack_access(self, state, pc, regno, ptr, off, size, mode, value, lo, hi, var):
        if var and (ptr.smax - ptr.smin) > STACK:
            self.fail(pc, "r%d has an unbounded variable offset into the stack" % regno,
                      "bound the index with a comparison before adding it", state)
        if lo < -STACK or hi > 0:
            self.fail(pc, "stack access out of bounds: %d byte(s) at fp%s (the stack is fp-512 to fp-1)" % (
                size, _range_text(lo, hi - size, signed=True)),
                "each function has 512 bytes of stack" if lo < -STACK else
                "stack offsets must be negative", state)
        frame = state.frames[ptr.k]
        func = frame.func
        if -lo > self.max_stack.get(func, 0):
            self.max_stack[func] = -lo
        stack = frame.stack
        spills = frame.spills
        a = lo + STACK
        b = hi + STACK
        if mode == "read" or mode == "atomic":
            if not var and size == 8 and a % 8 == 0 and stack[a] == SPILL:
                reg = spills[a]
                if mode == "read":
                    return reg
            zeros = True
            for i in range(a, b):
                kind = stack[i]
                if kind == INVALID:
                    self.fail(pc, "reads uninitialised stack at fp%d" % (i - STACK),
                              "initialise the variable before using it", state)
                if kind != ZERO:
                    zeros = False
                if kind == SPILL and mode == "atomic" and spills[i & ~7].t != SCALAR:
                    self.fail(pc, "atomic operation on a saved pointer at fp%d" % ((i & ~7) - STACK), None,
                              state)
                if kind == SPILL and mode == "read" and spills[i & ~7].t != SCALAR:
                    # Linux: "invalid size of register fill" (even for root): part of a saved
                    # pointer read as a number would leak its address.
                    self.fail(pc, "invalid size of register fill: %d-byte read of the %s saved at fp%d"
                              % (size, describe(spills[i & ~7]), (i & ~7) - STACK),
                              "read a saved pointer back whole (8 bytes, same offset)", state)
            if mode == "read":
                if zeros:
                    return known(0)
                if not var and stack[a] == SPILL and (a & ~7) == ((b - 1) & ~7):
                    sp = spills[a & ~7]
                    if sp.t == SCALAR and sp.tm == 0:
                        return known((sp.tv >> ((a & 7) * 8)) & ((1 << (size * 8)) - 1))
                return scalar(unknown_bits(size * 8))
            value = scalar(FULL)
        # write (or atomic update)
        if var:
            if value.t != SCALAR:
                self.fail(pc, "storing a pointer at a variable stack offset", "forbidden", state)
            zero = value.tm == 0 and value.tv == 0
            for i in range(a, b):
                kind = stack[i]
                if kind == SPILL:
                    self._drop_spill(stack, spills, i & ~7)
                    kind = MISC
                if kind == ZERO and not zero:
                    stack[i] = MISC
            return None
        if value is not None and value.t != SCALAR and not (size == 8 and a % 8 == 0):
            # Only a whole, aligned 8-byte slot can hold a pointer; the bytes of a narrower or
            # misaligned store would read back as a number, leaking part of the address.
            self.fail(pc, "storing %s as %d byte(s) at fp%d: a pointer is saved whole, in an aligned "
                      "8-byte slot" % (describe(value), size, lo), "save it with stxdw at a multiple of 8",
                      state)
        for key in range(a & ~7, b, 8):
            if key in spills and stack[key] == SPILL:
                self._drop_spill(stack, spills, key)
        if size == 8 and a % 8 == 0 and mode == "write":
            spills[a] = value
            for i in range(a, b):
                stack[i] = SPILL
            return None
        if value.t != SCALAR:  # part of an address would be readable back as a number (Linux refuses too)
            self.fail(pc, "storing %d byte(s) of a pointer (%s) at fp%d would leak part of it" % (
                size, describe(value), lo), "save pointers whole: 8 bytes at an 8-byte aligned offset", state)
        kind = ZERO if (value.t == SCALAR and value.tm == 0 and value.tv == 0 and mode == "write") else MISC
        for i in range(a, b):
            stack[i] = kind
        return None

    def _drop_spill(self, stack, spills, key):
        # The bytes of a saved pointer that a partial write leaves are unreadable (not numbers):
        # reading them would leak part of the address.
        rest = MISC if spills.pop(key).t == SCALAR else INVALID
        for j in range(key, key + 8):
            if stack[j] == SPILL:
                stack[j] = rest

    def do_atomic(self, state, pc, insn):
        op = insn.opcode
        size = isa.SIZE_BYTES[op & 0x18]
        base = self.read(state, pc, insn.dst)
        src = self.read(state, pc, insn.src)
        code = insn.imm & U32
        if src.t != SCALAR:
            self.fail(pc, "r%d is %s: atomic operations take numbers" % (insn.src, describe(src)),
                      "storing pointers this way would leak them", state)
        if code == isa.BPF_CMPXCHG:
            r0 = self.read(state, pc, 0)
            if r0.t != SCALAR:
                self.fail(pc, "r0 is %s: cmpxchg compares numbers" % describe(r0), None, state)
        if base.t not in (PTR_STACK, PTR_MAP_VALUE, PTR_MEM, PTR_BUF):
            if base.t in (SCALAR, PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL, NOT_INIT):
                self.mem_access(state, pc, insn.dst, base, insn.off, size, "atomic", src)
            self.fail(pc, "atomic operation on %s" % describe(base),
                      "atomics work on the stack and map values", state)
        self.mem_access(state, pc, insn.dst, base, insn.off, size, "atomic", src)
        result = scalar(unknown_bits(size * 8))
        if code == isa.BPF_CMPXCHG:
            self.write(state, pc, 0, result)
        elif code & isa.BPF_FETCH:
            self.write(state, pc, insn.src, result)

    # ------------------------------------------------------------ calls
    def do_local_call(self, state, pc, insn):
        target = pc + 1 + insn.imm
        held = _held_lock(state)
        if held is not None:
            self.fail(pc, "function call while holding the bpf_spin_lock taken at pc %d" % held[1],
                      "unlock before calling (as in Linux)", state)
        if len(state.frames) >= MAX_FRAMES:
            self.fail(pc, "call depth exceeds %d frames" % MAX_FRAMES,
                      "flatten the call chain", state)
        caller = state.frames[-1]
        regs = [UNINIT] * 11
        for i in range(1, 6):
            regs[i] = caller.regs[i]
        regs[10] = Reg(PTR_STACK, k=len(state.frames))
        state.frames.append(Frame(regs, bytearray(STACK), {}, pc, target))
        return target

    def _spin_lock_arg(self, state, pc, spec, r, reg, held):
        """bpf_spin_lock/unlock(&value->lock): a map value pointer at a ``struct bpf_spin_lock``
        of the value's BTF type; one lock at a time, unlocked by the same pointer."""
        if reg.t != PTR_MAP_VALUE or reg.tm != 0:
            self._arg_fail(state, pc, spec, r, reg, "a pointer to a struct bpf_spin_lock in a map value")
        off = reg.off + reg.tv
        if off not in spin_lock_offsets(_map_spec(self.maps[reg.k])):
            self.fail(pc, "%s: r%d points to offset %d of map %s's value, where there is no struct "
                      "bpf_spin_lock" % (spec.name, r, off, getattr(self.maps[reg.k], "name", "?")),
                      "the value's BTF type must have a struct bpf_spin_lock member there", state)
        lock = (("lock", reg.k, off), pc)
        if spec.name == "spin_lock":
            if held is not None:
                self.fail(pc, "bpf_spin_lock while already holding the lock taken at pc %d" % held[1],
                          "hold at most one lock at a time (as in Linux)", state)
            state.refs = state.refs + (lock,)
            return
        if held is None or held[0] != lock[0]:
            self.fail(pc, "bpf_spin_unlock of a lock that is not held" if held is None else
                      "bpf_spin_unlock of a different lock than the one taken at pc %d" % held[1],
                      None, state)
        state.refs = tuple(x for x in state.refs if x is not held)

    def do_exit(self, state, pc):
        frame = state.frames[-1]
        r0 = frame.regs[0]
        if r0.t == NOT_INIT:
            self.fail(pc, "r0 is not set at exit", "set the return value (r0) before exit", state)
        depth = len(state.frames) - 1
        held = _held_lock(state)
        if held is not None:
            self.fail(pc, "exit while holding the bpf_spin_lock taken at pc %d" % held[1],
                      "call bpf_spin_unlock on every path before returning", state)
        if depth == 0:
            if state.refs:
                self.fail(pc, "the ring buffer record reserved at pc %d is never submitted or discarded"
                          % state.refs[0][1], "call bpf_ringbuf_submit or bpf_ringbuf_discard on every path",
                          state)
            if r0.t != SCALAR:
                self.fail(pc, "r0 is %s: returning a pointer leaks an address" % describe(r0),
                          "return a number", state)
            return None
        if r0.t == PTR_STACK and r0.k == depth:
            self.fail(pc, "returns a pointer to its own stack, which is gone after the return", None, state)
        if frame.cb is not None and (r0.t != SCALAR or r0.umax > 1):
            # Linux checks the same range (bpf_loop's callback_ret_range is [0, 1]).
            self.fail(pc, "a bpf_loop callback must return a number, 0 (continue) or 1 (stop), not %s"
                      % describe(r0), "return 0 or 1", state)
        state.frames.pop()
        for _f, _where, r in state.all_regs():
            if r.t == PTR_STACK and r.k >= depth:
                self.fail(pc, "a pointer to the returning function's stack is kept by its caller",
                          "it would dangle after the return", state)
        if frame.cb is not None:
            # Back in bpf_loop: it may call the callback again (next index) or return.
            k, nr_max, ctx_reg = frame.cb
            if k + 1 < nr_max:
                self.pending = (self.enter_callback(state, frame.callsite, frame.func, k + 1, nr_max, ctx_reg),
                                frame.func)
            return frame.callsite + 1
        caller = state.frames[-1]
        caller.regs[0] = r0
        for i in range(1, 6):
            caller.regs[i] = UNINIT
        return frame.callsite + 1

    def do_helper_call(self, state, pc, hid):
        spec = self.helpers.get(hid) if self.helpers is not None else None
        if spec is None:
            self.fail(pc, "unknown helper %d" % hid, "no helper with this number exists for this program "
                      "(wrong hook, or a Linux helper the runtime does not provide)", state)
        regs = state.frames[-1].regs
        held = _held_lock(state)
        if held is not None and spec.name not in ("spin_lock", "spin_unlock"):
            self.fail(pc, "%s called while holding the bpf_spin_lock taken at pc %d" % (spec.name, held[1]),
                      "no helper calls between bpf_spin_lock and bpf_spin_unlock (as in Linux)", state)
        map_spec = None
        map_arg = None
        release = None
        callback = None
        args = spec.args
        ret_size = None
        for i in range(len(args)):
            kind = args[i]
            r = i + 1
            if kind == ty.ARG_DONTCARE:
                continue
            reg = regs[r]
            if reg.t == NOT_INIT:
                self.fail(pc, "argument %d (r%d) of %s is not set (uninitialised register)" % (
                    r, r, spec.name), "expected %s" % spec.signature(), state)
            if kind == ty.ARG_ANYTHING:
                continue
            if kind == ty.ARG_CONST_MAP_PTR:
                if reg.t != CONST_MAP:
                    self._arg_fail(state, pc, spec, r, reg, "a map (lddw rN, map_fd K)")
                map_arg = reg.k
                map_spec = _map_spec(self.maps[reg.k])
                mtype = getattr(map_spec, "type", None)
                allowed = spec.map_types
                if hid == BPF_FUNC_TAIL_CALL:
                    if mtype != ty.BPF_MAP_TYPE_PROG_ARRAY:
                        self.fail(pc, "tail call through map %s of type %s, which is not a prog_array" % (
                            map_spec.name, ty.MAP_TYPE_NAMES.get(mtype, mtype)), "tail-call misuse", state)
                elif mtype == ty.BPF_MAP_TYPE_PROG_ARRAY:
                    self.fail(pc, "prog_array map %s passed to %s" % (map_spec.name, spec.name),
                              "tail-call misuse: program arrays are only for bpf_tail_call", state)
                if allowed is not None and mtype not in allowed:
                    self.fail(pc, "%s does not accept map %s of type %s" % (
                        spec.name, map_spec.name, ty.MAP_TYPE_NAMES.get(mtype, mtype)), None, state)
                continue
            if kind in (ty.ARG_PTR_TO_MAP_KEY, ty.ARG_PTR_TO_MAP_VALUE, ty.ARG_PTR_TO_UNINIT_MAP_VALUE):
                if map_spec is None:
                    self.fail(pc, "helper %s: map argument missing before r%d" % (spec.name, r), None, state)
                size = map_spec.key_size if kind == ty.ARG_PTR_TO_MAP_KEY else map_spec.value_size
                self.check_mem_arg(state, pc, spec, r, reg, size, size,
                                   "write" if kind == ty.ARG_PTR_TO_UNINIT_MAP_VALUE else "read", False)
                continue
            if kind in ty.MEM_ARG_KINDS or kind == ty.ARG_PTR_TO_STACK_OR_NULL:
                if kind == ty.ARG_PTR_TO_STACK_OR_NULL:
                    if reg.t == SCALAR and reg.tm == 0 and reg.tv == 0:
                        continue
                    if reg.t != PTR_STACK:
                        self._arg_fail(state, pc, spec, r, reg, "a pointer to the stack or NULL")
                    continue
                nxt = args[i + 1] if i + 1 < len(args) else None
                if nxt not in ty.SIZE_ARG_KINDS:
                    self.fail(pc, "helper %s: memory argument r%d has no size argument" % (spec.name, r),
                              None, state)
                sz = regs[r + 1]
                if sz.t != SCALAR:
                    self._arg_fail(state, pc, spec, r + 1, sz, "a size (a number)")
                zero_ok = nxt == ty.ARG_CONST_SIZE_OR_ZERO
                if sz.umin == 0 and not zero_ok:
                    self.fail(pc, "argument %d (r%d) of %s may be 0, but the size must be positive" % (
                        r + 1, r + 1, spec.name), "check the size first", state)
                if sz.umax > (1 << 29):
                    self.fail(pc, "argument %d (r%d) of %s is an unbounded size (%s)" % (
                        r + 1, r + 1, spec.name, describe(sz)), "bound it with a comparison first", state)
                if kind == ty.ARG_PTR_TO_MEM_OR_NULL and reg.t == SCALAR and reg.tm == 0 and reg.tv == 0:
                    if sz.umax != 0:
                        self.fail(pc, "NULL memory argument r%d of %s with a non-zero size" % (r, spec.name),
                                  None, state)
                    continue
                if sz.umax == 0:
                    if reg.t == SCALAR:
                        self._arg_fail(state, pc, spec, r, reg, "a pointer to memory")
                    continue
                self.check_mem_arg(state, pc, spec, r, reg, sz.umax, sz.umin,
                                   "write" if kind == ty.ARG_PTR_TO_UNINIT_MEM else "read", True)
                continue
            if kind in ty.SIZE_ARG_KINDS:
                continue
            if kind == ty.ARG_CONST_ALLOC_SIZE_OR_ZERO:
                if reg.t != SCALAR or reg.tm != 0:
                    self._arg_fail(state, pc, spec, r, reg, "a constant size")
                if spec.ret_size_arg == r:
                    ret_size = reg.tv
                continue
            if kind == ty.ARG_PTR_TO_CTX:
                # Standalone runs have no context: the input buffer (r1 at entry) stands in for it.
                ctx_type = PTR_CTX if self.hook is not None else PTR_MEM
                if reg.t != ctx_type or reg.off != 0 or reg.tm != 0 or reg.tv != 0:
                    self._arg_fail(state, pc, spec, r, reg, "the context pointer (r1 at entry)")
                continue
            if kind == ty.ARG_PTR_TO_FUNC:
                if spec.name not in ("loop", "bpf_loop") or tuple(args) != BPF_LOOP_ARGS:
                    self.fail(pc, "helper %s takes a callback, which this verifier only follows for bpf_loop"
                              % spec.name, None, state)
                if reg.t != PTR_FUNC:
                    self._arg_fail(state, pc, spec, r, reg, "a function (lddw rN, func LABEL)")
                callback = reg.k
                continue
            if kind == ty.ARG_PTR_TO_SPIN_LOCK:
                self._spin_lock_arg(state, pc, spec, r, reg, held)
                continue
            if kind == ty.ARG_PTR_TO_RINGBUF_MEM:
                if reg.t != PTR_BUF or reg.off != 0 or reg.tm != 0 or reg.tv != 0:
                    self._arg_fail(state, pc, spec, r, reg, "a record returned by ringbuf_reserve")
                release = reg.id
                continue
            self.fail(pc, "helper %s: argument kind %s is not supported" % (spec.name, kind), None, state)
        if hid == BPF_FUNC_TAIL_CALL and len(state.frames) > 1:
            self.fail(pc, "tail call from inside a bpf-to-bpf function", "tail-call misuse: tail calls are "
                      "only allowed in the main function", state)
        if hid == BPF_FUNC_TAIL_CALL and state.refs:
            self.fail(pc, "tail call while the ring buffer record reserved at pc %d is not submitted"
                      % state.refs[0][1], "tail-call misuse: submit or discard it first", state)
        if release is not None:
            # The record is gone after submit/discard: every copy of the pointer becomes a number.
            state.refs = tuple(x for x in state.refs if x[0] != release)
            for f, where, reg in state.all_regs():
                if reg.t == PTR_BUF and reg.id == release:
                    state.replace(f, where, scalar(FULL))
        # the call: r0 by the return kind, r1-r5 clobbered
        ret = spec.ret
        if ret == ty.RET_INTEGER:
            r0 = scalar(FULL)
        elif ret == ty.RET_VOID:
            r0 = UNINIT
        elif ret == ty.RET_PTR_TO_MAP_VALUE_OR_NULL:
            if map_spec is None:
                self.fail(pc, "helper %s returns a map value but takes no map" % spec.name, None, state)
            inner = getattr(map_spec, "inner", None)
            if inner is not None and map_spec.type in (ty.BPF_MAP_TYPE_ARRAY_OF_MAPS,
                                                      ty.BPF_MAP_TYPE_HASH_OF_MAPS):
                if not 0 <= inner[0] < len(self.maps):
                    self.fail(pc, "map %s: its inner map template %d does not exist"
                              % (map_spec.name, inner[0]), None, state)
                r0 = Reg(CONST_MAP_OR_NULL, k=inner[0], id=self.new_id())  # inner map, or NULL
            else:
                r0 = Reg(PTR_MAP_VALUE_OR_NULL, k=map_arg, id=self.new_id())
        else:
            if ret_size is None:
                idx = spec.ret_size_arg
                sz = regs[idx] if idx else None
                if sz is None or sz.t != SCALAR or sz.tm != 0:
                    self.fail(pc, "the size of the memory %s returns must be a constant" % spec.name,
                              None, state)
                ret_size = sz.tv
            r0 = Reg(PTR_BUF_OR_NULL, k=ret_size, id=self.new_id())
            state.refs = state.refs + ((r0.id, pc),)
        self.extra_cost = getattr(spec, "cost", 0) or 0
        ctx_reg = regs[3]
        nr = regs[1]
        for i in range(1, 6):
            regs[i] = UNINIT
        regs[0] = r0
        if callback is not None:
            nr_max = min(nr.umax if nr.t == SCALAR else U64, BPF_MAX_LOOPS)
            limit = self.budget if self.budget is not None else self.complexity
            if nr_max > 0 and state.depth + nr_max > limit:
                self.fail(pc, "bpf_loop may call its callback up to %d times, more than %d instructions "
                          "allow" % (nr_max, limit), "bound the number of iterations (r1) with a comparison "
                          "or a mask first", state)
            if nr_max > 0:
                self.pending = (self.enter_callback(state, pc, callback, 0, nr_max, ctx_reg), callback)

    def _arg_fail(self, state, pc, spec, r, reg, expected):
        self.fail(pc, "argument %d (r%d) of %s is %s, expected %s" % (
            r, r, spec.name, describe(reg), expected),
                  spec.signature(), state)

    def check_mem_arg(self, state, pc, spec, r, reg, size, min_size, mode, var_size):
        """A helper will access ``size`` bytes at ``reg``; initialised if read, marked written after."""
        if reg.t in (SCALAR, NOT_INIT, CONST_MAP, PTR_FUNC, PTR_MEM_END, PTR_MAP_VALUE_OR_NULL,
                     PTR_BUF_OR_NULL):
            if reg.t in (PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL):
                self.fail(pc, "argument %d (r%d) of %s may be NULL" % (r, r, spec.name),
                          "check it before passing it", state)
            self._arg_fail(state, pc, spec, r, reg, "a pointer to %d bytes" % size)
        if reg.t == PTR_CTX:
            self._arg_fail(state, pc, spec, r, reg, "a pointer to the stack or a map value")
        if mode == "write" and reg.t == PTR_MAP_VALUE and \
                getattr(_map_spec(self.maps[reg.k]), "readonly", False):
            self.fail(pc, "helper %s would write into read-only map %s" % (spec.name,
                                                                           _map_spec(self.maps[reg.k]).name),
                      None, state)
        if reg.t == PTR_STACK and mode == "write":
            lo = reg.off + reg.smin
            hi = reg.off + reg.smax + size
            if lo < -STACK or hi > 0:
                self.fail(pc, "argument %d (r%d) of %s: %d bytes at fp%s do not fit in the stack" % (
                    r, r, spec.name, size, _range_text(lo, hi - size, signed=True)), None, state)
            frame = state.frames[reg.k]
            if -lo > self.max_stack.get(frame.func, 0):
                self.max_stack[frame.func] = -lo
            # Saved registers the helper may overwrite are gone; bytes it surely writes (a constant
            # offset, the minimum size) become initialised; zero bytes it may touch are no longer 0.
            a = lo + STACK
            b = hi + STACK
            for key in range(a & ~7, b, 8):
                if key in frame.spills and frame.stack[key] == SPILL:
                    self._drop_spill(frame.stack, frame.spills, key)
            for i in range(a, b):
                if frame.stack[i] == ZERO:
                    frame.stack[i] = MISC
            if reg.tm == 0:
                for i in range(a, a + min_size):
                    frame.stack[i] = MISC
            return
        # a read of `size` bytes must be in bounds (and initialised on the stack), byte by byte check
        saved_access = self.access.get(pc)
        if reg.t == PTR_STACK:
            lo = reg.off + reg.smin
            hi = reg.off + reg.smax + size
            if lo < -STACK or hi > 0:
                self.fail(pc, "argument %d (r%d) of %s: %d bytes at fp%s do not fit in the stack" % (
                    r, r, spec.name, size, _range_text(lo, hi - size, signed=True)), None, state)
            frame = state.frames[reg.k]
            if -lo > self.max_stack.get(frame.func, 0):
                self.max_stack[frame.func] = -lo
            for i in range(lo + STACK, hi + STACK):
                if frame.stack[i] == INVALID:
                    self.fail(pc, "argument %d (r%d) of %s points to uninitialised stack at fp%d" % (
                        r, r, spec.name, i - STACK), "initialise all %d bytes first (e.g. = {0})" % size,
                        state)
            return
        probe = reg
        if size > 0:
            self.mem_access(state, pc, r, probe, 0, size, mode, scalar(FULL) if mode == "write" else None)
        if saved_access is None:
            self.access.pop(pc, None)
        else:
            self.access[pc] = saved_access


def _held_lock(state):
    """The (("lock", map, offset), pc) entry of the bpf_spin_lock held, or None."""
    for entry in state.refs:
        if isinstance(entry[0], tuple):
            return entry
    return None


def spin_lock_offsets(spec):
    """Offsets of the top-level ``struct bpf_spin_lock`` members of a map's value type."""
    desc = getattr(spec, "value_type", None) or {}
    return [m.get("offset", 0) for m in desc.get("members", ())
            if (m.get("type") or {}).get("name") == "bpf_spin_lock"]


class VerifierErrorList(Exception):
    def __init__(self, errors):
        super().__init__(errors[0])
        self.errors = errors


def _error(errors):
    exc = VerifierError(errors[0])
    exc.errors = list(errors)
    return exc


def _range_text(lo, hi, signed=False):
    if lo == hi:
        return ("%+d" % lo) if signed else "%d" % lo
    if signed:
        return "%+d..%+d" % (lo, hi)
    return "%d..%d" % (lo, hi)


def reg_covers(o, c, idmap):
    """Does abstract register ``o`` (verified safe) contain every value of ``c``?"""
    if o.t == NOT_INIT:
        return True
    if o.t != c.t:
        return False
    if o.t == SCALAR:
        if o.umin > c.umin or o.umax < c.umax or o.smin > c.smin or o.smax < c.smax:
            return False
        if not T.contains((o.tv, o.tm), (c.tv, c.tm)):
            return False
        if o.sym is not None and o.sym != c.sym:
            return False
        if o.rel is not None and (c.rel is None or c.rel < o.rel):
            return False
        if o.id:
            # the old state relied on this link: the new one must link the same way
            if c.id == 0 or o.dl != c.dl:
                return False
            prev = idmap.get(o.id)
            back = idmap.get(-c.id - 1)
            if prev is None and back is None:
                idmap[o.id] = c.id
                idmap[-c.id - 1] = o.id
            elif prev != c.id or back != o.id:
                return False
        return True
    if o.k != c.k or o.off != c.off:
        return False
    if o.umin > c.umin or o.umax < c.umax or o.smin > c.smin or o.smax < c.smax:
        return False
    if not T.contains((o.tv, o.tm), (c.tv, c.tm)):
        return False
    if o.rel is not None and (c.rel is None or c.rel < o.rel):
        return False
    if o.id or c.id:
        if o.t in (PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL, PTR_MEM, PTR_BUF):
            prev = idmap.get(o.id)
            back = idmap.get(-c.id - 1)
            if prev is None and back is None:
                idmap[o.id] = c.id
                idmap[-c.id - 1] = o.id
            elif prev != c.id or back != o.id:
                return False
    return True


def reg_join(a, b):
    """The smallest abstract value containing ``a`` and ``b``; NOT_INIT if either is; None if
    they cannot be merged (different pointer kinds)."""
    if a.t == NOT_INIT or b.t == NOT_INIT:
        return UNINIT
    if a.t != b.t:
        return None
    if a.t != SCALAR and (a.k != b.k or a.off != b.off):
        return None
    if a.t in (PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL, PTR_BUF) and a.id != b.id:
        return None
    t = T.union((a.tv, a.tm), (b.tv, b.tm))
    bd = sync(min(a.umin, b.umin), max(a.umax, b.umax), min(a.smin, b.smin), max(a.smax, b.smax), t[0], t[1])
    if bd is None:
        bd = from_tnum(t)
    r = a.with_bounds(bd)
    r.rel = None if a.rel is None or b.rel is None else min(a.rel, b.rel)
    r.sym = a.sym if a.sym == b.sym else None
    if a.id != b.id or a.dl != b.dl:
        r.id = 0
        r.dl = 0
        if a.t == PTR_MEM:
            r.rel = None
    return r


def _rel_op(code, taken):
    """The relation ``a OP b`` that holds on this branch, as lt/le/gt/ge/eq (unsigned only)."""
    if code == isa.BPF_JEQ:
        return "eq" if taken else None
    if code == isa.BPF_JNE:
        return None if taken else "eq"
    table = {isa.BPF_JGT: ("gt", "le"), isa.BPF_JGE: ("ge", "lt"), isa.BPF_JLT: ("lt", "ge"),
             isa.BPF_JLE: ("le", "gt")}
    pair = table.get(code)
    if pair is None:
        return None
    return pair[0] if taken else pair[1]


_FLIP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq"}
