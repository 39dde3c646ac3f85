"""Signed remote commands on real eBPF maps, and end to end through a real mosquitto."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from iotbpf.ebpf import types as T
from iotbpf.ebpf.maps import create_map
from iotbpf.report.mqtt import MqttError, Publisher, Receiver, send_command
from iotbpf.report.remote import (
    CommandError,
    CommandHandler,
    CounterStore,
    generate_key,
    load_key,
    make_command,
    sign_command,
)

KEY = bytes(range(32))


class MapsOnly:
    """The command target's map side: real eBPF maps as an app would have them."""

    def __init__(self, remote_maps=None):
        self.maps = {
            "blocklist": create_map(T.MapSpec("blocklist", T.BPF_MAP_TYPE_HASH, 4, 1, 4)),
            "config": create_map(T.MapSpec("config", T.BPF_MAP_TYPE_ARRAY, 4, 8, 4)),
            ".rodata": create_map(T.MapSpec(".rodata", T.BPF_MAP_TYPE_ARRAY, 4, 16, 1,
                                            T.BPF_F_RDONLY_PROG)),
            "readings": create_map(T.MapSpec("readings", T.BPF_MAP_TYPE_QUEUE, 0, 4, 8)),
        }
        if remote_maps is not None:
            self.remote_maps = remote_maps
        self.sections = ["radio_rx"]

    def snapshot(self):
        return {name: sorted(m.items()) if m.key_size else len(m) for name, m in self.maps.items()}


@pytest.fixture
def node(tmp_path):
    target = MapsOnly()
    published = []
    handler = CommandHandler(target, "n1", KEY, tmp_path / "counter.json",
                             publish=lambda kind, data: published.append((kind, data)))
    return target, handler, published


def cmd(op="map_update", counter=1, secret=KEY, node="n1", **fields):
    fields.setdefault("map", "blocklist")
    return sign_command(secret, make_command(node, op, counter=counter, command_id="c%d" % counter, **fields))


def test_signed_command_changes_the_map_and_is_acknowledged(node):
    target, handler, published = node
    reply = handler.handle(cmd(counter=5, key="0a000001", value="01"))
    assert reply == {"id": "c5", "counter": 5, "op": "map_update", "ok": True, "reason": None,
                     "result": {"map": "blocklist", "key": "0a000001", "value": "01"}}
    assert target.maps["blocklist"].lookup(bytes.fromhex("0a000001")) == b"\x01"
    assert published == [("cmd_reply", reply)]
    # Integers are packed little-endian to the map's sizes.
    assert handler.handle(cmd(counter=6, map="config", key=2, value=60_000))["ok"]
    assert target.maps["config"].lookup(struct.pack("<I", 2)) == struct.pack("<Q", 60_000)
    r = handler.handle(cmd(counter=7, op="map_lookup", map="config", key=2))
    assert r["ok"] and r["result"]["value"] == struct.pack("<Q", 60_000).hex()
    assert handler.handle(cmd(counter=8, op="map_delete", key="0a000001"))["ok"]
    assert target.maps["blocklist"].lookup(bytes.fromhex("0a000001")) is None


def _refused(handler, target, payload, reason):
    before = target.snapshot()
    counter_before = handler.counter.value
    reply = handler.handle(payload)
    assert reply["ok"] is False
    assert reason in reply["reason"], reply["reason"]
    assert target.snapshot() == before, "a refused command changed a map"
    assert handler.counter.value == counter_before, "a refused command moved the counter"
    return reply


def _frame(mac: str, token: str, raw: bytes) -> bytes:
    return b"iotbpf-cmd/2 " + ("%s %s\n" % (mac, token)).encode() + raw


def _signed_raw(raw: bytes, token: str = "x", secret: bytes = KEY) -> bytes:
    return _frame(hmac.new(secret, raw, hashlib.sha256).hexdigest(), token, raw)


