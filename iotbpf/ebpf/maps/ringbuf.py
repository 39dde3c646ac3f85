"""Buffers to user space: ringbuf (one shared ring of records) and perf_event_array (per CPU).
Records are reserved, committed or discarded, then consumed in order by the reader."""

from iotbpf.ebpf import types as T
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.maps.base import U32, Map, from_hex, to_hex


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
        self._write(pos, U32.pack(size | T.BPF_RINGBUF_BUSY_BIT) + U32.pack(0))
        self.prod_pos = pos + total
        return pos

    def commit(self, pos, data, discard=False, flags=0):
        """Finish the record reserved at ``pos``: copy its data in and clear the busy bit."""
        header = U32.unpack(self._read(pos, 4))[0]
        size = header & ~(T.BPF_RINGBUF_BUSY_BIT | T.BPF_RINGBUF_DISCARD_BIT)
        if not discard:
            self._write(pos + T.BPF_RINGBUF_HDR_SZ, bytes(data[:size]))
        self._write(pos, U32.pack(size | (T.BPF_RINGBUF_DISCARD_BIT if discard else 0)))
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
            header = U32.unpack(self._read(pos, 4))[0]
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
        return {"records": [to_hex(r) for r in self.consume(peek=True)]}

    def import_state(self, state):
        self.data = bytearray()
        self.prod_pos = self.cons_pos = 0
        for text in state.get("records", ()):
            if self.output(from_hex(text)) < 0:
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
        index = U32.unpack(key)[0] if len(key) == 4 else self.max_entries
        if index >= self.max_entries:
            return None
        return U32.pack(index)  # the "perf event" of that CPU: its own index

    def get_next_key(self, key):
        index = 0 if key is None else U32.unpack(key)[0] + 1
        return U32.pack(index) if index < self.max_entries else None

    def items(self):
        return [(U32.pack(cpu), r) for cpu, r in self.consume(peek=True)]

    def clear(self):
        self.buffers = {}

    def export_state(self):
        return {"records": [[cpu, to_hex(r)] for cpu, r in self.consume(peek=True)]}

    def import_state(self, state):
        self.buffers = {}
        for cpu, text in state.get("records", ()):
            self.output(int(cpu), from_hex(text))
