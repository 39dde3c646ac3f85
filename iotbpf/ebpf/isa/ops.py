"""The instruction set's semantics, each operation written once: per opcode class a table row
with the Python function the interpreters call, the compiler's expression template and (via
``alu_func``) the verifier's concrete transfer. MicroPython-compatible; imports only isa.
"""

from iotbpf.ebpf import isa
from iotbpf.ebpf.isa.encoding import M32, M64, SIGN32, SIGN64


def sx64(x):
    """A u64 as a signed number."""
    return x - 0x10000000000000000 if x & SIGN64 else x


def sx32(x):
    """The low 32 bits as a signed number."""
    x &= M32
    return x - 0x100000000 if x & SIGN32 else x


def sdiv(a, b):
    """Signed division truncating toward zero; x / 0 = 0 (RFC 9669)."""
    if b == 0:
        return 0
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def smod(a, b):
    """Signed remainder with the dividend's sign; x % 0 = x (RFC 9669)."""
    if b == 0:
        return a
    m = abs(a) % abs(b)
    return -m if a < 0 else m


def _sext(bits):
    sign = 1 << (bits - 1)
    mask = (1 << bits) - 1
    return lambda x: ((x & mask) ^ sign) - sign


# ---------------------------------------------------------------- ALU (BPF_ALU64, BPF_ALU)
# code -> (name, fn64, template64, fn32, template32). A function takes (dst, src) -- both
# already u64 -- and returns the new dst. A template is the compiler's Python expression for
# the new dst over {d} (dst), {s} (src register or immediate), {n} (the shift count reduced to
# the width: "({s} & 63)" or a number), {m} (the width's mask) and {sign} (its sign bit); a
# pair is (register form, immediate form). Immediates of 0 for div/mod, negative add/sub
# immediates and ranges that make the mask idle (UNMASKED) are the compiler's own folding.
ALU = {
    isa.BPF_ADD: ("add", lambda a, b: (a + b) & M64, "({d} + {s}) & {m}",
                  lambda a, b: (a + b) & M32, "({d} + {s}) & {m}"),
    isa.BPF_SUB: ("sub", lambda a, b: (a - b) & M64, "({d} - {s}) & {m}",
                  lambda a, b: (a - b) & M32, "({d} - {s}) & {m}"),
    isa.BPF_MUL: ("mul", lambda a, b: (a * b) & M64, "({d} * {s}) & {m}",
                  lambda a, b: ((a & M32) * (b & M32)) & M32, "({d} * {s}) & {m}"),
    isa.BPF_DIV: ("div", lambda a, b: a // b if b else 0, ("{d} // {s} if {s} else 0", "{d} // {s}"),
                  lambda a, b: (a & M32) // (b & M32) if b & M32 else 0,
                  ("({d} & {m}) // ({s} & {m}) if {s} & {m} else 0", "({d} & {m}) // {s}")),
    isa.BPF_OR: ("or", lambda a, b: a | b, "{d} | {s}",
                 lambda a, b: (a | b) & M32, "({d} | {s}) & {m}"),
    isa.BPF_AND: ("and", lambda a, b: a & b, "{d} & {s}",
                  lambda a, b: a & b & M32, "{d} & {s} & {m}"),
    isa.BPF_LSH: ("lsh", lambda a, b: (a << (b & 63)) & M64, "({d} << {n}) & {m}",
                  lambda a, b: (a << (b & 31)) & M32, "({d} << {n}) & {m}"),
    isa.BPF_RSH: ("rsh", lambda a, b: a >> (b & 63), "{d} >> {n}",
                  lambda a, b: (a & M32) >> (b & 31), "({d} & {m}) >> {n}"),
    isa.BPF_NEG: ("neg", lambda a, b: (-a) & M64, "-{d} & {m}",
                  lambda a, b: (-a) & M32, "-{d} & {m}"),
    isa.BPF_MOD: ("mod", lambda a, b: a % b if b else a, ("{d} % {s} if {s} else {d}", "{d} % {s}"),
                  lambda a, b: (a & M32) % (b & M32) if b & M32 else a & M32,
                  ("({d} & {m}) % ({s} & {m}) if {s} & {m} else {d} & {m}", "({d} & {m}) % {s}")),
    isa.BPF_XOR: ("xor", lambda a, b: a ^ b, "{d} ^ {s}",
                  lambda a, b: (a ^ b) & M32, "({d} ^ {s}) & {m}"),
    isa.BPF_MOV: ("mov", lambda a, b: b, "{s}",
                  lambda a, b: b & M32, ("{s} & {m}", "{s}")),
    isa.BPF_ARSH: ("arsh", lambda a, b: (sx64(a) >> (b & 63)) & M64, "((({d} ^ {sign}) - {sign}) >> {n}) & {m}",
                   lambda a, b: (sx32(a) >> (b & 31)) & M32,
                   "(((({d} & {m}) ^ {sign}) - {sign}) >> {n}) & {m}"),
}

