"""The compiler's view of a program: its basic blocks, what each reads and writes, the bpf functions
and the registers live into each block (a backward fixpoint of isa/cfg.py)."""

from iotbpf.ebpf import isa
from iotbpf.ebpf.isa import M32, M64, cfg

ALL_REGS = (1 << 10) - 1  # r0..r9 as a bit set (r10 is never a local: it is the frame's fp)
R0_5 = (1 << 6) - 1
_R1_5 = R0_5 & ~1
STACK = isa.STACK_SIZE
DEPTH_LIMIT = isa.MAX_CALL_FRAMES - 1
EVENT_ENTRY = -1  # the key of e0 (VM.run_event's entry) among the generic entries, which are keyed by pc


def regs_in(mask):
    return [i for i in range(10) if mask >> i & 1]


# ---------------------------------------------------------------- program analysis
class _Block:
    __slots__ = ("start", "cost", "items", "term", "succs", "uses", "defs")

    def __init__(self, start, cost):
        self.start = start
        self.cost = cost
        self.items = []  # (pc, insn) of the straight-line part
        self.term = None  # ("exit",) ("ja",) ("jcond", pc, insn, in_range) ("call", pc, target)
        #                   ("helper", pc, hid) ("callx", pc, reg) ("fault", k) ("fall",)
        self.succs = []


class Analysis:
    """Blocks, faults and functions of one program: everything the source depends on."""

    def __init__(self, insns):
        self.insns = insns
        n = self.n = len(insns)
        self.invalid = isa.validate(insns)
        self.faults = []  # k -> (pc, reason, kind)
        self.lddw = []  # (pc, insn) whose value is bound at load time
        self.lddw_index = {}
        tails = isa.lddw_tails(insns)
        self.blocks = {}
        for start, end, cost in isa.basic_blocks(insns):
            self.blocks[start] = self._decode_block(start, end, cost, tails)
        end_block = _Block(n, 0)
        end_block.term = ("fault", self.fault(n - 1 if n else 0, "execution fell off the end of the program",
                                              "jump"))
        self.blocks[n] = end_block
        for blk in list(self.blocks.values()):
            for s in blk.succs:
                if s not in self.blocks:
                    # a fall-through past a lddw whose second slot is a jump target
                    extra = _Block(s, 0)
                    extra.term = ("fault", self.fault(s, "execution continued into the middle of a block",
                                                      "jump"))
                    self.blocks[s] = extra
        self.leaders = set(start for start, _, _ in isa.basic_blocks(insns))
        self.subprograms = isa.function_starts(insns)

    def fault(self, pc, reason, kind):
        self.faults.append((pc, reason, kind))
        return len(self.faults) - 1

    def _decode_block(self, start, end, cost, tails):
        insns = self.insns
        blk = _Block(start, cost)
        pc = start
        while pc < end:
            insn = insns[pc]
            if pc in tails:
                blk.term = ("fault", self.fault(pc, "jump into the second slot of the lddw at pc %d" % (pc - 1),
                                                "jump"))
                return blk
            bad = self.invalid.get(pc)
            if bad is not None:
                blk.term = ("fault", self.fault(pc, bad[0], bad[1]))
                return blk
            k = insn.kind
            if k in ("ja", "ja32"):
                t = insn.jump_target(pc)
                if 0 <= t < self.n:
                    blk.term = ("ja",)
                    blk.succs = [t]
                else:
                    blk.term = ("fault", self.fault(pc, "jump target %d out of range" % t, "jump"))
                return blk
            if k == "jcond":
                t = insn.jump_target(pc)
                if 0 <= t < self.n:
                    blk.term = ("jcond", pc, insn, True)
                    blk.succs = [t, pc + 1] if t != pc + 1 else [t]
                else:
                    blk.term = ("jcond", pc, insn, self.fault(pc, "jump target %d out of range" % t, "jump"))
                    blk.succs = [pc + 1]
                return blk
            if k == "call":
                if insn.src == isa.BPF_PSEUDO_CALL:
                    t = pc + 1 + insn.imm
                    if not 0 <= t < self.n:
                        blk.term = ("fault", self.fault(pc, "call target %d out of range" % t, "jump"))
                        return blk
                    blk.term = ("call", pc, t)
                elif insn.src != 0:
                    blk.term = ("fault", self.fault(pc, "kernel function calls are not supported", "helper"))
                    return blk
                else:
                    blk.term = ("helper", pc, insn.imm)
                blk.succs = [pc + 1]
                return blk
            if k == "callx":
                blk.term = ("callx", pc, insn.dst)
                blk.succs = [pc + 1]
                return blk
            if k == "exit":
                blk.term = ("exit",)
                return blk
            if k == "lddw" and insn.src != 0:
                self.lddw_index[pc] = len(self.lddw)
                self.lddw.append((pc, insn))
            blk.items.append((pc, insn))
            pc += 2 if insn.opcode == isa.LDDW else 1
        blk.term = ("fall",)
        blk.succs = [pc]
        return blk

    def reachable(self, entry):
        seen = {entry}
        work = [entry]
        while work:
            b = work.pop()
            for s in self.blocks[b].succs:
                if s not in seen:
                    seen.add(s)
                    work.append(s)
        return seen


