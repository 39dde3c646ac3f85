"""The IoT helpers programs call (private IDs from 0x1000), each declared once: ID, name, C prototype,
argument kinds for the verifier, and the implementation.

Implementations follow the VM's convention ``fn(ex, r1, r2, r3, r4, r5) -> u64`` and reach the
node through ``ex.env`` (an AppEnv: ``.node`` the Runtime, ``.app`` the calling App). They must
never trust a program's arguments: bad ids return a negative errno, bad pointers fault.
"""

from iotbpf.ebpf.engines.vm import HelperFault

IOT_HELPER_BASE = 0x1000
MASK64 = 0xFFFFFFFFFFFFFFFF

EINVAL = 22
ENOENT = 2
ENOSPC = 28

SENSOR_ERROR = 1 << 63  # IOT_SENSOR_ERROR as an unsigned 64-bit register value


def _neg(errno):
    return (-errno) & MASK64


def _sensor_read(ex, sensor, r2, r3, r4, r5):
    # AppEnv.sensor_helper: Runtime.sensor_read with the lookups done once (appstate._sensor_helper)
    return ex.env.sensor_helper(ex, sensor, r2, r3, r4, r5)


def _sensor_read_for(env):
    """iot_sensor_read bound to one app's environment: its sensor_helper itself (one call less
    per sample of a node-year); None for an environment that has none."""
    return getattr(env, "sensor_helper", None)


# Host bounds on what timer programs can make the node do (docs/runtime.md, "Work bounds"):
# at most MAX_APP_TIMERS armed timers per app, none faster than the node's minimum period
# (the board's ``min_timer_period_ns``, else MIN_TIMER_PERIOD_NS); a one-shot delay below the
# minimum is raised to it, so a timer program re-arming itself cannot spin in place.
MAX_APP_TIMERS = 16           # as many as a manifest may declare (manifest.MAX_TIMERS)
MIN_TIMER_PERIOD_NS = 1000000  # 1 ms: at most 1 000 runs per second per timer


def min_timer_period_ns(node):
    """The node's minimum timer period (its board's, else MIN_TIMER_PERIOD_NS)."""
    board = getattr(node, "board", None)
    value = getattr(board, "min_timer_period_ns", None) if board is not None else None
    return value if isinstance(value, int) and value > 0 else MIN_TIMER_PERIOD_NS


def _timer_arm(ex, timer_id, delay_ns, period_ns, r4, r5):
    if timer_id > 0xFFFF or delay_ns > (1 << 62) or period_ns > (1 << 62):
        return _neg(EINVAL)
    node = ex.env.node
    app = ex.env.app
    least = min_timer_period_ns(node)
    if period_ns and period_ns < least:
        return _neg(EINVAL)  # a faster periodic timer would starve the node
    if timer_id not in app.timers and len(app.timers) >= MAX_APP_TIMERS:
        return _neg(ENOSPC)
    node.arm_timer(app, timer_id, delay_ns if delay_ns >= least else least, period_ns)
    return 0


def _timer_cancel(ex, timer_id, r2, r3, r4, r5):
    return 0 if ex.env.node.cancel_timer(ex.env.app, timer_id) else _neg(ENOENT)


def _gpio_read(ex, pin, r2, r3, r4, r5):
    level = ex.env.node.gpio_read(pin & 0xFFFFFFFF)
    return _neg(EINVAL) if level is None else level


def _gpio_write(ex, pin, level, r3, r4, r5):
    ok = ex.env.node.gpio_write(ex.env.app, pin & 0xFFFFFFFF, 1 if level else 0)
    return 0 if ok else _neg(EINVAL)


def _radio_send(ex, data, size, deadline_ns, r4, r5):
    payload = _read(ex, data, size)
    if deadline_ns > (1 << 62):
        return _neg(EINVAL)
    return 0 if ex.env.node.radio_send(ex.env.app, payload, deadline_ns) else _neg(ENOSPC)


def _radio_listen(ex, duration_ns, r2, r3, r4, r5):
    if duration_ns > (1 << 62):
        return _neg(EINVAL)
    ex.env.node.radio_listen(ex.env.app, duration_ns)
    return 0


def _energy_used_uj(ex, r1, r2, r3, r4, r5):
    return ex.env.node.energy_used_uj()


def _battery_soc(ex, r1, r2, r3, r4, r5):
    return ex.env.node.battery_permille()


def _log(ex, msg, size, value, r4, r5):
    text = _read(ex, msg, size)
    end = text.find(b"\0")
    if end >= 0:
        text = text[:end]
    ex.env.node.log(ex.env.app, text, value)
    return 0


