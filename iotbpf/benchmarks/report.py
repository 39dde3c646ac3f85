"""`iotbpf bench report`: reports per second through the durable outbox (synchronous NORMAL and FULL)
vs plain paho publishing, against a throwaway local mosquitto (docs/mqtt.md).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from iotbpf.ebpf.errors import RuntimeFailure
from iotbpf.report.mqtt import Publisher, make_payload
from iotbpf.report.outbox import Outbox

DATA = {"soc_percent": 87.25, "lifetime_days": 412.5, "voltage_v": 3.0, "power_w": 0.0123}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Broker:
    def __init__(self, folder: str):
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto")
                                               else None)
        if binary is None:
            raise RuntimeFailure("mosquitto not found: the report benchmark needs a local broker")
        self.port = _free_port()
        config = os.path.join(folder, "mosquitto.conf")
        with open(config, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 0\n" % self.port)
        self.process = subprocess.Popen([binary, "-c", config], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeFailure("mosquitto did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _plain_paho(port: int, count: int) -> float:
    """Seconds to publish ``count`` QoS 1 reports with paho alone and get every PUBACK."""
    done = threading.Event()
    acked = [0]

    def on_publish(client, userdata, mid, reason_code, properties):
        acked[0] += 1
        if acked[0] == count:
            done.set()

    connected = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-plain")
    client.on_publish = on_publish
    client.on_connect = lambda *a: connected.set()
    client.max_inflight_messages_set(64)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        if not connected.wait(10):
            raise RuntimeFailure("benchmark client could not connect")
        start = time.perf_counter()
        for seq in range(1, count + 1):
            payload = make_payload("bench", "battery", "plain", seq, seq * 10**9, "virtual", DATA)
            client.publish("iotbpf/bench-plain/battery", payload, qos=1)
        if not done.wait(120):
            raise RuntimeFailure("plain paho: only %d of %d acknowledged" % (acked[0], count))
        return time.perf_counter() - start
    finally:
        client.loop_stop()
        client.disconnect()


def _durable(port: int, count: int, folder: str, synchronous: str) -> float:
    """Seconds to report ``count`` times through the outbox and have every report acknowledged."""
    outbox = Outbox(os.path.join(folder, "bench-%s.db" % synchronous), synchronous=synchronous)
    pub = Publisher("mqtt://127.0.0.1:%d" % port, "bench-" + synchronous.lower(), outbox, clock="virtual",
                    discovery=False).start()
    try:
        if not pub.wait_connected(10):
            raise RuntimeFailure("benchmark publisher could not connect")
        start = time.perf_counter()
        for seq in range(1, count + 1):
            pub.report("battery", DATA, ts_ns=seq * 10**9)
        if not pub.flush(120):
            raise RuntimeFailure("durable publisher: %d reports not acknowledged" % pub.pending())
        return time.perf_counter() - start
    finally:
        pub.close(timeout=2)
        outbox.close()


def run(quick: bool = False) -> list[dict]:
    count = 300 if quick else 3000
    with tempfile.TemporaryDirectory(prefix="iotbpf-bench-report-") as folder:
        broker = _Broker(folder)
        try:
            _plain_paho(broker.port, min(count, 200))   # warm up the broker and the client code
            plain = _plain_paho(broker.port, count)
            normal = _durable(broker.port, count, folder, "NORMAL")
            full = _durable(broker.port, count, folder, "FULL")
        finally:
            broker.stop()
    note = "%d QoS 1 reports, first publish to last PUBACK, local mosquitto" % count
    return [
        {"name": "plain paho publish (no outbox)", "value": count / plain, "unit": "reports/s", "note": note},
        {"name": "durable outbox, sqlite synchronous=NORMAL", "value": count / normal, "unit": "reports/s",
         "note": note},
        {"name": "durable outbox, sqlite synchronous=FULL", "value": count / full, "unit": "reports/s",
         "note": note},
        {"name": "outbox NORMAL / plain paho", "value": plain / normal, "unit": "ratio",
         "note": "throughput ratio (1.0 = no cost)"},
        {"name": "outbox FULL / plain paho", "value": plain / full, "unit": "ratio",
         "note": "throughput ratio (1.0 = no cost)"},
    ]
