"""lpm_trie: longest-prefix-match keys (a 32-bit prefix length, then the data), as Linux's trie.
Lookups take the longest stored prefix that matches; updates and deletes need an exact prefix."""

from iotbpf.ebpf import types as T
from iotbpf.ebpf.maps.base import U32, SlabMap, exact_bytes


class LpmTrieMap(SlabMap):
    """BPF_MAP_TYPE_LPM_TRIE on Linux's key layout: ``struct bpf_lpm_trie_key { __u32
    prefixlen; __u8 data[]; }`` with prefixlen in host (little-endian) order and data in
    network order, compared bit by bit from the most significant bit of data[0].

    Entries are indexed by (prefixlen, data masked to prefixlen); a lookup tries the stored
    prefix lengths from longest to shortest, up to the key's own prefixlen.
    """

    type = T.BPF_MAP_TYPE_LPM_TRIE

    def __init__(self, spec):
        SlabMap.__init__(self, spec)
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
        return U32.pack(plen) + bytes(out)

    def _split(self, key):
        key = exact_bytes(key, self.key_size, "key")
        return U32.unpack_from(key, 0)[0], key[4:]

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
        value = exact_bytes(value, self.value_size, "value")
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
