"""Disassembler: instruction slots back to the assembler's text (asm(disasm(x)) == x), jump targets
as labels ``L<pc>``; never raises on any decodable input."""

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


def disassemble_lines(insns, labels=True, pcs=False, notes=None, names=None):
    """Text lines for a slot-indexed Instruction list (labels for jump targets if asked).
    ``notes`` {pc: (lines before, trailing comment)} and ``names`` {pc: label} come from
    ``annotate`` (bpftool-style listings); both are comments or labels, so the text still
    assembles to the same program."""
    n = len(insns)
    names = dict(names or {})
    if labels:
        for target in sorted(_targets(insns)):
            names.setdefault(target, "L%d" % target)
    notes = notes or {}
    out = []
    pc = 0
    while pc < n:
        insn = insns[pc]
        note = notes.get(pc)
        if pc in names:
            out.append(names[pc] + ":")
        if note is not None and note[0]:
            out.extend(note[0])
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
        if note is not None and note[1]:
            text = "%-40s # %s" % (text, note[1])
        out.append(text)
        pc += step
    return out


def _identifier(name):
    return bool(name) and (name[0].isalpha() or name[0] == "_") and \
        all(c.isalnum() or c == "_" for c in name)


def _map_name(maps, index):
    if 0 <= index < len(maps):
        return getattr(maps[index], "name", None) or "map %d" % index
    return "map %d (not in the object)" % index


def _variable_at(m, offset):
    """``name+k`` of the global variable of a .data/.bss/.rodata map at ``offset``."""
    spec = getattr(m, "spec", m)
    desc = getattr(spec, "value_type", None) or {}
    for member in desc.get("members", ()):
        size = (member.get("type") or {}).get("size", 0)
        start = member.get("offset", 0)
        if start <= offset < start + max(size, 1):
            return member.get("name", "?") + ("+%d" % (offset - start) if offset > start else "")
    return None


def annotate(program, helpers=None):
    """(notes, names) for ``disassemble_lines``, like ``bpftool prog dump xlated linum``:
    function names as labels, the C source line (file:line: text) before the first
    instruction of each line, helper names after calls and map or global variable names
    after lddw. ``helpers`` is a HelperTable (``.get(id)``) for the names of calls."""
    insns = program.insns
    maps = getattr(program, "maps", None) or []
    line_info = getattr(program, "line_info", None) or {}
    names = {}
    for fname, pc in (getattr(program, "labels", None) or {}).items():
        if _identifier(fname) and 0 <= pc < len(insns) and pc not in names:
            names[pc] = fname
    notes = {}
    last = None
    for pc in range(len(insns)):
        before = []
        info = line_info.get(pc)
        if info is not None and len(info) >= 3 and (info[0], info[1]) != last:
            last = (info[0], info[1])
            text = str(info[2]).strip()
            before.append("# %s:%s%s" % (info[0], info[1], ": " + text if text else ""))
        comment = None
        insn = insns[pc]
        if insn.opcode == isa.CALL and insn.src == 0:
            spec = helpers.get(insn.imm) if helpers is not None else None
            if spec is not None:
                comment = spec.name
        elif insn.opcode == isa.LDDW and insn.src == isa.BPF_PSEUDO_MAP_FD:
            comment = "map " + _map_name(maps, insn.imm & 0xFFFFFFFF)
        elif insn.opcode == isa.LDDW and insn.src == isa.BPF_PSEUDO_MAP_VALUE:
            index, offset = insn.imm & 0xFFFFFFFF, (insn.imm >> 32) & 0xFFFFFFFF
            comment = "%s+%d" % (_map_name(maps, index), offset)
            if 0 <= index < len(maps):
                var = _variable_at(maps[index], offset)
                if var is not None:
                    comment += " (%s)" % var
        if before or comment:
            notes[pc] = (before, comment)
    return notes, names


def disassemble(insns, labels=True, pcs=False):
    """The whole program as text, one instruction per line."""
    lines = disassemble_lines(insns, labels, pcs)
    return "\n".join(lines) + ("\n" if lines else "")
