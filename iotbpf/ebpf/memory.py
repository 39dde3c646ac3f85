"""Memory regions with bounds and permission checks, the only way programs touch memory: a pointer
is ``(region_id << 32) | offset``; a bad access is a MemoryFault, never another exception."""

from iotbpf.ebpf import isa
from iotbpf.ebpf.errors import RuntimeFailure

# Reserved region-id ranges (the high 32 bits of a tagged value).
FIRST_REGION_ID = 1
MAP_HANDLE_BASE = 0x40000000  # map handle k = (MAP_HANDLE_BASE + k) << 32
MAP_HANDLE_LIMIT = 0x50000000
FUNC_REGION_ID = 0x7F000000  # function address = (FUNC_REGION_ID << 32) | pc
MAX_REGION_ID = MAP_HANDLE_BASE - 1

UNPACK = {1: isa.make_struct("<B"), 2: isa.make_struct("<H"), 4: isa.make_struct("<I"),
          8: isa.make_struct("<Q")}
MASKS = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF, 8: 0xFFFFFFFFFFFFFFFF}


class MemoryFault(RuntimeFailure):
    """A bad memory access; engines turn it into a BPFFault carrying the pc.

    ``kind`` is "oob" (out of bounds, NULL, not a pointer) or "readonly".
    """

    def __init__(self, reason, addr=0, kind="oob"):
        super().__init__(reason)
        self.reason = reason
        self.addr = addr
        self.kind = kind


def describe_address(memory, addr):
    """Human text for a tagged address: ``0x100000010 (stack0+16)``."""
    rid = addr >> 32
    off = addr & 0xFFFFFFFF
    if off >= 0xFFFF0000 and memory is not None:
        below = memory.regions.get(rid + 1)
        if below is not None:
            return "0x%x (%d bytes below the start of %s)" % (addr, 0x100000000 - off, below[3])
    if rid == 0:
        return "0x%x (NULL)" % addr
    if MAP_HANDLE_BASE <= rid < MAP_HANDLE_LIMIT:
        return "0x%x (a map handle, not a pointer)" % addr
    if rid == FUNC_REGION_ID:
        return "0x%x (a function address, not a pointer)" % addr
    region = memory.regions.get(rid) if memory is not None else None
    if region is None:
        return "0x%x (no such region)" % addr
    return "0x%x (%s+%d)" % (addr, region[3], off)


