"""Code generation: one Python function per bpf function, registers as locals, each instruction's
semantics from the isa/ops.py templates, structured by structure.py or run as a state machine."""

from iotbpf.ebpf import isa
from iotbpf.ebpf.engines.compiler import structure
from iotbpf.ebpf.engines.compiler.analysis import (
    ALL_REGS,
    DEPTH_LIMIT,
    EVENT_ENTRY,
    STACK,
    Function,
    function_liveness,
    regs_in,
    template_fields,
    uses_defs,
)
from iotbpf.ebpf.engines.compiler.ranges import TOP_STATE, block_ranges, insn_step
from iotbpf.ebpf.engines.frames import _SIZE_MASK
from iotbpf.ebpf.isa import M32, M64, cfg, ops

_VALUE_SOURCES = (isa.BPF_PSEUDO_MAP_VALUE, isa.BPF_PSEUDO_MAP_IDX_VALUE)


CTX = -1  # the region key (see _track_constant) of r1 on entry to the main function


class CompileError(Exception):
    """Internal: the structured translation failed; the state machine is used instead."""


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


# ---------------------------------------------------------------- code generation
class Generator:
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
            f = Function(e, len(self.funcs), sorted(an.reachable(e)))
            self.funcs.append(f)
            self.by_entry[e] = f
            for node in f.nodes:
                term = an.blocks[node].term
                if term[0] == "call" and term[2] not in self.by_entry:
                    work.append(term[2])
        for e in an.subprograms:
            if e not in self.by_entry:
                f = Function(e, len(self.funcs), sorted(an.reachable(e)))
                self.funcs.append(f)
                self.by_entry[e] = f
        function_liveness(an, self.funcs, self.direct_helpers)
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
            args = ["R[%d]" % i for i in regs_in(f.params)] + ([] if self.depths is not None else ["d"])
            rets = regs_in(f.rets)
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
        args = ["a" if i == 1 else "0" for i in regs_in(f.params)] + ([] if self.depths is not None else ["0"])
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
        params = ["r%d" % i for i in regs_in(f.params)] + ([] if static else ["d"])
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
        self.ranges = block_ranges(an, f, self)
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
            stmts = structure.lower(structure.structure(idx_succs, entry, graph), terminal)
            body = []
            if structure.uses_jumps(stmts):
                body.append("        _j = 0")
            body += structure.render(stmts, code_lines, cond_text, terminal, indent=2)
            self.structured += 1
        except (structure.StructureError, RuntimeError):
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
            out = self.insn(pc, insn, insn_step(insn, st))
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
                for reg in regs_in(uses_defs(insn)[1]):
                    self.bases.pop(reg, None)
        for out, _pure in _drop_dead(items):
            lines += out
        self.term_states[node] = st
        term = blk.term
        t = term[0]
        if t == "fault":
            lines.append("raise FX(%d)" % term[1])
        elif t == "exit":
            lines.append("return " + self._ret_tuple(regs_in(f.rets)))
        elif t == "jcond" and term[3] is not True:
            lines.append("if %s: raise FX(%d)" % (self.cond(term[2], st), term[3]))
        elif t == "call":
            g = self.by_entry[term[2]]
            args = ["r%d" % i for i in regs_in(g.params)]
            if self.depths is None:
                k = an.fault(term[1], "call depth exceeded (%d frames)" % isa.MAX_CALL_FRAMES, "depth")
                lines.append("if d >= %d: raise FX(%d)" % (DEPTH_LIMIT, k))
                args.append("d + 1")
            lines.append("%s = f%d(%s)" % (self._ret_tuple(regs_in(g.rets)), g.index, ", ".join(args)))
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
        return "%s = %s" % (d, ops.alu_template(code, is64, off, x).format(**template_fields(is64, s, x, k, off, d)))

    @staticmethod
    def alu_unmasked(insn, code, is64, d, s, k):
        template = ops.UNMASKED.get(code)
        if template is None or (is64 and code in (isa.BPF_RSH, isa.BPF_AND, isa.BPF_OR, isa.BPF_XOR,
                                                  isa.BPF_MOV)):
            return None
        if is64 and k is not None and insn.imm < 0 and code in (isa.BPF_ADD, isa.BPF_SUB):
            return "%s = %s %s %d" % (d, d, "-" if code == isa.BPF_ADD else "+", -insn.imm)
        return "%s = %s" % (d, template.format(**template_fields(is64, s, k is None, k, 0, d)))

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
        for reg in regs_in(uses_defs(insn)[1]):
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
