"""The Linux eBPF helpers with Linux's ids and signatures, as a HelperTable (``linux_helpers()``); a
helper is ``fn(ex, r1..r5) -> u64`` on the VM's Execution and never trusts its arguments."""


from iotbpf.ebpf import isa
from iotbpf.ebpf import types as T
from iotbpf.ebpf.engines.frames import HelperFault
from iotbpf.ebpf.isa import M32, M64
from iotbpf.ebpf.types import HelperSpec, HelperTable

BPF_MAX_LOOPS = 8 * 1024 * 1024
TRACE_PRINTK_MAX_ARGS = 3
TRACE_STR_MAX = 512
CSUM_DIFF_MAX = 512  # bytes: Linux's scratch area (from_size + to_size)
PROBE_READ_MAX = 1 << 16

_U32 = isa.make_struct("<I")

# helper name -> Linux id (include/uapi/linux/bpf.h, ___BPF_FUNC_MAPPER)
LINUX_HELPER_IDS = {
    "map_lookup_elem": 1, "map_update_elem": 2, "map_delete_elem": 3, "probe_read": 4,
    "ktime_get_ns": 5, "trace_printk": 6, "get_prandom_u32": 7, "get_smp_processor_id": 8,
    "tail_call": 12, "perf_event_output": 25, "csum_diff": 28, "map_push_elem": 87, "map_pop_elem": 88,
    "map_peek_elem": 89, "ringbuf_output": 130, "ringbuf_reserve": 131, "ringbuf_submit": 132,
    "ringbuf_discard": 133, "ringbuf_query": 134, "loop": 181, "spin_lock": 93, "spin_unlock": 94,
}


def _fault(reason):
    return HelperFault(reason)


def _neg(errno):
    return (-errno) & M64


def _ret(value):
    """A Map method result (0 or -errno) as a register value."""
    return value & M64


def _map(ex, handle, types, helper):
    m = ex.map_from_handle(handle)
    if types is not None and m.type not in types:
        raise _fault("%s cannot be used on %s map %s" % (helper, T.MAP_TYPE_NAMES.get(m.type, "?"),
                                                         m.name))
    return m


# ------------------------------------------------------------------ maps
def map_lookup_elem(ex, r1, r2, r3, r4, r5):
    m = _map(ex, r1, _LOOKUP, "map_lookup_elem")
    key = ex.memory.read_bytes(r2, m.key_size)
    if m.type in T.MAP_IN_MAP_TYPES:  # the inner map as a map handle, or NULL
        inner = m.get_map(key)
        return 0 if inner is None else ex.memory.map_handle(inner)
    slot = m.lookup_slot(key)
    if slot is None:
        return 0
    return ex.map_value_pointer(m, slot)  # the VM keeps the region as large as m.values


def map_update_elem(ex, r1, r2, r3, r4, r5):
    m = _map(ex, r1, T.VALUE_MAP_TYPES, "map_update_elem")
    if m.readonly:
        raise _fault("map %s is read-only for programs" % m.name)
    key = ex.memory.read_bytes(r2, m.key_size)
    value = ex.memory.read_bytes(r3, m.value_size)
    return _ret(m.update(key, value, r4))


def map_delete_elem(ex, r1, r2, r3, r4, r5):
    m = _map(ex, r1, T.VALUE_MAP_TYPES, "map_delete_elem")
    if m.readonly:
        raise _fault("map %s is read-only for programs" % m.name)
    return _ret(m.delete(ex.memory.read_bytes(r2, m.key_size)))


def map_push_elem(ex, r1, r2, r3, r4, r5):
    m = _map(ex, r1, T.QUEUE_MAP_TYPES, "map_push_elem")
    return _ret(m.push(ex.memory.read_bytes(r2, m.value_size), r3))


def map_pop_elem(ex, r1, r2, r3, r4, r5):
    m = _map(ex, r1, (T.BPF_MAP_TYPE_QUEUE, T.BPF_MAP_TYPE_STACK), "map_pop_elem")
    ex.memory.check(r2, m.value_size, True)
    value = m.pop()
    if isinstance(value, int):
        return _ret(value)
    ex.memory.write_bytes(r2, value)
    return 0


def map_peek_elem(ex, r1, r2, r3, r4, r5):
    m = _map(ex, r1, T.QUEUE_MAP_TYPES, "map_peek_elem")
    if m.type == T.BPF_MAP_TYPE_BLOOM_FILTER:  # the value is an input here
        return _ret(m.peek(ex.memory.read_bytes(r2, m.value_size)))
    ex.memory.check(r2, m.value_size, True)
    value = m.peek()
    if isinstance(value, int):
        return _ret(value)
    ex.memory.write_bytes(r2, value)
    return 0


