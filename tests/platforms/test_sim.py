"""Simulated devices: reproducible from the seed, statistically what they claim, traces validated."""

import pytest

from iotbpf.kernel.clock import NS_PER_DAY, NS_PER_H, NS_PER_S
from iotbpf.platforms.sim.gpio import PoissonPin
from iotbpf.platforms.sim.platform import SimPlatform
from iotbpf.platforms.sim.radio import Link, TrafficSource
from iotbpf.platforms.sim.sensors import RandomWalkSensor, TraceSensor, _sin_milli, parse_csv
from iotbpf.platforms.sim.trace import format_events, parse_events
from iotbpf.platforms.sim.usage import DISK, FOREGROUND, SCREEN_OFF, SCREEN_ON, AndroidUsage


def test_random_walk_sensor_is_reproducible_and_stays_in_range():
    a = RandomWalkSensor(7, mean=20000, minimum=0, maximum=40000)
    b = RandomWalkSensor(7, mean=20000, minimum=0, maximum=40000)
    times = [i * 60 * NS_PER_S for i in range(3000)]
    ra = [a.read(t) for t in times]
    assert ra == [b.read(t) for t in times]
    assert all(0 <= v <= 40000 for v in ra)
    assert len(set(ra)) > 100
    other = RandomWalkSensor(8, mean=20000)
    assert ra != [other.read(t) for t in times]


def test_the_diurnal_table_gives_the_readings_micropython_computes():
    tabled = RandomWalkSensor(5, diurnal=4321)
    computed = RandomWalkSensor(5, diurnal=4321)
    computed._diurnal = None  # MicroPython's path: the term computed when the phase changes
    assert tabled._diurnal is not None
    times = [i * 37 * NS_PER_S for i in range(5000)]
    assert [tabled.read(t) for t in times] == [computed.read(t) for t in times]


@pytest.mark.parametrize("step_size", [0, 40, 150, 1 << 20])
def test_steps_drawn_a_chunk_at_a_time_are_the_steps_micropython_draws_one_by_one(step_size):
    # where numpy is available the walk's generator runs ahead a chunk at a time (_draw_chunk);
    # readings, generator state and offset must be those of the step-by-step loop, across chunk
    # boundaries, catch-ups after long gaps and the catch-up limit
    import random

    from iotbpf.platforms.sim import sensors

    chunked = RandomWalkSensor(11, step_size=step_size)
    stepwise = RandomWalkSensor(11, step_size=step_size)
    stepwise._draws = None  # MicroPython's path
    assert chunked._draws is not None
    gaps = random.Random(step_size)
    t = 0
    for _ in range(2500):
        t += gaps.choice([60 * NS_PER_S] * 8 + [0, 1, 59 * NS_PER_S, 7 * 60 * NS_PER_S,
                                                sensors._CHUNK * 60 * NS_PER_S - 1, 3 * NS_PER_DAY])
        assert chunked.read(t) == stepwise.read(t)
        assert (chunked.rng.state, chunked.offset, chunked.steps_done) == \
            (stepwise.rng.state, stepwise.offset, stepwise.steps_done)


def test_the_diurnal_cycle_peaks_at_a_quarter_day():
    assert _sin_milli(250) == 1000 and _sin_milli(750) == -1000 and _sin_milli(0) == 0


def test_sensor_value_does_not_depend_on_how_often_it_is_read():
    dense = RandomWalkSensor(3)
    sparse = RandomWalkSensor(3)
    for i in range(600):
        dense.read(i * 60 * NS_PER_S)
    assert dense.read(600 * 60 * NS_PER_S) == sparse.read(600 * 60 * NS_PER_S)


def test_trace_sensor_holds_the_last_value():
    s = TraceSensor(parse_csv("time_s,value\n0,10\n60,20\n# comment\n120.5,30\n"))
    assert [s.read(t * NS_PER_S) for t in (0, 59, 60, 121, 10**6)] == [10, 10, 20, 30, 30]


@pytest.mark.parametrize("text,message", [("0,1,2\n", "expected 'time_s,value'"), ("a,b\n", "numbers"),
                                          ("10,1\n5,2\n", "backwards")])
def test_bad_sensor_traces_name_the_line(text, message):
    with pytest.raises(ValueError, match=message):
        parse_csv(text)


def test_poisson_gpio_has_the_requested_rate():
    pin = PoissonPin(1, 4, rate_per_hour=10)
    rising = [t for t, level in pin.edges(0, 1000 * NS_PER_H) if level == 1]
    assert 9500 < len(rising) < 10500


def test_link_airtime_follows_the_bit_rate_and_loss_the_probability():
    link = Link(1, bitrate=250000, overhead_bytes=0, loss_ppm=100000)
    assert link.airtime_ns(125) == 4000000  # 1000 bits at 250 kbit/s
    lost = sum(1 for _ in range(20000) if not link.delivered())
    assert 1800 < lost < 2200


def test_a_flood_source_is_active_only_in_its_interval():
    src = TrafficSource(1, 0, {"src": 66, "period": "1s", "start": "2h", "stop": "3h"})
    times = []
    t = 0
    while True:
        t = src.next_after(t)
        if t is None:
            break
        times.append(t)
    assert len(times) == 3599 and times[0] == 2 * NS_PER_H + NS_PER_S


