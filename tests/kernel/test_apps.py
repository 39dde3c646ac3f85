"""The bundled apps, end to end on the real runtime: sensor_node's statistics match its sensor,
rx_filter blocks exactly what its maps say, app_monitor's counters equal the generated usage,
and the committed objects behave exactly like freshly built ones."""

import json
import struct

import pytest

from conftest import REPO
from iotbpf.api import Node, load_app_programs
from iotbpf.kernel.clock import NS_PER_DAY, NS_PER_MIN, NS_PER_S
from iotbpf.platforms.sim.radio import TrafficSource
from iotbpf.platforms.sim.sensors import make_sensor

APPS = ("sensor_node", "rx_filter", "app_monitor")
STATS = struct.Struct("<QqQqqqQQQQQQ")  # struct stats in sensor_node.c
STATS_FIELDS = ("count", "sum", "sum_sq", "min", "max", "last", "alarms", "batches_sent", "batches_failed",
                "tx_acked", "tx_lost", "read_errors")


def sensor_stats(node):
    (value,) = [v for _k, v in node.map_items(".bss.stats", "sensor_node")]
    return dict(zip(STATS_FIELDS, STATS.unpack(value[:STATS.size])))


def test_sensor_node_statistics_match_an_independent_replay_of_its_sensor():
    node = Node("sensor_node", seed=3)
    result = node.simulate("1d")
    stats = sensor_stats(node)
    manifest = node.manifests[0]
    sensor = make_sensor(3, manifest.sim["sensors"][0])
    readings = [sensor.read(k * NS_PER_MIN) for k in range(1, 1440)]
    assert result.hook("timer")["runs"] == 1439 == stats["count"]
    assert stats["sum"] == sum(readings)
    assert stats["sum_sq"] == sum(v * v for v in readings)
    assert (stats["min"], stats["max"], stats["last"]) == (min(readings), max(readings), readings[-1])
    crossings = sum(1 for a, b in zip([0] + readings, readings) if b > 30000 and a <= 30000)
    assert stats["alarms"] >= (1 if crossings else 0)
    # every 15 readings become one batch packet handed to the radio scheduler
    assert stats["batches_sent"] == 1439 // 15
    tx = result.summary["radio"]["tx"]
    assert tx["queued"] == stats["batches_sent"] + stats["alarms"]
    assert stats["tx_acked"] == tx["sent"] and stats["tx_lost"] == tx["lost"]
    assert result.faults == 0


def test_sensor_node_samples_five_times_slower_when_the_battery_is_low(tmp_path):
    board = json.loads((REPO / "boards" / "nrf52840_dk.json").read_text())
    board["name"] = "tiny_battery"
    board["battery"]["capacity_mah"] = 0.09  # low (< 20 %) after about 22 h of sensor_node
    path = tmp_path / "tiny_battery.json"
    path.write_text(json.dumps(board))
    node = Node("sensor_node", board=str(path), seed=1)
    result = node.simulate("1d")
    logs = node.runtime.logs
    assert logs and logs[0][2] == "low battery"
    low_at = logs[0][0]
    runs = result.hook("timer")["runs"]
    # the battery event at low_at was queued before the timer expiry of the same instant, so it
    # runs first and the re-arm replaces that expiry: minute samples strictly before low_at
    before = (low_at - 1) // NS_PER_MIN
    assert before < 1439
    assert runs == before + (NS_PER_DAY - 1 - low_at) // (5 * NS_PER_MIN)


def test_rx_filter_drops_exactly_the_blocklisted_and_rate_limited_packets():
    node = Node("rx_filter", seed=11)
    node.map_update("blocklist", struct.pack("<I", 99), struct.pack("<I", 1))
    result = node.simulate("6h")
    verdicts = dict((struct.unpack("<I", k)[0], struct.unpack("<Q", v)[0])
                    for k, v in node.map_items("verdicts"))

    # replay the traffic independently and apply the filter's rules in Python
    specs = node.manifests[0].sim["radio"]["traffic"]
    arrivals = []
    for i, spec in enumerate(specs):
        source = TrafficSource(11, i, spec)
        t = 0
        while True:
            t = source.next_after(t)
            if t is None or t >= 6 * 3600 * NS_PER_S:
                break
            arrivals.append((t, i, source.src))
    arrivals.sort()
    passed = blocked = limited = 0
    windows = {}
    for t, _i, src in arrivals:
        if src == 99:
            blocked += 1
            continue
        start, count = windows.get(src, (t, 0))
        if t - start >= 60 * NS_PER_S:
            start, count = t, 0
        count += 1
        windows[src] = (start, count)
        if count > 10:
            limited += 1
        else:
            passed += 1
    assert verdicts == {0: passed, 1: blocked, 2: limited}
    assert blocked > 0 and limited > 0
    rx = result.summary["radio"]["rx"]
    assert (rx["passed"], rx["dropped"]) == (passed, blocked + limited)


