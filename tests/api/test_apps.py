"""api/apps.py: apps found by name, folder or app.json; an events file read or refused with a clear
error; and Node.add_app keeping every app's simulated devices (the node's devices are all apps'
sim sections together, and a device two apps define differently is an error)."""

import json
import shutil

import pytest

from conftest import REPO
from iotbpf import Node
from iotbpf.ebpf.errors import LoadError


def rx(result):
    return result.to_dict()["summary"]["radio"]["rx"]


def test_added_app_keeps_its_radio_traffic():
    alone = rx(Node("rx_filter", policy="always_on").simulate("6h"))
    node = Node("sensor_node", policy="always_on")  # a listening radio: every arrival is received
    node.add_app("rx_filter")
    both = node.simulate("6h")
    assert rx(both)["received"] == alone["received"] > 0
    sleeping = Node("sensor_node")  # batching sleeps between bursts: the same arrivals, mostly missed
    sleeping.add_app("rx_filter")
    lost = rx(sleeping.simulate("6h"))
    assert lost["received"] + lost["missed"] == alone["received"]
    assert both.to_dict()["summary"]["radio"]["tx"]["sent"] > 0  # sensor_node still reports


def test_added_app_keeps_its_sensors():
    node = Node("rx_filter")
    node.add_app("sensor_node")
    rt = node.build()
    assert 0 in rt.platform.sensors  # sensor_node's temperature sensor


def test_conflicting_devices_are_refused(tmp_path):
    app = tmp_path / "other"
    shutil.copytree(REPO / "apps" / "sensor_node", app)
    manifest = json.loads((app / "app.json").read_text())
    manifest["name"] = "other"
    manifest["sim"]["sensors"][0]["mean"] = 1
    (app / "app.json").write_text(json.dumps(manifest))
    node = Node("sensor_node")
    node.add_app(app)
    with pytest.raises(LoadError, match="both define sim sensors id 0"):
        node.build()


def test_find_app_by_name_folder_or_manifest(tmp_path):
    from iotbpf.api import find_app

    by_name = find_app("sensor_node")
    assert by_name.name == "app.json" and by_name.parent.name == "sensor_node"
    assert find_app(by_name.parent) == by_name and find_app(by_name) == by_name
    with pytest.raises(LoadError, match="no app.json"):
        find_app(tmp_path)


def test_events_file_is_read_or_refused_clearly(tmp_path):
    from iotbpf.api.apps import read_events

    events = tmp_path / "events.jsonl"
    events.write_text('{"t": "90s", "hook": "gpio", "pin": 2, "level": 1}\n')
    assert read_events(str(events)) == read_events(events) and len(read_events(events)) == 1
    assert read_events([(1, "gpio", {})]) == [(1, "gpio", {})]
    with pytest.raises(LoadError, match="cannot read events file"):
        read_events(tmp_path / "missing.jsonl")
    events.write_bytes(b"\xff\xfe")
    with pytest.raises(LoadError, match="not UTF-8"):
        read_events(events)
    events.write_text("not json\n")
    with pytest.raises(LoadError):
        read_events(events)
