"""Linux helpers from assembly and from C: maps through value pointers, queue/stack, LPM, ring
buffer, tail calls (chains and the 33 limit), bpf_loop bounds, probe_read, csum_diff,
trace_printk, the PRNG and the helper registry."""

import struct

import pytest

from conftest import REPO
from iotbpf.ebpf import types as T
from iotbpf.ebpf.engines.vm import VM, BPFFault, Environment
from iotbpf.ebpf.helpers import LINUX_HELPER_IDS, format_printk, linux_helpers
from iotbpf.ebpf.loader.elf import load_elf_object
from iotbpf.ebpf.maps import create_map, instantiate
from iotbpf.ebpf.memory import Memory
from iotbpf.ebpf.program import Program

C_DIR = REPO / "tests" / "c"
ENOENT = (-T.ENOENT) & ((1 << 64) - 1)


def asm_vm(text, maps, env=None):
    program = Program.from_asm(text)
    program.maps = maps
    return VM(program, helpers=linux_helpers(), env=env, budget=1_000_000)


def u32(x):
    return struct.pack("<I", x)


def inp(a=0, b=0, c=0, d=0):
    return struct.pack("<4Q", a & (2**64 - 1), b & (2**64 - 1), c & (2**64 - 1), d & (2**64 - 1))


# ------------------------------------------------------------------ registry
def test_linux_helper_ids_match_include_uapi_linux_bpf_h():
    assert LINUX_HELPER_IDS == {
        "map_lookup_elem": 1, "map_update_elem": 2, "map_delete_elem": 3, "probe_read": 4,
        "ktime_get_ns": 5, "trace_printk": 6, "get_prandom_u32": 7, "get_smp_processor_id": 8,
        "tail_call": 12, "perf_event_output": 25, "csum_diff": 28, "map_push_elem": 87, "map_pop_elem": 88,
        "map_peek_elem": 89, "ringbuf_output": 130, "ringbuf_reserve": 131, "ringbuf_submit": 132,
        "ringbuf_discard": 133, "ringbuf_query": 134, "loop": 181, "spin_lock": 93, "spin_unlock": 94}
    table = linux_helpers()
    for name, hid in LINUX_HELPER_IDS.items():
        assert table.get(hid).name == name


def test_runtime_helpers_go_in_the_private_range_without_touching_the_vm():
    table = linux_helpers()
    spec = table.register_private("answer", (), T.RET_INTEGER, lambda ex, *r: 42, "the answer")
    assert spec.id == T.PRIVATE_HELPER_BASE
    with pytest.raises(ValueError, match="already registered"):
        table.register(T.HelperSpec(1, "dup", (), T.RET_INTEGER, None))
    vm = VM(Program.from_asm("call 0x1000\nexit"), helpers=table)
    assert vm.run() == 42


# ------------------------------------------------------------------ maps from assembly
COUNT_ASM = """
stw [%r10-4], 3
mov %r2, %r10
add %r2, -4
lddw %r1, map_fd 0
call 1
jeq %r0, 0, missing
mov %r1, 5
stxdw [%r0], %r1
mov %r1, 1
lock add [%r0], %r1
ldxdw %r0, [%r0]
exit
missing:
mov %r0, 99
exit
"""


def test_lookup_returns_a_pointer_into_map_memory_that_stores_and_atomics_update():
    m = create_map(T.MapSpec("h", T.BPF_MAP_TYPE_HASH, 4, 8, 4))
    vm = asm_vm(COUNT_ASM, [m])
    assert vm.run() == 99
    m.update(u32(3), bytes(8))
    assert vm.run() == 6
    assert m.lookup(u32(3)) == struct.pack("<Q", 6)


UPDATE_ASM = """
stw [%r10-4], 1
stdw [%r10-16], 77
mov %r2, %r10
add %r2, -4
mov %r3, %r10
add %r3, -16
mov %r4, %r6
lddw %r1, map_fd 0
call 2
exit
"""


