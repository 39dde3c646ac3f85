"""The less common map types: lru_hash (and its percpu form), lpm_trie, bloom_filter, ringbuf.

Split from maps.py so that a microcontroller loads their code only when an app declares one
(``maps.map_class`` imports this module on first use; ``from iotbpf.ebpf.maps import
RingBufMap`` and the other names keep working). Same semantics and rules as maps.py.
MicroPython-compatible; imports nothing of iotbpf outside ``ebpf``.
"""

from iotbpf.ebpf import types as T
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.maps import _U32, HashMap, Map, _b, _bloom_bits, _bloom_hashes, _hex, _SlabMap, _unhex


class LruHashMap(HashMap):
    """BPF_MAP_TYPE_LRU_HASH with exact least-recently-used eviction when full.

    "Use" = a program's lookup (lookup_slot) or any update. Python ``lookup`` does not count,
    so inspecting a map never changes what gets evicted.
    """

    type = T.BPF_MAP_TYPE_LRU_HASH

    def __init__(self, spec):
        HashMap.__init__(self, spec)
        self._prev = []  # slot -> slot (towards least recent), -1 at the end
        self._next = []  # slot -> slot (towards most recent), -1 at the end
        self._oldest = -1
        self._newest = -1

    def _unlink(self, slot):
        p = self._prev[slot]
        n = self._next[slot]
        if p >= 0:
            self._next[p] = n
        else:
            self._oldest = n
        if n >= 0:
            self._prev[n] = p
        else:
            self._newest = p
        self._prev[slot] = -1
        self._next[slot] = -1

    def _linked(self, slot):
        return slot < len(self._prev) and (self._prev[slot] >= 0 or self._oldest == slot)

    def _touch(self, slot):
        while len(self._prev) <= slot:
            self._prev.append(-1)
            self._next.append(-1)
        if self._linked(slot):
            if self._newest == slot:
                return
            self._unlink(slot)
        self._prev[slot] = self._newest
        self._next[slot] = -1
        if self._newest >= 0:
            self._next[self._newest] = slot
        else:
            self._oldest = slot
        self._newest = slot

    def _release(self, key):
        slot = HashMap._release(self, key)
        if self._linked(slot):
            self._unlink(slot)
        return slot

    def _evict(self):
        victim = self._oldest
        self._release(self._keys[victim])
        return victim

    def lookup_slot(self, key):
        slot = self._slots.get(_b(key, self.key_size, "key"))
        if slot is not None:
            self._touch(slot)
        return slot

    def lru_order(self):
        """Keys from least to most recently used (what eviction will take first)."""
        out = []
        slot = self._oldest
        while slot >= 0:
            out.append(self._keys[slot])
            slot = self._next[slot]
        return out

    def export_state(self):
        """Entries in LRU order (oldest first), so reloading keeps the eviction order."""
        return {"entries": [[_hex(k), _hex(self.lookup(k))] for k in self.lru_order()]}


class LruPercpuHashMap(LruHashMap):
    type = T.BPF_MAP_TYPE_LRU_PERCPU_HASH


