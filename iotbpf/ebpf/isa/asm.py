"""Assembler for the bpf_conformance / uBPF text syntax, with labels: text to instruction slots,
every error an AsmError naming the line, never a guess (syntax: docs/vm.md, "Inside")."""

from iotbpf.ebpf import isa
from iotbpf.ebpf.errors import AsmError

MAX_LINES = 1000000


def _build_mnemonics():
    """mnemonic -> (kind, opcode-or-params) for every spelling the assembler accepts."""
    table = {}
    for cls, suffixes in ((isa.BPF_ALU64, ("", "64")), (isa.BPF_ALU, ("32",))):
        for code, name in isa.ALU_NAMES.items():
            for suffix in suffixes:
                table[name + suffix] = ("alu", cls | code, 0)
        for code, name in isa.SIGNED_ALU_NAMES.items():
            for suffix in suffixes:
                table[name + suffix] = ("alu", cls | code, 1)
    for bits in isa.MOVSX_OFFSETS:
        table["movsx%d64" % bits] = ("movsx", isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X, bits)
        if bits != 32:
            table["movsx%d32" % bits] = ("movsx", isa.BPF_ALU | isa.BPF_MOV | isa.BPF_X, bits)
    for bits in (16, 32, 64):
        table["le%d" % bits] = ("end", isa.BPF_ALU | isa.BPF_END | isa.BPF_TO_LE, bits)
        table["be%d" % bits] = ("end", isa.BPF_ALU | isa.BPF_END | isa.BPF_TO_BE, bits)
        table["bswap%d" % bits] = ("end", isa.BPF_ALU64 | isa.BPF_END | isa.BPF_TO_LE, bits)
        table["swap%d" % bits] = ("end", isa.BPF_ALU64 | isa.BPF_END | isa.BPF_TO_LE, bits)
    for size, sname in isa.SIZE_NAMES.items():
        table["ldx" + sname] = ("ldx", isa.BPF_LDX | isa.BPF_MEM | size, 0)
        table["st" + sname] = ("st", isa.BPF_ST | isa.BPF_MEM | size, 0)
        table["stx" + sname] = ("stx", isa.BPF_STX | isa.BPF_MEM | size, 0)
        table["ldabs" + sname] = ("ldabs", isa.BPF_LD | isa.BPF_ABS | size, 0)
        table["ldind" + sname] = ("ldind", isa.BPF_LD | isa.BPF_IND | size, 0)
        if size != isa.BPF_DW:
            table["ldxs" + sname] = ("ldx", isa.BPF_LDX | isa.BPF_MEMSX | size, 0)
    for cls, suffixes in ((isa.BPF_JMP, ("", "64")), (isa.BPF_JMP32, ("32",))):
        for code in isa.COND_JMP_OPS:
            for suffix in suffixes:
                table[isa.JMP_NAMES[code] + suffix] = ("jcond", cls | code, 0)
    table["ja"] = ("ja", isa.JA, 0)
    table["ja32"] = ("ja32", isa.JA32, 0)
    table["gotol"] = ("ja32", isa.JA32, 0)
    table["lddw"] = ("lddw", isa.LDDW, 0)
    table["call"] = ("call", isa.CALL, 0)
    table["exit"] = ("exit", isa.EXIT, 0)
    table["lock"] = ("lock", 0, 0)
    return table


MNEMONICS = _build_mnemonics()
_ATOMIC_BY_NAME = {name: code for code, name in isa.ATOMIC_NAMES.items()}
_PSEUDO_BY_NAME = {name: src for src, name in isa.LDDW_PSEUDO_NAMES.items()}


class _Line:
    __slots__ = ("lineno", "text", "mnemonic", "operands", "pc")

    def __init__(self, lineno, text, mnemonic, operands):
        self.lineno = lineno
        self.text = text
        self.mnemonic = mnemonic
        self.operands = operands
        self.pc = 0


def _error(line, message):
    return AsmError("line %d: %s (in %r)" % (line.lineno, message, line.text))


def _split_operands(rest):
    """Split on commas outside brackets; strip each operand."""
    out = []
    depth = 0
    cur = []
    for ch in rest:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    tail = "".join(cur).strip()
    if tail or out:
        out.append(tail)
    return out


