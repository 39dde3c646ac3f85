"""Checks of a program's shape before any path is explored: encodings, jump and call targets,
falling off the end, reachability, recursion; then prune points, loops and register liveness.
"""

from iotbpf.ebpf import isa
from iotbpf.ebpf.isa import cfg
from iotbpf.ebpf.ranges import M32


class StructureMixin:
    """Static checks and the control-flow facts exploration relies on (Linux's check_cfg)."""

    def check_static(self):
        """Every static check (Linux's check_cfg); the messages, empty if the shape is fine."""
        insns = self.insns
        n = self.n
        errors = []
        self.is_tail = [False] * n
        if n == 0:
            return ["pc 0: <end of program>: the program is empty \u2014 it needs at least an exit"]
        tails = isa.lddw_tails(insns)
        for pc in tails:
            self.is_tail[pc] = True
        count = n - len(tails)
        if count > self.max_insns:
            return ["pc %d: %s: the program has %d instructions, more than the limit of %d"
                    % (self.max_insns, self.text(self.max_insns), count, self.max_insns)]
        for pc in range(n):
            if self.is_tail[pc]:
                continue
            insn = insns[pc]
            op = insn.opcode
            kind = isa.op_kind(op)
            tail = insns[pc + 1] if op == isa.LDDW and pc + 1 < n else None
            if kind is None:
                errors.append(self.message(pc, "unknown opcode 0x%02x" % op,
                                           "this is not an eBPF instruction"))
                continue
            if op == isa.LDDW and tail is None:
                errors.append(self.message(pc, "lddw is missing its second half"))
                continue
            if insn.dst > 10 or insn.src > 10:
                errors.append(self.message(pc, "invalid register r%d" % max(insn.dst, insn.src),
                                           "registers are r0 to r10"))
                continue
            if not isa.is_canonical(insn, tail):
                errors.append(self.message(pc, "reserved fields of the instruction are not zero",
                                           "the encoding is malformed"))
                continue
            if kind in ("ja", "ja32", "jcond"):
                t = insn.jump_target(pc)
                if not 0 <= t < n:
                    errors.append(self.message(pc, "jump out of range (target pc %d, program has %d slots)"
                                               % (t, n)))
                elif self.is_tail[t]:
                    errors.append(self.message(pc, "jump into the middle of the lddw at pc %d" % (t - 1)))
            elif kind == "call" and insn.src == isa.BPF_PSEUDO_CALL:
                t = pc + 1 + insn.imm
                if not 0 <= t < n or self.is_tail[t]:
                    errors.append(self.message(pc, "call target pc %d is not an instruction" % t))
            elif op == isa.LDDW and insn.src == isa.BPF_PSEUDO_FUNC:
                t = pc + 1 + isa.s32(insn.imm)
                if not 0 <= t < n or self.is_tail[t]:
                    errors.append(self.message(pc, "function address pc %d is not an instruction" % t))
            elif op == isa.LDDW and insn.src not in (0, isa.BPF_PSEUDO_MAP_FD, isa.BPF_PSEUDO_MAP_IDX,
                                                     isa.BPF_PSEUDO_MAP_VALUE,
                                                     isa.BPF_PSEUDO_MAP_IDX_VALUE):
                errors.append(self.message(pc, "lddw source %d (%s) is not supported" % (
                    insn.src, isa.LDDW_PSEUDO_NAMES.get(insn.src, "unknown"))))
        if errors:
            return errors
        self.funcs = isa.function_starts(insns)  # every target was checked above
        self.func_of = [0] * n
        starts = self.funcs
        fi = 0
        for pc in range(n):
            while fi + 1 < len(starts) and starts[fi + 1] <= pc:
                fi += 1
            self.func_of[pc] = starts[fi]
        # successors, function boundaries, falling off the end
        self.succ = [()] * n
        for pc in range(n):
            if self.is_tail[pc]:
                continue
            insn = insns[pc]
            kind = isa.op_kind(insn.opcode)
            step = 2 if insn.opcode == isa.LDDW else 1
            f = self.func_of[pc]
            if kind == "exit":
                s = ()
            elif kind in ("ja", "ja32"):
                s = (insn.jump_target(pc),)
            elif kind == "jcond":
                s = (pc + 1, insn.jump_target(pc))
            else:
                s = (pc + step,)
            for t in s:
                if t >= n or (t == pc + step and t < n and self.func_of[t] != f):
                    errors.append(self.message(pc, "execution falls off the end of the %s" % (
                        "program" if t >= n else "function"),
                        "end every path with exit (or a jump)"))
                elif self.func_of[t] != f:
                    errors.append(self.message(pc, "jump to pc %d leaves the function starting at pc %d"
                                               % (t, f)))
            self.succ[pc] = s
        if errors:
            return errors
        # reachability (from pc 0, following calls and function addresses)
        edges = list(self.succ)
        for pc in range(n):
            insn = insns[pc]
            if self.is_tail[pc]:
                continue
            if insn.opcode == isa.CALL and insn.src == isa.BPF_PSEUDO_CALL:
                edges[pc] = edges[pc] + (pc + 1 + insn.imm,)
            elif insn.opcode == isa.LDDW and insn.src == isa.BPF_PSEUDO_FUNC:
                edges[pc] = edges[pc] + (pc + 1 + isa.s32(insn.imm),)
        seen = set(cfg.reverse_postorder(edges, 0))
        for pc in range(n):
            if pc not in seen and not self.is_tail[pc]:
                errors.append(self.message(pc, "unreachable instruction",
                                           "no path from the start of the program reaches it"))
                break
        if errors:
            return errors
        # recursion: cycles in the static call graph
        callees = {}
        for pc in range(n):
            insn = insns[pc]
            if not self.is_tail[pc] and insn.opcode == isa.CALL and insn.src == isa.BPF_PSEUDO_CALL:
                callees.setdefault(self.func_of[pc], []).append((pc, pc + 1 + insn.imm))
        err = self._find_recursion(callees)
        if err:
            return [err]
        self._analyse_cfg()
        return []

    def _find_recursion(self, callees):
        """A message if the static call graph has a cycle (recursion), else None."""
        color = {}
        for root in self.funcs:
            if root in color:
                continue
            stack = [(root, 0)]
            color[root] = 1
            while stack:
                f, i = stack[-1]
                edges = callees.get(f, ())
                if i >= len(edges):
                    color[f] = 2
                    stack.pop()
                    continue
                stack[-1] = (f, i + 1)
                pc, g = edges[i]
                c = color.get(g, 0)
                if c == 1:
                    return self.message(pc, "recursive call: the function at pc %d calls itself (directly "
                                        "or through others)" % g, "recursion is not allowed; use a loop")
                if c == 0:
                    color[g] = 1
                    stack.append((g, 0))
        return None

    def _analyse_cfg(self):
        """Prune points, pcs inside loops (no joining there) and register liveness."""
        n = self.n
        succ = self.succ
        prune = set(self.funcs)
        for pc in range(n):
            s = succ[pc]
            if len(s) == 2:
                prune.add(s[0])
                prune.add(s[1])
            elif s and s[0] != pc + (2 if self.insns[pc].opcode == isa.LDDW else 1):
                prune.add(s[0])
        self.prune = prune
        # Targets of backward jumps: every cycle has one, and a state is always stored there.
        heads = set()
        for pc in range(n):
            for t in succ[pc]:
                if t <= pc:
                    heads.add(t)
        self.loop_heads = heads
        self.in_loop = self._pcs_on_cycles()
        # liveness (bit i = register i), backward fixpoint
        use = [0] * n
        dfn = [0] * n
        args = 0b111110
        for pc, insn, kind, d, s in self._insn_bits():
            op = insn.opcode
            u = 0
            df = 0
            if kind == "alu":
                code = op & 0xF0
                if code == isa.BPF_MOV:
                    u = s if op & isa.BPF_X else 0
                else:
                    u = d | (s if op & isa.BPF_X and code != isa.BPF_NEG else 0)
                df = d
            elif kind == "end":
                u = d
                df = d
            elif kind == "lddw":
                df = d
            elif kind in ("ldx", "ldxs"):
                u = s
                df = d
            elif kind == "st":
                u = d
            elif kind == "stx":
                u = d | s
            elif kind == "atomic":
                u = d | s
                if insn.imm & isa.BPF_FETCH:
                    df = s
                if (insn.imm & M32) == isa.BPF_CMPXCHG:
                    u |= 1
                    df = 1
            elif kind in ("ldabs", "ldind"):
                u = s if kind == "ldind" else 0
                df = 1
            elif kind == "jcond":
                u = d | (s if op & isa.BPF_X else 0)
            elif kind == "call":
                u = args
                df = 0b111111
            elif kind == "callx":
                u = args | d
                df = 0b111111
            elif kind == "exit":
                u = 1
            use[pc] = u | (1 << 10)
            dfn[pc] = df
        order = [pc for pc in range(n - 1, -1, -1) if not self.is_tail[pc]]
        self.live = cfg.backward_fixpoint(order, succ, lambda pc, out: use[pc] | (out & ~dfn[pc]), [0] * n)
        self.precise = self._precision(use, order)

    def _pcs_on_cycles(self):
        """pcs on a cycle: strongly connected components (Kosaraju's two depth-first passes, with
        cfg.py's order) of more than one pc, or of a pc that jumps to itself."""
        succ = self.succ
        n = self.n
        pcs = [pc for pc in range(n) if not self.is_tail[pc]]
        order = cfg.reverse_postorder(list(succ) + [pcs], n)[1:]  # node n: a root before every pc
        done = set()
        back = _Unassigned(cfg.predecessors(succ, pcs), done)
        in_loop = set()
        for v in order:
            if v in done:
                continue
            comp = cfg.reverse_postorder(back, v)
            done.update(comp)
            if len(comp) > 1 or v in succ[v]:
                in_loop.update(comp)
        return in_loop

    def _insn_bits(self):
        """(pc, insn, kind, dst bit, src bit) of every instruction, lddw tails left out."""
        for pc in range(self.n):
            if not self.is_tail[pc]:
                insn = self.insns[pc]
                yield pc, insn, isa.op_kind(insn.opcode), 1 << insn.dst, 1 << insn.src

    def _precision(self, use, order):
        """Registers whose value (not just type) can still matter for safety, per pc.

        A value matters if it may flow into a memory address, a branch condition, a helper or
        function argument, a stored value or a function's return value; other scalars can be
        compared by type alone when pruning (a static form of Linux's precision tracking).
        """
        n = self.n
        succ = self.succ
        seed = [0] * n
        flow = [None] * n
        for pc, insn, kind, d, s in self._insn_bits():
            op = insn.opcode
            if kind == "alu":
                if op & 0xF0 == isa.BPF_MOV:
                    flow[pc] = (d, s if op & isa.BPF_X else 0)
                elif op & isa.BPF_X:
                    flow[pc] = (d, d | s)
                else:
                    flow[pc] = (d, d)
            elif kind == "end":
                flow[pc] = (d, d)
            elif kind == "lddw":
                flow[pc] = (d, 0)
            elif kind in ("ldx", "ldxs"):
                flow[pc] = (d, 0)
                seed[pc] = s
            elif kind == "exit":
                seed[pc] = 0 if self.func_of[pc] == 0 else 1
                flow[pc] = (0x7FF, 0)
            elif kind in ("call", "callx"):
                flow[pc] = (0b111111, 0)
                seed[pc] = use[pc]
            else:
                seed[pc] = use[pc]
            seed[pc] |= 1 << 10

        def transfer(pc, out):
            """Precise registers before ``pc`` from those after it."""
            f = flow[pc]
            if f is None:
                v = out
            else:
                kill, gen = f
                v = out & ~kill
                if out & kill:
                    v |= gen
            return v | seed[pc]
        return cfg.backward_fixpoint(order, succ, transfer, [0] * n)


class _Unassigned:
    """Predecessor lists without the pcs already in a component (Kosaraju's second pass)."""

    def __init__(self, preds, done):
        """``preds``: pc -> predecessors; ``done``: the pcs assigned so far (grows)."""
        self.preds = preds
        self.done = done

    def __getitem__(self, pc):
        """The predecessors of ``pc`` not yet assigned."""
        return [p for p in self.preds[pc] if p not in self.done]
