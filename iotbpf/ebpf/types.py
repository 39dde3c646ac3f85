"""Data types the VM, the verifier, the maps and the runtime share: helper signatures, context
layouts, map specs, and Linux's numbers for map types, flags and errno values."""

# ------------------------------------------------------------------ helper argument kinds
# Named after Linux's enum bpf_arg_type (include/linux/bpf.h). A size argument
# (ARG_CONST_SIZE, ARG_CONST_SIZE_OR_ZERO) always describes the memory argument just before it.
ARG_DONTCARE = "ARG_DONTCARE"  # unused argument
ARG_ANYTHING = "ARG_ANYTHING"  # any initialised value
ARG_CONST_MAP_PTR = "ARG_CONST_MAP_PTR"  # a map handle (lddw with a map pseudo source)
ARG_PTR_TO_MAP_KEY = "ARG_PTR_TO_MAP_KEY"  # readable memory of the map's key_size
ARG_PTR_TO_MAP_VALUE = "ARG_PTR_TO_MAP_VALUE"  # readable memory of the map's value_size
ARG_PTR_TO_UNINIT_MAP_VALUE = "ARG_PTR_TO_UNINIT_MAP_VALUE"  # writable, value_size (pop/peek)
ARG_PTR_TO_MEM = "ARG_PTR_TO_MEM"  # readable memory, size in the next argument
ARG_PTR_TO_MEM_OR_NULL = "ARG_PTR_TO_MEM_OR_NULL"  # same, or NULL (size must then be 0)
ARG_PTR_TO_UNINIT_MEM = "ARG_PTR_TO_UNINIT_MEM"  # writable memory the helper fills
ARG_CONST_SIZE = "ARG_CONST_SIZE"  # size > 0 of the previous memory argument
ARG_CONST_SIZE_OR_ZERO = "ARG_CONST_SIZE_OR_ZERO"  # size >= 0 of the previous memory argument
ARG_CONST_ALLOC_SIZE_OR_ZERO = "ARG_CONST_ALLOC_SIZE_OR_ZERO"  # size of memory returned (reserve)
ARG_PTR_TO_CTX = "ARG_PTR_TO_CTX"  # the program's context pointer (r1 at entry)
ARG_PTR_TO_FUNC = "ARG_PTR_TO_FUNC"  # a subprogram address (lddw src=BPF_PSEUDO_FUNC)
ARG_PTR_TO_STACK_OR_NULL = "ARG_PTR_TO_STACK_OR_NULL"  # pointer into the stack, or NULL
ARG_PTR_TO_RINGBUF_MEM = "ARG_PTR_TO_RINGBUF_MEM"  # a record returned by ringbuf_reserve
ARG_PTR_TO_SPIN_LOCK = "ARG_PTR_TO_SPIN_LOCK"  # &value->lock: a struct bpf_spin_lock in a map value

ARG_KINDS = (
    ARG_DONTCARE, ARG_ANYTHING, ARG_CONST_MAP_PTR, ARG_PTR_TO_MAP_KEY, ARG_PTR_TO_MAP_VALUE,
    ARG_PTR_TO_UNINIT_MAP_VALUE, ARG_PTR_TO_MEM, ARG_PTR_TO_MEM_OR_NULL, ARG_PTR_TO_UNINIT_MEM,
    ARG_CONST_SIZE, ARG_CONST_SIZE_OR_ZERO, ARG_CONST_ALLOC_SIZE_OR_ZERO, ARG_PTR_TO_CTX,
    ARG_PTR_TO_FUNC, ARG_PTR_TO_STACK_OR_NULL, ARG_PTR_TO_RINGBUF_MEM, ARG_PTR_TO_SPIN_LOCK,
)
SIZE_ARG_KINDS = (ARG_CONST_SIZE, ARG_CONST_SIZE_OR_ZERO)
MEM_ARG_KINDS = (ARG_PTR_TO_MEM, ARG_PTR_TO_MEM_OR_NULL, ARG_PTR_TO_UNINIT_MEM)

# ------------------------------------------------------------------ helper return kinds
RET_INTEGER = "RET_INTEGER"  # a scalar in r0
RET_VOID = "RET_VOID"  # r0 is undefined after the call (reading it is an error)
RET_PTR_TO_MAP_VALUE_OR_NULL = "RET_PTR_TO_MAP_VALUE_OR_NULL"  # value_size bytes of the map arg
RET_PTR_TO_MEM_OR_NULL = "RET_PTR_TO_MEM_OR_NULL"  # HelperSpec.ret_size_arg gives the size

RET_KINDS = (RET_INTEGER, RET_VOID, RET_PTR_TO_MAP_VALUE_OR_NULL, RET_PTR_TO_MEM_OR_NULL)

