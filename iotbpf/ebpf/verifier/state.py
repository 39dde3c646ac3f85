"""What the verifier carries along a path: frames of registers and stack bytes, the states
stored at prune points, the explored path graph, and what an accepted program is proven to do.
"""

from iotbpf.ebpf.errors import VerifierError

# stack byte kinds
INVALID = 0
MISC = 1
ZERO = 2
SPILL = 3


class Frame:
    """One function's registers and stack. ``cb`` is set for a bpf_loop callback invocation:
    (iteration, most iterations, the context argument to pass again)."""

    __slots__ = ("regs", "stack", "spills", "callsite", "func", "cb")

    def __init__(self, regs, stack, spills, callsite, func, cb=None):
        """Store the fields named in the class docstring."""
        self.regs = regs
        self.stack = stack
        self.spills = spills
        self.callsite = callsite
        self.func = func
        self.cb = cb

    def copy(self):
        """An independent copy (registers are immutable and shared)."""
        return Frame(list(self.regs), bytearray(self.stack), dict(self.spills), self.callsite,
                     self.func, self.cb)


class State:
    """Frames (innermost last), the proven input length, the path taken, instructions so far and
    the ring-buffer records reserved but not yet submitted ((id, pc) pairs)."""

    __slots__ = ("frames", "mem_min", "path", "depth", "refs")

    def __init__(self, frames, mem_min, path, depth, refs=()):
        """Store the fields named in the class docstring."""
        self.frames = frames
        self.mem_min = mem_min
        self.path = path
        self.depth = depth
        self.refs = refs

    def copy(self):
        """An independent copy (registers are immutable and shared)."""
        return State([f.copy() for f in self.frames], self.mem_min, self.path, self.depth, self.refs)

    def all_regs(self):
        """(frame, where, reg) for every register and spilled register of every frame."""
        out = []
        for f in self.frames:
            for i in range(11):
                out.append((f, i, f.regs[i]))
            for key in f.spills:
                out.append((f, -1 - key, f.spills[key]))
        return out

    def replace(self, frame, where, reg):
        """Put ``reg`` where all_regs() found it (a register, or a spill slot when negative)."""
        if where >= 0:
            frame.regs[where] = reg
        else:
            frame.spills[-1 - where] = reg


class Checkpoint:
    """A state stored at a prune point; complete once every path through it has ended."""

    __slots__ = ("parent", "branches", "complete", "state", "seg", "pc", "ckey", "depth")

    def __init__(self, parent, state, seg, pc):
        """Store the fields named in the class docstring."""
        self.ckey = ()
        self.depth = 0
        self.parent = parent
        self.branches = 1
        self.complete = False
        self.state = state
        self.seg = seg
        self.pc = pc


class Seg:
    """A straight piece of an explored path: its instruction count and what follows it."""

    __slots__ = ("length", "succ")

    def __init__(self):
        """Store the fields named in the class docstring."""
        self.length = 0
        self.succ = []


class Reject(Exception):
    """A rejection at one pc; ``message`` is the line for VerifierError."""
    def __init__(self, message):
        """Store the fields named in the class docstring."""
        super().__init__(message)
        self.message = message


class VerifyResult:
    """What the verifier proved about an accepted program."""

    def __init__(self, insn_count, insns_processed, states_explored, max_stack, max_path_insns,
                 safe_access_pcs, access_regions, mode):
        """Store the fields named in the class docstring."""
        self.insn_count = insn_count
        self.insns_processed = insns_processed
        self.states_explored = states_explored
        self.max_stack = max_stack
        self.max_path_insns = max_path_insns
        self.safe_access_pcs = safe_access_pcs
        self.access_regions = access_regions
        self.mode = mode

    def summary(self):
        """One line for the CLI."""
        return ("ok: %d instructions, %d states explored, %d instructions processed, max stack %d bytes, "
                "at most %d instructions per run" % (self.insn_count, self.states_explored,
                                                     self.insns_processed, self.max_stack,
                                                     self.max_path_insns))

    def to_dict(self):
        """The result as JSON-ready data."""
        return {"ok": True, "insn_count": self.insn_count, "insns_processed": self.insns_processed,
                "states_explored": self.states_explored, "max_stack": self.max_stack,
                "max_path_insns": self.max_path_insns, "mode": self.mode,
                "safe_access_pcs": sorted(self.safe_access_pcs)}

    def __repr__(self):
        """The summary, for debugging."""
        return "VerifyResult(%s)" % self.summary()


class VerifierErrorList(Exception):
    """Several static-check messages at once."""
    def __init__(self, errors):
        """Store the fields named in the class docstring."""
        super().__init__(errors[0])
        self.errors = errors


def error(errors):
    """The VerifierError raised for ``errors`` (first one as its text, all in ``.errors``)."""
    exc = VerifierError(errors[0])
    exc.errors = list(errors)
    return exc
