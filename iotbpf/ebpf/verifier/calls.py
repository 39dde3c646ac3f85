"""Calls of subprograms and returns from them, and the frames bpf_loop runs its callback in;
a lock held or a stack pointer kept across a call or exit is rejected here.
"""

from iotbpf.ebpf.verifier.domain import (
    MAX_FRAMES,
    NOT_INIT,
    PTR_STACK,
    SCALAR,
    STACK,
    UNINIT,
    Reg,
    describe,
    known,
)
from iotbpf.ebpf.verifier.state import (
    Frame,
)


class CallMixin:
    """bpf-to-bpf calls, exits and bpf_loop callback frames (Linux's check_func_call)."""

    def do_local_call(self, state, pc, insn):
        """Enter a subprogram: a new frame with r1-r5 passed and its own stack; returns its pc."""
        target = pc + 1 + insn.imm
        held = held_lock(state)
        if held is not None:
            self.fail(pc, "function call while holding the bpf_spin_lock taken at pc %d" % held[1],
                      "unlock before calling (as in Linux)", state)
        if len(state.frames) >= MAX_FRAMES:
            self.fail(pc, "call depth exceeds %d frames" % MAX_FRAMES,
                      "flatten the call chain", state)
        caller = state.frames[-1]
        regs = [UNINIT] * 11
        for i in range(1, 6):
            regs[i] = caller.regs[i]
        regs[10] = Reg(PTR_STACK, k=len(state.frames))
        state.frames.append(Frame(regs, bytearray(STACK), {}, pc, target))
        return target

    def enter_callback(self, state, pc, target, k, nr_max, ctx_reg):
        """A state that runs iteration ``k`` of a bpf_loop callback called from ``pc``."""
        st = state.copy()
        if len(st.frames) >= MAX_FRAMES:
            self.fail(pc, "call depth exceeds %d frames (bpf_loop callback)" % MAX_FRAMES, None, state)
        regs = [UNINIT] * 11
        regs[1] = known(k)
        regs[2] = ctx_reg
        regs[10] = Reg(PTR_STACK, k=len(st.frames))
        st.frames.append(Frame(regs, bytearray(STACK), {}, pc, target, (k, nr_max, ctx_reg)))
        st.path = ((pc, target), st.path)
        return st

    def do_exit(self, state, pc):
        """Return from a frame (or the program); returns the pc to continue at, None at the end."""
        frame = state.frames[-1]
        r0 = frame.regs[0]
        if r0.t == NOT_INIT:
            self.fail(pc, "r0 is not set at exit", "set the return value (r0) before exit", state)
        depth = len(state.frames) - 1
        held = held_lock(state)
        if held is not None:
            self.fail(pc, "exit while holding the bpf_spin_lock taken at pc %d" % held[1],
                      "call bpf_spin_unlock on every path before returning", state)
        if depth == 0:
            if state.refs:
                self.fail(pc, "the ring buffer record reserved at pc %d is never submitted or discarded"
                          % state.refs[0][1], "call bpf_ringbuf_submit or bpf_ringbuf_discard on every path",
                          state)
            if r0.t != SCALAR:
                self.fail(pc, "r0 is %s: returning a pointer leaks an address" % describe(r0),
                          "return a number", state)
            return None
        if r0.t == PTR_STACK and r0.k == depth:
            self.fail(pc, "returns a pointer to its own stack, which is gone after the return", None, state)
        if frame.cb is not None and (r0.t != SCALAR or r0.umax > 1):
            # Linux checks the same range (bpf_loop's callback_ret_range is [0, 1]).
            self.fail(pc, "a bpf_loop callback must return a number, 0 (continue) or 1 (stop), not %s"
                      % describe(r0), "return 0 or 1", state)
        state.frames.pop()
        for _f, _where, r in state.all_regs():
            if r.t == PTR_STACK and r.k >= depth:
                self.fail(pc, "a pointer to the returning function's stack is kept by its caller",
                          "it would dangle after the return", state)
        if frame.cb is not None:
            # Back in bpf_loop: it may call the callback again (next index) or return.
            k, nr_max, ctx_reg = frame.cb
            if k + 1 < nr_max:
                self.pending = (self.enter_callback(state, frame.callsite, frame.func, k + 1, nr_max, ctx_reg),
                                frame.func)
            return frame.callsite + 1
        caller = state.frames[-1]
        caller.regs[0] = r0
        for i in range(1, 6):
            caller.regs[i] = UNINIT
        return frame.callsite + 1


def held_lock(state):
    """The (("lock", map, offset), pc) entry of the bpf_spin_lock held, or None."""
    for entry in state.refs:
        if isinstance(entry[0], tuple):
            return entry
    return None
