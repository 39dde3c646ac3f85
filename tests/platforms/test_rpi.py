"""Raspberry Pi node runtime: mocked GPIO (gpiozero MockFactory) and a replayed INA219 register trace
read through the real pi-ina219 driver."""

import math
import threading
import time
from pathlib import Path

import pytest

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.platforms.rpi import (
    EDGE_FALLING,
    EDGE_RISING,
    GpioInputs,
    Ina219Meter,
    Ina219Trace,
    PowerIntegrator,
    RealtimeNode,
    RealtimePlatform,
    ReplayI2CBus,
    ReplayMismatch,
    model_vs_measurement,
    parse_gpio_specs,
    replay_energy,
)

TRACE = Path(__file__).parent / "data" / "ina219_rpi_zero2w.trace"
SHUNT = 0.1
MAX_AMPS = 0.8


def _signed(word):
    return word - 0x10000 if word & 0x8000 else word


@pytest.fixture(scope="module")
def trace():
    return Ina219Trace.load(str(TRACE))


# ------------------------------------------------------------------ the recorded trace

def test_trace_registers_follow_the_datasheet(trace):
    assert trace.address == 0x40 and trace.shunt_ohms == SHUNT and len(trace.samples) == 600
    writes = dict(trace.writes)
    calibration = writes[0x05]
    assert calibration == math.trunc(0.04096 / (MAX_AMPS / 32800 * SHUNT))  # datasheet eq. 1
    config = writes[0x00]
    assert config >> 13 & 1 == 1  # BRNG: 32 V
    assert config >> 11 & 3 == 2  # PGA /4: +-160 mV
    assert config & 7 == 7  # shunt and bus, continuous
    device_cal = calibration & 0xFFFE  # FS0 is void
    for sample in trace.samples:
        shunt = _signed(sample[0x01])
        bus = sample[0x02]
        assert abs(shunt) <= 16000  # +-160 mV at 10 uV per LSB
        assert bus & 0x2 and not bus & 0x1  # CNVR set, no overflow
        assert 4.0 < (bus >> 3) * 0.004 < 5.2  # a Pi's 5 V rail
        current = _signed(sample[0x04])
        assert current == math.trunc(shunt * device_cal / 4096)  # datasheet eq. 3
        assert sample[0x03] == math.trunc(current * (bus >> 3) / 5000)  # datasheet eq. 4


def test_replayed_trace_through_the_real_driver_yields_the_expected_energy(trace):
    result = replay_energy(trace, SHUNT, MAX_AMPS)
    # expected, straight from the raw registers: V = bus x 4 mV, I = shunt x 10 uV / R
    expected = 0.0
    times = trace.times_ms
    for i, sample in enumerate(trace.samples):
        volts = (sample[0x02] >> 3) * 0.004
        amps = _signed(sample[0x01]) * 10e-6 / SHUNT
        nxt = times[i + 1] if i + 1 < len(times) else times[i] + 50
        expected += volts * amps * (nxt - times[i]) / 1000.0
    assert result["samples"] == 600 and result["seconds"] == pytest.approx(30.0)
    assert result["energy_j"] == pytest.approx(expected, rel=0.002)
    assert result["energy_j"] == pytest.approx(trace.truth_energy_j, rel=0.005)
    assert result["source"] == "ina219:0x40"


def test_driver_reads_voltage_current_and_power_at_a_moment(trace):
    bus = ReplayI2CBus(trace)
    meter = Ina219Meter(SHUNT, MAX_AMPS, bus=bus)
    assert bus.written == [(0x05, dict(trace.writes)[0x05]), (0x00, dict(trace.writes)[0x00])]
    bus.seek(20.5)  # inside the all-cores-busy stretch, between Wi-Fi bursts
    busy = meter.sample()
    bus.seek(12.0)  # idle
    idle = meter.sample()
    assert busy["current_a"] == pytest.approx(0.118 + 0.330, abs=0.004)
    assert idle["current_a"] == pytest.approx(0.118, abs=0.004)
    assert busy["voltage_v"] == pytest.approx(5.10 - busy["current_a"] * 0.22, abs=0.01)
    assert busy["power_w"] == pytest.approx(busy["voltage_v"] * busy["current_a"], rel=0.01)


def test_replay_refuses_a_driver_configured_unlike_the_recording(trace):
    with pytest.raises(ReplayMismatch, match="calibration"):
        Ina219Meter(SHUNT, 0.4, bus=ReplayI2CBus(trace))


def test_no_device_at_the_address_is_a_clear_error(trace):
    with pytest.raises(IotbpfError, match="0x41"):
        Ina219Meter(SHUNT, MAX_AMPS, address=0x41, bus=ReplayI2CBus(trace))


def test_bad_trace_files_are_clear_errors():
    with pytest.raises(IotbpfError, match="version"):
        Ina219Trace("address 0x40\n0 0x1 0x2 0x3 0x4\n")
    with pytest.raises(IotbpfError, match="line 3"):
        Ina219Trace("version 1\naddress 0x40\n0 0x1 zz\n")
    with pytest.raises(IotbpfError, match="increase"):
        Ina219Trace("version 1\naddress 0x40\n5 1 2 3 4\n5 1 2 3 4\n")


