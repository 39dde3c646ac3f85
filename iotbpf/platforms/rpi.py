"""Raspberry Pi (and any Linux box) node runtime in real time: gpiozero GPIO edges as `gpio` events,
INA219 power (real or replayed) beside the model's estimate, reports through a callable the CLI
hands in. Host-only (docs/platforms.md, "A node in real time").
"""

import bisect
import threading
import time
import warnings

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.kernel.platform import Platform

EDGE_RISING = 1  # IOT_EDGE_RISING (iotbpf.kernel.hooks)
EDGE_FALLING = 2  # IOT_EDGE_FALLING

INA219_REGISTERS = {0x00: "configuration", 0x01: "shunt voltage", 0x02: "bus voltage", 0x03: "power",
                    0x04: "current", 0x05: "calibration"}
MAX_TRACE_ROWS = 10000000


class ReplayMismatch(IotbpfError):
    """The driver did something the recording cannot answer (another address, other calibration)."""


# ------------------------------------------------------------------ INA219 register replay


class Ina219Trace:
    """A recorded INA219 register trace: the driver's configuration writes and timed samples.

    Format (text, version 1): ``#`` comments; ``version 1``; ``address 0x40``; ``shunt_ohms R``;
    ``max_expected_amps A`` (how the driver was configured when recording); ``write REG VALUE``
    (what the driver wrote when the trace was recorded); optionally
    ``truth_energy_j J``; then one line per sample ``t_ms shunt bus power current`` with the four
    16-bit register words as the device sends them (MSB first).
    """

    def __init__(self, text: str, where: str = "INA219 trace"):
        self.where = where
        self.version = None
        self.address = None
        self.shunt_ohms = None
        self.max_expected_amps = None
        self.writes = []
        self.truth_energy_j = None
        self.times_ms = []
        self.samples = []  # {register: word}
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            try:
                self._line(parts)
            except (ValueError, IndexError):
                raise IotbpfError("%s line %d: cannot read %r" % (where, number, line[:60])) from None
            if len(self.samples) > MAX_TRACE_ROWS:
                raise IotbpfError("%s: more than %d samples" % (where, MAX_TRACE_ROWS))
        if self.version != 1:
            raise IotbpfError("%s: unknown or missing version %r (known: 1)" % (where, self.version))
        if self.address is None or not self.samples:
            raise IotbpfError("%s: needs an address line and at least one sample" % where)
        if any(b <= a for a, b in zip(self.times_ms, self.times_ms[1:])):
            raise IotbpfError("%s: sample times must increase" % where)

    def _line(self, parts):
        key = parts[0]
        if key == "version":
            self.version = int(parts[1])
        elif key == "address":
            self.address = int(parts[1], 0)
        elif key == "shunt_ohms":
            self.shunt_ohms = float(parts[1])
        elif key == "max_expected_amps":
            self.max_expected_amps = float(parts[1])
        elif key == "write":
            self.writes.append((int(parts[1], 0), int(parts[2], 0) & 0xFFFF))
        elif key == "truth_energy_j":
            self.truth_energy_j = float(parts[1])
        else:
            t_ms = int(parts[0])
            words = [int(p, 0) & 0xFFFF for p in parts[1:5]]
            if len(words) != 4:
                raise ValueError("a sample has t_ms and four registers")
            self.times_ms.append(t_ms)
            self.samples.append({0x01: words[0], 0x02: words[1], 0x03: words[2], 0x04: words[3]})

    @classmethod
    def load(cls, path: str) -> "Ina219Trace":
        with open(path, "rb") as handle:
            data = handle.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise IotbpfError("%s: not an INA219 trace (not UTF-8 text)" % path) from None
        return cls(text, path)

    @property
    def duration_s(self) -> float:
        """Span of the samples plus one sample period (each sample holds until the next)."""
        times = self.times_ms
        period = (times[-1] - times[0]) / float(len(times) - 1) if len(times) > 1 else 0.0
        return (times[-1] - times[0] + period) / 1000.0


