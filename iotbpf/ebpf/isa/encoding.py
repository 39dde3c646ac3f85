"""The eBPF instruction set (RFC 9669) as tables: opcodes, the Instruction, slot decoding and
encoding. Slot indexed: a lddw fills two slots, the second an opcode-0 tail (docs/vm.md)."""
import struct

# ------------------------------------------------------------------ encoding fields
# Instruction classes (low 3 bits of the opcode).
BPF_LD = 0x00
BPF_LDX = 0x01
BPF_ST = 0x02
BPF_STX = 0x03
BPF_ALU = 0x04
BPF_JMP = 0x05
BPF_JMP32 = 0x06
BPF_ALU64 = 0x07

# Load/store sizes (bits 3-4).
BPF_W = 0x00
BPF_H = 0x08
BPF_B = 0x10
BPF_DW = 0x18

# Load/store modes (bits 5-7).
BPF_IMM = 0x00
BPF_ABS = 0x20
BPF_IND = 0x40
BPF_MEM = 0x60
BPF_MEMSX = 0x80
BPF_ATOMIC = 0xC0

# Source operand (bit 3) for ALU and JMP.
BPF_K = 0x00
BPF_X = 0x08

# ALU operations (bits 4-7).
BPF_ADD = 0x00
BPF_SUB = 0x10
BPF_MUL = 0x20
BPF_DIV = 0x30
BPF_OR = 0x40
BPF_AND = 0x50
BPF_LSH = 0x60
BPF_RSH = 0x70
BPF_NEG = 0x80
BPF_MOD = 0x90
BPF_XOR = 0xA0
BPF_MOV = 0xB0
BPF_ARSH = 0xC0
BPF_END = 0xD0

# Byte-swap direction for BPF_END (the source bit).
BPF_TO_LE = 0x00
BPF_TO_BE = 0x08

# Jump operations (bits 4-7).
BPF_JA = 0x00
BPF_JEQ = 0x10
BPF_JGT = 0x20
BPF_JGE = 0x30
BPF_JSET = 0x40
BPF_JNE = 0x50
BPF_JSGT = 0x60
BPF_JSGE = 0x70
BPF_CALL = 0x80
BPF_EXIT = 0x90
BPF_JLT = 0xA0
BPF_JLE = 0xB0
BPF_JSLT = 0xC0
BPF_JSLE = 0xD0

# Atomic operations (in imm of BPF_STX | BPF_ATOMIC).
BPF_FETCH = 0x01
BPF_XCHG = 0xE0 | BPF_FETCH
BPF_CMPXCHG = 0xF0 | BPF_FETCH

# lddw pseudo sources (src field of the first slot).
BPF_PSEUDO_MAP_FD = 1
BPF_PSEUDO_MAP_VALUE = 2
BPF_PSEUDO_BTF_ID = 3
BPF_PSEUDO_FUNC = 4
BPF_PSEUDO_MAP_IDX = 5
BPF_PSEUDO_MAP_IDX_VALUE = 6

# call pseudo sources.
BPF_PSEUDO_CALL = 1
BPF_PSEUDO_KFUNC_CALL = 2

# Registers and machine limits.
NUM_REGS = 11
R10 = 10
STACK_SIZE = 512
MAX_CALL_FRAMES = 8
MAX_TAIL_CALLS = 33
MAX_INSNS = 1000000  # loaders refuse programs with more slots than this

# Frequently combined opcodes.
LDDW = BPF_LD | BPF_IMM | BPF_DW  # 0x18
CALL = BPF_JMP | BPF_CALL  # 0x85 (helper, or local with src=1)
CALLX = BPF_JMP | BPF_CALL | BPF_X  # 0x8d (uBPF extension: register in dst)
EXIT = BPF_JMP | BPF_EXIT  # 0x95
JA = BPF_JMP | BPF_JA  # 0x05
JA32 = BPF_JMP32 | BPF_JA  # 0x06 (gotol: 32-bit offset in imm)

M32 = 0xFFFFFFFF  # the masks of a 32- and a 64-bit register: one name each across ebpf/
M64 = 0xFFFFFFFFFFFFFFFF
SIGN32 = 0x80000000
SIGN64 = 0x8000000000000000

