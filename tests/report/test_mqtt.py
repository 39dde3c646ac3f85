"""MQTT publishing against a real mosquitto: schema, last will, HA discovery, URL grammar."""

from __future__ import annotations

import json
import re
import signal
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from report.report_helpers import start_node_process

from iotbpf.report.mqtt import (
    MqttError,
    Publisher,
    Receiver,
    ReportFormatError,
    discovery_configs,
    make_payload,
    parse_payload,
    parse_url,
    topic,
)

FAST = {"keepalive": 2, "reconnect_min": 0.1, "reconnect_max": 0.5}


@pytest.mark.parametrize("url,expected", [
    ("mqtt://mosquitto_broker", ("mqtt", "mosquitto_broker", 1883, None, None, False)),
    ("mqtts://mosquitto_broker", ("mqtts", "mosquitto_broker", 8883, None, None, True)),
    ("mqtt://127.0.0.1:1999", ("mqtt", "127.0.0.1", 1999, None, None, False)),
    ("mqtt://alice@h:7", ("mqtt", "h", 7, "alice", None, False)),
    ("mqtts://alice:s%40cret@h", ("mqtts", "h", 8883, "alice", "s@cret", True)),
    ("MQTT://h/", ("mqtt", "h", 1883, None, None, False)),
])
def test_url_grammar(url, expected):
    u = parse_url(url)
    assert (u.scheme, u.host, u.port, u.username, u.password, u.tls) == expected


@pytest.mark.parametrize("url,reason", [
    ("", "empty"),
    ("mosquitto_broker:1883", "expected mqtt://"),
    ("http://mosquitto_broker", "scheme must be mqtt:// or mqtts://"),
    ("mqtt://", "no host"),
    ("mqtt://h:99999", "out of range"),
    ("mqtt://h:abc", "bad MQTT URL"),
    ("mqtt://h:0", "1..65535"),
    ("mqtt://h/topic", "unexpected path"),
    ("mqtt://:pw@h", "password without a user name"),
])
def test_bad_urls_are_clear_errors(url, reason):
    with pytest.raises(MqttError, match=re.escape(reason)):
        parse_url(url)


def test_repr_hides_password():
    assert "secret" not in repr(parse_url("mqtt://u:secret@h"))


def test_node_names_cannot_inject_topic_levels():
    for bad in ("a/b", "a+", "#", "", "x" * 65):
        with pytest.raises(MqttError):
            topic(bad, "battery")


def test_payload_schema_roundtrip_and_validation():
    raw = make_payload("n1", "battery", "abcd", 3, 5 * 10**9, "virtual",
                       {"soc_percent": 97.5, "lifetime_days": 412.0})
    obj = parse_payload(raw)
    assert obj == {"schema": "iotbpf.report", "version": 1, "node": "n1", "kind": "battery",
                   "stream": "abcd", "seq": 3, "ts_ns": 5 * 10**9, "clock": "virtual",
                   "data": {"soc_percent": 97.5, "lifetime_days": 412.0}}
    broken = [
        b"not json", b"[]", json.dumps(dict(obj, version=2)).encode(),
        json.dumps({k: v for k, v in obj.items() if k != "seq"}).encode(),
        json.dumps(dict(obj, seq=0)).encode(), json.dumps(dict(obj, seq=True)).encode(),
        json.dumps(dict(obj, data={"lifetime_days": 1})).encode(),
        json.dumps(dict(obj, kind="weather")).encode(),
    ]
    for payload in broken:
        with pytest.raises(ReportFormatError):
            parse_payload(payload)


def _receiver(mosquitto_broker, **kw) -> Receiver:
    rx = Receiver(mosquitto_broker.url, **{**FAST, **kw}).start()
    assert rx.wait_connected(10)
    return rx


