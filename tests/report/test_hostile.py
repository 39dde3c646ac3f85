"""Issue 24, items 1-3: hostile messages against the command handler, a running node and a running
listener on a real mosquitto, and replay protection that survives a reboot."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from iotbpf.ebpf import boundedjson
from iotbpf.report.mqtt import Publisher, Receiver, parse_payload, send_command
from iotbpf.report.remote import (
    MAX_COUNTER,
    CommandError,
    CommandHandler,
    counter_path_for,
    generate_key,
    load_key,
    make_command,
    sign_command,
)
from tests.report.test_remote import KEY, MapsOnly

# CI runs a few thousand; IOTBPF_FUZZ_MESSAGES=200000 for a long run by hand.
FUZZ_MESSAGES = int(os.environ.get("IOTBPF_FUZZ_MESSAGES", "3000"))
NESTED = b"[" * 4000


def _signed_raw(raw: bytes, token: str = "x") -> bytes:
    mac = hmac.new(KEY, raw, hashlib.sha256).hexdigest()
    return b"iotbpf-cmd/2 " + ("%s %s\n" % (mac, token)).encode() + raw


@pytest.fixture
def handler(tmp_path):
    target = MapsOnly()
    return target, CommandHandler(target, "n1", KEY, tmp_path / "c.json")


# --------------------------------------------------------------------------- item 1

def test_nested_json_is_refused_signed_or_not(handler):
    target, h = handler
    before = target.snapshot()
    assert h.handle(NESTED)["reason"].startswith("malformed")
    assert h.handle(b"iotbpf-cmd/2 " + b"0" * 64 + b" x\n" + NESTED)["reason"] == "bad signature"
    reply = h.handle(_signed_raw(NESTED))   # signed by the key holder, still never a traceback
    assert reply["ok"] is False and "nested deeper" in reply["reason"]
    assert target.snapshot() == before and h.counter.value == 0


def test_signed_command_with_a_list_for_flags_is_refused(handler):
    target, h = handler
    body = make_command("n1", "map_update", counter=1, command_id="x", map="blocklist", key=1, value=1,
                        flags=[1])
    reply = h.handle(sign_command(KEY, body))
    assert reply["ok"] is False and "flags must be" in reply["reason"]
    for field, value in (("program", [1]), ("map", {"a": 1}), ("key", [1]), ("section", [1]),
                         ("node", ["n1"]), ("op", {"x": 1}), ("expires", "soon")):
        fields = {"map": "blocklist", "key": 1, "value": 1, "section": "radio_rx", "bundle": ""}
        body = make_command("n1", "program_update" if field in ("program", "section") else "map_update",
                            counter=2, command_id="y", **fields)
        body[field] = value
        reply = h.handle(sign_command(KEY, body))
        assert reply["ok"] is False and reply["reason"], (field, reply)
    assert h.counter.value == 0


def test_handle_never_raises_on_mutated_commands(handler):
    target, h = handler
    rng = random.Random(24)
    good = sign_command(KEY, make_command("n1", "map_update", counter=5, command_id="g", map="config",
                                          key=1, value=1, expires=4102444800))   # fixed bytes
    good_body = good.split(b"\n", 1)[1]
    before = target.snapshot()
    accepted = 0
    for _ in range(FUZZ_MESSAGES):
        data = bytearray(good)
        for _ in range(rng.randint(1, 8)):
            op = rng.randrange(4)
            pos = rng.randrange(len(data) + 1)
            if op == 0 and data:
                data[min(pos, len(data) - 1)] = rng.randrange(256)
            elif op == 1:
                data[pos:pos] = rng.choice([b"[", b"{", b"\"", b"\\", b"\x00", b"9" * 30, b"[" * 500])
            elif op == 2:
                del data[pos:pos + rng.randint(1, 20)]
            else:
                data = data[:pos]
        reply = h.handle(bytes(data))
        if reply["ok"]:   # only the same signed body can pass (e.g. the hmac's hex in upper case)
            assert bytes(data).split(b"\n", 1)[1] == good_body and accepted == 0, bytes(data)
            accepted += 1
    if not accepted:
        assert target.snapshot() == before and h.counter.value == 0
        assert h.handle(good)["ok"]
    assert "replayed" in h.handle(good)["reason"]


def test_replies_to_unsigned_garbage_are_rate_limited(tmp_path):
    target = MapsOnly()
    published = []
    h = CommandHandler(target, "n1", KEY, tmp_path / "c.json", publish=lambda k, d: published.append(d))
    for i in range(200):
        assert h.handle(b"garbage %d" % i)["ok"] is False
    assert 20 <= len(published) < 30 and h.unanswered == 200 - len(published) and h.refused == 200
    signed = sign_command(KEY, make_command("n1", "map_lookup", counter=1, command_id="s", map="config", key=1))
    assert h.handle(signed)["ok"] and published[-1]["id"] == "s"   # signed commands always answered


# --------------------------------------------------------------------------- item 3

def test_expired_commands_are_refused(handler):
    target, h = handler
    body = make_command("n1", "map_update", counter=1, command_id="x", map="config", key=1, value=1,
                        expires=time.time() - 10)
    assert "expired" in h.handle(sign_command(KEY, body))["reason"]
    body = make_command("n1", "map_update", counter=1, command_id="x", map="config", key=1, value=1)
    assert body["expires"] > time.time() and h.handle(sign_command(KEY, body))["ok"]


def test_no_counter_locks_the_node_out(handler):
    target, h = handler
    for huge in (MAX_COUNTER, int((time.time() + 3600) * 1e6)):
        body = make_command("n1", "map_update", counter=huge, command_id="x", map="config", key=1, value=1)
        assert "ahead of this node's clock" in h.handle(sign_command(KEY, body))["reason"]
    # A command signed now (counter = the time in microseconds) is still accepted.
    assert h.handle(sign_command(KEY, make_command("n1", "map_update", map="config", key=1, value=2)))["ok"]


def test_key_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "n1.key"
    key = generate_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(CommandError, match="readable or writable by others.*chmod 600"):
        load_key(path)
    os.chmod(path, 0o600)
    assert load_key(path) == key
    assert counter_path_for(path) == str(path) + ".counter"


def test_node_with_a_key_readable_by_others_stops_with_one_error_line(cli, tmp_path):
    path = tmp_path / "n1.key"
    generate_key(path)
    os.chmod(path, 0o640)
    # refused before any connection is tried (port 1: nothing listens)
    result = cli("node", "sensor_node", "--platform", "linux", "--mqtt", "mqtt://127.0.0.1:1",
                 "--key", path, "--duration", "1s")
    assert result.code == 2
    assert result.err == "error: key file %s is readable or writable by others (mode 640); run: chmod 600 %s\n" \
        % (path, path)


# --------------------------------------------------------------------------- item 2 and the JSON loader

def test_bounded_json_loader():
    assert boundedjson.loads('{"a": "[[[[[[", "b": [[1]]}', max_depth=3) == {"a": "[[[[[[", "b": [[1]]}
    with pytest.raises(ValueError, match="nested deeper than 3"):
        boundedjson.loads("[[[[1]]]]", max_depth=3)
    with pytest.raises(ValueError, match="too large"):
        boundedjson.loads(b"[1]" * 10, max_bytes=8)
    with pytest.raises(ValueError, match="not UTF-8"):
        boundedjson.loads(b"\xff")
    with pytest.raises(ValueError):
        boundedjson.loads("[" * 100000)
    assert boundedjson.nesting_depth('["\\"[[[", {"x": [2]}]', 5) == 3



def test_bounded_json_plain_scan_matches(monkeypatch):
    # MicroPython takes the plain character scan: same answers
    texts = ['["\\"[[[", {"x": [2]}]', "[" * 80 + "]" * 80, '{"a": "]]]]", "b": [[[[]]]]}', '"\\\\"' + "[" * 70]
    fast = [boundedjson.nesting_depth(t, 5) for t in texts]
    monkeypatch.setattr(boundedjson, "_FINDITER", None)
    assert [boundedjson.nesting_depth(t, 5) for t in texts] == fast
    with pytest.raises(ValueError, match="nested deeper"):
        boundedjson.loads("[" * 5000)


def test_receiver_survives_a_nested_report_and_counts_it(mosquitto_broker, tmp_path):
    with pytest.raises(Exception, match="nested deeper"):
        parse_payload(NESTED)
    rx = Receiver(mosquitto_broker.url, keepalive=2, reconnect_min=0.1, reconnect_max=0.5).start()
    pub = Publisher(mosquitto_broker.url, "good", tmp_path / "o.db", keepalive=2, reconnect_min=0.1,
                    reconnect_max=0.5).start()
    attacker = paho.Client(CallbackAPIVersion.VERSION2)
    attacker.connect("127.0.0.1", mosquitto_broker.port)
    attacker.loop_start()
    try:
        assert rx.wait_connected(10) and pub.wait_connected(10)
        attacker.publish("iotbpf/evil/battery", NESTED, qos=1).wait_for_publish(5)
        attacker.publish("iotbpf/evil/energy", b"\x1b[2J{", qos=1).wait_for_publish(5)
        assert rx.wait_for(lambda r: r.invalid_count == 2, 10)
        pub.report("battery", {"soc_percent": 50.0, "lifetime_days": 3.0}, ts_ns=1)
        assert rx.wait_for(lambda r: "good" in r.nodes and r.nodes["good"].reports == 1, 10)
    finally:
        attacker.loop_stop()
        pub.close(timeout=2)
        rx.stop()
    assert "evil" not in rx.nodes
    assert not any("\x1b" in reason for reason in rx.invalid)


def test_receiver_tracks_a_bounded_number_of_nodes(mosquitto_broker):
    rx = Receiver(mosquitto_broker.url, keepalive=2, reconnect_min=0.1, reconnect_max=0.5)
    rx.max_nodes = 5
    rx.start()
    attacker = paho.Client(CallbackAPIVersion.VERSION2)
    attacker.connect("127.0.0.1", mosquitto_broker.port)
    attacker.loop_start()
    try:
        assert rx.wait_connected(10)
        # connected is not yet subscribed: repeat the first name until the listener has it
        deadline = time.monotonic() + 10
        while "ghost-0" not in rx.nodes and time.monotonic() < deadline:
            attacker.publish("iotbpf/ghost-0/status", b"online", qos=1).wait_for_publish(5)
            rx.wait_for(lambda r: "ghost-0" in r.nodes, 0.2)
        for i in range(1, 40):   # invented node names (status topics need no valid report)
            attacker.publish("iotbpf/ghost-%d/status" % i, b"online", qos=1).wait_for_publish(5)
        ok = rx.wait_for(lambda r: len(r.nodes) == 5 and r.invalid_count == 35, 10)
        assert ok, (sorted(rx.nodes), rx.invalid_count, rx.invalid[:3])
    finally:
        attacker.loop_stop()
        rx.stop()
    assert all("more than 5 nodes" in reason for reason in rx.invalid)


# --------------------------------------------------------------------------- a running node

def _node_env(tmpdir) -> dict:
    env = dict(os.environ)
    env["TMPDIR"] = str(tmpdir)
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd()] + [p for p in sys.path if p])
    return env


def _start_node(broker, key, tmpdir, duration="120s"):
    os.makedirs(tmpdir, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "iotbpf", "node", "rx_filter", "--platform", "linux", "--mqtt", broker.url,
         "--key", str(key), "--node", "fz", "--duration", duration, "--report-every", "1s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_node_env(tmpdir), text=True)


def _stop(proc, sig=signal.SIGTERM) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return out, err


class Replies:
    """Collects the node's command replies (a plain subscriber)."""

    def __init__(self, broker):
        self.seen = []
        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe("iotbpf/fz/cmd/reply", qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        try:   # the attacker publishes garbage on the reply topic too
            self.seen.append(parse_payload(message.payload)["data"])
        except Exception:
            pass

    def wait(self, predicate, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [r for r in list(self.seen) if predicate(r)]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError("no matching reply; seen %d: %r" % (len(self.seen), self.seen[-3:]))

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def _wait_online(broker, timeout=60.0):
    got = []
    c = paho.Client(CallbackAPIVersion.VERSION2)
    c.on_message = lambda cl, u, m: got.append(m.payload)
    c.connect("127.0.0.1", broker.port)
    c.subscribe("iotbpf/fz/status", qos=1)
    c.loop_start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and b"online" not in got:
            time.sleep(0.05)
    finally:
        c.loop_stop()
        c.disconnect()
    assert b"online" in got, "the node never came online"
    time.sleep(0.3)   # its subscription to iotbpf/fz/cmd


def _hostile_messages(rng, n):
    good = sign_command(KEY, make_command("fz", "map_update", counter=1, command_id="h", map="blocklist",
                                          key=1, value=1, expires=time.time() - 1))
    shapes = [NESTED, b"{" * 4000, b"", b"\xff" * 100, b"iotbpf-cmd/2 ", good,
              json.dumps({"version": 1, "body": "[" * 3000, "hmac": "0" * 64}).encode(),
              b"iotbpf-cmd/2 " + b"0" * 64 + b" x\n" + b"[" * 3000,
              b'{"schema":"iotbpf.report","version":1,"data":' + b"[" * 3000 + b"}",
              b'{"schema":"iotbpf.report","version":1,"node":"fz","kind":"battery","stream":"s",'
              b'"seq":1,"ts_ns":1,"clock":"real","data":{"soc_percent":[1],"lifetime_days":null}}']
    for i in range(n):
        if i % 3 == 0:
            yield rng.choice(shapes)
        else:
            data = bytearray(rng.choice(shapes))
            for _ in range(rng.randint(1, 5)):
                pos = rng.randrange(len(data) + 1)
                data[pos:pos + rng.randint(0, 3)] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 4)))
            yield bytes(data)


