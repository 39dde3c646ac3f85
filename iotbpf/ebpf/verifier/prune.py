"""Pruning: states stored at prune points, the test that a stored state contains the current
one (so its paths need no more work), and the join of two states outside loops.
"""

from iotbpf.ebpf import tnum
from iotbpf.ebpf.ranges import (
    from_tnum,
    sync,
)
from iotbpf.ebpf.verifier.domain import (
    NOT_INIT,
    PTR_BUF,
    PTR_BUF_OR_NULL,
    PTR_MAP_VALUE_OR_NULL,
    PTR_MEM,
    SCALAR,
    STACK,
    UNINIT,
)
from iotbpf.ebpf.verifier.state import (
    INVALID,
    MISC,
    SPILL,
    ZERO,
    Checkpoint,
    Frame,
    Seg,
    State,
)

JOIN_AFTER = 4  # states kept at a join point outside loops before new ones are merged
MAX_STATES_PER_PC = 64
CHECKPOINT_EVERY = 8  # store a new state only this many instructions after the last (except loops)


class PruneMixin:
    """Store, compare and join states at prune points (Linux's is_state_visited)."""

    def checkpoint(self, state, pc, seg, cp, visited):
        """Prune against a completed state that contains this one, or store this one."""
        entries = visited.get(pc)
        if entries is None:
            entries = visited[pc] = []
        live = self.live
        key = self.const_key(state, pc)
        cur_map = None
        for e in entries:
            if e.ckey != key:
                # Quick filter: a constant the stored state relies on must be the same here.
                if cur_map is None:
                    cur_map = dict(key)
                differs = False
                for i, v in e.ckey:
                    if cur_map.get(i) != v:
                        differs = True
                        break
                if differs:
                    continue
            if self.covers(e.state, state, live, pc):
                if e.complete:
                    seg.succ.append(e.seg)
                    self.finish(cp)
                    return None
                self.fail(pc, "infinite loop: this loop can run forever (the state at its start repeats)%s"
                          % self._back_edge_text(pc, state),
                          "make sure the loop counter changes and is compared with a constant bound", state)
        if pc not in self.loop_heads and state.depth - cp.depth < CHECKPOINT_EVERY and cp.pc >= 0:
            return state, seg, cp  # too close to the previous stored state: not worth storing
        joined_from = state
        if len(entries) >= JOIN_AFTER and pc not in self.in_loop:
            joined = self.join(entries[-1].state, state)
            if joined is not None:
                joined.path = state.path
                joined.depth = state.depth
                state = joined
        self.states += 1
        new_seg = Seg()
        seg.succ.append(new_seg)
        new_cp = Checkpoint(cp, state.copy(), new_seg, pc)
        new_cp.ckey = key if state is joined_from else self.const_key(state, pc)
        new_cp.depth = state.depth
        if len(entries) >= MAX_STATES_PER_PC:
            # Forget the oldest completed state (pruning is an optimisation), else the oldest
            # ancestor (only long-period loop detection is lost; the instruction bound remains).
            drop = 0
            for i in range(len(entries)):
                if entries[i].complete:
                    drop = i
                    break
            del entries[drop]
        entries.append(new_cp)
        return state, new_seg, new_cp

    def const_key(self, state, pc):
        """(register, value) of the live, precise registers holding a known number."""
        mask = self.live[pc] & self.precise[pc]
        regs = state.frames[-1].regs
        out = []
        for i in range(10):
            if mask >> i & 1:
                r = regs[i]
                if r.t == SCALAR and r.tm == 0:
                    out.append((i, r.tv))
        return tuple(out)

    def covers(self, old, cur, live, pc):
        """True if every concrete state in ``cur`` is in ``old`` (so ``cur`` needs no more work)."""
        if len(old.frames) != len(cur.frames) or old.mem_min > cur.mem_min or len(old.refs) != len(cur.refs):
            return False
        idmap = {}
        top = len(old.frames) - 1
        for fi in range(top + 1):
            fo = old.frames[fi]
            fc = cur.frames[fi]
            if fo.callsite != fc.callsite:
                return False
            if fo.cb is not None or fc.cb is not None:
                if fo.cb is None or fc.cb is None or fo.cb[:2] != fc.cb[:2] or \
                        not reg_covers(fo.cb[2], fc.cb[2], idmap):
                    return False
            if fi == top:
                mask = live[pc]
                prec = self.precise[pc]
            else:
                ret = cur.frames[fi + 1].callsite + 1
                mask = (live[ret] if ret < self.n else 0x7FF) & 0b11111000000
                prec = self.precise[ret] if ret < self.n else 0x7FF
            ro = fo.regs
            rc = fc.regs
            for i in range(11):
                if mask >> i & 1:
                    o = ro[i]
                    if prec >> i & 1:
                        if not reg_covers(o, rc[i], idmap):
                            return False
                    elif o.t != NOT_INIT and o.t != rc[i].t:
                        return False
            so = fo.stack
            sc = fc.stack
            if so != sc:
                for i in range(STACK):
                    ko = so[i]
                    if ko == INVALID or ko == sc[i]:
                        continue
                    kc = sc[i]
                    if ko == MISC and (kc == ZERO or (kc == SPILL and fc.spills[i & ~7].t == SCALAR)):
                        continue
                    return False
            for key in fo.spills:
                if so[key] == SPILL and sc[key] == SPILL:
                    if not reg_covers(fo.spills[key], fc.spills[key], idmap):
                        return False
        return True

    def join(self, a, b):
        """A state containing both ``a`` and ``b``, or None if they do not have the same shape."""
        if len(a.frames) != len(b.frames) or a.refs != b.refs:
            return None
        frames = []
        for fi in range(len(a.frames)):
            fa = a.frames[fi]
            fb = b.frames[fi]
            if fa.callsite != fb.callsite or fa.cb is not None or fb.cb is not None:
                return None
            regs = []
            for i in range(11):
                r = reg_join(fa.regs[i], fb.regs[i])
                if r is None:
                    return None
                regs.append(r)
            stack = bytearray(STACK)
            spills = {}
            sa = fa.stack
            sb = fb.stack
            for i in range(STACK):
                x = sa[i]
                y = sb[i]
                if x == INVALID or y == INVALID:
                    stack[i] = INVALID
                elif x == y and x != SPILL:
                    stack[i] = x
                else:
                    stack[i] = MISC
            for key in fa.spills:
                if sa[key] == SPILL and sb[key] == SPILL and key in fb.spills:
                    r = reg_join(fa.spills[key], fb.spills[key])
                    if r is not None and r.t != NOT_INIT:
                        spills[key] = r
                        for j in range(8):
                            stack[key + j] = SPILL
                        continue
                    if fa.spills[key].t != SCALAR or fb.spills[key].t != SCALAR:
                        return None
            for key in fb.spills:
                if key not in spills and (fb.spills[key].t != SCALAR and sb[key] == SPILL
                                          and sa[key] != INVALID):
                    return None
            for key in fa.spills:
                if key not in spills and (fa.spills[key].t != SCALAR and sa[key] == SPILL
                                          and sb[key] != INVALID):
                    return None
            frames.append(Frame(regs, stack, spills, fa.callsite, fa.func))
        return State(frames, min(a.mem_min, b.mem_min), b.path, b.depth, b.refs)


