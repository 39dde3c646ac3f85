"""The full kernel runtime on a microcontroller (MicroPython only, ~200 KB of heap: boards with PSRAM):
real time, GPIO interrupts, sleep, pinned maps. ``iotbpf deploy`` installs the thin device runtime
instead (docs/mcu.md, "The full kernel on MicroPython").
"""

import json
import time

import machine

try:
    import micropython
except ImportError:  # CPython running the tests' stand-in: call soon means call now
    micropython = None

from iotbpf.kernel.clock import NS_PER_MS, NS_PER_US
from iotbpf.kernel.platform import Platform

PIN_DIR = "/pins"
SAVE_EVERY_NS = 600 * 1000 * NS_PER_MS  # flash wears out: pinned maps are written every 10 minutes
MAX_REPORT_BYTES = 1024


class McuClock:
    """Nanoseconds since start from the wrapping ``ticks_us``; sleeps in ``machine.lightsleep``.

    ``lightsleep`` returns early when an interrupt wakes the CPU, so a GPIO edge is handled
    at once; the event loop then re-reads the clock.
    """

    virtual = False

    def __init__(self, ticks_us=None, ticks_diff=None, sleep_ms=None, min_sleep_ms=2):
        self._ticks = ticks_us or time.ticks_us
        self._diff = ticks_diff or time.ticks_diff
        self._sleep_ms = sleep_ms or machine.lightsleep
        self._min_sleep_ms = min_sleep_ms
        self._last = self._ticks()
        self._acc_us = 0
        self.slept_ms = 0

    def now_ns(self):
        now = self._ticks()
        self._acc_us += self._diff(now, self._last)
        self._last = now
        return self._acc_us * NS_PER_US

    def sleep_until(self, t_ns):
        delta_ms = (t_ns - self.now_ns()) // NS_PER_MS
        if delta_ms >= self._min_sleep_ms:
            self._sleep_ms(delta_ms)
            self.slept_ms += delta_ms
        elif delta_ms > 0:
            time.sleep_ms(delta_ms)


class SerialSink:
    """Reports as JSON lines on the serial console (what a laptop on USB reads)."""

    def __init__(self, stream=None):
        self.stream = stream
        self.sent = 0

    def publish(self, topic, payload):
        line = json.dumps({"topic": topic, "payload": payload})
        if self.stream is None:
            print(line)
        else:
            self.stream.write(line + "\n")
        self.sent += 1
        return True


class MqttSink:
    """Reports over MQTT with ``umqtt.simple`` (Wi-Fi boards); falls back to serial when offline."""

    def __init__(self, client_id, server, port=1883, user=None, password=None, fallback=None):
        from umqtt.simple import MQTTClient

        self.client = MQTTClient(client_id, server, port=port, user=user, password=password, keepalive=60)
        self.fallback = fallback or SerialSink()
        self.connected = False
        self.sent = 0

    def publish(self, topic, payload):
        data = json.dumps(payload)
        try:
            if not self.connected:
                self.client.connect()
                self.connected = True
            self.client.publish(topic, data, qos=1)
            self.sent += 1
            return True
        except OSError:
            self.connected = False
            return self.fallback.publish(topic, payload)


class PinnedMaps:
    """Maps pinned to flash: one small JSON file per map under ``PIN_DIR`` (the map's own
    ``export_state``), written to a temporary file and renamed, so a reset during a write leaves
    the previous copy intact."""

    VERSION = 1

    def __init__(self, directory=PIN_DIR):
        self.directory = directory
        self.maps = {}
        self.saved = 0
        try:
            import os

            os.mkdir(directory)
        except OSError:
            pass

    def _path(self, name):
        return self.directory + "/" + name + ".json"

    def attach(self, name, map_obj):
        """Track ``map_obj``; restore its contents from flash if a valid pinned copy exists."""
        self.maps[name] = map_obj
        try:
            with open(self._path(name)) as f:
                saved = json.loads(f.read())
        except (OSError, ValueError):
            return False
        if not isinstance(saved, dict) or saved.get("version") != self.VERSION or saved.get("map") != name:
            return False
        map_obj.import_state(saved.get("state", {}))
        return True

    def save(self):
        import os

        for name, map_obj in self.maps.items():
            path = self._path(name)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(json.dumps({"version": self.VERSION, "map": name, "state": map_obj.export_state()}))
            os.rename(tmp, path)
        self.saved += 1