def parse_int(text):
    """Decimal or 0x hex, optionally negative; None if ``text`` is not a number."""
    t = text.strip().lower()
    neg = False
    if t.startswith("-"):
        neg = True
        t = t[1:].strip()
    elif t.startswith("+"):
        t = t[1:].strip()
    if not t:
        return None
    if t.startswith("0x"):
        digits = t[2:]
        if not digits or any(c not in "0123456789abcdef" for c in digits):
            return None
        value = int(digits, 16)
    else:
        if any(c not in "0123456789" for c in t):
            return None
        value = int(t)
    return -value if neg else value


def _is_ident(text):
    if not text or text[0] in "0123456789":
        return False
    for c in text:
        if not (c.isalpha() or c.isdigit() or c in "_.$"):
            return False
    return True


class Assembler:
    """Two passes: lay out slots and labels, then encode with labels resolved."""

    def __init__(self, text):
        self.text = text
        self.lines = []
        self.labels = {}
        self.label_lines = {}

    def run(self):
        self._parse()
        data = b"".join(self._encode(line) for line in self.lines)
        return data

    # ---------------------------------------------------------------- pass 1
    def _parse(self):
        raw_lines = self.text.split("\n")
        if len(raw_lines) > MAX_LINES:
            raise AsmError("program has more than %d lines" % MAX_LINES)
        pc = 0
        for lineno, raw in enumerate(raw_lines, 1):
            text = raw.split("#", 1)[0].strip()
            while text:
                colon = text.find(":")
                head = text[:colon].strip() if colon >= 0 else ""
                if colon >= 0 and _is_ident(head) and " " not in head:
                    probe = _Line(lineno, raw.strip(), head, [])
                    if head in self.labels:
                        raise _error(probe, "label %r defined twice (first on line %d)"
                                     % (head, self.label_lines[head]))
                    self.labels[head] = pc
                    self.label_lines[head] = lineno
                    text = text[colon + 1:].strip()
                    continue
                break
            if not text:
                continue
            parts = text.split(None, 1)
            mnemonic = parts[0].lower()
            rest = parts[1] if len(parts) > 1 else ""
            line = _Line(lineno, raw.strip(), mnemonic, rest)
            line.pc = pc
            if mnemonic == ".slot":
                size = 1
            else:
                entry = MNEMONICS.get(mnemonic)
                if entry is None:
                    raise _error(line, "unknown mnemonic %r" % parts[0])
                size = 2 if entry[0] == "lddw" else 1
            self.lines.append(line)
            pc += size
            if pc > isa.MAX_INSNS:
                raise AsmError("program has more than %d instructions" % isa.MAX_INSNS)
        if "exit" not in self.labels:
            for line in self.lines:
                if line.mnemonic == "exit":
                    self.labels["exit"] = line.pc
                    break

    # ---------------------------------------------------------------- operands
    def _reg(self, line, text):
        t = text.strip().lower()
        if t.startswith("%"):
            t = t[1:]
        if not t.startswith("r") or not t[1:].isdigit():
            raise _error(line, "expected a register %%r0..%%r10, got %r" % text)
        n = int(t[1:])
        if n > 10:
            raise _error(line, "no such register %r (registers are %%r0..%%r10)" % text)
        return n

    def _imm32(self, line, text):
        value = parse_int(text)
        if value is None:
            raise _error(line, "expected a number, got %r" % text)
        # As bpf_conformance's assembler: hex spells the 32 bits (up to 0xffffffff), decimal the
        # signed value the instruction holds (-2147483648..2147483647).
        is_hex = text.strip().lower().lstrip("+-").startswith("0x")
        if not -0x80000000 <= value <= (0xFFFFFFFF if is_hex else 0x7FFFFFFF):
            raise _error(line, "immediate %s does not fit in 32 bits" % text)
        return isa.s32(value)

    def _mem(self, line, text):
        t = text.strip()
        if not (t.startswith("[") and t.endswith("]")):
            raise _error(line, "expected a memory operand like [%%r1+4], got %r" % text)
        inner = t[1:-1].strip()
        cut = -1
        for i in range(1, len(inner)):
            if inner[i] in "+-":
                cut = i
                break
        if cut < 0:
            return self._reg(line, inner), 0
        reg = self._reg(line, inner[:cut])
        off = parse_int(inner[cut:].replace(" ", ""))
        if off is None:
            raise _error(line, "bad offset in %r" % text)
        if not -0x8000 <= off <= 0x7FFF:
            raise _error(line, "offset %d does not fit in 16 bits" % off)
        return reg, off

    def _target(self, line, text, bits=16):
        """Relative slot offset for a jump/call target: a label or +N/-N."""
        t = text.strip()
        if t in self.labels:
            off = self.labels[t] - (line.pc + 1)
        else:
            off = parse_int(t)
            if off is None:
                if _is_ident(t):
                    raise _error(line, "undefined label %r" % t)
                raise _error(line, "bad jump target %r" % t)
        limit = 1 << (bits - 1)
        if not -limit <= off < limit:
            raise _error(line, "jump offset %d does not fit in %d bits" % (off, bits))
        return off

    def _count(self, line, ops, n):
        if len(ops) != n or any(not o for o in ops):
            raise _error(line, "%s takes %d operand%s, got %d" % (line.mnemonic, n, "" if n == 1 else "s",
                                                                   len([o for o in ops if o])))

    # ---------------------------------------------------------------- pass 2
    def _encode(self, line):
        m = line.mnemonic
        if m == ".slot":
            value = parse_int(line.operands)
            if value is None or not 0 <= value <= isa.M64:
                raise _error(line, "expected a 64-bit slot value like 0x0000000000000095")
            return value.to_bytes(8, "little")
        kind, opcode, extra = MNEMONICS[m]
        enc = getattr(self, "_e_" + kind)
        insns = enc(line, opcode, extra, _split_operands(line.operands))
        return b"".join(isa.encode_slot(i) for i in insns)

    def _e_alu(self, line, opcode, off, ops):
        if opcode & 0xF0 == isa.BPF_NEG:
            self._count(line, ops, 1)
            return [isa.Instruction(opcode, self._reg(line, ops[0]), 0, 0, 0)]
        self._count(line, ops, 2)
        dst = self._reg(line, ops[0])
        if ops[1].lstrip().startswith("%"):
            return [isa.Instruction(opcode | isa.BPF_X, dst, self._reg(line, ops[1]), off, 0)]
        return [isa.Instruction(opcode, dst, 0, off, self._imm32(line, ops[1]))]

    def _e_movsx(self, line, opcode, bits, ops):
        self._count(line, ops, 2)
        return [isa.Instruction(opcode, self._reg(line, ops[0]), self._reg(line, ops[1]), bits, 0)]

    def _e_end(self, line, opcode, bits, ops):
        self._count(line, ops, 1)
        return [isa.Instruction(opcode, self._reg(line, ops[0]), 0, 0, bits)]

    def _e_lddw(self, line, opcode, extra, ops):
        if len(ops) not in (2, 3) or not all(ops):
            raise _error(line, "lddw takes a register and a 64-bit value")
        dst = self._reg(line, ops[0])
        value_text = ops[1].strip()
        words = value_text.split(None, 1)
        src = 0
        if len(ops) == 3 and ops[2].strip().startswith("src"):
            value = parse_int(value_text)
            src = parse_int(ops[2].strip()[3:])
            if value is None or src is None or not 0 <= src <= 15:
                raise _error(line, "bad lddw operands")
        elif words[0] in _PSEUDO_BY_NAME:
            src = _PSEUDO_BY_NAME[words[0]]
            if len(words) != 2:
                raise _error(line, "lddw %s needs an argument" % words[0])
            if src == isa.BPF_PSEUDO_FUNC:
                if len(ops) != 2:
                    raise _error(line, "lddw func takes one target")
                value = self._target(line, words[1], 32) & isa.M32
            else:
                index = self._imm32(line, words[1]) & isa.M32
                offset = 0
                if src in (isa.BPF_PSEUDO_MAP_VALUE, isa.BPF_PSEUDO_MAP_IDX_VALUE):
                    if len(ops) != 3:
                        raise _error(line, "lddw %s takes a map index and an offset" % words[0])
                    offset = self._imm32(line, ops[2]) & isa.M32
                elif len(ops) != 2:
                    raise _error(line, "lddw %s takes one map index" % words[0])
                value = index | (offset << 32)
        else:
            if len(ops) != 2:
                raise _error(line, "lddw takes a register and a 64-bit value")
            value = parse_int(value_text)
            if value is None:
                raise _error(line, "expected a 64-bit number, got %r" % value_text)
        if not -(1 << 63) <= value <= isa.M64:
            raise _error(line, "lddw value does not fit in 64 bits")
        return isa.lddw(dst, value, src)

    def _e_ldx(self, line, opcode, extra, ops):
        self._count(line, ops, 2)
        dst = self._reg(line, ops[0])
        src, off = self._mem(line, ops[1])
        return [isa.Instruction(opcode, dst, src, off, 0)]

    def _e_st(self, line, opcode, extra, ops):
        self._count(line, ops, 2)
        dst, off = self._mem(line, ops[0])
        return [isa.Instruction(opcode, dst, 0, off, self._imm32(line, ops[1]))]

    def _e_stx(self, line, opcode, extra, ops):
        self._count(line, ops, 2)
        dst, off = self._mem(line, ops[0])
        return [isa.Instruction(opcode, dst, self._reg(line, ops[1]), off, 0)]

    def _e_ldabs(self, line, opcode, extra, ops):
        self._count(line, ops, 1)
        return [isa.Instruction(opcode, 0, 0, 0, self._imm32(line, ops[0]))]

    def _e_ldind(self, line, opcode, extra, ops):
        self._count(line, ops, 2)
        return [isa.Instruction(opcode, 0, self._reg(line, ops[0]), 0, self._imm32(line, ops[1]))]

    def _e_jcond(self, line, opcode, extra, ops):
        self._count(line, ops, 3)
        dst = self._reg(line, ops[0])
        off = self._target(line, ops[2])
        if ops[1].lstrip().startswith("%"):
            return [isa.Instruction(opcode | isa.BPF_X, dst, self._reg(line, ops[1]), off, 0)]
        return [isa.Instruction(opcode, dst, 0, off, self._imm32(line, ops[1]))]

    def _e_ja(self, line, opcode, extra, ops):
        self._count(line, ops, 1)
        return [isa.Instruction(opcode, 0, 0, self._target(line, ops[0]), 0)]

    def _e_ja32(self, line, opcode, extra, ops):
        self._count(line, ops, 1)
        return [isa.Instruction(opcode, 0, 0, 0, self._target(line, ops[0], 32))]

    def _e_call(self, line, opcode, extra, ops):
        self._count(line, ops, 1)
        words = ops[0].split()
        if len(words) == 2 and words[0] == "local":
            return [isa.Instruction(opcode, 0, isa.BPF_PSEUDO_CALL, 0, self._target(line, words[1], 32))]
        if len(words) == 2 and words[0] in ("helper", "runtime"):
            src = 0 if words[0] == "helper" else isa.BPF_PSEUDO_KFUNC_CALL
            return [isa.Instruction(opcode, 0, src, 0, self._imm32(line, words[1]))]
        if len(words) == 1 and words[0].startswith("%"):
            return [isa.Instruction(isa.CALLX, self._reg(line, words[0]), 0, 0, 0)]
        if len(words) == 1:
            return [isa.Instruction(opcode, 0, 0, 0, self._imm32(line, words[0]))]
        raise _error(line, "bad call operand %r" % ops[0])

    def _e_exit(self, line, opcode, extra, ops):
        if ops:
            raise _error(line, "exit takes no operands")
        return [isa.Instruction(opcode)]

    def _e_lock(self, line, opcode, extra, ops):
        rest = line.operands
        bracket = rest.find("[")
        if bracket < 0:
            raise _error(line, "expected lock <op> [%rD+off], %rS")
        name = " ".join(rest[:bracket].split()).lower()
        size = isa.BPF_DW
        if name.endswith("32"):
            size = isa.BPF_W
            name = name[:-2]
        elif name.endswith("64"):
            name = name[:-2]
        code = _ATOMIC_BY_NAME.get(name)
        if code is None:
            raise _error(line, "unknown atomic operation %r" % name)
        args = _split_operands(rest[bracket:])
        self._count(line, args, 2)
        dst, off = self._mem(line, args[0])
        src = self._reg(line, args[1])
        return [isa.Instruction(isa.BPF_STX | isa.BPF_ATOMIC | size, dst, src, off, code)]


def assemble_bytes(text):
    """Assemble ``text`` to program bytes (AsmError with the line number on bad input)."""
    return Assembler(text).run()


def assemble(text):
    """Assemble ``text`` to a slot-indexed Instruction list (see isa/encoding.py)."""
    return isa.decode(assemble_bytes(text))


def assemble_with_info(text):
    """``(insns, labels, lines)``: labels name -> pc, lines pc -> (line number, source text)."""
    asm = Assembler(text)
    data = asm.run()
    lines = {line.pc: (line.lineno, line.text) for line in asm.lines}
    return isa.decode(data), dict(asm.labels), lines