# off = 1 turns div/mod signed (sdiv, smod); the compiler calls these functions by name
SIGNED = {
    isa.BPF_DIV: ("sdiv", lambda a, b: sdiv(sx64(a), sx64(b)) & M64, "SD64({d}, {s})",
                  lambda a, b: sdiv(sx32(a), sx32(b)) & M32, "SD32({d}, {s})"),
    isa.BPF_MOD: ("smod", lambda a, b: smod(sx64(a), sx64(b)) & M64, "SM64({d}, {s})",
                  lambda a, b: smod(sx32(a), sx32(b)) & M32, "SM32({d}, {s})"),
}

# mov with off = 8/16/32 (register form only): sign-extend the low off bits of src
MOVSX_TEMPLATE = "((({s} & {low}) ^ {half}) - {half}) & {m}"
MOVSX64_FUNCS = {n: (lambda f: lambda a, b: f(b) & M64)(_sext(n)) for n in (8, 16, 32)}
MOVSX32_FUNCS = {n: (lambda f: lambda a, b: f(b) & M32)(_sext(n)) for n in (8, 16)}

# The range transfer's unmasked forms: when value ranges prove the result fits the width, the
# compiler drops the mask (``engines/compiler/ranges.py``'s ``_alu_step`` decides when).
UNMASKED = {
    isa.BPF_ADD: "{d} + {s}",
    isa.BPF_SUB: "{d} - {s}",
    isa.BPF_MUL: "{d} * {s}",
    isa.BPF_LSH: "{d} << {n}",
    isa.BPF_RSH: "{d} >> {n}",
    isa.BPF_AND: "{d} & {s}",
    isa.BPF_OR: "{d} | {s}",
    isa.BPF_XOR: "{d} ^ {s}",
    isa.BPF_MOV: "{s}",
}

ALU64_FUNCS = dict((code, row[1]) for code, row in ALU.items())
ALU32_FUNCS = dict((code, row[3]) for code, row in ALU.items())
SIGNED64_FUNCS = dict((code, row[1]) for code, row in SIGNED.items())
SIGNED32_FUNCS = dict((code, row[3]) for code, row in SIGNED.items())


def alu_func(code, is64, off=0):
    """The function of ALU operation ``code`` with offset ``off`` (sdiv/smod, movsx), or None."""
    if off == 1 and code in SIGNED:
        row = SIGNED[code]
    elif code == isa.BPF_MOV and off:
        f = (MOVSX64_FUNCS if is64 else MOVSX32_FUNCS).get(off)
        if f is not None:
            return f
        row = ALU[code]
    else:
        row = ALU.get(code)
        if row is None:
            return None
    return row[1] if is64 else row[3]


