"""The compiled engine: translate an eBPF program once into Python source, exec it, cache it.

Each bpf function becomes one Python function whose registers are local variables; loops
and branches are recovered from the control-flow graph (cfg.py) as ``while``/``if``; only
irreducible or absurdly nested flow falls back to a block-level state machine. Semantics,
budget charging (per basic block, fault at the block's first pc), fault kinds, pcs and texts
are exactly those of the interpreters (interp.py, compact.py). The generated source contains only
numbers and identifiers made here -- never text from a program, ELF, section or map name --
and every memory access is checked unless the verifier proved it safe (``proofs``).
MicroPython-compatible (needs ``exec``); imports nothing of iotbpf outside ``ebpf``.
"""

import heapq
import sys

from iotbpf.ebpf import cfg, isa, ops
from iotbpf.ebpf.frames import (
    BPFFault,
    HelperFault,
    StopRun,
    _helper_fault,
    _helper_result,
)
from iotbpf.ebpf.memory import FUNC_REGION_ID
from iotbpf.ebpf.ops import ALU64_FUNCS, ATOMIC_OPERATORS, SIGNED32_FUNCS, SIGNED64_FUNCS, SWAP_FUNCS
from iotbpf.ebpf.types import ARG_PTR_TO_FUNC

M64 = 0xFFFFFFFFFFFFFFFF
M32 = 0xFFFFFFFF
ALL_REGS = (1 << 10) - 1  # r0..r9 as a bit set (r10 is never a local: it is the frame's fp)
R0_5 = (1 << 6) - 1
_R1_5 = R0_5 & ~1
STACK = isa.STACK_SIZE
DEPTH_LIMIT = isa.MAX_CALL_FRAMES - 1
EVENT_ENTRY = -1  # the key of e0 (VM.run_event's entry) among the generic entries, which are keyed by pc
CACHE_SIZE = 64

_UNPACK = {2: isa.make_struct("<H"), 4: isa.make_struct("<I"), 8: isa.make_struct("<Q")}
_UNPACK_S = {1: isa.make_struct("<b"), 2: isa.make_struct("<h"), 4: isa.make_struct("<i")}
_UNPACK_BE = {1: isa.make_struct(">B"), 2: isa.make_struct(">H"), 4: isa.make_struct(">I"),
              8: isa.make_struct(">Q")}
_SIZE_MASK = {1: 0xFF, 2: 0xFFFF, 4: M32, 8: M64}
_ATOMIC_OPS = ATOMIC_OPERATORS


_VALUE_SOURCES = (isa.BPF_PSEUDO_MAP_VALUE, isa.BPF_PSEUDO_MAP_IDX_VALUE)
_NO_REGION = (b"", -1, False)  # stands in for a missing region: every bounds test fails
CTX = -1  # the region key (see _track_constant) of r1 on entry to the main function


class _TailCall(Exception):
    """Unwinds the generated frames when a helper requested a tail call."""


class CompileError(Exception):
    """Internal: the structured translation failed; the state machine is used instead."""


def _bits(mask):
    return [i for i in range(10) if mask >> i & 1]


def _reg(n):
    return "fp" if n == 10 else "r%d" % n