def test_reports_arrive_with_the_schema(mosquitto_broker, tmp_path):
    rx = _receiver(mosquitto_broker, save=tmp_path / "seen.jsonl")
    pub = Publisher(mosquitto_broker.url, "node-1", tmp_path / "out.db", clock="virtual", **FAST).start()
    try:
        assert pub.wait_connected(10)
        rx.wait_for(lambda r: r.nodes.get("node-1") is not None and r.nodes["node-1"].status == "online", 10)
        sent = [
            ("battery", {"soc_percent": 99.0, "lifetime_days": 300.5, "voltage_v": 3.0}),
            ("energy", {"power_w": 0.0123, "energy_j": 44.0, "components": {"radio": {"energy_j": 40.0}}}),
            ("apps", {"apps": {"sensor_node": {"energy_j": 44.0}}}),
            ("faults", {"event": "fault", "section": "timer", "pc": 7, "reason": "division by zero"}),
        ]
        for i, (kind, data) in enumerate(sent):
            assert pub.report(kind, data, ts_ns=(i + 1) * 60 * 10**9) == i + 1
        assert pub.flush(10)
        assert rx.wait_for(lambda r: len(r.reports) == 4, 10)
        # Every acknowledgement was matched: none left over to be mistaken for a later message's.
        assert not pub._early and not pub._direct and not pub._inflight
    finally:
        pub.close()
        rx.stop()
    by_seq = {r["seq"]: r for r in rx.reports}
    for i, (kind, data) in enumerate(sent):
        r = by_seq[i + 1]
        assert (r["node"], r["kind"], r["data"], r["ts_ns"], r["clock"]) == (
            "node-1", kind, data, (i + 1) * 60 * 10**9, "virtual")
        assert r["stream"] == rx.reports[0]["stream"]
    view = rx.nodes["node-1"]
    assert (view.soc_percent, view.lifetime_days, view.power_w) == (99.0, 300.5, 0.0123)
    assert view.status == "offline"      # close() marks the node offline
    lines = [json.loads(line) for line in (tmp_path / "seen.jsonl").read_text().splitlines()]
    assert [ln["payload"]["seq"] for ln in lines if isinstance(ln["payload"], dict)] == [1, 2, 3, 4]
    assert pub.outbox is not None


def test_last_will_marks_a_killed_node_offline(mosquitto_broker, tmp_path):
    rx = _receiver(mosquitto_broker)
    proc = start_node_process(mosquitto_broker.url, "willy", tmp_path / "o.db", 10000, 0.05)
    try:
        assert rx.wait_for(lambda r: "willy" in r.nodes and r.nodes["willy"].status == "online", 15)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert rx.wait_for(lambda r: r.nodes["willy"].status == "offline", 15)
    finally:
        proc.kill()
        rx.stop()
    # The status topic is retained: a newcomer learns the node is offline too.
    late = _receiver(mosquitto_broker)
    try:
        assert late.wait_for(lambda r: "willy" in r.nodes and r.nodes["willy"].status == "offline", 10)
    finally:
        late.stop()


def test_a_node_known_only_from_a_retained_message_was_never_seen(mosquitto_broker):
    """A retained "offline" left by a node long gone is the broker's copy, not a sighting: the
    listener must not show it as "last seen 1 s ago"."""
    old = paho.Client(CallbackAPIVersion.VERSION2)
    old.connect("127.0.0.1", mosquitto_broker.port)
    old.loop_start()
    ghost = "iotbpf/retained-ghost/status"   # the broker is shared by the session's tests
    try:
        old.publish(ghost, "offline", qos=1, retain=True).wait_for_publish(10)
        rx = _receiver(mosquitto_broker, nodes="retained-ghost")
        try:
            assert rx.wait_for(lambda r: "retained-ghost" in r.nodes
                               and r.nodes["retained-ghost"].status == "offline", 10)
            assert rx.nodes["retained-ghost"].last_seen is None
        finally:
            rx.stop()
    finally:
        old.publish(ghost, b"", qos=1, retain=True).wait_for_publish(10)  # clear it for later tests
        old.loop_stop()
        old.disconnect()


def _render(template: str, payload: dict):
    """Evaluate the ``{{ value_json.a.b }}`` templates our discovery configs use."""
    m = re.fullmatch(r"\{\{ value_json((?:\.\w+)+)(?: / (\d+))? \}\}", template)
    assert m, template
    value = payload
    for key in m.group(1).strip(".").split("."):
        value = value[key]
    return value / int(m.group(2)) if m.group(2) else value