def alu_template(code, is64, off, register):
    """The compiler's expression template for ``code``/``off``; ``register``: src is a register."""
    if off == 1 and code in SIGNED:
        return SIGNED[code][2 if is64 else 4]
    if code == isa.BPF_MOV and off and register:
        return MOVSX_TEMPLATE
    t = ALU[code][2 if is64 else 4]
    if isinstance(t, tuple):
        return t[0] if register else t[1]
    return t


# ---------------------------------------------------------------- byte order (BPF_END)
_BE = {16: isa.make_struct(">H"), 32: isa.make_struct(">I"), 64: isa.make_struct(">Q")}
_LE = {16: isa.make_struct("<H"), 32: isa.make_struct("<I"), 64: isa.make_struct("<Q")}


def _swap(bits):
    be, le = _BE[bits], _LE[bits]
    mask = (1 << bits) - 1
    return lambda a, b: le.unpack(be.pack(a & mask))[0]


SWAP_FUNCS = {16: _swap(16), 32: _swap(32), 64: _swap(64)}
LE_FUNCS = {16: lambda a, b: a & 0xFFFF, 32: lambda a, b: a & M32, 64: lambda a, b: a}

# ---------------------------------------------------------------- conditions (BPF_JMP, BPF_JMP32)
# code -> (name, fn64, fn32, relation, signed). Functions take (a, b) already masked to the
# width; the compiler writes ``a <relation> b`` (signed: both sides xor the sign bit; jset:
# ``a & b``).
COND = {
    isa.BPF_JEQ: ("jeq", lambda a, b: a == b, None, "==", False),
    isa.BPF_JNE: ("jne", lambda a, b: a != b, None, "!=", False),
    isa.BPF_JGT: ("jgt", lambda a, b: a > b, None, ">", False),
    isa.BPF_JGE: ("jge", lambda a, b: a >= b, None, ">=", False),
    isa.BPF_JLT: ("jlt", lambda a, b: a < b, None, "<", False),
    isa.BPF_JLE: ("jle", lambda a, b: a <= b, None, "<=", False),
    isa.BPF_JSET: ("jset", lambda a, b: (a & b) != 0, None, "&", False),
    isa.BPF_JSGT: ("jsgt", lambda a, b: (a ^ SIGN64) > (b ^ SIGN64),
                   lambda a, b: (a ^ SIGN32) > (b ^ SIGN32), ">", True),
    isa.BPF_JSGE: ("jsge", lambda a, b: (a ^ SIGN64) >= (b ^ SIGN64),
                   lambda a, b: (a ^ SIGN32) >= (b ^ SIGN32), ">=", True),
    isa.BPF_JSLT: ("jslt", lambda a, b: (a ^ SIGN64) < (b ^ SIGN64),
                   lambda a, b: (a ^ SIGN32) < (b ^ SIGN32), "<", True),
    isa.BPF_JSLE: ("jsle", lambda a, b: (a ^ SIGN64) <= (b ^ SIGN64),
                   lambda a, b: (a ^ SIGN32) <= (b ^ SIGN32), "<=", True),
}
COND64 = dict((code, row[1]) for code, row in COND.items())
COND32 = dict((code, row[2] or row[1]) for code, row in COND.items())
RELATION = dict((code, row[3]) for code, row in COND.items())

# ---------------------------------------------------------------- atomics (BPF_ATOMIC)
# base operation -> (function on the old value and src, compiler operator or None)
ATOMIC = {
    isa.BPF_ADD: (lambda a, b: a + b, "+"),
    isa.BPF_OR: (lambda a, b: a | b, "|"),
    isa.BPF_AND: (lambda a, b: a & b, "&"),
    isa.BPF_XOR: (lambda a, b: a ^ b, "^"),
    isa.BPF_XCHG: (lambda a, b: b, None),
}
ATOMIC_FUNCS = dict((code, row[0]) for code, row in ATOMIC.items())
ATOMIC_OPERATORS = dict((code, row[1]) for code, row in ATOMIC.items() if row[1])
