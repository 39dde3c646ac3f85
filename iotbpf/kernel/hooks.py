"""The hooks (attach points) of the mini-OS and their context layouts, declared once as data.

The verifier checks context accesses against these layouts, the C header's structs are generated
from them, and the runtime packs each event's context with the struct format derived here.
This module must never hand-write an offset: offsets follow C's natural alignment rules.
"""

import struct

# C type -> (size, struct code). Arrays are written "u8[64]".
CTYPES = {
    "u8": (1, "B"), "u16": (2, "H"), "u32": (4, "I"), "u64": (8, "Q"),
    "s8": (1, "b"), "s16": (2, "h"), "s32": (4, "i"), "s64": (8, "q"),
}

# Constants shared by programs and the OS; the header emits them as #defines.
CONSTANTS = (
    ("IOT_RX_DROP", 0, "radio_rx verdict: drop the packet"),
    ("IOT_RX_PASS", 1, "radio_rx verdict: deliver the packet"),
    ("IOT_BOOT_COLD", 0, "boot reason: power on"),
    ("IOT_BOOT_RESTART", 1, "boot reason: restart with pinned maps"),
    ("IOT_EDGE_RISING", 1, "gpio edge"),
    ("IOT_EDGE_FALLING", 2, "gpio edge"),
    ("IOT_USAGE_SCREEN_ON", 1, "app_usage kind: screen turned on"),
    ("IOT_USAGE_SCREEN_OFF", 2, "app_usage kind: screen turned off"),
    ("IOT_USAGE_FOREGROUND", 3, "app_usage kind: uid came to the foreground"),
    ("IOT_USAGE_WAKEUP", 4, "app_usage kind: uid woke the device (alarm); wakeups is set"),
    ("IOT_USAGE_WAKELOCK", 5, "app_usage kind: uid released a wakelock held for duration_ns"),
    ("IOT_USAGE_NETWORK", 6, "app_usage kind: network burst of rx_bytes/tx_bytes by uid"),
    ("IOT_USAGE_SAMPLE", 7, "app_usage kind: periodic per-uid sample from a monitor (cpu, bytes)"),
    ("IOT_USAGE_CPU", 8, "app_usage kind: uid ran cpu_time_ns on one core; arg = cluster << 8 | speed step"),
    ("IOT_USAGE_BRIGHTNESS", 9, "app_usage kind: screen brightness changed; arg = bin 0..4"),
    ("IOT_USAGE_WAKELOCK_ACQUIRE", 10, "app_usage kind: uid acquired a partial wakelock"),
    ("IOT_USAGE_GPS", 11, "app_usage kind: uid used GPS for duration_ns, ending now"),
    ("IOT_USAGE_CAMERA", 12, "app_usage kind: uid used the camera for duration_ns; arg 1 = flashlight"),
    ("IOT_USAGE_AUDIO", 13, "app_usage kind: uid played audio for duration_ns; arg 1 = video"),
    ("IOT_USAGE_DISK", 14, "app_usage kind: uid read rx_bytes from and wrote tx_bytes to storage"),
    ("IOT_USAGE_NET_WIFI", 0, "app_usage NETWORK arg: the burst went over Wi-Fi"),
    ("IOT_USAGE_NET_CELL", 1, "app_usage NETWORK arg: the burst went over the cellular modem"),
    ("IOT_BATTERY_LOW", 1, "battery flags: state of charge below the policy's low threshold"),
    ("IOT_BATTERY_CRITICAL", 2, "battery flags: state of charge below the critical threshold"),
    ("IOT_SENSOR_ERROR", -(1 << 63), "iot_sensor_read result for an unknown or failed sensor"),
    ("IOT_RX_PAYLOAD_MAX", 64, "bytes of a received packet copied into the radio_rx context"),
)

