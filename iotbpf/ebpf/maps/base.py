"""What every map shares: the size limits, the per-app MapBudget, the Map base class and the
slab of values programs point into (``SlabMap``). MicroPython-compatible."""

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

U32 = isa.make_struct("<I")


def exact_bytes(data, size, what):
    """``data`` as bytes of exactly ``size`` bytes (ValueError otherwise: a Python caller bug)."""
    if data.__class__ is not bytes:
        data = bytes(data)
    if len(data) != size:
        raise ValueError("%s must be %d bytes, got %d" % (what, size, len(data)))
    return data



def bloom_hashes(spec):
    n = getattr(spec, "map_extra", 0) & 0xF
    return n or BLOOM_DEFAULT_HASHES


def bloom_bits(max_entries, nr_hashes):
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
        return {"entries": [[to_hex(k), to_hex(v)] for k, v in self.items()]}

    def import_state(self, state):
        """Replace the contents with a snapshot from ``export_state`` (LoadError if it does not fit)."""
        self.clear()
        for pair in state.get("entries", ()):
            key = from_hex(pair[0])
            value = from_hex(pair[1])
            if len(key) != self.key_size or len(value) != self.value_size:
                raise LoadError("map %s: entry sizes %d/%d do not match key_size %d/value_size %d"
                                % (self.name, len(key), len(value), self.key_size, self.value_size))
            err = self.update(key, value, T.BPF_ANY)
            if err < 0:
                raise LoadError("map %s: restoring an entry failed with errno %d" % (self.name, -err))


def to_hex(data):
    return "".join("%02x" % b for b in data)


def from_hex(text):
    try:
        return bytes.fromhex(text)
    except (ValueError, TypeError):
        raise LoadError("bad hex string in map state") from None


class SlabMap(Map):
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