def reg_covers(o, c, idmap):
    """Does abstract register ``o`` (verified safe) contain every value of ``c``?"""
    if o.t == NOT_INIT:
        return True
    if o.t != c.t:
        return False
    if o.t == SCALAR:
        if o.umin > c.umin or o.umax < c.umax or o.smin > c.smin or o.smax < c.smax:
            return False
        if not tnum.contains((o.tv, o.tm), (c.tv, c.tm)):
            return False
        if o.sym is not None and o.sym != c.sym:
            return False
        if o.rel is not None and (c.rel is None or c.rel < o.rel):
            return False
        if o.id:
            # the old state relied on this link: the new one must link the same way
            if c.id == 0 or o.dl != c.dl:
                return False
            if not _same_link(idmap, o.id, c.id):
                return False
        return True
    if o.k != c.k or o.off != c.off:
        return False
    if o.umin > c.umin or o.umax < c.umax or o.smin > c.smin or o.smax < c.smax:
        return False
    if not tnum.contains((o.tv, o.tm), (c.tv, c.tm)):
        return False
    if o.rel is not None and (c.rel is None or c.rel < o.rel):
        return False
    if o.id or c.id:
        if o.t in (PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL, PTR_MEM, PTR_BUF):
            if not _same_link(idmap, o.id, c.id):
                return False
    return True


def _same_link(idmap, oid, cid):
    """Pair id ``oid`` of the stored state with ``cid`` of the current one, one to one; False if
    either is already paired with another (the two states link registers differently)."""
    prev = idmap.get(oid)
    back = idmap.get(-cid - 1)
    if prev is None and back is None:
        idmap[oid] = cid
        idmap[-cid - 1] = oid
        return True
    return prev == cid and back == oid


def reg_join(a, b):
    """The smallest abstract value containing ``a`` and ``b``; NOT_INIT if either is; None if
    they cannot be merged (different pointer kinds)."""
    if a.t == NOT_INIT or b.t == NOT_INIT:
        return UNINIT
    if a.t != b.t:
        return None
    if a.t != SCALAR and (a.k != b.k or a.off != b.off):
        return None
    if a.t in (PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL, PTR_BUF) and a.id != b.id:
        return None
    t = tnum.union((a.tv, a.tm), (b.tv, b.tm))
    bd = sync(min(a.umin, b.umin), max(a.umax, b.umax), min(a.smin, b.smin), max(a.smax, b.smax), t[0], t[1])
    if bd is None:
        bd = from_tnum(t)
    r = a.with_bounds(bd)
    r.rel = None if a.rel is None or b.rel is None else min(a.rel, b.rel)
    r.sym = a.sym if a.sym == b.sym else None
    if a.id != b.id or a.dl != b.dl:
        r.id = 0
        r.dl = 0
        if a.t == PTR_MEM:
            r.rel = None
    return r