# name, id, what the event is, what r0 means, fields: (name, ctype, writable, doc)
HOOK_TABLE = (
    ("boot", 1, "the node started (once, before any other event)", "ignored", (
        ("now_ns", "u64", False, "virtual or monotonic time of the event"),
        ("node_id", "u32", False, "this node's id"),
        ("reason", "u32", False, "IOT_BOOT_COLD or IOT_BOOT_RESTART"),
        ("battery_permille", "u32", False, "battery state of charge, 0..1000"),
        ("app_id", "u32", False, "this app's id (for iot_* attribution)"),
    )),
    ("timer", 2, "a timer armed by the manifest or by iot_timer_arm expired", "ignored", (
        ("now_ns", "u64", False, "time of the expiry"),
        ("period_ns", "u64", False, "the timer's period (0 for one-shot)"),
        ("timer_id", "u32", False, "which timer"),
        ("expirations", "u32", False, "how many times this timer has fired, this one included"),
    )),
    ("gpio", 3, "a GPIO pin changed level", "ignored", (
        ("now_ns", "u64", False, "time of the edge"),
        ("pin", "u32", False, "pin number"),
        ("level", "u32", False, "new level, 0 or 1"),
        ("edge", "u32", False, "IOT_EDGE_RISING or IOT_EDGE_FALLING"),
        ("count", "u32", False, "edges seen on this pin so far, this one included"),
    )),
    ("sensor", 4, "a sensor produced a sample on its own schedule (interrupt or FIFO)", "ignored", (
        ("now_ns", "u64", False, "time of the sample"),
        ("value", "s64", False, "reading in milli-units (m°C, m%RH, mlux, ...)"),
        ("sensor_id", "u32", False, "which sensor"),
        ("pad", "u32", False, "reserved"),
    )),
    ("radio_rx", 5, "a packet was received", "IOT_RX_PASS to deliver, IOT_RX_DROP to drop", (
        ("now_ns", "u64", False, "time of reception"),
        ("src", "u32", False, "sender address"),
        ("dst", "u32", False, "destination address"),
        ("len", "u32", False, "packet length in bytes"),
        ("rssi", "s32", False, "received signal strength, dBm"),
        ("mark", "u32", True, "classification a program may set (reported with the packet)"),
        ("port", "u32", False, "destination port / protocol number"),
        ("payload", "u8[64]", False, "the first IOT_RX_PAYLOAD_MAX bytes of the packet"),
    )),
    ("radio_tx_done", 6, "a queued packet was transmitted (or given up)", "ignored", (
        ("now_ns", "u64", False, "time the transmission completed"),
        ("latency_ns", "u64", False, "time from iot_radio_send to completion"),
        ("nbytes", "u32", False, "bytes transmitted"),
        ("ok", "u32", False, "1 if delivered, 0 if lost"),
        ("deadline_missed", "u32", False, "1 if completion came after the requested deadline"),
        ("pad", "u32", False, "reserved"),
    )),
    ("app_usage", 7, "an app-usage event (Android-like sessions or a Linux monitor's sample)",
     "ignored", (
         ("now_ns", "u64", False, "time of the event"),
         ("duration_ns", "u64", False, "time covered (wakelock held, sample interval)"),
         ("cpu_time_ns", "u64", False, "CPU time used by uid in the interval"),
         ("rx_bytes", "u64", False, "bytes received by uid"),
         ("tx_bytes", "u64", False, "bytes sent by uid"),
         ("energy_uj", "u64", False, "energy attributed to uid in the interval, if measured"),
         ("uid", "u32", False, "app / user id (0 = system)"),
         ("kind", "u32", False, "IOT_USAGE_*"),
         ("wakeups", "u32", False, "wakeups caused by uid"),
         ("arg", "u32", False, "kind's argument (SCREEN_ON/BRIGHTNESS: bin, CPU: cluster<<8|step, "
                               "NETWORK: IOT_USAGE_NET_*)"),
     )),
    ("battery", 8, "battery state changed (periodic report or threshold crossed)", "ignored", (
        ("now_ns", "u64", False, "time of the report"),
        ("energy_used_uj", "u64", False, "energy used by the node since boot, microjoules"),
        ("soc_permille", "u32", False, "state of charge, 0..1000"),
        ("flags", "u32", False, "IOT_BATTERY_LOW | IOT_BATTERY_CRITICAL"),
    )),
)


def _packer(fmt):
    """``pack_into(buf, offset, *values)`` for ``fmt``: a compiled struct.Struct's where there is
    one (CPython), else struct.pack_into with the format (MicroPython)."""
    compiled = getattr(struct, "Struct", None)
    if compiled is not None:
        return compiled(fmt).pack_into

    def pack_into(buf, offset, *values):
        struct.pack_into(fmt, buf, offset, *values)
    return pack_into


def _parse_ctype(ctype):
    """'u32' -> ('u32', 1); 'u8[64]' -> ('u8', 64)."""
    if "[" in ctype:
        base, count = ctype[:-1].split("[")
        return base, int(count)
    return ctype, 1