def template_fields(is64, s, register, k, off, d):
    """The values an ops.py expression template names."""
    width = 64 if is64 else 32
    low = (1 << off) - 1 if off > 1 else 0
    return {"d": d, "s": s, "n": "(%s & %d)" % (s, width - 1) if register else str(k & (width - 1)),
            "m": M64 if is64 else M32, "sign": 1 << (width - 1), "low": low, "half": (low + 1) >> 1}


def uses_defs(insn):
    """(uses, defs) register bit sets of a straight-line instruction."""
    kind = insn.kind
    d, s = insn.dst, insn.src
    db = (1 << d) if d < 10 else 0
    sb = (1 << s) if s < 10 else 0
    op = insn.opcode
    if kind == "alu":
        code = op & 0xF0
        src = sb if op & isa.BPF_X else 0
        if code == isa.BPF_MOV:
            return src, db
        return db | src, db
    if kind == "end":
        return db, db
    if kind == "lddw":
        return 0, db
    if kind in ("ldx", "ldxs"):
        return sb, db
    if kind == "st":
        return db, 0
    if kind == "stx":
        return db | sb, 0
    if kind == "atomic":
        aop = insn.imm & M32
        if aop == isa.BPF_CMPXCHG:
            return db | sb | 1, 1
        if aop & isa.BPF_FETCH:
            return db | sb, sb
        return db | sb, 0
    if kind == "ldabs":
        return 0, 1
    if kind == "ldind":
        return sb, 1
    return 0, 0


# ---------------------------------------------------------------- functions and liveness
class Function:
    __slots__ = ("entry", "index", "nodes", "params", "rets", "live_in", "calls")

    def __init__(self, entry, index, nodes):
        self.entry = entry
        self.index = index
        self.nodes = nodes
        self.params = 0
        self.rets = 1
        self.live_in = {}


def _live_transfer(an, f, by_entry, direct_helpers):
    """Registers live at the start of block ``node`` of ``f`` given those live after it."""
    def transfer(node, out):
        blk = an.blocks[node]
        term = blk.term
        t = term[0]
        if t == "exit":
            cur = f.rets
        elif t == "helper":
            cur = ((out & ~1) | _R1_5) if term[2] in direct_helpers else ALL_REGS
        elif t == "callx":
            cur = ALL_REGS
        elif t == "call":
            g = by_entry[term[2]]
            cur = (out & ~g.rets) | g.params
        elif t == "jcond":
            insn = term[2]
            cur = out | (1 << insn.dst if insn.dst < 10 else 0)
            if insn.opcode & isa.BPF_X and insn.src < 10:
                cur |= 1 << insn.src
        elif t == "fault":
            cur = 0
        else:
            cur = out
        for _pc, insn in reversed(blk.items):
            uses, defs = uses_defs(insn)
            cur = (cur & ~defs) | uses
        return cur
    return transfer


def function_liveness(an, funcs, direct_helpers=frozenset()):
    """Parameters (live-in registers) and results (registers callers read) of every function.
    A call of a helper in ``direct_helpers`` reads r1-r5 and sets r0 (see Generator.block_lines);
    any other helper call may read every register."""
    by_entry = {f.entry: f for f in funcs}
    changed = True
    while changed:
        changed = False
        for f in funcs:
            live = f.live_in
            order = sorted(f.nodes, reverse=True)
            succs = dict((node, an.blocks[node].succs) for node in order)
            for node in order:
                live.setdefault(node, 0)
                for t in succs[node]:
                    live.setdefault(t, 0)  # outside the function: nothing live
            cfg.backward_fixpoint(order, succs, _live_transfer(an, f, by_entry, direct_helpers), live)
            params = live[f.entry]
            if params != f.params:
                f.params = params
                changed = True
            for node in f.nodes:
                blk = an.blocks[node]
                term = blk.term
                if term[0] == "call":
                    g = by_entry[term[2]]
                    need = (live.get(blk.succs[0], 0) & R0_5) | g.rets
                    if need != g.rets:
                        g.rets = need
                        changed = True
                elif term[0] == "callx":
                    need = live.get(blk.succs[0], 0) & R0_5
                    for g in funcs:
                        if need | g.rets != g.rets:
                            g.rets |= need
                            changed = True