def test_unsigned_and_badly_signed_commands_change_nothing(node):
    target, handler, _ = node
    body = make_command("n1", "map_update", counter=1, command_id="x", map="blocklist", key=1, value=1)
    raw = json.dumps(body).encode()
    assert _refused(handler, target, _frame("0" * 64, "x", raw), "bad signature")["id"] == "x"
    _refused(handler, target, sign_command(bytes(32), body), "bad signature")
    good = sign_command(KEY, body)
    _refused(handler, target, good.replace(b'"value":1', b'"value":0'), "bad signature")
    _refused(handler, target, good[:20] + b"zz" + good[22:], "bad signature")
    # The old JSON envelope (parsed before its signature was checked) is no longer accepted.
    _refused(handler, target, json.dumps({"version": 1, "body": raw.decode(), "hmac": "00"}).encode(),
             "not an iotbpf-cmd/2 message")


def test_replayed_commands_are_refused(node):
    target, handler, _ = node
    payload = cmd(counter=10, key=1, value=1)
    assert handler.handle(payload)["ok"]
    target.maps["blocklist"].delete(struct.pack("<I", 1))
    _refused(handler, target, payload, "replayed: counter 10 is not above the last accepted 10")
    _refused(handler, target, cmd(counter=9, key=2, value=1), "replayed")
    assert handler.handle(cmd(counter=11, key=2, value=1))["ok"]


def test_counter_survives_a_restart(tmp_path):
    target = MapsOnly()
    first = CommandHandler(target, "n1", KEY, tmp_path / "c.json")
    payload = cmd(counter=42, key=1, value=1)
    assert first.handle(payload)["ok"]
    second = CommandHandler(target, "n1", KEY, tmp_path / "c.json")   # the node rebooted
    assert second.counter.value == 42
    _refused(second, target, payload, "replayed")
    assert json.loads((tmp_path / "c.json").read_text()) == {"version": 1, "counter": 42}
    assert not [p for p in os.listdir(tmp_path) if ".tmp." in p]


@pytest.mark.parametrize("fields,reason", [
    ({"key": "0a0000", "value": "01"}, "key is 3 bytes, map 'blocklist' takes 4-byte keys"),
    ({"key": "0a000001", "value": "0101"}, "value is 2 bytes, map 'blocklist' takes 1-byte values"),
    ({"key": 1 << 32, "value": 1}, "does not fit"),
    ({"key": "zz", "value": "01"}, "not hex"),
    ({"key": 1}, "no value"),
    ({"key": 1, "value": 1, "flags": "sometimes"}, "flags must be"),
    ({"map": "nosuch", "key": 1, "value": 1}, "no map 'nosuch'"),
    ({"map": ".rodata", "key": 0, "value": "00" * 16}, "read-only"),
    ({"map": "readings", "key": 0, "value": 1}, "not a key/value map"),
    ({"op": "format_disk", "key": 1, "value": 1}, "unknown op"),
    ({"node": "n2", "key": 1, "value": 1}, "command is for node 'n2'"),
    ({"op": "program_update", "section": "nosuch"}, "section 'nosuch' is not attached"),
    ({"op": "program_update", "section": "radio_rx", "bundle": "***"}, "not base64"),
])
def test_malformed_commands_are_refused_with_a_reason(node, fields, reason):
    target, handler, _ = node
    _refused(handler, target, cmd(counter=3, **fields), reason)


def test_structurally_broken_messages(node):
    target, handler, _ = node
    for payload, reason in ((b"\xff\xfe", "malformed"), (b"[1]", "malformed"), (b"{}", "malformed"),
                            (b"iotbpf-cmd/2 ", "no header line"),
                            (b"iotbpf-cmd/2 00 x\n{}", "header must be"),
                            (_frame("0" * 64, "x", b"{"), "bad signature")):
        _refused(handler, target, payload, reason)
    _refused(handler, target, _signed_raw(b"[1, 2]"), "not a JSON object")


def test_oversized_commands_are_refused_before_parsing(node):
    target, handler, _ = node
    huge = b"{" + b" " * (handler.max_message_bytes + 1) + b"}"
    _refused(handler, target, huge, "oversized")
    padded = cmd(counter=4, key=1, value=1, padding="x" * 5000)   # signed, but too big for a map op
    _refused(handler, target, padded, "oversized")


def test_manifest_limits_which_maps_are_remote(tmp_path):
    target = MapsOnly(remote_maps=["config"])
    handler = CommandHandler(target, "n1", KEY, tmp_path / "c.json")
    _refused(handler, target, cmd(counter=1, key=1, value=1), "may not be changed remotely")
    assert handler.handle(cmd(counter=2, map="config", key=1, value=1))["ok"]