class McuPlatform(Platform):
    """Devices of a real microcontroller for the kernel runtime (kernel/platform.py's contract).

    ``config``: {"gpio": [{"name": "BUTTON", "pin": 0, "pull": "up", "trigger": "falling"}],
    "sensors": [{"id": 0, "adc": 26, "scale": 1.0, "offset": 0}], "outputs": [2],
    "airtime_bitrate": 250000}. ``sink`` receives radio packets and logs as JSON lines.
    """

    def __init__(self, config=None, sink=None, node_name="node", fallback_sensors=None):
        self.config = config or {}
        self.sink = sink or SerialSink()
        self.node_name = node_name
        self.runtime = None
        self.inputs = {}
        self.outputs = {}
        self.adcs = {}
        self.fallback_sensors = fallback_sensors or {}
        self.irq_count = 0
        self.bitrate = int(self.config.get("airtime_bitrate", 250000))
        for spec in self.config.get("sensors", ()):
            if "adc" in spec:
                adc = machine.ADC(int(spec["adc"]))
                scale = float(spec.get("scale", 1.0))
                self.adcs[int(spec.get("id", 0))] = (adc, scale, int(spec.get("offset", 0)))
        for pin in self.config.get("outputs", ()):
            self.outputs[int(pin)] = machine.Pin(int(pin), machine.Pin.OUT)

    # ------------------------------------------------------------ runtime interface

    def start(self, runtime, end_ns):
        self.runtime = runtime
        for spec in self.config.get("gpio", ()):
            self._watch(spec)

    def _watch(self, spec):
        number = int(spec["pin"])
        pull = {"up": machine.Pin.PULL_UP, "down": machine.Pin.PULL_DOWN}.get(spec.get("pull", "up"))
        pin = machine.Pin(number, machine.Pin.IN, pull)
        trigger = {"rising": machine.Pin.IRQ_RISING, "falling": machine.Pin.IRQ_FALLING}.get(
            spec.get("trigger", "both"), machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING)
        self.inputs[number] = pin
        platform = self

        def on_edge(p):
            # Soft context only: schedule the delivery, never allocate in a hard IRQ.
            platform.irq_count += 1
            if micropython is not None:
                micropython.schedule(platform._deliver_edge, number)
            else:
                platform._deliver_edge(number)

        pin.irq(handler=on_edge, trigger=trigger)

    def _deliver_edge(self, number):
        pin = self.inputs[number]
        level = pin.value()
        self.runtime.inject("gpio", {"now_ns": self.runtime.clock.now_ns(), "pin": number, "level": level,
                                     "edge": 1 if level else 2})

    def sensor_read(self, sensor_id, now_ns):
        adc = self.adcs.get(sensor_id)
        if adc is not None:
            device, scale, offset = adc
            return int(device.read_u16() * scale) + offset
        fallback = self.fallback_sensors.get(sensor_id)
        return None if fallback is None else fallback.read(now_ns)

    def gpio_read(self, pin):
        device = self.inputs.get(pin) or self.outputs.get(pin)
        return None if device is None else device.value()

    def gpio_write(self, pin, level):
        device = self.outputs.get(pin)
        if device is None:
            return False
        device.value(1 if level else 0)
        return True

    def airtime_ns(self, nbytes):
        return nbytes * 8 * 1000000000 // self.bitrate

    def delivered(self):
        return True

    def transmit(self, app_name, payload, now_ns):
        """A radio packet leaves the node: as a report line (hex payload) on the sink."""
        report = {"t_ns": now_ns, "app": app_name, "payload": _hex(payload[:MAX_REPORT_BYTES])}
        return self.sink.publish("iotbpf/%s/radio" % self.node_name, report)

    def log_line(self, now_ns, app_name, message, value):
        self.sink.publish("iotbpf/%s/log" % self.node_name,
                          {"t_ns": now_ns, "app": app_name, "msg": message, "value": value})


def _hex(data):
    return "".join("%02x" % b for b in data)