# ------------------------------------------------------------------ LPM trie
class LpmTrieMap(_SlabMap):
    """BPF_MAP_TYPE_LPM_TRIE on Linux's key layout: ``struct bpf_lpm_trie_key { __u32
    prefixlen; __u8 data[]; }`` with prefixlen in host (little-endian) order and data in
    network order, compared bit by bit from the most significant bit of data[0].

    Entries are indexed by (prefixlen, data masked to prefixlen); a lookup tries the stored
    prefix lengths from longest to shortest, up to the key's own prefixlen.
    """

    type = T.BPF_MAP_TYPE_LPM_TRIE

    def __init__(self, spec):
        _SlabMap.__init__(self, spec)
        self.data_size = spec.key_size - 4
        self.max_prefixlen = self.data_size * 8
        self._slots = {}  # canonical key bytes (prefixlen + masked data) -> slot
        self._keys = []
        self._free = []
        self._plens = {}  # prefixlen -> number of entries with it

    def __len__(self):
        return len(self._slots)

    def _canon(self, plen, data):
        full = plen // 8
        rest = plen % 8
        out = bytearray(data[:full])
        if rest:
            out.append(data[full] & (0xFF << (8 - rest)) & 0xFF)
        out.extend(bytes(self.data_size - len(out)))
        return _U32.pack(plen) + bytes(out)

    def _split(self, key):
        key = _b(key, self.key_size, "key")
        return _U32.unpack_from(key, 0)[0], key[4:]

    def lookup_slot(self, key):
        plen, data = self._split(key)
        limit = min(plen, self.max_prefixlen)
        best = None
        for p in self._plens:
            if p <= limit and (best is None or p > best[0]):
                slot = self._slots.get(self._canon(p, data))
                if slot is not None:
                    best = (p, slot)
        return None if best is None else best[1]

    def lookup(self, key):
        slot = self.lookup_slot(key)
        return None if slot is None else self._value(slot)

    def update(self, key, value, flags=T.BPF_ANY):
        value = _b(value, self.value_size, "value")
        plen, data = self._split(key)
        if flags > T.BPF_EXIST:
            return -T.EINVAL
        if plen > self.max_prefixlen:
            return -T.EINVAL
        canon = self._canon(plen, data)
        slot = self._slots.get(canon)
        if slot is not None:
            if flags == T.BPF_NOEXIST:
                return -T.EEXIST
            self._store(slot, value)
            return 0
        if flags == T.BPF_EXIST:
            return -T.ENOENT
        if len(self._slots) >= self.max_entries:
            return -T.ENOSPC
        if self._free:
            slot = self._free.pop()
            self._keys[slot] = canon
        else:
            slot = len(self._keys)
            self._keys.append(canon)
        self._slots[canon] = slot
        self._plens[plen] = self._plens.get(plen, 0) + 1
        self._store(slot, value)
        return 0

    def delete(self, key):
        plen, data = self._split(key)
        if plen > self.max_prefixlen:
            return -T.EINVAL
        canon = self._canon(plen, data)
        slot = self._slots.pop(canon, None)
        if slot is None:
            return -T.ENOENT
        self._keys[slot] = None
        self._free.append(slot)
        n = self._plens[plen] - 1
        if n:
            self._plens[plen] = n
        else:
            del self._plens[plen]
        return 0

    def get_next_key(self, key):
        start = 0
        if key is not None:
            plen, data = self._split(key)
            slot = self._slots.get(self._canon(min(plen, self.max_prefixlen), data))
            if slot is not None:
                start = slot + 1
        for slot in range(start, len(self._keys)):
            if self._keys[slot] is not None:
                return self._keys[slot]
        return None

    def clear(self):
        for key in list(self._slots):
            self.delete(key)



class BloomFilterMap(Map):
    """BPF_MAP_TYPE_BLOOM_FILTER: push adds a value, peek answers 0 (maybe present) or -ENOENT
    (certainly absent); no false negatives. ``map_extra`` low 4 bits = number of hashes."""

    type = T.BPF_MAP_TYPE_BLOOM_FILTER

    def __init__(self, spec):
        Map.__init__(self, spec)
        self.nr_hashes = _bloom_hashes(spec)
        self.nr_bits = _bloom_bits(spec.max_entries, self.nr_hashes)
        self._bits = {}  # sparse: byte index -> byte, so a huge filter costs nothing until used
        self._count = 0

    def __len__(self):
        return self._count

    def _positions(self, value):
        """nr_hashes bit positions by double hashing two FNV-1a hashes (small ints only)."""
        from iotbpf.ebpf.bundle import fnv1a32

        mask = self.nr_bits - 1
        h1 = fnv1a32(value) & mask
        h2 = (fnv1a32(value + b"\x5a") | 1) & mask
        out = []
        for i in range(self.nr_hashes):
            out.append((h1 + i * h2) & mask)
        return out

    def push(self, value, flags=T.BPF_ANY):
        value = _b(value, self.value_size, "value")
        if flags != T.BPF_ANY:
            return -T.EINVAL
        for bit in self._positions(value):
            self._bits[bit >> 3] = self._bits.get(bit >> 3, 0) | (1 << (bit & 7))
        self._count += 1
        return 0

    def peek(self, value=None):
        value = _b(value, self.value_size, "value")
        for bit in self._positions(value):
            if not self._bits.get(bit >> 3, 0) & (1 << (bit & 7)):
                return -T.ENOENT
        return 0

    def pop(self):
        return -T.EOPNOTSUPP

    def update(self, key, value, flags=T.BPF_ANY):
        return self.push(value, flags)

    def items(self):
        return []

    def clear(self):
        self._bits = {}
        self._count = 0

    def export_state(self):
        return {"bits": [[k, self._bits[k]] for k in sorted(self._bits)], "count": self._count}

    def import_state(self, state):
        bits = {}
        limit = self.nr_bits // 8
        for pair in state.get("bits", ()):
            k, v = int(pair[0]), int(pair[1])
            if not 0 <= k < limit or not 0 <= v < 256:
                raise LoadError("map %s: bad saved bloom filter bits" % self.name)
            bits[k] = v
        self._bits = bits
        self._count = int(state.get("count", 0))


