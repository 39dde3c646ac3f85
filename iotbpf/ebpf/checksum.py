"""FNV-1a, 32 bits: the checksum of bundles and pinned maps and the bloom filter's hash, computed on
16-bit halves so every intermediate stays a small int on 32-bit MicroPython ports."""


def fnv1a32(data):
    """FNV-1a, 32 bits, computed on 16-bit halves so every intermediate stays a small int on
    32-bit MicroPython ports (no bignum per byte)."""
    hh = 0x811C
    hl = 0x9DC5
    for b in data:
        hl ^= b
        lo = hl * 0x193
        hh = (hh * 0x193 + hl * 0x100 + (lo >> 16)) & 0xFFFF
        hl = lo & 0xFFFF
    return (hh << 16) | hl
