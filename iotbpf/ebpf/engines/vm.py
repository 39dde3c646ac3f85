"""The VM front: ``VM(program, ...)`` builds memory, maps and an engine and ``run()`` returns r0 or
raises BPFFault; the Execution context helpers see; the engine registry (docs/vm.md, "Inside")."""

import sys
import time

from iotbpf.ebpf import isa
from iotbpf.ebpf.engines.compact import CompactInterpreter
from iotbpf.ebpf.engines.frames import (
    BPFFault,
    HelperFault,
    StopRun,
    source_line,
)
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.isa import M32, M64
from iotbpf.ebpf.memory import FUNC_REGION_ID, Memory, MemoryFault
from iotbpf.ebpf.prng import Rng

UNLIMITED = 1 << 62

FAULT_KINDS = ("oob", "readonly", "opcode", "jump", "depth", "helper", "budget", "internal")


class Environment:
    """The default runtime environment: wall clock, a deterministic PRNG, trace output."""

    def __init__(self, seed=0x2545F4914F6CDD1D, clock_ns=None):
        self._rng = Rng.from_state(seed & M64 or 1)
        self._clock = clock_ns
        self.trace_output = []

    def clock_ns(self):
        if self._clock is not None:
            return self._clock()
        if hasattr(time, "monotonic_ns"):
            return time.monotonic_ns()
        return time.time_ns()

    def random_u32(self):
        return self._rng.u32()


class Execution:
    """The running execution context handed to helpers (docs/vm.md, "Inside")."""

    def __init__(self, vm, memory, env):
        self.vm = vm
        self.memory = memory
        self.env = env
        self.program = vm.program
        self.engine = None
        self.regs = [0] * isa.NUM_REGS
        self.frames = []
        self.left = UNLIMITED
        self.budget = None
        self.tail_target = None
        self.tail_calls = 0
        self.trace = None
        self.profile = None
        self.packet = (0, 0)
        self.pc = 0

    @property
    def insns_executed(self):
        """Instructions charged so far in this run (blocks are charged on entry)."""
        start = UNLIMITED if self.budget is None else self.budget
        return start - self.left

    def map_from_handle(self, value):
        m = self.memory.map_from_handle(value)
        if m is None:
            raise HelperFault("0x%x is not a map (expected a map loaded with lddw)" % (value & M64))
        return m

    def map_value_pointer(self, map_obj, slot, offset=0):
        base = self.memory.map_values_base(map_obj)
        if base is None:
            raise HelperFault("map has no value storage")
        return base + slot * map_obj.spec.value_size + offset

    def tail_call(self, prog_array, index):
        if self.tail_calls >= isa.MAX_TAIL_CALLS:
            return False
        get = getattr(prog_array, "get_program", None)
        target = get(index) if get is not None else None
        if target is None:
            return False
        self.tail_calls += 1
        self.tail_target = target
        return True

    def call_callback(self, func_addr, r1=0, r2=0, r3=0, r4=0, r5=0):
        if (func_addr >> 32) != FUNC_REGION_ID:
            raise HelperFault("0x%x is not a function address" % (func_addr & M64))
        return self.engine.call_function(func_addr & M32, r1, r2, r3, r4, r5)

    def stop(self, value):
        raise StopRun(value & M64)


# ---------------------------------------------------------------- engines
_MICROPYTHON = getattr(getattr(sys, "implementation", None), "name", "") == "micropython"

ENGINES = {
    "interp": ("iotbpf.ebpf.engines.interp", "Interpreter"),
    "compact": ("iotbpf.ebpf.engines.compact", "CompactInterpreter"),
    "compiled": ("iotbpf.ebpf.engines.compiler", "CompiledEngine"),
}


def make_engine(kind, program, vm):
    """Build the engine ``kind`` ("interp" or "compiled") for ``program`` running on ``vm``."""
    entry = ENGINES.get(kind)
    if entry is None:
        raise LoadError("unknown engine %r (choose %s)" % (kind, " or ".join(sorted(ENGINES))))
    if kind == "compact" or (kind == "interp" and _MICROPYTHON):
        return CompactInterpreter(program, vm)
    if kind == "interp":
        from iotbpf.ebpf.engines.interp import Interpreter

        return Interpreter(program, vm)
    try:
        module = __import__(entry[0], None, None, [entry[1]])
    except ImportError:
        raise LoadError("engine %r is not available in this build" % kind) from None
    cls = getattr(module, entry[1], None)
    if cls is None:
        raise LoadError("engine %r is not available in this build" % kind)
    return cls(program, vm)


