"""Classic BPF (tcpdump filters): parse ``tcpdump -d``/``-dd``/``-ddd``, check as Linux's
bpf_check_classic, translate to eBPF as bpf_convert_filter, run on packets (docs/vm.md, "Inside")."""

from iotbpf.ebpf import isa
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.isa import Instruction

# classic opcode fields
LD, LDX, ST, STX, ALU, JMP, RET, MISC = 0, 1, 2, 3, 4, 5, 6, 7
W, H, B = 0x00, 0x08, 0x10
IMM, ABS, IND, MEM, LEN, MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
K, X = 0x00, 0x08
RVAL_A = 0x10
TAX, TXA = 0x00, 0x80
MEMWORDS = 16
MAXINSNS = 4096
SKF_AD_OFF = -0x1000

REG_A, REG_X, REG_TMP, REG_CTX, REG_LEN, REG_FP = 0, 7, 8, 6, 9, 10
M32 = 0xFFFFFFFF

ALU_OPS = {"add": isa.BPF_ADD, "sub": isa.BPF_SUB, "mul": isa.BPF_MUL, "div": isa.BPF_DIV,
           "mod": isa.BPF_MOD, "and": isa.BPF_AND, "or": isa.BPF_OR, "xor": isa.BPF_XOR,
           "lsh": isa.BPF_LSH, "rsh": isa.BPF_RSH}
JMP_OPS = {"jeq": isa.BPF_JEQ, "jgt": isa.BPF_JGT, "jge": isa.BPF_JGE, "jset": isa.BPF_JSET}
SIZES = {"ld": W, "ldh": H, "ldb": B}


class CInsn:
    """One classic instruction: code (u16), jt, jf (u8), k (u32)."""

    __slots__ = ("code", "jt", "jf", "k")

    def __init__(self, code, jt=0, jf=0, k=0):
        self.code = code
        self.jt = jt
        self.jf = jf
        self.k = k & M32

    def __eq__(self, other):
        return (isinstance(other, CInsn) and self.code == other.code and self.jt == other.jt
                and self.jf == other.jf and self.k == other.k)

    def __repr__(self):
        return "{ 0x%x, %d, %d, 0x%08x }" % (self.code, self.jt, self.jf, self.k)


# ------------------------------------------------------------------ parsing
def parse(text):
    """Classic instructions from ``tcpdump -d``, ``-dd`` or ``-ddd`` output (auto-detected)."""
    stripped = text.strip()
    if not stripped:
        raise LoadError("empty classic BPF program")
    if "{" in stripped:
        return parse_dd(stripped)
    first = stripped.split("\n")[0].split()
    if len(first) == 1 and first[0].isdigit():
        return parse_ddd(stripped)
    return parse_d(stripped)


def _num(tok, lineno):
    t = tok.strip().rstrip(",")
    try:
        if t.lower().startswith("0x"):
            return int(t[2:], 16)
        if t.lower().startswith("-0x"):
            return -int(t[3:], 16)
        return int(t)
    except ValueError:
        raise LoadError("line %d: bad number %r" % (lineno, tok)) from None


def parse_dd(text):
    """``tcpdump -dd``: ``{ 0x28, 0, 0, 0x0000000c },`` lines."""
    out = []
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.strip()
        if not line:
            continue
        if not (line.startswith("{") and "}" in line):
            raise LoadError("line %d: expected '{ code, jt, jf, k },' got %r" % (lineno, line[:60]))
        fields = line[1:line.index("}")].split(",")
        if len(fields) != 4:
            raise LoadError("line %d: expected 4 fields, got %d" % (lineno, len(fields)))
        code, jt, jf, k = [_num(f, lineno) for f in fields]
        out.append(_checked(code, jt, jf, k, lineno))
    return out


def parse_ddd(text):
    """``tcpdump -ddd``: a count line then ``code jt jf k`` decimal lines."""
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    count = _num(lines[0], 1)
    out = []
    for lineno, line in enumerate(lines[1:], 2):
        fields = line.split()
        if len(fields) != 4:
            raise LoadError("line %d: expected 'code jt jf k', got %r" % (lineno, line[:60]))
        code, jt, jf, k = [_num(f, lineno) for f in fields]
        out.append(_checked(code, jt, jf, k, lineno))
    if count != len(out):
        raise LoadError("-ddd listing says %d instructions but has %d" % (count, len(out)))
    return out


def _checked(code, jt, jf, k, lineno):
    if not 0 <= code <= 0xFFFF or not 0 <= jt <= 255 or not 0 <= jf <= 255:
        raise LoadError("line %d: code/jt/jf out of range" % lineno)
    if not -0x80000000 <= k <= M32:
        raise LoadError("line %d: k out of range" % lineno)
    return CInsn(code, jt, jf, k)


