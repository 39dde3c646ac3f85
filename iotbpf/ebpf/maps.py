"""eBPF maps with Linux's type numbers and semantics: hash, array, prog_array, percpu hash/array
(one CPU), lru_hash (true LRU), lpm_trie, queue, stack, ringbuf and bloom_filter.

Keys and values are bytes of fixed size; updates take BPF_ANY / BPF_NOEXIST / BPF_EXIST and
return 0 or a negative errno exactly where Linux does. Memory is only ever allocated for
entries actually used, so a hostile ``max_entries`` can never make the host allocate it;
``MapBudget`` refuses, at load, maps whose worst case exceeds the app's budget.
MicroPython-compatible; imports nothing of iotbpf outside ``ebpf``.

Value storage protocol (how the VM reaches map values; agreed with vm.py)
    A map whose values programs may point into (hash, array, percpu, lru, lpm) has:
      * ``map.spec`` (MapSpec) and ``map.value_size``;
      * ``map.values``: ONE bytearray per map; value slot k lives at ``k * value_size``.
        The object is never replaced, but it grows in place (``bytearray.extend``) when a
        slot is first used, so the VM must take the region size from ``len(map.values)``
        (``Memory.map_values_base`` registers it once as region ``map:<name>``);
      * ``map.readonly``: True for BPF_F_RDONLY_PROG maps (.rodata): the region is read-only;
      * ``map.lookup_slot(key) -> slot or None``: the lookup a program makes (marks LRU use).
    A pointer returned by bpf_map_lookup_elem is ``ex.map_value_pointer(map, slot)``, so a
    program updates values in place (stores, atomics) and the Python side sees them.
    Queue, stack, bloom_filter and ringbuf copy values in and out instead (``values`` is
    None); ProgArrayMap offers ``get_program(index) -> Program or None`` for tail calls.

Python (user space) API, same on every map: ``lookup(key) -> bytes|None`` (a copy; does
not touch LRU order), ``update(key, value, flags=BPF_ANY) -> 0|-errno``,
``delete(key) -> 0|-errno``, ``get_next_key(key|None) -> bytes|None``, ``keys()``,
``items()``, ``len(map)``; queue-like maps add ``push(value, flags)``, ``pop()``, ``peek()``
returning bytes or a negative errno int. ``export_state()`` / ``import_state(d)`` give a
JSON-able snapshot for pinning (pin.py).

lru_hash, lpm_trie, bloom_filter and ringbuf live in maps_more.py, loaded on first use
(``map_class``) so a microcontroller keeps their code out of RAM unless an app needs them.
"""

import struct

from iotbpf.ebpf import isa
from iotbpf.ebpf import types as T
from iotbpf.ebpf.errors import LoadError

MAX_KEY_SIZE = 512  # Linux: key_size > MAX_BPF_STACK is E2BIG
MAX_VALUE_SIZE = 1 << 20
MAX_ENTRIES = 0xFFFFFFFF
PAGE_SIZE = 4096
ENTRY_OVERHEAD = 48  # bytes of bookkeeping charged per possible entry (dict slot, key, lists)
DEFAULT_BUDGET = 16 << 20  # bytes, when the caller gives none
LPM_DATA_SIZE_MAX = 256
LPM_VAL_SIZE_MAX = 0xFFFFFFFF - 64
BLOOM_DEFAULT_HASHES = 5

_U32 = isa.make_struct("<I")


def _b(data, size, what):
    """``data`` as bytes of exactly ``size`` bytes (ValueError otherwise: a Python caller bug)."""
    if data.__class__ is not bytes:
        data = bytes(data)
    if len(data) != size:
        raise ValueError("%s must be %d bytes, got %d" % (what, size, len(data)))
    return data


def _bloom_hashes(spec):
    n = getattr(spec, "map_extra", 0) & 0xF
    return n or BLOOM_DEFAULT_HASHES


def _bloom_bits(max_entries, nr_hashes):
    """Bit-array size as Linux computes it: entries * hashes / ln 2, rounded up to a power of two."""
    want = max_entries * nr_hashes * 7 // 5 + 1
    bits = 8
    while bits < want and bits < (1 << 32):
        bits <<= 1
    return bits