# ------------------------------------------------------------------ ring buffer
# (id(memory), record address) -> (map, position, buffer) for records reserved and not yet
# submitted or discarded. A reserved record is a region of its own (the program cannot write
# past it) and stays "busy" in the ring until released; the verifier guarantees the release,
# an unverified program that never releases blocks the consumer at that record, as in Linux.
_RESERVED = {}


def ringbuf_output(ex, r1, r2, r3, r4, r5):
    m = _map(ex, r1, (T.BPF_MAP_TYPE_RINGBUF,), "ringbuf_output")
    return _ret(m.output(ex.memory.read_bytes(r2, r3), r4))


def ringbuf_reserve(ex, r1, r2, r3, r4, r5):
    m = _map(ex, r1, (T.BPF_MAP_TYPE_RINGBUF,), "ringbuf_reserve")
    if r3:
        return 0
    pos = m.reserve(r2)
    if pos is None:
        return 0
    buf = bytearray(r2)
    base = ex.memory.add_region(buf, "ringbuf:%s" % m.name)
    _RESERVED[(id(ex.memory), base)] = (m, pos, buf)
    return base


def _release(ex, addr, flags, discard, helper):
    key = (id(ex.memory), addr)
    entry = _RESERVED.pop(key, None)
    if entry is None:
        raise _fault("%s: 0x%x is not a record returned by ringbuf_reserve" % (helper, addr))
    m, pos, buf = entry
    ex.memory.remove_region(addr)
    m.commit(pos, buf, discard, flags)
    return 0


def ringbuf_submit(ex, r1, r2, r3, r4, r5):
    return _release(ex, r1, r2, False, "ringbuf_submit")


def ringbuf_discard(ex, r1, r2, r3, r4, r5):
    return _release(ex, r1, r2, True, "ringbuf_discard")


def perf_event_output(ex, r1, r2, r3, r4, r5):
    """bpf_perf_event_output(ctx, map, flags, data, size): a sample into perf buffer
    ``flags & BPF_F_INDEX_MASK`` (BPF_F_CURRENT_CPU: CPU 0); other flag bits are -EINVAL."""
    m = _map(ex, r2, (T.BPF_MAP_TYPE_PERF_EVENT_ARRAY,), "perf_event_output")
    if r3 & ~T.BPF_F_INDEX_MASK:
        return _neg(T.EINVAL)
    return _ret(m.output(r3 & T.BPF_F_INDEX_MASK, ex.memory.read_bytes(r4, r5)))


def ringbuf_query(ex, r1, r2, r3, r4, r5):
    m = _map(ex, r1, (T.BPF_MAP_TYPE_RINGBUF,), "ringbuf_query")
    return m.query(r2) & M64


# ------------------------------------------------------------------ bpf_spin_lock
# The node runs one program at a time and never preempts it, so a lock is always free when a
# verified program takes it; the word is still set and cleared, so an unverified program that
# takes a lock twice (a deadlock in Linux) or releases a free one faults instead.
def spin_lock(ex, r1, r2, r3, r4, r5):
    if _U32.unpack(ex.memory.read_bytes(r1, 4))[0]:
        raise _fault("bpf_spin_lock: the lock at 0x%x is already held (a deadlock)" % r1)
    ex.memory.write_bytes(r1, _U32.pack(1))
    return 0


def spin_unlock(ex, r1, r2, r3, r4, r5):
    if not _U32.unpack(ex.memory.read_bytes(r1, 4))[0]:
        raise _fault("bpf_spin_unlock: the lock at 0x%x is not held" % r1)
    ex.memory.write_bytes(r1, _U32.pack(0))
    return 0


# ------------------------------------------------------------------ misc
def probe_read(ex, r1, r2, r3, r4, r5):
    """Bounded copy of r2 bytes from r3 to r1; on a bad source, zero r1 and return -EFAULT."""
    size = r2
    if size > PROBE_READ_MAX:
        raise _fault("probe_read size %d exceeds %d" % (size, PROBE_READ_MAX))
    ex.memory.check(r1, size, True)
    try:
        data = ex.memory.read_bytes(r3, size)
    except Exception:
        ex.memory.write_bytes(r1, bytes(size))
        return _neg(T.EFAULT)
    ex.memory.write_bytes(r1, data)
    return 0


