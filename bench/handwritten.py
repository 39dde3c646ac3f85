"""The standard bench programs (bench/programs/*.s) written as plain, idiomatic Python.

The baseline the compiled engine is measured against (`iotbpf bench compiler`): the same
algorithm and the same 64-bit results, written the way a good Python programmer would --
masks only where 64-bit wrap-around can change the answer, struct for the memory words,
no scratch stack (the eBPF stack round-trips are just register spills). Each function takes
the iteration count (and the 64-byte buffer for mem_loop) and returns what r0 would be.
"""

import struct

M64 = 0xFFFFFFFFFFFFFFFF
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


def arith_loop(n):
    acc, x = 0, 1
    for _ in range(n):
        acc += x
        x = x * 3 & M64
        acc = ((acc ^ x) & 0xFFFFFF) << 1
        x = (x >> 1) + 7
    return acc


def mem_loop(n, buf):
    """``buf``: the 64-byte bytearray after the count; updated in place like the program does."""
    load64, store64, load32 = _U64.unpack_from, _U64.pack_into, _U32.unpack_from
    total = 0
    for i in range(n, 0, -1):
        off = i & 56
        value = (load64(buf, off)[0] + i) & M64
        store64(buf, off, value)
        total += load32(buf, off + 4)[0] + (value & 0xFF)
    return total & M64


def increment(x):
    return x + 1


def square_plus_one(x):
    return increment(x * x)


def call_loop(n):
    total = 0
    for i in range(n, 0, -1):
        total += square_plus_one(i)
    return total & M64
