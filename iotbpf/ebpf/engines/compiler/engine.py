"""The compiled engine: compile once (cached by program), exec the source, bind regions, helpers
and budget, and run with the faults, pcs and texts of the interpreters."""

import sys

from iotbpf.ebpf import isa
from iotbpf.ebpf.engines.compiler.analysis import DEPTH_LIMIT, EVENT_ENTRY, Analysis
from iotbpf.ebpf.engines.compiler.codegen import Generator
from iotbpf.ebpf.engines.frames import (
    _SIZE_MASK,
    BPFFault,
    HelperFault,
    StopRun,
    _helper_fault,
    _helper_result,
)
from iotbpf.ebpf.isa import M32, M64
from iotbpf.ebpf.isa.ops import ALU64_FUNCS, ATOMIC_OPERATORS, SIGNED32_FUNCS, SIGNED64_FUNCS, SWAP_FUNCS
from iotbpf.ebpf.memory import FUNC_REGION_ID
from iotbpf.ebpf.types import ARG_PTR_TO_FUNC

CACHE_SIZE = 64


_UNPACK = {2: isa.make_struct("<H"), 4: isa.make_struct("<I"), 8: isa.make_struct("<Q")}
_UNPACK_S = {1: isa.make_struct("<b"), 2: isa.make_struct("<h"), 4: isa.make_struct("<i")}
_UNPACK_BE = {1: isa.make_struct(">B"), 2: isa.make_struct(">H"), 4: isa.make_struct(">I"),
              8: isa.make_struct(">Q")}


_ATOMIC_OPS = ATOMIC_OPERATORS


_NO_REGION = (b"", -1, False)  # stands in for a missing region: every bounds test fails


class _TailCall(Exception):
    """Unwinds the generated frames when a helper requested a tail call."""


# ---------------------------------------------------------------- compile + cache
class Compiled:
    """A translated program: its source, its factory and what binding it needs."""

    def __init__(self, gen, source, factory):
        self.source = source
        self.factory = factory
        self.analysis = gen.an
        self.helper_sites = gen.helper_sites
        self.callx_sites = gen.callx_sites
        self.la_sites = gen.la_sites
        self.at_sites = gen.at_sites
        self.mem_sites = gen.mem_sites
        self.structured = gen.structured
        self.state_machines = gen.state_machines
        self.entries = [f.entry for f in gen.funcs]


_CACHE = {}
_CACHE_ORDER = []


def compile_program(program, proofs=None, entries=None, budget_checks=True, direct_helpers=()):
    """Translate ``program`` (a Program or Instruction list) into a ``Compiled``; cached.

    ``proofs``: pcs whose memory access the verifier proved in bounds (its
    ``safe_access_pcs``); those accesses are emitted without run-time checks. ``entries``:
    extra function entry pcs beyond pc 0 and the subprograms (callx/callback targets).
    ``budget_checks=False`` translates for runs without a budget: blocks are still counted
    (``insns_executed``) but never checked. ``direct_helpers``: helper ids whose calls need
    neither the registers in ex.regs nor a check of the result (see CompiledEngine's
    _direct_helpers): they are called plainly.
    """
    insns = getattr(program, "insns", program)
    proofs = frozenset(proofs) if proofs else frozenset()
    extra = tuple(sorted(set(entries or ())))
    direct = tuple(sorted(set(direct_helpers)))
    key = (isa.encode(insns), tuple(sorted(proofs)), extra, bool(budget_checks), direct)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    an = Analysis(insns)
    gen = Generator(an, [0] + list(extra), proofs, budget_checks, direct)
    source = gen.source()
    namespace = {}
    exec(source, namespace)
    compiled = Compiled(gen, source, namespace["factory"])
    _CACHE[key] = compiled
    _CACHE_ORDER.append(key)
    if len(_CACHE_ORDER) > CACHE_SIZE:
        _CACHE.pop(_CACHE_ORDER.pop(0), None)
    return compiled


def clear_cache():
    _CACHE.clear()
    del _CACHE_ORDER[:]


