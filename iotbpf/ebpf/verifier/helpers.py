"""Helper calls: each argument checked against the helper's signature (maps, memory and sizes,
the context, callbacks, locks, ring-buffer records), tail-call rules, and r0 by the return kind.
"""

from iotbpf.ebpf import types as ty
from iotbpf.ebpf.ranges import (
    FULL,
    M64,
)
from iotbpf.ebpf.verifier.calls import held_lock
from iotbpf.ebpf.verifier.domain import (
    CONST_MAP,
    CONST_MAP_OR_NULL,
    NOT_INIT,
    PTR_BUF,
    PTR_BUF_OR_NULL,
    PTR_CTX,
    PTR_FUNC,
    PTR_MAP_VALUE,
    PTR_MAP_VALUE_OR_NULL,
    PTR_MEM,
    PTR_MEM_END,
    PTR_STACK,
    SCALAR,
    STACK,
    UNINIT,
    Reg,
    describe,
    map_spec_of,
    range_text,
    scalar,
)
from iotbpf.ebpf.verifier.memory import spin_lock_offsets
from iotbpf.ebpf.verifier.state import (
    INVALID,
    MISC,
    SPILL,
    ZERO,
)

BPF_FUNC_TAIL_CALL = 12
BPF_MAX_LOOPS = 1 << 23
BPF_LOOP_ARGS = (ty.ARG_ANYTHING, ty.ARG_PTR_TO_FUNC, ty.ARG_PTR_TO_STACK_OR_NULL, ty.ARG_ANYTHING)