def test_update_flags_reach_the_map_and_errno_comes_back_negative():
    m = create_map(T.MapSpec("h", T.BPF_MAP_TYPE_HASH, 4, 8, 4))
    for flags, want in ((T.BPF_EXIST, -T.ENOENT), (T.BPF_NOEXIST, 0), (T.BPF_NOEXIST, -T.EEXIST),
                        (T.BPF_ANY, 0)):
        vm = asm_vm("mov %%r6, %d\n" % flags + UPDATE_ASM, [m])
        assert vm.run() == want & (2**64 - 1)
    assert m.lookup(u32(1)) == struct.pack("<Q", 77)


def test_helper_misuse_is_a_helper_fault():
    q = create_map(T.MapSpec("q", T.BPF_MAP_TYPE_QUEUE, 0, 8, 4))
    with pytest.raises(BPFFault) as info:
        asm_vm(COUNT_ASM, [q]).run()
    assert info.value.kind == "helper" and "queue" in str(info.value)
    with pytest.raises(BPFFault) as info:
        asm_vm("mov %r1, 12345\nmov %r2, 0\ncall 1\nexit", []).run()
    assert info.value.kind == "helper" and "not a map" in str(info.value)


# ------------------------------------------------------------------ tail calls from assembly
SELF_TAIL_ASM = """
mov %r6, %r1
stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, map_fd 0
call 1
jeq %r0, 0, out
mov %r7, %r0
ldxdw %r1, [%r7]
add %r1, 1
stxdw [%r7], %r1
mov %r1, %r6
lddw %r2, map_fd 1
mov %r3, 0
call 12
ldxdw %r0, [%r7]
exit
out:
mov %r0, 0
exit
"""


def test_tail_calls_stop_after_33_from_assembly():
    counter = create_map(T.MapSpec("c", T.BPF_MAP_TYPE_ARRAY, 4, 8, 1))
    jmp = create_map(T.MapSpec("jmp", T.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 2))
    vm = asm_vm(SELF_TAIL_ASM, [counter, jmp])
    jmp.set_program(0, vm.program)
    assert vm.run() == 34  # the first run plus 33 tail calls
    counter.update(u32(0), bytes(8))
    jmp.set_program(0, None)
    assert vm.run() == 1  # empty slot: the call fails and the program continues


# ------------------------------------------------------------------ bpf_loop from assembly
LOOP_ASM = """
stdw [%r10-8], 0
mov %r1, {n}
lddw %r2, func cb
mov %r3, %r10
add %r3, -8
mov %r4, {flags}
call 181
ldxdw %r1, [%r10-8]
lsh %r0, 32
or %r0, %r1
exit
cb:
ldxdw %r3, [%r2]
add %r3, %r1
stxdw [%r2], %r3
mov %r0, 0
jle %r3, {stop}, keep
mov %r0, 1
keep:
exit
"""


@pytest.mark.parametrize("n,flags,stop,want_count,want_sum", [
    (10, 0, 10**9, 10, 45),
    (0, 0, 10**9, 0, 0),
    (100, 0, 20, 7, 21),  # callback returns 1 once the sum passes 20: 7 iterations
    (5, 1, 10**9, -T.EINVAL, 0),  # flags must be 0
    ((1 << 23) + 1, 0, 10**9, -T.E2BIG, 0),  # more than BPF_MAX_LOOPS
])
def test_bpf_loop_bounds_from_assembly(n, flags, stop, want_count, want_sum):
    r0 = asm_vm(LOOP_ASM.format(n=n, flags=flags, stop=stop), []).run()
    assert r0 & 0xFFFFFFFF == want_sum
    assert r0 >> 32 == want_count & 0xFFFFFFFF


# ------------------------------------------------------------------ from C
@pytest.fixture(scope="module")
def helpers_obj(clang):
    return clang.compile(C_DIR / "helpers_maps.c", cpu="v3")


def c_programs(path):
    obj = load_elf_object(path)
    maps = instantiate(list(obj.programs.values()))
    env = Environment(seed=7, clock_ns=lambda: 123456789)
    vms = {}
    memory = Memory()
    for name, p in obj.programs.items():
        vms[name] = VM(p, helpers=linux_helpers(), env=env, memory=memory, budget=10_000_000)
    return obj, maps, vms, env