# ---------------------------------------------------------------- the engine
class CompiledEngine:
    """The engine protocol of engines/vm.py (``run_main``, ``call_function``) over compiled Python code."""

    def __init__(self, program, vm):
        self.program = program
        self.vm = vm
        self.ex = vm.ex
        self.depth = 0
        self.proofs = getattr(program, "safe_access_pcs", None)
        self._interp = None
        self._modules = {}
        self.direct = self._direct_helpers()
        self.compiled = compile_program(program, self.proofs, direct_helpers=self.direct)
        # the interpreter resolves every lddw at load time (LoadError); so do we
        self.checked = self._bind(self.compiled)
        self.counting = None  # the variant for runs without a budget, made on first use
        self.gens = self.checked

    def _direct_helpers(self):
        """Ids of the helpers this program calls whose calls can be plain: the VM's spec says the
        result is always an int in [0, 2**64) (``u64_result``) and the helper neither tail-calls
        nor runs a callback (it needs no registers in ex.regs)."""
        vm = self.vm
        direct = set()
        for insn in self.program.insns:
            if insn.kind != "call" or insn.src != 0:
                continue
            hid = insn.imm  # as the helper terminator has it
            fn, name = vm.helper(hid)
            if fn is not None and getattr(_helper_spec(vm, hid), "u64_result", False) \
                    and not _sees_registers(vm, hid, name):
                direct.add(hid)
        return frozenset(direct)

    # -------------------------------------------------------------- binding
    def _bind(self, comp):
        vm, ex, program = self.vm, self.ex, self.program
        an = comp.analysis
        memory = vm.memory
        regions = memory.regions
        consts = [vm.resolve_lddw(pc, insn, program) for pc, insn in an.lddw]
        faults = an.faults

        def fx(k):
            pc, reason, kind = faults[k]
            return vm.fault(pc, reason, kind, program)

        def bf(pc):
            return vm.fault(pc, "instruction budget exhausted (%d instructions)" % (ex.budget or 0),
                            "budget", program)

        def af(pc, a, size, write):
            a &= M64
            exc = memory.fault(a, size, write)
            return vm.fault(pc, exc.reason, exc.kind, program, a)

        hsites = [self._helper_site(pc, hid) for pc, hid in comp.helper_sites]
        h_fns = [site[0] for site in hsites]
        h_pcs = [pc for pc, _ in comp.helper_sites]
        h_sync = [site[2] for site in hsites]

        def h_error(k, exc):
            if isinstance(exc, (StopRun, BPFFault, _TailCall)):
                return exc
            return _helper_fault(vm, program, h_pcs[k], hsites[k][1], exc)

        def h_value(k, v):
            return _helper_result(vm, program, h_pcs[k], hsites[k][1], v)
        callx = [self._callx(pc, reg) for pc, reg in comp.callx_sites]

        def cxs(k, d, v):
            return callx[k](d, v)

        at_ops = [self._atomic_op(pc, insn, regions, af) for pc, insn in comp.at_sites]

        def at(k, a, v, r0):
            return at_ops[k](a, v, r0)

        la_ops = [self._ldabs_op(insn, regions) for insn in comp.la_sites]
        sites = comp.mem_sites

        def ld(k, a):
            pc, size, signed = sites[k]
            a &= M64
            g = regions.get(a >> 32)
            o = a & M32
            if g is None or o + size > g[1]:
                raise af(pc, a, size, False)
            if signed:
                return _UNPACK_S[size].unpack_from(g[0], o)[0] & M64
            return g[0][o] if size == 1 else _UNPACK[size].unpack_from(g[0], o)[0]

        def store(k, a, v):
            pc, size, _ = sites[k]
            a &= M64
            g = regions.get(a >> 32)
            o = a & M32
            if g is None or o + size > g[1] or not g[2]:
                raise af(pc, a, size, True)
            if size == 1:
                g[0][o] = v
            else:
                _UNPACK[size].pack_into(g[0], o, v)

        def la(k, x):
            return la_ops[k](x)

        sw = SWAP_FUNCS
        s64 = SIGNED64_FUNCS
        s32 = SIGNED32_FUNCS
        fns = comp.factory(
            ex, self, ex.regs, regions.get, vm.stack_tops, vm.stack_bufs, fx, bf, af,
            h_fns, h_pcs, h_error, h_value, h_sync, cxs, at, la,
            ld, store, consts, _UNPACK[2].unpack_from, _UNPACK[4].unpack_from, _UNPACK[8].unpack_from,
            _UNPACK[2].pack_into, _UNPACK[4].pack_into, _UNPACK[8].pack_into,
            _UNPACK_S[1].unpack_from, _UNPACK_S[2].unpack_from, _UNPACK_S[4].unpack_from,
            sw[16], sw[32], sw[64], s64[isa.BPF_DIV], s64[isa.BPF_MOD], s32[isa.BPF_DIV], s32[isa.BPF_MOD],
            _TailCall, _NO_REGION, lambda buf, start, size: _value_view(memory, buf, start, size))
        if any(h_sync) or comp.callx_sites:
            # such code stores registers to ex.regs during a run: it may leave them otherwise than
            # a fresh run finds them, so VM.run_event must reset them (no event entry)
            fns.pop(EVENT_ENTRY, None)
        return fns

    def _helper_site(self, pc, hid):
        """(function, name, needs registers in ex.regs) for the helper call at ``pc``."""
        vm, program = self.vm, self.program
        fn, name = vm.helper(hid)
        if fn is None:
            def unknown(ex, r1, r2, r3, r4, r5):
                raise vm.fault(pc, "unknown helper %d" % hid, "helper", program)
            return unknown, "#%d" % hid, False
        bind = getattr(_helper_spec(vm, hid), "bind", None)
        if bind is not None:
            fn = bind(vm.env) or fn  # specialized for this VM's environment (HelperSpec.bind)
        return fn, name, _sees_registers(vm, hid, name)

    def _callx(self, pc, reg):
        vm, ex, program = self.vm, self.ex, self.program
        an = self.compiled.analysis
        call_cache = {}

        def callx(d, v):
            if (v >> 32) == FUNC_REGION_ID:
                target = v & M32
                if target not in an.leaders:
                    raise vm.fault(pc, "callx target %d is not the start of a function" % target, "jump",
                                   program)
                if d >= DEPTH_LIMIT:
                    raise vm.fault(pc, "call depth exceeded (%d frames)" % isa.MAX_CALL_FRAMES, "depth",
                                   program)
                g = self._generic(target)
                g(d + 1)
                r = ex.regs
                return r[0], r[1], r[2], r[3], r[4], r[5]
            call = call_cache.get(v)
            if call is None:
                fn, name = vm.helper(v)
                if fn is None:
                    raise vm.fault(pc, "unknown helper %d (called through %%r%d)" % (v, reg), "helper", program)
                call = call_cache[v] = _make_helper_call(vm, ex, program, pc, fn, name)
            r = ex.regs
            value = call(r[1], r[2], r[3], r[4], r[5])
            if ex.tail_target is not None:
                r[0] = value
                raise _TailCall()
            return value, r[1], r[2], r[3], r[4], r[5]
        return callx

    def _generic(self, entry):
        """The generic entry (parameters from ex.regs) of the function at ``entry``."""
        g = self.gens.get(entry)
        if g is None:
            checks = self.gens is self.checked
            g = self._modules.get((entry, checks))
            if g is None:
                comp = compile_program(self.program, self.proofs, entries=(entry,), budget_checks=checks,
                                       direct_helpers=self.direct)
                g = self._modules[(entry, checks)] = self._bind(comp)[entry]
        return g

    def _atomic_op(self, pc, insn, regions, af):
        size = 8 if insn.opcode & 0x18 == isa.BPF_DW else 4
        mask = _SIZE_MASK[size]
        st = _UNPACK[size]
        unpack, pack = st.unpack_from, st.pack_into
        aop = insn.imm & M32
        cmpxchg = aop == isa.BPF_CMPXCHG
        base = aop if aop in (isa.BPF_XCHG, isa.BPF_CMPXCHG) else aop & ~isa.BPF_FETCH
        f = ALU64_FUNCS[base] if base in _ATOMIC_OPS else None

        def op(a, v, r0):
            a &= M64
            g = regions.get(a >> 32)
            o = a & M32
            if g is None or o + size > g[1] or not g[2]:
                raise af(pc, a, size, True)
            buf = g[0]
            old = unpack(buf, o)[0]
            if cmpxchg:
                if old == r0 & mask:
                    pack(buf, o, v & mask)
            elif f is None:
                pack(buf, o, v & mask)
            else:
                pack(buf, o, f(old, v) & mask)
            return old
        return op

    def _ldabs_op(self, insn, regions):
        ex = self.ex
        size = isa.SIZE_BYTES[insn.opcode & 0x18]
        unpack = _UNPACK_BE[size].unpack_from
        imm = insn.imm

        def op(x):
            base, length = ex.packet
            o = (imm + x) & M32
            if o + size > length:
                raise StopRun(0)
            return unpack(regions[base >> 32][0], o)[0]
        return op

    # -------------------------------------------------------------- engine protocol
    def run_main(self):
        ex = self.ex
        if ex.trace is not None or ex.profile is not None:
            return self._interpreter().run_main()
        self.depth = 0
        if ex.budget is None:
            if self.counting is None:
                self.counting = self._bind(compile_program(self.program, self.proofs, budget_checks=False,
                                                           direct_helpers=self.direct))
            self.gens = self.counting
        else:
            self.gens = self.checked
        try:
            return self.gens[0](0)
        except _TailCall:
            return ex.regs[0]

    def event_entry(self):
        """``fn(ctx_addr) -> r0``: the main program's run_main for a run that starts with the
        VM's initial registers and finds ``ex`` as the last run_main left it (no trace, no
        profile, the same budget mode); VM.run_event calls it while that holds. Only for code
        that writes no register but r0 to ex.regs (so the registers stay as the last fresh
        run set them, r1 aside); None otherwise."""
        return self.gens.get(EVENT_ENTRY)

    def call_function(self, pc, r1=0, r2=0, r3=0, r4=0, r5=0):
        """Run the subprogram at ``pc`` in a new frame (callbacks); returns its r0."""
        ex = self.ex
        if ex.trace is not None or ex.profile is not None:
            return self._interpreter().call_function(pc, r1, r2, r3, r4, r5)
        if pc not in self.compiled.analysis.leaders:
            raise HelperFault("callback address %d is not the start of a function" % pc)
        depth = self.depth
        if depth >= DEPTH_LIMIT:
            raise HelperFault("call depth exceeded (%d frames)" % isa.MAX_CALL_FRAMES)
        r = ex.regs
        saved = r[0:10]
        r[1], r[2], r[3], r[4], r[5] = r1 & M64, r2 & M64, r3 & M64, r4 & M64, r5 & M64
        try:
            result = self._generic(pc)(depth + 1)
        except _TailCall:
            result = r[0]
        finally:
            self.depth = depth
        r[0:6] = saved[0:6]
        r[6:10] = saved[6:10]
        return result

    def _interpreter(self):
        """--trace and --profile run on the closure interpreter (same faults, same budget)."""
        if self._interp is None:
            self._interp = self.vm.make_engine("interp", self.program)
        return self._interp


