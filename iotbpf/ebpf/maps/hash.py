"""Hash maps: hash, percpu_hash (one CPU), and the maps of maps (array_of_maps, hash_of_maps).
Values are slot-allocated in one slab; freed slots are reused."""

from iotbpf.ebpf import types as T
from iotbpf.ebpf.maps.base import U32, Map, SlabMap, exact_bytes


class MapOfMaps(Map):
    """BPF_MAP_TYPE_ARRAY_OF_MAPS / HASH_OF_MAPS: keys -> inner Maps of the template's shape.

    A program's bpf_map_lookup_elem returns the inner map (NULL when absent), which it then
    uses as any map; programs cannot update or delete entries (as in Linux). User space
    changes entries with ``set_map(key, map)`` / ``delete(key)``; ``inner_maps()`` lists them.
    Inner maps are not pinned with the outer one: their entries are re-made at load.
    """

    def __init__(self, spec):
        Map.__init__(self, spec)
        self.type = spec.type
        self.inner = {}  # key bytes -> Map

    def __len__(self):
        return len(self.inner)

    def _check_key(self, key):
        key = exact_bytes(key, self.key_size, "key")
        if self.type == T.BPF_MAP_TYPE_ARRAY_OF_MAPS and U32.unpack(key)[0] >= self.max_entries:
            return None
        return key

    def set_map(self, key, inner):
        """Put ``inner`` (a Map) under ``key``: 0, or -E2BIG / -EINVAL (wrong shape)."""
        key = self._check_key(key)
        if key is None:
            return -T.E2BIG
        template = getattr(self, "template", None)
        if template is not None and (inner.type, inner.key_size, inner.value_size) != \
                (template.type, template.key_size, template.value_size):
            return -T.EINVAL
        if key not in self.inner and len(self.inner) >= self.max_entries:
            return -T.E2BIG
        self.inner[key] = inner
        return 0

    def get_map(self, key):
        return self.inner.get(exact_bytes(key, self.key_size, "key"))

    def lookup(self, key):
        inner = self.get_map(key)
        return None if inner is None else U32.pack(id(inner) & 0xFFFFFFFF)  # an id, as Linux gives

    def delete(self, key):
        key = exact_bytes(key, self.key_size, "key")
        if key not in self.inner:
            return -T.ENOENT
        del self.inner[key]
        return 0

    def get_next_key(self, key):
        keys = sorted(self.inner)
        if key is None:
            return keys[0] if keys else None
        later = [k for k in keys if k > key]
        return later[0] if later else None

    def inner_maps(self):
        return [(k, self.inner[k]) for k in sorted(self.inner)]

    def export_state(self):
        return {"entries": []}  # inner maps are reattached at load, like prog_array programs

    def import_state(self, state):
        return None


class HashMap(SlabMap):
    """BPF_MAP_TYPE_HASH: fixed-size keys; values slot-allocated, freed slots reused."""

    type = T.BPF_MAP_TYPE_HASH

    def __init__(self, spec):
        SlabMap.__init__(self, spec)
        self._slots = {}  # key bytes -> slot
        self._keys = []  # slot -> key bytes, or None when free
        self._free = []

    def __len__(self):
        return len(self._slots)

    def _check_flags(self, flags):
        return not (flags & ~T.BPF_F_LOCK > T.BPF_EXIST or flags & T.BPF_F_LOCK)

    def _alloc(self, key):
        if self._free:
            slot = self._free.pop()
            self._keys[slot] = key
        else:
            slot = len(self._keys)
            self._keys.append(key)
        self._slots[key] = slot
        return slot

    def _release(self, key):
        slot = self._slots.pop(key)
        self._keys[slot] = None
        self._free.append(slot)
        return slot

    def lookup_slot(self, key):
        return self._slots.get(exact_bytes(key, self.key_size, "key"))

    def lookup(self, key):
        slot = self._slots.get(exact_bytes(key, self.key_size, "key"))
        return None if slot is None else self._value(slot)

    def _full(self):
        return len(self._slots) >= self.max_entries

    def update(self, key, value, flags=T.BPF_ANY):
        key = exact_bytes(key, self.key_size, "key")
        value = exact_bytes(value, self.value_size, "value")
        if not self._check_flags(flags):
            return -T.EINVAL
        slot = self._slots.get(key)
        if slot is not None:
            if flags == T.BPF_NOEXIST:
                return -T.EEXIST
            self._store(slot, value)
            self._touch(slot)
            return 0
        if flags == T.BPF_EXIST:
            return -T.ENOENT
        if self._full():
            slot = self._evict()
            if slot is None:
                return -T.E2BIG
        slot = self._alloc(key)
        self._store(slot, value)
        self._touch(slot)
        return 0

    def _touch(self, slot):
        """Hook for LRU order: a slot was used."""

    def _evict(self):
        """Hook for LRU eviction when full: plain hash maps refuse with -E2BIG."""
        return None

    def delete(self, key):
        key = exact_bytes(key, self.key_size, "key")
        if key not in self._slots:
            return -T.ENOENT
        self._release(key)
        return 0

    def get_next_key(self, key):
        """Slot order; a missing (or None) key gives the first key, as Linux does."""
        start = 0
        if key is not None:
            slot = self._slots.get(exact_bytes(key, self.key_size, "key"))
            if slot is not None:
                start = slot + 1
        keys = self._keys
        for slot in range(start, len(keys)):
            if keys[slot] is not None:
                return keys[slot]
        return None

    def clear(self):
        for key in list(self._slots):
            self._release(key)


class PercpuHashMap(HashMap):
    """BPF_MAP_TYPE_PERCPU_HASH on a single CPU: a hash map."""

    type = T.BPF_MAP_TYPE_PERCPU_HASH