# ------------------------------------------------------------------ Linux numbers
# enum bpf_map_type (include/uapi/linux/bpf.h)
BPF_MAP_TYPE_UNSPEC = 0
BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_PROG_ARRAY = 3
BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4
BPF_MAP_TYPE_PERCPU_HASH = 5
BPF_MAP_TYPE_PERCPU_ARRAY = 6
BPF_MAP_TYPE_STACK_TRACE = 7
BPF_MAP_TYPE_CGROUP_ARRAY = 8
BPF_MAP_TYPE_LRU_HASH = 9
BPF_MAP_TYPE_LRU_PERCPU_HASH = 10
BPF_MAP_TYPE_LPM_TRIE = 11
BPF_MAP_TYPE_ARRAY_OF_MAPS = 12
BPF_MAP_TYPE_HASH_OF_MAPS = 13
BPF_MAP_TYPE_QUEUE = 22
BPF_MAP_TYPE_STACK = 23
BPF_MAP_TYPE_RINGBUF = 27
BPF_MAP_TYPE_BLOOM_FILTER = 30

MAP_TYPE_NAMES = {
    BPF_MAP_TYPE_UNSPEC: "unspec", BPF_MAP_TYPE_HASH: "hash", BPF_MAP_TYPE_ARRAY: "array",
    BPF_MAP_TYPE_PROG_ARRAY: "prog_array", BPF_MAP_TYPE_PERF_EVENT_ARRAY: "perf_event_array",
    BPF_MAP_TYPE_PERCPU_HASH: "percpu_hash", BPF_MAP_TYPE_PERCPU_ARRAY: "percpu_array",
    BPF_MAP_TYPE_STACK_TRACE: "stack_trace", BPF_MAP_TYPE_CGROUP_ARRAY: "cgroup_array",
    BPF_MAP_TYPE_LRU_HASH: "lru_hash", BPF_MAP_TYPE_LRU_PERCPU_HASH: "lru_percpu_hash",
    BPF_MAP_TYPE_LPM_TRIE: "lpm_trie", BPF_MAP_TYPE_ARRAY_OF_MAPS: "array_of_maps",
    BPF_MAP_TYPE_HASH_OF_MAPS: "hash_of_maps", BPF_MAP_TYPE_QUEUE: "queue",
    BPF_MAP_TYPE_STACK: "stack", BPF_MAP_TYPE_RINGBUF: "ringbuf",
    BPF_MAP_TYPE_BLOOM_FILTER: "bloom_filter",
}

# Map types whose lookup returns a pointer to a value (ARG_CONST_MAP_PTR + RET_PTR_TO_MAP_VALUE).
MAP_IN_MAP_TYPES = (BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS)
VALUE_MAP_TYPES = (BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_HASH,
                   BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH,
                   BPF_MAP_TYPE_LPM_TRIE)
ARRAY_MAP_TYPES = (BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY)
QUEUE_MAP_TYPES = (BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK, BPF_MAP_TYPE_BLOOM_FILTER)

# Update flags (map_update_elem) and map creation flags.
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_F_LOCK = 4
BPF_F_NO_PREALLOC = 1 << 0
BPF_F_NO_COMMON_LRU = 1 << 1
BPF_F_RDONLY = 1 << 3
BPF_F_WRONLY = 1 << 4
BPF_F_ZERO_SEED = 1 << 6
BPF_F_RDONLY_PROG = 1 << 7
BPF_F_WRONLY_PROG = 1 << 8
BPF_F_MMAPABLE = 1 << 10

# Ring buffer flags and query selectors.
BPF_F_INDEX_MASK = 0xFFFFFFFF  # bpf_perf_event_output flags: the perf buffer (CPU) index
BPF_F_CURRENT_CPU = BPF_F_INDEX_MASK  # ... or the current CPU's
BPF_RB_NO_WAKEUP = 1 << 0
BPF_RB_FORCE_WAKEUP = 1 << 1
BPF_RB_AVAIL_DATA = 0
BPF_RB_RING_SIZE = 1
BPF_RB_CONS_POS = 2
BPF_RB_PROD_POS = 3
BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8

# errno values (asm-generic/errno-base.h); helpers return them negated, as u64.
EPERM = 1
ENOENT = 2
E2BIG = 7
EBADF = 9
EAGAIN = 11
ENOMEM = 12
EFAULT = 14
EBUSY = 16
EEXIST = 17
EINVAL = 22
ENOSPC = 28
ERANGE = 34
EOPNOTSUPP = 95
ENOTSUPP = 524  # kernel-internal, returned by some helpers

MASK64 = 0xFFFFFFFFFFFFFFFF


def neg_errno(errno):
    """``-errno`` as the unsigned 64-bit register value a helper returns."""
    return (-errno) & MASK64


