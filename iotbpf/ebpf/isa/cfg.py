"""The control-flow graph, once: basic blocks and function starts of a program, reverse postorder,
dominators, natural loops and the backward data-flow fixpoint the analyses share."""

from iotbpf.ebpf.isa.encoding import BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC, CALL, LDDW, op_kind, s32


# ------------------------------------------------------------------ control flow
def block_leaders(insns):
    """Sorted first slots of the basic blocks (the budget unit shared by both engines).

    Leaders: slot 0; every jump target and the slot after every jump (ja, ja32, conditional);
    the slot after every call (helper, local, callx) and exit; every local-call target and
    every lddw ``func`` target; the slot after a lddw whose second slot is a jump target.
    Targets outside the program are left out (the jump faults).
    A block's cost is its number of instructions (a lddw counts once).
    """
    n = len(insns)
    leaders = {0}
    pc = 0
    while pc < n:
        insn = insns[pc]
        op = insn.opcode
        kind = op_kind(op)
        step = 2 if op == LDDW else 1
        if kind in ("ja", "ja32", "jcond"):
            target = insn.jump_target(pc)
            if 0 <= target < n:
                leaders.add(target)
            leaders.add(pc + 1)
        elif kind in ("call", "callx", "exit"):
            leaders.add(pc + 1)
            if kind == "call" and insn.src == BPF_PSEUDO_CALL:
                target = pc + 1 + insn.imm
                if 0 <= target < n:
                    leaders.add(target)
        elif op == LDDW and insn.src == BPF_PSEUDO_FUNC:
            target = pc + 1 + s32(insn.imm)
            if 0 <= target < n:
                leaders.add(target)
        pc += step
    # a jump into the second slot of a lddw makes that slot a leader (it faults there); the
    # lddw's own block then ends early, so the slot after the lddw must start a block too
    for tail in lddw_tails(insns):
        if tail in leaders:
            leaders.add(tail + 1)
    return sorted(x for x in leaders if x < n)


def lddw_tails(insns):
    """The set of second slots of the lddw instructions: no instruction starts there."""
    tails = set()
    n = len(insns)
    pc = 0
    while pc < n:
        if insns[pc].opcode == LDDW:
            if pc + 1 < n:
                tails.add(pc + 1)
            pc += 2
        else:
            pc += 1
    return tails


def function_starts(insns):
    """pc 0 and every local-call or lddw-func target inside the program, sorted."""
    starts = {0}
    n = len(insns)
    pc = 0
    while pc < n:
        insn = insns[pc]
        target = -1
        if insn.opcode == CALL and insn.src == BPF_PSEUDO_CALL:
            target = pc + 1 + insn.imm
        elif insn.opcode == LDDW and insn.src == BPF_PSEUDO_FUNC:
            target = pc + 1 + s32(insn.imm)
        if 0 <= target < n:
            starts.add(target)
        pc += 2 if insn.opcode == LDDW else 1
    return sorted(starts)


def basic_blocks(insns):
    """List of (start, end, cost): slots [start, end) form one block costing ``cost``."""
    leaders = block_leaders(insns)
    n = len(insns)
    blocks = []
    for i, start in enumerate(leaders):
        end = leaders[i + 1] if i + 1 < len(leaders) else n
        cost = 0
        pc = start
        while pc < end:
            cost += 1
            pc += 2 if insns[pc].opcode == LDDW else 1
        blocks.append((start, end, cost))
    return blocks


# ------------------------------------------------------------------ graph basics
def reverse_postorder(succs, entry=0):
    """Nodes reachable from ``entry`` in reverse postorder (iterative depth-first search)."""
    seen = {entry}
    post = []
    stack = [(entry, 0)]
    while stack:
        node, i = stack[-1]
        out = succs[node]
        if i < len(out):
            stack[-1] = (node, i + 1)
            nxt = out[i]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, 0))
        else:
            stack.pop()
            post.append(node)
    post.reverse()
    return post


def backward_fixpoint(order, succs, transfer, facts):
    """A backward may-analysis over bit sets: ``facts[node] = transfer(node, union of facts
    over succs[node])`` for each node of ``order`` in turn, updated in place, until nothing
    changes; returns ``facts`` (indexable by every node and successor)."""
    changed = True
    while changed:
        changed = False
        for node in order:
            out = 0
            for s in succs[node]:
                out |= facts[s]
            v = transfer(node, out)
            if v != facts[node]:
                facts[node] = v
                changed = True
    return facts


def predecessors(succs, nodes):
    """node -> list of predecessors among ``nodes`` (each edge once per distinct source)."""
    preds = {n: [] for n in nodes}
    for n in nodes:
        for s in succs[n]:
            if s in preds and n not in preds[s]:
                preds[s].append(n)
    return preds


def dominators(succs, entry=0, order=None):
    """Immediate dominators, ``{node: idom}`` (``idom[entry] == entry``), for reachable nodes.

    Cooper, Harvey and Kennedy's iterative algorithm over reverse postorder.
    """
    if order is None:
        order = reverse_postorder(succs, entry)
    index = {n: i for i, n in enumerate(order)}
    preds = predecessors(succs, order)
    idom = {entry: entry}
    changed = True
    while changed:
        changed = False
        for n in order[1:]:
            new = None
            for p in preds[n]:
                if p not in idom:
                    continue
                if new is None:
                    new = p
                    continue
                a, b = p, new
                while a != b:
                    while index[a] > index[b]:
                        a = idom[a]
                    while index[b] > index[a]:
                        b = idom[b]
                new = a
            if new is not None and idom.get(n) != new:
                idom[n] = new
                changed = True
    return idom


def dominates(idom, a, b):
    """True if ``a`` dominates ``b`` (every path from the entry to ``b`` passes ``a``)."""
    while True:
        if a == b:
            return True
        parent = idom.get(b)
        if parent is None or parent == b:
            return False
        b = parent


class Graph:
    """A rooted graph with its order, dominator tree and natural loops.

    ``rpo`` (reachable nodes in reverse postorder), ``index`` (node -> rpo number), ``preds``,
    ``idom``, ``children`` (dominator-tree children in rpo order), ``back_edges`` (list of
    (source, header)), ``loops`` (header -> set of nodes of its natural loop) and
    ``reducible`` (every retreating edge goes to a node that dominates its source).
    """

    def __init__(self, succs, entry=0):
        self.succs = succs
        self.entry = entry
        self.rpo = reverse_postorder(succs, entry)
        self.index = {n: i for i, n in enumerate(self.rpo)}
        self.preds = predecessors(succs, self.rpo)
        self.idom = dominators(succs, entry, self.rpo)
        self.children = {n: [] for n in self.rpo}
        for n in self.rpo[1:]:
            self.children[self.idom[n]].append(n)
        self.back_edges = []
        self.reducible = True
        for n in self.rpo:
            for s in succs[n]:
                if self.index[s] <= self.index[n]:
                    if dominates(self.idom, s, n):
                        self.back_edges.append((n, s))
                    else:
                        self.reducible = False
        self.loops = {}
        for source, header in self.back_edges:
            body = self.loops.setdefault(header, {header})
            work = [source]
            while work:
                m = work.pop()
                if m in body:
                    continue
                body.add(m)
                work.extend(self.preds[m])

    def is_backward(self, source, target):
        return self.index[target] <= self.index[source]

    def forward_in_degree(self, node):
        return sum(1 for p in self.preds[node] if self.index[p] < self.index[node])