def parse_d(text):
    """``tcpdump -d``: ``(001) jeq      #0x800           jt 2    jf 5`` lines."""
    out = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith(";"):
            continue
        n = len(out)
        if line.startswith("("):
            close = line.find(")")
            if close < 0:
                raise LoadError("line %d: unbalanced '(' in %r" % (lineno, line))
            if _num(line[1:close], lineno) != n:
                raise LoadError("line %d: instruction number %s out of sequence (expected %d)"
                                % (lineno, line[1:close], n))
            line = line[close + 1:].strip()
        out.append(_parse_d_insn(line, n, lineno))
    return out


def _k(tok, lineno):
    """A k operand: a number that fits the 32-bit k field (as the -dd form requires)."""
    k = _num(tok, lineno)
    if not -0x80000000 <= k <= M32:
        raise LoadError("line %d: k out of range: %s" % (lineno, tok.strip()))
    return k


def _mem_index(arg, lineno):
    if not (arg.startswith("M[") and arg.endswith("]")):
        raise LoadError("line %d: expected M[n], got %r" % (lineno, arg))
    return _k(arg[2:-1], lineno)


def _imm(arg, lineno):
    if not arg.startswith("#"):
        raise LoadError("line %d: expected #value, got %r" % (lineno, arg))
    return _k(arg[1:], lineno)


def _parse_d_insn(line, n, lineno):
    parts = line.split(None, 1)
    op = parts[0].lower()
    rest = parts[1].strip() if len(parts) > 1 else ""
    jt = jf = None
    if " jt " in " " + rest + " " or rest.startswith("jt"):
        words = rest.split()
        try:
            i = words.index("jt")
            jt = _num(words[i + 1], lineno)
            if "jf" in words:
                jf = _num(words[words.index("jf") + 1], lineno)
            rest = " ".join(words[:i])
        except (ValueError, IndexError):
            raise LoadError("line %d: bad jump targets in %r" % (lineno, line)) from None
    arg = rest.replace(" ", "")
    if op in SIZES:
        size = SIZES[op]
        if arg in ("#pktlen", "#len", "len") and op == "ld":
            return CInsn(LD | W | LEN)
        if arg.startswith("#") and op == "ld":
            return CInsn(LD | IMM, k=_imm(arg, lineno))
        if arg.startswith("M[") and op == "ld":
            return CInsn(LD | MEM, k=_mem_index(arg, lineno))
        if arg.startswith("[x+") and arg.endswith("]"):
            return CInsn(LD | size | IND, k=_k(arg[3:-1], lineno))
        if arg.startswith("[") and arg.endswith("]"):
            return CInsn(LD | size | ABS, k=_k(arg[1:-1], lineno))
        raise LoadError("line %d: bad operand %r for %s" % (lineno, rest, op))
    if op in ("ldx", "ldxb"):
        if arg in ("#pktlen", "#len", "len"):
            return CInsn(LDX | W | LEN)
        if op == "ldxb" or arg.startswith("4*("):
            if not (arg.startswith("4*([") and arg.endswith("]&0xf)")):
                raise LoadError("line %d: expected 4*([k]&0xf), got %r" % (lineno, rest))
            return CInsn(LDX | B | MSH, k=_k(arg[4:arg.index("]")], lineno))
        if arg.startswith("#"):
            return CInsn(LDX | IMM, k=_imm(arg, lineno))
        if arg.startswith("M["):
            return CInsn(LDX | MEM, k=_mem_index(arg, lineno))
        raise LoadError("line %d: bad operand %r for ldx" % (lineno, rest))
    if op == "st":
        return CInsn(ST, k=_mem_index(arg, lineno))
    if op == "stx":
        return CInsn(STX, k=_mem_index(arg, lineno))
    if op in ALU_OPS:
        if arg == "x":
            return CInsn(ALU | ALU_OPS[op] | X)
        return CInsn(ALU | ALU_OPS[op] | K, k=_imm(arg, lineno))
    if op == "neg":
        return CInsn(ALU | isa.BPF_NEG)
    if op in ("ja", "jmp"):
        target = _num(arg.lstrip("#"), lineno)
        if not n < target <= n + 1 + M32:
            raise LoadError("line %d: ja target %d out of range" % (lineno, target))
        return CInsn(JMP | isa.BPF_JA, k=target - n - 1)
    if op in JMP_OPS:
        if jt is None:
            raise LoadError("line %d: %s needs 'jt N jf N'" % (lineno, op))
        if jf is None:
            jf = n + 1
        if jt <= n or jf <= n:
            raise LoadError("line %d: jumps must go forward" % lineno)
        jt_rel, jf_rel = jt - n - 1, jf - n - 1
        if jt_rel > 255 or jf_rel > 255:
            raise LoadError("line %d: jump target too far (at most 255 instructions ahead)" % lineno)
        if arg == "x":
            return CInsn(JMP | JMP_OPS[op] | X, jt_rel, jf_rel)
        return CInsn(JMP | JMP_OPS[op] | K, jt_rel, jf_rel, _imm(arg, lineno))
    if op == "ret":
        if arg in ("", "a"):
            return CInsn(RET | RVAL_A)
        if arg == "x":
            return CInsn(RET | X)
        return CInsn(RET | K, k=_imm(arg, lineno))
    if op == "tax":
        return CInsn(MISC | TAX)
    if op == "txa":
        return CInsn(MISC | TXA)
    raise LoadError("line %d: unknown classic BPF instruction %r" % (lineno, op))


