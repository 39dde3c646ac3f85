"""Issue 24, item 12: a simulation rerun (after a crash) is a new stream consumers can tell apart;
what the killed run left in the outbox keeps its own stream and is still delivered."""

from __future__ import annotations

from iotbpf.report.mqtt import Receiver, make_payload
from iotbpf.report.outbox import Outbox


def test_new_stream_keeps_waiting_reports_and_restarts_seq(tmp_path):
    box = Outbox(tmp_path / "o.db")
    first = box.stream
    for _ in range(3):
        box.append("t", lambda s: make_payload("n", "faults", first, s, 0, "virtual", {"event": "x"}), "n")
    second = box.new_stream()
    assert second != first and box.stream == second and box.last_seq("n") == 0
    assert box.append("t", lambda s: b"%d" % s, "n")[1] == 1
    assert box.count() == 4                       # the old stream's reports are still waiting
    box.close()
    again = Outbox(tmp_path / "o.db")
    assert again.stream == second and again.last_seq("n") == 1


def test_each_simulate_run_is_a_new_stream(cli, mosquitto_broker, tmp_path):
    rx = Receiver(mosquitto_broker.url, nodes="sim-*").start()
    try:
        assert rx.wait_connected(10)
        for _ in range(2):   # the rerun a crashed simulation would get
            r = cli("simulate", "sensor_node", "--duration", "1h", "--samples", "4", "--mqtt", mosquitto_broker.url,
                    "--node-name", "sim-1", "--outbox", tmp_path / "o.db")
            assert r.code == 0, r.err
        assert rx.wait_for(lambda x: len(set(rep["stream"] for rep in x.reports)) == 2, 20)
    finally:
        rx.stop()
    streams = {}
    for rep in rx.reports:
        streams.setdefault(rep["stream"], []).append((rep["seq"], rep["ts_ns"]))
    assert len(streams) == 2      # before: one stream whose time went back to 0 on the rerun
    for items in streams.values():
        items.sort()
        assert [seq for seq, _ in items] == list(range(1, len(items) + 1))
        assert [ts for _, ts in items] == sorted(ts for _, ts in items)