def test_home_assistant_discovery(mosquitto_broker, tmp_path):
    messages: dict[str, dict] = {}
    subscribed = threading.Event()

    def on_message(client, userdata, message):
        if message.topic.startswith("homeassistant/") or message.topic.endswith(("battery", "energy")):
            messages[message.topic] = json.loads(message.payload)

    sub = paho.Client(CallbackAPIVersion.VERSION2)
    sub.on_message = on_message
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe([("homeassistant/#", 1), ("iotbpf/#", 1)])
    sub.connect("127.0.0.1", mosquitto_broker.port)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        pub = Publisher(mosquitto_broker.url, "kitchen.1", tmp_path / "o.db", model="nrf52840_dk",
                        **FAST).start()
        pub.report("battery", {"soc_percent": 88.5, "lifetime_days": 120.25})
        pub.report("energy", {"power_w": 0.0042, "energy_j": 10.0})
        assert pub.flush(10)
        pub.close()
        deadline = time.monotonic() + 10
        while len(messages) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sub.loop_stop()
        sub.disconnect()
    configs = {t: m for t, m in messages.items() if t.startswith("homeassistant/")}
    assert configs == discovery_configs("kitchen.1", model="nrf52840_dk")
    by_class = {c["device_class"]: c for c in configs.values()}
    assert set(by_class) == {"battery", "power", "energy", "duration"}
    assert {k: c["unit_of_measurement"] for k, c in by_class.items()} == {
        "battery": "%", "power": "W", "energy": "Wh", "duration": "d"}
    assert len({c["unique_id"] for c in configs.values()}) == 4
    for config_topic, c in configs.items():
        assert config_topic == "homeassistant/sensor/iotbpf_kitchen_1/%s/config" % c["unique_id"][17:]
        assert c["default_entity_id"] == "sensor." + c["unique_id"] and "object_id" not in c
        assert c["availability"] == [{"topic": "iotbpf/kitchen.1/status", "payload_available": "online",
                                      "payload_not_available": "offline"}]
        assert c["device"]["identifiers"] == ["iotbpf_kitchen_1"] and c["device"]["model"] == "nrf52840_dk"
        assert isinstance(c["suggested_display_precision"], int)
        assert c["json_attributes_topic"] == c["state_topic"]
    # The Energy dashboard takes a total that only grows.
    assert (by_class["energy"]["state_class"], by_class["battery"]["state_class"]) == ("total_increasing",
                                                                                      "measurement")
    assert by_class["power"]["suggested_unit_of_measurement"] == "mW"
    # Each sensor's template picks its number out of the reports really published on its topic.
    values = {cls: _render(c["value_template"], messages[c["state_topic"]]) for cls, c in by_class.items()}
    assert values == {"battery": 88.5, "power": 0.0042, "energy": 10.0 / 3600, "duration": 120.25}


def test_discovery_announces_only_what_is_published_and_marks_simulations():
    monitor = discovery_configs("box", model="iotbpf monitor", sensors=("power", "energy"))
    assert sorted(c["device_class"] for c in monitor.values()) == ["energy", "power"]   # no battery: never sent
    sim = discovery_configs("field-1", model="nrf52840_dk", apps=("sensor_node", "system"), simulated=True)
    apps = {c["name"]: c for c in sim.values() if c["state_topic"] == "iotbpf/field-1/apps"}
    assert set(apps) == {"Energy of sensor_node", "Energy of system"}
    one = apps["Energy of sensor_node"]
    assert one["value_template"] == '{{ value_json.data.apps["sensor_node"].energy_j / 3600 }}'
    assert (one["device_class"], one["state_class"], one["unit_of_measurement"]) == ("energy", "total_increasing",
                                                                                     "Wh")
    assert all(c["device"]["model"] == "nrf52840_dk (simulated)" for c in sim.values())
    assert '"simulated": {{ (value_json.clock == "virtual") | tojson }}' in one["json_attributes_template"]
    assert "value_json.ts_ns" in one["json_attributes_template"]


def test_unreachable_broker_keeps_reports_in_the_outbox(tmp_path):
    from conftest import free_port

    pub = Publisher("mqtt://127.0.0.1:%d" % free_port(), "lonely", tmp_path / "o.db", **FAST).start()
    try:
        for i in range(5):
            pub.report("energy", {"power_w": 1.0, "energy_j": float(i)})
        time.sleep(0.3)
        assert not pub.connected
        assert pub.pending() == 5
    finally:
        assert pub.close(timeout=0.1) is False