# ------------------------------------------------------------------ name tables
ALU_NAMES = {
    BPF_ADD: "add", BPF_SUB: "sub", BPF_MUL: "mul", BPF_DIV: "div", BPF_OR: "or",
    BPF_AND: "and", BPF_LSH: "lsh", BPF_RSH: "rsh", BPF_NEG: "neg", BPF_MOD: "mod",
    BPF_XOR: "xor", BPF_MOV: "mov", BPF_ARSH: "arsh",
}
# off=1 turns div/mod into their signed forms (ISA v4).
SIGNED_ALU_NAMES = {BPF_DIV: "sdiv", BPF_MOD: "smod"}
# mov with off 8/16/32 is a sign-extending move (register source only).
MOVSX_OFFSETS = (8, 16, 32)

JMP_NAMES = {
    BPF_JA: "ja", BPF_JEQ: "jeq", BPF_JGT: "jgt", BPF_JGE: "jge", BPF_JSET: "jset",
    BPF_JNE: "jne", BPF_JSGT: "jsgt", BPF_JSGE: "jsge", BPF_JLT: "jlt", BPF_JLE: "jle",
    BPF_JSLT: "jslt", BPF_JSLE: "jsle",
}
# Conditional jumps only (ja/call/exit excluded).
COND_JMP_OPS = (BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSGE, BPF_JLT,
                BPF_JLE, BPF_JSLT, BPF_JSLE)

SIZE_NAMES = {BPF_B: "b", BPF_H: "h", BPF_W: "w", BPF_DW: "dw"}
SIZE_BYTES = {BPF_B: 1, BPF_H: 2, BPF_W: 4, BPF_DW: 8}

ATOMIC_NAMES = {
    BPF_ADD: "add", BPF_OR: "or", BPF_AND: "and", BPF_XOR: "xor",
    BPF_ADD | BPF_FETCH: "fetch add", BPF_OR | BPF_FETCH: "fetch or",
    BPF_AND | BPF_FETCH: "fetch and", BPF_XOR | BPF_FETCH: "fetch xor",
    BPF_XCHG: "xchg", BPF_CMPXCHG: "cmpxchg",
}

LDDW_PSEUDO_NAMES = {
    BPF_PSEUDO_MAP_FD: "map_fd", BPF_PSEUDO_MAP_VALUE: "map_value",
    BPF_PSEUDO_BTF_ID: "btf_id", BPF_PSEUDO_FUNC: "func",
    BPF_PSEUDO_MAP_IDX: "map_idx", BPF_PSEUDO_MAP_IDX_VALUE: "map_idx_value",
}

# ------------------------------------------------------------------ opcode table
# OPCODES: opcode -> (kind, mnemonic stem). Kinds:
#   "alu"  ALU/ALU64 op (K or X)     "end"   le/be/bswap       "lddw"  64-bit immediate
#   "ldx"  register load              "ldxs"  sign-extending load
#   "st"   store immediate            "stx"   store register    "atomic" lock ...
#   "ldabs"/"ldind" legacy packet loads
#   "ja"   unconditional jump (off)   "ja32"  gotol (imm)       "jcond" conditional jump
#   "call" helper/local call          "callx" call via register "exit"
OPCODES = {}


