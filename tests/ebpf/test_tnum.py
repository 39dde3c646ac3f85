"""Tracked numbers: every abstract operation contains every concrete result (soundness)."""

from hypothesis import given
from hypothesis import strategies as st

from iotbpf.ebpf import tnum

U64 = (1 << 64) - 1


@st.composite
def tnum_and_member(draw):
    mask = draw(st.integers(0, U64) | st.sampled_from([0, 0xFF, 0xF0F0, U64, 1 << 63]))
    value = draw(st.integers(0, U64)) & ~mask
    bits = draw(st.integers(0, U64)) & mask
    return (value, mask), value | bits


def s64(x):
    return x - (1 << 64) if x >> 63 else x


@given(tnum_and_member(), tnum_and_member())
def test_binary_operations_contain_every_concrete_result(a, b):
    (ta, x), (tb, y) = a, b
    cases = [
        (tnum.add, (x + y) & U64),
        (tnum.sub, (x - y) & U64),
        (tnum.mul, (x * y) & U64),
        (tnum.tand, x & y),
        (tnum.tor, x | y),
        (tnum.txor, x ^ y),
        (tnum.union, x),
    ]
    for op, concrete in cases:
        assert tnum.member(op(ta, tb), concrete), op.__name__
    assert tnum.member(tnum.union(ta, tb), y)
    assert tnum.contains(tnum.union(ta, tb), ta) and tnum.contains(tnum.union(ta, tb), tb)


@given(tnum_and_member(), st.integers(0, 63))
def test_shifts_contain_every_concrete_result(a, n):
    t, x = a
    assert tnum.member(tnum.lshift(t, n), (x << n) & U64)
    assert tnum.member(tnum.rshift(t, n), x >> n)
    assert tnum.member(tnum.arshift(t, n), (s64(x) >> n) & U64)
    x32 = x & 0xFFFFFFFF
    s32 = x32 - (1 << 32) if x32 >> 31 else x32
    assert tnum.member(tnum.arshift(tnum.subreg(t), n % 32, 32), (s32 >> (n % 32)) & 0xFFFFFFFF)
    assert tnum.member(tnum.neg(t), (-x) & U64)
    assert tnum.member(tnum.cast(t, 2), x & 0xFFFF)


@given(st.integers(0, U64), st.integers(0, U64), st.integers(0, U64))
def test_range_contains_its_interval(lo, hi, x):
    lo, hi = min(lo, hi), max(lo, hi)
    t = tnum.trange(lo, hi)
    assert tnum.member(t, lo) and tnum.member(t, hi)
    if lo <= x <= hi:
        assert tnum.member(t, x)
    assert tnum.umin(t) <= lo and tnum.umax(t) >= hi


@given(tnum_and_member())
def test_signed_and_unsigned_bounds_hold_for_members(a):
    t, x = a
    assert tnum.umin(t) <= x <= tnum.umax(t)
    assert tnum.smin(t) <= s64(x) <= tnum.smax(t)


def test_known_examples():
    assert tnum.trange(0, 7) == (0, 7)
    assert tnum.trange(8, 8) == (8, 0)
    assert tnum.add(tnum.const(3), tnum.const(4)) == (7, 0)
    assert tnum.tand(tnum.UNKNOWN, tnum.const(0xFF)) == (0, 0xFF)
    assert tnum.is_aligned(tnum.tand(tnum.UNKNOWN, tnum.const(~7 & U64)), 8)
    assert tnum.contains(tnum.UNKNOWN, (5, 0)) and not tnum.contains((5, 0), tnum.UNKNOWN)
    assert tnum.intersect((0, 0xFF), (0x10, 0xF)) == (0x10, 0xF)
