"""The simulated board: sensors, GPIO, radio link and traffic, app usage, wired to a node's runtime as
lazy event streams from one seed; it never reads host time (docs/runtime.md, "Platforms").
"""

from iotbpf.ebpf.prng import Rng
from iotbpf.kernel.clock import parse_duration
from iotbpf.kernel.platform import Platform
from iotbpf.platforms.sim.gpio import Gpio, PoissonPin
from iotbpf.platforms.sim.radio import Link, TrafficSource
from iotbpf.platforms.sim.sensors import make_sensor
from iotbpf.platforms.sim.usage import AndroidUsage

CONFIG_KEYS = ("sensors", "gpio", "outputs", "radio", "usage")
# the keys each kind of entry accepts (anything else is a mistake worth a clear error)
ENTRY_KEYS = {
    "sensors": ("id", "name", "model", "file", "period", "mean", "step_size", "step", "diurnal", "minimum",
                "maximum"),
    "gpio": ("pin", "rate_per_hour", "pulse"),
    "radio": ("bitrate", "overhead_bytes", "loss_ppm", "traffic"),
    "traffic": ("src", "len", "port", "rssi", "period", "rate_per_hour", "start", "stop"),
    "usage": ("screen_off", "screen_on", "session", "night", "apps", "power_profile"),
}


def _is_phone(models):
    """A board built from a power_profile.xml: its screen has brightness bins."""
    screen = models.get("screen")
    return screen is not None and "bright0" in screen.states