class ReplayI2CBus:
    """An SMBus stand-in for the INA219 driver: answers register reads from an Ina219Trace.

    Reads return the sample in force at the replay time (``seek(t_s)``, or ``clock()`` seconds
    since the bus was made when a clock is given). Writes must match the recording's
    configuration: a driver configured differently would read registers computed with another
    calibration, so that is a ReplayMismatch, not a silent wrong answer.
    """

    def __init__(self, trace: Ina219Trace, clock=None, loop: bool = False):
        self.trace = trace
        self.clock = clock
        self.loop = loop
        self.t_s = 0.0
        self._origin = clock() if clock is not None else 0.0
        self.registers = {0x00: 0x399F, 0x05: 0x0000}  # power-on defaults (datasheet)
        self.written = []
        self.reads = 0

    def seek(self, t_s: float) -> None:
        self.t_s = t_s

    def _sample(self) -> dict:
        t_s = self.clock() - self._origin if self.clock is not None else self.t_s
        t_ms = t_s * 1000.0 + self.trace.times_ms[0] + 1e-6  # 0.35 s * 1000 is 349.99999999999994
        if self.loop:
            span = self.trace.duration_s * 1000.0
            t_ms = self.trace.times_ms[0] + (t_ms - self.trace.times_ms[0]) % span
        index = max(0, bisect.bisect_right(self.trace.times_ms, t_ms) - 1)
        return self.trace.samples[index]

    def _check_address(self, addr: int) -> None:
        if addr != self.trace.address:
            raise OSError(121, "Remote I/O error: no device at address 0x%02x (the trace has 0x%02x)"
                          % (addr, self.trace.address))

    # SMBus methods used by Adafruit_GPIO.I2C.Device (what pi-ina219 talks to)
    def write_i2c_block_data(self, addr: int, register: int, data) -> None:
        self._check_address(addr)
        data = list(data)
        if len(data) != 2:
            raise OSError(22, "INA219 registers are 16-bit; got %d bytes" % len(data))
        self._write(register, data[0] << 8 | data[1])

    def write_word_data(self, addr: int, register: int, value: int) -> None:
        self._check_address(addr)
        self._write(register, (value & 0xFF) << 8 | (value >> 8) & 0xFF)  # SMBus sends the low byte first

    def _write(self, register: int, value: int) -> None:
        if register not in (0x00, 0x05):
            raise OSError(5, "INA219 register 0x%02x is read-only" % register)
        if value & 0x8000 and register == 0x00:  # RST: back to power-on defaults
            self.registers = {0x00: 0x399F, 0x05: 0x0000}
            self.written.append((register, value))
            return
        recorded = dict(self.trace.writes)
        if register in recorded and recorded[register] != value:
            raise ReplayMismatch("the driver wrote %s 0x%04x but the trace was recorded with 0x%04x "
                                 "(shunt or max current differ from the recording)"
                                 % (INA219_REGISTERS[register], value, recorded[register]))
        self.registers[register] = value & (0xFFFE if register == 0x05 else 0xFFFF)  # FS0 is void
        self.written.append((register, value))

    def read_word_data(self, addr: int, register: int) -> int:
        """The register as SMBus returns it: first byte on the wire (the MSB) in the low byte."""
        self._check_address(addr)
        word = self._word(register)
        self.reads += 1
        return (word & 0xFF) << 8 | word >> 8

    def read_i2c_block_data(self, addr: int, register: int, length: int = 2) -> list:
        self._check_address(addr)
        word = self._word(register)
        self.reads += 1
        return [word >> 8, word & 0xFF][:length]

    def _word(self, register: int) -> int:
        if register in (0x00, 0x05):
            return self.registers[register]
        if register not in INA219_REGISTERS:
            raise OSError(5, "INA219 has no register 0x%02x" % register)
        if register in (0x03, 0x04) and self.registers[0x05] == 0:
            return 0  # uncalibrated: the device reports zero current and power
        return self._sample()[register]

    def close(self) -> None:
        pass


_driver_lock = threading.Lock()


class _BusShim:
    """Stands in for the Adafruit_GPIO.I2C module while pi-ina219 builds its device object."""

    def __init__(self, bus):
        self.bus = bus

    def get_i2c_device(self, address: int, busnum: int | None = None, i2c_interface=None, **kwargs):
        from Adafruit_GPIO.I2C import Device

        return Device(address, 1 if busnum is None else busnum, i2c_interface=lambda _n: self.bus)


