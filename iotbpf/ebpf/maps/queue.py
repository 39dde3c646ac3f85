"""Queue and stack maps: values pushed and popped (FIFO / LIFO), no keys.
Values are copied in and out; push with BPF_EXIST on a full map overwrites the oldest."""

from iotbpf.ebpf import types as T
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.maps.base import Map, exact_bytes, from_hex, to_hex


class QueueMap(Map):
    """BPF_MAP_TYPE_QUEUE: FIFO of values; push with BPF_EXIST overwrites the oldest when full."""

    type = T.BPF_MAP_TYPE_QUEUE

    def __init__(self, spec):
        Map.__init__(self, spec)
        self._items = []

    def __len__(self):
        return len(self._items)

    def push(self, value, flags=T.BPF_ANY):
        value = exact_bytes(value, self.value_size, "value")
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
        return {"items": [to_hex(v) for v in self._items]}

    def import_state(self, state):
        items = [from_hex(v) for v in state.get("items", ())]
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