def test_key_files(tmp_path):
    key = generate_key(tmp_path / "n1.key")
    assert load_key(tmp_path / "n1.key") == key and len(key) == 32
    assert os.stat(tmp_path / "n1.key").st_mode & 0o077 == 0
    (tmp_path / "short.key").write_text("abcd")
    with pytest.raises(CommandError, match="at least 16"):
        load_key(tmp_path / "short.key")
    (tmp_path / "bad.key").write_text("not hex at all")
    with pytest.raises(CommandError, match="not hex"):
        load_key(tmp_path / "bad.key")
    with pytest.raises(CommandError, match="cannot read"):
        load_key(tmp_path / "missing.key")
    (tmp_path / "c.json").write_text("{\"counter\": -1}")
    with pytest.raises(CommandError, match="counter file"):
        CounterStore(tmp_path / "c.json")


def test_commands_over_mqtt_are_applied_and_acknowledged(mosquitto_broker, tmp_path):
    target = MapsOnly()
    fast = {"keepalive": 2, "reconnect_min": 0.1, "reconnect_max": 0.5}
    pub = Publisher(mosquitto_broker.url, "n1", tmp_path / "o.db", **fast)
    handler = CommandHandler(target, "n1", KEY, tmp_path / "c.json", publish=pub.report)
    pub.on_command = handler.submit
    rx = Receiver(mosquitto_broker.url, **fast).start()
    pub.start()
    operator = paho.Client(CallbackAPIVersion.VERSION2)
    operator.connect("127.0.0.1", mosquitto_broker.port)
    operator.loop_start()
    try:
        assert pub.wait_connected(10) and rx.wait_connected(10)
        time.sleep(0.2)   # the node's subscription to its command topic
        for payload in (cmd(counter=1, key="c0a80001", value="01"), b"garbage",
                        cmd(counter=1, key="c0a80002", value="01")):
            operator.publish("iotbpf/n1/cmd", payload, qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while len(handler.replies) < 3 and time.monotonic() < deadline:
            handler.process_pending()
            time.sleep(0.02)
        assert rx.wait_for(lambda r: len([x for x in r.reports if x["kind"] == "cmd_reply"]) == 3, 10)
    finally:
        operator.loop_stop()
        pub.close(timeout=2)
        rx.stop()
    replies = [r["data"] for r in sorted(rx.reports, key=lambda r: r["seq"]) if r["kind"] == "cmd_reply"]
    assert [(r["ok"], r["reason"] and r["reason"].split(":")[0]) for r in replies] == [
        (True, None), (False, "malformed"), (False, "replayed")]
    assert target.maps["blocklist"].keys() == [bytes.fromhex("c0a80001")]


def test_send_command_waits_for_the_nodes_reply(mosquitto_broker, tmp_path):
    target = MapsOnly()
    fast = {"keepalive": 2, "reconnect_min": 0.1, "reconnect_max": 0.5}
    pub = Publisher(mosquitto_broker.url, "n1", tmp_path / "o.db", **fast)
    handler = CommandHandler(target, "n1", KEY, tmp_path / "c.json", publish=pub.report)
    pub.on_command = handler.submit
    pub.start()
    stop = threading.Event()

    def node_loop():
        while not stop.is_set():
            handler.process_pending()
            time.sleep(0.01)

    loop = threading.Thread(target=node_loop, daemon=True)
    try:
        assert pub.wait_connected(10)
        time.sleep(0.2)
        loop.start()
        reply = send_command(mosquitto_broker.url, "n1", KEY, "map_update", map="config", key=1, value=7)
        assert reply["ok"] and reply["result"]["value"] == struct.pack("<Q", 7).hex()
        reply = send_command(mosquitto_broker.url, "n1", bytes(32), "map_delete", map="config", key=1)
        assert reply == {"id": reply["id"], "counter": reply["counter"], "op": None, "ok": False,
                         "reason": "bad signature", "result": {}}
        with pytest.raises(MqttError, match="no reply from node ghost"):
            send_command(mosquitto_broker.url, "ghost", KEY, "map_lookup", timeout=0.5, map="config", key=1)
    finally:
        stop.set()
        pub.close(timeout=2)
    assert target.maps["config"].lookup(struct.pack("<I", 1)) == struct.pack("<Q", 7)