class Ina219Meter:
    """Measured power from an INA219 through the pi-ina219 driver (the real one, unmodified).

    ``bus`` None opens the real I2C bus ``busnum``; a ReplayI2CBus replays a recorded trace.
    A power source for the Linux monitor too: ``kind`` "power", ``read()`` returns watts.
    """

    kind = "power"

    def __init__(self, shunt_ohms: float = 0.1, max_expected_amps=None, address: int = 0x40,
                 busnum: int = 1, bus=None):
        try:
            import ina219
        except ImportError as exc:
            raise IotbpfError("the INA219 needs pi-ina219 (pip install 'iotbpf[rpi]')") from exc
        self.name = "ina219:0x%02x" % address
        self.bus = bus
        with _driver_lock:
            saved = ina219.I2C
            if bus is not None:
                ina219.I2C = _BusShim(bus)
            try:
                self.device = ina219.INA219(shunt_ohms, max_expected_amps, busnum=busnum, address=address)
            except OSError as exc:
                raise IotbpfError("INA219 at 0x%02x on I2C bus %d: %s: %s" % (
                    address, busnum, exc.strerror or exc, exc.filename or "")) from exc
            finally:
                ina219.I2C = saved
        try:
            self.device.configure(self.device.RANGE_32V)
        except OSError as exc:
            raise IotbpfError("INA219 at 0x%02x on I2C bus %d: %s" % (address, busnum, exc.strerror or exc)) \
                from exc

    def sample(self) -> dict:
        """Bus voltage (V), current (A) and power (W) as the driver reports them."""
        return {"voltage_v": self.device.voltage(), "current_a": self.device.current() / 1000.0,
                "power_w": self.device.power() / 1000.0}

    def read(self) -> float:
        return self.device.power() / 1000.0


def replay_energy(trace: Ina219Trace, shunt_ohms=None, max_expected_amps=None) -> dict:
    """Step a trace through the real driver, one reading per sample: energy (J), mean power (W).

    Each reading holds until the next sample (the INA219 averages over its conversion, and the
    trace records one conversion per sample period).
    """
    bus = ReplayI2CBus(trace)
    meter = Ina219Meter(shunt_ohms if shunt_ohms is not None else trace.shunt_ohms or 0.1,
                        max_expected_amps if max_expected_amps is not None else trace.max_expected_amps,
                        address=trace.address, bus=bus)
    times = trace.times_ms
    energy = 0.0
    period_ms = (times[-1] - times[0]) / float(len(times) - 1) if len(times) > 1 else 0.0
    for i, t_ms in enumerate(times):
        bus.seek((t_ms - times[0]) / 1000.0)
        watts = meter.read()
        nxt = times[i + 1] if i + 1 < len(times) else t_ms + period_ms
        energy += watts * (nxt - t_ms) / 1000.0
    seconds = trace.duration_s
    return {"energy_j": energy, "seconds": seconds, "mean_power_w": energy / seconds if seconds else 0.0,
            "samples": len(times), "source": meter.name}


