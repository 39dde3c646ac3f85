"""Creating maps: the class of each map type, Linux's checks of a spec, the budget charge, and
instantiate (MapSpecs of loaded programs -> live maps shared by name, prog_arrays filled)."""

from iotbpf.ebpf import types as T
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.maps.base import (
    DEFAULT_BUDGET,
    ENTRY_OVERHEAD,
    LPM_DATA_SIZE_MAX,
    MAX_ENTRIES,
    MAX_KEY_SIZE,
    MAX_VALUE_SIZE,
    PAGE_SIZE,
    U32,
    Map,
    MapBudget,
    bloom_bits,
    bloom_hashes,
)


def worst_case_bytes(spec):
    """The most memory the map can ever use (what the budget is charged)."""
    if spec.type == T.BPF_MAP_TYPE_RINGBUF:
        return spec.max_entries + 64
    if spec.type == T.BPF_MAP_TYPE_PERF_EVENT_ARRAY:
        return spec.max_entries * 8 * PAGE_SIZE + 64
    if spec.type == T.BPF_MAP_TYPE_BLOOM_FILTER:
        return bloom_bits(spec.max_entries, bloom_hashes(spec)) // 8 + 64
    if spec.type in T.ARRAY_MAP_TYPES or spec.type == T.BPF_MAP_TYPE_PROG_ARRAY:
        return spec.max_entries * spec.value_size + 64
    return spec.max_entries * (spec.key_size + spec.value_size + ENTRY_OVERHEAD) + 64


# Each type's family module and class, imported on first use: a microcontroller keeps the code of
# the families no app declares out of RAM.
MAP_CLASSES = {
    T.BPF_MAP_TYPE_HASH: ("hash", "HashMap"),
    T.BPF_MAP_TYPE_ARRAY: ("array", "ArrayMap"),
    T.BPF_MAP_TYPE_PROG_ARRAY: ("array", "ProgArrayMap"),
    T.BPF_MAP_TYPE_PERCPU_HASH: ("hash", "PercpuHashMap"),
    T.BPF_MAP_TYPE_PERCPU_ARRAY: ("array", "PercpuArrayMap"),
    T.BPF_MAP_TYPE_QUEUE: ("queue", "QueueMap"),
    T.BPF_MAP_TYPE_STACK: ("queue", "StackMap"),
    T.BPF_MAP_TYPE_ARRAY_OF_MAPS: ("hash", "MapOfMaps"),
    T.BPF_MAP_TYPE_HASH_OF_MAPS: ("hash", "MapOfMaps"),
    T.BPF_MAP_TYPE_LRU_HASH: ("lru", "LruHashMap"),
    T.BPF_MAP_TYPE_LRU_PERCPU_HASH: ("lru", "LruPercpuHashMap"),
    T.BPF_MAP_TYPE_LPM_TRIE: ("lpm", "LpmTrieMap"),
    T.BPF_MAP_TYPE_RINGBUF: ("ringbuf", "RingBufMap"),
    T.BPF_MAP_TYPE_BLOOM_FILTER: ("bloom", "BloomFilterMap"),
    T.BPF_MAP_TYPE_PERF_EVENT_ARRAY: ("ringbuf", "PerfEventArrayMap"),
}


def map_class(map_type):
    """The Map class for a BPF_MAP_TYPE_* number, or None if the type is not supported."""
    entry = MAP_CLASSES.get(map_type)
    if entry is None:
        return None
    module = __import__("iotbpf.ebpf.maps." + entry[0], None, None, [entry[1]])
    return getattr(module, entry[1])


def check_spec(spec):
    """Raise LoadError when Linux would refuse to create this map (-EINVAL / -E2BIG)."""
    name = spec.name
    t = spec.type
    if t not in MAP_CLASSES:
        raise LoadError("map %s: map type %s is not supported (supported: %s)"
                        % (name, T.MAP_TYPE_NAMES.get(t, str(t)),
                           ", ".join(T.MAP_TYPE_NAMES[k] for k in sorted(MAP_CLASSES))))
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
        if m.type not in T.MAP_IN_MAP_TYPES or inner is None or getattr(m, "template", None) is not None:
            continue
        template, entries = inner
        if 0 <= template < len(specs):
            m.template = specs[template]
        for index in entries:
            target = maps.get(entries[index])
            if target is not None:
                m.set_map(int(index).to_bytes(m.key_size, "little") if m.key_size <= 8 else
                          U32.pack(int(index)) + bytes(m.key_size - 4), target)


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