def test_rx_filter_blocklist_changes_take_effect_immediately():
    node = Node("rx_filter", seed=1, sim={})
    node.post("radio_rx", {"src": 7, "len": 10}, NS_PER_S)
    node.simulate("2s")
    node2 = Node("rx_filter", seed=1, sim={})
    node2.map_update("blocklist", struct.pack("<I", 7), struct.pack("<I", 1))
    node2.post("radio_rx", {"src": 7, "len": 10}, NS_PER_S)
    r2 = node2.simulate("2s")
    assert node.runtime.rx["passed"] == 1
    assert r2.summary["radio"]["rx"] == {"received": 1, "passed": 0, "dropped": 1, "missed": 0}


def test_app_monitor_counters_equal_the_generated_usage_exactly():
    node = Node("app_monitor", seed=4)
    node.simulate("2d")
    stats = node.app_stats()
    truth = node.platform.usage.truth
    assert set(stats) == set(uid for uid, t in truth.items() if any(t.values()))
    for uid, expected in truth.items():
        if uid in stats:
            assert stats[uid] == expected, uid
    assert sum(s["sessions"] for s in stats.values()) > 10


def _same_programs(a, b):
    assert sorted(a) == sorted(b)
    for section in a:
        assert [(i.opcode, i.dst, i.src, i.off, i.imm) for i in a[section].insns] == \
            [(i.opcode, i.dst, i.src, i.off, i.imm) for i in b[section].insns], section
        assert [(m.name, m.type, m.key_size, m.value_size, m.max_entries) for m in a[section].maps] == \
            [(m.name, m.type, m.key_size, m.value_size, m.max_entries) for m in b[section].maps], section


@pytest.mark.parametrize("app", APPS)
def test_committed_objects_behave_like_freshly_built_ones(app, clang, tmp_path):
    fresh_obj = clang.compile(REPO / "apps" / app / (app + ".c"), out=tmp_path / (app + ".o"))
    manifest = json.loads((REPO / "apps" / app / "app.json").read_text())
    manifest["object"] = str(fresh_obj)
    (tmp_path / "app.json").write_text(json.dumps(manifest))
    _m, committed = load_app_programs(REPO / "apps" / app / "app.json")
    _m, fresh = load_app_programs(tmp_path / "app.json")
    _same_programs(committed, fresh)
    a = Node(REPO / "apps" / app, seed=2).simulate("12h")
    b = Node(tmp_path / "app.json", seed=2).simulate("12h")
    assert a.to_dict() == b.to_dict()


def test_pinned_maps_survive_a_restart(tmp_path):
    first = Node("sensor_node", seed=1, pin_dir=tmp_path)
    first.simulate("1d")
    assert first.runtime.boot_reason == 0 and sensor_stats(first)["count"] == 1439
    assert (tmp_path / "sensor_node" / ".bss.stats.pin").exists()
    again = Node("sensor_node", seed=2, pin_dir=tmp_path)
    again.simulate("1d")
    stats = sensor_stats(again)
    assert again.runtime.boot_reason == 1  # IOT_BOOT_RESTART
    assert stats["count"] == 2 * 1439
    assert stats["min"] <= sensor_stats(first)["min"]  # kept across the restart, not reset at boot


@pytest.mark.parametrize("app", APPS)
def test_committed_bundles_hold_the_committed_objects(app):
    path = REPO / "apps" / app / "app.json"
    _m, from_object = load_app_programs(path, prefer="object")
    _m, from_bundle = load_app_programs(path, prefer="bundle")
    _same_programs(from_object, from_bundle)
    assert Node(path, seed=5, prefer="bundle").simulate("6h").to_dict() == \
        Node(path, seed=5, prefer="object").simulate("6h").to_dict()


def test_app_monitor_counts_a_replayed_usage_trace_exactly(tmp_path):
    from iotbpf.platforms.sim.trace import format_events
    from iotbpf.platforms.sim.usage import AndroidUsage

    usage = AndroidUsage(21)
    events = [(t, "app_usage", fields) for t, fields in usage.events(NS_PER_DAY)]
    trace = tmp_path / "usage.jsonl"
    trace.write_text(format_events(events))
    node = Node("app_monitor", events=trace, board="nrf52840_dk")
    result = node.simulate("1d")
    assert result.hook("app_usage")["runs"] == len(events)
    stats = node.app_stats()
    for uid, expected in usage.truth.items():
        if any(expected.values()):
            assert stats[uid] == expected, uid


