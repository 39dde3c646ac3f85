"""eBPF maps with Linux's type numbers and semantics, one module per family (docs/vm.md, "Maps");
exports the common families; ``create_map`` imports the others (lru, lpm, bloom, ringbuf) on first use."""

from iotbpf.ebpf.maps.array import ArrayMap, PercpuArrayMap, ProgArrayMap
from iotbpf.ebpf.maps.base import (
    DEFAULT_BUDGET,
    ENTRY_OVERHEAD,
    MAX_ENTRIES,
    MAX_KEY_SIZE,
    MAX_VALUE_SIZE,
    PAGE_SIZE,
    Map,
    MapBudget,
)
from iotbpf.ebpf.maps.create import (
    MAP_CLASSES,
    check_spec,
    create_map,
    create_maps,
    fill_prog_arrays,
    freeze_readonly,
    instantiate,
    map_class,
    worst_case_bytes,
)
from iotbpf.ebpf.maps.dump import decode_value
from iotbpf.ebpf.maps.hash import HashMap, MapOfMaps, PercpuHashMap
from iotbpf.ebpf.maps.queue import QueueMap, StackMap

__all__ = ["ArrayMap", "DEFAULT_BUDGET", "ENTRY_OVERHEAD", "HashMap", "MAP_CLASSES", "MAX_ENTRIES",
           "MAX_KEY_SIZE", "MAX_VALUE_SIZE", "Map", "MapBudget", "MapOfMaps", "PAGE_SIZE", "PercpuArrayMap",
           "PercpuHashMap", "ProgArrayMap", "QueueMap", "StackMap", "check_spec", "create_map", "create_maps",
           "decode_value", "fill_prog_arrays", "freeze_readonly", "instantiate", "map_class",
           "worst_case_bytes"]