def ktime_get_ns(ex, r1, r2, r3, r4, r5):
    return ex.env.clock_ns() & M64


def get_prandom_u32(ex, r1, r2, r3, r4, r5):
    return ex.env.random_u32() & M32


def get_smp_processor_id(ex, r1, r2, r3, r4, r5):
    return 0


def tail_call(ex, r1, r2, r3, r4, r5):
    """Jump to prog_array[r3]; on failure (empty slot, bad index, 33 calls) return -ENOENT and
    the caller continues, as in Linux."""
    m = _map(ex, r2, (T.BPF_MAP_TYPE_PROG_ARRAY,), "tail_call")
    index = r3 & M32
    if index >= m.max_entries:
        return _neg(T.ENOENT)
    if ex.tail_call(m, index):
        return 0
    return _neg(T.ENOENT)


def loop(ex, r1, r2, r3, r4, r5):
    """bpf_loop: call r2(i, r3) for i < r1 until it returns non-zero; returns the count."""
    if r4:
        return _neg(T.EINVAL)
    if r1 > BPF_MAX_LOOPS:
        return _neg(T.E2BIG)
    i = 0
    while i < r1:
        ret = ex.call_callback(r2, i, r3)
        i += 1
        if ret:
            break
    return i


def csum_diff(ex, r1, r2, r3, r4, r5):
    """One's-complement sum of ~from words then to words, plus seed (x86-64 csum_partial:
    32-bit sum with end-around carry), so csum_fold of the result is the checksum delta."""
    if (r2 | r4) & 3 or r2 + r4 > CSUM_DIFF_MAX:
        return _neg(T.EINVAL)
    words = []
    if r2:
        data = ex.memory.read_bytes(r1, r2)
        for i in range(0, r2, 4):
            words.append(~_U32.unpack_from(data, i)[0] & M32)
    if r4:
        data = ex.memory.read_bytes(r3, r4)
        for i in range(0, r4, 4):
            words.append(_U32.unpack_from(data, i)[0])
    total = r5 & M32
    for w in words:
        total += w
        total = (total & M32) + (total >> 32)
    return total & M32


# ------------------------------------------------------------------ trace_printk
def _read_cstr(memory, addr, limit):
    out = bytearray()
    try:
        while len(out) < limit:
            b = memory.load(addr + len(out), 1)
            if b == 0:
                break
            out.append(b)
    except Exception:
        return b""
    return bytes(out)


def _text(data):
    return "".join(chr(b) for b in data)


def _sx(value, bits):
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def format_printk(fmt, args, memory):
    """Format like bpf_trace_printk; returns the text, or None where Linux returns -EINVAL."""
    out = []
    used = 0
    i = 0
    n = len(fmt)
    while i < n:
        c = fmt[i]
        if c < 0x20 and c not in (9, 10, 13) or c > 0x7E:
            return None
        if c != 0x25:  # '%'
            out.append(chr(c))
            i += 1
            continue
        i += 1
        if i < n and fmt[i] == 0x25:
            out.append("%")
            i += 1
            continue
        start = i
        while i < n and fmt[i] in (0x30, 0x2B, 0x2D, 0x20):
            i += 1
        if i < n and 0x31 <= fmt[i] <= 0x39:
            i += 1
            while i < n and 0x30 <= fmt[i] <= 0x39:
                i += 1
        spec = _text(fmt[start:i])
        if i >= n:
            return None
        if used >= TRACE_PRINTK_MAX_ARGS:
            return None
        arg = args[used]
        used += 1
        conv = fmt[i]
        if conv == 0x70:  # 'p' (%p, %px, %pK): the pointer value in hex
            i += 1
            if i < n and fmt[i] in (0x78, 0x4B):
                i += 1
            out.append(("%" + spec + "s") % ("0x%x" % arg))
            continue
        if conv == 0x73:  # 's'
            i += 1
            out.append(("%" + spec + "s") % _text(_read_cstr(memory, arg, TRACE_STR_MAX)))
            continue
        if conv == 0x63:  # 'c'
            i += 1
            out.append(("%" + spec + "s") % chr(arg & 0xFF))
            continue
        bits = 32
        if conv == 0x6C:  # 'l'
            bits = 64
            i += 1
            if i < n and fmt[i] == 0x6C:
                i += 1
        if i >= n:
            return None
        conv = fmt[i]
        i += 1
        if conv in (0x64, 0x69):  # d i
            out.append(("%" + spec + "d") % _sx(arg, bits))
        elif conv == 0x75:  # u
            out.append(("%" + spec + "d") % (arg & ((1 << bits) - 1)))
        elif conv in (0x78, 0x58):  # x X
            out.append(("%" + spec + chr(conv)) % (arg & ((1 << bits) - 1)))
        else:
            return None
    return "".join(out)


