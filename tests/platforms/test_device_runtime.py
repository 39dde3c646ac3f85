"""The device image of each bundled app runs on the device runtime under real MicroPython and
gives the same map contents and reports as the host simulation of the same events.

The host side is the kernel runtime (iotbpf/kernel) with a virtual clock and a platform that
reports what a board's serial sink would print; the device side is iotbpf/device replaying the
same events in virtual time (hw.VirtualClock) from the linked, signed image.
"""

import importlib.util
import json
import sys

import pytest

from conftest import REPO
from iotbpf.kernel.clock import VirtualClock
from iotbpf.kernel.platform import Platform
from iotbpf.kernel.runtime import Runtime
from iotbpf.platforms import devimage

STAND_IN_MACHINE = REPO / "tests" / "platforms" / "mcu" / "machine.py"
KEY = bytes(range(32))
S = 10 ** 9


class ReplayPlatform(Platform):
    """The host's view of a board: ADC values read in turn, reports as the serial sink prints them."""

    def __init__(self, name, adc, bitrate=devimage.DEFAULT_BITRATE):
        self.name = name
        self.adc = adc
        self.pos = {}
        self.bitrate = bitrate
        self.reports = []

    def start(self, runtime, end_ns):
        pass

    def sensor_read(self, sensor_id, now_ns):
        values = self.adc.get(sensor_id)
        if not values:
            return None
        i = self.pos.get(sensor_id, 0)
        self.pos[sensor_id] = i + 1
        return values[i % len(values)]

    def airtime_ns(self, nbytes):
        return nbytes * 8 * 10**9 // self.bitrate

    def delivered(self):
        return True

    def transmit(self, app, payload, now_ns):
        self.reports.append(["iotbpf/%s/radio" % self.name, {"t_ns": now_ns, "app": app, "payload": payload.hex()}])
        return True

    def log_line(self, now_ns, app, msg, value):
        self.reports.append(["iotbpf/%s/log" % self.name, {"t_ns": now_ns, "app": app, "msg": msg, "value": value}])


def host_run(app, adc, events, end_ns):
    """Maps (export_state) and reports of the host simulation of ``events`` until ``end_ns``."""
    manifest, programs = devimage.load_app(app)
    platform = ReplayPlatform(manifest.name, adc)
    runtime = Runtime(platform=platform, clock=VirtualClock(), engine="interp")
    loaded = runtime.load_app(manifest, programs)
    runtime.boot()
    for at, hook, fields in events:
        runtime.post(hook, {k: bytes(v) if isinstance(v, list) else v for k, v in fields.items()}, at)
    runtime.run_until(end_ns)
    hooks = runtime.summary()["hooks"].values()
    platform.reports.append(["iotbpf/%s/status" % manifest.name, {
        "t_ns": end_ns, "runs": sum(h["runs"] for h in hooks), "faults": sum(h["faults"] for h in hooks),
        "battery_permille": runtime.battery_permille()}])
    return {name: m.export_state() for name, m in loaded.maps.items()}, platform.reports


DEVICE_REPLAY = """
import sys, json
sys.path.insert(0, '/root/lib')
import machine
machine.set_adc(3, %(adc)s)
from iotbpf.device import image, node, hw

class Sink:
    def __init__(self):
        self.lines = []

    def publish(self, topic, payload):
        self.lines.append([topic, payload])
        return True

sink = Sink()
n = node.Node(image.load('/root/app/app.dimg', bytes(range(32))), clock=hw.VirtualClock(), sink=sink, pin_dir=None)
n.boot()
for at, hook, fields in json.loads(%(events)r):
    n.post(at, hook, fields)
n.run_until(%(end)d)
n.report(%(end)d)
print("RESULT " + json.dumps({"maps": dict((k, m.export_state()) for k, m in n.maps.items()), "reports": sink.lines}))
"""


def _sensor_node_events():
    readings = [21000, 22500, 29000, 31000, 31500, 30800, 29000, 25000, 24000, 33000, 20000, 26000]
    return readings, [(int(90.5 * S), "gpio", {"pin": 5, "level": 0, "edge": 2})], 4 * 3600 * S


def _rx_filter_events():
    events = []
    for i in range(40):
        src = 3 if i % 2 else 1 + i % 5  # source 3 floods (rate limit), others trickle
        payload = [(i * 7 + j) & 0xFF for j in range(12)]
        events.append((i * 2 * S + 1, "radio_rx", {"src": src, "dst": 1, "len": 12, "rssi": -70, "port": 7,
                                                    "payload": payload}))
    events.append((200 * S, "radio_rx", {"src": 3, "dst": 1, "len": 4, "payload": [1, 2, 3, 4]}))
    return [], events, 300 * S