# ------------------------------------------------------------------ helper signatures
PRIVATE_HELPER_BASE = 0x1000  # ids from here on are the runtime's own (IoT) helpers
MAX_HELPER_ARGS = 5


class HelperSpec:
    """One helper: Linux-style signature plus its implementation.

    ``func(ex, r1, r2, r3, r4, r5) -> int`` (u64; see the VM's Execution). ``args`` is a
    tuple of ARG_* kinds (at most 5), ``ret`` a RET_* kind. Optional:
    ``map_types`` — map types accepted by the ARG_CONST_MAP_PTR argument (None: any);
    ``ret_size_arg`` — for RET_PTR_TO_MEM_OR_NULL, the 1-based argument whose constant value
    is the size of the returned memory;
    ``bind(env)`` — the same helper specialized for one VM's environment (``ex.env``), or None:
    the compiled engine binds each call site once, so a helper whose work depends on the
    environment can skip looking it up on every call; ``u64_result`` — a promise that ``func``
    (and what ``bind`` returns) always returns an ``int`` in [0, 2**64), so the compiled
    engine calls it without checking or masking the result.
    """

    def __init__(self, id, name, args, ret, func, doc="", map_types=None, ret_size_arg=None,
                 bind=None, u64_result=False):
        args = tuple(args)
        if len(args) > MAX_HELPER_ARGS:
            raise ValueError("helper %s: %d arguments, at most 5" % (name, len(args)))
        for kind in args:
            if kind not in ARG_KINDS:
                raise ValueError("helper %s: unknown argument kind %r" % (name, kind))
        if ret not in RET_KINDS:
            raise ValueError("helper %s: unknown return kind %r" % (name, ret))
        if ret == RET_PTR_TO_MEM_OR_NULL and ret_size_arg is None:
            raise ValueError("helper %s: RET_PTR_TO_MEM_OR_NULL needs ret_size_arg" % name)
        self.id = id
        self.name = name
        self.args = args
        self.ret = ret
        self.func = func
        self.doc = doc
        self.map_types = None if map_types is None else tuple(map_types)
        self.ret_size_arg = ret_size_arg
        self.bind = bind
        self.u64_result = u64_result

    def __repr__(self):
        return "HelperSpec(%d, %r, %r, %r)" % (self.id, self.name, self.args, self.ret)

    def signature(self):
        """``name(ARG_..., ...) -> RET_...`` for messages and docs."""
        return "%s(%s) -> %s" % (self.name, ", ".join(self.args), self.ret)


class HelperTable:
    """Helpers by id. The Linux ones come from iotbpf.ebpf.helpers.linux_helpers(); the
    runtime adds its own with ids >= PRIVATE_HELPER_BASE without touching the VM."""

    def __init__(self, specs=()):
        self._by_id = {}
        self._by_name = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec, replace=False):
        """Add ``spec``; an id or name already taken is a ValueError unless ``replace``."""
        if not isinstance(spec.id, int) or spec.id < 0 or spec.id > 0x7FFFFFFF:
            raise ValueError("helper %s: bad id %r" % (spec.name, spec.id))
        if not replace:
            if spec.id in self._by_id:
                raise ValueError("helper id %d already registered (%s)"
                                 % (spec.id, self._by_id[spec.id].name))
            if spec.name in self._by_name:
                raise ValueError("helper name %s already registered" % spec.name)
        old = self._by_id.get(spec.id)
        if old is not None:
            self._by_name.pop(old.name, None)
        self._by_id[spec.id] = spec
        self._by_name[spec.name] = spec
        return spec

    def register_private(self, name, args, ret, func, doc="", **kw):
        """Register a runtime helper at the next free id in the private range; returns its spec."""
        hid = PRIVATE_HELPER_BASE
        while hid in self._by_id:
            hid += 1
        return self.register(HelperSpec(hid, name, args, ret, func, doc, **kw))

    def get(self, hid):
        """The HelperSpec with id ``hid``, or None."""
        return self._by_id.get(hid)

    def by_name(self, name):
        return self._by_name.get(name)

    def __contains__(self, hid):
        return hid in self._by_id

    def __len__(self):
        return len(self._by_id)

    def __iter__(self):
        ids = sorted(self._by_id)
        return iter([self._by_id[i] for i in ids])

    def ids(self):
        return sorted(self._by_id)

    def funcs(self):
        """``{id: func}`` for the engines' fast dispatch."""
        out = {}
        for hid, spec in self._by_id.items():
            out[hid] = spec.func
        return out

    def copy(self):
        return HelperTable(list(self))

    def merged(self, other):
        """A new table with this table's helpers then ``other``'s (other wins on conflicts)."""
        table = self.copy()
        for spec in other:
            table.register(spec, replace=True)
        return table