def test_queue_and_stack_order_from_c(helpers_obj):
    _obj, maps, vms, _env = c_programs(helpers_obj)
    r0 = vms["queue"].run(mem=inp(a=11, b=22))
    assert r0 == (11 << 32) | 22  # queue gives the oldest, stack the newest
    assert maps["fifo"].pop() == struct.pack("<Q", 22)
    assert maps["lifo"].pop() == struct.pack("<Q", 11)


def test_lpm_longest_prefix_from_c(helpers_obj):
    _obj, maps, vms, _env = c_programs(helpers_obj)
    routes = maps["routes"]
    routes.update(u32(8) + bytes([10, 0, 0, 0]), u32(1))
    routes.update(u32(24) + bytes([10, 1, 2, 0]), u32(2))
    assert vms["lpm"].run(mem=inp(a=0x0A010203)) == 2
    assert vms["lpm"].run(mem=inp(a=0x0A090203)) == 1
    assert vms["lpm"].run(mem=inp(a=0x0B000000)) == 0xFFFFFFFF


def test_ringbuf_reserve_submit_discard_output_from_c(helpers_obj):
    _obj, maps, vms, _env = c_programs(helpers_obj)
    events = maps["events"]
    assert vms["ringbuf"].run(mem=inp(a=1, b=100, c=0, d=5)) == 24 + 16
    assert events.consume() == [struct.pack("<QQ", 1, 100), struct.pack("<Q", 5)]
    vms["ringbuf"].run(mem=inp(a=2, b=200, c=1, d=6))  # discarded record is skipped
    assert events.consume() == [struct.pack("<Q", 6)]
    for i in range(300):  # wrap around the 4 KiB ring many times
        vms["ringbuf"].run(mem=inp(a=i, b=i * 3, c=0, d=i))
        assert events.consume() == [struct.pack("<QQ", i, i * 3), struct.pack("<Q", i)]


def test_tail_call_chain_and_the_33_limit_from_c(helpers_obj):
    obj, maps, vms, _env = c_programs(helpers_obj)
    jmp = maps["jmp"]
    for i in range(8):
        jmp.set_program(i, obj.program("link"))
    assert vms["chain"].run(mem=inp(a=0)) == 1008  # chain -> link x8 -> jmp[8] fails
    assert maps["counters"].lookup(u32(1)) == struct.pack("<Q", 8)
    jmp.set_program(0, obj.program("chain"))
    maps["counters"].update(u32(0), bytes(8))
    assert vms["chain"].run(mem=inp(a=0)) == 34


def test_lru_order_from_c(helpers_obj):
    _obj, maps, vms, _env = c_programs(helpers_obj)
    recent = maps["recent"]
    for k in (1, 2, 3):
        recent.update(u32(k), struct.pack("<Q", k))
    assert vms["lru"].run(mem=inp(a=1, b=4)) == 1  # 1 was used, so 2 is evicted
    assert sorted(recent.keys()) == [u32(1), u32(3), u32(4)]
    assert vms["lru"].run(mem=inp(a=9, b=5)) == 0  # 9 is absent; 3 (least recent) goes
    assert sorted(recent.keys()) == [u32(1), u32(4), u32(5)]


def test_bloom_filter_and_percpu_array_from_c(helpers_obj):
    _obj, maps, vms, _env = c_programs(helpers_obj)
    for v in range(20):
        assert vms["bloom"].run(mem=inp(a=v, b=v)) == 0  # just added: maybe present
    absent = [vms["bloom"].run(mem=inp(a=0, b=1000 + v)) for v in range(50)]
    assert absent.count(ENOENT) >= 40
    assert maps["per_cpu"].lookup(u32(0)) == struct.pack("<Q", 70)


@pytest.mark.parametrize("n,flags,want", [(10, 0, (10 << 32) | 45), (100, 0, (46 << 32) | 1035),
                                          (3, 1, ((-T.EINVAL & 0xFFFFFFFF) << 32))])
def test_bpf_loop_from_c(helpers_obj, n, flags, want):
    _obj, _maps, vms, _env = c_programs(helpers_obj)
    assert vms["loop"].run(mem=inp(a=n, b=flags)) == want


