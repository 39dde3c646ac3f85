"""memory.py: tagged pointers, bounds and permission checks, map handles."""

import pytest

from iotbpf.ebpf.memory import MAP_HANDLE_BASE, Memory, MemoryFault


def test_regions_are_tagged_with_their_id_in_the_high_word():
    m = Memory()
    a = m.add_region(bytearray(8), "a")
    b = m.add_region(bytearray(8), "b")
    assert a >> 32 >= 1 and b >> 32 == (a >> 32) + 1
    assert a & 0xFFFFFFFF == 0
    assert m.region_of(b + 3) == ("b", b, 8, True)
    assert m.region_of(0x10) is None


def test_load_and_store_are_little_endian_and_may_be_misaligned():
    m = Memory()
    buf = bytearray(16)
    base = m.add_region(buf, "mem")
    m.store(base + 3, 4, 0x11223344)
    assert buf[3:7] == bytes([0x44, 0x33, 0x22, 0x11])
    assert m.load(base + 3, 2) == 0x3344
    m.store(base + 8, 8, -1)
    assert m.load(base + 8, 8) == 0xFFFFFFFFFFFFFFFF
    m.write_bytes(base, b"xy")
    assert m.read_bytes(base, 3) == b"xy\x00"


def test_out_of_bounds_null_and_unknown_addresses_fault_with_the_address():
    m = Memory()
    base = m.add_region(bytearray(8), "mem")
    for addr, size in ((base + 5, 4), (base + 8, 1), (0, 1), (0x10, 8), (base + (1 << 32), 1)):
        with pytest.raises(MemoryFault) as info:
            m.load(addr, size)
        assert info.value.kind == "oob" and info.value.addr == addr
    with pytest.raises(MemoryFault) as info:
        m.load(base + 6, 4)
    assert "mem+6" in str(info.value) and "8 bytes" in str(info.value)
    assert "NULL" in str(pytest.raises(MemoryFault, m.load, 0, 4).value)


def test_read_only_regions_refuse_writes():
    m = Memory()
    base = m.add_region(b"abcd", "rodata")
    assert m.load(base, 1) == ord("a")
    with pytest.raises(MemoryFault) as info:
        m.store(base, 1, 0)
    assert info.value.kind == "readonly" and "read-only" in str(info.value)
    ro = m.add_region(bytearray(4), "ctx", writable=False)
    with pytest.raises(MemoryFault):
        m.write_bytes(ro, b"x")


def test_removed_regions_are_gone():
    m = Memory()
    base = m.add_region(bytearray(4), "tmp")
    m.remove_region(base)
    with pytest.raises(MemoryFault):
        m.load(base, 1)


class FakeMap:
    class spec:
        name = "counts"
        value_size = 8

    def __init__(self):
        self.values = bytearray(16)


def test_map_handles_round_trip_and_are_not_pointers():
    m = Memory()
    a, b = FakeMap(), FakeMap()
    ha, hb = m.map_handle(a), m.map_handle(b)
    assert ha != hb and m.map_handle(a) == ha
    assert ha >> 32 >= MAP_HANDLE_BASE
    assert m.map_from_handle(ha) is a and m.map_from_handle(hb) is b
    assert m.map_from_handle(ha + 1) is None and m.map_from_handle(12) is None
    with pytest.raises(MemoryFault) as info:
        m.load(ha, 8)
    assert "map handle" in str(info.value)


def test_map_value_region_follows_storage_that_grows_in_place():
    m = Memory()
    fm = FakeMap()
    base = m.map_values_base(fm)
    with pytest.raises(MemoryFault):
        m.load(base + 16, 8)
    fm.values.extend(bytes(8))
    assert m.map_values_base(fm) == base
    assert m.load(base + 16, 8) == 0
