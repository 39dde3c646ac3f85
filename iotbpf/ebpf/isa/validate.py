"""Which slots fault when they run: unknown opcodes, bad operands, reserved fields set, jumps out
of the program (``validate``, run once at load; uBPF's ``ubpf_instruction_valid``)."""

from iotbpf.ebpf.isa.encoding import (
    ATOMIC_NAMES,
    BPF_ALU64,
    BPF_DIV,
    BPF_MOD,
    BPF_MOV,
    BPF_NEG,
    BPF_PSEUDO_CALL,
    BPF_PSEUDO_KFUNC_CALL,
    BPF_X,
    M32,
    MOVSX_OFFSETS,
    OPCODES,
    R10,
    Instruction,
    op_kind,
)


def is_canonical(insn, tail=None):
    """True if every field the instruction does not use is zero (the assembler's encoding).

    ``tail`` is the second slot for a lddw. Non-canonical slots are disassembled as ``.slot``.
    """
    entry = OPCODES.get(insn.opcode)
    if entry is None:
        return False
    kind = entry[0]
    op = insn.opcode
    d, s, off, imm = insn.dst, insn.src, insn.off, insn.imm
    if d > 10 or s > 10:
        return False
    if kind == "alu":
        code = op & 0xF0
        if op & BPF_X:
            if imm != 0:
                return False
            if code == BPF_MOV:
                return off in (0, 8, 16, 32) if op & 0x07 == BPF_ALU64 else off in (0, 8, 16)
            if code in (BPF_DIV, BPF_MOD):
                return off in (0, 1)
            return off == 0
        if s != 0:
            return False
        if code == BPF_NEG:
            return off == 0 and imm == 0
        if code in (BPF_DIV, BPF_MOD):
            return off in (0, 1)
        return off == 0
    if kind == "end":
        return s == 0 and off == 0 and imm in (16, 32, 64)
    if kind == "lddw":
        if tail is None or tail.opcode != 0 or tail.dst or tail.src or tail.off:
            return False
        if off != 0 or s > 6:
            return False
        return True
    if kind in ("ldx", "ldxs"):
        return imm == 0
    if kind == "st":
        return s == 0
    if kind == "stx":
        return imm == 0
    if kind == "atomic":
        return (imm & M32) in ATOMIC_NAMES
    if kind == "ldabs":
        return d == 0 and s == 0 and off == 0
    if kind == "ldind":
        return d == 0 and off == 0
    if kind == "jcond":
        if op & BPF_X:
            return imm == 0
        return s == 0
    if kind == "ja":
        return d == 0 and s == 0 and imm == 0
    if kind == "ja32":
        return d == 0 and s == 0 and off == 0
    if kind == "call":
        return d == 0 and off == 0 and s in (0, BPF_PSEUDO_CALL, BPF_PSEUDO_KFUNC_CALL)
    if kind == "callx":
        return s == 0 and off == 0 and imm == 0
    if kind == "exit":
        return d == 0 and s == 0 and off == 0 and imm == 0
    return False


# Kinds whose dst register is written (so dst must not be the read-only r10).
WRITES_DST = ("alu", "end", "lddw", "ldx", "ldxs")


def operand_error(insn):
    """Why the registers of a known instruction are invalid, or None (used by both engines)."""
    kind = op_kind(insn.opcode)
    if insn.dst > 10:
        return "invalid destination register r%d" % insn.dst
    if insn.src > 10 and kind not in ("lddw", "call"):
        return "invalid source register r%d" % insn.src
    if insn.dst == R10 and kind in WRITES_DST:
        return "r10 (the frame pointer) is read-only"
    if kind not in ("lddw", "atomic") and not is_canonical(insn):
        return reserved_field_error(insn)
    return None


def reserved_field_error(insn):
    """Which field an instruction does not use is set (RFC 9669: unused fields must be zero), or None.

    Values an instruction gives meaning to but that are out of range (a movsx size, a byte-swap
    width) are left to the engines' own messages."""
    kind = op_kind(insn.opcode)
    code = insn.opcode & 0xF0
    meaningful = ()
    if kind == "alu" and (code in (BPF_DIV, BPF_MOD) or (code == BPF_MOV and insn.opcode & BPF_X)):
        meaningful = ("off",)  # sdiv/smod and movsx sizes
    elif kind == "end":
        meaningful = ("imm",)  # the swap width
    for field in ("dst", "src", "off", "imm"):
        value = getattr(insn, field)
        if not value or field in meaningful:
            continue
        probe = Instruction(insn.opcode, *[0 if f == field else getattr(insn, f) for f in ("dst", "src", "off", "imm")])
        if is_canonical(probe) and not is_canonical(insn):
            return "reserved field %s is %d; this instruction does not use it and it must be 0" % (field, value)
    return None


def instruction_error(insns, pc):
    """(reason, kind) of the fault the instruction at ``pc`` raises whatever the registers hold
    (unknown opcode, bad register or reserved field, bad movsx size, ALU offset, byte-swap width,
    malformed lddw, unknown atomic), or (None, None). Modelled on uBPF's ubpf_instruction_valid."""
    insn = insns[pc]
    op = insn.opcode
    kind = op_kind(op)
    if kind is None:
        return "unknown opcode 0x%02x" % op, "opcode"
    reason = operand_error(insn)
    if reason is not None:
        return reason, "opcode"
    if kind == "alu":
        code = op & 0xF0
        if code == BPF_MOV and op & BPF_X and insn.off:
            if insn.off not in (MOVSX_OFFSETS if op & 0x07 == BPF_ALU64 else (8, 16)):
                return "invalid movsx size %d" % insn.off, "opcode"
        elif insn.off and not (code in (BPF_DIV, BPF_MOD) and insn.off == 1):
            return "invalid offset %d for this ALU op" % insn.off, "opcode"
    elif kind == "end":
        if insn.imm not in (16, 32, 64):
            return "invalid byte swap width %d" % insn.imm, "opcode"
    elif kind == "lddw":
        if pc + 1 >= len(insns) or insns[pc + 1].opcode != 0:
            return "malformed lddw: the second slot must have opcode 0", "opcode"
    elif kind == "atomic":
        aop = insn.imm & M32
        if aop not in ATOMIC_NAMES:
            return "unknown atomic operation 0x%x" % aop, "opcode"
    return None, None


def validate(insns):
    """``{pc: (reason, kind)}`` for every slot that faults when it runs (see instruction_error);
    run once when an engine is built, which then only turns these entries into faults."""
    bad = {}
    for pc in range(len(insns)):
        reason, kind = instruction_error(insns, pc)
        if reason is not None:
            bad[pc] = (reason, kind)
    return bad