# ------------------------------------------------------------------ ring buffer
class RingBufMap(Map):
    """BPF_MAP_TYPE_RINGBUF: max_entries bytes (a power of two, page multiple) of records.

    Each record is an 8-byte header (u32 length with BUSY/DISCARD bits, u32 page offset)
    then the data padded to 8 bytes, at ``prod_pos & mask``; positions only grow, so records
    wrap around the end of the buffer as in Linux (whose double mapping makes a wrapped record
    contiguous -- here ``consume`` stitches it). reserve/submit/discard take a record from
    reservation to the consumer; ``consume()`` returns submitted records in order and stops at
    one still reserved (busy), as a Linux consumer does.
    """

    type = T.BPF_MAP_TYPE_RINGBUF
    on_wakeup = None  # fn(map) called when a record is published with a wake-up (epoll)

    def __init__(self, spec):
        Map.__init__(self, spec)
        self.size = spec.max_entries
        self.mask = self.size - 1
        self.data = bytearray()  # grows to ``size`` on first use of each part
        self.prod_pos = 0
        self.cons_pos = 0
        self.wakeups = 0

    def __len__(self):
        return len(self.consume(peek=True))

    def _write(self, pos, data):
        n = len(data)
        start = pos & self.mask
        first = min(n, self.size - start)
        self._grow(start + first)
        self.data[start:start + first] = data[:first]
        if first < n:
            self._grow(n - first)
            self.data[0:n - first] = data[first:]

    def _read(self, pos, n):
        start = pos & self.mask
        first = min(n, self.size - start)
        self._grow(start + first)
        out = bytes(self.data[start:start + first])
        if first < n:
            self._grow(n - first)
            out += bytes(self.data[0:n - first])
        return out

    def _grow(self, end):
        if len(self.data) < end:
            self.data.extend(bytes(end - len(self.data)))

    def reserve(self, size):
        """Reserve a record of ``size`` bytes: its position, or None when it does not fit."""
        if size > 0x0FFFFFFF:
            return None
        total = (size + T.BPF_RINGBUF_HDR_SZ + 7) & ~7
        if total > self.size:
            return None
        if self.prod_pos + total - self.cons_pos > self.mask:
            return None
        pos = self.prod_pos
        self._write(pos, _U32.pack(size | T.BPF_RINGBUF_BUSY_BIT) + _U32.pack(0))
        self.prod_pos = pos + total
        return pos

    def commit(self, pos, data, discard=False, flags=0):
        """Finish the record reserved at ``pos``: copy its data in and clear the busy bit."""
        header = _U32.unpack(self._read(pos, 4))[0]
        size = header & ~(T.BPF_RINGBUF_BUSY_BIT | T.BPF_RINGBUF_DISCARD_BIT)
        if not discard:
            self._write(pos + T.BPF_RINGBUF_HDR_SZ, bytes(data[:size]))
        self._write(pos, _U32.pack(size | (T.BPF_RINGBUF_DISCARD_BIT if discard else 0)))
        if not flags & T.BPF_RB_NO_WAKEUP:
            self.wakeups += 1
            if self.on_wakeup is not None:
                self.on_wakeup(self)

    def output(self, data, flags=0):
        """bpf_ringbuf_output: 0, -EAGAIN when full, -EINVAL for bad flags."""
        if flags & ~(T.BPF_RB_NO_WAKEUP | T.BPF_RB_FORCE_WAKEUP):
            return -T.EINVAL
        pos = self.reserve(len(data))
        if pos is None:
            return -T.EAGAIN
        self.commit(pos, data, False, flags)
        return 0

    def query(self, flag):
        if flag == T.BPF_RB_AVAIL_DATA:
            return self.prod_pos - self.cons_pos
        if flag == T.BPF_RB_RING_SIZE:
            return self.size
        if flag == T.BPF_RB_CONS_POS:
            return self.cons_pos
        if flag == T.BPF_RB_PROD_POS:
            return self.prod_pos
        return 0

    def consume(self, peek=False, limit=None):
        """Submitted records (bytes) from the consumer position; advances it unless ``peek``."""
        out = []
        pos = self.cons_pos
        while pos < self.prod_pos and (limit is None or len(out) < limit):
            header = _U32.unpack(self._read(pos, 4))[0]
            if header & T.BPF_RINGBUF_BUSY_BIT:
                break
            size = header & ~(T.BPF_RINGBUF_BUSY_BIT | T.BPF_RINGBUF_DISCARD_BIT)
            if not header & T.BPF_RINGBUF_DISCARD_BIT:
                out.append(self._read(pos + T.BPF_RINGBUF_HDR_SZ, size))
            pos += (size + T.BPF_RINGBUF_HDR_SZ + 7) & ~7
        if not peek:
            self.cons_pos = pos
        return out

    def items(self):
        return [(b"", r) for r in self.consume(peek=True)]

    def clear(self):
        self.cons_pos = self.prod_pos

    def export_state(self):
        return {"records": [_hex(r) for r in self.consume(peek=True)]}

    def import_state(self, state):
        self.data = bytearray()
        self.prod_pos = self.cons_pos = 0
        for text in state.get("records", ()):
            if self.output(_unhex(text)) < 0:
                raise LoadError("map %s: saved records do not fit the ring" % self.name)