def _replace_word(text, word, by):
    """``text`` with every whole-identifier occurrence of ``word`` replaced by ``by``."""
    out = []
    i = 0
    n = len(word)
    while True:
        j = text.find(word, i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        before = text[j - 1] if j else " "
        after = text[j + n] if j + n < len(text) else " "
        if (before.isalpha() or before.isdigit() or before == "_" or after.isalpha() or after.isdigit()
                or after == "_"):
            out.append(text[i:j + n])
        else:
            out.append(text[i:j] + by)
        i = j + n


def _reg_uses(text):
    """Bit set of the registers r0..r9 that generated ``text`` names."""
    used = 0
    n = len(text)
    i = text.find("r")
    while i >= 0:
        if i + 1 < n and text[i + 1].isdigit() and (i + 2 == n or not _word_char(text[i + 2])) \
                and (i == 0 or not _word_char(text[i - 1])):
            used |= 1 << int(text[i + 1])
        i = text.find("r", i + 1)
    return used


def _word_char(c):
    return c.isalpha() or c.isdigit() or c == "_"


def _assigned(line):
    """The register a generated ``rN = ...`` line assigns, or None."""
    if len(line) > 5 and line[0] == "r" and line[1].isdigit() and line[2:5] == " = ":
        return int(line[1])
    return None


def _drop_dead(items):
    """``items`` ([lines, pure] per instruction of one block) without the pure assignments
    whose register the block assigns again before any generated line reads it. Whatever is
    live at the end of the block stays (every register is assumed read there); a line that
    can fail or has an effect is never pure, and a fault reads no register it does not name."""
    live = ALL_REGS
    for item in reversed(items):
        lines, pure = item
        if pure and len(lines) == 1:
            d = _assigned(lines[0])
            if d is not None and not live >> d & 1:
                item[0] = []
                continue
        for line in reversed(lines):
            d = _assigned(line)
            if d is not None:
                live &= ~(1 << d)
                line = line[5:]
            live |= _reg_uses(line)
    return items


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


def _fields(is64, s, register, k, off, d):
    """The values an ops.py expression template names."""
    width = 64 if is64 else 32
    low = (1 << off) - 1 if off > 1 else 0
    return {"d": d, "s": s, "n": "(%s & %d)" % (s, width - 1) if register else str(k & (width - 1)),
            "m": M64 if is64 else M32, "sign": 1 << (width - 1), "low": low, "half": (low + 1) >> 1}


def _uses_defs(insn):
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
class _Function:
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
            uses, defs = _uses_defs(insn)
            cur = (cur & ~defs) | uses
        return cur
    return transfer


def _liveness(an, funcs, direct_helpers=frozenset()):
    """Parameters (live-in registers) and results (registers callers read) of every function.
    A call of a helper in ``direct_helpers`` reads r1-r5 and sets r0 (see _Gen.block_lines);
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


# ---------------------------------------------------------------- value ranges
# Unsigned [lo, hi] bounds per register let the translation leave out wrap-around masks that
# can never change a value (e.g. ``(r2 >> 1) + 7``). Sound over-approximation only: a bound
# that is not proven is [0, 2**64 - 1] and the mask stays.
TOP = (0, M64)
TOP_STATE = (TOP,) * 10


def _ones(hi):
    m = 1
    while m <= hi:
        m <<= 1
    return m - 1


def _alu_step(insn, st):
    """Updates ``st`` (list of 10 ranges) for ALU ``insn``; returns True if no mask is needed.
    The range is the verifier's transfer (ranges.py); the mask is idle when the unmasked
    expression of ops.UNMASKED cannot leave [0, 2**bits) for operands in these ranges."""
    from iotbpf.ebpf import ranges

    op = insn.opcode
    code = op & 0xF0
    bits = 64 if op & 0x07 == isa.BPF_ALU64 else 32
    m = (1 << bits) - 1
    x = op & isa.BPF_X
    a = st[insn.dst]
    b = (st[insn.src] if insn.src < 10 else TOP) if x else (insn.imm & m, insn.imm & m)
    st[insn.dst] = ranges.interval_alu(code, bits, insn.off, a, b)
    if insn.off:
        return False  # movsx, sdiv, smod: always masked
    if code in (isa.BPF_ADD, isa.BPF_SUB, isa.BPF_MUL) or (code == isa.BPF_LSH and not x):
        if bits == 64 and not x and code in (isa.BPF_ADD, isa.BPF_SUB):
            b = (insn.imm, insn.imm)  # written signed: ``r - 5`` for ``add r, -5``
        lo, hi = ranges.unbounded(code, bits, a, b)
        return lo >= 0 and hi <= m and (bits == 64 or code != isa.BPF_SUB or a[1] <= m)
    if bits == 32 and code == isa.BPF_RSH:
        return a[1] <= m
    if bits == 32 and code == isa.BPF_AND:
        return min(a[1], b[1]) <= m
    if bits == 32 and code in (isa.BPF_OR, isa.BPF_XOR):
        return max(a[1], b[1]) <= m
    return bits == 32 and code == isa.BPF_MOV and bool(x) and b[1] <= m


def _insn_step(insn, st):
    """Range update for any straight-line instruction; returns True if an ALU mask can go."""
    kind = insn.kind
    if kind == "alu":
        return _alu_step(insn, st)
    d = insn.dst
    if kind == "end":
        w = insn.imm
        if insn.opcode == isa.BPF_ALU | isa.BPF_END | isa.BPF_TO_LE and w == 64:
            return False
        st[d] = (0, (1 << w) - 1)
    elif kind == "lddw":
        st[d] = (insn.imm & M64, insn.imm & M64) if insn.src == 0 else TOP
    elif kind == "ldx":
        st[d] = (0, _SIZE_MASK[isa.SIZE_BYTES[insn.opcode & 0x18]])
    elif kind == "ldxs":
        st[d] = TOP
    elif kind == "atomic":
        width = (0, M64 if insn.opcode & 0x18 == isa.BPF_DW else M32)
        aop = insn.imm & M32
        if aop == isa.BPF_CMPXCHG:
            st[0] = width
        elif aop & isa.BPF_FETCH and insn.src < 10:
            st[insn.src] = width
    elif kind in ("ldabs", "ldind"):
        st[0] = (0, _SIZE_MASK[isa.SIZE_BYTES[insn.opcode & 0x18]])
    return False


def _branch_states(insn, st):
    """(taken, fall-through) states after a 64-bit unsigned comparison refines the ranges."""
    op = insn.opcode
    code = op & 0xF0
    taken, fall = list(st), list(st)
    if op & 0x07 != isa.BPF_JMP or code not in (isa.BPF_JEQ, isa.BPF_JNE, isa.BPF_JGT, isa.BPF_JGE,
                                                 isa.BPF_JLT, isa.BPF_JLE):
        return taken, fall
    d = insn.dst
    if d >= 10:
        return taken, fall
    lo, hi = st[d]
    if op & isa.BPF_X:
        if insn.src >= 10:
            return taken, fall
        c0, c1 = st[insn.src]
    else:
        c0 = c1 = insn.imm & M64
    if code in (isa.BPF_JEQ, isa.BPF_JNE):
        # ``equal`` and ``differ`` are the states where the comparison found them equal or not;
        # for jne the jump is taken on ``differ``.
        equal, differ = (taken, fall) if code == isa.BPF_JEQ else (fall, taken)
        equal[d] = (max(lo, c0), min(hi, c1))
        if c0 == c1:
            if lo == c0:
                lo += 1
            if hi == c0:
                hi -= 1
        differ[d] = (lo, hi)
    elif code == isa.BPF_JGT:
        taken[d] = (max(lo, c0 + 1), hi)
        fall[d] = (lo, min(hi, c1))
    elif code == isa.BPF_JGE:
        taken[d] = (max(lo, c0), hi)
        fall[d] = (lo, min(hi, c1 - 1))
    elif code == isa.BPF_JLT:
        taken[d] = (lo, min(hi, c1 - 1))
        fall[d] = (max(lo, c0), hi)
    elif code == isa.BPF_JLE:
        taken[d] = (lo, min(hi, c1))
        fall[d] = (max(lo, c0 + 1), hi)
    for state in (taken, fall):
        r = state[d]
        if r[0] > r[1]:
            state[d] = (r[1], r[1]) if r[1] >= 0 else (0, 0)  # unreachable path: any bound is sound
    return taken, fall


def _ranges(an, f, gen):
    """Entry ranges of every block of ``f`` (forward worklist fixpoint with widening)."""
    states = {f.entry: TOP_STATE}
    visits = {}
    index = {node: i for i, node in enumerate(f.nodes)}
    work = [(index[f.entry], f.entry)]
    queued = {f.entry}
    while work:
        _, node = heapq.heappop(work)
        queued.discard(node)
        blk = an.blocks[node]
        st = list(states[node])
        for _pc, insn in blk.items:
            _insn_step(insn, st)
        term = blk.term
        t = term[0]
        if t == "jcond" and term[3] is True and len(blk.succs) == 2:
            taken, fall = _branch_states(term[2], st)
            outs = [(blk.succs[0], taken), (blk.succs[1], fall)]
        else:
            if t == "helper":
                st[0] = TOP
            elif t == "call":
                for i in _bits(gen.by_entry[term[2]].rets):
                    st[i] = TOP
            elif t == "callx":
                for i in range(6):
                    st[i] = TOP
            outs = [(s, st) for s in blk.succs]
        for succ, out in outs:
            old = states.get(succ)
            if old is None:
                new = tuple(out)
            else:
                new = tuple((a[0] if a[0] < b[0] else b[0], a[1] if a[1] > b[1] else b[1])
                            for a, b in zip(old, out))
                if new != old:
                    count = visits.get(succ, 0) + 1
                    visits[succ] = count
                    if count > 3:
                        new = tuple((0 if n[0] < o[0] else o[0], M64 if n[1] > o[1] else o[1])
                                    for n, o in zip(new, old))
            if new != old:
                states[succ] = new
                if succ not in queued:
                    queued.add(succ)
                    heapq.heappush(work, (index[succ], succ))
    return states


# ---------------------------------------------------------------- code generation
class _Gen:
    """Python source for one module: every function reachable from ``entries``."""

    def __init__(self, an, entries, proofs, checks=True, direct_helpers=()):
        self.an = an
        self.proofs = proofs or ()
        self.checks = checks  # False: no budget can run out (unlimited), only count
        self.direct_helpers = frozenset(direct_helpers)
        self.funcs = []
        self.by_entry = {}
        work = list(entries)
        while work:
            e = work.pop(0)
            if e in self.by_entry:
                continue
            f = _Function(e, len(self.funcs), sorted(an.reachable(e)))
            self.funcs.append(f)
            self.by_entry[e] = f
            for node in f.nodes:
                term = an.blocks[node].term
                if term[0] == "call" and term[2] not in self.by_entry:
                    work.append(term[2])
        for e in an.subprograms:
            if e not in self.by_entry:
                f = _Function(e, len(self.funcs), sorted(an.reachable(e)))
                self.funcs.append(f)
                self.by_entry[e] = f
        _liveness(an, self.funcs, self.direct_helpers)
        self.depths = self._static_depths(entries)
        self.helper_sites = []  # (pc, hid)
        self.callx_sites = []  # (pc, reg)
        self.at_sites = []  # (pc, insn)
        self.mem_sites = []  # (pc, size, signed): checked accesses off the fast path
        self.la_sites = []  # insn
        self.views = set()  # (lddw index, size): item views of a map value buffer (w<size>_<k>)
        self.structured = 0
        self.state_machines = 0

    def _static_depths(self, entries):
        """Frame depth of every function when it is fixed, else None (depth passed at run time).

        Fixed when nothing can enter a function but a direct call -- no helper (so no
        callbacks, no tail calls), no callx, no extra entries -- every function is always
        called at the same depth and the deepest stays within the 8-frame limit.
        """
        if list(entries) != [0]:
            return None
        edges = {}
        for f in self.funcs:
            callees = []
            for node in f.nodes:
                term = self.an.blocks[node].term
                if term[0] in ("helper", "callx"):
                    return None
                if term[0] == "call":
                    callees.append(term[2])
            edges[f.entry] = callees
        depths = {0: 0}
        work = [0]
        while work:
            e = work.pop()
            for c in edges[e]:
                want = depths[e] + 1
                if want > DEPTH_LIMIT or depths.get(c, want) != want:
                    return None
                if c not in depths:
                    depths[c] = want
                    work.append(c)
        return depths

    # -------------------------------------------------------------- module
    def source(self):
        out = ["def factory(X, E, R, G, T, S, FX, BF, AF, HF, HP, HE, HV, SY, CXS, AT, LA, LD, ST, C,"
               " U2, U4, U8, P2, P4, P8, SX1, SX2, SX4, SW16, SW32, SW64, SD64, SM64, SD32, SM32, TAIL, NOREG, MV):",
               "    b = 0"]
        for k in range(len(self.an.lddw)):
            out.append("    c%d = C[%d]" % (k, k))
            if self.an.lddw[k][1].src in _VALUE_SOURCES:
                # a map value address: its buffer never changes, so proven accesses use it directly
                out.append("    q%d = G(c%d >> 32, NOREG)[0]" % (k, k))
                out.append("    p%d = c%d & %d" % (k, k, M32))
        out += [
            "    def HC(k, d, r1, r2, r3, r4, r5):",
            "        nonlocal b",
            "        E.depth = d",
            "        X.left = b",
            "        X.pc = HP[k]",
            "        try:",
            "            v = HF[k](X, r1, r2, r3, r4, r5)",
            "        except Exception as e:",
            "            raise HE(k, e)",
            "        b = X.left",
            "        if v.__class__ is not int:",
            "            v = HV(k, v)",
            "        v &= %d" % M64,
            "        if X.tail_target is not None:",
            "            R[0] = v",
            "            raise TAIL()",
            "        return v",
            "    def CX(k, d, v):",
            "        nonlocal b",
            "        E.depth = d",
            "        X.left = b",
            "        res = CXS(k, d, v)",
            "        b = X.left",
            "        return res",
        ]
        bodies = []
        for f in self.funcs:
            bodies += self.function(f)
        for k in range(len(self.helper_sites)):
            out.append("    h%d = HF[%d]" % (k, k))
        for k, size in sorted(self.views):
            out.append("    w%d_%d = MV(q%d, p%d, %d)" % (size, k, k, k, size))
        out += bodies
        # generic entries: parameters from R, all of r0..r5 back (callx, callbacks, run_main)
        gens = []
        for f in self.funcs:
            name = "g%d" % f.index
            gens.append("%d: %s" % (f.entry, name))
            out.append("    def %s(d):" % name)
            out.append("        nonlocal b")
            out.append("        b = X.left")
            out.append("        try:")
            args = ["R[%d]" % i for i in _bits(f.params)] + ([] if self.depths is not None else ["d"])
            rets = _bits(f.rets)
            out.append("            %s = f%d(%s)" % (self._ret_tuple(rets), f.index, ", ".join(args)))
            for i in rets:
                out.append("            R[%d] = r%d" % (i, i))
            out.append("        finally:")
            out.append("            X.left = b")
            out.append("        return R[0]")
            if f.entry == 0:
                out += self._event_entry(f, rets)
                gens.append("%d: e0" % EVENT_ENTRY)
        out.append("    return {%s}" % ", ".join(gens))
        return "\n".join(out) + "\n"

    def _event_entry(self, f, rets):
        """``e0(ctx_addr)``: g0 for a fresh run whose registers are the VM's initial ones (r1 the
        context, the rest 0), without reading them back from R (VM.run_event's entry)."""
        args = ["a" if i == 1 else "0" for i in _bits(f.params)] + ([] if self.depths is not None else ["0"])
        lines = ["    def e0(a):",
                 "        nonlocal b",
                 "        E.depth = 0",
                 "        b = X.left",
                 "        try:",
                 "            %s = f%d(%s)" % (self._ret_tuple(rets), f.index, ", ".join(args))]
        for i in rets:
            lines.append("            R[%d] = r%d" % (i, i))
        lines += ["        except TAIL:",
                  "            return R[0]",
                  "        finally:",
                  "            X.left = b",
                  "        return r0" if 0 in rets else "        return R[0]"]
        return lines

    @staticmethod
    def _ret_tuple(rets):
        return ", ".join("r%d" % i for i in rets) if len(rets) > 1 else "r%d" % rets[0]

    # -------------------------------------------------------------- one function
    def function(self, f):
        an = self.an
        static = self.depths is not None
        params = ["r%d" % i for i in _bits(f.params)] + ([] if static else ["d"])
        head = ["    def f%d(%s):" % (f.index, ", ".join(params)), "        nonlocal b"]
        if self._uses_fp(f):
            depth = str(self.depths.get(f.entry, 0)) if static else "d"
            head += ["        fp = T[%s]" % depth, "        st = S[%s]" % depth]
        # an atomic fetch into r10 is the one way a program can move its frame pointer
        self.fp_fixed = True
        for node in f.nodes:
            for _pc, insn in an.blocks[node].items:
                if insn.kind == "atomic" and insn.src == 10 and insn.imm & isa.BPF_FETCH:
                    self.fp_fixed = False
        self.ranges = _ranges(an, f, self)
        self.konst_in = self._constants(f)
        self.ctx_used = self.ctx_base_used = False
        self.term_states = {}
        succs = {}
        for node in f.nodes:
            succs[node] = list(an.blocks[node].succs)
        order = {node: i for i, node in enumerate(f.nodes)}
        idx_succs = [[order[s] for s in succs[node]] for node in f.nodes]
        terminal = set(i for i, node in enumerate(f.nodes) if not succs[node])
        entry = order[f.entry]

        def code_lines(i):
            return self.block_lines(f, f.nodes[i])

        def cond_text(i):
            term = an.blocks[f.nodes[i]].term
            return self.cond(term[2], self.term_states.get(f.nodes[i], TOP_STATE))

        try:
            graph = cfg.Graph(idx_succs, entry)
            stmts = cfg.lower(cfg.structure(idx_succs, entry, graph), terminal)
            body = []
            if cfg.uses_jumps(stmts):
                body.append("        _j = 0")
            body += cfg.render(stmts, code_lines, cond_text, terminal, indent=2)
            self.structured += 1
        except (cfg.StructureError, RuntimeError):
            body = self.state_machine(f, code_lines, cond_text, idx_succs, entry)
            self.state_machines += 1
        if self.ctx_used:
            # the context's buffer, once per call: proven accesses through r1 (on entry) use it
            # (a missing region reads as NOREG's empty buffer: the access fails as with G(..)[0])
            head.append("        qx = G(r1 >> 32, NOREG)[0]")
            if self.ctx_base_used:
                head.append("        px = r1 & %d" % M32)
        return head + body

    def _uses_fp(self, f):
        for node in f.nodes:
            blk = self.an.blocks[node]
            for _pc, insn in blk.items:
                if insn.dst == 10 or (insn.src == 10 and insn.kind != "lddw"):
                    return True
            term = blk.term
            if term[0] == "jcond" and (term[2].dst == 10 or (term[2].opcode & isa.BPF_X and term[2].src == 10)):
                return True
            if term[0] == "callx" and term[2] == 10:
                return True
        return False

    def state_machine(self, f, code_lines, cond_text, idx_succs, entry):
        """Block-level dispatch loop: the fallback for irreducible or too deeply nested flow."""
        lines = ["        L = %d" % entry, "        while True:"]
        nodes = sorted(range(len(f.nodes)))

        def emit(group, indent):
            pad = "    " * indent
            if len(group) <= 4:
                for j, i in enumerate(group):
                    lines.append(pad + ("if" if j == 0 else "elif") + " L == %d:" % i)
                    for line in code_lines(i):
                        lines.append(pad + "    " + line)
                    s = idx_succs[i]
                    if len(s) == 1:
                        lines.append(pad + "    L = %d" % s[0])
                    elif len(s) == 2:
                        lines.append(pad + "    L = %d if %s else %d" % (s[0], cond_text(i), s[1]))
                return
            mid = len(group) // 2
            lines.append(pad + "if L < %d:" % group[mid])
            emit(group[:mid], indent + 1)
            lines.append(pad + "else:")
            emit(group[mid:], indent + 1)

        emit(nodes, 3)
        return lines

    # -------------------------------------------------------------- blocks
    def block_lines(self, f, node):
        an = self.an
        blk = an.blocks[node]
        lines = []
        if blk.cost:
            if self.checks:
                lines.append("if b < %d: raise BF(%d)" % (blk.cost, blk.start))
            lines.append("b -= %d" % blk.cost)
        st = self.state = list(self.ranges.get(node, TOP_STATE))
        self.bases = {}
        self.konst = dict(self.konst_in.get(node, ()))  # reg -> (k, delta), see _track_constant
        items = []  # [lines, pure] per instruction; pure: an assignment that cannot fail
        moved = None  # (item, rD, source) of a `rD = source` the next ALU op on rD can absorb
        for pc, insn in blk.items:
            out = self.insn(pc, insn, _insn_step(insn, st))
            kind = insn.kind
            if moved is not None and kind in ("alu", "end") and insn.dst == moved[1] and len(out) == 1 \
                    and " = " in out[0]:
                # `rD = rS` then `rD = f(rD)` becomes `rD = f(rS)`
                lhs, rhs = out[0].split(" = ", 1)
                out = [lhs + " = " + _replace_word(rhs, "r%d" % insn.dst, moved[2])]
                moved[0][0] = []
            item = [out, kind in ("alu", "end", "lddw") and not insn.off]
            items.append(item)
            moved = None
            if (kind == "lddw" or (kind == "alu" and insn.opcode & 0xF0 == isa.BPF_MOV)) and len(out) == 1:
                # `rD = <one name or number>`: a plain copy, the next ALU op on rD can take it in
                source = out[0][len("r%d = " % insn.dst):]
                if out[0].startswith("r%d = " % insn.dst) and source and " " not in source \
                        and source != "r%d" % insn.dst and (source[0].isalpha() or source[0].isdigit()):
                    moved = (item, insn.dst, source)
            self._track_constant(pc, insn)
            if self.bases:
                for reg in _bits(_uses_defs(insn)[1]):
                    self.bases.pop(reg, None)
        for out, _pure in _drop_dead(items):
            lines += out
        self.term_states[node] = st
        term = blk.term
        t = term[0]
        if t == "fault":
            lines.append("raise FX(%d)" % term[1])
        elif t == "exit":
            lines.append("return " + self._ret_tuple(_bits(f.rets)))
        elif t == "jcond" and term[3] is not True:
            lines.append("if %s: raise FX(%d)" % (self.cond(term[2], st), term[3]))
        elif t == "call":
            g = self.by_entry[term[2]]
            args = ["r%d" % i for i in _bits(g.params)]
            if self.depths is None:
                k = an.fault(term[1], "call depth exceeded (%d frames)" % isa.MAX_CALL_FRAMES, "depth")
                lines.append("if d >= %d: raise FX(%d)" % (DEPTH_LIMIT, k))
                args.append("d + 1")
            lines.append("%s = f%d(%s)" % (self._ret_tuple(_bits(g.rets)), g.index, ", ".join(args)))
        elif t == "helper":
            k = len(self.helper_sites)
            self.helper_sites.append((term[1], term[2]))
            # Helpers that can look at the machine (tail calls, callbacks, no spec) go through HC:
            # registers to ex.regs, budget and depth synchronised. The others are called right
            # here; the budget left and the pc reach ex only if the helper raises (fault, stop).
            call = ["try:",
                    "    r0 = h%d(X, r1, r2, r3, r4, r5)" % k,
                    "except Exception as e:",
                    "    X.left = b",
                    "    X.pc = %d" % term[1],
                    "    raise HE(%d, e)" % k]
            if term[2] in self.direct_helpers:
                # its spec promises a u64 int and no look at the machine: just the call
                lines += call
            else:
                lines.append("if SY[%d]:" % k)
                lines.append("    R[0:10] = (r0, r1, r2, r3, r4, r5, r6, r7, r8, r9)")
                lines.append("    r0 = HC(%d, d, r1, r2, r3, r4, r5)" % k)
                lines.append("else:")
                lines += ["    " + line for line in call]
                lines.append("    if r0.__class__ is not int:")
                lines.append("        r0 = HV(%d, r0)" % k)
                lines.append("    r0 &= %d" % M64)
        elif t == "callx":
            k = len(self.callx_sites)
            self.callx_sites.append((term[1], term[2]))
            lines.append("R[0:10] = (r0, r1, r2, r3, r4, r5, r6, r7, r8, r9)")
            lines.append("r0, r1, r2, r3, r4, r5 = CX(%d, d, %s)" % (k, _reg(term[2])))
        return lines

    # -------------------------------------------------------------- instructions
    def cond(self, insn, st):
        op = insn.opcode
        code = op & 0xF0
        is64 = op & 0x07 == isa.BPF_JMP

        def low32(reg):
            # the mask is only needed when the register may hold more than 32 bits
            if reg < 10 and st[reg][1] <= M32:
                return _reg(reg)
            return "(%s & 0xffffffff)" % _reg(reg)
        d = _reg(insn.dst)
        if op & isa.BPF_X:
            s = _reg(insn.src)
            if is64:
                a, b = d, s
            else:
                a, b = low32(insn.dst), low32(insn.src)
        else:
            k = insn.imm & (M64 if is64 else M32)
            a, b = (d if is64 else low32(insn.dst)), None
        sign = (1 << 63) if is64 else (1 << 31)
        if code in (isa.BPF_JSGT, isa.BPF_JSGE, isa.BPF_JSLT, isa.BPF_JSLE):
            a = "(%s ^ %d)" % (a, sign)
            b = "(%s ^ %d)" % (b, sign) if b is not None else str(k ^ sign)
        elif b is None:
            b = str(k)
        return "%s %s %s" % (a, ops.RELATION[code], b)

    def insn(self, pc, insn, unmasked=False):
        kind = insn.kind
        if kind == "alu":
            return [self.alu(insn, unmasked)]
        if kind == "end":
            return [self.end(insn)]
        if kind == "lddw":
            if insn.src == 0:
                return ["r%d = %d" % (insn.dst, insn.imm & M64)]
            return ["r%d = c%d" % (insn.dst, self.an.lddw_index[pc])]
        if kind in ("ldx", "ldxs"):
            return self.load(pc, insn, kind == "ldxs")
        if kind in ("st", "stx"):
            return self.store(pc, insn)
        if kind == "atomic":
            return self.atomic(pc, insn)
        if kind in ("ldabs", "ldind"):
            k = len(self.la_sites)
            self.la_sites.append(insn)
            s = _reg(insn.src) if kind == "ldind" else "0"
            return ["r0 = LA(%d, %s)" % (k, s)]
        raise CompileError("pc %d: unexpected instruction kind %s" % (pc, kind))

    def alu(self, insn, unmasked=False):
        """One ALU instruction; ``unmasked``: value ranges proved the wrap-around mask idle."""
        op = insn.opcode
        code = op & 0xF0
        is64 = op & 0x07 == isa.BPF_ALU64
        d = "r%d" % insn.dst
        x = op & isa.BPF_X
        if x:
            s = _reg(insn.src)
            k = None
        else:
            k = insn.imm & (M64 if is64 else M32)
            s = str(k)
        if unmasked:
            text = self.alu_unmasked(insn, code, is64, d, s, k)
            if text is not None:
                return text
        if code not in ops.ALU:
            raise CompileError("unexpected ALU opcode 0x%02x" % op)
        off = insn.off
        if not x and off != 1:
            # the compiler's own folding of immediates: no zero test, no negative constant
            if code in (isa.BPF_DIV, isa.BPF_MOD) and not k:
                if code == isa.BPF_DIV:
                    return "%s = 0" % d
                return "pass" if is64 else "%s = %s & %d" % (d, d, M32)
            if is64 and code in (isa.BPF_ADD, isa.BPF_SUB):
                if insn.imm < 0:
                    other = "-" if code == isa.BPF_ADD else "+"
                    return "%s = (%s %s %d) & %d" % (d, d, other, -insn.imm, M64)
                s = str(insn.imm)
        return "%s = %s" % (d, ops.alu_template(code, is64, off, x).format(**_fields(is64, s, x, k, off, d)))

    @staticmethod
    def alu_unmasked(insn, code, is64, d, s, k):
        template = ops.UNMASKED.get(code)
        if template is None or (is64 and code in (isa.BPF_RSH, isa.BPF_AND, isa.BPF_OR, isa.BPF_XOR,
                                                  isa.BPF_MOV)):
            return None
        if is64 and k is not None and insn.imm < 0 and code in (isa.BPF_ADD, isa.BPF_SUB):
            return "%s = %s %s %d" % (d, d, "-" if code == isa.BPF_ADD else "+", -insn.imm)
        return "%s = %s" % (d, template.format(**_fields(is64, s, k is None, k, 0, d)))

    def end(self, insn):
        d = "r%d" % insn.dst
        w = insn.imm
        if insn.opcode == isa.BPF_ALU | isa.BPF_END | isa.BPF_TO_LE:
            if w == 64:
                return "pass"
            return "%s = %s & %d" % (d, d, (1 << w) - 1)
        return "%s = SW%d(%s, 0)" % (d, w, d)

    def _track_constant(self, pc, insn, konst=None):
        """Follow registers that point into a known region: ``reg -> (k, delta)`` means the
        value is c<k> (a map value address from lddw; CTX: r1 on entry to the main function)
        plus ``delta``, or plus an unknown number when ``delta`` is None (``r4 = c11;
        r4 += r3``). Only proven accesses use it, and the verifier proves an access through a
        pointer only inside the region the pointer was derived from (it rejects adding two
        pointers), so such an access reads that region's buffer at the address's low 32 bits."""
        if konst is None:
            konst = self.konst
        op = insn.opcode
        d = insn.dst
        if insn.kind == "lddw" and insn.src in _VALUE_SOURCES:
            konst[d] = (self.an.lddw_index[pc], 0)
            return
        if d in konst and op in (isa.BPF_ALU64 | isa.BPF_ADD, isa.BPF_ALU64 | isa.BPF_SUB):
            k, delta = konst[d]
            if delta is not None:
                delta = delta + insn.imm if op & 0xF0 == isa.BPF_ADD else delta - insn.imm
            konst[d] = (k, delta)
            return
        if op == isa.BPF_ALU64 | isa.BPF_MOV | isa.BPF_X and not insn.off and insn.src in konst:
            konst[d] = konst[insn.src]
            return
        s = insn.src
        if op in (isa.BPF_ALU64 | isa.BPF_ADD | isa.BPF_X, isa.BPF_ALU64 | isa.BPF_SUB | isa.BPF_X) \
                and not insn.off and s < 10 and s != d:
            # pointer +/- number, or number + pointer: same region, offset no longer known
            if d in konst and s not in konst:
                konst[d] = (konst[d][0], None)
                return
            if s in konst and d not in konst and op & 0xF0 == isa.BPF_ADD:
                konst[d] = (konst[s][0], None)
                return
        for reg in _bits(_uses_defs(insn)[1]):
            konst.pop(reg, None)

    @staticmethod
    def _meet(old, new):
        """Facts that hold on both paths: equal ones, and same region with the offset forgotten
        where the offsets differ (never two different regions as one)."""
        out = {}
        for reg, v in old.items():
            w = new.get(reg)
            if w == v:
                out[reg] = v
            elif w is not None and w[0] == v[0]:
                out[reg] = (v[0], None)
        return out

    def _constants(self, f):
        """Registers that point into a known region on entry to each block (must-analysis)."""
        an = self.an
        # r1 on entry to the main function: the context (whatever region it points into)
        states = {f.entry: {1: (CTX, 0)} if f.entry == 0 and f.params & 2 else {}}
        changed = True
        while changed:
            changed = False
            for node in f.nodes:
                if node not in states:
                    continue
                blk = an.blocks[node]
                konst = dict(states[node])
                for pc, insn in blk.items:
                    self._track_constant(pc, insn, konst)
                term = blk.term
                if term[0] == "helper":
                    konst.pop(0, None)
                elif term[0] in ("call", "callx"):
                    for reg in range(6):
                        konst.pop(reg, None)
                for succ in blk.succs:
                    old = states.get(succ)
                    new = dict(konst) if old is None else self._meet(old, konst)
                    if new != old:
                        states[succ] = new
                        changed = True
        return states

    def _base(self, reg):
        """Region and offset of base register ``reg``, looked up once per block until it changes."""
        lines = []
        if reg not in self.bases:
            self.bases[reg] = True
            # NOREG (size -1) makes every bounds test fail for an address with no region
            lines.append("g%d = G(%s >> 32, NOREG)" % (reg, _reg(reg)))
            lines.append("m%d = g%d[0]" % (reg, reg))
            lines.append("n%d = g%d[1]" % (reg, reg))
            lines.append("o%d = %s & %d" % (reg, _reg(reg), M32))
        return lines

    @staticmethod
    def _inside(reg, off, size):
        """The fast-path test: the access stays inside the base register's region."""
        test = "o%d + %d <= n%d" % (reg, off + size, reg)
        if off < 0:
            test += " and o%d >= %d" % (reg, -off)
        return test

    @staticmethod
    def _offset(reg, off):
        if off == 0:
            return "o%d" % reg
        return "o%d + %d" % (reg, off) if off > 0 else "o%d - %d" % (reg, -off)

    def _slow_site(self, pc, size, signed):
        self.mem_sites.append((pc, size, signed))
        return len(self.mem_sites) - 1

    def load(self, pc, insn, signed):
        size = isa.SIZE_BYTES[insn.opcode & 0x18]
        d = "r%d" % insn.dst
        reg, off = insn.src, insn.off
        if reg == 10 and self.fp_fixed:
            o = STACK + off
            if 0 <= o and o + size <= STACK:
                return [d + " = " + self._read("st", str(o), size, signed)]
            return ["raise AF(%d, fp + %d, %d, 0)" % (pc, off, size)]
        address = "%s + %d" % (_reg(reg), off) if off else _reg(reg)
        if pc in self.proofs:
            if reg in self.konst:
                view, buf, where = self._in_region(reg, off, size, signed)
                return ["%s = %s" % (d, view or self._read(buf, where, size, signed))]
            return ["a = " + address, "%s = %s" % (d, self._read("G(a >> 32)[0]", "a & %d" % M32, size, signed))]
        lines = self._base(reg)
        k = self._slow_site(pc, size, signed)
        lines.append("%s = %s if %s else LD(%d, %s)" % (
            d, self._read("m%d" % reg, self._offset(reg, off), size, signed), self._inside(reg, off, size),
            k, address))
        return lines

    def _in_region(self, reg, off, size, signed):
        """A proven access at ``reg + off`` where ``reg`` points into a known region (konst):
        (item view, None, None) or (None, buffer, offset expression)."""
        k, delta = self.konst[reg]
        if k == CTX:
            buf = "qx"
            self.ctx_used = True
        else:
            buf = "q%d" % k
        if delta is None:
            # the region is known, the offset is the address's low 32 bits
            if off:
                return None, buf, "(%s %s %d) & %d" % (_reg(reg), "-" if off < 0 else "+", abs(off), M32)
            return None, buf, "%s & %d" % (_reg(reg), M32)
        rel = delta + off
        if k == CTX:
            self.ctx_base_used = True
            base = "px"
        else:
            view = self._view(k, rel, size, signed)
            if view is not None:
                return view, None, None
            base = "p%d" % k
        return None, buf, "%s %s %d" % (base, "-" if rel < 0 else "+", abs(rel)) if rel else base

    def _view(self, k, rel, size, signed):
        """``w<size>_<k>[i]``: a proven, size-aligned access at ``rel`` bytes from map value
        address c<k>, through an item view of its buffer (``_value_view``), or None."""
        if signed or size == 1 or rel < 0 or rel % size:
            return None
        self.views.add((k, size))
        return "w%d_%d[%d]" % (size, k, rel // size)

    @staticmethod
    def _read(buf, off, size, signed):
        if signed:
            return "SX%d(%s, %s)[0] & %d" % (size, buf, off, M64)
        if size == 1:
            return "%s[%s]" % (buf, off)
        return "U%d(%s, %s)[0]" % (size, buf, off)

    def store(self, pc, insn):
        size = isa.SIZE_BYTES[insn.opcode & 0x18]
        mask = _SIZE_MASK[size]
        if insn.kind == "st":
            value = str(insn.imm & mask)
        else:
            value = _reg(insn.src)
            if size != 8 and not (insn.src < 10 and self.state[insn.src][1] <= mask):
                value = "%s & %d" % (value, mask)  # (unless value ranges show it fits)
        reg, off = insn.dst, insn.off
        if reg == 10 and self.fp_fixed:
            o = STACK + off
            if 0 <= o and o + size <= STACK:
                return [self._write("st", str(o), size, value)]
            return ["raise AF(%d, fp + %d, %d, 1)" % (pc, off, size)]
        address = "%s + %d" % (_reg(reg), off) if off else _reg(reg)
        if pc in self.proofs:
            if reg in self.konst:
                view, buf, where = self._in_region(reg, off, size, False)
                if view is not None:  # an item store: the value is already masked to the size
                    return ["%s = %s" % (view, value)]
                return [self._write(buf, where, size, value)]
            return ["a = " + address, self._write("G(a >> 32)[0]", "a & %d" % M32, size, value)]
        lines = self._base(reg)
        k = self._slow_site(pc, size, False)
        lines.append("if %s and g%d[2]: %s" % (self._inside(reg, off, size), reg,
                                              self._write("m%d" % reg, self._offset(reg, off), size, value)))
        lines.append("else: ST(%d, %s, %s)" % (k, address, value))
        return lines

    @staticmethod
    def _write(buf, off, size, value):
        if size == 1:
            return "%s[%s] = %s" % (buf, off, value)
        return "P%d(%s, %s, %s)" % (size, buf, off, value)

    def atomic(self, pc, insn):
        k = len(self.at_sites)
        self.at_sites.append((pc, insn))
        aop = insn.imm & M32
        addr = "%s + %d" % (_reg(insn.dst), insn.off)
        s = _reg(insn.src)
        if aop == isa.BPF_CMPXCHG:
            return ["r0 = AT(%d, %s, %s, r0)" % (k, addr, s)]
        if aop & isa.BPF_FETCH:
            return ["%s = AT(%d, %s, %s, 0)" % (s, k, addr, s)]
        return ["AT(%d, %s, %s, 0)" % (k, addr, s)]


# ---------------------------------------------------------------- compile + cache
class Compiled:
    """A translated program: its source, its factory and what binding it needs."""

    def __init__(self, gen, source, factory):
        self.source = source
        self.factory = factory
        self.analysis = gen.an
        self.helper_sites = gen.helper_sites
        self.callx_sites = gen.callx_sites
        self.la_sites = gen.la_sites
        self.at_sites = gen.at_sites
        self.mem_sites = gen.mem_sites
        self.structured = gen.structured
        self.state_machines = gen.state_machines
        self.entries = [f.entry for f in gen.funcs]


_CACHE = {}
_CACHE_ORDER = []


def compile_program(program, proofs=None, entries=None, budget_checks=True, direct_helpers=()):
    """Translate ``program`` (a Program or Instruction list) into a ``Compiled``; cached.

    ``proofs``: pcs whose memory access the verifier proved in bounds (its
    ``safe_access_pcs``); those accesses are emitted without run-time checks. ``entries``:
    extra function entry pcs beyond pc 0 and the subprograms (callx/callback targets).
    ``budget_checks=False`` translates for runs without a budget: blocks are still counted
    (``insns_executed``) but never checked. ``direct_helpers``: helper ids whose calls need
    neither the registers in ex.regs nor a check of the result (see CompiledEngine's
    _direct_helpers): they are called plainly.
    """
    insns = getattr(program, "insns", program)
    proofs = frozenset(proofs) if proofs else frozenset()
    extra = tuple(sorted(set(entries or ())))
    direct = tuple(sorted(set(direct_helpers)))
    key = (isa.encode(insns), tuple(sorted(proofs)), extra, bool(budget_checks), direct)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    an = Analysis(insns)
    gen = _Gen(an, [0] + list(extra), proofs, budget_checks, direct)
    source = gen.source()
    namespace = {}
    exec(source, namespace)
    compiled = Compiled(gen, source, namespace["factory"])
    _CACHE[key] = compiled
    _CACHE_ORDER.append(key)
    if len(_CACHE_ORDER) > CACHE_SIZE:
        _CACHE.pop(_CACHE_ORDER.pop(0), None)
    return compiled


def clear_cache():
    _CACHE.clear()
    del _CACHE_ORDER[:]


# ---------------------------------------------------------------- the engine
class CompiledEngine:
    """vm.py's engine protocol (``run_main``, ``call_function``) over compiled Python code."""

    def __init__(self, program, vm):
        self.program = program
        self.vm = vm
        self.ex = vm.ex
        self.depth = 0
        self.proofs = getattr(program, "safe_access_pcs", None)
        self._interp = None
        self._modules = {}
        self.direct = self._direct_helpers()
        self.compiled = compile_program(program, self.proofs, direct_helpers=self.direct)
        # the interpreter resolves every lddw at load time (LoadError); so do we
        self.checked = self._bind(self.compiled)
        self.counting = None  # the variant for runs without a budget, made on first use
        self.gens = self.checked

    def _direct_helpers(self):
        """Ids of the helpers this program calls whose calls can be plain: the VM's spec says the
        result is always an int in [0, 2**64) (``u64_result``) and the helper neither tail-calls
        nor runs a callback (it needs no registers in ex.regs)."""
        vm = self.vm
        direct = set()
        for insn in self.program.insns:
            if insn.kind != "call" or insn.src != 0:
                continue
            hid = insn.imm  # as the helper terminator has it
            fn, name = vm.helper(hid)
            if fn is not None and getattr(_helper_spec(vm, hid), "u64_result", False) \
                    and not _sees_registers(vm, hid, name):
                direct.add(hid)
        return frozenset(direct)

    # -------------------------------------------------------------- binding
    def _bind(self, comp):
        vm, ex, program = self.vm, self.ex, self.program
        an = comp.analysis
        memory = vm.memory
        regions = memory.regions
        consts = [vm.resolve_lddw(pc, insn, program) for pc, insn in an.lddw]
        faults = an.faults

        def fx(k):
            pc, reason, kind = faults[k]
            return vm.fault(pc, reason, kind, program)

        def bf(pc):
            return vm.fault(pc, "instruction budget exhausted (%d instructions)" % (ex.budget or 0),
                            "budget", program)

        def af(pc, a, size, write):
            a &= M64
            exc = memory.fault(a, size, write)
            return vm.fault(pc, exc.reason, exc.kind, program, a)

        hsites = [self._helper_site(pc, hid) for pc, hid in comp.helper_sites]
        h_fns = [site[0] for site in hsites]
        h_pcs = [pc for pc, _ in comp.helper_sites]
        h_sync = [site[2] for site in hsites]

        def h_error(k, exc):
            if isinstance(exc, (StopRun, BPFFault, _TailCall)):
                return exc
            return _helper_fault(vm, program, h_pcs[k], hsites[k][1], exc)

        def h_value(k, v):
            return _helper_result(vm, program, h_pcs[k], hsites[k][1], v)
        callx = [self._callx(pc, reg) for pc, reg in comp.callx_sites]

        def cxs(k, d, v):
            return callx[k](d, v)

        at_ops = [self._atomic_op(pc, insn, regions, af) for pc, insn in comp.at_sites]

        def at(k, a, v, r0):
            return at_ops[k](a, v, r0)

        la_ops = [self._ldabs_op(insn, regions) for insn in comp.la_sites]
        sites = comp.mem_sites

        def ld(k, a):
            pc, size, signed = sites[k]
            a &= M64
            g = regions.get(a >> 32)
            o = a & M32
            if g is None or o + size > g[1]:
                raise af(pc, a, size, False)
            if signed:
                return _UNPACK_S[size].unpack_from(g[0], o)[0] & M64
            return g[0][o] if size == 1 else _UNPACK[size].unpack_from(g[0], o)[0]

        def store(k, a, v):
            pc, size, _ = sites[k]
            a &= M64
            g = regions.get(a >> 32)
            o = a & M32
            if g is None or o + size > g[1] or not g[2]:
                raise af(pc, a, size, True)
            if size == 1:
                g[0][o] = v
            else:
                _UNPACK[size].pack_into(g[0], o, v)

        def la(k, x):
            return la_ops[k](x)

        sw = SWAP_FUNCS
        s64 = SIGNED64_FUNCS
        s32 = SIGNED32_FUNCS
        fns = comp.factory(
            ex, self, ex.regs, regions.get, vm.stack_tops, vm.stack_bufs, fx, bf, af,
            h_fns, h_pcs, h_error, h_value, h_sync, cxs, at, la,
            ld, store, consts, _UNPACK[2].unpack_from, _UNPACK[4].unpack_from, _UNPACK[8].unpack_from,
            _UNPACK[2].pack_into, _UNPACK[4].pack_into, _UNPACK[8].pack_into,
            _UNPACK_S[1].unpack_from, _UNPACK_S[2].unpack_from, _UNPACK_S[4].unpack_from,
            sw[16], sw[32], sw[64], s64[isa.BPF_DIV], s64[isa.BPF_MOD], s32[isa.BPF_DIV], s32[isa.BPF_MOD],
            _TailCall, _NO_REGION, lambda buf, start, size: _value_view(memory, buf, start, size))
        if any(h_sync) or comp.callx_sites:
            # such code stores registers to ex.regs during a run: it may leave them otherwise than
            # a fresh run finds them, so VM.run_event must reset them (no event entry)
            fns.pop(EVENT_ENTRY, None)
        return fns

    def _helper_site(self, pc, hid):
        """(function, name, needs registers in ex.regs) for the helper call at ``pc``."""
        vm, program = self.vm, self.program
        fn, name = vm.helper(hid)
        if fn is None:
            def unknown(ex, r1, r2, r3, r4, r5):
                raise vm.fault(pc, "unknown helper %d" % hid, "helper", program)
            return unknown, "#%d" % hid, False
        bind = getattr(_helper_spec(vm, hid), "bind", None)
        if bind is not None:
            fn = bind(vm.env) or fn  # specialized for this VM's environment (HelperSpec.bind)
        return fn, name, _sees_registers(vm, hid, name)

    def _callx(self, pc, reg):
        vm, ex, program = self.vm, self.ex, self.program
        an = self.compiled.analysis
        call_cache = {}

        def callx(d, v):
            if (v >> 32) == FUNC_REGION_ID:
                target = v & M32
                if target not in an.leaders:
                    raise vm.fault(pc, "callx target %d is not the start of a function" % target, "jump",
                                   program)
                if d >= DEPTH_LIMIT:
                    raise vm.fault(pc, "call depth exceeded (%d frames)" % isa.MAX_CALL_FRAMES, "depth",
                                   program)
                g = self._generic(target)
                g(d + 1)
                r = ex.regs
                return r[0], r[1], r[2], r[3], r[4], r[5]
            call = call_cache.get(v)
            if call is None:
                fn, name = vm.helper(v)
                if fn is None:
                    raise vm.fault(pc, "unknown helper %d (called through %%r%d)" % (v, reg), "helper", program)
                call = call_cache[v] = _make_helper_call(vm, ex, program, pc, fn, name)
            r = ex.regs
            value = call(r[1], r[2], r[3], r[4], r[5])
            if ex.tail_target is not None:
                r[0] = value
                raise _TailCall()
            return value, r[1], r[2], r[3], r[4], r[5]
        return callx

    def _generic(self, entry):
        """The generic entry (parameters from ex.regs) of the function at ``entry``."""
        g = self.gens.get(entry)
        if g is None:
            checks = self.gens is self.checked
            g = self._modules.get((entry, checks))
            if g is None:
                comp = compile_program(self.program, self.proofs, entries=(entry,), budget_checks=checks,
                                       direct_helpers=self.direct)
                g = self._modules[(entry, checks)] = self._bind(comp)[entry]
        return g

    def _atomic_op(self, pc, insn, regions, af):
        size = 8 if insn.opcode & 0x18 == isa.BPF_DW else 4
        mask = _SIZE_MASK[size]
        st = _UNPACK[size]
        unpack, pack = st.unpack_from, st.pack_into
        aop = insn.imm & M32
        cmpxchg = aop == isa.BPF_CMPXCHG
        base = aop if aop in (isa.BPF_XCHG, isa.BPF_CMPXCHG) else aop & ~isa.BPF_FETCH
        f = ALU64_FUNCS[base] if base in _ATOMIC_OPS else None

        def op(a, v, r0):
            a &= M64
            g = regions.get(a >> 32)
            o = a & M32
            if g is None or o + size > g[1] or not g[2]:
                raise af(pc, a, size, True)
            buf = g[0]
            old = unpack(buf, o)[0]
            if cmpxchg:
                if old == r0 & mask:
                    pack(buf, o, v & mask)
            elif f is None:
                pack(buf, o, v & mask)
            else:
                pack(buf, o, f(old, v) & mask)
            return old
        return op

    def _ldabs_op(self, insn, regions):
        ex = self.ex
        size = isa.SIZE_BYTES[insn.opcode & 0x18]
        unpack = _UNPACK_BE[size].unpack_from
        imm = insn.imm

        def op(x):
            base, length = ex.packet
            o = (imm + x) & M32
            if o + size > length:
                raise StopRun(0)
            return unpack(regions[base >> 32][0], o)[0]
        return op

    # -------------------------------------------------------------- engine protocol
    def run_main(self):
        ex = self.ex
        if ex.trace is not None or ex.profile is not None:
            return self._interpreter().run_main()
        self.depth = 0
        if ex.budget is None:
            if self.counting is None:
                self.counting = self._bind(compile_program(self.program, self.proofs, budget_checks=False,
                                                           direct_helpers=self.direct))
            self.gens = self.counting
        else:
            self.gens = self.checked
        try:
            return self.gens[0](0)
        except _TailCall:
            return ex.regs[0]

    def event_entry(self):
        """``fn(ctx_addr) -> r0``: the main program's run_main for a run that starts with the
        VM's initial registers and finds ``ex`` as the last run_main left it (no trace, no
        profile, the same budget mode); VM.run_event calls it while that holds. Only for code
        that writes no register but r0 to ex.regs (so the registers stay as the last fresh
        run set them, r1 aside); None otherwise."""
        return self.gens.get(EVENT_ENTRY)

    def call_function(self, pc, r1=0, r2=0, r3=0, r4=0, r5=0):
        """Run the subprogram at ``pc`` in a new frame (callbacks); returns its r0."""
        ex = self.ex
        if ex.trace is not None or ex.profile is not None:
            return self._interpreter().call_function(pc, r1, r2, r3, r4, r5)
        if pc not in self.compiled.analysis.leaders:
            raise HelperFault("callback address %d is not the start of a function" % pc)
        depth = self.depth
        if depth >= DEPTH_LIMIT:
            raise HelperFault("call depth exceeded (%d frames)" % isa.MAX_CALL_FRAMES)
        r = ex.regs
        saved = r[0:10]
        r[1], r[2], r[3], r[4], r[5] = r1 & M64, r2 & M64, r3 & M64, r4 & M64, r5 & M64
        try:
            result = self._generic(pc)(depth + 1)
        except _TailCall:
            result = r[0]
        finally:
            self.depth = depth
        r[0:6] = saved[0:6]
        r[6:10] = saved[6:10]
        return result

    def _interpreter(self):
        """--trace and --profile run on the reference interpreter (same faults, same budget)."""
        if self._interp is None:
            self._interp = self.vm.make_engine("interp", self.program)
        return self._interp


_CAST = {2: "H", 4: "I", 8: "Q"}
try:
    _NATIVE_VIEWS = sys.byteorder == "little" and hasattr(memoryview(b""), "cast")
except Exception:  # MicroPython: no memoryview.cast
    _NATIVE_VIEWS = False


class _StructView:
    """``view[i]`` = the u<size> at ``start + i * size`` of ``buf``, through struct (the
    fallback of ``_value_view``)."""

    def __init__(self, buf, start, size):
        self.buf = buf
        self.start = start
        self.size = size
        self.unpack = _UNPACK[size].unpack_from
        self.pack = _UNPACK[size].pack_into

    def __getitem__(self, i):
        return self.unpack(self.buf, self.start + i * self.size)[0]

    def __setitem__(self, i, value):
        self.pack(self.buf, self.start + i * self.size, value)


def _value_view(memory, buf, start, size):
    """An item view (u2/u4/u8, little-endian) of ``buf`` from byte ``start``: the generated code
    reads and writes proven map value fields as ``w8_3[5]``.

    A native memoryview cast on little-endian CPython when the buffer has reached its final
    size (a view pins a bytearray's size, and map storage that can still grow must stay
    resizable, see Memory._growing); else struct through _StructView, same results.
    """
    if _NATIVE_VIEWS and isinstance(buf, (bytearray, bytes)):
        growing = False
        for item in memory._growing:
            if item[0][0] is buf:
                growing = True
        if not growing:
            view = memoryview(buf)[start:]
            view = view[:len(view) - len(view) % size]
            return view.cast(_CAST[size])
    return _StructView(buf, start, size)


def _helper_spec(vm, hid):
    """The VM's entry for helper ``hid`` (a HelperSpec, a plain callable) or None."""
    try:
        return vm.helpers.get(hid)
    except Exception:
        return None


def _sees_registers(vm, hid, name):
    """True unless the helper's spec shows it can neither tail-call nor run a callback.

    Those two read the whole register file (the next program starts with it; a callback's
    frame starts from it), so the generated code stores its registers to ex.regs first.
    A plain callable without a spec is assumed to need them.
    """
    args = getattr(_helper_spec(vm, hid), "args", None)
    if args is None or hid == 12 or "tail" in str(name):
        return True
    return ARG_PTR_TO_FUNC in args


def _make_helper_call(vm, ex, program, pc, fn, name):
    def call(r1, r2, r3, r4, r5):
        ex.pc = pc
        try:
            v = fn(ex, r1, r2, r3, r4, r5)
        except StopRun:
            raise
        except BPFFault:
            raise
        except _TailCall:
            raise
        except Exception as exc:
            raise _helper_fault(vm, program, pc, name, exc) from None
        if v.__class__ is not int:
            v = _helper_result(vm, program, pc, name, v)
        return v & M64
    return call
