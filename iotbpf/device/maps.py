"""The map kinds a device image may use (array, hash, LRU hash, queue), MicroPython-only code: values in
one bytearray per map, slot by slot in the host's order, so contents, iteration order and pinned
state are the host's (docs/mcu.md).
"""

EINVAL = 22
ENOENT = 2
EEXIST = 17
E2BIG = 7
ANY = 0
NOEXIST = 1
EXIST = 2


def _hex(data):
    return "".join("%02x" % b for b in data)


class ArrayMap:
    kind = 2

    def __init__(self, name, ks, vs, max_entries, data):
        self.name = name
        self.key_size = ks
        self.value_size = vs
        self.max_entries = max_entries
        self.values = bytearray(vs * max_entries)
        if data:
            self.values[0:len(data)] = data

    def slot(self, key):
        index = int.from_bytes(key, "little")
        return index if index < self.max_entries else None

    def update(self, key, value, flags):
        if flags > EXIST:
            return -EINVAL
        index = self.slot(key)
        if index is None:
            return -E2BIG
        if flags == NOEXIST:
            return -EEXIST
        off = index * self.value_size
        self.values[off:off + self.value_size] = value
        return 0

    def delete(self, key):
        return -EINVAL

    def export_state(self):
        data = bytes(self.values)
        end = len(data)
        while end > 0 and data[end - 1] == 0:
            end -= 1
        return {"array": _hex(data[:end])}

    def import_state(self, state):
        data = bytes.fromhex(state.get("array", ""))
        if len(data) <= len(self.values):
            self.values[:] = bytes(len(self.values))
            self.values[0:len(data)] = data


class HashMap:
    """Hash and LRU hash (kind 9: the least recently used entry is evicted when full)."""

    def __init__(self, name, ks, vs, max_entries, kind):
        self.name = name
        self.key_size = ks
        self.value_size = vs
        self.max_entries = max_entries
        self.kind = kind
        self.values = bytearray()
        self.slots = {}  # key -> slot
        self.keys = []  # slot -> key or None
        self.free = []
        self.order = []  # LRU: slots, least recent first

    def slot(self, key):
        slot = self.slots.get(bytes(key))
        if slot is not None:
            self._touch(slot)
        return slot

    def _touch(self, slot):
        if self.kind == 9:
            if slot in self.order:
                self.order.remove(slot)
            self.order.append(slot)

    def update(self, key, value, flags):
        key = bytes(key)
        if flags > EXIST:
            return -EINVAL
        slot = self.slots.get(key)
        if slot is None:
            if flags == EXIST:
                return -ENOENT
            if len(self.slots) >= self.max_entries:
                if self.kind != 9 or not self.order:
                    return -E2BIG
                self._release(self.keys[self.order[0]])
            if self.free:
                slot = self.free.pop()
                self.keys[slot] = key
            else:
                slot = len(self.keys)
                self.keys.append(key)
                self.values.extend(bytes(self.value_size))
            self.slots[key] = slot
        elif flags == NOEXIST:
            return -EEXIST
        off = slot * self.value_size
        self.values[off:off + self.value_size] = value
        self._touch(slot)
        return 0

    def _release(self, key):
        slot = self.slots.pop(key)
        self.keys[slot] = None
        self.free.append(slot)
        if slot in self.order:
            self.order.remove(slot)

    def delete(self, key):
        key = bytes(key)
        if key not in self.slots:
            return -ENOENT
        self._release(key)
        return 0

    def export_state(self):
        out = []
        vs = self.value_size
        # slot order; an LRU hash in least-recently-used order, as the host exports it
        for slot in (self.order if self.kind == 9 else range(len(self.keys))):
            key = self.keys[slot]
            if key is not None:
                out.append([_hex(key), _hex(self.values[slot * vs:(slot + 1) * vs])])
        return {"entries": out}

    def import_state(self, state):
        for key in list(self.slots):
            self._release(key)
        for pair in state.get("entries", ()):
            self.update(bytes.fromhex(pair[0]), bytes.fromhex(pair[1]), ANY)


class QueueMap:
    kind = 22

    def __init__(self, name, vs, max_entries):
        self.name = name
        self.key_size = 0
        self.value_size = vs
        self.max_entries = max_entries
        self.values = bytearray()  # no addressable values: pop/peek copy out
        self.items = []

    def push(self, value, flags):
        if flags & ~EXIST:
            return -EINVAL
        if len(self.items) >= self.max_entries:
            if not flags & EXIST:
                return -E2BIG
            self.items.pop(0)
        self.items.append(bytes(value))
        return 0

    def take(self, remove):
        if not self.items:
            return None
        return self.items.pop(0) if remove else self.items[0]

    def export_state(self):
        return {"items": [_hex(v) for v in self.items]}

    def import_state(self, state):
        items = [bytes.fromhex(v) for v in state.get("items", ())]
        self.items = items[:self.max_entries]


def make_map(spec):
    """A map from the image's layout row [name, type, key_size, value_size, max_entries, data hex]."""
    name, kind, ks, vs, max_entries, data = spec
    if kind == 2:
        return ArrayMap(name, ks, vs, max_entries, bytes.fromhex(data) if data else None)
    if kind == 22:
        return QueueMap(name, vs, max_entries)
    return HashMap(name, ks, vs, max_entries, kind)