class MapBudget:
    """A per-app memory budget: maps are charged their worst-case size when created."""

    def __init__(self, limit_bytes=DEFAULT_BUDGET, owner="app"):
        self.limit = limit_bytes
        self.used = 0
        self.owner = owner

    def charge(self, name, nbytes):
        if self.used + nbytes > self.limit:
            raise LoadError("map %s needs up to %d bytes but %s has %d of its %d-byte map budget left"
                            % (name, nbytes, self.owner, self.limit - self.used, self.limit))
        self.used += nbytes


def worst_case_bytes(spec):
    """The most memory the map can ever use (what the budget is charged)."""
    if spec.type == T.BPF_MAP_TYPE_RINGBUF:
        return spec.max_entries + 64
    if spec.type == T.BPF_MAP_TYPE_PERF_EVENT_ARRAY:
        return spec.max_entries * 8 * PAGE_SIZE + 64
    if spec.type == T.BPF_MAP_TYPE_BLOOM_FILTER:
        return _bloom_bits(spec.max_entries, _bloom_hashes(spec)) // 8 + 64
    if spec.type in T.ARRAY_MAP_TYPES or spec.type == T.BPF_MAP_TYPE_PROG_ARRAY:
        return spec.max_entries * spec.value_size + 64
    return spec.max_entries * (spec.key_size + spec.value_size + ENTRY_OVERHEAD) + 64


class Map:
    """Common parts of every map: spec, sizes, the Python API defaults."""

    type = T.BPF_MAP_TYPE_UNSPEC
    values = None
    frozen = False  # bpf_map_freeze: user space may no longer write (programs still may)

    def __init__(self, spec):
        self.spec = spec
        self.name = spec.name
        self.key_size = spec.key_size
        self.value_size = spec.value_size
        self.max_entries = spec.max_entries
        self.flags = spec.flags
        self.readonly = spec.readonly

    def __repr__(self):
        return "<%s %s: %d of %d entries>" % (type(self).__name__, self.name, len(self),
                                              self.max_entries)

    def __len__(self):
        return 0

    def freeze(self):
        """BPF_MAP_FREEZE: from now on ``update``/``delete`` from user space return -EPERM.
        Loaders freeze .rodata once its programs are loaded, as libbpf does."""
        self.frozen = True

    # Linux answers these with an error for map types that do not support them.
    def lookup_slot(self, key):
        return None

    def lookup(self, key):
        return None

    def update(self, key, value, flags=T.BPF_ANY):
        return -T.EINVAL

    def delete(self, key):
        return -T.EINVAL

    def get_next_key(self, key):
        return None

    def push(self, value, flags=T.BPF_ANY):
        return -T.EINVAL

    def pop(self):
        return -T.EINVAL

    def peek(self, value=None):
        return -T.EINVAL

    def keys(self):
        out = []
        key = self.get_next_key(None)
        while key is not None:
            out.append(key)
            key = self.get_next_key(key)
        return out

    def items(self):
        return [(k, self.lookup(k)) for k in self.keys()]

    def clear(self):
        for key in self.keys():
            self.delete(key)

    def export_state(self):
        """JSON-able contents: ``{"entries": [[key_hex, value_hex], ...]}``."""
        return {"entries": [[_hex(k), _hex(v)] for k, v in self.items()]}

    def import_state(self, state):
        """Replace the contents with a snapshot from ``export_state`` (LoadError if it does not fit)."""
        self.clear()
        for pair in state.get("entries", ()):
            key = _unhex(pair[0])
            value = _unhex(pair[1])
            if len(key) != self.key_size or len(value) != self.value_size:
                raise LoadError("map %s: entry sizes %d/%d do not match key_size %d/value_size %d"
                                % (self.name, len(key), len(value), self.key_size, self.value_size))
            err = self.update(key, value, T.BPF_ANY)
            if err < 0:
                raise LoadError("map %s: restoring an entry failed with errno %d" % (self.name, -err))


def _hex(data):
    return "".join("%02x" % b for b in data)


def _unhex(text):
    try:
        return bytes.fromhex(text)
    except (ValueError, TypeError):
        raise LoadError("bad hex string in map state") from None


