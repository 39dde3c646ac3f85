"""Map semantics against Linux's documented behaviour: flags, errno values, full maps, LRU
order, LPM prefixes, queue/stack order, ring buffer wrap-around, bloom filters, budgets."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotbpf.ebpf import types as T
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.maps import ArrayMap, HashMap, MapBudget, create_map, create_maps
from iotbpf.ebpf.maps.lru import LruHashMap
from iotbpf.ebpf.maps.ringbuf import RingBufMap


def u32(x):
    return struct.pack("<I", x)


def u64(x):
    return struct.pack("<Q", x)


def spec(t, ks, vs, n, flags=0, **kw):
    return T.MapSpec("m", t, ks, vs, n, flags, **kw)


def hash_map(n=4, t=T.BPF_MAP_TYPE_HASH):
    return create_map(spec(t, 4, 8, n))


# ------------------------------------------------------------------ hash
def test_hash_update_flags_follow_linux():
    m = hash_map()
    assert m.update(u32(1), u64(10), T.BPF_EXIST) == -T.ENOENT
    assert m.update(u32(1), u64(10), T.BPF_NOEXIST) == 0
    assert m.update(u32(1), u64(11), T.BPF_NOEXIST) == -T.EEXIST
    assert m.update(u32(1), u64(12), T.BPF_EXIST) == 0
    assert m.lookup(u32(1)) == u64(12)
    assert m.update(u32(1), u64(13), 3) == -T.EINVAL
    assert m.update(u32(1), u64(13), T.BPF_F_LOCK) == -T.EINVAL  # no spin lock in the value


def test_hash_full_map_refuses_new_keys_but_updates_existing():
    m = hash_map(2)
    assert m.update(u32(1), u64(1)) == 0
    assert m.update(u32(2), u64(2)) == 0
    assert m.update(u32(3), u64(3)) == -T.E2BIG
    assert m.update(u32(2), u64(22)) == 0
    assert m.delete(u32(1)) == 0
    assert m.update(u32(3), u64(3)) == 0
    assert sorted(m.keys()) == [u32(2), u32(3)]


def test_hash_delete_missing_is_enoent_and_lookup_missing_is_none():
    m = hash_map()
    assert m.delete(u32(9)) == -T.ENOENT
    assert m.lookup(u32(9)) is None


def test_hash_get_next_key_walks_all_and_restarts_from_a_missing_key():
    m = hash_map(8)
    for k in (5, 1, 7):
        m.update(u32(k), u64(k))
    assert m.keys() == [u32(5), u32(1), u32(7)]
    assert m.get_next_key(u32(99)) == u32(5)
    assert m.get_next_key(u32(7)) is None


def test_hash_values_live_in_one_slab_and_slots_are_reused():
    m = hash_map(8)
    m.update(u32(1), u64(1))
    m.update(u32(2), u64(2))
    slot = m.lookup_slot(u32(2))
    assert m.values[slot * 8:slot * 8 + 8] == u64(2)
    m.values[slot * 8] = 42  # a program writing through its pointer
    assert m.lookup(u32(2)) == u64(42)
    m.delete(u32(1))
    m.update(u32(3), u64(3))
    assert len(m.values) <= 8 * 8


@given(st.lists(st.tuples(st.sampled_from(["update", "delete"]), st.integers(0, 6),
                          st.integers(0, 2), st.integers(0, 255)), max_size=60))
def test_hash_matches_a_model(ops):
    m = hash_map(4)
    model = {}
    for op, k, flags, v in ops:
        key = u32(k)
        if op == "delete":
            want = 0 if key in model else -T.ENOENT
            model.pop(key, None)
            assert m.delete(key) == want
            continue
        if key in model:
            want = -T.EEXIST if flags == T.BPF_NOEXIST else 0
        elif flags == T.BPF_EXIST:
            want = -T.ENOENT
        elif len(model) >= 4:
            want = -T.E2BIG
        else:
            want = 0
        if want == 0:
            model[key] = u64(v)
        assert m.update(key, u64(v), flags) == want
    assert dict(m.items()) == model


# ------------------------------------------------------------------ array
def test_array_elements_always_exist_and_cannot_be_deleted():
    m = create_map(spec(T.BPF_MAP_TYPE_ARRAY, 4, 4, 3))
    assert m.lookup(u32(2)) == bytes(4)
    assert m.lookup(u32(3)) is None
    assert m.update(u32(3), u32(1)) == -T.E2BIG
    assert m.update(u32(0), u32(1), T.BPF_NOEXIST) == -T.EEXIST
    assert m.update(u32(0), u32(7), T.BPF_EXIST) == 0
    assert m.delete(u32(0)) == -T.EINVAL
    assert m.keys() == [u32(0), u32(1), u32(2)]
    assert len(m) == 3


def test_array_initial_data_and_percpu_array_behaves_as_one_cpu():
    m = create_map(spec(T.BPF_MAP_TYPE_ARRAY, 4, 8, 1, data=b"\x01\x02"))
    assert m.lookup(u32(0)) == b"\x01\x02" + bytes(6)
    p = create_map(spec(T.BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 2))
    assert p.update(u32(1), u64(5)) == 0 and p.lookup(u32(1)) == u64(5)


def test_rodata_map_is_readonly():
    m = create_map(spec(T.BPF_MAP_TYPE_ARRAY, 4, 4, 1, T.BPF_F_RDONLY_PROG))
    assert m.readonly


def test_huge_array_is_not_allocated_until_used():
    m = create_map(spec(T.BPF_MAP_TYPE_ARRAY, 4, 8, 1 << 20))
    assert len(m.values) == 0
    assert m.update(u32(3), u64(1)) == 0
    assert len(m.values) == 32
    assert m.lookup(u32((1 << 20) - 1)) == bytes(8)  # inspecting does not allocate
    assert len(m.values) == 32
    assert m.lookup_slot(u32((1 << 20) - 1)) == (1 << 20) - 1  # a program's pointer does
    assert len(m.values) == 8 << 20
    assert m.used_items() == [(u32(3), struct.pack("<Q", 1))]


# ------------------------------------------------------------------ LRU
def test_lru_evicts_the_least_recently_used_key():
    m = create_map(spec(T.BPF_MAP_TYPE_LRU_HASH, 4, 8, 3))
    for k in (1, 2, 3):
        assert m.update(u32(k), u64(k)) == 0
    assert m.lookup_slot(u32(1)) is not None  # a program's lookup makes 1 recent
    assert m.update(u32(4), u64(4)) == 0  # evicts 2
    assert sorted(m.keys()) == [u32(1), u32(3), u32(4)]
    assert m.lru_order() == [u32(3), u32(1), u32(4)]
    m.update(u32(3), u64(33))  # an update is a use too
    assert m.update(u32(5), u64(5), T.BPF_NOEXIST) == 0  # evicts 1
    assert sorted(m.keys()) == [u32(3), u32(4), u32(5)]


def test_lru_python_lookup_does_not_change_order_and_flags_still_apply():
    m = create_map(spec(T.BPF_MAP_TYPE_LRU_HASH, 4, 8, 2))
    m.update(u32(1), u64(1))
    m.update(u32(2), u64(2))
    m.lookup(u32(1))
    assert m.update(u32(3), u64(3)) == 0
    assert m.lookup(u32(1)) is None
    assert m.update(u32(2), u64(0), T.BPF_NOEXIST) == -T.EEXIST
    assert m.update(u32(9), u64(0), T.BPF_EXIST) == -T.ENOENT
    assert m.delete(u32(2)) == 0 and m.lru_order() == [u32(3)]


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 8)), max_size=80))
def test_lru_matches_a_true_lru_model(ops):
    m = create_map(spec(T.BPF_MAP_TYPE_LRU_HASH, 4, 8, 4))
    order = []  # least recent first
    for is_lookup, k in ops:
        key = u32(k)
        if is_lookup:
            found = m.lookup_slot(key) is not None
            assert found == (key in order)
            if found:
                order.remove(key)
                order.append(key)
        else:
            assert m.update(key, u64(k)) == 0
            if key in order:
                order.remove(key)
            elif len(order) == 4:
                order.pop(0)
            order.append(key)
        assert m.lru_order() == order


# ------------------------------------------------------------------ LPM trie
def lpm_key(plen, a, b, c, d):
    return u32(plen) + bytes([a, b, c, d])


def lpm():
    return create_map(spec(T.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 16, T.BPF_F_NO_PREALLOC))


def test_lpm_longest_prefix_wins():
    m = lpm()
    assert m.update(lpm_key(8, 10, 0, 0, 0), u32(8)) == 0
    assert m.update(lpm_key(16, 10, 1, 0, 0), u32(16)) == 0
    assert m.update(lpm_key(24, 10, 1, 2, 0), u32(24)) == 0
    assert m.update(lpm_key(0, 0, 0, 0, 0), u32(0)) == 0
    assert m.lookup(lpm_key(32, 10, 1, 2, 3)) == u32(24)
    assert m.lookup(lpm_key(32, 10, 1, 3, 3)) == u32(16)
    assert m.lookup(lpm_key(32, 10, 9, 9, 9)) == u32(8)
    assert m.lookup(lpm_key(32, 11, 0, 0, 0)) == u32(0)
    assert m.lookup(lpm_key(20, 10, 1, 2, 3)) == u32(16)  # key's prefixlen bounds the match


def test_lpm_prefixes_compare_bits_not_bytes():
    m = lpm()
    m.update(lpm_key(9, 192, 128, 0, 0), u32(9))
    assert m.lookup(lpm_key(32, 192, 200, 1, 1)) == u32(9)
    assert m.lookup(lpm_key(32, 192, 100, 1, 1)) is None
    # bits beyond the prefix do not make a different entry
    assert m.update(lpm_key(9, 192, 255, 7, 7), u32(99), T.BPF_NOEXIST) == -T.EEXIST


def test_lpm_errors_follow_linux():
    m = create_map(spec(T.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 1, T.BPF_F_NO_PREALLOC))
    assert m.update(lpm_key(33, 1, 2, 3, 4), u32(0)) == -T.EINVAL
    assert m.update(lpm_key(8, 1, 0, 0, 0), u32(0), T.BPF_EXIST) == -T.ENOENT
    assert m.update(lpm_key(8, 1, 0, 0, 0), u32(1)) == 0
    assert m.update(lpm_key(16, 1, 1, 0, 0), u32(2)) == -T.ENOSPC
    assert m.delete(lpm_key(16, 1, 0, 0, 0)) == -T.ENOENT  # delete needs the exact prefix
    assert m.delete(lpm_key(8, 1, 0, 0, 0)) == 0
    with pytest.raises(LoadError, match="BPF_F_NO_PREALLOC"):
        create_map(spec(T.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 4))


@given(st.lists(st.tuples(st.integers(0, 32), st.integers(0, 0xFFFFFFFF)), max_size=12),
       st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=12))
def test_lpm_matches_brute_force(prefixes, addrs):
    m = create_map(spec(T.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 64, T.BPF_F_NO_PREALLOC))
    table = {}
    for i, (plen, net) in enumerate(prefixes):
        mask = ((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF) if plen else 0
        table[(plen, net & mask)] = i
        m.update(u32(plen) + struct.pack(">I", net), u32(i))
    for addr in addrs:
        best = None
        for (plen, net), i in table.items():
            mask = ((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF) if plen else 0
            if addr & mask == net and (best is None or plen > best[0]):
                best = (plen, i)
        got = m.lookup(u32(32) + struct.pack(">I", addr))
        assert got == (None if best is None else u32(best[1]))


# ------------------------------------------------------------------ queue / stack / bloom
def test_queue_is_fifo_and_stack_is_lifo():
    q = create_map(spec(T.BPF_MAP_TYPE_QUEUE, 0, 4, 3))
    s = create_map(spec(T.BPF_MAP_TYPE_STACK, 0, 4, 3))
    for m in (q, s):
        for v in (1, 2, 3):
            assert m.push(u32(v)) == 0
        assert m.push(u32(4)) == -T.E2BIG
    assert [q.pop() for _ in range(3)] == [u32(1), u32(2), u32(3)]
    assert s.peek() == u32(3)
    assert [s.pop() for _ in range(3)] == [u32(3), u32(2), u32(1)]
    assert q.pop() == -T.ENOENT and s.peek() == -T.ENOENT


def test_queue_push_with_exist_overwrites_oldest_and_bad_flags_are_einval():
    q = create_map(spec(T.BPF_MAP_TYPE_QUEUE, 0, 4, 2))
    q.push(u32(1))
    q.push(u32(2))
    assert q.push(u32(3), T.BPF_EXIST) == 0
    assert [q.pop(), q.pop()] == [u32(2), u32(3)]
    assert q.push(u32(1), T.BPF_NOEXIST) == -T.EINVAL
    s = create_map(spec(T.BPF_MAP_TYPE_STACK, 0, 4, 2))
    s.push(u32(1))
    s.push(u32(2))
    assert s.push(u32(3), T.BPF_EXIST) == 0  # drops the oldest (1), as Linux does
    assert [s.pop(), s.pop()] == [u32(3), u32(2)]


def test_bloom_filter_has_no_false_negatives_and_few_false_positives():
    m = create_map(spec(T.BPF_MAP_TYPE_BLOOM_FILTER, 0, 4, 100))
    for v in range(100):
        assert m.push(u32(v)) == 0
    assert all(m.peek(u32(v)) == 0 for v in range(100))
    false_pos = sum(1 for v in range(1000, 3000) if m.peek(u32(v)) == 0)
    assert false_pos < 200
    assert m.push(u32(1), T.BPF_EXIST) == -T.EINVAL
    assert m.pop() == -T.EOPNOTSUPP


# ------------------------------------------------------------------ ring buffer
def test_ringbuf_records_wrap_around_the_end():
    rb = create_map(spec(T.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096))
    assert isinstance(rb, RingBufMap)
    payload = bytes(range(256)) * 4  # 1024 bytes -> 1032-byte records
    got = []
    for i in range(10):  # 10 KiB through a 4 KiB ring: wraps more than once
        record = bytes([i]) + payload[1:]
        assert rb.output(record) == 0
        got.extend(rb.consume())
        assert got[-1] == record
    assert len(got) == 10
    assert rb.query(T.BPF_RB_PROD_POS) == 10 * 1032
    assert rb.query(T.BPF_RB_CONS_POS) == 10 * 1032


def test_ringbuf_full_busy_and_discarded_records():
    rb = create_map(spec(T.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096))
    assert rb.output(bytes(4000)) == 0
    assert rb.output(bytes(100)) == -T.EAGAIN
    assert rb.query(T.BPF_RB_AVAIL_DATA) == 4008
    rb.consume()
    a = rb.reserve(10)
    b = rb.reserve(20)
    rb.commit(b, b"y" * 20)
    assert rb.consume() == []  # a is still busy: the consumer waits
    rb.commit(a, b"x" * 10, discard=True)
    assert rb.consume() == [b"y" * 20]
    assert rb.query(T.BPF_RB_RING_SIZE) == 4096
    assert rb.output(b"z", flags=4) == -T.EINVAL


def test_ringbuf_size_must_be_a_power_of_two_page_multiple():
    with pytest.raises(LoadError, match="power of 2"):
        create_map(spec(T.BPF_MAP_TYPE_RINGBUF, 0, 0, 5000))


# ------------------------------------------------------------------ creation and budget
@pytest.mark.parametrize("t,ks,vs,n,what", [
    (T.BPF_MAP_TYPE_ARRAY, 8, 4, 1, "key_size must be 4"),
    (T.BPF_MAP_TYPE_HASH, 4, 0, 1, "value_size must be > 0"),
    (T.BPF_MAP_TYPE_HASH, 4, 4, 0, "max_entries must be > 0"),
    (T.BPF_MAP_TYPE_QUEUE, 4, 4, 1, "key_size must be 0"),
    (T.BPF_MAP_TYPE_PROG_ARRAY, 4, 8, 1, "must be 4"),
    (T.BPF_MAP_TYPE_STACK_TRACE, 4, 8, 1, "not supported"),
    (T.BPF_MAP_TYPE_HASH, 1024, 4, 1, "key_size 1024 exceeds"),
])
def test_invalid_specs_are_refused_with_a_clear_error(t, ks, vs, n, what):
    with pytest.raises(LoadError, match=what):
        create_map(spec(t, ks, vs, n))


def test_hostile_max_entries_is_refused_by_the_budget_not_allocated():
    with pytest.raises(LoadError, match="budget"):
        create_map(spec(T.BPF_MAP_TYPE_HASH, 4, 8, 0xFFFFFFFF))
    budget = MapBudget(10000, "app sensor")
    create_maps([spec(T.BPF_MAP_TYPE_ARRAY, 4, 8, 100)], budget)
    with pytest.raises(LoadError, match="app sensor"):
        create_maps([spec(T.BPF_MAP_TYPE_HASH, 4, 8, 1000)], budget)


def test_map_classes_by_type():
    assert isinstance(hash_map(), HashMap)
    assert isinstance(create_map(spec(T.BPF_MAP_TYPE_ARRAY, 4, 4, 1)), ArrayMap)
    assert isinstance(create_map(spec(T.BPF_MAP_TYPE_LRU_HASH, 4, 4, 1)), LruHashMap)


def test_export_import_roundtrip_every_kind():
    specs = [spec(T.BPF_MAP_TYPE_HASH, 4, 8, 8), spec(T.BPF_MAP_TYPE_ARRAY, 4, 8, 8),
             spec(T.BPF_MAP_TYPE_LRU_HASH, 4, 8, 8), spec(T.BPF_MAP_TYPE_QUEUE, 0, 8, 8),
             spec(T.BPF_MAP_TYPE_LPM_TRIE, 8, 8, 8, T.BPF_F_NO_PREALLOC)]
    for s in specs:
        a = create_map(s)
        b = create_map(s)
        for k in range(3):
            if s.type == T.BPF_MAP_TYPE_QUEUE:
                a.push(u64(k))
            elif s.type == T.BPF_MAP_TYPE_LPM_TRIE:
                a.update(lpm_key(8 * k, 10, k, 0, 0), u64(k))
            else:
                a.update(u32(k + 1), u64(k * 7))
        b.import_state(a.export_state())
        assert b.items() == a.items()
        assert b.export_state() == a.export_state()


# ------------------------------------------------------------------ MicroPython
MP_SCRIPT = """
import struct
from iotbpf.ebpf import types as T
from iotbpf.ebpf.loader import cbpf
from iotbpf.ebpf.maps import create_map
from iotbpf.ebpf.helpers import linux_helpers
from iotbpf.ebpf.program import Program
from iotbpf.ebpf.engines.vm import VM, Environment

