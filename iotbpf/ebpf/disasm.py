"""Disassembler: instruction slots back to the assembler's text, so asm(disasm(x)) == x.

Uses isa.format_insn for every line; jump targets become labels ``L<pc>`` and slots the
text syntax cannot express exactly (unknown opcodes, reserved fields set) become ``.slot``.
MicroPython-compatible; never raises on any decodable input.
"""

from iotbpf.ebpf import isa


def _targets(insns):
    """Slots some jump, local call or lddw func refers to (only valid instruction starts)."""
    starts = set()
    pc = 0
    n = len(insns)
    while pc < n:
        starts.add(pc)
        pc += 2 if insns[pc].opcode == isa.LDDW and pc + 1 < n else 1
    targets = set()
    for pc in starts:
        insn = insns[pc]
        kind = isa.op_kind(insn.opcode)
        if not isa.is_canonical(insn, insns[pc + 1] if pc + 1 < n else None):
            continue
        target = None
        if kind in ("ja", "ja32", "jcond"):
            target = insn.jump_target(pc)
        elif kind == "call" and insn.src == isa.BPF_PSEUDO_CALL:
            target = pc + 1 + insn.imm
        elif kind == "lddw" and insn.src == isa.BPF_PSEUDO_FUNC:
            target = pc + 1 + isa.s32(insn.imm)
        if target is not None and target in starts:
            targets.add(target)
    return targets


def disassemble_lines(insns, labels=True, pcs=False):
    """Text lines for a slot-indexed Instruction list (labels for jump targets if asked)."""
    n = len(insns)
    names = {}
    if labels:
        for target in sorted(_targets(insns)):
            names[target] = "L%d" % target
    out = []
    pc = 0
    while pc < n:
        insn = insns[pc]
        if pc in names:
            out.append(names[pc] + ":")
        if insn.opcode == isa.LDDW and pc + 1 < n:
            tail = insns[pc + 1]
            if isa.is_canonical(insn, tail):
                text = isa.format_insn(insn, pc, names)
            else:
                low = isa.Instruction(insn.opcode, insn.dst, insn.src, insn.off, isa.s32(insn.imm))
                high = isa.Instruction(tail.opcode, tail.dst, tail.src, tail.off, isa.s32(insn.imm >> 32))
                text = isa.format_slot(low) + "\n" + isa.format_slot(high)
            step = 2
        else:
            if isa.is_canonical(insn) and insn.opcode != isa.LDDW:
                text = isa.format_insn(insn, pc, names)
            else:
                text = isa.format_slot(insn)
            step = 1
        if pcs:
            text = "\n".join("%-40s # %d" % (part, pc + i) for i, part in enumerate(text.split("\n")))
        out.append(text)
        pc += step
    return out


def disassemble(insns, labels=True, pcs=False):
    """The whole program as text, one instruction per line."""
    lines = disassemble_lines(insns, labels, pcs)
    return "\n".join(lines) + ("\n" if lines else "")