def trace_printk(ex, r1, r2, r3, r4, r5):
    """bpf_trace_printk(fmt, fmt_size, a1, a2, a3): the text goes to ex.env.trace_output."""
    if r2 == 0 or r2 > 4096:
        return _neg(T.EINVAL)
    fmt = ex.memory.read_bytes(r1, r2)
    end = fmt.find(b"\0")
    if end < 0:
        return _neg(T.EINVAL)
    text = format_printk(fmt[:end], (r3, r4, r5), ex.memory)
    if text is None:
        return _neg(T.EINVAL)
    out = getattr(ex.env, "trace_output", None)
    if out is not None:
        out.append(text)
    sink = getattr(ex.env, "on_trace", None)
    if sink is not None:
        sink(text)
    return len(text)


# ------------------------------------------------------------------ the table
_A = T.ARG_ANYTHING
_LOOKUP = T.VALUE_MAP_TYPES + T.MAP_IN_MAP_TYPES
_D = T.ARG_DONTCARE  # Linux's bpf_trace_printk_proto leaves arg3..arg5 unchecked
_MAPS = T.VALUE_MAP_TYPES
_RB = (T.BPF_MAP_TYPE_RINGBUF,)

_TABLE = (
    ("map_lookup_elem", (T.ARG_CONST_MAP_PTR, T.ARG_PTR_TO_MAP_KEY),
     T.RET_PTR_TO_MAP_VALUE_OR_NULL, map_lookup_elem, _LOOKUP, None,
     "Pointer to the value stored under key, or NULL; in a map of maps, the inner map or NULL."),
    ("map_update_elem", (T.ARG_CONST_MAP_PTR, T.ARG_PTR_TO_MAP_KEY, T.ARG_PTR_TO_MAP_VALUE, _A),
     T.RET_INTEGER, map_update_elem, _MAPS, None,
     "Create or update key's value; flags BPF_ANY, BPF_NOEXIST, BPF_EXIST. 0 or -errno."),
    ("map_delete_elem", (T.ARG_CONST_MAP_PTR, T.ARG_PTR_TO_MAP_KEY), T.RET_INTEGER,
     map_delete_elem, _MAPS, None, "Delete key. 0 or -errno (-ENOENT, -EINVAL for arrays)."),
    ("probe_read", (T.ARG_PTR_TO_UNINIT_MEM, T.ARG_CONST_SIZE_OR_ZERO, _A), T.RET_INTEGER,
     probe_read, None, None, "Copy size bytes from an unsafe address; -EFAULT (dst zeroed)."),
    ("ktime_get_ns", (), T.RET_INTEGER, ktime_get_ns, None, None,
     "The runtime's clock in nanoseconds."),
    ("trace_printk", (T.ARG_PTR_TO_MEM, T.ARG_CONST_SIZE, _D, _D, _D), T.RET_INTEGER,
     trace_printk, None, None,
     "printf-like output (0 to 3 args: %d %i %u %x %ld %lld %s %c %p) into the trace log; as in "
     "Linux, arguments the format does not use need not be set."),
    ("get_prandom_u32", (), T.RET_INTEGER, get_prandom_u32, None, None,
     "A pseudo-random u32 from the runtime's seeded generator."),
    ("get_smp_processor_id", (), T.RET_INTEGER, get_smp_processor_id, None, None,
     "The CPU number: always 0."),
    ("tail_call", (T.ARG_PTR_TO_CTX, T.ARG_CONST_MAP_PTR, _A), T.RET_VOID, tail_call,
     (T.BPF_MAP_TYPE_PROG_ARRAY,), None,
     "Jump to prog_array[index] (at most 33 per run); returns only on failure."),
    ("perf_event_output", (T.ARG_PTR_TO_CTX, T.ARG_CONST_MAP_PTR, _A, T.ARG_PTR_TO_MEM,
                           T.ARG_CONST_SIZE_OR_ZERO), T.RET_INTEGER, perf_event_output,
     (T.BPF_MAP_TYPE_PERF_EVENT_ARRAY,), None,
     "Copy size bytes of data as a sample into the perf buffer flags & BPF_F_INDEX_MASK "
     "(BPF_F_CURRENT_CPU: this CPU's); -ENOSPC (sample lost) when that buffer is full."),
    ("csum_diff", (T.ARG_PTR_TO_MEM_OR_NULL, T.ARG_CONST_SIZE_OR_ZERO, T.ARG_PTR_TO_MEM_OR_NULL,
                   T.ARG_CONST_SIZE_OR_ZERO, _A), T.RET_INTEGER, csum_diff, None, None,
     "Checksum difference of two word arrays (sizes multiples of 4) plus seed."),
    ("map_push_elem", (T.ARG_CONST_MAP_PTR, T.ARG_PTR_TO_MAP_VALUE, _A), T.RET_INTEGER,
     map_push_elem, T.QUEUE_MAP_TYPES, None,
     "Push a value onto a queue, stack or bloom filter; BPF_EXIST overwrites the oldest."),
    ("map_pop_elem", (T.ARG_CONST_MAP_PTR, T.ARG_PTR_TO_UNINIT_MAP_VALUE), T.RET_INTEGER,
     map_pop_elem, (T.BPF_MAP_TYPE_QUEUE, T.BPF_MAP_TYPE_STACK), None,
     "Pop a value from a queue or stack into value; -ENOENT when empty."),
    ("map_peek_elem", (T.ARG_CONST_MAP_PTR, T.ARG_PTR_TO_UNINIT_MAP_VALUE), T.RET_INTEGER,
     map_peek_elem, T.QUEUE_MAP_TYPES, None,
     "Copy the next value of a queue/stack without removing it; for a bloom filter value is "
     "an input and the result says 0 (maybe present) or -ENOENT."),
    ("ringbuf_output", (T.ARG_CONST_MAP_PTR, T.ARG_PTR_TO_MEM, T.ARG_CONST_SIZE_OR_ZERO, _A),
     T.RET_INTEGER, ringbuf_output, _RB, None, "Copy data into a new ring buffer record; -EAGAIN if full."),
    ("ringbuf_reserve", (T.ARG_CONST_MAP_PTR, T.ARG_CONST_ALLOC_SIZE_OR_ZERO, _A),
     T.RET_PTR_TO_MEM_OR_NULL, ringbuf_reserve, _RB, 2,
     "Reserve size bytes in the ring buffer; NULL when it does not fit."),
    ("ringbuf_submit", (T.ARG_PTR_TO_RINGBUF_MEM, _A), T.RET_VOID, ringbuf_submit, None, None,
     "Publish a reserved record."),
    ("ringbuf_discard", (T.ARG_PTR_TO_RINGBUF_MEM, _A), T.RET_VOID, ringbuf_discard, None, None,
     "Drop a reserved record."),
    ("ringbuf_query", (T.ARG_CONST_MAP_PTR, _A), T.RET_INTEGER, ringbuf_query, _RB, None,
     "BPF_RB_AVAIL_DATA, BPF_RB_RING_SIZE, BPF_RB_CONS_POS or BPF_RB_PROD_POS."),
    ("spin_lock", (T.ARG_PTR_TO_SPIN_LOCK,), T.RET_VOID, spin_lock, None, None,
     "Take the struct bpf_spin_lock in a map value (no helper calls until the unlock)."),
    ("spin_unlock", (T.ARG_PTR_TO_SPIN_LOCK,), T.RET_VOID, spin_unlock, None, None,
     "Release the struct bpf_spin_lock taken by bpf_spin_lock."),
    ("loop", (_A, T.ARG_PTR_TO_FUNC, T.ARG_PTR_TO_STACK_OR_NULL, _A), T.RET_INTEGER, loop,
     None, None, "Call callback(i, ctx) nr_loops times (at most 1<<23) until it returns 1."),
)


# helpers whose implementation always returns an int in [0, 2**64) (HelperSpec.u64_result): a
# map's 0/-errno through _ret, 0, or a value pointer
_U64_RESULT = ("map_lookup_elem", "map_update_elem", "map_delete_elem", "map_push_elem", "map_pop_elem",
               "map_peek_elem")


def linux_helper_specs():
    """The Linux helpers as HelperSpec objects (ids from LINUX_HELPER_IDS)."""
    specs = []
    for name, args, ret, func, map_types, ret_size_arg, doc in _TABLE:
        specs.append(HelperSpec(LINUX_HELPER_IDS[name], name, args, ret, func, doc,
                                map_types=map_types, ret_size_arg=ret_size_arg,
                                u64_result=name in _U64_RESULT))
    return specs


def linux_helpers():
    """A new HelperTable with every Linux helper this runtime implements."""
    return HelperTable(linux_helper_specs())