def u32(x):
    return struct.pack('<I', x)

h = create_map(T.MapSpec('h', T.BPF_MAP_TYPE_HASH, 4, 8, 2))
print(h.update(u32(1), bytes(8)), h.update(u32(2), bytes(8), 1), h.update(u32(3), bytes(8)),
      h.update(u32(1), bytes(8), 1), h.delete(u32(9)))
l = create_map(T.MapSpec('l', T.BPF_MAP_TYPE_LRU_HASH, 4, 4, 3))
for k in (1, 2, 3):
    l.update(u32(k), u32(k))
l.lookup_slot(u32(1))
l.update(u32(4), u32(4))
print([struct.unpack('<I', k)[0] for k in l.lru_order()])
p = create_map(T.MapSpec('p', T.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 8, T.BPF_F_NO_PREALLOC))
p.update(u32(8) + bytes([10, 0, 0, 0]), u32(8))
p.update(u32(24) + bytes([10, 1, 2, 0]), u32(24))
print(p.lookup(u32(32) + bytes([10, 1, 2, 3])), p.lookup(u32(32) + bytes([10, 9, 2, 3])))
q = create_map(T.MapSpec('q', T.BPF_MAP_TYPE_STACK, 0, 4, 2))
print(q.push(u32(1)), q.push(u32(2)), q.push(u32(3)), q.push(u32(3), 2), q.pop(), q.pop(), q.pop())
r = create_map(T.MapSpec('r', T.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096))
n = 0
for i in range(20):
    r.output(bytes([i]) * 700)
    n += len(r.consume())
print(n, r.query(3))
b = create_map(T.MapSpec('b', T.BPF_MAP_TYPE_BLOOM_FILTER, 0, 4, 50))
for v in range(50):
    b.push(u32(v))
print(sum(1 for v in range(50) if b.peek(u32(v)) == 0), sum(1 for v in range(100, 400) if b.peek(u32(v)) == 0))
prog = Program.from_asm('''
stdw [%r10-16], 0x7825
stw [%r10-4], 5
mov %r1, %r10
add %r1, -16
mov %r2, 3
mov %r3, 255
call 6
call 7
exit
''')
env = Environment(seed=5)
print(VM(prog, helpers=linux_helpers(), env=env).run(), env.trace_output)
f = cbpf.parse('ldh [12]\\njeq #0x800 jt 2 jf 3\\nret #1\\nret #0')
print(cbpf.run_filter(f, bytes(12) + b'\\x08\\x00'), cbpf.run_filter(f, bytes(12) + b'\\x86\\xdd'))
"""


def test_maps_helpers_and_cbpf_agree_under_micropython(micropython, capsys):
    exec(compile(MP_SCRIPT, "<script>", "exec"), {})
    want = capsys.readouterr().out
    assert micropython.run(MP_SCRIPT).stdout == want
