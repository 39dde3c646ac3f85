"""Perf event arrays (bpf_perf_event_output) and ring buffers reach Python: poll(callback) and
open_ring_buffer/open_perf_buffer callbacks while the node runs, and `simulate --events-out`."""

import json
import shutil
import struct

import pytest

from conftest import REPO
from iotbpf import IotbpfError, Node
from iotbpf.ebpf import types as T
from iotbpf.ebpf.maps import create_map

APP = REPO / "tests" / "c" / "events_app"


@pytest.fixture
def events_app(clang, tmp_path):
    app = tmp_path / "events_app"
    shutil.copytree(APP, app)
    clang.compile(app / "events_app.c", out=app / "events_app.o")
    return app


def test_poll_hands_over_every_record_once(events_app):
    node = Node(events_app)
    node.simulate("5m")
    samples, records = [], []
    assert node.maps["pev"].poll(lambda cpu, data: samples.append((cpu, data))) == 4
    assert node.maps["rb"].poll(records.append) == 4
    assert [struct.unpack("<QI", d[:12]) for _c, d in samples] == [(60e9 * i, i) for i in range(1, 5)]
    assert {c for c, _d in samples} == {0}
    assert [struct.unpack("<QI", d[:12])[1] for d in records] == [10, 20, 30, 40]
    assert node.maps["pev"].poll(samples.append) == 0  # consumed


def test_open_buffers_deliver_while_the_node_runs(events_app):
    node = Node(events_app)
    seen = []
    rt = node.build()
    node.maps["rb"].open_ring_buffer(lambda data: seen.append(("rb", rt.clock.now_ns(), data[8])))
    node.maps["pev"].open_perf_buffer(lambda cpu, data: seen.append(("pev", rt.clock.now_ns(), data[8])))
    node.simulate("3m")
    assert seen == [("pev", 60_000_000_000, 1), ("rb", 60_000_000_000, 10),
                    ("pev", 120_000_000_000, 2), ("rb", 120_000_000_000, 20)]


def test_poll_refuses_other_maps(events_app):
    node = Node(events_app)
    node.build()
    with pytest.raises(IotbpfError, match="not a ring buffer"):
        node.maps["iot_policy"].poll(print)


def test_full_perf_buffer_counts_lost_samples():
    m = create_map(T.MapSpec("p", T.BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 2, 0))
    n = 0
    while m.output(T.BPF_F_CURRENT_CPU, bytes(1000)) == 0:
        n += 1
    assert n == 32  # 8 pages of 1008-byte samples
    assert m.output(1, b"x") == 0 and m.output(2, b"x") == -T.E2BIG
    assert m.take_lost() == {0: 1}
    assert m.consume()[-1] == (1, b"x")


def test_simulate_events_out_writes_json_lines(events_app, cli, tmp_path):
    out = tmp_path / "events.jsonl"
    r = cli("simulate", str(events_app), "--duration", "3m", "--events-out", str(out))
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(row["map"], row["t_ns"], row.get("cpu")) for row in rows] == [
        ("pev", 60_000_000_000, 0), ("rb", 60_000_000_000, None),
        ("pev", 120_000_000_000, 0), ("rb", 120_000_000_000, None)]
    assert bytes.fromhex(rows[1]["data"])[8] == 10


def test_node_events_out_on_the_real_clock(events_app, cli, tmp_path):
    manifest = events_app / "app.json"
    manifest.write_text(manifest.read_text().replace('"period": "1m"', '"period": "300ms"'))
    out = tmp_path / "events.jsonl"
    r = cli("node", str(events_app), "--platform", "linux", "--duration", "1s", "--events-out", str(out))
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {row["map"] for row in rows} == {"pev", "rb"}
    counts = [bytes.fromhex(row["data"])[8] for row in rows if row["map"] == "rb"]
    assert counts == [10 * (i + 1) for i in range(len(counts))] and counts