class PowerIntegrator:
    """Samples a power meter on a background thread and integrates joules (rectangle rule).

    Also an energy source for the Linux monitor: ``kind`` "energy", ``read()`` = joules so far.
    """

    kind = "energy"

    def __init__(self, meter, period_s: float = 0.1, clock=time.monotonic):
        self.meter = meter
        self.name = meter.name
        self.period_s = period_s
        self.clock = clock
        self.energy_j = 0.0
        self.samples = 0
        self.errors = 0
        self.last_w = None
        self._stop = threading.Event()
        self._thread = None
        self._last_t = None
        self.started_at = None
        self._read_lock = threading.Lock()

    def start(self) -> None:
        self.started_at = self._last_t = self.clock()
        self._thread = threading.Thread(target=self._loop, name="ina219", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            with self._read_lock:
                self.sample_once()

    def sample_once(self) -> None:
        now = self.clock()
        try:
            watts = self.meter.read()
        except (OSError, IotbpfError):
            self.errors += 1
            return
        if self.last_w is not None and self._last_t is not None:
            self.energy_j += self.last_w * (now - self._last_t)
        self.last_w = watts
        self._last_t = now
        self.samples += 1

    def read(self) -> float:
        """Joules integrated so far (sampling the meter once more first)."""
        with self._read_lock:
            self.sample_once()
            return self.energy_j

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample_once()


# ------------------------------------------------------------------ GPIO


def parse_gpio_specs(specs) -> dict:
    """["BUTTON=17", "DOOR=27"] -> {"BUTTON": 17, "DOOR": 27}; bad input is a clear error."""
    pins = {}
    for spec in specs or ():
        name, sep, pin = spec.partition("=")
        if not sep or not name or not pin.strip().isdigit():
            raise IotbpfError("--gpio %r: expected NAME=PIN (e.g. BUTTON=17)" % spec)
        number = int(pin)
        if number > 53:
            raise IotbpfError("--gpio %s: BCM pin %d does not exist (0..53)" % (spec, number))
        if number in pins.values():
            raise IotbpfError("--gpio %s: pin %d is used twice" % (spec, number))
        pins[name] = number
    return pins


class GpioInputs:
    """Buttons on BCM pins (pull-up, pressed = low) whose edges become `gpio` events.

    ``sink(hook, fields)`` is called from gpiozero's thread (Runtime.inject is thread-safe).
    ``pin_factory`` None uses gpiozero's default (real pins); tests pass a MockFactory.
    """

    def __init__(self, pins: dict, sink, pin_factory=None, bounce_time=None):
        try:
            import gpiozero
        except ImportError as exc:
            raise IotbpfError("GPIO needs gpiozero (pip install 'iotbpf[rpi]')") from exc
        self.pins = dict(pins)
        self.sink = sink
        self.counts = {}
        self.devices = {}
        self._lock = threading.Lock()
        for name, pin in self.pins.items():
            try:
                with warnings.catch_warnings():  # gpiozero warns about each pin library it falls back from
                    warnings.simplefilter("ignore", gpiozero.PinFactoryFallback)
                    button = gpiozero.Button(pin, pull_up=True, bounce_time=bounce_time, pin_factory=pin_factory)
            except gpiozero.GPIOZeroError as exc:
                self.close()
                raise IotbpfError("--gpio %s=%d: %s" % (name, pin, exc)) from exc
            button.when_pressed = self._edge(pin, 0, EDGE_FALLING)
            button.when_released = self._edge(pin, 1, EDGE_RISING)
            self.devices[name] = button
            self.counts[pin] = 0

    def _edge(self, pin: int, level: int, edge: int):
        def fire(*_device):
            with self._lock:
                self.counts[pin] += 1
                count = self.counts[pin]
            self.sink("gpio", {"pin": pin, "level": level, "edge": edge, "count": count})
        return fire

    def read(self, pin: int) -> int | None:
        """The pin's level (pressed = 0), or None when it is not one of these inputs."""
        for name, number in self.pins.items():
            device = self.devices.get(name)
            if number == pin and device is not None:
                return 0 if device.is_pressed else 1
        return None

    def close(self) -> None:
        for device in self.devices.values():
            device.close()
        self.devices = {}


# ------------------------------------------------------------------ the real-time node


class RealtimePlatform(Platform):
    """The device side of a real-time node: simulated sensors (and radio) from the app's `sim`
    section, real GPIO inputs on a Pi (kernel/platform.py's contract)."""

    def __init__(self, sim=None, gpio=None):
        self.sim = sim
        self.gpio = gpio

    def sensor_read(self, sensor_id: int, now_ns: int) -> int | None:
        return self.sim.sensor_read(sensor_id, now_ns) if self.sim is not None else None

    def gpio_read(self, pin: int) -> int | None:
        if self.gpio is not None:
            level = self.gpio.read(pin)
            if level is not None:
                return level
        return self.sim.gpio_read(pin) if self.sim is not None else None

    def gpio_write(self, pin: int, level: int) -> bool:
        return self.sim.gpio_write(pin, level) if self.sim is not None else False

    def airtime_ns(self, nbytes: int) -> int:
        return self.sim.airtime_ns(nbytes) if self.sim is not None else 0

    def delivered(self) -> bool:
        return self.sim.delivered() if self.sim is not None else True

    def jitter_ns(self, max_jitter_ns: int) -> int:
        return self.sim.jitter_ns(max_jitter_ns) if self.sim is not None else 0

    def start(self, runtime, end_ns: int) -> None:
        if self.sim is not None:
            self.sim.start(runtime, end_ns)


def model_vs_measurement(estimate_j: float | None, measured_j: float | None) -> dict:
    """Powertrace-style comparison: estimate, measurement and the estimate's error."""
    error = None
    if estimate_j is not None and measured_j:
        error = round(100.0 * (estimate_j - measured_j) / measured_j, 3)
    return {"estimate_j": estimate_j, "measured_j": measured_j, "error_pct": error}


class RealtimeNode:
    """Runs a kernel Runtime (on a MonotonicClock) in real time with GPIO, a meter and reports.

    ``reporter(report_dict)`` is called every ``report_every_s`` and at the end; the report has
    per-hook counts, the model's energy estimate, the measured energy and the error.
    ``between()`` (optional) runs every ``poll_s`` on the node's thread, between events: the
    place to apply remote commands queued from the MQTT thread.
    """

    def __init__(self, runtime, gpio=None, meter=None, reporter=None, report_every_s: float = 10.0,
                 meter_period_s: float = 0.1, between=None, poll_s: float = 0.1):
        if getattr(runtime.clock, "virtual", False):
            raise IotbpfError("a real-time node needs a real clock (kernel.clock.MonotonicClock)")
        self.runtime = runtime
        self.gpio = gpio
        self.integrator = PowerIntegrator(meter, meter_period_s) if meter is not None else None
        self.reporter = reporter
        self.report_every_s = report_every_s
        self.reports = 0
        self.between = between  # called every poll_s between events (e.g. remote commands)
        self.poll_s = poll_s

    def report(self) -> dict:
        rt = self.runtime
        estimate = rt.energy_used_uj() / 1e6 if rt.scheduler is not None else None
        measured = None
        source = None
        if self.integrator is not None:
            measured = self.integrator.energy_j
            source = self.integrator.meter.name
        out = {"version": 1, "kind": "iotbpf-node", "now_ns": rt.clock.now_ns(),
               "hooks": dict((name, s.as_dict()) for name, s in rt.hook_stats.items() if s.events),
               "faults": rt.fault_count, "measured_source": source,
               "model": getattr(rt.board, "name", None) if rt.board is not None else None}
        out.update(model_vs_measurement(estimate, measured))
        if rt.scheduler is not None:
            summary = rt.scheduler.summary()
            out["soc_percent"] = rt.battery_permille() / 10.0
            out["lifetime_days"] = summary.get("lifetime_days")
            out["apps_j"] = dict(summary.get("apps") or {})
        return out

    def run(self, duration_s: float) -> dict:
        """Boot, run in real time for duration_s seconds, report; returns the final report."""
        rt = self.runtime
        if self.integrator is not None:
            self.integrator.start()
        end_ns = rt.clock.now_ns() + int(duration_s * 1e9)
        every_ns = max(1, int(self.report_every_s * 1e9))
        poll_ns = max(1, int(self.poll_s * 1e9))
        next_report = rt.clock.now_ns() + every_ns
        rt.start_platform(end_ns)
        try:
            while True:
                now = rt.clock.now_ns()
                if now >= end_ns or rt.dead_at_ns is not None:
                    break
                rt.run_realtime(max(1, min(end_ns, next_report) - now) if self.between is None
                                else max(1, min(end_ns - now, next_report - now, poll_ns)))
                if self.between is not None:
                    self.between()
                now = rt.clock.now_ns()
                if now >= next_report:
                    next_report += every_ns
                    if self.reporter is not None and now < end_ns:
                        self.reporter(self.report())
                        self.reports += 1
        finally:
            if self.integrator is not None:
                self.integrator.stop()
            if self.gpio is not None:
                self.gpio.close()
        final = self.report()
        if self.reporter is not None:
            self.reporter(final)
            self.reports += 1
        return final
