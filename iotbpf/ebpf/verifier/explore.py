"""Depth-first exploration of every path from the entry state, with the longest path's length
and an early stop for loops that cannot end within the instruction limit.
"""

from iotbpf.ebpf import isa
from iotbpf.ebpf.ranges import (
    M32,
    M64,
    const_bounds,
    s64,
)
from iotbpf.ebpf.verifier.domain import (
    PTR_CTX,
    PTR_MEM,
    PTR_STACK,
    SCALAR,
    STACK,
    UNINIT,
    Reg,
    known,
    scalar,
)
from iotbpf.ebpf.verifier.state import (
    Checkpoint,
    Frame,
    Reject,
    Seg,
    State,
)

LOOP_PROBE_ITERS = 24  # same step and cost this many iterations running: predict the loop's length


class ExploreMixin:
    """Walk the paths of the program (Linux's do_check), one instruction at a time."""

    def initial_state(self):
        """The state at pc 0: r1 the context (or the input buffer with its length in r2), r10 the stack."""
        regs = [UNINIT] * 11
        if self.hook is not None:
            regs[1] = Reg(PTR_CTX)
            mem_min = 0
        else:
            regs[1] = Reg(PTR_MEM)
            if self.mem_size is not None:
                regs[2] = scalar(const_bounds(self.mem_size), sym=0)
                mem_min = self.mem_size
            else:
                regs[2] = scalar((0, M32, 0, M32, 0, M32), sym=0)
                mem_min = 0
        regs[10] = Reg(PTR_STACK, k=0)
        frame = Frame(regs, bytearray(STACK), {}, -1, 0)
        return State([frame], mem_min, None, 0)

    def explore(self):
        """Walk every path from the entry; paths end at exit or where a stored state covers them."""
        self._probes = {}  # loop condition pc -> [counter, depth, step, cost, steady, left] (_loop_probe)
        self._loop_branches = {}  # loop condition pc -> (depth, both ways possible), last visit
        root_seg = Seg()
        root_cp = Checkpoint(None, None, root_seg, -1)
        visited = {}
        self.visited = visited
        work = [(self.initial_state(), 0, root_seg, root_cp, True)]
        limit = self.budget if self.budget is not None else self.complexity
        prune = self.prune
        insns = self.insns
        while work:
            state, pc, seg, cp, fresh = work.pop()
            while True:
                if pc in prune and not fresh:
                    res = self.checkpoint(state, pc, seg, cp, visited)
                    if res is None:
                        break
                    state, seg, cp = res
                fresh = False
                self.processed += 1
                if self.processed > self.complexity:
                    self.fail(pc, "the program is too complex to verify: gave up after %d instructions%s"
                              % (self.complexity, self._back_edge_text(pc, state)), "a loop may not be "
                              "bounded; simplify it or bound its counter with a constant", state)
                state.depth += 1
                seg.length += 1
                if state.depth > limit:
                    self.fail(pc, "a run may execute more than %d instructions%s" % (
                        limit, " (the budget)" if self.budget is not None else ""),
                        "loop not provably bounded: give the loop a constant bound", state)
                insn = insns[pc]
                kind = isa.op_kind(insn.opcode)
                if kind == "jcond":
                    in_loop = pc in self.in_loop
                    if in_loop:
                        self._loop_probe(state, pc, insn)
                        at_depth = state.depth
                    taken, fall = self.branch(state, pc, insn)
                    if in_loop:  # what _loop_probe asks of the loop's other conditions
                        self._loop_branches[pc] = (at_depth, taken is not None and fall is not None)
                    target = insn.jump_target(pc)
                    if taken is not None and fall is not None:
                        sa = Seg()
                        sb = Seg()
                        seg.succ.append(sa)
                        seg.succ.append(sb)
                        cp.branches += 1
                        taken.path = ((pc, target), taken.path)
                        work.append((taken, target, sa, cp, False))
                        fall.path = ((pc, pc + 1), fall.path)
                        state, pc, seg = fall, pc + 1, sb
                    elif taken is not None:
                        state, pc = taken, target
                    else:
                        state, pc = fall, pc + 1
                    continue
                if kind in ("ja", "ja32"):
                    pc = insn.jump_target(pc)
                    continue
                if kind == "exit":
                    nxt = self.do_exit(state, pc)
                    if self.pending is not None:
                        seg, cp = self.fork_pending(work, seg, cp)
                    if nxt is None:
                        self.finish(cp)
                        break
                    pc = nxt
                    continue
                if kind == "call" and insn.src == isa.BPF_PSEUDO_CALL:
                    pc = self.do_local_call(state, pc, insn)
                    continue
                if kind in ("ldabs", "ldind"):
                    self.do_ldabs(state, pc, insn)
                    pc += 1
                    continue
                self.step(state, pc, insn, kind)
                if self.extra_cost:
                    # A helper's declared extra cost counts against the budget like instructions.
                    seg.length += self.extra_cost
                    state.depth += self.extra_cost
                    self.extra_cost = 0
                if self.pending is not None:
                    seg, cp = self.fork_pending(work, seg, cp)
                pc += 2 if insn.opcode == isa.LDDW else 1
        self.max_path = self.longest(root_seg)
        if self.budget is not None and self.max_path > self.budget:
            raise Reject("pc 0: %s: a run may execute up to %d instructions, more than the budget of %d "
                         "\u2014 bound the loops more tightly" % (self.text(0), self.max_path, self.budget))

    def _back_edge_text(self, pc, state):
        """", back edge pc F -> pc T (file:line: text)": the jump closing the loop the path is in."""
        edge = None
        p = state.path if state is not None else None
        while p is not None:
            f, t = p[0]
            if t <= f and t <= pc <= f:
                edge = (f, t)
                break
            p = p[1]
        if edge is None:
            heads = [h for h in self.loop_heads if h <= pc]
            if not heads:
                return ""
            head = max(heads)
            srcs = [f for f in range(head, self.n) if head in self.succ[f]]
            if not srcs:
                return ""
            edge = (max(srcs), head)
        text = ", back edge pc %d -> pc %d" % edge
        for at in range(edge[0], edge[1] - 1, -1):
            info = self.line_info.get(at) if hasattr(self.line_info, "get") else None
            if info and len(info) >= 3:
                return text + " at %s:%s: %s" % (info[0], info[1], str(info[2]).strip())
        return text

    def _loop_probe(self, state, pc, insn):
        """Reject early a loop the verifier would walk until its limit: at a condition that
        compares a counter (a known value changing by the same step every iteration) with a
        bound, predict how many more iterations can still go either way. When that, times the
        iteration's instructions, exceeds what is left of the limit, and no other such condition
        seen in the last iteration ends sooner, fail now instead of after a million steps."""
        regs = state.frames[-1].regs
        a = regs[insn.dst]
        op = insn.opcode
        if op & isa.BPF_X:
            b = regs[insn.src]
        else:
            is64 = op & 0x07 == isa.BPF_JMP
            b = known(insn.imm & M64 if is64 else insn.imm & M32)
        if a.t != SCALAR or b.t != SCALAR or not (a.is_const() or b.is_const()):
            return
        counter, bound, creg = (a, b, insn.dst) if a.is_const() else (b, a, insn.src)
        code = op & 0xF0
        signed = code in (isa.BPF_JSGT, isa.BPF_JSGE, isa.BPF_JSLT, isa.BPF_JSLE)
        k = s64(counter.umin) if signed else counter.umin
        probes = self._probes
        rec = probes.get(pc)
        probes[pc] = new = [k, state.depth, 0, 0, 0, None]
        if rec is None:
            return
        step = k - rec[0]
        cost = state.depth - rec[1]
        new[2], new[3] = step, cost
        new[4] = rec[4] + 1 if step and cost > 0 and step == rec[2] and cost == rec[3] else 0
        if not step:
            return
        lo, hi = (bound.smin, bound.smax) if signed else (bound.umin, bound.umax)
        left = (hi - k) // step if step > 0 else (k - lo) // -step
        new[5] = left if left > 0 else None
        if new[4] < LOOP_PROBE_ITERS or new[5] is None or bound.is_const():
            return
        room = self.complexity - self.processed
        if left * cost <= room:
            return
        for other_pc in probes:
            o = probes[other_pc]
            if other_pc != pc and o[5] is not None and state.depth - o[1] <= cost and \
                    o[5] * cost <= room:
                return  # another condition of this loop may end it in time
        for other_pc in self._loop_branches:
            depth, undecided = self._loop_branches[other_pc]
            o = probes.get(other_pc)
            if other_pc != pc and undecided and state.depth - depth < cost and \
                    (o is None or o[5] is None or o[5] * cost <= room):
                return  # another open condition (not a counter running away) may end it
        self.fail(pc, "loop without a constant bound: it compares r%d (now %d, %+d every iteration "
                  "of %d instructions) with a value up to %d, so it may run %d more times — more "
                  "than the verifier's %d-instruction limit%s"
                  % (creg, k, step, cost, hi if step > 0 else lo, left, self.complexity,
                     self._back_edge_text(pc, state)),
                  "bound the loop with a constant (e.g. if (n > 64) n = 64;)", state)

    def fork_pending(self, work, seg, cp):
        """Queue the extra path a callback helper or a callback's return opened (self.pending)."""
        other, other_pc = self.pending
        self.pending = None
        sa = Seg()
        sb = Seg()
        seg.succ.append(sa)
        seg.succ.append(sb)
        cp.branches += 1
        work.append((other, other_pc, sa, cp, False))
        return sb, cp

    def finish(self, cp):
        """One more path through ``cp`` ended; mark it and its ancestors complete when all have."""
        while cp is not None:
            cp.branches -= 1
            if cp.branches > 0:
                return
            cp.complete = True
            cp = cp.parent

    def longest(self, root):
        """Longest path (instructions) through the explored graph, which is acyclic."""
        memo = {}
        stack = [(root, 0)]
        while stack:
            s, i = stack[-1]
            if i < len(s.succ):
                stack[-1] = (s, i + 1)
                c = s.succ[i]
                if id(c) not in memo:
                    stack.append((c, 0))
                continue
            stack.pop()
            best = 0
            for c in s.succ:
                v = memo.get(id(c), 0)
                if v > best:
                    best = v
            memo[id(s)] = s.length + best
        return memo[id(root)]