def _check_finite(value, where):
    """Refuse NaN and infinities anywhere in the config (Python's json reads NaN/Infinity)."""
    if isinstance(value, float):
        if value != value or value - value != 0.0:
            raise ValueError("%s: %r is not a finite number" % (where, value))
    elif isinstance(value, dict):
        for key in value:
            _check_finite(value[key], "%s.%s" % (where, key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_finite(item, "%s[%d]" % (where, i))


def _check_entries(config):
    _check_finite(config, "sim")
    for kind in ("sensors", "gpio"):
        entries = config.get(kind, ())
        if not isinstance(entries, (list, tuple)):
            raise ValueError("sim.%s must be a list" % kind)
        for i, entry in enumerate(entries):
            _check_keys(entry, kind, "sim.%s[%d]" % (kind, i))
    radio = config.get("radio", {})
    _check_keys(radio, "radio", "sim.radio")
    for i, entry in enumerate(radio.get("traffic", ())):
        _check_keys(entry, "traffic", "sim.radio.traffic[%d]" % i)
    if isinstance(config.get("usage"), dict):
        _check_keys(config["usage"], "usage", "sim.usage")


def _check_keys(entry, kind, where):
    if not isinstance(entry, dict):
        raise ValueError("%s must be an object" % where)
    for key in entry:
        if key not in ENTRY_KEYS[kind]:
            raise ValueError("%s: unknown field %r (known: %s)" % (where, key, ", ".join(ENTRY_KEYS[kind])))
DEFAULT_SENSORS = ({"id": 0, "name": "temperature", "model": "random_walk"},
                   {"id": 1, "name": "humidity", "model": "random_walk", "mean": 55000, "step_size": 150,
                    "diurnal": 8000, "minimum": 0, "maximum": 100000})


class SimPlatform(Platform):
    """Simulated devices of one node. ``events``: a parsed trace replacing the generators."""

    def __init__(self, config=None, seed=0, events=None, read_file=None):
        config = config or {}
        for key in config:
            if key not in CONFIG_KEYS:
                raise ValueError("sim: unknown field %r (known: %s)" % (key, ", ".join(CONFIG_KEYS)))
        _check_entries(config)
        self.seed = seed
        self.trace = events
        self.sensors = {}
        for spec in config.get("sensors", DEFAULT_SENSORS):
            sid = int(spec.get("id", 0))
            if not 0 <= sid <= 0xFFFFFFFF:
                raise ValueError("sim.sensors: id %d is not a u32 (programs read sensors by a 32-bit id)" % sid)
            self.sensors[sid] = make_sensor(seed, spec, read_file)
        self.sensor_periods = [(int(s.get("id", 0)), parse_duration(s["period"]))
                               for s in config.get("sensors", ()) if "period" in s]
        for sid, period in self.sensor_periods:
            if period <= 0:
                raise ValueError("sensor %d: period must be a positive duration" % sid)
        pins = config.get("gpio", ())
        self.pins = [PoissonPin(seed, p["pin"], p.get("rate_per_hour", 1), p.get("pulse", "100ms"))
                     for p in pins]
        self.gpio = Gpio([p.pin for p in self.pins], config.get("outputs", ()))
        radio = config.get("radio", {})
        self.link = Link(seed, radio.get("bitrate", 250000), radio.get("overhead_bytes", 17),
                         radio.get("loss_ppm", 10000))
        self.sources = [TrafficSource(seed, i, s) for i, s in enumerate(radio.get("traffic", ()))]
        usage = config.get("usage")
        if usage is not None and not isinstance(usage, dict):
            raise ValueError("sim.usage must be an object (e.g. {} for the default apps)")
        self.usage = AndroidUsage(seed, usage) if usage is not None else None
        self.power_profile = usage.get("power_profile") if usage is not None else None
        if self.power_profile is not None and not isinstance(self.power_profile, str):
            raise ValueError("sim.usage.power_profile must be a file name (e.g. raphael_power_profile.xml)")
        self.phone = None
        self.trace_sensor = {}
        self.generated = {}
        self.jitter_rng = Rng(seed, "timers")

    # ---------------------------------------------------------------- device interface

    def sensor_read(self, sensor_id, now_ns):
        if sensor_id in self.trace_sensor:
            return self.trace_sensor[sensor_id]
        sensor = self.sensors.get(sensor_id)
        return None if sensor is None else sensor.read(now_ns)

    def sensor_reader(self, sensor_id):
        """``fn(now_ns) -> int or None`` reading one sensor, as ``sensor_read(sensor_id, now_ns)``
        does: the sensor model's own ``read`` when no trace can set values (the runtime's fast path)."""
        if self.trace is not None:
            return lambda now_ns: self.sensor_read(sensor_id, now_ns)
        sensor = self.sensors.get(sensor_id)
        if sensor is None:
            return lambda now_ns: None
        return sensor.read

    def gpio_read(self, pin):
        return self.gpio.read(pin)

    def gpio_write(self, pin, level):
        return self.gpio.write(pin, level)

    def airtime_ns(self, nbytes):
        return self.link.airtime_ns(nbytes)

    def delivered(self):
        return self.link.delivered()

    def jitter_ns(self, max_jitter_ns):
        """A timer's jitter draw in [0, max_jitter_ns] (the OS asks; reproducible from the seed)."""
        return self.jitter_rng.below(max_jitter_ns + 1) if max_jitter_ns else 0

    # ---------------------------------------------------------------- event streams

    def start(self, runtime, end_ns):
        """Schedule every stream's first event on the runtime's queue (and, for a phone -- an app
        with ``sim.usage`` on a board built from a power_profile.xml -- the usage-driven energy
        model, iotbpf.energy.phone)."""
        self.runtime = runtime
        sched = getattr(runtime, "scheduler", None)
        if self.usage is not None and sched is not None and _is_phone(sched.ledger.models):
            self._start_phone(sched, end_ns)
        if self.trace is not None:
            self._stream(iter(self.trace), end_ns)
            return
        for pin in self.pins:
            self._stream(self._gpio_events(pin, end_ns), end_ns)
        for source in self.sources:
            self._stream(self._radio_events(source), end_ns)
        for sid, period in self.sensor_periods:
            self._stream(self._sensor_events(sid, period), end_ns)
        if self.usage is not None:
            self._stream(self._usage_events(end_ns), end_ns)

    def _start_phone(self, sched, end_ns):
        from iotbpf.energy.android_profile import parse_power_profile
        from iotbpf.energy.board import find_file
        from iotbpf.energy.models import read_text
        from iotbpf.energy.phone import Phone

        # the board's own profile (its cpu model is "<profile>_cpu", see android_profile.phone_models)
        # unless sim.usage names one; a bare "x.xml" is looked up among the bundled energy models
        name = self.power_profile
        cpu = sched.ledger.models.get("cpu")
        if name is None and cpu is not None and cpu.name.endswith("_cpu"):
            name = cpu.name[:-4] + ".xml"
        path = find_file("energy_models", name or "raphael_power_profile.xml", ".json")
        profile = parse_power_profile(read_text(path))
        wifi = {}
        radio = getattr(sched.board, "radio", None)
        if isinstance(radio, dict) and isinstance(radio.get("params"), dict):
            wifi = radio["params"]
        self.phone = Phone(profile, sched.ledger, sched.attr, 0, self.usage.names, wifi)
        if end_ns > 0:
            self.runtime.queue.push(end_ns - 1, self._finish_phone, None)

    def _finish_phone(self, now_ns, _arg):
        self.phone.finish(now_ns)
        self.runtime.scheduler.advance(now_ns)  # the ledger is settled up to here at the end

    def _stream(self, iterator, end_ns):
        first = next(iterator, None)
        if first is not None and first[0] < end_ns:
            self.runtime.queue.push(first[0], self._fire, (iterator, first[1], first[2], end_ns))

    def _fire(self, now_ns, arg):
        iterator, hook, fields, end_ns = arg
        self.generated[hook] = self.generated.get(hook, 0) + 1
        if hook == "gpio":
            self.gpio.levels[fields.get("pin", 0)] = fields.get("level", 0)
        elif hook == "sensor" and self.trace is not None:
            self.trace_sensor[fields.get("sensor_id", 0)] = fields.get("value", 0)
        elif hook == "app_usage" and self.phone is not None:
            self.phone.on_usage(now_ns, fields)
        self.runtime.raise_event(hook, fields)
        nxt = next(iterator, None)
        if nxt is not None and nxt[0] < end_ns:
            self.runtime.queue.push(nxt[0], self._fire, (iterator, nxt[1], nxt[2], end_ns))

    def _gpio_events(self, pin, end_ns):
        count = 0
        for t, level in pin.edges(0, end_ns):
            count += 1
            yield t, "gpio", {"pin": pin.pin, "level": level, "edge": 1 if level else 2, "count": count}

    def _radio_events(self, source):
        t = 0
        seq = 0
        while True:
            t = source.next_after(t)
            if t is None:
                return
            seq += 1
            yield t, "radio_rx", source.packet(seq)

    def _sensor_events(self, sid, period):
        t = 0
        sensor = self.sensors.get(sid)
        while sensor is not None:
            t += period
            yield t, "sensor", {"sensor_id": sid, "value": sensor.read(t)}

    def _usage_events(self, end_ns):
        for t, fields in self.usage.events(end_ns):
            yield t, "app_usage", fields
