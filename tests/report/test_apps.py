"""Per-app usage reports (iotbpf.report.apps): a phone day, an Android import, MQTT and Home Assistant."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time

import pytest

from iotbpf import Node
from iotbpf.report.apps import FIELDS, SYSTEM, discovery_configs, from_android, from_node, live_data


@pytest.fixture(scope="module")
def day():
    node = Node("app_monitor", seed=3)
    node.simulate("1d")
    return node, from_node(node)


def test_the_report_names_every_app_top_first_and_adds_up(day):
    node, report = day
    apps = [r for r in report.rows if r["name"] != SYSTEM]
    assert [r["energy_j"] for r in apps] == sorted((r["energy_j"] for r in apps), reverse=True)
    assert report.rows[-1]["name"] == SYSTEM
    total = node.scheduler.summary()["energy_j"]
    assert abs(sum(r["energy_j"] for r in report.rows) - total) <= 1e-9 * total
    assert sum(r["share_percent"] for r in report.rows) == pytest.approx(100.0)
    stats = node.app_stats()
    for uid, counters in stats.items():
        row = next(r for r in report.rows if r["uid"] == uid)
        assert not row["name"].startswith("uid ")  # a package name, uid in its own column
        assert row["foreground_s"] == counters["foreground_ns"] / 1e9
        assert (row["disk_read_bytes"], row["net_rx_bytes"]) == (counters["disk_read_bytes"], counters["rx_bytes"])
    system = report.row(SYSTEM)["energy_j"]
    assert sum(report.system_detail.values()) == pytest.approx(system)  # system, by component
    assert report.system_detail["cell"] > 0 and report.system_detail["cpu"] > 0
    camera = report.row("com.android.camera")
    assert camera["disk_write_bytes"] > 0 and camera["net_rx_bytes"] == 0  # storage is not network


def test_text_json_and_csv_carry_the_same_rows(day):
    _node, report = day
    text = report.text()
    first = text.splitlines()[2]
    assert first.startswith(report.rows[0]["name"]) and "disk read" in text and "net rx" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["version"] == 1 and data["kind"] == "iotbpf-apps" and len(data["apps"]) == len(report.rows)
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert list(rows[0]) == list(FIELDS) and len(rows) == len(report.rows)
    assert rows[0]["name"] == report.rows[0]["name"]
    assert float(rows[0]["energy_j"]) == pytest.approx(report.rows[0]["energy_j"])


def test_the_plot_is_written(day, tmp_path):
    pytest.importorskip("matplotlib")
    path = day[1].plot(str(tmp_path / "apps.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_an_android_import_becomes_the_same_kind_of_report(shared):
    from iotbpf import resources
    from iotbpf.platforms.android import attribute, load_checkin, load_power_profile

    checkin = load_checkin(str(shared / "data" / "batterystats_checkin_emulator.txt"))
    profile = load_power_profile(str(resources.resolve("energy_models", "aosp_default_power_profile.xml")))
    comparison = attribute(checkin, profile)
    report = from_android(checkin, comparison)
    top = report.rows[0]
    assert top["uid"] == 1001 and top["energy_j"] == pytest.approx(comparison.row("uid 1001")["ours_mah"] * 3.6 * 3.85)
    assert top["cpu_s"] == pytest.approx(0.272) and top["wakelock_s"] == pytest.approx(43699.891)
    assert sum(r["energy_j"] for r in report.rows) == pytest.approx(report.total_j)


def _template_value(template: str, payload: dict):
    """Evaluate ``{{ value_json.data.apps['name'].energy_j }}`` against a payload."""
    m = re.fullmatch(r"\{\{ value_json\.data\.apps\['([^']+)'\]\.(\w+) \}\}", template)
    assert m, template
    return payload["data"]["apps"][m.group(1)][m.group(2)]


def test_per_app_data_and_home_assistant_sensors_over_mqtt(mosquitto_broker, tmp_path, day):
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from iotbpf.report.mqtt import Publisher

    node, report = day
    messages: dict[str, dict] = {}
    subscribed = threading.Event()
    sub = paho.Client(CallbackAPIVersion.VERSION2)
    sub.on_message = lambda c, u, m: messages.__setitem__(m.topic, json.loads(m.payload))
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe([("homeassistant/#", 1), ("iotbpf/+/apps", 1)])
    sub.connect("127.0.0.1", mosquitto_broker.port)
    sub.loop_start()
    data = live_data(node.runtime, node.scheduler.summary()["apps"], report.total_j)
    try:
        assert subscribed.wait(10)
        pub = Publisher(mosquitto_broker.url, "phone1", tmp_path / "o.db", keepalive=2, reconnect_min=0.1,
                        reconnect_max=0.5).start()
        assert pub.wait_connected(10)
        pub.report("apps", data)
        assert pub.flush(10)
        pub.close()
        want = set(discovery_configs("phone1", list(data["apps"])))
        deadline = time.monotonic() + 10
        while not (want <= set(messages) and "iotbpf/phone1/apps" in messages) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sub.loop_stop()
        sub.disconnect()
    published = messages["iotbpf/phone1/apps"]["data"]["apps"]
    assert published["com.whatsapp"]["uid"] == 10061 and "disk_read_bytes" in published["com.whatsapp"]
    configs = dict((t, messages[t]) for t in want)
    assert len(configs) == len(data["apps"])
    for c in configs.values():
        name = c["name"][:-len(" energy")]
        assert c["unit_of_measurement"] == "J" and c["state_topic"] == "iotbpf/phone1/apps"
        assert _template_value(c["value_template"], messages["iotbpf/phone1/apps"]) == \
            pytest.approx(report.row(name)["energy_j"])


def test_simulate_prints_the_per_app_table(cli):
    result = cli("simulate", "app_monitor", "--duration", "6h")
    assert result.code == 0
    assert "per-app usage (simulation)" in result.out and "com.whatsapp" in result.out
    data = json.loads(cli("simulate", "app_monitor", "--duration", "2h", "--json").out)
    assert data["apps_report"]["kind"] == "iotbpf-apps"
