"""Nothing lost, duplicates dropped: network cut, mosquitto_broker restart, node process killed, mid-run."""

from __future__ import annotations

import signal
import threading
import time

from report.report_helpers import TcpProxy, start_node_process

from iotbpf.report.mqtt import Publisher, Receiver
from iotbpf.report.outbox import Deduplicator, Outbox

FAST = {"keepalive": 1, "reconnect_min": 0.1, "reconnect_max": 0.4}


def _persistent_receiver(mosquitto_broker, name="ops") -> Receiver:
    rx = Receiver(mosquitto_broker.url, client_id="iotbpf-test-" + name, persistent=True, **FAST).start()
    assert rx.wait_connected(10)
    return rx


def _seqs(rx: Receiver, node: str) -> list[int]:
    return sorted(r["seq"] for r in rx.reports if r["node"] == node)


def _publish_in_background(pub: Publisher, count: int, interval: float, progress: list) -> threading.Thread:
    def run():
        for i in range(count):
            progress.append(pub.report("energy", {"power_w": 0.01, "energy_j": float(i)}, ts_ns=i * 10**9))
            time.sleep(interval)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_outbox_allocates_sequence_numbers_durably(tmp_path):
    box = Outbox(tmp_path / "o.db")
    ids = [box.append("t", lambda s: b"%d" % s, "n") for _ in range(3)]
    assert [seq for _, seq in ids] == [1, 2, 3]
    box.ack([ids[0][0]])
    stream = box.stream
    box.close()
    again = Outbox(tmp_path / "o.db")
    assert (again.stream, again.last_seq("n"), again.count()) == (stream, 3, 2)
    assert [r.payload for r in again.pending()] == [b"2", b"3"]
    assert again.append("t", lambda s: b"x", "n")[1] == 4
    assert Outbox(tmp_path / "other.db").stream != stream


def test_deduplicator_handles_out_of_order_redelivery():
    d = Deduplicator()
    assert [d.accept("n", "s", s) for s in (1, 2, 4, 2, 3, 4, 5, 1)] == [
        True, True, True, False, True, False, True, False]
    assert d.duplicates == 3
    assert d.accept("n", "other-stream", 1) and d.accept("m", "s", 1)
    assert d.missing("n", "s", 7) == [6, 7]


def test_network_cut_loses_nothing(mosquitto_broker, tmp_path):
    """PUBACKs blackholed (the mosquitto_broker has the reports, the node does not know), then a hard cut."""
    proxy = TcpProxy(mosquitto_broker.port)
    proxy.start()
    rx = _persistent_receiver(mosquitto_broker)
    pub = Publisher(proxy.url, "cut", tmp_path / "o.db", clock="virtual", **FAST).start()
    progress: list[int] = []
    try:
        assert pub.wait_connected(10)
        thread = _publish_in_background(pub, 90, 0.02, progress)
        _wait(lambda: len(progress) >= 20, 10)
        proxy.blackhole(up=False, down=True)        # acknowledgements vanish
        _wait(lambda: len(progress) >= 40, 10)
        proxy.stop()                               # the cable is pulled
        _wait(lambda: len(progress) >= 60, 10)
        assert not pub.connected and pub.pending() >= 20
        proxy.start()                              # and plugged back in
        thread.join(20)
        assert pub.flush(20)
        assert rx.wait_for(lambda r: len(_seqs(r, "cut")) >= 90, 20)
    finally:
        pub.close(timeout=1)
        rx.stop()
        proxy.stop()
    assert _seqs(rx, "cut") == list(range(1, 91))
    # Reports the mosquitto_broker had but whose acknowledgements were lost were sent again and dropped.
    assert rx.duplicates >= 1
    assert pub.connects >= 2


def test_broker_restart_loses_nothing(mosquitto_broker, tmp_path):
    rx = _persistent_receiver(mosquitto_broker)
    pub = Publisher(mosquitto_broker.url, "restart", tmp_path / "o.db", clock="virtual", **FAST).start()
    progress: list[int] = []
    try:
        assert pub.wait_connected(10)
        thread = _publish_in_background(pub, 80, 0.02, progress)
        _wait(lambda: len(progress) >= 20, 10)
        mosquitto_broker.stop()
        _wait(lambda: len(progress) >= 45, 10)
        assert pub.pending() >= 10
        mosquitto_broker.start()
        thread.join(20)
        assert pub.flush(20)
        assert rx.wait_for(lambda r: len(_seqs(r, "restart")) >= 80, 20)
    finally:
        pub.close(timeout=1)
        rx.stop()
    assert _seqs(rx, "restart") == list(range(1, 81))


def test_persistent_subscriber_gets_what_was_sent_while_it_was_away(mosquitto_broker, tmp_path):
    rx = _persistent_receiver(mosquitto_broker, "away")
    rx.stop()
    pub = Publisher(mosquitto_broker.url, "away", tmp_path / "o.db", **FAST).start()
    for i in range(10):
        pub.report("battery", {"soc_percent": 100.0 - i, "lifetime_days": None})
    assert pub.flush(10)
    mosquitto_broker.restart()         # the queued session survives a mosquitto_broker restart too
    pub.close(timeout=1)
    back = _persistent_receiver(mosquitto_broker, "away")
    try:
        assert back.wait_for(lambda r: len(_seqs(r, "away")) == 10, 10)
    finally:
        back.stop()
    assert [r["data"]["soc_percent"] for r in sorted(back.reports, key=lambda r: r["seq"])] == [
        100.0 - i for i in range(10)]


def test_killed_node_process_resumes_its_outbox(mosquitto_broker, tmp_path):
    rx = _persistent_receiver(mosquitto_broker)
    outbox = tmp_path / "node.db"
    proc = start_node_process(mosquitto_broker.url, "phoenix", outbox, 100000, 0.01)
    try:
        seqs = _read_seqs(proc, 20)
        mosquitto_broker.stop()        # reports keep going into the outbox only
        seqs += _read_seqs(proc, 20)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    box = Outbox(outbox)
    stranded, last = box.count(), box.last_seq("phoenix")
    box.close()
    # the broker may still acknowledge a report or two in flight as it stops; what matters is that
    # the outage stranded reports in the outbox and that all of them arrive later (checked below)
    assert stranded >= 10 and last >= seqs[-1]
    mosquitto_broker.start()
    again = start_node_process(mosquitto_broker.url, "phoenix", outbox, 15, 0.01)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert "flushed" in out
    final = int(out.split("seq ")[-1].split()[0])
    assert final == last + 15
    try:
        assert rx.wait_for(lambda r: len(_seqs(r, "phoenix")) >= final, 20)
    finally:
        rx.stop()
    assert _seqs(rx, "phoenix") == list(range(1, final + 1))
    assert Outbox(outbox).count() == 0


def _read_seqs(proc, n: int) -> list[int]:
    seqs = []
    while len(seqs) < n:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        if line.startswith("seq "):
            seqs.append(int(line.split()[1]))
    return seqs


def test_a_damaged_or_foreign_outbox_is_a_clear_error(tmp_path):
    import sqlite3

    import pytest

    from iotbpf.ebpf.errors import IotbpfError

    (tmp_path / "junk.db").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(IotbpfError, match="outbox .*junk.db"):
        Outbox(tmp_path / "junk.db")
    Outbox(tmp_path / "v.db").close()
    db = sqlite3.connect(tmp_path / "v.db")
    db.execute("UPDATE meta SET value = '9' WHERE key = 'version'")
    db.commit()
    db.close()
    with pytest.raises(IotbpfError, match="has version 9; this iotbpf reads version 1"):
        Outbox(tmp_path / "v.db")