class HelperMixin:
    """Check a helper call's arguments and set its result (Linux's check_helper_call)."""

    def do_helper_call(self, state, pc, hid):
        """Check the arguments of helper ``hid`` against its signature, then set r0 and clobber r1-r5."""
        spec = self.helpers.get(hid) if self.helpers is not None else None
        if spec is None:
            self.fail(pc, "unknown helper %d" % hid, "no helper with this number exists for this program "
                      "(wrong hook, or a Linux helper the runtime does not provide)", state)
        regs = state.frames[-1].regs
        held = held_lock(state)
        if held is not None and spec.name not in ("spin_lock", "spin_unlock"):
            self.fail(pc, "%s called while holding the bpf_spin_lock taken at pc %d" % (spec.name, held[1]),
                      "no helper calls between bpf_spin_lock and bpf_spin_unlock (as in Linux)", state)
        map_spec = None
        map_arg = None
        release = None
        callback = None
        args = spec.args
        ret_size = None
        for i in range(len(args)):
            kind = args[i]
            r = i + 1
            if kind == ty.ARG_DONTCARE:
                continue
            reg = regs[r]
            if reg.t == NOT_INIT:
                self.fail(pc, "argument %d (r%d) of %s is not set (uninitialised register)" % (
                    r, r, spec.name), "expected %s" % spec.signature(), state)
            if kind == ty.ARG_ANYTHING:
                continue
            if kind == ty.ARG_CONST_MAP_PTR:
                if reg.t != CONST_MAP:
                    self._arg_fail(state, pc, spec, r, reg, "a map (lddw rN, map_fd K)")
                map_arg = reg.k
                map_spec = map_spec_of(self.maps[reg.k])
                mtype = getattr(map_spec, "type", None)
                allowed = spec.map_types
                if hid == BPF_FUNC_TAIL_CALL:
                    if mtype != ty.BPF_MAP_TYPE_PROG_ARRAY:
                        self.fail(pc, "tail call through map %s of type %s, which is not a prog_array" % (
                            map_spec.name, ty.MAP_TYPE_NAMES.get(mtype, mtype)), "tail-call misuse", state)
                elif mtype == ty.BPF_MAP_TYPE_PROG_ARRAY:
                    self.fail(pc, "prog_array map %s passed to %s" % (map_spec.name, spec.name),
                              "tail-call misuse: program arrays are only for bpf_tail_call", state)
                if allowed is not None and mtype not in allowed:
                    self.fail(pc, "%s does not accept map %s of type %s" % (
                        spec.name, map_spec.name, ty.MAP_TYPE_NAMES.get(mtype, mtype)), None, state)
                continue
            if kind in (ty.ARG_PTR_TO_MAP_KEY, ty.ARG_PTR_TO_MAP_VALUE, ty.ARG_PTR_TO_UNINIT_MAP_VALUE):
                if map_spec is None:
                    self.fail(pc, "helper %s: map argument missing before r%d" % (spec.name, r), None, state)
                size = map_spec.key_size if kind == ty.ARG_PTR_TO_MAP_KEY else map_spec.value_size
                self.check_mem_arg(state, pc, spec, r, reg, size, size,
                                   "write" if kind == ty.ARG_PTR_TO_UNINIT_MAP_VALUE else "read", False)
                continue
            if kind in ty.MEM_ARG_KINDS or kind == ty.ARG_PTR_TO_STACK_OR_NULL:
                if kind == ty.ARG_PTR_TO_STACK_OR_NULL:
                    if reg.t == SCALAR and reg.tm == 0 and reg.tv == 0:
                        continue
                    if reg.t != PTR_STACK:
                        self._arg_fail(state, pc, spec, r, reg, "a pointer to the stack or NULL")
                    continue
                nxt = args[i + 1] if i + 1 < len(args) else None
                if nxt not in ty.SIZE_ARG_KINDS:
                    self.fail(pc, "helper %s: memory argument r%d has no size argument" % (spec.name, r),
                              None, state)
                sz = regs[r + 1]
                if sz.t != SCALAR:
                    self._arg_fail(state, pc, spec, r + 1, sz, "a size (a number)")
                zero_ok = nxt == ty.ARG_CONST_SIZE_OR_ZERO
                if sz.umin == 0 and not zero_ok:
                    self.fail(pc, "argument %d (r%d) of %s may be 0, but the size must be positive" % (
                        r + 1, r + 1, spec.name), "check the size first", state)
                if sz.umax > (1 << 29):
                    self.fail(pc, "argument %d (r%d) of %s is an unbounded size (%s)" % (
                        r + 1, r + 1, spec.name, describe(sz)), "bound it with a comparison first", state)
                if kind == ty.ARG_PTR_TO_MEM_OR_NULL and reg.t == SCALAR and reg.tm == 0 and reg.tv == 0:
                    if sz.umax != 0:
                        self.fail(pc, "NULL memory argument r%d of %s with a non-zero size" % (r, spec.name),
                                  None, state)
                    continue
                if sz.umax == 0:
                    if reg.t == SCALAR:
                        self._arg_fail(state, pc, spec, r, reg, "a pointer to memory")
                    continue
                self.check_mem_arg(state, pc, spec, r, reg, sz.umax, sz.umin,
                                   "write" if kind == ty.ARG_PTR_TO_UNINIT_MEM else "read", True)
                continue
            if kind in ty.SIZE_ARG_KINDS:
                continue
            if kind == ty.ARG_CONST_ALLOC_SIZE_OR_ZERO:
                if reg.t != SCALAR or reg.tm != 0:
                    self._arg_fail(state, pc, spec, r, reg, "a constant size")
                if spec.ret_size_arg == r:
                    ret_size = reg.tv
                continue
            if kind == ty.ARG_PTR_TO_CTX:
                # Standalone runs have no context: the input buffer (r1 at entry) stands in for it.
                ctx_type = PTR_CTX if self.hook is not None else PTR_MEM
                if reg.t != ctx_type or reg.off != 0 or reg.tm != 0 or reg.tv != 0:
                    self._arg_fail(state, pc, spec, r, reg, "the context pointer (r1 at entry)")
                continue
            if kind == ty.ARG_PTR_TO_FUNC:
                if spec.name not in ("loop", "bpf_loop") or tuple(args) != BPF_LOOP_ARGS:
                    self.fail(pc, "helper %s takes a callback, which this verifier only follows for bpf_loop"
                              % spec.name, None, state)
                if reg.t != PTR_FUNC:
                    self._arg_fail(state, pc, spec, r, reg, "a function (lddw rN, func LABEL)")
                callback = reg.k
                continue
            if kind == ty.ARG_PTR_TO_SPIN_LOCK:
                self._spin_lock_arg(state, pc, spec, r, reg, held)
                continue
            if kind == ty.ARG_PTR_TO_RINGBUF_MEM:
                if reg.t != PTR_BUF or reg.off != 0 or reg.tm != 0 or reg.tv != 0:
                    self._arg_fail(state, pc, spec, r, reg, "a record returned by ringbuf_reserve")
                release = reg.id
                continue
            self.fail(pc, "helper %s: argument kind %s is not supported" % (spec.name, kind), None, state)
        if hid == BPF_FUNC_TAIL_CALL and len(state.frames) > 1:
            self.fail(pc, "tail call from inside a bpf-to-bpf function", "tail-call misuse: tail calls are "
                      "only allowed in the main function", state)
        if hid == BPF_FUNC_TAIL_CALL and state.refs:
            self.fail(pc, "tail call while the ring buffer record reserved at pc %d is not submitted"
                      % state.refs[0][1], "tail-call misuse: submit or discard it first", state)
        if release is not None:
            # The record is gone after submit/discard: every copy of the pointer becomes a number.
            state.refs = tuple(x for x in state.refs if x[0] != release)
            for f, where, reg in state.all_regs():
                if reg.t == PTR_BUF and reg.id == release:
                    state.replace(f, where, scalar(FULL))
        # the call: r0 by the return kind, r1-r5 clobbered
        ret = spec.ret
        if ret == ty.RET_INTEGER:
            r0 = scalar(FULL)
        elif ret == ty.RET_VOID:
            r0 = UNINIT
        elif ret == ty.RET_PTR_TO_MAP_VALUE_OR_NULL:
            if map_spec is None:
                self.fail(pc, "helper %s returns a map value but takes no map" % spec.name, None, state)
            inner = getattr(map_spec, "inner", None)
            if inner is not None and map_spec.type in (ty.BPF_MAP_TYPE_ARRAY_OF_MAPS,
                                                      ty.BPF_MAP_TYPE_HASH_OF_MAPS):
                if not 0 <= inner[0] < len(self.maps):
                    self.fail(pc, "map %s: its inner map template %d does not exist"
                              % (map_spec.name, inner[0]), None, state)
                r0 = Reg(CONST_MAP_OR_NULL, k=inner[0], id=self.new_id())  # inner map, or NULL
            else:
                r0 = Reg(PTR_MAP_VALUE_OR_NULL, k=map_arg, id=self.new_id())
        else:
            if ret_size is None:
                idx = spec.ret_size_arg
                sz = regs[idx] if idx else None
                if sz is None or sz.t != SCALAR or sz.tm != 0:
                    self.fail(pc, "the size of the memory %s returns must be a constant" % spec.name,
                              None, state)
                ret_size = sz.tv
            r0 = Reg(PTR_BUF_OR_NULL, k=ret_size, id=self.new_id())
            state.refs = state.refs + ((r0.id, pc),)
        self.extra_cost = getattr(spec, "cost", 0) or 0
        ctx_reg = regs[3]
        nr = regs[1]
        for i in range(1, 6):
            regs[i] = UNINIT
        regs[0] = r0
        if callback is not None:
            nr_max = min(nr.umax if nr.t == SCALAR else M64, BPF_MAX_LOOPS)
            limit = self.budget if self.budget is not None else self.complexity
            if nr_max > 0 and state.depth + nr_max > limit:
                self.fail(pc, "bpf_loop may call its callback up to %d times, more than %d instructions "
                          "allow" % (nr_max, limit), "bound the number of iterations (r1) with a comparison "
                          "or a mask first", state)
            if nr_max > 0:
                self.pending = (self.enter_callback(state, pc, callback, 0, nr_max, ctx_reg), callback)

    def _arg_fail(self, state, pc, spec, r, reg, expected):
        """Reject argument ``r`` of a helper, saying what it is and what was expected."""
        self.fail(pc, "argument %d (r%d) of %s is %s, expected %s" % (
            r, r, spec.name, describe(reg), expected),
                  spec.signature(), state)

    def check_mem_arg(self, state, pc, spec, r, reg, size, min_size, mode, var_size):
        """A helper will access ``size`` bytes at ``reg``; initialised if read, marked written after."""
        if reg.t in (SCALAR, NOT_INIT, CONST_MAP, PTR_FUNC, PTR_MEM_END, PTR_MAP_VALUE_OR_NULL,
                     PTR_BUF_OR_NULL):
            if reg.t in (PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL):
                self.fail(pc, "argument %d (r%d) of %s may be NULL" % (r, r, spec.name),
                          "check it before passing it", state)
            self._arg_fail(state, pc, spec, r, reg, "a pointer to %d bytes" % size)
        if reg.t == PTR_CTX:
            self._arg_fail(state, pc, spec, r, reg, "a pointer to the stack or a map value")
        if mode == "write" and reg.t == PTR_MAP_VALUE and \
                getattr(map_spec_of(self.maps[reg.k]), "readonly", False):
            self.fail(pc, "helper %s would write into read-only map %s" % (spec.name,
                                                                           map_spec_of(self.maps[reg.k]).name),
                      None, state)
        if reg.t == PTR_STACK:
            frame, lo, hi = self._stack_arg(state, pc, spec, r, reg, size)
            a = lo + STACK
            b = hi + STACK
            if mode == "write":
                # Saved registers the helper may overwrite are gone; bytes it surely writes (a constant
                # offset, the minimum size) become initialised; zero bytes it may touch are no longer 0.
                for key in range(a & ~7, b, 8):
                    if key in frame.spills and frame.stack[key] == SPILL:
                        self._drop_spill(frame.stack, frame.spills, key)
                for i in range(a, b):
                    if frame.stack[i] == ZERO:
                        frame.stack[i] = MISC
                if reg.tm == 0:
                    for i in range(a, a + min_size):
                        frame.stack[i] = MISC
                return
            # a read of `size` bytes must be initialised, byte by byte
            for i in range(a, b):
                if frame.stack[i] == INVALID:
                    self.fail(pc, "argument %d (r%d) of %s points to uninitialised stack at fp%d" % (
                        r, r, spec.name, i - STACK), "initialise all %d bytes first (e.g. = {0})" % size,
                        state)
            return
        # any other memory: the access checks of a load or store, without recording the pc as proven
        saved_access = self.access.get(pc)
        probe = reg
        if size > 0:
            self.mem_access(state, pc, r, probe, 0, size, mode, scalar(FULL) if mode == "write" else None)
        if saved_access is None:
            self.access.pop(pc, None)
        else:
            self.access[pc] = saved_access

    def _stack_arg(self, state, pc, spec, r, reg, size):
        """(frame, lo, hi) of the stack bytes a helper argument covers; they must fit the stack."""
        lo = reg.off + reg.smin
        hi = reg.off + reg.smax + size
        if lo < -STACK or hi > 0:
            self.fail(pc, "argument %d (r%d) of %s: %d bytes at fp%s do not fit in the stack" % (
                r, r, spec.name, size, range_text(lo, hi - size, signed=True)), None, state)
        frame = state.frames[reg.k]
        if -lo > self.max_stack.get(frame.func, 0):
            self.max_stack[frame.func] = -lo
        return frame, lo, hi

    def _spin_lock_arg(self, state, pc, spec, r, reg, held):
        """bpf_spin_lock/unlock(&value->lock): a map value pointer at a ``struct bpf_spin_lock``
        of the value's BTF type; one lock at a time, unlocked by the same pointer."""
        if reg.t != PTR_MAP_VALUE or reg.tm != 0:
            self._arg_fail(state, pc, spec, r, reg, "a pointer to a struct bpf_spin_lock in a map value")
        off = reg.off + reg.tv
        if off not in spin_lock_offsets(map_spec_of(self.maps[reg.k])):
            self.fail(pc, "%s: r%d points to offset %d of map %s's value, where there is no struct "
                      "bpf_spin_lock" % (spec.name, r, off, getattr(self.maps[reg.k], "name", "?")),
                      "the value's BTF type must have a struct bpf_spin_lock member there", state)
        lock = (("lock", reg.k, off), pc)
        if spec.name == "spin_lock":
            if held is not None:
                self.fail(pc, "bpf_spin_lock while already holding the lock taken at pc %d" % held[1],
                          "hold at most one lock at a time (as in Linux)", state)
            state.refs = state.refs + (lock,)
            return
        if held is None or held[0] != lock[0]:
            self.fail(pc, "bpf_spin_unlock of a lock that is not held" if held is None else
                      "bpf_spin_unlock of a different lock than the one taken at pc %d" % held[1],
                      None, state)
        state.refs = tuple(x for x in state.refs if x is not held)