def test_probe_read_copies_and_reports_bad_sources_from_c(helpers_obj):
    _obj, _maps, vms, _env = c_programs(helpers_obj)
    r0 = vms["probe"].run(mem=inp(a=5, b=7, c=0x1234))
    assert r0 == 5 + 0 + (1 << 40) + (1 << 41)  # second read failed: zeroed, -EFAULT


def _csum_fold(x):
    while x >> 16:
        x = (x & 0xFFFF) + (x >> 16)
    return x


def test_csum_diff_gives_the_checksum_delta_from_c(helpers_obj):
    _obj, _maps, vms, _env = c_programs(helpers_obj)
    old, new = 0x1122334455667788, 0x99AABBCCDDEEFF00
    r0 = vms["csum"].run(mem=inp(a=old, b=new, c=0))
    words_old = [(old >> s) & 0xFFFF for s in (0, 16, 32, 48)]
    words_new = [(new >> s) & 0xFFFF for s in (0, 16, 32, 48)]
    delta = sum(w ^ 0xFFFF for w in words_old) + sum(words_new)
    assert _csum_fold(r0 & 0xFFFFFFFF) == _csum_fold(delta)


def test_trace_printk_and_clock_from_c(helpers_obj):
    _obj, _maps, vms, env = c_programs(helpers_obj)
    assert vms["printk"].run(mem=inp(a=-5, b=7, c=255)) == 123456789
    assert env.trace_output == ["v=-5 u=7 x=ff"]


def test_prandom_is_seeded_and_reproducible():
    prog = "call 7\nmov %r6, %r0\ncall 7\nlsh %r0, 32\nor %r0, %r6\nexit"
    a = [asm_vm(prog, [], Environment(seed=42)).run() for _ in range(2)]
    b = asm_vm(prog, [], Environment(seed=43)).run()
    assert a[0] == a[1] and a[0] != b


def test_printk_formats_and_rejects_like_linux():
    mem = Memory()
    s = mem.add_region(bytearray(b"node-7\0"), "s")
    assert format_printk(b"%s:%5d|%-3u|%lx|%llu|%c|%%", (s, 42, 7, 2**40), mem) is None  # 4 args
    assert format_printk(b"%s:%5d|%-3u|", (s, 42, 7), mem) == "node-7:   42|7  |"
    assert format_printk(b"%ld %lx", (2**64 - 1, 2**40, 0), mem) == "-1 10000000000"
    assert format_printk(b"%d", (0xFFFFFFFF, 0, 0), mem) == "-1"
    assert format_printk(b"%n", (0, 0, 0), mem) is None
    assert format_printk(b"%s", (0, 0, 0), mem) == ""  # a bad string pointer prints nothing


def test_trace_printk_needs_a_nul_terminated_format():
    prog = "stdw [%r10-8], 0x41414141\nmov %r1, %r10\nadd %r1, -8\nmov %r2, 4\ncall 6\nexit"
    assert asm_vm(prog, []).run() == (-T.EINVAL) & (2**64 - 1)


def test_fault_in_c_maps_to_the_c_source_line(helpers_obj):
    obj, _maps, vms, _env = c_programs(helpers_obj)
    with pytest.raises(BPFFault) as info:
        vms["fault"].run(mem=inp(a=9))
    fault = info.value
    assert fault.kind == "oob"
    program = obj.program("fault")
    pcs = [pc for pc in program.line_info if pc <= fault.pc]
    _file, line, text = program.line_info[max(pcs)]
    assert "return *v + 1;" in text
    assert line == _line_of("return *v + 1;")
    assert fault.source[1] == line and "return *v + 1;" in fault.source[2]
    assert str(fault).endswith("helpers_maps.c:%d: return *v + 1; /* no NULL check: faults when the key "
                               "is missing */]" % line)


def test_cli_run_of_a_faulting_c_program_names_the_source_line(cli, helpers_obj):
    r = cli("run", helpers_obj, "--section", "fault", "--mem", "09" + "00" * 31)
    assert r.code == 1
    assert r.err.startswith("error: pc ") and "(NULL)" in r.err
    assert "helpers_maps.c:%d: return *v + 1;" % _line_of("return *v + 1;") in r.err