def _app_monitor_events():
    events = []
    t = S
    for i in range(30):
        uid = 10000 + i % 4
        kind = 1 + i % 7
        events.append((t, "app_usage", {"uid": uid, "kind": kind, "duration_ns": (i + 1) * 10**8,
                                        "cpu_time_ns": i * 3 * 10**6, "rx_bytes": 100 * i, "tx_bytes": 40 * i,
                                        "energy_uj": 1000 + i, "wakeups": i % 3}))
        t += 7 * S
    return [], events, 600 * S


SCENARIOS = {"sensor_node": _sensor_node_events, "rx_filter": _rx_filter_events, "app_monitor": _app_monitor_events}


@pytest.fixture(scope="module")
def runtime_mpy(tmp_path_factory):
    """The device runtime as deploy builds it (mpy-cross -O3)."""
    from iotbpf.platforms.device import build_device

    out = tmp_path_factory.mktemp("lib")
    build_device(out)
    return out


@pytest.mark.parametrize("app", sorted(SCENARIOS))
def test_device_image_gives_the_host_simulation_s_maps_and_reports(micropython, runtime_mpy, app):
    adc, events, end = SCENARIOS[app]()
    config = {"sensors": [{"id": 0, "adc": 3}]} if adc else None
    image = devimage.link(app, device_config=config, key=KEY)
    host_maps, host_reports = host_run(app, {0: adc}, events, end)
    code = DEVICE_REPLAY % {"adc": adc, "events": json.dumps(events), "end": end}
    result = micropython.run(code, files={"lib": runtime_mpy, "lib/machine.py": STAND_IN_MACHINE,
                                          "app/app.dimg": image}, core=False)
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    device = json.loads(line[len("RESULT "):])
    assert device["maps"] == host_maps
    assert device["reports"] == host_reports
    assert any(state != {"array": ""} and state != {"items": []} and state != {"entries": []}
               for state in host_maps.values())  # the events changed something


def test_sensor_node_scenario_sends_batches_and_alarms():
    """The sensor_node scenario above exercises what matters: alarms, batches, statistics."""
    adc, events, end = _sensor_node_events()
    maps, reports = host_run("sensor_node", {0: adc}, events, end)
    radio = [r for topic, r in reports if topic.endswith("/radio")]
    assert any(len(r["payload"]) == 16 for r in radio)  # an 8-byte alarm
    assert any(len(r["payload"]) == 15 * 16 for r in radio)  # a batch of 15 readings
    assert reports[-1][1]["runs"] == 1 + 239 + len(radio) + 3  # boot, 239 timers (60 s .. 4 h), tx_done, battery


def test_device_energy_ledger_tracks_the_host_s_energy_model(monkeypatch):
    """With a board, sensor_node's energy and state of charge on the device (its ledger and
    coulomb-counting estimate) stay within 1 % and 1 permille of the host's scheduler and battery
    model after ten simulated days (radio packets are timed differently: the host batches them)."""
    from iotbpf.device import hw, image, node
    from iotbpf.energy.board import load_board
    from iotbpf.kernel.scheduler import make_scheduler

    spec = importlib.util.spec_from_file_location("machine", STAND_IN_MACHINE)
    machine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(machine)
    monkeypatch.setitem(sys.modules, "machine", machine)  # removed again at teardown

    end = 10 * 86400 * S
    readings = [21000, 22000, 23000]
    manifest, programs = devimage.load_app("sensor_node")
    board = load_board("nrf52840_dk")
    host = Runtime(platform=ReplayPlatform("sensor_node", {0: readings}), clock=VirtualClock(),
                   scheduler=make_scheduler("batching", board), board=board)
    host.load_app(manifest, programs)
    host.run_until(end)
    machine.set_adc(3, readings)
    payload = image.parse(devimage.link("sensor_node", board="nrf52840_dk",
                                        device_config={"sensors": [{"id": 0, "adc": 3}]}))
    device = node.Node(payload, clock=hw.VirtualClock(), sink=hw.SerialSink(), pin_dir=None)
    device.sink.publish = lambda topic, data: True
    device.run_until(end)
    assert device.stats["timer"][1] == host.summary()["hooks"]["timer"]["runs"] > 14000
    assert abs(device.energy_used_uj() - host.energy_used_uj()) <= 0.01 * host.energy_used_uj()
    assert abs(device.battery_permille() - host.battery_permille()) <= 1
    assert device.battery_permille() < 1000
