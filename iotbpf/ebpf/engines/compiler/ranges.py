"""Value ranges the compiler tracks to drop masks it can prove redundant: ``_alu_step`` is the
transfer of one ALU instruction, ``block_ranges`` the forward fixpoint over the blocks."""

import heapq

from iotbpf.ebpf import isa
from iotbpf.ebpf import ranges as transfer
from iotbpf.ebpf.engines.compiler.analysis import regs_in
from iotbpf.ebpf.engines.frames import _SIZE_MASK
from iotbpf.ebpf.isa import M32, M64

# ---------------------------------------------------------------- value ranges
# Unsigned [lo, hi] bounds per register let the translation leave out wrap-around masks that
# can never change a value (e.g. ``(r2 >> 1) + 7``). Sound over-approximation only: a bound
# that is not proven is [0, 2**64 - 1] and the mask stays.
TOP = (0, M64)
TOP_STATE = (TOP,) * 10


def _alu_step(insn, st):
    """Updates ``st`` (list of 10 ranges) for ALU ``insn``; returns True if no mask is needed.
    The range is the verifier's transfer (ranges.py); the mask is idle when the unmasked
    expression of ops.UNMASKED cannot leave [0, 2**bits) for operands in these ranges."""
    op = insn.opcode
    code = op & 0xF0
    bits = 64 if op & 0x07 == isa.BPF_ALU64 else 32
    m = (1 << bits) - 1
    x = op & isa.BPF_X
    a = st[insn.dst]
    b = (st[insn.src] if insn.src < 10 else TOP) if x else (insn.imm & m, insn.imm & m)
    st[insn.dst] = transfer.interval_alu(code, bits, insn.off, a, b)
    if insn.off:
        return False  # movsx, sdiv, smod: always masked
    if code in (isa.BPF_ADD, isa.BPF_SUB, isa.BPF_MUL) or (code == isa.BPF_LSH and not x):
        if bits == 64 and not x and code in (isa.BPF_ADD, isa.BPF_SUB):
            b = (insn.imm, insn.imm)  # written signed: ``r - 5`` for ``add r, -5``
        lo, hi = transfer.unbounded(code, bits, a, b)
        return lo >= 0 and hi <= m and (bits == 64 or code != isa.BPF_SUB or a[1] <= m)
    if bits == 32 and code == isa.BPF_RSH:
        return a[1] <= m
    if bits == 32 and code == isa.BPF_AND:
        return min(a[1], b[1]) <= m
    if bits == 32 and code in (isa.BPF_OR, isa.BPF_XOR):
        return max(a[1], b[1]) <= m
    return bits == 32 and code == isa.BPF_MOV and bool(x) and b[1] <= m


def insn_step(insn, st):
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


def block_ranges(an, f, gen):
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
            insn_step(insn, st)
        term = blk.term
        t = term[0]
        if t == "jcond" and term[3] is True and len(blk.succs) == 2:
            taken, fall = _branch_states(term[2], st)
            outs = [(blk.succs[0], taken), (blk.succs[1], fall)]
        else:
            if t == "helper":
                st[0] = TOP
            elif t == "call":
                for i in regs_in(gen.by_entry[term[2]].rets):
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