def _line_of(text):
    return next(i for i, t in enumerate((C_DIR / "helpers_maps.c").read_text().split("\n"), 1) if text in t)


PUSH_POP_ASM = """
mov %r6, 1
push:
stxdw [%r10-8], %r6
lddw %r1, map_fd 0
mov %r2, %r10
add %r2, -8
mov %r3, 0
call 87
add %r6, 1
jle %r6, 3, push
lddw %r1, map_fd 0
mov %r2, %r10
add %r2, -16
call 88
ldxdw %r7, [%r10-16]
lddw %r1, map_fd 0
mov %r2, %r10
add %r2, -16
call 89
ldxdw %r0, [%r10-16]
lsh %r7, 8
or %r0, %r7
exit
"""


@pytest.mark.parametrize("map_type,want", [(T.BPF_MAP_TYPE_QUEUE, 0x0102), (T.BPF_MAP_TYPE_STACK, 0x0302)])
def test_queue_and_stack_order_from_assembly(map_type, want):
    m = create_map(T.MapSpec("q", map_type, 0, 8, 4))
    assert asm_vm(PUSH_POP_ASM, [m]).run() == want  # pop, then peek the next


RINGBUF_ASM = """
stdw [%r10-8], 0x1122
lddw %r1, map_fd 0
mov %r2, %r10
add %r2, -8
mov %r3, 8
mov %r4, 0
call 130
lddw %r1, map_fd 0
mov %r2, 16
mov %r3, 0
call 131
jeq %r0, 0, full
stdw [%r0+8], 0x3344
mov %r1, %r0
mov %r2, 0
call 132
lddw %r1, map_fd 0
mov %r2, 0
call 134
exit
full:
mov %r0, -1
exit
"""


def test_ringbuf_output_reserve_submit_query_from_assembly():
    rb = create_map(T.MapSpec("rb", T.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096))
    vm = asm_vm(RINGBUF_ASM, [rb])
    assert vm.run() == 16 + 24  # two records: 8+8 and 8+16 bytes
    assert rb.consume() == [struct.pack("<Q", 0x1122), struct.pack("<QQ", 0, 0x3344)]
    for _ in range(200):  # wraps the 4 KiB ring
        assert vm.run() == 40
        assert len(rb.consume()) == 2
    results = [vm.run() for _ in range(103)]  # without a consumer the ring fills up
    assert results[101] == 4080  # 102 runs of 40 bytes; the ring holds at most 4095
    assert results[102] == 2**64 - 1  # then output gets -EAGAIN and reserve returns NULL


LPM_ASM = """
stw [%r10-8], 32
stw [%r10-4], {addr}
lddw %r1, map_fd 0
mov %r2, %r10
add %r2, -8
call 1
jeq %r0, 0, miss
ldxw %r0, [%r0]
exit
miss:
mov %r0, 0
exit
"""


def test_lpm_and_lru_from_assembly():
    lpm = create_map(T.MapSpec("r", T.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 8, T.BPF_F_NO_PREALLOC))
    lpm.update(u32(16) + bytes([192, 168, 0, 0]), u32(16))
    lpm.update(u32(24) + bytes([192, 168, 7, 0]), u32(24))
    addr = lambda a, b, c, d: struct.unpack("<I", bytes([a, b, c, d]))[0]  # noqa: E731
    assert asm_vm(LPM_ASM.format(addr=addr(192, 168, 7, 9)), [lpm]).run() == 24
    assert asm_vm(LPM_ASM.format(addr=addr(192, 168, 8, 9)), [lpm]).run() == 16
    assert asm_vm(LPM_ASM.format(addr=addr(10, 0, 0, 1)), [lpm]).run() == 0
    lru = create_map(T.MapSpec("l", T.BPF_MAP_TYPE_LRU_HASH, 4, 8, 2))
    lru.update(u32(1), bytes(8))
    lru.update(u32(2), bytes(8))
    assert asm_vm(COUNT_ASM.replace("stw [%r10-4], 3", "stw [%r10-4], 1"), [lru]).run() == 6
    lru.update(u32(3), bytes(8))  # 2 is the least recently used now
    assert sorted(lru.keys()) == [u32(1), u32(3)]
