"""The compact interpreter: the reference semantics with one small tuple per instruction
(MicroPython's "interp"). MicroPython-compatible; imports nothing of iotbpf outside ``ebpf``."""

from iotbpf.ebpf import isa
from iotbpf.ebpf.engines.frames import (
    _FMT,
    _FMT_S,
    _SIZE_MASK,
    EXITED,
    StopRun,
    _call_function,
    _enter_frame,
    _invoke_helper,
    _pack_into,
    _unpack_from,
)
from iotbpf.ebpf.isa.ops import ATOMIC_FUNCS, COND32, COND64, LE_FUNCS, M32, M64, SWAP_FUNCS, alu_func
from iotbpf.ebpf.memory import FUNC_REGION_ID


class CompactInterpreter:
    """The reference semantics with one small tuple per instruction, for MicroPython's RAM.

    ``code[pc] = (handler, operands...)``, ``pc = handler(regs, code[pc], pc)``; blocks are
    charged through ``cost[pc]`` (non-zero at block leaders). About a fifth of the closure
    interpreter's memory; selected by ``engine="compact"``, and by "interp" on MicroPython.
    """

    def __init__(self, program, vm):
        self.program = program
        self.vm = vm
        self.ex = vm.ex
        self.regs = vm.ex.regs
        self.regions = vm.memory.regions
        insns = program.insns
        n = len(insns)
        self.n = n
        self.invalid = isa.validate(insns)
        cost = [0] * (n + 1)
        for start, _end, c in isa.basic_blocks(insns):
            cost[start] = c
        code = [None] * (n + 1)
        # equal tuples (same operation, operands and target) are stored once: RAM on MCUs
        shared = {}
        lddw_tail = (_c_lddw_tail, self)
        pc = 0
        while pc < n:
            insn = insns[pc]
            t = self._decode(pc, insn)
            code[pc] = shared.setdefault(t, t)
            if insn.opcode == isa.LDDW:
                if pc + 1 < n:
                    code[pc + 1] = lddw_tail
                pc += 2
            else:
                pc += 1
        shared = None
        code[n] = (_c_fault, "execution fell off the end of the program", "jump", self, n - 1 if n else 0)
        self.code = code
        self.cost = cost

    def _fault(self, pc, reason, kind):
        return self.vm.fault(pc, reason, kind, self.program)

    def _decode(self, pc, insn):
        bad = self.invalid.get(pc)
        if bad is not None:
            return (_c_fault, bad[0], bad[1], self)
        kind = isa.op_kind(insn.opcode)
        op = insn.opcode
        d, s, off, imm = insn.dst, insn.src, insn.off, insn.imm
        if kind == "alu":
            f = alu_func(op & 0xF0, op & 0x07 == isa.BPF_ALU64, off)  # validated
            if op & isa.BPF_X:
                return (_C_FAST_X.get(op, _c_alu_x) if not off else _c_alu_x, d, s, f)
            return (_C_FAST_K.get(op, _c_alu_k) if not off else _c_alu_k, d, imm & M64, f)
        if kind == "end":
            f = LE_FUNCS[imm] if op == isa.BPF_ALU | isa.BPF_END | isa.BPF_TO_LE else SWAP_FUNCS[imm]
            return (_c_alu_k, d, 0, f)
        if kind == "lddw":
            return (_c_lddw, d, self.vm.resolve_lddw(pc, insn, self.program))
        if kind in ("ldx", "ldxs"):
            size = isa.SIZE_BYTES[op & 0x18]
            fmt = (_FMT_S if kind == "ldxs" else _FMT)[size]
            return (_c_ldx, d, s, off, size, fmt, self)
        if kind in ("st", "stx"):
            size = isa.SIZE_BYTES[op & 0x18]
            fmt = _FMT[size]
            if kind == "st":
                return (_c_st, d, off, size, fmt, self, imm & _SIZE_MASK[size])
            return (_c_stx, d, off, size, fmt, self, s, _SIZE_MASK[size])
        if kind == "atomic":
            aop = imm & M32
            size = 8 if op & 0x18 == isa.BPF_DW else 4
            f = ATOMIC_FUNCS.get(aop if aop == isa.BPF_XCHG else aop & ~isa.BPF_FETCH)  # validated
            return (_c_atomic, d, s, off, size, aop, f, self)
        if kind in ("ldabs", "ldind"):
            size = isa.SIZE_BYTES[op & 0x18]
            return (_c_ldabs, s if kind == "ldind" else -1, imm, size, ">" + _FMT[size][1], self)
        if kind in ("ja", "ja32"):
            target = insn.jump_target(pc)
            if not 0 <= target < self.n:
                return (_c_fault, "jump target %d out of range" % target, "jump", self)
            return (_c_ja, target)
        if kind == "jcond":
            is64 = op & 0x07 == isa.BPF_JMP
            cond = (COND64 if is64 else COND32)[op & 0xF0]
            mask = M64 if is64 else M32
            target = insn.jump_target(pc)
            x = 1 if op & isa.BPF_X else 0
            b = s if x else imm & mask
            if not 0 <= target < self.n:
                return (_c_jbad, d, b, cond, mask, x, self, "jump target %d out of range" % target)
            if is64:
                fast = (_C_FAST_JX if x else _C_FAST_JK).get(op & 0xF0)
                if fast is not None:
                    return (fast, d, b, cond, mask, target)
            return (_c_jx if x else _c_jk, d, b, cond, mask, target)
        if kind == "call":
            if s == isa.BPF_PSEUDO_CALL:
                target = pc + 1 + imm
                if not 0 <= target < self.n:
                    return (_c_fault, "call target %d out of range" % target, "jump", self)
                return (_c_call_local, target, self)
            if s != 0:
                return (_c_fault, "kernel function calls are not supported", "helper", self)
            fn, name = self.vm.helper(imm)
            if fn is None:
                return (_c_fault, "unknown helper %d" % imm, "helper", self)
            return (_c_call_helper, fn, name, self)
        if kind == "callx":
            return (_c_callx, d, self)
        return (_c_exit, self.ex)

    def is_entry(self, pc):
        return 0 <= pc < self.n and self.cost[pc] != 0

    def run_main(self):
        self._loop(0)
        return self.regs[0]

    def call_function(self, pc, r1=0, r2=0, r3=0, r4=0, r5=0):
        return _call_function(self, pc, r1, r2, r3, r4, r5)

    def _charge(self, pc):
        """Charge the block starting at ``pc`` (if one does) against the budget."""
        ex = self.ex
        c = self.cost[pc]
        if c:
            if c > ex.left:
                raise self._fault(pc, "instruction budget exhausted (%d instructions)" % (ex.budget or 0),
                                  "budget")
            ex.left -= c

    def _loop(self, pc):
        ex = self.ex
        r = self.regs
        code = self.code
        cost = self.cost
        trace = ex.trace
        profile = ex.profile
        insns = self.program.insns
        if trace is None and profile is None:
            while pc >= 0:
                c = cost[pc]
                if c:
                    if c > ex.left:
                        raise self._fault(pc, "instruction budget exhausted (%d instructions)"
                                          % (ex.budget or 0), "budget")
                    ex.left -= c
                t = code[pc]
                pc = t[0](r, t, pc)
            return pc
        while pc >= 0:  # tracing or profiling: the same steps, recorded
            self._charge(pc)
            t = code[pc]
            if profile is not None and pc < self.n:
                profile[pc] = profile.get(pc, 0) + 1
            before = list(r)
            nxt = t[0](r, t, pc)
            if trace is not None:
                changed = [(i, r[i]) for i in range(isa.NUM_REGS) if r[i] != before[i]]
                trace.append((pc, isa.format_insn(insns[pc], pc), changed))
            pc = nxt
        return pc