class McuNode:
    """An app running on the microcontroller: runtime + McuPlatform + McuClock + pinned maps."""

    def __init__(self, runtime, platform, pinned=None, report_every_ns=60 * 1000 * NS_PER_MS):
        self.runtime = runtime
        self.platform = platform
        self.pinned = pinned
        self.report_every_ns = report_every_ns
        self._last_save = 0
        self._last_report = 0

    def run(self, duration_ns, slice_ns=1000 * NS_PER_MS):
        """Run for ``duration_ns`` of real time, in slices; between slices report and pin maps."""
        runtime = self.runtime
        if not runtime.booted:
            runtime.boot()
            self.platform.start(runtime, duration_ns)
        end = runtime.clock.now_ns() + duration_ns
        while True:
            now = runtime.clock.now_ns()
            if now >= end or runtime.dead_at_ns is not None:
                break
            runtime.run_realtime(min(slice_ns, end - now), poll_ns=slice_ns)
            now = runtime.clock.now_ns()
            if now - self._last_report >= self.report_every_ns:
                self.report(now)
            if self.pinned is not None and now - self._last_save >= SAVE_EVERY_NS:
                self.pinned.save()
                self._last_save = now
        self.report(runtime.clock.now_ns())
        if self.pinned is not None:
            self.pinned.save()

    def report(self, now_ns):
        self._last_report = now_ns
        runtime = self.runtime
        runs = 0
        faults = 0
        for stats in runtime.hook_stats.values():
            runs += stats.runs
            faults += stats.faults
        self.platform.sink.publish("iotbpf/%s/status" % self.platform.node_name,
                                   {"t_ns": now_ns, "runs": runs, "faults": faults,
                                    "battery_permille": runtime.battery_permille()})


def load_node(app_dir, device_config=None, board=None, policy=None, sink=None, pin_dir=PIN_DIR, seed=0,
              engine="interp", clock=None):
    """Load the app in ``app_dir`` (app.json + its .ibpf bundle) onto this microcontroller.

    Programs were verified on the host before deployment (the device profile has no verifier);
    every map of the app is pinned under ``pin_dir`` and restored now, so counters survive resets.
    ``board`` (a board JSON on the device) turns on energy accounting with the scheduler.
    The interpreter is the default engine here: the compiled engine runs faster but keeps each
    program's generated code in RAM, which a small MCU has little of.
    """
    from iotbpf.ebpf.loader.bundle import load_bundle_object
    from iotbpf.kernel import manifest as manifest_module
    from iotbpf.kernel.runtime import Runtime

    manifest = manifest_module.load(app_dir + "/app.json")
    if manifest.bundle is None:
        raise ValueError("app %s has no bundle (deploy packs one)" % manifest.name)
    bundle = load_bundle_object(manifest.path(manifest.bundle))
    for spec in bundle.maps:  # BTF layouts serve the host's typed map views; ~1 KB each here
        spec.key_type = None
        spec.value_type = None
    programs = {}
    for _hook, section in manifest.hooks:
        if section not in programs:
            program = bundle.program(section)
            program.pack()  # raw 8-byte slots, no source lines: RAM is scarcer here than on the host
            programs[section] = program
    bundle = None
    scheduler = None
    board_obj = None
    if board is not None:
        from iotbpf.energy.board import load_board
        from iotbpf.kernel.scheduler import make_scheduler

        board_obj = load_board(board)
        scheduler = make_scheduler(policy or manifest.policy or "batching", board_obj)
    fallback = {}
    if device_config is None or not device_config.get("sensors"):
        from iotbpf.platforms.sim.sensors import make_sensor

        for spec in (manifest.sim or {}).get("sensors", ()):
            fallback[int(spec.get("id", 0))] = make_sensor(seed, spec, None)
    platform = McuPlatform(device_config, sink=sink, node_name=manifest.name, fallback_sensors=fallback)
    runtime = Runtime(platform=platform, clock=clock or McuClock(), scheduler=scheduler, board=board_obj,
                      seed=seed, engine=engine, verify=False)
    app = runtime.load_app(manifest, programs)
    pinned = PinnedMaps(pin_dir)
    for name in sorted(app.maps):
        pinned.attach(manifest.name + "." + name, app.maps[name])
    return McuNode(runtime, platform, pinned)
