"""The verifier's abstract register: a type (number, or pointer into which region) and, for
numbers and pointer offsets, the value ranges of ranges.py; with the words messages use for them.
"""

from iotbpf.ebpf import isa
from iotbpf.ebpf.ranges import S64_MAX, SIGN, const_bounds, s64

MAX_PTR_OFF = 1 << 29
STACK = isa.STACK_SIZE
MAX_FRAMES = isa.MAX_CALL_FRAMES

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
        """A register of type ``t``; the other fields as in the class docstring."""
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
        """The value bounds as a ranges.py tuple."""
        return (self.umin, self.umax, self.smin, self.smax, self.tv, self.tm)

    def with_bounds(self, b, **kw):
        """A copy with bounds ``b`` and the fields named in ``kw`` replaced."""
        r = Reg(self.t, self.off, b[0], b[1], b[2], b[3], b[4], b[5], self.id, self.k, self.rel,
                self.sym, self.dl)
        for name in kw:
            setattr(r, name, kw[name])
        return r

    def is_const(self):
        """True if every bit is known (one value)."""
        return self.tm == 0

    def __repr__(self):
        """The register in words (for debugging)."""
        return "Reg(%s)" % describe(self)


UNINIT = Reg(NOT_INIT)


def scalar(b, rel=None, sym=None):
    """A number register with bounds ``b``."""
    return Reg(SCALAR, 0, b[0], b[1], b[2], b[3], b[4], b[5], 0, 0, rel, sym)


def known(v):
    """A number register holding exactly ``v``."""
    return scalar(const_bounds(v))


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


def map_spec_of(m):
    """The map's spec (a spec, or a map object that carries one)."""
    if hasattr(m, "value_size"):
        return m
    return getattr(m, "spec", m)


def range_text(lo, hi, signed=False):
    """``lo..hi`` (or one number) for messages; signed shows the sign (stack offsets)."""
    if lo == hi:
        return ("%+d" % lo) if signed else "%d" % lo
    if signed:
        return "%+d..%+d" % (lo, hi)
    return "%d..%d" % (lo, hi)
