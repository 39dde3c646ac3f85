"""Array maps: array, percpu_array (one CPU) and prog_array (programs for tail calls).
Every element of an array exists, zero-filled; values live in one slab programs point into."""

from iotbpf.ebpf import types as T
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.maps.base import U32, Map, SlabMap, exact_bytes, from_hex, to_hex


class ArrayMap(SlabMap):
    """BPF_MAP_TYPE_ARRAY: u32 index keys, every element exists (zero-filled), no delete."""

    type = T.BPF_MAP_TYPE_ARRAY

    def __init__(self, spec):
        SlabMap.__init__(self, spec)
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
        key = exact_bytes(key, 4, "array key")
        return U32.unpack(key)[0]

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
                out.append((U32.pack(index), value))
        return out

    def update(self, key, value, flags=T.BPF_ANY):
        value = exact_bytes(value, self.value_size, "value")
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
        return U32.pack(index)

    def clear(self):
        self.values[:] = bytes(len(self.values))

    def export_state(self):
        """Arrays are stored whole (trailing zero slots omitted)."""
        data = bytes(self.values)
        end = len(data)
        while end > 0 and data[end - 1] == 0:
            end -= 1
        return {"array": to_hex(data[:end])}

    def import_state(self, state):
        if "array" not in state:
            return Map.import_state(self, state)
        data = from_hex(state["array"])
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
        index = U32.unpack(exact_bytes(key, 4, "key"))[0]
        if index >= self.max_entries:
            return -T.E2BIG
        if index not in self.programs:
            return -T.ENOENT
        del self.programs[index]
        return 0

    def get_next_key(self, key):
        start = 0 if key is None else U32.unpack(exact_bytes(key, 4, "key"))[0] + 1
        later = [i for i in self.programs if i >= start]
        return U32.pack(min(later)) if later else None

    def export_state(self):
        return {"entries": []}  # programs are not data: they are reattached at load

    def import_state(self, state):
        return None
