"""The Verifier: one object per program, composed of the concerns in this package, with the
messages it rejects with and ``verify()``, the entry point.
"""

from iotbpf.ebpf import isa
from iotbpf.ebpf.verifier.branches import BranchMixin
from iotbpf.ebpf.verifier.calls import CallMixin
from iotbpf.ebpf.verifier.explore import ExploreMixin
from iotbpf.ebpf.verifier.helpers import HelperMixin
from iotbpf.ebpf.verifier.insns import InsnMixin
from iotbpf.ebpf.verifier.memory import MemoryMixin
from iotbpf.ebpf.verifier.prune import PruneMixin
from iotbpf.ebpf.verifier.state import (
    Reject,
    VerifierErrorList,
    VerifyResult,
    error,
)
from iotbpf.ebpf.verifier.structure import StructureMixin

DEFAULT_MAX_INSNS = 4096
DEFAULT_COMPLEXITY = 1000000  # abstract instructions processed before giving up (as Linux)


def verify(program, helpers=None, hook=None, mem_size=None, max_insns=DEFAULT_MAX_INSNS, budget=None,
           complexity_limit=DEFAULT_COMPLEXITY):
    """Prove ``program`` safe; returns a VerifyResult or raises VerifierError (``.errors``).

    ``program``: a Program (``.insns``, ``.maps``, optional ``.line_info`` / ``.lines``) or a
    slot-indexed Instruction list. ``helpers``: a HelperTable (None: no helper may be called).
    ``hook``: the ContextLayout r1 points to; None means a standalone run (r1 = input buffer of
    length r2; ``mem_size`` declares the length instead). ``max_insns``: program size limit.
    ``budget``: instruction budget every run must fit in (None: only the complexity limit).
    """
    v = Verifier(program, helpers, hook, mem_size, max_insns, budget, complexity_limit)
    return v.run()


class Verifier(StructureMixin, ExploreMixin, PruneMixin, InsnMixin, BranchMixin, MemoryMixin, CallMixin,
               HelperMixin):
    """Everything one verification run knows: the program, its CFG facts and its explored states."""

    def __init__(self, program, helpers, hook, mem_size, max_insns, budget, complexity_limit):
        """Take the program apart (instructions, maps, line info) and the limits to check against."""
        if isinstance(program, (list, tuple)):
            self.insns = list(program)
            self.maps = []
            self.line_info = {}
        else:
            self.insns = list(program.insns)
            self.maps = list(getattr(program, "maps", None) or [])
            self.line_info = getattr(program, "line_info", None) or getattr(program, "lines", None) or {}
        self.helpers = helpers
        self.hook = hook
        self.mem_size = mem_size
        self.max_insns = max_insns
        self.budget = budget
        self.complexity = complexity_limit
        self.n = len(self.insns)
        self.next_id = 1
        self.processed = 0
        self.states = 1
        self.max_stack = {}
        self.access = {}
        self.pending = None
        self.extra_cost = 0

    def text(self, pc):
        """The instruction at ``pc`` as text, for messages."""
        if 0 <= pc < self.n:
            return isa.format_insn(self.insns[pc], pc)
        return "<end of program>"

    def message(self, pc, reason, hint=None, state=None):
        """One rejection line: pc, instruction, reason, hint, source line and the path taken."""
        msg = "pc %d: %s: %s" % (pc, self.text(pc), reason)
        if hint:
            msg += " \u2014 " + hint
        info = self.line_info.get(pc) if hasattr(self.line_info, "get") else None
        if info:
            try:
                if len(info) >= 3:
                    msg += " (%s:%s: %s)" % (info[0], info[1], str(info[2]).strip())
                elif len(info) == 2:
                    msg += " (line %s: %s)" % (info[0], str(info[1]).strip())
            except TypeError:
                pass
        if state is not None and state.path is not None:
            # The branch decisions that led here, oldest first: "pc of the jump -> where it went".
            steps = []
            p = state.path
            while p is not None and len(steps) < 12:
                steps.append("%d -> %d" % p[0])
                p = p[1]
            steps.reverse()
            msg += "; path: " + ", ".join(steps)
        return msg

    def fail(self, pc, reason, hint=None, state=None):
        """Reject the program at ``pc`` (raises Reject, caught by run)."""
        raise Reject(self.message(pc, reason, hint, state))

    def run(self):
        """Static checks, then exploration; the VerifyResult, or VerifierError with every message."""
        try:
            errors = self.check_static()
            if errors:
                raise VerifierErrorList(errors)
            self.explore()
        except Reject as exc:
            raise error([exc.message]) from None
        except VerifierErrorList as exc:
            raise error(exc.errors) from None
        safe = frozenset(self.access)
        regions = {}
        for pc in self.access:
            regions[pc] = frozenset(self.access[pc])
        mode = "hook %s" % self.hook.name if self.hook is not None else (
            "standalone, %d-byte buffer" % self.mem_size if self.mem_size is not None
            else "standalone, buffer length in r2")
        count = sum(1 for pc in range(self.n) if not self.is_tail[pc])
        return VerifyResult(count, self.processed, self.states,
                            max(self.max_stack.values()) if self.max_stack else 0,
                            self.max_path, safe, regions, mode)