def engine_available(kind):
    """True if the engine ``kind`` can be built in this installation."""
    entry = ENGINES.get(kind)
    if entry is None:
        return False
    if kind in ("interp", "compact"):
        return True
    try:
        module = __import__(entry[0], None, None, [entry[1]])
    except ImportError:
        return False
    return getattr(module, entry[1], None) is not None


class VM:
    """One program, its engine and memory; ``run()`` executes it (docs/vm.md, "Inside")."""

    def __init__(self, program, helpers=None, engine="interp", budget=None, env=None, memory=None,
                 maps=None):
        self.program = program
        self.helpers = helpers
        self.engine_kind = engine
        self._budget = budget
        self.env = env if env is not None else Environment()
        self.memory = memory if memory is not None else Memory()
        self.maps = maps
        self._maps_by_name = {}
        for m in maps or ():
            name = getattr(m, "name", None)
            if name is not None:
                self._maps_by_name.setdefault(name, m)
        self._clear_stack = True  # see the clear_stack property
        self.stack_bufs = []
        self.stack_tops = []
        self._add_frames(1)  # frames 1-7 only for programs that can call (saves RAM on MCUs)
        self._top0 = self.stack_tops[0]
        self._regs0 = [0] * 10 + [self._top0]  # the register file a run starts with
        self.ex = Execution(self, self.memory, self.env)
        self.last = self.ex
        self._engines = {}
        self._dirty_frames = _has_calls(program)
        if self._dirty_frames:
            self._add_frames(isa.MAX_CALL_FRAMES)
        self.engine = self.engine_for(program)
        self._event_fn = None  # run_event's shortcut (see there)
        self._event_left = UNLIMITED

    @property
    def budget(self):
        """Instructions a run may execute (None: no limit)."""
        return self._budget

    @budget.setter
    def budget(self, value):
        self._budget = value
        self._event_fn = None  # run_event's next run sets the budget up again

    @property
    def clear_stack(self):
        """Whether each run starts with a zeroed stack (False only for verified programs: the
        verifier rejects every read of stack bytes not written earlier in the same run)."""
        return self._clear_stack

    @clear_stack.setter
    def clear_stack(self, value):
        self._clear_stack = value
        self._event_fn = None

    # ---------------------------------------------------------------- loading
    def engine_for(self, program):
        """The (cached) engine for ``program``: the main one or a tail-call target."""
        key = id(program)
        engine = self._engines.get(key)
        if engine is None:
            engine = make_engine(self.engine_kind, program, self)
            self._engines[key] = (engine, program)
            return engine
        return engine[0]

    def make_engine(self, kind, program):
        """A new engine of ``kind`` for ``program`` on this VM (engines need not know the registry)."""
        return make_engine(kind, program, self)

    def program_maps(self, program):
        """The map objects of ``program``: ``maps=`` for the main program, else its own
        ``program.maps``; MapSpecs left there by a loader are replaced by live maps with
        ``maps.instantiate`` (shared by name across the programs this VM runs)."""
        if program is self.program and self.maps is not None:
            return self.maps
        entries = getattr(program, "maps", None) or []
        if any(_is_spec(m) for m in entries):
            from iotbpf.ebpf import maps as maps_module

            maps_module.instantiate(program, maps=self._maps_by_name)
            entries = program.maps
        if program is self.program:
            self.maps = entries
        return entries

    def resolve_lddw(self, pc, insn, program=None):
        """The 64-bit value a lddw at ``pc`` loads (handles pseudo sources); LoadError if none."""
        src = insn.src
        imm = insn.imm & M64
        if src == 0:
            return imm
        program = program if program is not None else self.program
        text = isa.format_insn(insn)
        if src in (isa.BPF_PSEUDO_MAP_FD, isa.BPF_PSEUDO_MAP_IDX, isa.BPF_PSEUDO_MAP_VALUE,
                   isa.BPF_PSEUDO_MAP_IDX_VALUE):
            maps = self.program_maps(program)
            k = isa.s32(imm)
            if not 0 <= k < len(maps):
                raise LoadError("pc %d: %s: map index %d out of range (program has %d maps)"
                                % (pc, text, k, len(maps)))
            map_obj = maps[k]
            if src in (isa.BPF_PSEUDO_MAP_FD, isa.BPF_PSEUDO_MAP_IDX):
                return self.memory.map_handle(map_obj)
            base = self.memory.map_values_base(map_obj)
            if base is None:
                raise LoadError("pc %d: %s: map %d has no value storage" % (pc, text, k))
            off = isa.s32(imm >> 32)
            spec = getattr(map_obj, "spec", None)
            size = getattr(spec, "value_size", None)
            if off < 0 or (size is not None and off >= size):
                raise LoadError("pc %d: %s: offset %d outside the map value" % (pc, text, off))
            return base + off
        if src == isa.BPF_PSEUDO_FUNC:
            target = pc + 1 + isa.s32(imm)
            if not 0 <= target < len(program.insns):
                raise LoadError("pc %d: %s: function address out of range" % (pc, text))
            return (FUNC_REGION_ID << 32) | target
        if src == isa.BPF_PSEUDO_BTF_ID:
            raise LoadError("pc %d: %s: lddw source BTF id (kernel symbols) is not supported" % (pc, text))
        raise LoadError("pc %d: %s: unsupported lddw pseudo source %d" % (pc, text, src))

    def helper(self, helper_id):
        """``(callable, name)`` for a helper id, or (None, None) if not registered."""
        table = self.helpers
        if table is None:
            return None, None
        try:
            entry = table.get(helper_id)
        except Exception:
            entry = None
        if entry is None:
            return None, None
        func = getattr(entry, "func", None)
        if func is None and callable(entry):
            func = entry
        name = getattr(entry, "name", None) or getattr(func, "__name__", None) or ("#%d" % helper_id)
        return func, name

    def fault(self, pc, reason, kind, program=None, addr=None):
        """A BPFFault at ``pc`` of ``program`` (the running one by default)."""
        program = program if program is not None else self.ex.program
        insns = program.insns
        text = isa.format_insn(insns[pc], pc) if 0 <= pc < len(insns) else "<end of program>"
        return BPFFault(pc, text, reason, kind, addr, source_line(program, pc))

    # ---------------------------------------------------------------- running
    def run(self, mem=b"", ctx=None, packet=None, budget=None, trace=False, profile=False):
        ex = self.ex
        self.last = ex
        self._event_fn = None  # this run may leave ex otherwise than run_event needs it
        memory = self.memory
        regs = ex.regs
        regs[:] = self._regs0
        added = None
        if ctx is not None:
            if ctx.__class__ is int or isinstance(ctx, int):
                regs[1] = ctx & M64
            else:
                added = [memory.add_region(ctx, "ctx", isinstance(ctx, bytearray))]
                regs[1] = added[0]
        elif mem:
            data = bytearray(mem)
            base = memory.add_region(data, "mem")
            added = [base]
            regs[1] = base
            regs[2] = len(data)
        if packet is not None:
            pbase = memory.add_region(bytes(packet), "packet", False)
            if added is None:
                added = []
            added.append(pbase)
            ex.packet = (pbase, len(packet))
        elif regs[2]:
            ex.packet = (regs[1], regs[2])
        else:
            ex.packet = _NO_PACKET
        if memory._growing:
            memory.refresh_map_regions()
        # frame 0 is cleared for every run (unless clear_stack is off); the other frames only if a
        # program can call
        if self._clear_stack:
            self.stack_bufs[0][:] = _ZERO_STACK
        if self._dirty_frames:
            self._clear_frames()
        if budget is None:
            budget = self._budget
        ex.budget = budget
        ex.left = UNLIMITED if budget is None else budget
        if ex.frames:
            ex.frames = []
        ex.tail_target = None
        ex.tail_calls = 0
        # trace: True collects a list; an object with append() (iotbpf run --trace) streams it
        ex.trace = ([] if trace is True else trace) if trace else None
        ex.profile = {} if profile else None
        ex.program = self.program
        try:
            return self._execute(self.engine)
        finally:
            if added is not None:
                for base in added:
                    memory.remove_region(base)

    def run_event(self, ctx_addr):
        """``run(ctx=ctx_addr)`` for an event loop: the context is already in memory at
        ``ctx_addr``, the VM's budget applies, no trace. Same results.

        After a run that ended in the main program without an exception, ``ex`` holds what the
        next one needs besides r1 and the budget left, so the next run goes straight to the
        engine's event entry (``_event_fn``: offered only for code that leaves r2-r10 alone,
        kept only while the stack need not be cleared between runs). ``run``, every other
        ending and setting ``budget`` or ``clear_stack`` drop it."""
        fn = self._event_fn
        ex = self.ex
        if fn is not None and not self.memory._growing:
            ex.left = self._event_left
            ctx_addr &= M64
            ex.regs[1] = ctx_addr
            try:
                r0 = fn(ctx_addr)
                if ex.tail_target is None:
                    return r0
            except Exception as exc:
                self._event_ended(ctx_addr)
                return self._ended_by(exc)
            self._event_fn = None
            return self._execute(self._tail_call_engine())
        r0 = self.run(ctx=ctx_addr & M64)
        if ex.program is self.program and not ex.tail_calls and not self._clear_stack and not self._dirty_frames:
            # it ended in the main program: the next run may take the shortcut
            entry = getattr(self.engine, "event_entry", None)
            if entry is not None:
                self._event_fn = entry()
                self._event_left = ex.budget if ex.budget is not None else UNLIMITED
        return r0

    def _event_ended(self, ctx_addr):
        """A run through the event entry stopped early: the registers as a fresh run that
        stopped there leaves them (r0 not yet returned), and no shortcut for the next run."""
        self._event_fn = None
        regs = self.ex.regs
        regs[:] = self._regs0
        regs[1] = ctx_addr

    def _execute(self, engine):
        """Run the prepared ``ex`` on ``engine``, following tail calls; every Python exception
        becomes a BPFFault."""
        ex = self.ex
        try:
            while True:
                ex.engine = engine
                r0 = engine.run_main()
                if ex.tail_target is None:
                    return r0
                engine = self._tail_call_engine()
        except Exception as exc:
            return self._ended_by(exc)

    def _ended_by(self, exc):
        """How a run that raised ``exc`` ends: StopRun's value as r0, a BPFFault as it is, any
        other exception as the BPFFault _run_failure makes of it."""
        if isinstance(exc, StopRun):
            return exc.value & M64
        if isinstance(exc, BPFFault):
            raise exc
        raise self._run_failure(exc) from None

    def _tail_call_engine(self):
        """Switch ``ex`` to the program a tail call asked for; its engine."""
        ex = self.ex
        target = ex.tail_target
        ex.tail_target = None
        try:
            engine = self.engine_for(target)
        except LoadError as exc:
            raise self.fault(ex.pc, "tail call target cannot be loaded: %s" % exc, "helper") from None
        if not self._dirty_frames and _has_calls(target):
            self._dirty_frames = True
            self._add_frames(isa.MAX_CALL_FRAMES)
        ex.frames = []
        ex.program = target
        ex.regs[10] = self._top0
        return engine

    def _run_failure(self, exc):
        """The BPFFault for a Python exception out of a run (never let one escape)."""
        if isinstance(exc, MemoryFault):
            return self.fault(self.ex.pc, exc.reason, exc.kind, addr=exc.addr)
        return self.fault(self.ex.pc, "internal error: %s: %s" % (type(exc).__name__, exc), "internal")

    def _add_frames(self, count):
        """Allocate stack frames up to ``count`` (each its own 512-byte region "stackN")."""
        while len(self.stack_bufs) < count:
            buf = bytearray(isa.STACK_SIZE)
            base = self.memory.add_region(buf, "stack%d" % len(self.stack_bufs))
            self.stack_bufs.append(buf)
            self.stack_tops.append(base + isa.STACK_SIZE)

    def _clear_frames(self):
        for buf in self.stack_bufs[1:]:
            buf[:] = _ZERO_STACK


