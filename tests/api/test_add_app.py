"""Node.add_app keeps every app's simulated devices: the node's devices are all apps' sim
sections together, and a device two apps define differently is an error."""

import json
import shutil

import pytest

from conftest import REPO
from iotbpf import Node
from iotbpf.ebpf.errors import LoadError


def rx(result):
    return result.to_dict()["summary"]["radio"]["rx"]


def test_added_app_keeps_its_radio_traffic():
    alone = rx(Node("rx_filter").simulate("6h"))
    node = Node("sensor_node")
    node.add_app("rx_filter")
    both = node.simulate("6h")
    assert rx(both)["received"] == alone["received"] > 0
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