def _build_opcode_table():
    # The K and X forms share one entry tuple, and names without a suffix are the table's own
    # strings: each new string or tuple here stays in RAM on a microcontroller.
    for cls, suffix in ((BPF_ALU64, ""), (BPF_ALU, "32")):
        for op, name in ALU_NAMES.items():
            entry = ("alu", name + suffix if suffix else name)
            for srcbit in (BPF_K, BPF_X):
                if op == BPF_NEG and srcbit == BPF_X:
                    continue
                OPCODES[cls | op | srcbit] = entry
    OPCODES[BPF_ALU | BPF_END | BPF_TO_LE] = ("end", "le")
    OPCODES[BPF_ALU | BPF_END | BPF_TO_BE] = ("end", "be")
    OPCODES[BPF_ALU64 | BPF_END | BPF_TO_LE] = ("end", "bswap")
    OPCODES[LDDW] = ("lddw", "lddw")
    for size, sname in SIZE_NAMES.items():
        OPCODES[BPF_LDX | BPF_MEM | size] = ("ldx", "ldx" + sname)
        OPCODES[BPF_ST | BPF_MEM | size] = ("st", "st" + sname)
        OPCODES[BPF_STX | BPF_MEM | size] = ("stx", "stx" + sname)
        OPCODES[BPF_LD | BPF_ABS | size] = ("ldabs", "ldabs" + sname)
        OPCODES[BPF_LD | BPF_IND | size] = ("ldind", "ldind" + sname)
        if size != BPF_DW:
            OPCODES[BPF_LDX | BPF_MEMSX | size] = ("ldxs", "ldxs" + sname)
    OPCODES[BPF_STX | BPF_ATOMIC | BPF_W] = ("atomic", "32")
    OPCODES[BPF_STX | BPF_ATOMIC | BPF_DW] = ("atomic", "")
    for cls, suffix in ((BPF_JMP, ""), (BPF_JMP32, "32")):
        for op in COND_JMP_OPS:
            entry = ("jcond", JMP_NAMES[op] + suffix if suffix else JMP_NAMES[op])
            for srcbit in (BPF_K, BPF_X):
                OPCODES[cls | op | srcbit] = entry
    OPCODES[JA] = ("ja", "ja")
    OPCODES[JA32] = ("ja32", "ja32")
    OPCODES[CALL] = ("call", "call")
    OPCODES[CALLX] = ("callx", "call")
    OPCODES[EXIT] = ("exit", "exit")


_build_opcode_table()


def op_class(opcode):
    return opcode & 0x07


def op_kind(opcode):
    """The table kind of ``opcode`` ("alu", "jcond", ...), or None if it is not an instruction."""
    entry = OPCODES.get(opcode)
    return entry[0] if entry is not None else None


# ------------------------------------------------------------------ Instruction
class Instruction:
    """One instruction slot: opcode (u8), dst (0..15), src (0..15), off (s16), imm (s32).

    For the first slot of a lddw, ``imm`` is the full unsigned 64-bit immediate and the next
    slot is its tail (docs/vm.md, "Inside").
    """

    __slots__ = ("opcode", "dst", "src", "off", "imm")

    def __init__(self, opcode, dst=0, src=0, off=0, imm=0):
        self.opcode = opcode
        self.dst = dst
        self.src = src
        self.off = off
        self.imm = imm

    def __eq__(self, other):
        return (isinstance(other, Instruction) and self.opcode == other.opcode
                and self.dst == other.dst and self.src == other.src and self.off == other.off
                and self.imm == other.imm)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash((self.opcode, self.dst, self.src, self.off, self.imm))

    def __repr__(self):
        return "Instruction(0x%02x, dst=%d, src=%d, off=%d, imm=%d)" % (
            self.opcode, self.dst, self.src, self.off, self.imm)

    @property
    def kind(self):
        return op_kind(self.opcode)

    def is_lddw(self):
        return self.opcode == LDDW

    def is_lddw_tail(self):
        """True for the second slot of a lddw (only meaningful inside a decoded list)."""
        return self.opcode == 0

    def is_jump(self):
        """ja, ja32 and conditional jumps (not call/exit)."""
        return op_kind(self.opcode) in ("ja", "ja32", "jcond")

    def jump_target(self, pc):
        """The slot this jump at ``pc`` goes to when taken (ja32 uses imm, others off)."""
        if self.opcode == JA32:
            return pc + 1 + self.imm
        return pc + 1 + self.off

    def is_local_call(self):
        return self.opcode == CALL and self.src == BPF_PSEUDO_CALL


def lddw(dst, imm64, src=0):
    """The two slots of ``lddw dst, imm64`` (with an optional pseudo source)."""
    imm64 &= M64
    return [Instruction(LDDW, dst, src, 0, imm64), Instruction(0, 0, 0, 0, s32(imm64 >> 32))]


def s32(value):
    value &= M32
    return value - 0x100000000 if value & 0x80000000 else value


