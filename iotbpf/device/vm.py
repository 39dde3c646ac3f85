"""The device runtime's compact eBPF interpreter (MicroPython): runs programs the host verified and
pre-decoded (three ints per instruction); every access goes through ``Memory.at``, which never
trusts an address. The encoding is in docs/mcu.md ("The image format").
"""

import struct

M64 = 0xFFFFFFFFFFFFFFFF
M32 = 0xFFFFFFFF
STACK = 512
_FMT = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}
_SIZE = (4, 2, 1, 8)  # BPF_W, BPF_H, BPF_B, BPF_DW by the size bits


class Fault(Exception):
    """A program did something the device refuses (bad address, budget, helper misuse)."""

    def __init__(self, pc, message):
        super().__init__("pc %d: %s" % (pc, message))
        self.pc = pc


def s64(v):
    return v - (1 << 64) if v >> 63 else v


def s32(v):
    return v - (1 << 32) if v >> 31 else v


def _sx(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _div(a, b, signed, bits):
    if not b:
        return 0
    if not signed:
        return a // b
    a = s64(a) if bits == 64 else s32(a)
    b = s64(b) if bits == 64 else s32(b)
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def _mod(a, b, signed, bits):
    if not b:
        return a
    if not signed:
        return a % b
    sa = s64(a) if bits == 64 else s32(a)
    sb = s64(b) if bits == 64 else s32(b)
    return sa - sb * _div(a, b, True, bits)


def _alu(c, a, x, off, bits):
    if c == 0x00:
        return a + x
    if c == 0x10:
        return a - x
    if c == 0x20:
        return a * x
    if c == 0x30:
        return _div(a, x, off == 1, bits)
    if c == 0x40:
        return a | x
    if c == 0x50:
        return a & x
    if c == 0x60:
        return a << (x & (bits - 1))
    if c == 0x70:
        return a >> (x & (bits - 1))
    if c == 0x80:
        return -a
    if c == 0x90:
        return _mod(a, x, off == 1, bits)
    if c == 0xA0:
        return a ^ x
    if c == 0xB0:
        return _sx(x, off) if off else x
    if c == 0xC0:
        return (s64(a) if bits == 64 else s32(a)) >> (x & (bits - 1))
    raise ValueError(c)


def _swap(value, bits):
    out = 0
    for _ in range(bits // 8):
        out = (out << 8) | (value & 0xFF)
        value >>= 8
    return out


def _cond(c, a, x, bits):
    if c == 0x10:
        return a == x
    if c == 0x50:
        return a != x
    if c == 0x40:
        return a & x
    if c == 0x20:
        return a > x
    if c == 0x30:
        return a >= x
    if c == 0xA0:
        return a < x
    if c == 0xB0:
        return a <= x
    sa = s64(a) if bits == 64 else s32(a)
    sx = s64(x) if bits == 64 else s32(x)
    if c == 0x60:
        return sa > sx
    if c == 0x70:
        return sa >= sx
    if c == 0xC0:
        return sa < sx
    return sa <= sx  # 0xD0 jsle


class Memory:
    """The regions a program may touch; ``at`` is the one bounds check."""

    def __init__(self):
        self.regions = [None, bytearray(STACK), None]

    def at(self, addr, size):
        rid = addr >> 16
        off = addr & 0xFFFF
        if rid < len(self.regions):
            buf = self.regions[rid]
            if buf is not None and off + size <= len(buf):
                return buf, off
        raise Fault(-1, "bad address 0x%x (%d bytes)" % (addr, size))

    def load(self, addr, size):
        buf, off = self.at(addr, size)
        return struct.unpack_from(_FMT[size], buf, off)[0]

    def store(self, addr, size, value):
        buf, off = self.at(addr, size)
        struct.pack_into(_FMT[size], buf, off, value & ((1 << (8 * size)) - 1))

    def read(self, addr, size):
        buf, off = self.at(addr, size)
        return bytes(buf[off:off + size])

    def write(self, addr, data):
        buf, off = self.at(addr, len(data))
        buf[off:off + len(data)] = data


def run(code, mem, ctx_addr, call, budget, r2=0):
    """Run one program on its context: (r0, instructions executed). ``call(id, regs)`` runs a
    helper. Raises Fault (with the instruction index) on any refused access or over budget."""
    reg = [0] * 11
    reg[1] = ctx_addr
    reg[2] = r2
    reg[10] = (1 << 16) + STACK
    pc = 0
    n = 0
    try:
        while True:
            n += 1
            if n > budget:
                raise Fault(pc // 3, "instruction budget %d exhausted" % budget)
            w = code[pc]
            off = code[pc + 1]
            imm = code[pc + 2]
            pc += 3
            op = w & 0xFF
            d = (w >> 8) & 15
            cls = op & 7
            if cls == 7 or cls == 4:
                c = op & 0xF0
                x = reg[w >> 12] if op & 8 else imm
                if c == 0xD0:
                    a = reg[d]
                    if cls == 4 and not op & 8:
                        reg[d] = a & ((1 << imm) - 1)
                    else:
                        reg[d] = _swap(a, imm)
                elif cls == 7:
                    reg[d] = _alu(c, reg[d], x & M64, off, 64) & M64
                else:
                    reg[d] = _alu(c, reg[d] & M32, x & M32, off, 32) & M32
            elif cls == 5 or cls == 6:
                c = op & 0xF0
                if c == 0x00:
                    pc = off
                elif c == 0x80:
                    reg[0] = call(imm, reg) & M64
                elif c == 0x90:
                    return reg[0], n
                else:
                    a = reg[d]
                    x = reg[w >> 12] if op & 8 else imm
                    if cls == 6:
                        taken = _cond(c, a & M32, x & M32, 32)
                    else:
                        taken = _cond(c, a, x & M64, 64)
                    if taken:
                        pc = off
            elif cls == 1:
                size = _SIZE[(op >> 3) & 3]
                v = mem.load((reg[w >> 12] + off) & M64, size)
                reg[d] = _sx(v, size * 8) & M64 if op & 0xE0 == 0x80 else v
            elif cls == 3:
                size = _SIZE[(op >> 3) & 3]
                addr = (reg[d] + off) & M64
                if op & 0xE0 == 0xC0:
                    _atomic(mem, addr, size, imm, reg, w >> 12)
                else:
                    mem.store(addr, size, reg[w >> 12])
            elif cls == 2:
                mem.store((reg[d] + off) & M64, _SIZE[(op >> 3) & 3], imm)
            else:  # lddw (class 0): the linker resolved the value
                reg[d] = imm
    except Fault as exc:
        if exc.pc < 0:  # raised by Memory or a helper: give it this instruction's index
            exc = Fault(pc // 3 - 1, str(exc).split(": ", 1)[1])
        exc.insns = n  # the energy ledger charges a faulted run too
        raise exc from None


def _atomic(mem, addr, size, imm, reg, s):
    mask = (1 << (8 * size)) - 1
    old = mem.load(addr, size)
    if imm == 0xF1:  # cmpxchg
        if old == reg[0] & mask:
            mem.store(addr, size, reg[s])
        reg[0] = old
        return
    v = reg[s] & mask
    c = imm & 0xF0
    new = v if imm == 0xE1 else old + v if c == 0 else old | v if c == 0x40 else old & v if c == 0x50 else old ^ v
    mem.store(addr, size, new)
    if imm & 1:
        reg[s] = old
