"""Conditional jumps: the states on the taken and the fall-through edge, refined by the
comparison (ranges, NULL checks, input-length bounds and linked copies).
"""

from iotbpf.ebpf import isa
from iotbpf.ebpf.ranges import (
    M32,
    M64,
    from_s32_view,
    meet,
    refine,
    s64,
    to_s32_view,
    view32,
)
from iotbpf.ebpf.verifier.domain import (
    CONST_MAP,
    CONST_MAP_OR_NULL,
    NEVER_NULL,
    PTR_BUF,
    PTR_BUF_OR_NULL,
    PTR_MAP_VALUE,
    PTR_MAP_VALUE_OR_NULL,
    PTR_MEM,
    PTR_MEM_END,
    SCALAR,
    known,
)


class BranchMixin:
    """Split a state at a conditional jump (Linux's check_cond_jmp_op)."""

    def branch(self, state, pc, insn):
        """(taken_state, fallthrough_state); either is None when that way is impossible."""
        op = insn.opcode
        code = op & 0xF0
        is64 = op & 0x07 == isa.BPF_JMP
        d = insn.dst
        a = self.read(state, pc, d)
        if op & isa.BPF_X:
            b = self.read(state, pc, insn.src)
            s = insn.src
        else:
            b = known(insn.imm & M64 if is64 else insn.imm & M32)
            s = None
        if a.t == SCALAR and b.t == SCALAR:
            return self.branch_scalars(state, pc, insn, code, is64, d, a, s, b)
        return self.branch_pointers(state, pc, code, is64, d, a, s, b)

    def branch_scalars(self, state, pc, insn, code, is64, d, a, s, b):
        """Refine number against number: the ranges each edge allows, and what follows from them."""
        ab = a.bounds()
        bb = b.bounds()
        apply_a = apply_b = True
        if not is64:
            signed = code in (isa.BPF_JSGT, isa.BPF_JSGE, isa.BPF_JSLT, isa.BPF_JSLE)
            va = to_s32_view(ab) if signed else view32(ab)
            vb = to_s32_view(bb) if signed else view32(bb)
            taken, fall = refine(code, va, vb)
            apply_a = a.umax <= M32
            apply_b = b.umax <= M32
            if signed:
                taken = self._map32(taken, ab, bb)
                fall = self._map32(fall, ab, bb)
        else:
            taken, fall = refine(code, ab, bb)
        out = []
        for which, res in ((True, taken), (False, fall)):
            if res is None:
                out.append(None)
                continue
            st = state.copy() if which and fall is not None else state
            regs = st.frames[-1].regs
            if apply_a and d != 10:
                regs[d] = a.with_bounds(res[0])
            if s is not None and apply_b and s != 10:
                regs[s] = b.with_bounds(res[1])
            if is64 or (apply_a and apply_b):
                self.refine_len(st, code, which, d, a, s, b, regs)
            self.propagate_links(st, regs[d])
            if s is not None and s != d:
                self.propagate_links(st, regs[s])
            for r in (regs[d], regs[s] if s is not None else None):
                # A number known to equal length + k (no wrap) bounds the length from below.
                if r is not None and r.t == SCALAR and r.sym is not None and r.smin >= 0 and \
                        r.umin - r.sym > st.mem_min:
                    st.mem_min = r.umin - r.sym
            out.append(st)
        return out[0], out[1]

    def propagate_links(self, st, x):
        """Give every scalar linked to ``x`` what a comparison just proved about ``x``."""
        if x.t != SCALAR or not x.id:
            return
        for f, where, y in st.all_regs():
            if y is x or y.t != SCALAR or y.id != x.id:
                continue
            ny = None
            if y.dl == x.dl:
                m = meet(y.bounds(), x.bounds())
                if m is not None:
                    ny = y.with_bounds(m)
            if x.rel is not None and x.smin >= 0 and y.smin >= 0 and x.smax < (1 << 62) and \
                    y.smax < (1 << 62):
                rel = x.rel + x.dl - y.dl  # x - y == x.dl - y.dl exactly: both small, non-negative
                base = ny if ny is not None else y
                if base.rel is None or base.rel < rel:
                    ny = base.with_bounds(base.bounds())
                    ny.rel = rel
            if ny is not None:
                st.replace(f, where, ny)

    def _map32(self, res, ab, bb):
        """Refined signed 32-bit views back onto the 64-bit values (None: the edge is impossible)."""
        if res is None:
            return None
        na = from_s32_view(ab, res[0]) if ab[1] <= M32 else ab
        nb = from_s32_view(bb, res[1]) if bb[1] <= M32 else bb
        if na is None or nb is None:
            return None
        return (na, nb)

    def refine_len(self, st, code, taken, d, a, s, b, regs):
        """Comparisons against the input length (r2 and values derived from it)."""
        if a.sym is None and b.sym is None:
            return
        if (a.sym is None) == (b.sym is None):
            return
        op = _rel_op(code, taken)
        if op is None:
            return
        if a.sym is not None:  # L + k  OP  x   ==> flip to x OP' L + k
            op = _FLIP[op]
            x, xr, lenreg = b, s, a
        else:
            x, xr, lenreg = a, d, b
        k = lenreg.sym
        if op == "eq":
            op = "le"
        if op not in ("lt", "le") or lenreg.smin < 0:
            return
        if xr is not None:
            x = regs[xr]
        slack = 1 if op == "lt" else 0  # x + slack <= L + k (no wrap: L + k >= 0)
        rel = slack - k
        low = x.umin + rel
        if low > st.mem_min:
            st.mem_min = low
        if xr is not None and xr != 10:
            cur = regs[xr]
            if cur.t == SCALAR and cur.smin >= 0:
                r = cur.with_bounds(cur.bounds())
                r.rel = rel if cur.rel is None else max(cur.rel, rel)
                regs[xr] = r

    def branch_pointers(self, state, pc, code, is64, d, a, s, b):
        """Pointer comparisons: NULL checks, pointers that are never NULL, the input against its end."""
        null_ok = code in (isa.BPF_JEQ, isa.BPF_JNE) and is64
        # NULL checks of map lookups and ring-buffer reservations
        for ptr, other in ((a, b), (b, a)):
            if ptr.t in (PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL, CONST_MAP_OR_NULL) and \
                    other.t == SCALAR and other.tm == 0 and other.tv == 0 and null_ok:
                is_null = state.copy()
                not_null = state
                self.mark_null(is_null, ptr.id, True)
                self.mark_null(not_null, ptr.id, False)
                if code == isa.BPF_JEQ:
                    return is_null, not_null
                return not_null, is_null
        for ptr, other in ((a, b), (b, a)):
            if ptr.t in NEVER_NULL and other.t == SCALAR and other.tm == 0 and other.tv == 0 and null_ok:
                if code == isa.BPF_JEQ:
                    return None, state
                return state, None
        # input buffer pointer against its end: proves bytes readable
        if is64 and {a.t, b.t} == {PTR_MEM, PTR_MEM_END}:
            taken = state.copy()
            self.refine_mem_end(taken, code, True, d, a, s, b)
            self.refine_mem_end(state, code, False, d, a, s, b)
            return taken, state
        return state.copy(), state

    def refine_mem_end(self, st, code, taken, d, a, s, b):
        """Input pointer compared with the input's end: the bytes it proves readable."""
        op = _rel_op(code, taken)
        if op is None:
            return
        if a.t == PTR_MEM_END:
            op = _FLIP[op]
            p, end = b, a
        else:
            p, end = a, b
        if op == "eq":
            op = "le"
        if op not in ("lt", "le") or p.smin < 0 or p.smax >= (1 << 32):
            return
        slack = 1 if op == "lt" else 0  # p.off + var + slack <= L + end.off
        rel = p.off + slack - end.off
        if p.tm == 0:
            low = rel + s64(p.tv)
            if low > st.mem_min:
                st.mem_min = low
            return
        if p.smin >= 0 and p.umin + rel > st.mem_min:
            st.mem_min = p.umin + rel
        if p.id:
            for f, where, r in st.all_regs():
                if r.t == PTR_MEM and r.id == p.id:
                    nr = r.with_bounds(r.bounds())
                    nr.rel = rel if r.rel is None else max(r.rel, rel)
                    st.replace(f, where, nr)

    def mark_null(self, st, rid, is_null):
        """Every copy of a may-be-NULL pointer becomes 0 or the pointer, as the NULL check found."""
        if is_null:
            st.refs = tuple(x for x in st.refs if x[0] != rid)
        for f, where, r in st.all_regs():
            if r.t in (PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL, CONST_MAP_OR_NULL) and r.id == rid:
                if is_null:
                    st.replace(f, where, known(0))
                else:
                    nr = r.with_bounds(r.bounds())
                    nr.t = PTR_MAP_VALUE if r.t == PTR_MAP_VALUE_OR_NULL else (
                        CONST_MAP if r.t == CONST_MAP_OR_NULL else PTR_BUF)
                    st.replace(f, where, nr)


def _rel_op(code, taken):
    """The relation ``a OP b`` that holds on this branch, as lt/le/gt/ge/eq (unsigned only)."""
    if code == isa.BPF_JEQ:
        return "eq" if taken else None
    if code == isa.BPF_JNE:
        return None if taken else "eq"
    table = {isa.BPF_JGT: ("gt", "le"), isa.BPF_JGE: ("ge", "lt"), isa.BPF_JLT: ("lt", "ge"),
             isa.BPF_JLE: ("le", "gt")}
    pair = table.get(code)
    if pair is None:
        return None
    return pair[0] if taken else pair[1]


_FLIP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq"}
