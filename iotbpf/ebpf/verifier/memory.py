"""Memory access checks: the context by its layout, the stack byte by byte (with spilled
registers), map values, ring-buffer records and the input buffer by their bounds; atomics.
"""

from iotbpf.ebpf import isa
from iotbpf.ebpf.ranges import (
    FULL,
    M32,
    unknown_bits,
)
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
    REGION_NAMES,
    SCALAR,
    STACK,
    STORE_PLACES,
    describe,
    known,
    map_spec_of,
    range_text,
    scalar,
)
from iotbpf.ebpf.verifier.state import (
    INVALID,
    MISC,
    SPILL,
    ZERO,
)


class MemoryMixin:
    """Prove each load, store and atomic in bounds and allowed (Linux's check_mem_access)."""

    def mem_access(self, state, pc, regno, ptr, off, size, mode, value):
        """Check one access of ``size`` bytes at ``ptr + off``; returns the loaded value for reads."""
        t = ptr.t
        if t == SCALAR:
            if ptr.tm == 0 and ptr.tv == 0:
                self.fail(pc, "r%d is NULL: dereferencing a NULL pointer" % regno, None, state)
            self.fail(pc, "r%d is %s, not a pointer" % (regno, describe(ptr)),
                      "only pointers (context, stack, map values, the input) can be dereferenced", state)
        if t in (PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL):
            what = "map lookup result" if t == PTR_MAP_VALUE_OR_NULL else "ring buffer reservation"
            self.fail(pc, "r%d may be NULL (%s not checked)" % (regno, what),
                      "check it before dereferencing: if (!p) return 0;", state)
        if t in (CONST_MAP, PTR_FUNC, PTR_MEM_END, CONST_MAP_OR_NULL):
            self.fail(pc, "r%d is %s, which cannot be dereferenced" % (regno, describe(ptr)), None, state)
        if mode != "read" and value is not None and value.t not in (SCALAR,) and t != PTR_STACK:
            self.fail(pc, "storing a pointer (%s) into %s would leak it" % (describe(value), STORE_PLACES[t]),
                      "only numbers may be stored outside the stack", state)
        region = REGION_NAMES.get(t)
        if region is not None:
            s = self.access.get(pc)
            if s is None:
                s = self.access[pc] = set()
            s.add(region)
        lo = ptr.off + off + ptr.smin
        hi = ptr.off + off + ptr.smax + size
        var = not (ptr.tm == 0)
        if t == PTR_STACK:
            return self.stack_access(state, pc, regno, ptr, off, size, mode, value, lo, hi, var)
        if t == PTR_CTX:
            return self.ctx_access(state, pc, regno, ptr, off, size, mode)
        if t == PTR_MAP_VALUE:
            spec = map_spec_of(self.maps[ptr.k])
            limit = spec.value_size
            what = "the %d-byte value of map %s" % (limit, spec.name)
            if mode != "read" and getattr(spec, "readonly", False):
                self.fail(pc, "map %s is read-only" % spec.name, "it holds constants (.rodata)", state)
        elif t == PTR_BUF:
            limit = ptr.k
            what = "the %d-byte record" % limit
        else:  # PTR_MEM
            limit = state.mem_min
            if ptr.rel is not None and var and ptr.off + off + size <= ptr.rel:
                limit = max(limit, hi)
            what = "the input buffer (%d bytes proven)" % state.mem_min if self.mem_size is None else \
                "the %d-byte input buffer" % self.mem_size
        if lo < 0 or hi > limit:
            if t == PTR_MEM and self.mem_size is None and lo >= 0:
                self.fail(pc, "%s %d bytes at input offset %s may go past the end of the input" % (
                    "reading" if mode == "read" else "writing", size, range_text(lo, hi - size)),
                    "compare with the length in r2 first (e.g. if (len < %d) return 0;) or declare "
                    "--mem-size" % max(hi, 1), state)
            if var and (ptr.smax - ptr.smin) > (1 << 32):
                self.fail(pc, "r%d has an unbounded variable offset into %s" % (regno, what),
                          "bound the index with a comparison before adding it", state)
            self.fail(pc, "out-of-bounds access: %d bytes at offset %s of %s" % (
                size, range_text(lo, hi - size), what), "check the offset against the size", state)
        if t == PTR_MAP_VALUE and self.insns[pc].opcode != isa.CALL:
            for lock in spin_lock_offsets(spec):
                if lo < lock + 4 and lock < hi:
                    self.fail(pc, "direct access to the struct bpf_spin_lock at offset %d of %s"
                              % (lock, what), "only bpf_spin_lock/bpf_spin_unlock may touch it", state)
        if mode == "read":
            return scalar(unknown_bits(size * 8))
        return None

    def ctx_access(self, state, pc, regno, ptr, off, size, mode):
        """A context access must hit one field of the hook's layout, whole if written."""
        if ptr.tm != 0 or ptr.tv != 0:
            self.fail(pc, "variable offset into the context (r%d)" % regno,
                      "context fields must be accessed at constant offsets", state)
        if mode == "atomic":
            self.fail(pc, "atomic operation on the context", None, state)
        o = ptr.off + off
        layout = self.hook
        f = layout.field_at(o, size) if o >= 0 else None
        if f is None:
            names = ", ".join("%s@%d/%d" % (x.name, x.offset, x.size) for x in layout.fields)
            self.fail(pc, "invalid context access: offset %d size %d is not inside a field of the %s context"
                      % (o, size, layout.name), "fields: " + names, state)
        if mode == "write":
            if not f.writable:
                self.fail(pc, "field %s of the %s context is read-only" % (f.name, layout.name), None, state)
            if f.offset != o or f.size != size:
                self.fail(pc, "write to part of field %s (offset %d size %d; the field is %d bytes at %d)" % (
                    f.name, o, size, f.size, f.offset), "write the whole field", state)
            return None
        return scalar(unknown_bits(size * 8))

    def stack_access(self, state, pc, regno, ptr, off, size, mode, value, lo, hi, var):
        """A stack access: in bounds, initialised if read, spilled registers kept whole."""
        if var and (ptr.smax - ptr.smin) > STACK:
            self.fail(pc, "r%d has an unbounded variable offset into the stack" % regno,
                      "bound the index with a comparison before adding it", state)
        if lo < -STACK or hi > 0:
            self.fail(pc, "stack access out of bounds: %d byte(s) at fp%s (the stack is fp-512 to fp-1)" % (
                size, range_text(lo, hi - size, signed=True)),
                "each function has 512 bytes of stack" if lo < -STACK else
                "stack offsets must be negative", state)
        frame = state.frames[ptr.k]
        func = frame.func
        if -lo > self.max_stack.get(func, 0):
            self.max_stack[func] = -lo
        stack = frame.stack
        spills = frame.spills
        a = lo + STACK
        b = hi + STACK
        if mode == "read" or mode == "atomic":
            if not var and size == 8 and a % 8 == 0 and stack[a] == SPILL:
                reg = spills[a]
                if mode == "read":
                    return reg
            zeros = True
            for i in range(a, b):
                kind = stack[i]
                if kind == INVALID:
                    self.fail(pc, "reads uninitialised stack at fp%d" % (i - STACK),
                              "initialise the variable before using it", state)
                if kind != ZERO:
                    zeros = False
                if kind == SPILL and mode == "atomic" and spills[i & ~7].t != SCALAR:
                    self.fail(pc, "atomic operation on a saved pointer at fp%d" % ((i & ~7) - STACK), None,
                              state)
                if kind == SPILL and mode == "read" and spills[i & ~7].t != SCALAR:
                    # Linux: "invalid size of register fill" (even for root): part of a saved
                    # pointer read as a number would leak its address.
                    self.fail(pc, "invalid size of register fill: %d-byte read of the %s saved at fp%d"
                              % (size, describe(spills[i & ~7]), (i & ~7) - STACK),
                              "read a saved pointer back whole (8 bytes, same offset)", state)
            if mode == "read":
                if zeros:
                    return known(0)
                if not var and stack[a] == SPILL and (a & ~7) == ((b - 1) & ~7):
                    sp = spills[a & ~7]
                    if sp.t == SCALAR and sp.tm == 0:
                        return known((sp.tv >> ((a & 7) * 8)) & ((1 << (size * 8)) - 1))
                return scalar(unknown_bits(size * 8))
            value = scalar(FULL)
        # write (or atomic update)
        if var:
            if value.t != SCALAR:
                self.fail(pc, "storing a pointer at a variable stack offset", "forbidden", state)
            zero = value.tm == 0 and value.tv == 0
            for i in range(a, b):
                kind = stack[i]
                if kind == SPILL:
                    self._drop_spill(stack, spills, i & ~7)
                    kind = MISC
                if kind == ZERO and not zero:
                    stack[i] = MISC
            return None
        if value is not None and value.t != SCALAR and not (size == 8 and a % 8 == 0):
            # Only a whole, aligned 8-byte slot can hold a pointer; the bytes of a narrower or
            # misaligned store would read back as a number, leaking part of the address.
            self.fail(pc, "storing %s as %d byte(s) at fp%d: a pointer is saved whole, in an aligned "
                      "8-byte slot" % (describe(value), size, lo), "save it with stxdw at a multiple of 8",
                      state)
        for key in range(a & ~7, b, 8):
            if key in spills and stack[key] == SPILL:
                self._drop_spill(stack, spills, key)
        if size == 8 and a % 8 == 0 and mode == "write":
            spills[a] = value
            for i in range(a, b):
                stack[i] = SPILL
            return None
        if value.t != SCALAR:  # part of an address would be readable back as a number (Linux refuses too)
            self.fail(pc, "storing %d byte(s) of a pointer (%s) at fp%d would leak part of it" % (
                size, describe(value), lo), "save pointers whole: 8 bytes at an 8-byte aligned offset", state)
        kind = ZERO if (value.t == SCALAR and value.tm == 0 and value.tv == 0 and mode == "write") else MISC
        for i in range(a, b):
            stack[i] = kind
        return None

    def _drop_spill(self, stack, spills, key):
        """Forget the register saved at ``key`` (a partial overwrite); its bytes stay unreadable if a pointer."""
        # The bytes of a saved pointer that a partial write leaves are unreadable (not numbers):
        # reading them would leak part of the address.
        rest = MISC if spills.pop(key).t == SCALAR else INVALID
        for j in range(key, key + 8):
            if stack[j] == SPILL:
                stack[j] = rest

    def do_atomic(self, state, pc, insn):
        """Atomic read-modify-write: numbers only, on the stack or memory that allows it."""
        op = insn.opcode
        size = isa.SIZE_BYTES[op & 0x18]
        base = self.read(state, pc, insn.dst)
        src = self.read(state, pc, insn.src)
        code = insn.imm & M32
        if src.t != SCALAR:
            self.fail(pc, "r%d is %s: atomic operations take numbers" % (insn.src, describe(src)),
                      "storing pointers this way would leak them", state)
        if code == isa.BPF_CMPXCHG:
            r0 = self.read(state, pc, 0)
            if r0.t != SCALAR:
                self.fail(pc, "r0 is %s: cmpxchg compares numbers" % describe(r0), None, state)
        if base.t not in (PTR_STACK, PTR_MAP_VALUE, PTR_MEM, PTR_BUF):
            if base.t in (SCALAR, PTR_MAP_VALUE_OR_NULL, PTR_BUF_OR_NULL, NOT_INIT):
                self.mem_access(state, pc, insn.dst, base, insn.off, size, "atomic", src)
            self.fail(pc, "atomic operation on %s" % describe(base),
                      "atomics work on the stack and map values", state)
        self.mem_access(state, pc, insn.dst, base, insn.off, size, "atomic", src)
        result = scalar(unknown_bits(size * 8))
        if code == isa.BPF_CMPXCHG:
            self.write(state, pc, 0, result)
        elif code & isa.BPF_FETCH:
            self.write(state, pc, insn.src, result)


def spin_lock_offsets(spec):
    """Offsets of the top-level ``struct bpf_spin_lock`` members of a map's value type."""
    desc = getattr(spec, "value_type", None) or {}
    return [m.get("offset", 0) for m in desc.get("members", ())
            if (m.get("type") or {}).get("name") == "bpf_spin_lock"]
