"""lru_hash and lru_percpu_hash: a hash map that evicts the least recently used entry when full.
A program's lookup or any update marks an entry used; a user-space lookup does not (as in Linux)."""

from iotbpf.ebpf import types as T
from iotbpf.ebpf.maps.base import exact_bytes, to_hex
from iotbpf.ebpf.maps.hash import HashMap


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
        slot = self._slots.get(exact_bytes(key, self.key_size, "key"))
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
        return {"entries": [[to_hex(k), to_hex(self.lookup(k))] for k in self.lru_order()]}


class LruPercpuHashMap(LruHashMap):
    type = T.BPF_MAP_TYPE_LRU_PERCPU_HASH