def test_gpio_and_sensor_devices_raise_their_hooks(clang, tmp_path):
    source = r'''
#include "iotbpf.h"
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); }
    seen SEC(".maps");
static __always_inline void add(__u32 k, __u64 v) { __u64 *p = bpf_map_lookup_elem(&seen, &k); if (p) *p += v; }
SEC("gpio") int on_gpio(struct iot_gpio_ctx *c) { add(0, 1); add(1, c->level); return 0; }
SEC("sensor") int on_sensor(struct iot_sensor_ctx *c) { add(2, 1); add(3, c->value); return 0; }
char LICENSE[] SEC("license") = "GPL";
'''
    obj = clang.compile(source, out=tmp_path / "dev.o")
    sim = {"gpio": [{"pin": 4, "rate_per_hour": 60}],
           "sensors": [{"id": 1, "model": "random_walk", "mean": 1000, "step_size": 0, "diurnal": 0,
                        "period": "10m"}]}
    (tmp_path / "app.json").write_text(json.dumps({"version": 1, "name": "dev", "object": str(obj),
                                                   "programs": {"gpio": "gpio", "sensor": "sensor"},
                                                   "sim": sim}))
    node = Node(tmp_path / "app.json", seed=9)
    result = node.simulate("1d")
    seen = [struct.unpack("<Q", v)[0] for _k, v in node.map_items("seen")]
    edges = result.hook("gpio")["runs"]
    assert seen[0] == edges == node.platform.generated["gpio"]
    assert 2 * 1300 < edges < 2 * 1600  # 60 pulses per hour, two edges each
    assert seen[1] == (edges + 1) // 2  # rising edges have level 1
    assert seen[2] == 143 and seen[3] == 143 * 1000  # a sample every 10 minutes


FAULTY = r"""
#include "iotbpf.h"
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8); __type(key, __u32); __type(value, __u64); }
    counts SEC(".maps");
SEC("timer")
int count(struct iot_timer_ctx *ctx)
{
	__u32 key = ctx->timer_id;
	__u64 *n = bpf_map_lookup_elem(&counts, &key);
	*n += 1;  /* the bug: no NULL check, and the key was never inserted */
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_a_buggy_c_app_is_rejected_by_the_verifier_and_isolated_when_loaded_unverified(clang, tmp_path):
    from iotbpf.ebpf.errors import VerifierError

    obj = clang.compile(FAULTY, out=tmp_path / "faulty.o")
    (tmp_path / "app.json").write_text(json.dumps({
        "version": 1, "name": "faulty", "object": str(obj), "programs": {"timer": "timer"},
        "timers": [{"id": 1, "period": "10m"}], "faults": {"max": 3, "window": "1h"}}))
    with pytest.raises(VerifierError, match="app faulty, section timer"):
        node = Node("sensor_node", seed=1)
        node.add_app(tmp_path / "app.json")
        node.build()
    node = Node("sensor_node", seed=1, verify=False)
    node.add_app(tmp_path / "app.json")
    result = node.simulate("1d")
    faulty = [p for p in result.summary["programs"] if p["app"] == "faulty"][0]
    assert faulty == dict(faulty, runs=3, faults=3, detached=True)
    assert result.summary["fault_records"][0]["kind"] == "oob"
    assert [e["event"] for e in result.summary["events"]] == ["detached"]
    assert result.summary["events"][0]["t_ns"] == 30 * NS_PER_MIN
    assert sensor_stats(node)["count"] == 1439  # the node and its other app kept running
    assert "detached at 1800.000 s" in result.text()


def test_a_node_runs_in_real_time_with_injected_events():
    node = Node("rx_filter", sim={})
    node.inject("radio_rx", {"src": 3, "len": 8})
    summary = node.run_realtime("50ms")
    assert summary["radio"]["rx"] == {"received": 1, "passed": 1, "dropped": 0, "missed": 0}
    assert 50 * 10**6 <= summary["now_ns"] < 10 * NS_PER_S


def test_sensor_node_keeps_batches_in_its_outbox_while_the_radio_queue_is_full():
    from iotbpf.kernel.wellknown import policy_index

    node = Node("sensor_node", seed=3)
    limit = struct.pack("<I", policy_index("tx_queue_limit_bytes"))
    node.map_update("iot_policy", limit, struct.pack("<Q", 64))  # smaller than one batch (120 bytes)
    result = node.simulate("1d")
    stats = sensor_stats(node)
    assert stats["batches_sent"] == 0 and stats["batches_failed"] == 1439 // 15
    assert len(node.map_items("outbox")) == 8  # full: the oldest batches were dropped
    assert result.summary["radio"]["tx"]["rejected"] == 1439 // 15
    assert result.summary["radio"]["tx"]["queued"] == stats["alarms"]  # 8-byte alarms still fit