# ------------------------------------------------------------------ checking
def check(insns):
    """Linux's bpf_check_classic rules; LoadError naming the instruction otherwise."""
    n = len(insns)
    if n == 0 or n > MAXINSNS:
        raise LoadError("classic BPF program has %d instructions (1..%d allowed)" % (n, MAXINSNS))
    for i, c in enumerate(insns):
        cls = c.code & 7
        mode = c.code & 0xE0
        op = c.code & 0xF0
        where = "instruction %d (%r)" % (i, c)
        if cls == ALU:
            if op not in ALU_OPS.values() and op != isa.BPF_NEG:
                raise LoadError("%s: unknown ALU operation" % where)
            if c.code & X == K and op in (isa.BPF_DIV, isa.BPF_MOD) and c.k == 0:
                raise LoadError("%s: division by constant zero" % where)
            if c.code & X == K and op in (isa.BPF_LSH, isa.BPF_RSH) and c.k >= 32:
                raise LoadError("%s: shift by %d" % (where, c.k))
        elif cls in (LD, LDX):
            if mode == MEM or cls in (ST, STX):
                if c.k >= MEMWORDS:
                    raise LoadError("%s: scratch memory index %d (0..15)" % (where, c.k))
            if mode in (ABS, IND) and c.k >= (SKF_AD_OFF & M32):
                raise LoadError("%s: Linux ancillary data loads (SKF_AD_*) are not supported" % where)
            if cls == LD and mode not in (IMM, ABS, IND, MEM, LEN):
                raise LoadError("%s: unknown load mode" % where)
            if cls == LDX and mode not in (IMM, MEM, LEN, MSH):
                raise LoadError("%s: unknown ldx mode" % where)
            if mode in (ABS, IND) and c.code & 0x18 not in (W, H, B):
                raise LoadError("%s: bad load size" % where)
        elif cls in (ST, STX):
            if c.k >= MEMWORDS:
                raise LoadError("%s: scratch memory index %d (0..15)" % (where, c.k))
        elif cls == JMP:
            if op == isa.BPF_JA:
                if c.k >= n - i - 1:
                    raise LoadError("%s: jump past the end" % where)
            elif op in JMP_OPS.values():
                if i + 1 + c.jt >= n or i + 1 + c.jf >= n:
                    raise LoadError("%s: jump past the end" % where)
            else:
                raise LoadError("%s: unknown jump" % where)
        elif cls == RET:
            if c.code & 0x18 not in (K, X, RVAL_A):
                raise LoadError("%s: bad return source" % where)
        elif cls == MISC:
            if c.code & 0xF8 not in (TAX, TXA):
                raise LoadError("%s: unknown misc operation" % where)
    if insns[-1].code & 7 != RET:
        raise LoadError("classic BPF program must end with ret")


# ------------------------------------------------------------------ translation
def _alu32(op, dst, src=0, imm=0, use_x=False):
    return Instruction(isa.BPF_ALU | op | (isa.BPF_X if use_x else isa.BPF_K), dst, src, 0, imm)


def _mov32_imm(dst, imm):
    return _alu32(isa.BPF_MOV, dst, imm=isa.s32(imm))


def _mov64_reg(dst, src):
    return Instruction(isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X, dst, src, 0, 0)


def _mem_off(k):
    return -(MEMWORDS - k) * 4