# Handlers of the compact interpreter: ``handler(regs, t, pc) -> next pc`` with t = code[pc].
def _c_fault(r, t, pc):
    raise t[3]._fault(t[4] if len(t) > 4 else pc, t[1], t[2])


def _c_lddw_tail(r, t, pc):
    raise t[1]._fault(pc, "jump into the second slot of the lddw at pc %d" % (pc - 1), "jump")


def _c_alu_k(r, t, pc):
    d = t[1]
    r[d] = t[3](r[d], t[2])
    return pc + 1


def _c_alu_x(r, t, pc):
    d = t[1]
    r[d] = t[3](r[d], r[t[2]])
    return pc + 1


# the most frequent forms without the value-function call (same results as the tables)
def _c_mov_k(r, t, pc):
    r[t[1]] = t[2]
    return pc + 1


def _c_add_k(r, t, pc):
    d = t[1]
    r[d] = (r[d] + t[2]) & M64
    return pc + 1


def _c_mov_x(r, t, pc):
    r[t[1]] = r[t[2]]
    return pc + 1


def _c_add_x(r, t, pc):
    d = t[1]
    r[d] = (r[d] + r[t[2]]) & M64
    return pc + 1


def _c_jeq_k(r, t, pc):
    return t[5] if r[t[1]] == t[2] else pc + 1


def _c_jne_k(r, t, pc):
    return t[5] if r[t[1]] != t[2] else pc + 1


def _c_jeq_x(r, t, pc):
    return t[5] if r[t[1]] == r[t[2]] else pc + 1


def _c_jne_x(r, t, pc):
    return t[5] if r[t[1]] != r[t[2]] else pc + 1