# ------------------------------------------------------------------ perf event array
PERF_BUFFER_BYTES = 8 * 4096  # per CPU: bcc's and libbpf's default of 8 pages
PERF_RECORD_HEADER = 8  # perf_event_header (type, misc, size) + the u32 size of a sample


class PerfEventArrayMap(Map):
    """BPF_MAP_TYPE_PERF_EVENT_ARRAY: one perf buffer per "CPU" index (the node has one CPU, so
    max_entries 0 in a definition means 1, as libbpf sizes it to the CPU count).

    Every index is open, as if user space had opened a perf buffer on each CPU
    (``perf_buffer__new``); a buffer holds PERF_BUFFER_BYTES of samples and counts the
    samples it loses when full, which ``consume()`` reports once (bcc's ``lost_cb``).
    ``on_wakeup(map)``, when set, is called after each sample, like an epoll wake-up.
    """

    type = T.BPF_MAP_TYPE_PERF_EVENT_ARRAY
    on_wakeup = None

    def __init__(self, spec):
        Map.__init__(self, spec)
        self.buffers = {}  # index -> [records, bytes used]
        self.lost = {}  # index -> samples lost since the last consume

    def __len__(self):
        return sum(len(b[0]) for b in self.buffers.values())

    def output(self, index, data):
        """bpf_perf_event_output into buffer ``index``: 0, -E2BIG for a bad index, -ENOSPC
        when the buffer is full (the sample is counted as lost)."""
        if index == T.BPF_F_CURRENT_CPU:
            index = 0
        if index >= self.max_entries:
            return -T.E2BIG
        buf = self.buffers.get(index)
        if buf is None:
            buf = self.buffers[index] = [[], 0]
        cost = (len(data) + PERF_RECORD_HEADER + 7) & ~7
        if buf[1] + cost > PERF_BUFFER_BYTES:
            self.lost[index] = self.lost.get(index, 0) + 1
            return -T.ENOSPC
        buf[0].append(bytes(data))
        buf[1] += cost
        if self.on_wakeup is not None:
            self.on_wakeup(self)
        return 0

    def consume(self, peek=False, limit=None):
        """[(cpu, record bytes)] in order per CPU; empties the buffers unless ``peek``."""
        out = []
        for index in sorted(self.buffers):
            buf = self.buffers[index]
            take = buf[0] if limit is None else buf[0][:max(0, limit - len(out))]
            out.extend((index, r) for r in take)
            if not peek:
                del buf[0][:len(take)]
                buf[1] = sum((len(r) + PERF_RECORD_HEADER + 7) & ~7 for r in buf[0])
        return out

    def take_lost(self):
        """{cpu: samples lost} since the last call."""
        lost = self.lost
        self.lost = {}
        return lost

    def lookup(self, key):
        index = _U32.unpack(key)[0] if len(key) == 4 else self.max_entries
        if index >= self.max_entries:
            return None
        return _U32.pack(index)  # the "perf event" of that CPU: its own index

    def get_next_key(self, key):
        index = 0 if key is None else _U32.unpack(key)[0] + 1
        return _U32.pack(index) if index < self.max_entries else None

    def items(self):
        return [(_U32.pack(cpu), r) for cpu, r in self.consume(peek=True)]

    def clear(self):
        self.buffers = {}

    def export_state(self):
        return {"records": [[cpu, _hex(r)] for cpu, r in self.consume(peek=True)]}

    def import_state(self, state):
        self.buffers = {}
        for cpu, text in state.get("records", ()):
            self.output(int(cpu), _unhex(text))