def translate(insns):
    """eBPF Instructions equivalent to the classic program (checked first)."""
    check(insns)
    out = [_alu32(isa.BPF_XOR, REG_A, REG_A, use_x=True), _alu32(isa.BPF_XOR, REG_X, REG_X, use_x=True),
           _mov64_reg(REG_CTX, 1), _mov64_reg(REG_LEN, 2)]
    starts = []
    fixups = []  # (ebpf index, cbpf target index)
    exit_insn = Instruction(isa.EXIT)
    for i, c in enumerate(insns):
        starts.append(len(out))
        cls = c.code & 7
        mode = c.code & 0xE0
        op = c.code & 0xF0
        if cls == LD:
            if mode in (ABS, IND):
                src = REG_X if mode == IND else 0
                out.append(Instruction(isa.BPF_LD | mode | (c.code & 0x18), 0, src, 0, isa.s32(c.k)))
            elif mode == IMM:
                out.append(_mov32_imm(REG_A, c.k))
            elif mode == MEM:
                out.append(Instruction(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_W, REG_A, REG_FP, _mem_off(c.k)))
            else:  # LEN
                out.append(_alu32(isa.BPF_MOV, REG_A, REG_LEN, use_x=True))
        elif cls == LDX:
            if mode == IMM:
                out.append(_mov32_imm(REG_X, c.k))
            elif mode == MEM:
                out.append(Instruction(isa.BPF_LDX | isa.BPF_MEM | isa.BPF_W, REG_X, REG_FP, _mem_off(c.k)))
            elif mode == LEN:
                out.append(_alu32(isa.BPF_MOV, REG_X, REG_LEN, use_x=True))
            else:  # MSH: X = 4 * (pkt[k] & 0xf), A preserved
                out.append(_mov64_reg(REG_TMP, REG_A))
                out.append(Instruction(isa.BPF_LD | isa.BPF_ABS | isa.BPF_B, 0, 0, 0, isa.s32(c.k)))
                out.append(_alu32(isa.BPF_AND, REG_A, imm=0xF))
                out.append(_alu32(isa.BPF_LSH, REG_A, imm=2))
                out.append(_mov64_reg(REG_X, REG_A))
                out.append(_mov64_reg(REG_A, REG_TMP))
        elif cls in (ST, STX):
            src = REG_A if cls == ST else REG_X
            out.append(Instruction(isa.BPF_STX | isa.BPF_MEM | isa.BPF_W, REG_FP, src, _mem_off(c.k)))
        elif cls == ALU:
            if op == isa.BPF_NEG:
                out.append(_alu32(isa.BPF_NEG, REG_A))
            elif c.code & X:
                if op in (isa.BPF_DIV, isa.BPF_MOD):  # classic BPF returns 0 on division by zero
                    out.append(Instruction(isa.BPF_JMP | isa.BPF_JNE | isa.BPF_K, REG_X, 0, 2, 0))
                    out.append(_alu32(isa.BPF_XOR, REG_A, REG_A, use_x=True))
                    out.append(exit_insn)
                out.append(_alu32(op, REG_A, REG_X, use_x=True))
            else:
                out.append(_alu32(op, REG_A, imm=isa.s32(c.k)))
        elif cls == JMP:
            if op == isa.BPF_JA:
                fixups.append((len(out), i + 1 + c.k))
                out.append(Instruction(isa.JA))
                continue
            use_x = bool(c.code & X)
            src = REG_X
            if not use_x and c.k & 0x80000000:
                out.append(_mov32_imm(REG_TMP, c.k))  # eBPF immediates are signed: compare a register
                use_x, src = True, REG_TMP
            code = isa.BPF_JMP | op | (isa.BPF_X if use_x else isa.BPF_K)
            imm = 0 if use_x else c.k
            fixups.append((len(out), i + 1 + c.jt))
            out.append(Instruction(code, REG_A, src if use_x else 0, 0, imm))
            if c.jf:
                fixups.append((len(out), i + 1 + c.jf))
                out.append(Instruction(isa.JA))
        elif cls == RET:
            src = c.code & 0x18
            if src == K:
                out.append(_mov32_imm(REG_A, c.k))
            elif src == X:
                out.append(_alu32(isa.BPF_MOV, REG_A, REG_X, use_x=True))
            out.append(exit_insn)
        else:  # MISC
            if c.code & 0xF8 == TAX:
                out.append(_alu32(isa.BPF_MOV, REG_X, REG_A, use_x=True))
            else:
                out.append(_alu32(isa.BPF_MOV, REG_A, REG_X, use_x=True))
    for idx, target in fixups:
        out[idx].off = starts[target] - (idx + 1)
    return out


def to_program(insns, name="cbpf"):
    """A Program (vm's) for the translated classic filter."""
    from iotbpf.ebpf.program import Program

    return Program(translate(insns), name=name)


def run_filter(insns, packet, engine="interp"):
    """The filter's return value (u32) on ``packet`` (bytes)."""
    from iotbpf.ebpf.engines.vm import VM

    vm = VM(to_program(insns), engine=engine, budget=len(insns) * 16 + 64)
    return vm.run(mem=bytes(packet)) & M32


def encode_dd(insns):
    """``tcpdump -dd`` text for classic instructions (for round trips and tools)."""
    return "\n".join("{ 0x%x, %d, %d, 0x%08x }," % (c.code, c.jt, c.jf, c.k) for c in insns)