_ZERO_REGS = [0] * isa.NUM_REGS
_ZERO_STACK = bytes(isa.STACK_SIZE)
_NO_PACKET = (0, 0)


def _has_calls(program):
    """True if ``program`` can enter frames other than frame 0 (local calls, callx, callbacks)."""
    for insn in program.insns:
        op = insn.opcode
        if (op == isa.CALL and insn.src == isa.BPF_PSEUDO_CALL) or op == isa.CALLX \
                or (op == isa.LDDW and insn.src == isa.BPF_PSEUDO_FUNC):
            return True
    return False


def _is_spec(entry):
    """A MapSpec (a description) rather than a map object with storage and methods."""
    return hasattr(entry, "max_entries") and not hasattr(entry, "lookup")


def __getattr__(name):
    # ``from iotbpf.ebpf.engines.vm import Interpreter`` keeps working; the closure interpreter lives in
    # interp.py so that MicroPython (which runs the compact one) never loads it
    if name == "Interpreter":
        try:
            from iotbpf.ebpf.engines.interp import Interpreter
        except ImportError:  # the device profile leaves interp.py out: same semantics, less RAM
            return CompactInterpreter
        return Interpreter
    raise AttributeError("module 'iotbpf.ebpf.engines.vm' has no attribute " + repr(name))