class Memory:
    """The set of regions a program can address.

    ``regions`` maps region id -> ``[buf, size, writable, name, base]`` (engines read it
    directly for speed; treat it as read-only outside this class).
    """

    def __init__(self):
        self.regions = {}
        self._next_id = FIRST_REGION_ID
        self._maps = []  # map handle k -> map object
        self._map_index = {}  # id(map) -> k
        self._map_regions = {}  # id(map) -> base of its value storage region
        # [region, full size] of the map value regions that can still grow (refresh_map_regions)
        self._growing = []

    # ---------------------------------------------------------------- regions
    def add_region(self, buf, name, writable=True):
        """Register ``buf`` (bytearray, or bytes for read-only data); returns its base address."""
        if self._next_id > MAX_REGION_ID:
            raise MemoryFault("too many memory regions", 0)
        rid = self._next_id
        self._next_id += 1
        writable = bool(writable) and not isinstance(buf, bytes)
        base = rid << 32
        self.regions[rid] = [buf, len(buf), writable, name, base]
        return base

    def remove_region(self, base):
        self.regions.pop(base >> 32, None)

    def region_of(self, addr):
        """``(name, base, size, writable)`` of the region ``addr`` points into, or None."""
        region = self.regions.get(addr >> 32)
        if region is None:
            return None
        return (region[3], region[4], region[1], region[2])

    def buffer_of(self, base):
        region = self.regions.get(base >> 32)
        return None if region is None else region[0]

    # ---------------------------------------------------------------- checks
    def _check(self, addr, size, write):
        """Returns ``(buf, offset)`` for an access of ``size`` bytes at ``addr`` or raises."""
        region = self.regions.get(addr >> 32)
        off = addr & 0xFFFFFFFF
        if region is None or off + size > region[1] or size < 0:
            raise self.fault(addr, size, write)
        if write and not region[2]:
            raise MemoryFault("write of %d bytes to read-only memory at %s"
                              % (size, describe_address(self, addr)), addr, "readonly")
        return region[0], off

    def fault(self, addr, size, write):
        """The MemoryFault for a failed access (used by the engines' inlined checks too)."""
        region = self.regions.get(addr >> 32)
        what = "write" if write else "read"
        if region is None:
            return MemoryFault("%s of %d bytes at invalid address %s"
                               % (what, size, describe_address(self, addr)), addr)
        if write and not region[2] and (addr & 0xFFFFFFFF) + size <= region[1]:
            return MemoryFault("write of %d bytes to read-only memory at %s"
                               % (size, describe_address(self, addr)), addr, "readonly")
        return MemoryFault("out-of-bounds %s of %d bytes at %s: region %s is %d bytes"
                           % (what, size, describe_address(self, addr), region[3], region[1]), addr)

    # ---------------------------------------------------------------- access
    def load(self, addr, size):
        """Unsigned little-endian load of 1, 2, 4 or 8 bytes."""
        buf, off = self._check(addr, size, False)
        return UNPACK[size].unpack_from(buf, off)[0]

    def store(self, addr, size, value):
        buf, off = self._check(addr, size, True)
        UNPACK[size].pack_into(buf, off, value & MASKS[size])

    def read_bytes(self, addr, n):
        buf, off = self._check(addr, n, False)
        return bytes(buf[off:off + n])

    def write_bytes(self, addr, data):
        n = len(data)
        buf, off = self._check(addr, n, True)
        buf[off:off + n] = data

    def check(self, addr, size, write=False):
        """Raise MemoryFault unless ``size`` bytes at ``addr`` are accessible."""
        self._check(addr, size, write)

    # ---------------------------------------------------------------- maps
    def map_handle(self, map_obj):
        """The tagged handle for ``map_obj`` (stable for the life of this Memory)."""
        key = id(map_obj)
        k = self._map_index.get(key)
        if k is None:
            k = len(self._maps)
            if MAP_HANDLE_BASE + k >= MAP_HANDLE_LIMIT:
                raise MemoryFault("too many maps", 0)
            self._maps.append(map_obj)
            self._map_index[key] = k
        return (MAP_HANDLE_BASE + k) << 32

    def map_from_handle(self, value):
        """The map a handle denotes, or None if ``value`` is not a map handle."""
        if value & 0xFFFFFFFF:
            return None
        k = (value >> 32) - MAP_HANDLE_BASE
        if 0 <= k < len(self._maps):
            return self._maps[k]
        return None

    def map_values_base(self, map_obj):
        """Base address of the map's value storage (``map_obj.values``), registered on first use."""
        key = id(map_obj)
        base = self._map_regions.get(key)
        if base is None:
            values = getattr(map_obj, "values", None)
            if values is None:
                return None
            name = "map:" + str(getattr(getattr(map_obj, "spec", None), "name", None) or "map")
            base = self.add_region(values, name, not getattr(map_obj, "readonly", False))
            self._map_regions[key] = base
            # maps grow their storage up to max_entries * value_size (maps/base.py); a region
            # already that large is never refreshed again
            spec = getattr(map_obj, "spec", None)
            try:
                full = spec.max_entries * spec.value_size
            except (AttributeError, TypeError):
                full = None
            if full is None or len(values) < full:
                self._growing.append([self.regions[base >> 32], full])
        else:
            # map values grow in place (bytearray.extend): the region follows the buffer
            region = self.regions[base >> 32]
            region[1] = len(region[0])
        return base

    def refresh_map_regions(self):
        """Re-read the size of the map value regions that can still grow (maps grow their
        storage in place, up to max_entries * value_size); engines call it before a run when
        ``_growing`` is not empty."""
        done = False
        for item in self._growing:
            region = item[0]
            n = region[1] = len(region[0])
            if item[1] is not None and n >= item[1]:
                done = True
        if done:
            self._growing = [item for item in self._growing if item[1] is None or item[0][1] < item[1]]
