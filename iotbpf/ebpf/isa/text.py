"""One instruction as the assembler's text (``format_insn``), or as a raw ``.slot`` when the text
syntax cannot express it exactly."""

from iotbpf.ebpf.isa.encoding import (
    ATOMIC_NAMES,
    BPF_ALU64,
    BPF_MOV,
    BPF_NEG,
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_FUNC,
    BPF_PSEUDO_KFUNC_CALL,
    BPF_PSEUDO_MAP_IDX_VALUE,
    BPF_PSEUDO_MAP_VALUE,
    BPF_X,
    LDDW_PSEUDO_NAMES,
    M32,
    M64,
    MOVSX_OFFSETS,
    OPCODES,
    SIGNED_ALU_NAMES,
    s32,
)


def _reg(n):
    return "%r" + str(n)


def format_imm(value):
    """A signed 32-bit immediate as the disassembler prints it (decimal when small)."""
    if -65536 < value < 65536:
        return str(value)
    return "0x%x" % (value & M32)


def _mem(reg, off):
    if off == 0:
        return "[%s]" % _reg(reg)
    if off > 0:
        return "[%s+%d]" % (_reg(reg), off)
    return "[%s-%d]" % (_reg(reg), -off)


def _target(off, pc, labels):
    if labels is not None and pc is not None:
        name = labels.get(pc + 1 + off)
        if name is not None:
            return name
    return ("+%d" % off) if off >= 0 else str(off)


def format_insn(insn, pc=None, labels=None):
    """The instruction as the disassembler prints it (used in every error message).

    ``labels`` (slot -> name) lets jumps print a label instead of a ``+N`` offset; that needs
    ``pc``. Unknown opcodes print as ``.slot 0x<16 hex digits>`` (the raw slot value).
    """
    entry = OPCODES.get(insn.opcode)
    if entry is None:
        return format_slot(insn)
    kind, name = entry
    op = insn.opcode
    d, s, off, imm = insn.dst, insn.src, insn.off, insn.imm
    if kind == "alu":
        code = op & 0xF0
        if code == BPF_NEG:
            return "%s %s" % (name, _reg(d))
        if op & BPF_X:
            if code == BPF_MOV and off in MOVSX_OFFSETS:
                return "movsx%d%s %s, %s" % (off, "64" if op & 0x07 == BPF_ALU64 else "32",
                                             _reg(d), _reg(s))
        if code in SIGNED_ALU_NAMES and off == 1:
            name = SIGNED_ALU_NAMES[code] + name[3:]
        if op & BPF_X:
            return "%s %s, %s" % (name, _reg(d), _reg(s))
        return "%s %s, %s" % (name, _reg(d), format_imm(imm))
    if kind == "end":
        return "%s%d %s" % (name, imm, _reg(d))
    if kind == "lddw":
        if s == 0:
            return "lddw %s, 0x%x" % (_reg(d), imm & M64)
        pname = LDDW_PSEUDO_NAMES.get(s)
        low = s32(imm)
        if s == BPF_PSEUDO_FUNC:
            return "lddw %s, func %s" % (_reg(d), _target(low, pc, labels))
        if s in (BPF_PSEUDO_MAP_VALUE, BPF_PSEUDO_MAP_IDX_VALUE):
            return "lddw %s, %s %d, %d" % (_reg(d), pname, low, s32(imm >> 32))
        if pname is not None and imm >> 32 == 0:
            return "lddw %s, %s %d" % (_reg(d), pname, low)
        return "lddw %s, 0x%x, src %d" % (_reg(d), imm & M64, s)
    if kind in ("ldx", "ldxs"):
        return "%s %s, %s" % (name, _reg(d), _mem(s, off))
    if kind == "st":
        return "%s %s, %s" % (name, _mem(d, off), format_imm(imm))
    if kind == "stx":
        return "%s %s, %s" % (name, _mem(d, off), _reg(s))
    if kind == "atomic":
        aname = ATOMIC_NAMES.get(imm & M32)
        if aname is None:
            return format_slot(insn)
        return "lock %s%s %s, %s" % (aname, name, _mem(d, off), _reg(s))
    if kind == "ldabs":
        return "%s %s" % (name, format_imm(imm))
    if kind == "ldind":
        return "%s %s, %s" % (name, _reg(s), format_imm(imm))
    if kind == "jcond":
        if op & BPF_X:
            return "%s %s, %s, %s" % (name, _reg(d), _reg(s), _target(off, pc, labels))
        return "%s %s, %s, %s" % (name, _reg(d), format_imm(imm), _target(off, pc, labels))
    if kind == "ja":
        return "ja %s" % _target(off, pc, labels)
    if kind == "ja32":
        return "ja32 %s" % _target(imm, pc, labels)
    if kind == "call":
        if s == BPF_PSEUDO_CALL:
            return "call local %s" % _target(imm, pc, labels)
        if s == BPF_PSEUDO_KFUNC_CALL:
            return "call runtime %d" % imm
        return "call %d" % imm
    if kind == "callx":
        return "call %s" % _reg(d)
    return "exit"


def slot_value(insn):
    """The 64-bit little-endian value of one slot, as conformance ``-- raw`` sections write it."""
    lo = ((insn.src & 0x0F) << 4 | (insn.dst & 0x0F)) << 8 | (insn.opcode & 0xFF)
    lo |= (insn.off & 0xFFFF) << 16
    return lo | ((insn.imm & M32) << 32)


def format_slot(insn):
    return ".slot 0x%016x" % slot_value(insn)
