"""bloom_filter: push adds a value, peek answers 0 (maybe present) or -ENOENT (absent).
Sized as Linux sizes it (base.py's bloom_bits); hashes are FNV-1a by double hashing."""

from iotbpf.ebpf import types as T
from iotbpf.ebpf.checksum import fnv1a32
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.maps.base import Map, bloom_bits, bloom_hashes, exact_bytes


class BloomFilterMap(Map):
    """BPF_MAP_TYPE_BLOOM_FILTER: push adds a value, peek answers 0 (maybe present) or -ENOENT
    (certainly absent); no false negatives. ``map_extra`` low 4 bits = number of hashes."""

    type = T.BPF_MAP_TYPE_BLOOM_FILTER

    def __init__(self, spec):
        Map.__init__(self, spec)
        self.nr_hashes = bloom_hashes(spec)
        self.nr_bits = bloom_bits(spec.max_entries, self.nr_hashes)
        self._bits = {}  # sparse: byte index -> byte, so a huge filter costs nothing until used
        self._count = 0

    def __len__(self):
        return self._count

    def _positions(self, value):
        """nr_hashes bit positions by double hashing two FNV-1a hashes (small ints only)."""
        mask = self.nr_bits - 1
        h1 = fnv1a32(value) & mask
        h2 = (fnv1a32(value + b"\x5a") | 1) & mask
        out = []
        for i in range(self.nr_hashes):
            out.append((h1 + i * h2) & mask)
        return out

    def push(self, value, flags=T.BPF_ANY):
        value = exact_bytes(value, self.value_size, "value")
        if flags != T.BPF_ANY:
            return -T.EINVAL
        for bit in self._positions(value):
            self._bits[bit >> 3] = self._bits.get(bit >> 3, 0) | (1 << (bit & 7))
        self._count += 1
        return 0

    def peek(self, value=None):
        value = exact_bytes(value, self.value_size, "value")
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
