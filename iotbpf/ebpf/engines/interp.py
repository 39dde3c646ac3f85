"""The closure interpreter, CPython's "interp": each instruction pre-decoded into a closure, each basic
block into one unrolled closure (closures.py). Semantics, faults and budget as every engine."""

from iotbpf.ebpf import isa
from iotbpf.ebpf.engines.closures import FAST_JK, FAST_JX, FAST_K, FAST_X, make_block
from iotbpf.ebpf.engines.frames import (
    _SIZE_MASK,
    _UNPACK,
    _UNPACK_BE,
    _UNPACK_S,
    EXITED,
    StopRun,
    _call_function,
    _invoke_helper,
)
from iotbpf.ebpf.isa.ops import (
    ATOMIC_FUNCS,
    COND32,
    COND64,
    LE_FUNCS,
    M32,
    M64,
    SWAP_FUNCS,
    alu_func,
)
from iotbpf.ebpf.memory import FUNC_REGION_ID


class Interpreter:
    """The reference engine: each instruction pre-decoded into a closure, blocks unrolled."""

    def __init__(self, program, vm):
        self.program = program
        self.vm = vm
        self.ex = vm.ex
        self.regs = vm.ex.regs
        insns = program.insns
        n = len(insns)
        self.n = n
        self.invalid = isa.validate(insns)
        blocks = [None] * (n + 1)
        self.blocks = blocks
        tails = isa.lddw_tails(insns)
        for start, end, cost in isa.basic_blocks(insns):
            ops = []
            pc = start
            term = None
            flagged = False
            while pc < end:
                insn = insns[pc]
                if pc in tails:
                    fn = self._fault_op(pc, "jump into the second slot of the lddw at pc %d" % (pc - 1),
                                        "jump")
                    ops.append((pc, fn))
                    term = fn
                    pc = end
                    break
                fn, is_term, needs_sync = self._build(pc, insn)
                ops.append((pc, fn))
                if is_term:
                    term = fn
                    flagged = flagged or needs_sync
                    pc += 1
                    break
                pc += 2 if insn.opcode == isa.LDDW else 1
            plain = [fn for (p, fn) in ops if fn is not term]
            blocks[start] = (cost, make_block(plain, term, pc), flagged, ops, pc)
        last = n - 1 if n else 0
        blocks[n] = (0, self._fault_op(last, "execution fell off the end of the program", "jump"),
                     False, [], n)

    # ------------------------------------------------------------------ builders
    def _fault_op(self, pc, reason, kind):
        vm = self.vm
        program = self.program

        def op():
            raise vm.fault(pc, reason, kind, program)
        return op

    def _build(self, pc, insn):
        """(closure, is_terminator, needs_budget_sync) for one instruction."""
        bad = self.invalid.get(pc)
        if bad is not None:
            return self._fault_op(pc, bad[0], bad[1]), False, False
        builder = getattr(self, "_b_" + isa.op_kind(insn.opcode))
        return builder(pc, insn)

    def _b_alu(self, pc, insn):
        r = self.regs
        op = insn.opcode
        code = op & 0xF0
        is64 = op & 0x07 == isa.BPF_ALU64
        d = insn.dst
        f = alu_func(code, is64, insn.off)  # validated: off is 0, a movsx size or 1 (sdiv/smod)
        if op & isa.BPF_X:
            s = insn.src
            spec = FAST_X.get(op) if not insn.off else None
            if spec is not None:
                return spec(r, d, s), False, False

            def alu_x():
                r[d] = f(r[d], r[s])
            return alu_x, False, False
        b = insn.imm & M64
        spec = FAST_K.get(op) if not insn.off else None
        if spec is not None:
            return spec(r, d, b), False, False

        def alu_k():
            r[d] = f(r[d], b)
        return alu_k, False, False

    def _b_end(self, pc, insn):
        r = self.regs
        d = insn.dst
        if insn.opcode == isa.BPF_ALU | isa.BPF_END | isa.BPF_TO_LE:
            f = LE_FUNCS[insn.imm]
        else:
            f = SWAP_FUNCS[insn.imm]

        def end():
            r[d] = f(r[d], 0)
        return end, False, False

    def _b_lddw(self, pc, insn):
        r = self.regs
        d = insn.dst
        value = self.vm.resolve_lddw(pc, insn, self.program)

        def lddw():
            r[d] = value
        return lddw, False, False

    def _access_fault(self, pc, addr, size, write):
        exc = self.vm.memory.fault(addr, size, write)
        return self.vm.fault(pc, exc.reason, exc.kind, self.program, addr)

    def _b_ldx(self, pc, insn, signed=False):
        r = self.regs
        regions = self.vm.memory.regions
        d, s, off = insn.dst, insn.src, insn.off
        size = isa.SIZE_BYTES[insn.opcode & 0x18]
        afault = self._access_fault
        if signed:
            unpack = _UNPACK_S[size].unpack_from

            def ldxs():
                a = (r[s] + off) & M64
                g = regions.get(a >> 32)
                o = a & M32
                if g is None or o + size > g[1]:
                    raise afault(pc, a, size, False)
                r[d] = unpack(g[0], o)[0] & M64
            return ldxs, False, False
        if size == 1:
            def ldxb():
                a = (r[s] + off) & M64
                g = regions.get(a >> 32)
                o = a & M32
                if g is None or o >= g[1]:
                    raise afault(pc, a, 1, False)
                r[d] = g[0][o]
            return ldxb, False, False
        unpack = _UNPACK[size].unpack_from

        def ldx():
            a = (r[s] + off) & M64
            g = regions.get(a >> 32)
            o = a & M32
            if g is None or o + size > g[1]:
                raise afault(pc, a, size, False)
            r[d] = unpack(g[0], o)[0]
        return ldx, False, False

    def _b_ldxs(self, pc, insn):
        return self._b_ldx(pc, insn, True)

    def _store(self, pc, insn, value_of):
        regions = self.vm.memory.regions
        r = self.regs
        d, off = insn.dst, insn.off
        size = isa.SIZE_BYTES[insn.opcode & 0x18]
        mask = _SIZE_MASK[size]
        afault = self._access_fault
        if size == 1:
            def stb():
                a = (r[d] + off) & M64
                g = regions.get(a >> 32)
                o = a & M32
                if g is None or o >= g[1] or not g[2]:
                    raise afault(pc, a, 1, True)
                g[0][o] = value_of() & 0xFF
            return stb, False, False
        pack = _UNPACK[size].pack_into

        def st():
            a = (r[d] + off) & M64
            g = regions.get(a >> 32)
            o = a & M32
            if g is None or o + size > g[1] or not g[2]:
                raise afault(pc, a, size, True)
            pack(g[0], o, value_of() & mask)
        return st, False, False

    def _b_st(self, pc, insn):
        imm = insn.imm & M64
        return self._store(pc, insn, lambda: imm)

    def _b_stx(self, pc, insn):
        r = self.regs
        s = insn.src
        if insn.opcode == isa.BPF_STX | isa.BPF_MEM | isa.BPF_DW:
            # the most common store, written out without the value closure
            regions = self.vm.memory.regions
            d, off = insn.dst, insn.off
            pack = _UNPACK[8].pack_into
            afault = self._access_fault

            def stxdw():
                a = (r[d] + off) & M64
                g = regions.get(a >> 32)
                o = a & M32
                if g is None or o + 8 > g[1] or not g[2]:
                    raise afault(pc, a, 8, True)
                pack(g[0], o, r[s])
            return stxdw, False, False
        return self._store(pc, insn, lambda: r[s])

    def _b_atomic(self, pc, insn):
        r = self.regs
        regions = self.vm.memory.regions
        d, s, off = insn.dst, insn.src, insn.off
        size = 8 if insn.opcode & 0x18 == isa.BPF_DW else 4
        mask = _SIZE_MASK[size]
        st = _UNPACK[size]
        unpack, pack = st.unpack_from, st.pack_into
        aop = insn.imm & M32
        afault = self._access_fault

        def locate(a):
            g = regions.get(a >> 32)
            o = a & M32
            if g is None or o + size > g[1] or not g[2]:
                raise afault(pc, a, size, True)
            return g[0], o

        if aop == isa.BPF_CMPXCHG:
            def cmpxchg():
                buf, o = locate((r[d] + off) & M64)
                old = unpack(buf, o)[0]
                if old == r[0] & mask:
                    pack(buf, o, r[s] & mask)
                r[0] = old
            return cmpxchg, False, False
        f = ATOMIC_FUNCS[aop if aop == isa.BPF_XCHG else aop & ~isa.BPF_FETCH]  # validated
        if aop & isa.BPF_FETCH:
            def atomic_fetch():
                buf, o = locate((r[d] + off) & M64)
                old = unpack(buf, o)[0]
                pack(buf, o, f(old, r[s]) & mask)
                r[s] = old
            return atomic_fetch, False, False

        def atomic():
            buf, o = locate((r[d] + off) & M64)
            pack(buf, o, f(unpack(buf, o)[0], r[s]) & mask)
        return atomic, False, False

    def _b_ldabs(self, pc, insn, indirect=False):
        r = self.regs
        ex = self.ex
        memory = self.vm.memory
        s = insn.src
        imm = insn.imm
        size = isa.SIZE_BYTES[insn.opcode & 0x18]
        unpack = _UNPACK_BE[size].unpack_from

        def ldabs():
            base, length = ex.packet
            o = imm + (r[s] if indirect else 0)
            o &= M32
            if o + size > length:
                raise StopRun(0)  # Linux: an out-of-range packet load ends the program with 0
            buf = memory.regions[base >> 32][0]
            r[0] = unpack(buf, o)[0]
        return ldabs, False, False

    def _b_ldind(self, pc, insn):
        return self._b_ldabs(pc, insn, True)

    def _b_ja(self, pc, insn):
        target = insn.jump_target(pc)
        if not 0 <= target < self.n:
            return self._fault_op(pc, "jump target %d out of range" % target, "jump"), True, False
        return (lambda: target), True, False

    _b_ja32 = _b_ja

    def _b_jcond(self, pc, insn):
        r = self.regs
        op = insn.opcode
        d = insn.dst
        t = insn.jump_target(pc)
        nxt = pc + 1
        is64 = op & 0x07 == isa.BPF_JMP
        code = op & 0xF0
        cond = (COND64 if is64 else COND32)[code]
        if not 0 <= t < self.n:
            vm, program = self.vm, self.program
            if op & isa.BPF_X:
                s = insn.src
                m = M64 if is64 else M32

                def bad_x():
                    if cond(r[d] & m, r[s] & m):
                        raise vm.fault(pc, "jump target %d out of range" % t, "jump", program)
                    return nxt
                return bad_x, True, False
            bk = insn.imm & (M64 if is64 else M32)
            m = M64 if is64 else M32

            def bad_k():
                if cond(r[d] & m, bk):
                    raise vm.fault(pc, "jump target %d out of range" % t, "jump", program)
                return nxt
            return bad_k, True, False
        if op & isa.BPF_X:
            s = insn.src
            if is64:
                fast = FAST_JX.get(code)
                if fast is not None:
                    return fast(r, d, s, t, nxt), True, False

                def jx():
                    return t if cond(r[d], r[s]) else nxt
                return jx, True, False

            def jx32():
                return t if cond(r[d] & M32, r[s] & M32) else nxt
            return jx32, True, False
        if is64:
            b = insn.imm & M64
            fast = FAST_JK.get(code)
            if fast is not None:
                return fast(r, d, b, t, nxt), True, False

            def jk():
                return t if cond(r[d], b) else nxt
            return jk, True, False
        b = insn.imm & M32

        def jk32():
            return t if cond(r[d] & M32, b) else nxt
        return jk32, True, False

    def _call_helper_op(self, pc):
        """``call(fn, name)``: the body of a helper call at ``pc`` (see ``_invoke_helper``)."""
        r = self.regs
        ex = self.ex
        vm = self.vm
        program = self.program

        def call_helper(fn, name):
            return _invoke_helper(vm, ex, r, program, pc, fn, name)
        return call_helper

    def _b_call(self, pc, insn):
        if insn.src == isa.BPF_PSEUDO_CALL:
            target = pc + 1 + insn.imm
            if not 0 <= target < self.n:
                return self._fault_op(pc, "call target %d out of range" % target, "jump"), True, True
            return self._local_call(pc, target), True, False
        if insn.src != 0:
            return self._fault_op(pc, "kernel function calls are not supported", "helper"), True, True
        hid = insn.imm
        fn, name = self.vm.helper(hid)
        if fn is None:
            return self._fault_op(pc, "unknown helper %d" % hid, "helper"), True, True
        call = self._call_helper_op(pc)

        def call_op():
            return call(fn, name)
        return call_op, True, True

    def _local_call(self, pc, target):
        r = self.regs
        ex = self.ex
        vm = self.vm
        program = self.program
        tops = vm.stack_tops
        nxt = pc + 1
        limit = isa.MAX_CALL_FRAMES - 1

        def call_local():
            frames = ex.frames
            depth = len(frames)
            if depth >= limit:
                raise vm.fault(pc, "call depth exceeded (%d frames)" % isa.MAX_CALL_FRAMES, "depth",
                               program)
            frames.append((nxt, r[6], r[7], r[8], r[9], r[10]))
            r[10] = tops[depth + 1]
            return target
        return call_local

    def _b_callx(self, pc, insn):
        r = self.regs
        vm = self.vm
        program = self.program
        d = insn.dst
        call = self._call_helper_op(pc)
        locals_cache = {}

        def callx():
            v = r[d]
            if (v >> 32) == FUNC_REGION_ID:
                target = v & M32
                if not self.is_entry(target):
                    raise vm.fault(pc, "callx target %d is not the start of a function" % target,
                                   "jump", program)
                op = locals_cache.get(target)
                if op is None:
                    op = locals_cache[target] = self._local_call(pc, target)
                return op()
            fn, name = vm.helper(v)
            if fn is None:
                raise vm.fault(pc, "unknown helper %d (called through %%r%d)" % (v, d), "helper", program)
            return call(fn, name)
        return callx, True, True

    def _b_exit(self, pc, insn):
        r = self.regs
        ex = self.ex

        def exit_op():
            frames = ex.frames
            if frames:
                nxt, r[6], r[7], r[8], r[9], r[10] = frames.pop()
                return nxt
            return EXITED
        return exit_op, True, False

    # ------------------------------------------------------------------ driving
    def run_main(self):
        self._loop(0)
        return self.regs[0]

    def call_function(self, pc, r1=0, r2=0, r3=0, r4=0, r5=0):
        """Run the subprogram at ``pc`` in a new frame until it exits; returns its r0."""
        return _call_function(self, pc, r1, r2, r3, r4, r5)

    def is_entry(self, pc):
        """True if ``pc`` starts a basic block (a valid call or callback target)."""
        return 0 <= pc < self.n and self.blocks[pc] is not None

    def _loop(self, pc):
        ex = self.ex
        if ex.trace is not None or ex.profile is not None:
            return self._loop_slow(pc)
        blocks = self.blocks
        left = ex.left
        try:
            while pc >= 0:
                b = blocks[pc]
                c = b[0]
                if c > left:
                    raise self.vm.fault(pc, "instruction budget exhausted (%d instructions)"
                                        % (ex.budget or 0), "budget", self.program)
                left -= c
                if b[2]:
                    ex.left = left
                    pc = b[1]()
                    left = ex.left
                else:
                    pc = b[1]()
        except BaseException:
            ex.left = left
            raise
        ex.left = left
        return pc

    def _loop_slow(self, pc):
        """Instruction-at-a-time loop for --trace and --profile (same faults, same budget)."""
        ex = self.ex
        r = self.regs
        blocks = self.blocks
        insns = self.program.insns
        trace = ex.trace
        profile = ex.profile
        while pc >= 0:
            b = blocks[pc]
            if b[0] > ex.left:
                raise self.vm.fault(pc, "instruction budget exhausted (%d instructions)"
                                    % (ex.budget or 0), "budget", self.program)
            ex.left -= b[0]
            nxt = b[4]
            if not b[3]:
                b[1]()
            for ipc, fn in b[3]:
                if profile is not None:
                    profile[ipc] = profile.get(ipc, 0) + 1
                before = list(r) if trace is not None else None
                v = fn()
                if trace is not None:
                    changed = [(i, r[i]) for i in range(isa.NUM_REGS) if r[i] != before[i]]
                    trace.append((ipc, isa.format_insn(insns[ipc], ipc), changed))
                if v is not None:
                    nxt = v
            pc = nxt
        return pc