# ------------------------------------------------------------------ context layouts
class ContextField:
    """One field of a hook's context: name, byte offset, size (1/2/4/8 or more for arrays),
    whether programs may write it, and what it means."""

    def __init__(self, name, offset, size, writable=False, doc=""):
        self.name = name
        self.offset = offset
        self.size = size
        self.writable = bool(writable)
        self.doc = doc

    def __repr__(self):
        return "ContextField(%r, %d, %d, %r)" % (self.name, self.offset, self.size, self.writable)

    def contains(self, offset, size):
        return self.offset <= offset and offset + size <= self.offset + self.size


class ContextLayout:
    """The context structure a hook's programs get in r1: total size and fields.

    Bytes not covered by a field (padding) are not accessible.
    """

    def __init__(self, name, size, fields):
        self.name = name
        self.size = size
        self.fields = tuple(fields)
        for f in self.fields:
            if f.offset < 0 or f.size <= 0 or f.offset + f.size > size:
                raise ValueError("context %s: field %s outside the %d-byte context"
                                 % (name, f.name, size))

    def __repr__(self):
        return "ContextLayout(%r, %d, %d fields)" % (self.name, self.size, len(self.fields))

    def field(self, name):
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def field_at(self, offset, size):
        """The field wholly containing bytes [offset, offset+size), or None."""
        for f in self.fields:
            if f.contains(offset, size):
                return f
        return None

    def check_access(self, offset, size, write):
        """None if the access is allowed, else the reason in words."""
        f = self.field_at(offset, size)
        if f is None:
            return ("%s at context offset %d (size %d) is not inside any field of %s"
                    % ("write" if write else "read", offset, size, self.name))
        if write and not f.writable:
            return "field %s of %s is read-only" % (f.name, self.name)
        return None


# ------------------------------------------------------------------ map specs
class MapSpec:
    """What a program declares about a map; iotbpf.ebpf.maps.create_map(spec) builds it.

    ``data``: initial contents for global-data maps (.data/.rodata/.bss: one value of
    value_size bytes at key 0). ``key_type`` / ``value_type``: optional JSON-able type
    descriptions from BTF (see iotbpf.ebpf.loader.btf.describe) used to decode dumps. ``pinning``:
    1 (LIBBPF_PIN_BY_NAME) to pin the map by name. ``section``: where it was declared.
    ``map_extra``: Linux's map_extra (bloom filter: low 4 bits = number of hashes).
    ``programs``: a prog_array's declared contents, {index: entry function name} (libbpf's
    ``__array(values, ...)`` initialiser); maps.instantiate fills the slots.
    ``inner``: a map of maps' (template map index, {index or key int: inner map name}): the
    template gives the verifier the inner maps' shape; maps.instantiate fills the entries.
    """

    def __init__(self, name, type, key_size, value_size, max_entries, flags=0, data=None,
                 key_type=None, value_type=None, pinning=0, section=None, map_extra=0,
                 programs=None, inner=None):
        self.inner = inner
        self.name = name
        self.type = type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags
        self.data = data
        self.key_type = key_type
        self.value_type = value_type
        self.pinning = pinning
        self.section = section
        self.map_extra = map_extra
        self.programs = programs

    def __repr__(self):
        return "MapSpec(%r, %s, key_size=%d, value_size=%d, max_entries=%d, flags=%d)" % (
            self.name, MAP_TYPE_NAMES.get(self.type, str(self.type)), self.key_size,
            self.value_size, self.max_entries, self.flags)

    def __eq__(self, other):
        return (isinstance(other, MapSpec) and self.to_dict() == other.to_dict()
                and self.data == other.data)

    def __ne__(self, other):
        return not self.__eq__(other)

    @property
    def type_name(self):
        return MAP_TYPE_NAMES.get(self.type, "type %d" % self.type)

    @property
    def readonly(self):
        """True when programs may not write the map (BPF_F_RDONLY_PROG, e.g. .rodata)."""
        return bool(self.flags & BPF_F_RDONLY_PROG)

    def to_dict(self):
        d = {"name": self.name, "type": self.type, "key_size": self.key_size,
             "value_size": self.value_size, "max_entries": self.max_entries, "flags": self.flags}
        if self.pinning:
            d["pinning"] = self.pinning
        if self.map_extra:
            d["map_extra"] = self.map_extra
        if self.programs:
            progs = {}
            for index in self.programs:
                progs[str(index)] = self.programs[index]
            d["programs"] = progs
        if self.inner is not None:
            entries = {}
            for index in self.inner[1]:
                entries[str(index)] = self.inner[1][index]
            d["inner"] = [self.inner[0], entries]
        if self.section is not None:
            d["section"] = self.section
        if self.key_type is not None:
            d["key_type"] = self.key_type
        if self.value_type is not None:
            d["value_type"] = self.value_type
        if self.data is not None:
            d["data_len"] = len(self.data)
        return d
