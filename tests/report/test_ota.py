"""Signed over-the-air program updates on a real simulated node: swap, refuse, roll back."""

from __future__ import annotations

import struct

import pytest

from iotbpf.api import Node
from iotbpf.ebpf.loader.bundle import save_bundle
from iotbpf.ebpf.loader.elf import load_elf_object
from iotbpf.report.node import RuntimeTarget
from iotbpf.report.remote import CommandHandler, make_command, sign_command

KEY = b"k" * 32
MINUTE = 60 * 10**9

GOOD = r"""
#include "iotbpf.h"
SEC("timer") int on_timer(struct iot_timer_ctx *ctx) {
    char msg[] = "v2";
    iot_log(msg, sizeof(msg), ctx->expirations);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""

# Verifies (the pointer and size are proven) but the log helper refuses more than 4096 bytes at
# run time: it faults on every timer.
FAULTY = r"""
#include "iotbpf.h"
struct big { char bytes[8192]; };
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct big);
} big SEC(".maps");
SEC("timer") int on_timer(struct iot_timer_ctx *ctx) {
    __u32 k = 0;
    struct big *v = bpf_map_lookup_elem(&big, &k);
    if (!v)
        return 0;
    iot_log(v, sizeof(*v), 3);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""

UNSAFE = r"""
#include "iotbpf.h"
SEC("timer") int on_timer(struct iot_timer_ctx *ctx) {
    return *(__u64 *)((char *)ctx + 64);   /* past the end of the timer context */
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def bundles(clang):
    return {name: save_bundle(load_elf_object(clang.compile(src))) for name, src in
            (("good", GOOD), ("faulty", FAULTY), ("unsafe", UNSAFE))}


class Rig:
    def __init__(self, tmp_path):
        self.node = Node("sensor_node", seed=1)
        self.rt = self.node.build()
        self.rt.boot()
        self.now = 0
        self.published = []
        self.handler = CommandHandler(RuntimeTarget(self.rt, "sensor_node"), "n1", KEY, tmp_path / "c.json",
                                      publish=lambda kind, data: self.published.append((kind, data)))
        self.counter = 0

    def run(self, minutes):
        self.now += minutes * MINUTE
        self.rt.run_until(self.now)
        return self.handler.process_pending()

    def update(self, bundle, secret=KEY):
        self.counter += 1
        body = make_command("n1", "program_update", counter=self.counter, command_id="u%d" % self.counter,
                            section="timer", bundle=bundle)
        self.handler.submit(sign_command(secret, body))
        return self.handler.process_pending()[0]

    def timer_program(self):
        return next(a.program for a in self.rt.apps[0].attached if a.section == "timer")

    def v2_logs(self):
        return [entry for entry in self.rt.logs if entry[2] == "v2"]


def test_signed_update_swaps_the_program(bundles, tmp_path):
    rig = Rig(tmp_path)
    rig.run(10)
    original = rig.timer_program()
    reply = rig.update(bundles["good"])
    assert reply["ok"], reply
    assert reply["result"]["section"] == "timer" and len(reply["result"]["bundle_sha256"]) == 64
    assert rig.timer_program() is not original
    rig.run(10)
    assert len(rig.v2_logs()) == 10 and rig.rt.fault_count == 0
    assert any(e["event"] == "replaced" and e["section"] == "timer" for e in rig.rt.events)
    assert rig.published[-1] == ("cmd_reply", reply)


def test_faulty_update_is_rolled_back_and_reported(bundles, tmp_path):
    rig = Rig(tmp_path)
    assert rig.update(bundles["good"])["ok"]
    rig.run(5)
    good = rig.timer_program()
    assert rig.update(bundles["faulty"])["ok"]     # the verifier accepts it ...
    reports = rig.run(5)                            # ... but every run faults
    assert rig.rt.fault_count >= 3
    assert [r["event"] for r in reports] == ["rollback"]
    assert reports[0]["section"] == "timer" and reports[0]["faults"] >= 3
    assert ("faults", reports[0]) in rig.published
    assert rig.timer_program() is good
    before = len(rig.v2_logs())
    faults = rig.rt.fault_count
    rig.run(5)
    assert len(rig.v2_logs()) == before + 5 and rig.rt.fault_count == faults


def test_unsafe_or_unsigned_updates_change_nothing(bundles, tmp_path):
    rig = Rig(tmp_path)
    original = rig.timer_program()
    reply = rig.update(bundles["unsafe"])
    assert not reply["ok"] and reply["reason"].startswith("verifier rejected the program: ")
    assert rig.update(bundles["good"], secret=b"x" * 32)["reason"] == "bad signature"
    broken = bytearray(bundles["good"])
    broken[-1] ^= 0xFF
    assert rig.update(bytes(broken))["reason"].startswith("bad bundle: ")
    assert rig.timer_program() is original
    rig.run(3)
    assert rig.v2_logs() == [] and rig.rt.fault_count == 0


def test_remote_map_update_on_the_running_app(tmp_path):
    node = Node("rx_filter", seed=2)
    rt = node.build()
    handler = CommandHandler(RuntimeTarget(rt), "gw", KEY, tmp_path / "c.json")
    blocked = struct.pack("<I", 99)
    body = make_command("gw", "map_update", counter=1, map="blocklist", key=blocked.hex(), value=1)
    assert handler.handle(sign_command(KEY, body))["ok"]
    assert node.map("blocklist").lookup(blocked) == struct.pack("<I", 1)


def test_a_node_without_the_verifier_accepts_no_program_update(bundles, tmp_path):
    node = Node("sensor_node", seed=1, verify=False)
    handler = CommandHandler(RuntimeTarget(node.build()), "n1", KEY, tmp_path / "c.json")
    body = make_command("n1", "program_update", counter=1, section="timer", bundle=bundles["good"])
    reply = handler.handle(sign_command(KEY, body))
    assert reply["reason"] == ("verifier rejected the program: this node runs without the verifier; "
                               "it accepts no program updates")


def test_program_update_and_rollback_over_mqtt(bundles, mosquitto_broker, tmp_path):
    import threading
    import time

    from iotbpf.report.mqtt import Publisher, Receiver, send_command
    from iotbpf.report.node import remote_control

    (tmp_path / "n1.key").write_text(KEY.hex())
    (tmp_path / "n1.key").chmod(0o600)   # a key readable by others is refused
    fast = {"keepalive": 2, "reconnect_min": 0.1, "reconnect_max": 0.5}
    node = Node("sensor_node", seed=1)
    rt = node.build()
    rt.boot()
    pub = Publisher(mosquitto_broker.url, "n1", tmp_path / "o.db", clock="virtual", **fast)
    handler = remote_control(rt, pub, tmp_path / "n1.key", tmp_path / "n1.counter")
    rx = Receiver(mosquitto_broker.url, **fast).start()
    pub.start()
    stop = threading.Event()

    def node_loop():   # the node: a minute of virtual time, then its commands, again and again
        now = 0
        while not stop.is_set():
            now += MINUTE
            rt.run_until(now)
            handler.process_pending()
            time.sleep(0.005)

    loop = threading.Thread(target=node_loop, daemon=True)
    try:
        assert pub.wait_connected(10) and rx.wait_connected(10)
        time.sleep(0.2)
        loop.start()
        for name in ("good", "faulty"):
            reply = send_command(mosquitto_broker.url, "n1", KEY, "program_update", section="timer",
                                 bundle=bundles[name])
            assert reply["ok"], reply
        assert rx.wait_for(lambda r: any(x["kind"] == "faults" for x in r.reports), 15)
    finally:
        stop.set()
        loop.join(5)
        pub.close(timeout=2)
        rx.stop()
    rollback = next(x for x in rx.reports if x["kind"] == "faults")["data"]
    assert rollback["event"] == "rollback" and rollback["section"] == "timer" and rollback["faults"] >= 3
    timer_events = [e["event"] for e in rt.events if e.get("section") == "timer"]
    # good swapped in, faulty swapped in, (detached by the kernel after its faults,) rolled back
    assert timer_events.count("replaced") == 3 and timer_events[-1] == "replaced"


def test_the_manifests_remote_list_limits_remote_map_updates(tmp_path):
    node = Node("rx_filter", seed=2)
    rt = node.build()
    rt.apps[0].manifest.remote = ["limits"]      # as `"remote": ["limits"]` in app.json
    handler = CommandHandler(RuntimeTarget(rt), "gw", KEY, tmp_path / "c.json")
    body = make_command("gw", "map_update", counter=1, map="blocklist", key=99, value=1)
    reply = handler.handle(sign_command(KEY, body))
    assert reply["reason"] == "map 'blocklist' may not be changed remotely (the manifest allows: limits)"
    assert node.map("blocklist").keys() == []