_CAST = {2: "H", 4: "I", 8: "Q"}
try:
    _NATIVE_VIEWS = sys.byteorder == "little" and hasattr(memoryview(b""), "cast")
except Exception:  # MicroPython: no memoryview.cast
    _NATIVE_VIEWS = False


class _StructView:
    """``view[i]`` = the u<size> at ``start + i * size`` of ``buf``, through struct (the
    fallback of ``_value_view``)."""

    def __init__(self, buf, start, size):
        self.buf = buf
        self.start = start
        self.size = size
        self.unpack = _UNPACK[size].unpack_from
        self.pack = _UNPACK[size].pack_into

    def __getitem__(self, i):
        return self.unpack(self.buf, self.start + i * self.size)[0]

    def __setitem__(self, i, value):
        self.pack(self.buf, self.start + i * self.size, value)


def _value_view(memory, buf, start, size):
    """An item view (u2/u4/u8, little-endian) of ``buf`` from byte ``start``: the generated code
    reads and writes proven map value fields as ``w8_3[5]``.

    A native memoryview cast on little-endian CPython when the buffer has reached its final
    size (a view pins a bytearray's size, and map storage that can still grow must stay
    resizable, see Memory._growing); else struct through _StructView, same results.
    """
    if _NATIVE_VIEWS and isinstance(buf, (bytearray, bytes)):
        growing = False
        for item in memory._growing:
            if item[0][0] is buf:
                growing = True
        if not growing:
            view = memoryview(buf)[start:]
            view = view[:len(view) - len(view) % size]
            return view.cast(_CAST[size])
    return _StructView(buf, start, size)


def _helper_spec(vm, hid):
    """The VM's entry for helper ``hid`` (a HelperSpec, a plain callable) or None."""
    try:
        return vm.helpers.get(hid)
    except Exception:
        return None


def _sees_registers(vm, hid, name):
    """True unless the helper's spec shows it can neither tail-call nor run a callback.

    Those two read the whole register file (the next program starts with it; a callback's
    frame starts from it), so the generated code stores its registers to ex.regs first.
    A plain callable without a spec is assumed to need them.
    """
    args = getattr(_helper_spec(vm, hid), "args", None)
    if args is None or hid == 12 or "tail" in str(name):
        return True
    return ARG_PTR_TO_FUNC in args


def _make_helper_call(vm, ex, program, pc, fn, name):
    def call(r1, r2, r3, r4, r5):
        ex.pc = pc
        try:
            v = fn(ex, r1, r2, r3, r4, r5)
        except StopRun:
            raise
        except BPFFault:
            raise
        except _TailCall:
            raise
        except Exception as exc:
            raise _helper_fault(vm, program, pc, name, exc) from None
        if v.__class__ is not int:
            v = _helper_result(vm, program, pc, name, v)
        return v & M64
    return call