def test_power_integrator_on_a_replay_clock(trace):
    now = [0.0]
    bus = ReplayI2CBus(trace, clock=lambda: now[0])
    meter = Ina219Meter(SHUNT, MAX_AMPS, bus=bus)
    integrator = PowerIntegrator(meter, clock=lambda: now[0])
    integrator.started_at = 0.0
    for step in range(0, 600):
        now[0] = step * 0.05
        integrator.sample_once()
    now[0] = 30.0
    integrator.sample_once()
    assert integrator.energy_j == pytest.approx(replay_energy(trace, SHUNT, MAX_AMPS)["energy_j"], rel=1e-6)


def test_model_vs_measurement_reports_the_error():
    assert model_vs_measurement(9.0, 10.0) == {"estimate_j": 9.0, "measured_j": 10.0, "error_pct": -10.0}
    assert model_vs_measurement(9.0, None)["error_pct"] is None


# ------------------------------------------------------------------ GPIO

def test_gpio_specs_parse_and_bad_ones_are_clear():
    assert parse_gpio_specs(["BUTTON=17", "DOOR=27"]) == {"BUTTON": 17, "DOOR": 27}
    for bad in (["BUTTON"], ["BUTTON=x"], ["=4"], ["A=99"], ["A=4", "B=4"]):
        with pytest.raises(IotbpfError, match="--gpio"):
            parse_gpio_specs(bad)


@pytest.fixture
def mock_factory():
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    yield factory
    factory.close()


def test_mock_button_edges_become_gpio_events(mock_factory):
    events = []
    gpio = GpioInputs({"BUTTON": 17}, lambda hook, fields: events.append((hook, fields)),
                      pin_factory=mock_factory)
    pin = mock_factory.pin(17)
    pin.drive_low()  # pressed (pull-up)
    assert gpio.read(17) == 0
    pin.drive_high()
    assert gpio.read(17) == 1 and gpio.read(4) is None
    gpio.close()
    assert events == [("gpio", {"pin": 17, "level": 0, "edge": EDGE_FALLING, "count": 1}),
                      ("gpio", {"pin": 17, "level": 1, "edge": EDGE_RISING, "count": 2})]


GPIO_APP = """{"version": 1, "name": "button", "object": "button.o", "programs": {"gpio": "gpio"},
"timers": [{"id": 0, "period": "100ms"}]}"""


def _button_runtime(mock_factory):
    from iotbpf.ebpf.program import Program
    from iotbpf.kernel.clock import MonotonicClock
    from iotbpf.kernel.manifest import loads
    from iotbpf.kernel.runtime import Runtime

    runtime = Runtime(clock=MonotonicClock())
    handler = Program.from_asm("ldxw r0, [r1+8]\nexit\n", name="gpio")  # returns ctx->pin
    runtime.load_app(loads(GPIO_APP), {"gpio": handler})
    gpio = GpioInputs({"BUTTON": 17}, runtime.inject, pin_factory=mock_factory)
    runtime.platform = RealtimePlatform(gpio=gpio)
    return runtime, gpio


def test_node_runs_button_handlers_in_real_time(mock_factory):
    runtime, gpio = _button_runtime(mock_factory)
    reports = []
    node = RealtimeNode(runtime, gpio=gpio, reporter=reports.append, report_every_s=0.2)
    delivered = []

    def press_and_watch():
        pin = mock_factory.pin(17)
        time.sleep(0.1)
        for _ in range(3):
            before = runtime.hook_stats["gpio"].runs
            pin.drive_low()
            pin.drive_high()
            deadline = time.monotonic() + 5
            while runtime.hook_stats["gpio"].runs < before + 2 and time.monotonic() < deadline:
                time.sleep(0.001)
            delivered.append((runtime.hook_stats["gpio"].runs - before, runner.is_alive()))

    runner = threading.Thread(target=node.run, args=(2.0,))
    started = time.monotonic()
    runner.start()
    press_and_watch()
    runner.join()
    elapsed = time.monotonic() - started
    # each press and release ran the handler while the node was still running, in real time
    assert delivered == [(2, True)] * 3
    assert elapsed >= 2.0
    stats = runtime.hook_stats["gpio"]
    assert stats.events == 6 and stats.runs == 6 and stats.faults == 0
    assert runtime.platform.gpio.devices == {}  # closed at the end
    assert reports[-1]["hooks"]["gpio"]["runs"] == 6 and len(reports) >= 2


def test_node_with_a_replayed_meter_reports_model_and_measurement(mock_factory, trace):
    runtime, gpio = _button_runtime(mock_factory)
    meter = Ina219Meter(SHUNT, MAX_AMPS, bus=ReplayI2CBus(trace, clock=time.monotonic, loop=True))
    node = RealtimeNode(runtime, gpio=gpio, meter=meter, meter_period_s=0.02)
    started = time.monotonic()
    final = node.run(0.3)
    wall = time.monotonic() - started
    assert final["measured_source"] == "ina219:0x40"
    assert 0.5 * 0.3 < final["measured_j"] < 2.5 * wall  # a Pi drawing 0.6 .. 2.3 W
    assert final["error_pct"] is None  # no energy model attached to this runtime
    assert final["hooks"]["timer"]["runs"] == 0 and final["hooks"]["timer"]["events"] >= 2


def test_a_virtual_clock_is_refused():
    from iotbpf.kernel.runtime import Runtime

    with pytest.raises(IotbpfError, match="real clock"):
        RealtimeNode(Runtime())
