"""The scheduler's well-known maps, declared once as data: name, map type, key and value layouts.

The runtime creates one instance of each per node and binds every app's map of the same name to
it; the scheduler and remote commands read and write them; the C header is generated from here.
This module must never allocate a map itself (the runtime does, through iotbpf.ebpf.maps).
"""

from iotbpf.kernel.hooks import Struct

BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2

TXQ_STATE = Struct("iot_txq_state", (
    ("queued_bytes", "u64", False, "bytes waiting for the radio"),
    ("earliest_deadline_ns", "u64", False, "earliest deadline among queued packets (0 if none)"),
    ("queued_packets", "u32", False, "packets waiting"),
    ("sent_packets", "u32", False, "packets transmitted and acknowledged since boot"),
    ("lost_packets", "u32", False, "packets transmitted but lost by the link since boot"),
    ("missed_deadlines", "u32", False, "packets completed after their deadline since boot"),
))

APP_DEMAND = Struct("iot_app_demand", (
    ("tx_bytes", "u64", False, "bytes the app queued for transmission"),
    ("rx_bytes", "u64", False, "bytes delivered to the node while the app was attached to radio_rx"),
    ("tx_packets", "u32", False, "packets the app queued"),
    ("rx_packets", "u32", False, "packets the app's radio_rx program saw"),
))

# Index of each policy parameter in iot_policy (an array of u64), its default and meaning.
# Append-only: programs and the scheduler address parameters by index.
POLICY_PARAMS = (
    ("IOT_POLICY_MAX_BATCH_DELAY_NS", 0, 15 * 60 * 1000000000,
     "longest the scheduler may hold a packet to batch it (still meeting its deadline)"),
    ("IOT_POLICY_LISTEN_INTERVAL_NS", 1, 0, "period of scheduled receive windows (0: none)"),
    ("IOT_POLICY_LISTEN_WINDOW_NS", 2, 0, "length of each scheduled receive window"),
    ("IOT_POLICY_LOW_BATTERY_PERMILLE", 3, 200, "state of charge below which a battery event is LOW"),
    ("IOT_POLICY_CRITICAL_PERMILLE", 4, 50, "state of charge below which a battery event is CRITICAL"),
    ("IOT_POLICY_BATTERY_REPORT_NS", 5, 3600 * 1000000000, "period of battery events"),
    ("IOT_POLICY_TX_QUEUE_LIMIT_BYTES", 6, 4096, "iot_radio_send fails with -ENOSPC above this"),
    ("IOT_POLICY_CHECK_INTERVAL_NS", 7, 0,
     "wake-up-sampling MAC: channel-check period; senders repeat a packet until the next check (0: none)"),
    ("IOT_POLICY_DUTY_PERIOD_NS", 8, 0, "duty_cycle: wake period (0: 60 s)"),
)
POLICY_SLOTS = 16

# name, map type, key ctype, value (ctype or Struct), max_entries, doc
WELL_KNOWN_MAPS = (
    ("iot_txq", BPF_MAP_TYPE_ARRAY, "u32", TXQ_STATE, 1,
     "the radio transmit queue as the scheduler sees it (key 0); maintained by the OS"),
    ("iot_policy", BPF_MAP_TYPE_ARRAY, "u32", "u64", POLICY_SLOTS,
     "scheduler policy parameters (IOT_POLICY_*); programs and remote commands may change them"),
    ("iot_app_demand", BPF_MAP_TYPE_HASH, "u32", APP_DEMAND, 16,
     "per-app radio demand, keyed by app id; maintained by the OS"),
)
WELL_KNOWN_NAMES = tuple(row[0] for row in WELL_KNOWN_MAPS)

_SIZES = {"u32": 4, "u64": 8}


def map_row(name):
    for row in WELL_KNOWN_MAPS:
        if row[0] == name:
            return row
    raise KeyError(name)


def key_size(name):
    return _SIZES[map_row(name)[2]]


def value_size(name):
    value = map_row(name)[3]
    return value.size if isinstance(value, Struct) else _SIZES[value]


def policy_index(name):
    """Index in iot_policy of a parameter (``"max_batch_delay_ns"`` or its IOT_POLICY_ name)."""
    for pname, index, _default, _doc in POLICY_PARAMS:
        if pname == name or pname == "IOT_POLICY_" + name.upper():
            return index
    raise KeyError(name)


def policy_defaults():
    """List of POLICY_SLOTS default u64 values, by index."""
    values = [0] * POLICY_SLOTS
    for _name, index, default, _doc in POLICY_PARAMS:
        values[index] = default
    return values
