"""api/node.py: Node, its typed maps (app maps, C globals, queues, the well-known maps), and clear
errors for bad input."""

import struct

import pytest

import iotbpf
from iotbpf import IotbpfError


def test_node_maps_read_and_write_typed_values():
    node = iotbpf.Node("rx_filter", seed=3)
    maps = node.maps
    assert {"blocklist", "rates", "limits", "verdicts", "iot_policy"} <= set(maps)
    maps["blocklist"][99] = 1
    assert node.map("blocklist").lookup(struct.pack("<I", 99)) == struct.pack("<I", 1)
    result = node.simulate("6h")
    verdicts = dict(node.maps["verdicts"])
    assert set(verdicts) == {0, 1, 2} and verdicts[1] > 0          # source 99 was blocked
    raw = dict((struct.unpack("<I", k)[0], struct.unpack("<Q", v)[0]) for k, v in node.map_items("verdicts"))
    assert raw == verdicts
    rates = node.maps["rates"]
    some = next(iter(rates))
    assert set(rates[some]) == {"window_start_ns", "packets", "dropped"}
    assert result.summary["radio"]["rx"]["dropped"] >= verdicts[1]


def test_node_maps_global_variables_and_queues():
    node = iotbpf.Node("sensor_node", seed=1)
    result = node.simulate(days=1)
    stats = node.maps["stats"]
    assert stats["count"] == result.hook("timer")["runs"] == 1439
    assert stats.value["count"] == 1439 and set(stats) >= {"count", "sum", "min", "max"}
    stats["alarms"] = 5
    assert node.maps["stats"]["alarms"] == 5
    assert node.maps[".bss.stats"][0]["stats"]["alarms"] == 5
    filling = node.maps["filling"]                     # struct batch {n; pad; struct reading r[]}
    readings = filling["r"][:filling["n"]]
    assert readings and set(readings[0]) == {"t_s", "value"}
    outbox = node.maps["outbox"]                       # a queue of struct batch
    assert outbox.type == "queue"
    outbox.push({"n": 1, "r": [{"t_s": 5, "value": -7}]})
    outbox.push({"n": 2})
    assert len(outbox) == 2 and outbox.values()[0]["r"][0] == {"t_s": 5, "value": -7}
    assert outbox.peek()["n"] == 1 and outbox.pop()["n"] == 1 and outbox.pop()["n"] == 2
    with pytest.raises(IndexError):
        outbox.pop()
    with pytest.raises(IotbpfError, match="no keys"):
        outbox[0]


def test_well_known_maps_are_decoded_from_the_kernel_tables():
    node = iotbpf.Node("sensor_node", seed=1)
    result = node.simulate("1d", samples=0)
    txq = node.maps["iot_txq"][0]
    assert txq["sent_packets"] == result.summary["radio"]["tx"]["sent"]
    demand = dict(node.maps["iot_app_demand"])
    assert len(demand) == 1 and set(next(iter(demand.values()))) == {"tx_bytes", "rx_bytes", "tx_packets",
                                                                       "rx_packets"}
    from iotbpf.kernel.wellknown import policy_index

    policy = node.maps["iot_policy"]
    assert policy[policy_index("low_battery_permille")] == 200
    policy[policy_index("low_battery_permille")] = 150
    assert node.map("iot_policy").lookup(struct.pack("<I", 3)) == struct.pack("<Q", 150)


def test_simulate_bad_input():
    with pytest.raises(IotbpfError, match="positive"):
        iotbpf.Node("sensor_node").simulate(days=-1)
    with pytest.raises(IotbpfError, match="not both"):
        iotbpf.Node("sensor_node").simulate("1d", days=1)
    with pytest.raises(IotbpfError):
        iotbpf.Node("sensor_node").simulate("ten days")
    with pytest.raises(IotbpfError, match="not found"):
        iotbpf.Node("./no/such/app")
    node = iotbpf.Node("sensor_node")
    node.simulate("1h")
    with pytest.raises(IotbpfError, match="already run"):
        node.simulate("1h")


def test_build_is_public_returns_the_runtime_once_and_simulate_uses_it():
    node = iotbpf.Node("sensor_node", seed=1)
    runtime = node.build()
    assert node.build() is runtime and node.runtime is runtime and not runtime.booted
    assert [a.name for a in runtime.apps] == ["sensor_node"]
    result = node.simulate("1d", samples=0)
    assert runtime.booted and result.hook("timer")["runs"] == 1439
    with pytest.raises(IotbpfError, match="no app loaded"):
        iotbpf.Node().build()


def test_duration_ns_takes_units_and_nanoseconds():
    from iotbpf.api import duration_ns

    assert duration_ns("1.5h") == 5400 * 10**9 and duration_ns(42) == 42 and duration_ns("500ms") == 5 * 10**8
    for bad in ("ten days", "5 parsecs", -1, None):
        with pytest.raises(IotbpfError):
            duration_ns(bad)


def test_app_stats_decodes_app_monitor_and_names_the_maps_elsewhere():
    node = iotbpf.Node("app_monitor", seed=3)
    node.simulate("6h", samples=0)
    stats = node.app_stats()
    assert stats and all(set(row) >= {"foreground_ns", "cpu_ns", "wakeups", "energy_uj"} for row in stats.values())
    assert node.app_stats(None) == stats
    assert len(stats) == len(node.map_items("app_stats"))
    assert sum(row["wakeups"] for row in stats.values()) > 0 and sum(row["cpu_ns"] for row in stats.values()) > 0
    with pytest.raises(IotbpfError, match="no map 'app_stats'.*stats"):
        iotbpf.Node("sensor_node").app_stats("sensor_node")