_C_FAST_K = {isa.BPF_ALU64 | isa.BPF_MOV: _c_mov_k, isa.BPF_ALU64 | isa.BPF_ADD: _c_add_k}
_C_FAST_X = {isa.BPF_ALU64 | isa.BPF_X | isa.BPF_MOV: _c_mov_x,
             isa.BPF_ALU64 | isa.BPF_X | isa.BPF_ADD: _c_add_x}
_C_FAST_JK = {isa.BPF_JEQ: _c_jeq_k, isa.BPF_JNE: _c_jne_k}
_C_FAST_JX = {isa.BPF_JEQ: _c_jeq_x, isa.BPF_JNE: _c_jne_x}


def _c_lddw(r, t, pc):
    r[t[1]] = t[2]
    return pc + 2


def _c_access(eng, pc, a, size, write):
    exc = eng.vm.memory.fault(a, size, write)
    return eng.vm.fault(pc, exc.reason, exc.kind, eng.program, a)


def _c_ldx(r, t, pc):
    a = (r[t[2]] + t[3]) & M64
    size = t[4]
    g = t[6].regions.get(a >> 32)
    o = a & M32
    if g is None or o + size > g[1]:
        raise _c_access(t[6], pc, a, size, False)
    r[t[1]] = _unpack_from(t[5], g[0], o)[0] & M64
    return pc + 1


def _c_store(t, pc, r, value):
    a = (r[t[1]] + t[2]) & M64
    size = t[3]
    g = t[5].regions.get(a >> 32)
    o = a & M32
    if g is None or o + size > g[1] or not g[2]:
        raise _c_access(t[5], pc, a, size, True)
    _pack_into(t[4], g[0], o, value)


def _c_st(r, t, pc):
    _c_store(t, pc, r, t[6])
    return pc + 1


def _c_stx(r, t, pc):
    _c_store(t, pc, r, r[t[6]] & t[7])
    return pc + 1


def _c_atomic(r, t, pc):
    d, s, off, size, aop, f, eng = t[1], t[2], t[3], t[4], t[5], t[6], t[7]
    a = (r[d] + off) & M64
    g = eng.regions.get(a >> 32)
    o = a & M32
    if g is None or o + size > g[1] or not g[2]:
        raise _c_access(eng, pc, a, size, True)
    fmt = _FMT[size]
    mask = _SIZE_MASK[size]
    old = _unpack_from(fmt, g[0], o)[0]
    if aop == isa.BPF_CMPXCHG:
        if old == r[0] & mask:
            _pack_into(fmt, g[0], o, r[s] & mask)
        r[0] = old
        return pc + 1
    _pack_into(fmt, g[0], o, f(old, r[s]) & mask)
    if aop & isa.BPF_FETCH:
        r[s] = old
    return pc + 1


def _c_ldabs(r, t, pc):
    eng = t[5]
    base, length = eng.ex.packet
    o = (t[2] + (r[t[1]] if t[1] >= 0 else 0)) & M32
    size = t[3]
    if o + size > length:
        raise StopRun(0)
    r[0] = _unpack_from(t[4], eng.regions[base >> 32][0], o)[0]
    return pc + 1


def _c_ja(r, t, pc):
    return t[1]


def _c_jk(r, t, pc):
    return t[5] if t[3](r[t[1]] & t[4], t[2]) else pc + 1


def _c_jx(r, t, pc):
    mask = t[4]
    return t[5] if t[3](r[t[1]] & mask, r[t[2]] & mask) else pc + 1


def _c_jbad(r, t, pc):
    mask = t[4]
    b = r[t[2]] & mask if t[5] else t[2]
    if t[3](r[t[1]] & mask, b):
        raise t[6]._fault(pc, t[7], "jump")
    return pc + 1


def _c_call_local(r, t, pc):
    return _enter_frame(t[2], r, pc, t[1])


def _c_call_helper(r, t, pc):
    eng = t[3]
    return _invoke_helper(eng.vm, eng.ex, r, eng.program, pc, t[1], t[2])


def _c_callx(r, t, pc):
    eng = t[2]
    d = t[1]
    v = r[d]
    if (v >> 32) == FUNC_REGION_ID:
        target = v & M32
        if not eng.is_entry(target):
            raise eng._fault(pc, "callx target %d is not the start of a function" % target, "jump")
        return _enter_frame(eng, r, pc, target)
    fn, name = eng.vm.helper(v)
    if fn is None:
        raise eng._fault(pc, "unknown helper %d (called through %%r%d)" % (v, d), "helper")
    return _invoke_helper(eng.vm, eng.ex, r, eng.program, pc, fn, name)


def _c_exit(r, t, pc):
    frames = t[1].frames
    if frames:
        nxt, r[6], r[7], r[8], r[9], r[10] = frames.pop()
        return nxt
    return EXITED