def _read(ex, addr, size):
    if size > 4096:
        raise HelperFault("size %d too large" % size)
    try:
        return ex.memory.read_bytes(addr, size)
    except Exception as exc:  # MemoryFault: report it as this helper's fault, with the address
        raise HelperFault("bad pointer 0x%x (size %d): %s" % (addr, size, exc)) from None


# id, name, C return type, C arguments (type, name), verifier argument kinds, return kind,
# implementation, doc. Argument kinds are names in iotbpf.ebpf.types.
HELPER_TABLE = (
    (0x1000, "iot_sensor_read", "__s64", (("__u32", "sensor"),), ("ARG_ANYTHING",), "RET_INTEGER",
     _sensor_read, "Read a sensor now; milli-units, or IOT_SENSOR_ERROR for an unknown sensor."),
    (0x1001, "iot_timer_arm", "long", (("__u32", "timer_id"), ("__u64", "delay_ns"), ("__u64", "period_ns")),
     ("ARG_ANYTHING", "ARG_ANYTHING", "ARG_ANYTHING"), "RET_INTEGER", _timer_arm,
     "Arm (or re-arm) this app's timer to fire after delay_ns, then every period_ns (0: once)."),
    (0x1002, "iot_timer_cancel", "long", (("__u32", "timer_id"),), ("ARG_ANYTHING",), "RET_INTEGER",
     _timer_cancel, "Cancel this app's timer; -ENOENT if it was not armed."),
    (0x1003, "iot_gpio_read", "long", (("__u32", "pin"),), ("ARG_ANYTHING",), "RET_INTEGER", _gpio_read,
     "Level of a GPIO pin (0/1), -EINVAL for a pin the board does not have."),
    (0x1004, "iot_gpio_write", "long", (("__u32", "pin"), ("__u32", "level")),
     ("ARG_ANYTHING", "ARG_ANYTHING"), "RET_INTEGER", _gpio_write,
     "Drive a GPIO output pin; -EINVAL for a pin the board does not have."),
    (0x1005, "iot_radio_send", "long",
     (("const void *", "data"), ("__u32", "size"), ("__u64", "deadline_ns")),
     ("ARG_PTR_TO_MEM", "ARG_CONST_SIZE", "ARG_ANYTHING"), "RET_INTEGER", _radio_send,
     "Queue a packet for the radio scheduler, to be sent within deadline_ns from now; -ENOSPC when full."),
    (0x1006, "iot_radio_listen", "long", (("__u64", "duration_ns"),), ("ARG_ANYTHING",), "RET_INTEGER",
     _radio_listen, "Ask the scheduler to keep the radio listening for duration_ns from now."),
    (0x1007, "iot_energy_used_uj", "__u64", (), (), "RET_INTEGER", _energy_used_uj,
     "Energy the node has used since boot, microjoules (0 without an energy model)."),
    (0x1008, "iot_battery_soc", "__u32", (), (), "RET_INTEGER", _battery_soc,
     "Battery state of charge in permille, 0..1000 (1000 without a battery model)."),
    (0x1009, "iot_log", "long", (("const void *", "msg"), ("__u32", "size"), ("__u64", "value")),
     ("ARG_PTR_TO_MEM", "ARG_CONST_SIZE", "ARG_ANYTHING"), "RET_INTEGER", _log,
     "Append a line (msg up to its NUL, and value) to the node's log."),
)

HELPER_IDS = {}
for _row in HELPER_TABLE:
    HELPER_IDS[_row[1]] = _row[0]


def helper_specs():
    """The IoT helpers as iotbpf.ebpf.types.HelperSpec objects."""
    from iotbpf.ebpf import types

    specs = []
    for hid, name, _cret, _cargs, kinds, ret, fn, doc in HELPER_TABLE:
        args = tuple(getattr(types, k) for k in kinds)
        specs.append(types.HelperSpec(hid, name, args, getattr(types, ret), fn, doc, bind=_BINDERS.get(hid),
                                      u64_result=hid in _U64_RESULT))
    return specs


_BINDERS = {0x1000: _sensor_read_for}  # helper id -> HelperSpec.bind
# the helpers whose implementation always returns an int in [0, 2**64) (HelperSpec.u64_result):
# a reading masked to 64 bits, 0 or a negative errno through _neg
_U64_RESULT = (0x1000, 0x1001, 0x1002, 0x1004, 0x1005, 0x1006, 0x1009)


def register(table):
    """Add every IoT helper to a HelperTable (the Linux helpers come from iotbpf.ebpf.helpers)."""
    for spec in helper_specs():
        table.register(spec)
    return table