class HookField:
    """One context field: name, C type, offset, size, writable, doc."""

    def __init__(self, name, ctype, offset, size, writable, doc):
        self.name = name
        self.ctype = ctype
        self.offset = offset
        self.size = size
        self.writable = writable
        self.doc = doc


class Struct:
    """A C struct laid out with natural alignment: fields with offsets, size and struct format.

    ``fields`` rows are (name, ctype, writable, doc). Used for hook contexts and map values.
    """

    def __init__(self, name, fields):
        self.name = name
        self.fields = []
        offset = 0
        fmt = "<"
        align_max = 1
        for fname, ctype, writable, fdoc in fields:
            base, count = _parse_ctype(ctype)
            size, code = CTYPES[base]
            pad = (-offset) % size
            if pad:
                fmt += "%dx" % pad
                offset += pad
            self.fields.append(HookField(fname, ctype, offset, size * count, writable, fdoc))
            fmt += ("%ds" % count) if count > 1 else code
            offset += size * count
            if size > align_max:
                align_max = size
        tail = (-offset) % align_max
        if tail:
            fmt += "%dx" % tail
            offset += tail
        self.size = offset
        self.fmt = fmt
        self.field_names = [f.name for f in self.fields]
        self._plan = None  # (field name, is an array) per field, for pack_into
        self._scalar_names = None  # the field names when no field is an array (pack_into)
        self._packer = None  # pack_into(buf, offset, *values) for this format (packer())
        if struct.calcsize(fmt) != offset:
            raise AssertionError("layout of %s is inconsistent" % name)

    def field(self, name):
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def packer(self):
        """``pack_into(buf, offset, *values)`` for this layout, every field's value in declared
        order (scalar layouts only): the event paths that run per packet keep it and pack with
        it (no dict of names)."""
        packer = self._packer
        if packer is None:
            packer = self._packer = _packer(self.fmt)
        return packer

    def pack(self, values):
        """A fresh context buffer from a dict of field values (missing fields are zero)."""
        buf = bytearray(self.size)
        self.pack_into(buf, values)
        return buf

    def pack_into(self, buf, values):
        plan = self._plan
        if plan is None:
            plan = self._plan = tuple((f.name, f.ctype.endswith("]")) for f in self.fields)
            self._scalar_names = None if any(a for _n, a in plan) else tuple(n for n, _a in plan)
        get = values.get
        names = self._scalar_names
        if names is not None:  # no array field: every value is a number
            struct.pack_into(self.fmt, buf, 0, *[get(name, 0) for name in names])
            return
        args = []
        for name, is_array in plan:
            v = get(name, 0)
            if is_array and not isinstance(v, (bytes, bytearray)):
                v = b""
            args.append(v)
        struct.pack_into(self.fmt, buf, 0, *args)

    def unpack(self, buf):
        """Dict of field values of a context buffer."""
        return dict(zip(self.field_names, struct.unpack_from(self.fmt, buf, 0)))


class Hook(Struct):
    """An attach point: its id, what it means, what r0 means, and its context layout."""

    def __init__(self, name, hook_id, doc, ret_doc, fields):
        Struct.__init__(self, name, fields)
        self.id = hook_id
        self.doc = doc
        self.ret_doc = ret_doc
        self._layout = None

    def layout(self):
        """This hook's ContextLayout (iotbpf.ebpf.types), as the verifier consumes it."""
        if self._layout is None:
            from iotbpf.ebpf.types import ContextField, ContextLayout

            fields = [ContextField(f.name, f.offset, f.size, f.writable, f.doc) for f in self.fields]
            self._layout = ContextLayout(self.name, self.size, fields)
        return self._layout


HOOKS = {}
for _row in HOOK_TABLE:
    HOOKS[_row[0]] = Hook(*_row)
HOOK_NAMES = tuple(row[0] for row in HOOK_TABLE)


def get_hook(name):
    """The Hook named ``name``; ValueError listing the known hooks otherwise."""
    hook = HOOKS.get(name)
    if hook is None:
        raise ValueError("unknown hook %r (known: %s)" % (name, ", ".join(HOOK_NAMES)))
    return hook


def constant(name):
    for cname, value, _doc in CONSTANTS:
        if cname == name:
            return value
    raise KeyError(name)