def test_usage_generator_is_reproducible_and_well_formed():
    events = list(AndroidUsage(5).events(NS_PER_DAY))
    assert events == list(AndroidUsage(5).events(NS_PER_DAY))
    assert [t for t, _f in events] == sorted(t for t, _f in events)
    screen = [f["kind"] for _t, f in events if f["kind"] in (SCREEN_ON, SCREEN_OFF)]
    assert all(a != b for a, b in zip(screen, screen[1:]))  # on/off alternate
    assert any(f["kind"] == FOREGROUND for _t, f in events)


def test_usage_truth_adds_up_to_the_events():
    usage = AndroidUsage(9)
    events = list(usage.events(2 * NS_PER_DAY))
    rx = sum(f.get("rx_bytes", 0) for _t, f in events if f["kind"] != DISK)
    assert rx == sum(v["rx_bytes"] for v in usage.truth.values())
    read = sum(f["rx_bytes"] for _t, f in events if f["kind"] == DISK)  # storage, never network
    assert read == sum(v["disk_read_bytes"] for v in usage.truth.values()) > 0
    sessions = sum(1 for _t, f in events if f["kind"] == FOREGROUND)
    assert sessions == sum(v["sessions"] for v in usage.truth.values())


def test_platform_streams_are_the_same_for_the_same_seed():
    class Recorder:
        def __init__(self):
            from iotbpf.kernel.events import EventQueue

            self.queue = EventQueue()
            self.seen = []

        def raise_event(self, hook, fields):
            self.seen.append((hook, sorted(fields.items())))

    def run(seed):
        rec = Recorder()
        plat = SimPlatform({"gpio": [{"pin": 2, "rate_per_hour": 20}], "usage": {},
                            "radio": {"traffic": [{"src": 1, "rate_per_hour": 12}]}}, seed=seed)
        plat.start(rec, NS_PER_DAY)
        while len(rec.queue):
            t, _s, fn, arg = rec.queue.pop()
            fn(t, arg)
        return rec.seen

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_unknown_sim_fields_are_rejected():
    with pytest.raises(ValueError, match="unknown field 'sensorz'"):
        SimPlatform({"sensorz": []})


def test_event_traces_round_trip_and_are_validated():
    events = [(5 * NS_PER_S, "gpio", {"pin": 2, "level": 1}),
              (NS_PER_S, "radio_rx", {"src": 7, "payload": b"\x01\x02"})]
    parsed = parse_events(format_events(events))
    assert parsed == sorted(events, key=lambda e: e[0])
    for line, message in (('{"hook": "gpio"}', "missing 't'"),
                          ('{"t": "1s", "hook": "nope"}', "'hook' must be"),
                          ('{"t": "1s", "hook": "gpio", "pins": 1}', "no field 'pins'"),
                          ('{"t": "1s", "hook": "gpio", "pin": -1}', "integer in"),
                          ('{"version": 9}', "unsupported version"), ("[", "not valid JSON"),
                          ('{"t": "1s", "hook": "app_usage", "app": 7}', "app must be a name"),
                          ('{"t": "1s", "hook": "gpio", "app": "x"}', "hook gpio has no field 'app'")):
        with pytest.raises(ValueError, match=message):
            parse_events(line)


@pytest.mark.parametrize("config,message", [
    ({"gpio": [{"pin": 1, "rate": 3}]}, "sim.gpio[0]: unknown field 'rate'"),
    ({"radio": {"traffic": [{"src": 1, "every": "1s"}]}}, "sim.radio.traffic[0]: unknown field 'every'"),
    ({"sensors": [{"id": 0, "modle": "trace"}]}, "sim.sensors[0]: unknown field 'modle'"),
    ({"sensors": [{"id": 0, "model": "sine"}]}, "unknown model 'sine'"),
    ({"usage": {"screen": "1m"}}, "sim.usage: unknown field 'screen'"),
    ({"usage": {"apps": [{"uid": 1, "weight": 1, "bogus": 2}]}}, "usage.apps: unknown field 'bogus'"),
    ({"usage": {"apps": [{"uid": 1, "weight": 1}, {"uid": 1}]}}, "usage.apps: uid 1 twice"),
    ({"usage": {"apps": [{"uid": 1, "weight": 1, "big": 2}]}}, "big in [0, 1]"),
    ({"usage": {"night": "late"}}, "usage.night must look like"),
    ({"usage": {"power_profile": 3}}, "sim.usage.power_profile must be a file name"),
])
def test_mistakes_in_device_entries_are_named(config, message):
    with pytest.raises(ValueError) as info:
        SimPlatform(config)
    assert message in str(info.value)


def test_the_sample_usage_trace_of_simulate_help_exists_and_replays():
    import re

    from conftest import REPO
    from iotbpf.api import Node
    from iotbpf.commands.simulate import EXAMPLE
    from iotbpf.platforms.sim.trace import parse_events

    path = REPO / re.search(r"--events (\S+)", EXAMPLE).group(1)
    events = parse_events(path.read_text())
    assert len(events) > 20 and all(hook == "app_usage" for _t, hook, _f in events)
    node = Node(REPO / "apps" / "app_monitor", events=path)
    node.simulate("9h")
    apps = node.scheduler.summary()["apps"]
    named = set(f["app"] for _t, _h, f in events if f.get("app"))
    assert named <= set(apps) and all(apps[name] > 0 for name in named)
    assert node.app_stats()[10067]["disk_write_bytes"] == 12000000  # the photo, as storage bytes