def test_hostile_fuzz_keeps_a_running_node_and_listener_serving(mosquitto_broker, tmp_path):
    key = tmp_path / "keys" / "fz.key"
    os.makedirs(key.parent)
    generate_key(key)
    secret = load_key(key)
    node = _start_node(mosquitto_broker, key, tmp_path / "tmp")
    listener = subprocess.Popen(
        [sys.executable, "-m", "iotbpf", "listen", mosquitto_broker.url, "--json", "--duration", "600s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_node_env(tmp_path / "tmp"), text=True)
    replies = Replies(mosquitto_broker)
    attacker = paho.Client(CallbackAPIVersion.VERSION2)
    attacker.connect("127.0.0.1", mosquitto_broker.port)
    attacker.loop_start()
    try:
        _wait_online(mosquitto_broker)
        rng = random.Random(2024)
        topics = ["iotbpf/fz/cmd", "iotbpf/fz/battery", "iotbpf/evil/battery", "iotbpf/evil/energy",
                  "iotbpf/fz/cmd/reply", "iotbpf/evil/faults"]
        last = None
        for i, payload in enumerate(_hostile_messages(rng, FUZZ_MESSAGES)):
            last = attacker.publish(topics[i % len(topics)], payload, qos=1)
            if i % 200 == 199:
                last.wait_for_publish(10)
        last.wait_for_publish(30)
        assert node.poll() is None, "the node died: %s" % _stop(node)[1][-2000:]
        assert listener.poll() is None, "the listener died: %s" % _stop(listener)[1][-2000:]
        # Both still serve valid traffic: a signed command is applied and answered ...
        reply = send_command(mosquitto_broker.url, "fz", secret, "map_update", timeout=60, map="blocklist",
                             key=7, value=1)
        assert reply["ok"], reply
        # ... and the node's reports still reach the listener (checked in its final table).
        time.sleep(2.5)
    finally:
        attacker.loop_stop()
        replies.close()
        node_out, node_err = _stop(node)
        listen_out, listen_err = _stop(listener, signal.SIGINT)   # Ctrl-C: it prints its table
    assert node.returncode in (0, -signal.SIGTERM), node_err[-2000:]
    assert "Traceback" not in node_err and "Traceback" not in listen_err, node_err[-2000:] + listen_err[-2000:]
    refused = [r for r in replies.seen if r.get("ok") is False]
    # answered, but the replies to unsigned garbage are rate-limited (not one durable reply each)
    assert 0 < len(refused) < FUZZ_MESSAGES // 12, len(refused)
    assert all(isinstance(r["reason"], str) and len(r["reason"]) < 600 for r in refused)
    assert listener.returncode == 0, listen_err[-2000:]
    table = json.loads(listen_out)
    fz = [n for n in table["nodes"] if n["node"] == "fz"]
    assert fz and fz[0]["reports"] >= 2, table   # the node's reports kept arriving
    assert table["invalid_count"] > FUZZ_MESSAGES // 10, table["invalid_count"]


def test_replay_after_a_reboot_with_tmp_cleared_is_refused(mosquitto_broker, tmp_path):
    key = tmp_path / "keys" / "fz.key"
    os.makedirs(key.parent)
    generate_key(key)
    secret = load_key(key)
    captured = sign_command(secret, make_command("fz", "map_update", command_id="cap1", map="blocklist",
                                                 key=9, value=1))
    replies = Replies(mosquitto_broker)
    op = paho.Client(CallbackAPIVersion.VERSION2)
    op.connect("127.0.0.1", mosquitto_broker.port)
    op.loop_start()
    try:
        for boot in range(2):
            tmpdir = tmp_path / ("tmp%d" % boot)
            node = _start_node(mosquitto_broker, key, tmpdir)
            try:
                _wait_online(mosquitto_broker)
                replies.seen.clear()
                op.publish("iotbpf/fz/cmd", captured, qos=1).wait_for_publish(10)
                reply = replies.wait(lambda r: r.get("id") == "cap1")
            finally:
                _stop(node)
            shutil.rmtree(tmpdir)   # the reboot clears /tmp (the outbox lived there)
            if boot == 0:
                assert reply["ok"], reply
            else:
                assert reply["ok"] is False and reply["reason"].startswith("replayed"), reply
    finally:
        op.loop_stop()
        replies.close()
    assert os.path.exists(counter_path_for(key))