def s16(value):
    value &= 0xFFFF
    return value - 0x10000 if value & 0x8000 else value


class _FormatStruct:
    """struct.Struct for MicroPython, which has only the module-level functions."""

    def __init__(self, fmt):
        self.format = fmt
        self.size = struct.calcsize(fmt)

    def pack(self, *values):
        return struct.pack(self.format, *values)

    def unpack(self, data):
        return struct.unpack(self.format, data)

    def unpack_from(self, data, offset=0):
        return struct.unpack_from(self.format, data, offset)

    def pack_into(self, buf, offset, *values):
        struct.pack_into(self.format, buf, offset, *values)


def make_struct(fmt):
    """A precompiled struct (struct.Struct on CPython, an equivalent on MicroPython)."""
    cls = getattr(struct, "Struct", None)
    return cls(fmt) if cls is not None else _FormatStruct(fmt)


_SLOT = make_struct("<BBhi")


def decode_slot(data, offset=0):
    opcode, regs, off, imm = _SLOT.unpack_from(data, offset)
    return Instruction(opcode, regs & 0x0F, regs >> 4, off, imm)


def encode_slot(insn):
    return _SLOT.pack(insn.opcode & 0xFF, ((insn.src & 0x0F) << 4) | (insn.dst & 0x0F),
                      s16(insn.off), s32(insn.imm))


class DecodeError(ValueError):
    """Bytes that are not a whole number of slots, or a lddw missing its second slot."""


def decode(data):
    """Decode program bytes into a slot-indexed list of Instructions (docs/vm.md, "Inside")."""
    n = len(data)
    if n % 8:
        raise DecodeError("program length %d is not a multiple of 8 bytes" % n)
    insns = [decode_slot(data, i) for i in range(0, n, 8)]
    pc = 0
    count = len(insns)
    while pc < count:
        insn = insns[pc]
        if insn.opcode == LDDW:
            if pc + 1 >= count:
                raise DecodeError("pc %d: lddw is missing its second slot" % pc)
            insn.imm = (insn.imm & M32) | ((insns[pc + 1].imm & M32) << 32)
            pc += 2
        else:
            pc += 1
    return insns


class PackedInsns:
    """A read-only slot-indexed instruction list kept as the raw 8-byte slots.

    For microcontrollers: 8 bytes per slot instead of one Instruction object (~90 B on
    MicroPython). ``packed[pc]`` decodes that slot on each access into a fresh Instruction,
    exactly as ``decode(data)[pc]`` would (a lddw's first slot carries the full 64-bit imm),
    so changing the returned object changes nothing. Supports len, indexing and iteration.
    """

    def __init__(self, data):
        if len(data) % 8:
            raise DecodeError("program length %d is not a multiple of 8 bytes" % len(data))
        self.data = bytes(data)
        self.n = len(data) // 8

    def __len__(self):
        return self.n

    def __getitem__(self, pc):
        n = self.n
        if pc < 0:
            pc += n
        if not 0 <= pc < n:
            raise IndexError("slot %d out of range" % pc)
        insn = decode_slot(self.data, pc * 8)
        if insn.opcode == LDDW and pc + 1 < n:
            high = _SLOT.unpack_from(self.data, pc * 8 + 8)[3]
            insn.imm = (insn.imm & M32) | ((high & M32) << 32)
        return insn

    def __iter__(self):
        for pc in range(self.n):
            yield self[pc]


def encode(insns):
    """Encode a slot-indexed Instruction list back to bytes (inverse of decode)."""
    out = []
    pc = 0
    count = len(insns)
    while pc < count:
        insn = insns[pc]
        if insn.opcode == LDDW and pc + 1 < count:
            low = Instruction(LDDW, insn.dst, insn.src, insn.off, s32(insn.imm))
            tail = insns[pc + 1]
            high = Instruction(tail.opcode, tail.dst, tail.src, tail.off, s32(insn.imm >> 32))
            out.append(encode_slot(low))
            out.append(encode_slot(high))
            pc += 2
        else:
            out.append(encode_slot(insn))
            pc += 1
    return b"".join(out)