class _SlabMap(Map):
    """A map whose values live in one lazily grown bytearray, slot-indexed."""

    def __init__(self, spec):
        Map.__init__(self, spec)
        self.values = bytearray()

    def _ensure(self, slot):
        """Grow ``values`` in place so that ``slot`` exists (doubling, capped at max_entries)."""
        need = (slot + 1) * self.value_size
        have = len(self.values)
        if need > have:
            cap = self.max_entries * self.value_size
            grow = max(need, min(cap, 2 * have))
            self.values.extend(bytes(grow - have))

    def _value(self, slot):
        off = slot * self.value_size
        return bytes(self.values[off:off + self.value_size])

    def _store(self, slot, value):
        self._ensure(slot)
        off = slot * self.value_size
        self.values[off:off + self.value_size] = value


# ------------------------------------------------------------------ arrays
class ArrayMap(_SlabMap):
    """BPF_MAP_TYPE_ARRAY: u32 index keys, every element exists (zero-filled), no delete."""

    type = T.BPF_MAP_TYPE_ARRAY

    def __init__(self, spec):
        _SlabMap.__init__(self, spec)
        if spec.data is not None:
            data = bytes(spec.data)
            if len(data) > spec.max_entries * spec.value_size:
                raise LoadError("map %s: initial data is %d bytes, larger than the map"
                                % (spec.name, len(data)))
            self.values.extend(data)
        if self.max_entries == 1 or self.max_entries * self.value_size <= 4096:
            self._ensure(self.max_entries - 1)  # global data and small arrays exist whole

    def __len__(self):
        return self.max_entries

    def _index(self, key):
        key = _b(key, 4, "array key")
        return _U32.unpack(key)[0]

    def lookup_slot(self, key):
        index = self._index(key)
        if index >= self.max_entries:
            return None
        self._ensure(index)
        return index

    def lookup(self, key):
        """A copy of the element (zeros if never written); never grows the storage."""
        index = self._index(key)
        if index >= self.max_entries:
            return None
        if (index + 1) * self.value_size > len(self.values):
            return bytes(self.value_size)
        return self._value(index)

    def used_items(self):
        """(key, value) of the elements ever given storage that are not all zero."""
        out = []
        zero = bytes(self.value_size)
        for index in range(len(self.values) // self.value_size):
            value = self._value(index)
            if value != zero:
                out.append((_U32.pack(index), value))
        return out

    def update(self, key, value, flags=T.BPF_ANY):
        value = _b(value, self.value_size, "value")
        if self.frozen:
            return -T.EPERM
        if flags & ~T.BPF_F_LOCK > T.BPF_EXIST or flags & T.BPF_F_LOCK:
            return -T.EINVAL
        index = self._index(key)
        if index >= self.max_entries:
            return -T.E2BIG
        if flags == T.BPF_NOEXIST:
            return -T.EEXIST
        self._store(index, value)
        return 0

    def delete(self, key):
        return -T.EINVAL

    def get_next_key(self, key):
        if key is None:
            index = 0
        else:
            index = self._index(key)
            index = 0 if index >= self.max_entries else index + 1
        if index >= self.max_entries:
            return None
        return _U32.pack(index)

    def clear(self):
        self.values[:] = bytes(len(self.values))

    def export_state(self):
        """Arrays are stored whole (trailing zero slots omitted)."""
        data = bytes(self.values)
        end = len(data)
        while end > 0 and data[end - 1] == 0:
            end -= 1
        return {"array": _hex(data[:end])}

    def import_state(self, state):
        if "array" not in state:
            return Map.import_state(self, state)
        data = _unhex(state["array"])
        if len(data) > self.max_entries * self.value_size:
            raise LoadError("map %s: saved array is larger than the map" % self.name)
        self.clear()
        if data:
            self._ensure((len(data) - 1) // self.value_size)
            self.values[0:len(data)] = data
        return None


class PercpuArrayMap(ArrayMap):
    """BPF_MAP_TYPE_PERCPU_ARRAY on a single CPU: an array."""

    type = T.BPF_MAP_TYPE_PERCPU_ARRAY


class ProgArrayMap(Map):
    """BPF_MAP_TYPE_PROG_ARRAY: index -> Program, for bpf_tail_call.

    Programs cannot read or write it (only tail-call through it); the loader fills it with
    ``set_program`` (or from the object's ``__array(values, ...)`` initialiser, see
    ``fill_prog_arrays``). Programs are code, not data: pinning keeps no entries.
    """

    type = T.BPF_MAP_TYPE_PROG_ARRAY

    def __init__(self, spec):
        Map.__init__(self, spec)
        self.programs = {}

    def __len__(self):
        return len(self.programs)

    def set_program(self, index, program):
        """Put ``program`` at ``index`` (None clears it); ValueError when out of range."""
        if not 0 <= index < self.max_entries:
            raise ValueError("prog_array %s: index %d out of range (max_entries %d)"
                             % (self.name, index, self.max_entries))
        if program is None:
            self.programs.pop(index, None)
        else:
            self.programs[index] = program

    def get_program(self, index):
        return self.programs.get(index)

    def delete(self, key):
        index = _U32.unpack(_b(key, 4, "key"))[0]
        if index >= self.max_entries:
            return -T.E2BIG
        if index not in self.programs:
            return -T.ENOENT
        del self.programs[index]
        return 0

    def get_next_key(self, key):
        start = 0 if key is None else _U32.unpack(_b(key, 4, "key"))[0] + 1
        later = [i for i in self.programs if i >= start]
        return _U32.pack(min(later)) if later else None

    def export_state(self):
        return {"entries": []}  # programs are not data: they are reattached at load

    def import_state(self, state):
        return None


# ------------------------------------------------------------------ hash maps
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
        key = _b(key, self.key_size, "key")
        if self.type == T.BPF_MAP_TYPE_ARRAY_OF_MAPS and _U32.unpack(key)[0] >= self.max_entries:
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
        return self.inner.get(_b(key, self.key_size, "key"))

    def lookup(self, key):
        inner = self.get_map(key)
        return None if inner is None else _U32.pack(id(inner) & 0xFFFFFFFF)  # an id, as Linux gives

    def delete(self, key):
        key = _b(key, self.key_size, "key")
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


class HashMap(_SlabMap):
    """BPF_MAP_TYPE_HASH: fixed-size keys; values slot-allocated, freed slots reused."""

    type = T.BPF_MAP_TYPE_HASH

    def __init__(self, spec):
        _SlabMap.__init__(self, spec)
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
        return self._slots.get(_b(key, self.key_size, "key"))

    def lookup(self, key):
        slot = self._slots.get(_b(key, self.key_size, "key"))
        return None if slot is None else self._value(slot)

    def _full(self):
        return len(self._slots) >= self.max_entries

    def update(self, key, value, flags=T.BPF_ANY):
        key = _b(key, self.key_size, "key")
        value = _b(value, self.value_size, "value")
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
        key = _b(key, self.key_size, "key")
        if key not in self._slots:
            return -T.ENOENT
        self._release(key)
        return 0

    def get_next_key(self, key):
        """Slot order; a missing (or None) key gives the first key, as Linux does."""
        start = 0
        if key is not None:
            slot = self._slots.get(_b(key, self.key_size, "key"))
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


# ------------------------------------------------------------------ queue, stack, bloom
class QueueMap(Map):
    """BPF_MAP_TYPE_QUEUE: FIFO of values; push with BPF_EXIST overwrites the oldest when full."""

    type = T.BPF_MAP_TYPE_QUEUE

    def __init__(self, spec):
        Map.__init__(self, spec)
        self._items = []

    def __len__(self):
        return len(self._items)

    def push(self, value, flags=T.BPF_ANY):
        value = _b(value, self.value_size, "value")
        if flags & ~T.BPF_EXIST:
            return -T.EINVAL
        if len(self._items) >= self.max_entries:
            if not flags & T.BPF_EXIST:
                return -T.E2BIG
            self._items.pop(0)  # Linux drops the oldest element, for queues and stacks alike
        self._items.append(value)
        return 0

    def _take(self, remove):
        if not self._items:
            return -T.ENOENT
        index = self._next_index()
        value = self._items[index]
        if remove:
            self._items.pop(index)
        return value

    def _next_index(self):
        return 0

    def pop(self):
        return self._take(True)

    def peek(self, value=None):
        return self._take(False)

    def update(self, key, value, flags=T.BPF_ANY):
        return self.push(value, flags)

    def items(self):
        return [(b"", v) for v in self._items]

    def keys(self):
        return []

    def clear(self):
        self._items = []

    def export_state(self):
        return {"items": [_hex(v) for v in self._items]}

    def import_state(self, state):
        items = [_unhex(v) for v in state.get("items", ())]
        for v in items:
            if len(v) != self.value_size:
                raise LoadError("map %s: saved item of %d bytes, value_size is %d"
                                % (self.name, len(v), self.value_size))
        if len(items) > self.max_entries:
            raise LoadError("map %s: %d saved items exceed max_entries" % (self.name, len(items)))
        self._items = items


class StackMap(QueueMap):
    """BPF_MAP_TYPE_STACK: LIFO of values."""

    type = T.BPF_MAP_TYPE_STACK

    def _next_index(self):
        return len(self._items) - 1


# ------------------------------------------------------------------ creation
MAP_CLASSES = {
    T.BPF_MAP_TYPE_HASH: HashMap,
    T.BPF_MAP_TYPE_ARRAY: ArrayMap,
    T.BPF_MAP_TYPE_PROG_ARRAY: ProgArrayMap,
    T.BPF_MAP_TYPE_PERCPU_HASH: PercpuHashMap,
    T.BPF_MAP_TYPE_PERCPU_ARRAY: PercpuArrayMap,
    T.BPF_MAP_TYPE_QUEUE: QueueMap,
    T.BPF_MAP_TYPE_STACK: StackMap,
    T.BPF_MAP_TYPE_ARRAY_OF_MAPS: MapOfMaps,
    T.BPF_MAP_TYPE_HASH_OF_MAPS: MapOfMaps,
}
# Types whose classes live in maps_more.py, loaded on first use (RAM on microcontrollers).
MORE_MAP_CLASSES = {
    T.BPF_MAP_TYPE_LRU_HASH: "LruHashMap",
    T.BPF_MAP_TYPE_LRU_PERCPU_HASH: "LruPercpuHashMap",
    T.BPF_MAP_TYPE_LPM_TRIE: "LpmTrieMap",
    T.BPF_MAP_TYPE_RINGBUF: "RingBufMap",
    T.BPF_MAP_TYPE_BLOOM_FILTER: "BloomFilterMap",
    T.BPF_MAP_TYPE_PERF_EVENT_ARRAY: "PerfEventArrayMap",
}
_MORE_NAMES = ("LruHashMap", "LruPercpuHashMap", "LpmTrieMap", "RingBufMap", "BloomFilterMap",
               "PerfEventArrayMap")


def map_class(map_type):
    """The Map class for a BPF_MAP_TYPE_* number, or None if the type is not supported."""
    cls = MAP_CLASSES.get(map_type)
    if cls is None and map_type in MORE_MAP_CLASSES:
        from iotbpf.ebpf import maps_more

        cls = getattr(maps_more, MORE_MAP_CLASSES[map_type])
    return cls


def __getattr__(name):
    # the classes moved to maps_more.py stay importable from here
    if name in _MORE_NAMES:
        from iotbpf.ebpf import maps_more

        return getattr(maps_more, name)
    raise AttributeError("module 'iotbpf.ebpf.maps' has no attribute " + repr(name))


def check_spec(spec):
    """Raise LoadError when Linux would refuse to create this map (-EINVAL / -E2BIG)."""
    name = spec.name
    t = spec.type
    if t not in MAP_CLASSES and t not in MORE_MAP_CLASSES:
        raise LoadError("map %s: map type %s is not supported (supported: %s)"
                        % (name, T.MAP_TYPE_NAMES.get(t, str(t)),
                           ", ".join(T.MAP_TYPE_NAMES[k] for k in sorted(list(MAP_CLASSES) + list(MORE_MAP_CLASSES)))))
    for field in ("key_size", "value_size", "max_entries", "flags"):
        v = getattr(spec, field)
        if not isinstance(v, int) or v < 0 or v > MAX_ENTRIES:
            raise LoadError("map %s: bad %s %r" % (name, field, v))
    ks, vs, n = spec.key_size, spec.value_size, spec.max_entries
    tname = T.MAP_TYPE_NAMES[t]

    def bad(reason):
        raise LoadError("map %s (%s): %s" % (name, tname, reason))

    if n == 0:
        bad("max_entries must be > 0")
    if ks > MAX_KEY_SIZE:
        bad("key_size %d exceeds %d" % (ks, MAX_KEY_SIZE))
    if vs > MAX_VALUE_SIZE:
        bad("value_size %d exceeds %d" % (vs, MAX_VALUE_SIZE))
    if t in T.ARRAY_MAP_TYPES:
        if ks != 4:
            bad("key_size must be 4, got %d" % ks)
        if vs == 0:
            bad("value_size must be > 0")
    elif t == T.BPF_MAP_TYPE_PROG_ARRAY:
        if ks != 4 or vs != 4:
            bad("key_size and value_size must be 4, got %d and %d" % (ks, vs))
    elif t == T.BPF_MAP_TYPE_LPM_TRIE:
        if not 5 <= ks <= 4 + LPM_DATA_SIZE_MAX:
            bad("key_size must be 4 + 1..%d bytes of data, got %d" % (LPM_DATA_SIZE_MAX, ks))
        if vs == 0:
            bad("value_size must be > 0")
        if not spec.flags & T.BPF_F_NO_PREALLOC:
            bad("map_flags must include BPF_F_NO_PREALLOC, as Linux requires")
    elif t in (T.BPF_MAP_TYPE_QUEUE, T.BPF_MAP_TYPE_STACK, T.BPF_MAP_TYPE_BLOOM_FILTER):
        if ks != 0:
            bad("key_size must be 0, got %d" % ks)
        if vs == 0:
            bad("value_size must be > 0")
    elif t in T.MAP_IN_MAP_TYPES:
        if vs != 4 or (t == T.BPF_MAP_TYPE_ARRAY_OF_MAPS and ks != 4) or ks == 0:
            bad("value_size must be 4 (a map fd) and key_size > 0 (4 for an array of maps)")
    elif t == T.BPF_MAP_TYPE_PERF_EVENT_ARRAY:
        if ks != 4 or vs != 4:
            bad("key_size and value_size must be 4 (sizeof(int), sizeof(__u32)), got %d and %d"
                % (ks, vs))
    elif t == T.BPF_MAP_TYPE_RINGBUF:
        if ks != 0 or vs != 0:
            bad("key_size and value_size must be 0")
        if n & (n - 1) or n % PAGE_SIZE:
            bad("max_entries (the size in bytes) must be a power of 2 and a multiple of %d, got %d"
                % (PAGE_SIZE, n))
    else:
        if ks == 0 or vs == 0:
            bad("key_size and value_size must be > 0")


def create_map(spec, budget=None):
    """A new, empty map for ``spec`` (LoadError if Linux would refuse it or it exceeds ``budget``,
    a MapBudget; without one a default budget of DEFAULT_BUDGET bytes applies to this map)."""
    check_spec(spec)
    if budget is None:
        budget = MapBudget(DEFAULT_BUDGET, "this program")
    budget.charge(spec.name, worst_case_bytes(spec))
    return map_class(spec.type)(spec)


def create_maps(specs, budget=None):
    """Maps for a program's specs, charged to one budget (default DEFAULT_BUDGET for all)."""
    if budget is None:
        budget = MapBudget(DEFAULT_BUDGET, "this program")
    return [create_map(spec, budget) for spec in specs]


def instantiate(programs, budget=None, maps=None):
    """Give every program in ``programs`` (one Program or a list) live maps in place of the
    MapSpecs a loader left in ``program.maps``: one Map per name, shared by all the programs
    (as the programs of one object share their maps). ``maps`` (name -> Map) supplies maps
    that already exist; it is filled in and returned."""
    if not isinstance(programs, (list, tuple)):
        # one program of an object: its siblings (the loader's ``siblings``) get the same maps,
        # so its prog_arrays hold the object's programs, as after a libbpf object load
        programs = [programs] + [p for p in getattr(programs, "siblings", ()) if p is not programs]
    if maps is None:
        maps = {}
    if budget is None:
        budget = MapBudget(DEFAULT_BUDGET, "this program")
    for program in programs:
        bound = []
        for entry in program.maps:
            if isinstance(entry, Map):
                maps.setdefault(entry.name, entry)
                bound.append(maps[entry.name])
                continue
            m = maps.get(entry.name)
            if m is None:
                m = create_map(entry, budget)
                maps[entry.name] = m
            bound.append(m)
        program.maps = bound
    fill_prog_arrays(programs, maps)
    _fill_maps_of_maps(programs, maps)
    return maps


def _fill_maps_of_maps(programs, maps):
    """Give maps of maps their template and the inner maps their object declared."""
    specs = programs[0].maps if programs else []
    for m in list(maps.values()):
        inner = getattr(m.spec, "inner", None)
        if not isinstance(m, MapOfMaps) or inner is None or getattr(m, "template", None) is not None:
            continue
        template, entries = inner
        if 0 <= template < len(specs):
            m.template = specs[template]
        for index in entries:
            target = maps.get(entries[index])
            if target is not None:
                m.set_map(int(index).to_bytes(m.key_size, "little") if m.key_size <= 8 else
                          _U32.pack(int(index)) + bytes(m.key_size - 4), target)


def freeze_readonly(maps):
    """Freeze every BPF_F_RDONLY_PROG map (.rodata) among ``maps`` (Maps or specs): called when
    programs are loaded, after which user space can no longer change their constants."""
    for m in maps:
        if isinstance(m, Map) and m.readonly:
            m.freeze()


def fill_prog_arrays(programs, maps):
    """Put programs into the prog_array slots their object declared (spec.programs)."""
    for m in maps.values():
        wanted = getattr(m.spec, "programs", None)
        if m.type != T.BPF_MAP_TYPE_PROG_ARRAY or not wanted:
            continue
        for index in wanted:
            fname = wanted[index]
            for program in programs:
                labels = getattr(program, "labels", None) or {}
                if labels.get(fname) == 0 and int(index) < m.max_entries:
                    m.set_program(int(index), program)


# ------------------------------------------------------------------ decoding for dumps
_INT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}


def decode_value(desc, data):
    """Python value of ``data`` described by a BTF type description (btf.describe / MapSpec
    key_type, value_type): ints, dicts for structs, lists for arrays, str for char arrays;
    raw hex where the description does not say enough."""
    if not desc or not isinstance(desc, dict):
        return _hex(data)
    kind = desc.get("kind")
    size = desc.get("size", len(data))
    if kind in ("int", "enum") and size in _INT_FORMATS and len(data) >= size:
        fmt = _INT_FORMATS[size]
        if desc.get("signed"):
            fmt = fmt.lower()
        value = struct.unpack_from("<" + fmt, data, 0)[0]
        if kind == "enum":
            names = desc.get("values") or {}
            return names.get(str(value), names.get(value, value))
        if desc.get("bool"):
            return bool(value)
        return value
    if kind == "array":
        elem = desc.get("elem") or {}
        n = desc.get("len", 0)
        esize = elem.get("size", 0)
        if not esize or n * esize > len(data):
            return _hex(data)
        if elem.get("kind") == "int" and esize == 1 and (elem.get("char") or "char" in elem.get("name", "")):
            raw = bytes(data[:n])
            end = raw.find(b"\0")
            return "".join(chr(b) for b in (raw if end < 0 else raw[:end]))
        return [decode_value(elem, data[i * esize:(i + 1) * esize]) for i in range(n)]
    if kind in ("struct", "union"):
        out = {}
        for m in desc.get("members", ()):
            t = m.get("type") or {}
            off = m.get("offset", 0)
            msize = t.get("size", 0)
            if off + msize <= len(data):
                out[m.get("name") or "?"] = decode_value(t, data[off:off + msize])
        return out
    return _hex(data)
