"""The abstract effect of one straight-line instruction: register reads and writes, loads and
stores (through memory.py), lddw, legacy packet loads, and ALU on numbers and pointers.
"""

from iotbpf.ebpf import isa
from iotbpf.ebpf import types as ty
from iotbpf.ebpf.ranges import (
    FULL,
    M32,
    M64,
    ZERO_B,
    add_bounds,
    end_bounds,
    s64,
    scalar_alu,
    sext,
    signed_bits,
    sub_bounds,
    unknown_bits,
)
from iotbpf.ebpf.verifier.domain import (
    ARITH_OK,
    CONST_MAP,
    MAX_PTR_OFF,
    NOT_INIT,
    PTR_BUF_OR_NULL,
    PTR_FUNC,
    PTR_MAP_VALUE,
    PTR_MAP_VALUE_OR_NULL,
    PTR_MEM,
    PTR_MEM_END,
    SCALAR,
    Reg,
    describe,
    known,
    map_spec_of,
    scalar,
)


class InsnMixin:
    """Transfer functions of the instructions that are not jumps, calls or exits."""

    def read(self, state, pc, r):
        """Register ``r`` of the innermost frame; reading an uninitialised register is rejected."""
        reg = state.frames[-1].regs[r]
        if reg.t == NOT_INIT:
            self.fail(pc, "r%d is read before it is written (uninitialised register)" % r,
                      "assign r%d first" % r if r > 5 or r == 0 else
                      "assign r%d first (r1-r5 do not survive a call)" % r, state)
        return reg

    def write(self, state, pc, r, reg):
        """Set register ``r``; r10 is read-only."""
        if r == 10:
            self.fail(pc, "r10 (the frame pointer) is read-only", "copy it to another register first",
                      state)
        state.frames[-1].regs[r] = reg

    def new_id(self):
        """A fresh id linking copies of a value (NULL checks, bounds of linked numbers)."""
        self.next_id += 1
        return self.next_id

    def step(self, state, pc, insn, kind):
        """Apply one straight-line instruction to ``state`` (in place)."""
        op = insn.opcode
        if kind == "alu":
            self.do_alu(state, pc, insn)
        elif kind == "end":
            reg = self.read(state, pc, insn.dst)
            if reg.t != SCALAR:
                self.fail(pc, "byte swap of r%d, which is %s" % (insn.dst, describe(reg)),
                          "only numbers can be byte-swapped", state)
            self.write(state, pc, insn.dst, scalar(end_bounds(insn, reg.bounds())))
        elif kind == "lddw":
            self.do_lddw(state, pc, insn)
        elif kind in ("ldx", "ldxs"):
            base = self.read(state, pc, insn.src)
            size = isa.SIZE_BYTES[op & 0x18]
            val = self.mem_access(state, pc, insn.src, base, insn.off, size, "read", None)
            if kind == "ldxs" and size < 8:
                if val.tm == 0:
                    val = known(sext(val.tv, size * 8) & M64)
                elif val.umax >= (1 << (size * 8 - 1)):
                    val = scalar(signed_bits(size * 8))
            self.write(state, pc, insn.dst, val)
        elif kind == "st":
            base = self.read(state, pc, insn.dst)
            size = isa.SIZE_BYTES[op & 0x18]
            self.mem_access(state, pc, insn.dst, base, insn.off, size, "write", known(insn.imm & M64))
        elif kind == "stx":
            base = self.read(state, pc, insn.dst)
            val = self.read(state, pc, insn.src)
            size = isa.SIZE_BYTES[op & 0x18]
            self.mem_access(state, pc, insn.dst, base, insn.off, size, "write", val)
        elif kind == "atomic":
            self.do_atomic(state, pc, insn)
        elif kind == "call":
            if insn.src == isa.BPF_PSEUDO_KFUNC_CALL:
                self.fail(pc, "kernel function calls are not supported", None, state)
            self.do_helper_call(state, pc, insn.imm)
        elif kind == "callx":
            self.read(state, pc, insn.dst)
            self.fail(pc, "call through a register (callx) cannot be verified",
                      "call helpers by number and functions with call local", state)
        else:
            self.fail(pc, "unknown instruction", None, state)

    def do_lddw(self, state, pc, insn):
        """lddw: a constant, a map reference, a map value's address or a function's address."""
        src = insn.src
        if src == 0:
            self.write(state, pc, insn.dst, known(insn.imm))
            return
        if src == isa.BPF_PSEUDO_FUNC:
            self.write(state, pc, insn.dst, Reg(PTR_FUNC, k=pc + 1 + isa.s32(insn.imm)))
            return
        k = isa.s32(insn.imm)
        if not 0 <= k < len(self.maps):
            self.fail(pc, "map index %d does not exist (the program has %d maps)" % (k, len(self.maps)),
                      None, state)
        if src in (isa.BPF_PSEUDO_MAP_FD, isa.BPF_PSEUDO_MAP_IDX):
            self.write(state, pc, insn.dst, Reg(CONST_MAP, k=k))
            return
        spec = map_spec_of(self.maps[k])
        # Direct value access (Linux: map_direct_value_addr) exists only for single-entry array
        # maps (.data/.rodata/.bss and the like); hash, queue, ringbuf... values have no fixed address.
        mtype = getattr(spec, "type", None)
        if mtype != ty.BPF_MAP_TYPE_ARRAY or getattr(spec, "max_entries", 1) != 1:
            self.fail(pc, "lddw map_value on map %s of type %s%s: only a single-entry array map has a "
                      "directly addressable value" % (spec.name, ty.MAP_TYPE_NAMES.get(mtype, mtype),
                                                      "" if mtype != ty.BPF_MAP_TYPE_ARRAY else
                                                      " with %d entries" % spec.max_entries),
                      "use bpf_map_lookup_elem", state)
        off = isa.s32(insn.imm >> 32)
        size = getattr(spec, "value_size", 0)
        if not 0 <= off < size:
            self.fail(pc, "offset %d is outside the %d-byte value of map %s" % (off, size, spec.name),
                      None, state)
        self.write(state, pc, insn.dst, Reg(PTR_MAP_VALUE, off=off, k=k))

    def do_ldabs(self, state, pc, insn):
        """Legacy packet loads (ld_abs/ld_ind): r0 gets an unknown value of the load's width."""
        if insn.opcode & 0xE0 == isa.BPF_IND:
            r = self.read(state, pc, insn.src)
            if r.t != SCALAR:
                self.fail(pc, "packet load index r%d is %s" % (insn.src, describe(r)), None, state)
        size = isa.SIZE_BYTES[insn.opcode & 0x18]
        self.write(state, pc, 0, scalar(unknown_bits(size * 8)))

    def do_alu(self, state, pc, insn):
        """ALU: ranges for numbers; for pointers only adding/subtracting a number, or their difference."""
        op = insn.opcode
        code = op & 0xF0
        is64 = op & 0x07 == isa.BPF_ALU64
        bits = 64 if is64 else 32
        d = insn.dst
        if code == isa.BPF_MOV:
            if op & isa.BPF_X:
                src = self.read(state, pc, insn.src)
            else:
                src = known(insn.imm & M64 if is64 else insn.imm & M32)
            if src.t != SCALAR:
                if is64 and insn.off == 0:
                    self.write(state, pc, d, src)
                    return
                self.fail(pc, "%s of r%d, which is %s, would turn a pointer into a number"
                          % ("32-bit move" if not is64 else "sign-extending move", insn.src, describe(src)),
                          "forbidden pointer arithmetic", state)
            if is64 and insn.off == 0 and op & isa.BPF_X and src.tm != 0:
                if src.id == 0:
                    src = src.with_bounds(src.bounds(), id=self.new_id())
                    state.frames[-1].regs[insn.src] = src
                self.write(state, pc, d, src)
                return
            if not is64 or insn.off:
                b = scalar_alu(isa.BPF_MOV, bits, insn.off, ZERO_B, src.bounds())
                keep = (not is64 and insn.off == 0 and src.umax <= M32) or (is64 and b == src.bounds())
                self.write(state, pc, d, scalar(b, src.rel if keep else None, src.sym if keep else None))
                return
            self.write(state, pc, d, src)
            return
        dreg = self.read(state, pc, d)
        if code == isa.BPF_NEG:
            sreg = known(0)
        elif op & isa.BPF_X:
            sreg = self.read(state, pc, insn.src)
        else:
            sreg = known(insn.imm & M64 if is64 else insn.imm & M32)
        if dreg.t == SCALAR and sreg.t == SCALAR:
            b = scalar_alu(code, bits, insn.off, dreg.bounds(), sreg.bounds())
            rel = sym = None
            if is64 and sreg.tm == 0 and code in (isa.BPF_ADD, isa.BPF_SUB):
                c = s64(sreg.tv) if code == isa.BPF_ADD else -s64(sreg.tv)
                if dreg.sym is not None:
                    sym = dreg.sym + c
                if dreg.rel is not None and b[3] >= 0 and b[2] >= 0 and dreg.smin >= 0:
                    rel = dreg.rel - c
                if dreg.id and b[5] != 0 and -(1 << 32) < dreg.dl + c < (1 << 32):
                    res = scalar(b, rel, sym)
                    res.id = dreg.id
                    res.dl = dreg.dl + c
                    self.write(state, pc, d, res)
                    return
            self.write(state, pc, d, scalar(b, rel, sym))
            return
        # pointer arithmetic
        name = isa.ALU_NAMES.get(code, "?")
        if not is64:
            self.fail(pc, "32-bit %s on a pointer (r%d is %s, r%d is %s)" % (
                name, d, describe(dreg), insn.src, describe(sreg)),
                "forbidden pointer arithmetic: use 64-bit add/sub on pointers", state)
        if code == isa.BPF_SUB and dreg.t != SCALAR and sreg.t != SCALAR:
            self.write(state, pc, d, self.ptr_diff(state, pc, insn, dreg, sreg))
            return
        if code not in (isa.BPF_ADD, isa.BPF_SUB) or (code == isa.BPF_SUB and dreg.t == SCALAR):
            self.fail(pc, "%s on a pointer (r%d is %s%s)" % (
                name, d, describe(dreg), "" if code == isa.BPF_NEG else ", the other operand is " +
                describe(sreg)), "forbidden pointer arithmetic: only adding or subtracting a number "
                "is allowed", state)
        if dreg.t != SCALAR and sreg.t != SCALAR:
            self.fail(pc, "adding two pointers (r%d and r%d)" % (d, insn.src),
                      "forbidden pointer arithmetic", state)
        ptr, num, ptr_reg = (dreg, sreg, d) if dreg.t != SCALAR else (sreg, dreg, insn.src)
        if ptr.t not in ARITH_OK:
            hint = "check it against NULL first" if ptr.t in (PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL) \
                else "forbidden pointer arithmetic"
            self.fail(pc, "arithmetic on r%d, which is %s" % (ptr_reg, describe(ptr)), hint, state)
        self.write(state, pc, d, self.ptr_add(state, pc, ptr, num, code == isa.BPF_SUB))

    def ptr_add(self, state, pc, ptr, num, sub):
        """A pointer plus or minus a number: constant offsets exactly, variable ones as ranges."""
        if num.tm == 0:
            c = s64(num.tv)
            off = ptr.off - c if sub else ptr.off + c
            if not -MAX_PTR_OFF < off < MAX_PTR_OFF:
                self.fail(pc, "pointer offset %d is out of range" % off, "forbidden pointer arithmetic",
                          state)
            r = ptr.with_bounds(ptr.bounds())
            r.off = off
            return r
        if ptr.t == PTR_MEM and not sub and num.sym is not None and num.smin >= 0 and ptr.tm == 0 \
                and ptr.tv == 0:
            return Reg(PTR_MEM_END, off=ptr.off + num.sym)
        nb = (sub_bounds if sub else add_bounds)(ptr.bounds(), num.bounds())
        rel = None
        if ptr.t == PTR_MEM and not sub and ptr.tm == 0 and ptr.tv == 0 and num.rel is not None:
            rel = num.rel
        r = ptr.with_bounds(nb)
        if ptr.t == PTR_MEM:
            r.id = self.new_id()
        r.rel = rel
        return r

    def ptr_diff(self, state, pc, insn, a, b):
        """The difference of two pointers into the same region (a number)."""
        same = a.t == b.t and a.k == b.k and a.t in ARITH_OK
        if a.t == PTR_MEM_END and b.t == PTR_MEM and b.tm == 0 and b.tv == 0:
            return scalar((0, M32, 0, M32, 0, M32), sym=a.off - b.off)
        if not same:
            self.fail(pc, "subtracting pointers into different regions (r%d is %s, r%d is %s)" % (
                insn.dst, describe(a), insn.src, describe(b)), "forbidden pointer arithmetic", state)
        if a.tm == 0 and b.tm == 0:
            return known((a.off + s64(a.tv)) - (b.off + s64(b.tv)))
        return scalar(FULL)
