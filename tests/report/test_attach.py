"""Reporting attached to a real simulated node: files, plots and MQTT, without changing the run."""

from __future__ import annotations

import argparse

import pytest

from iotbpf.api import Node
from iotbpf.ebpf.errors import IotbpfError, RuntimeFailure
from iotbpf.report.attach import add_arguments, attach
from iotbpf.report.export import load_report
from iotbpf.report.mqtt import Receiver

DAY = 86400 * 10**9


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    for k, v in kw.items():
        setattr(args, k, v)
    return args


def test_reporting_does_not_change_the_simulation(tmp_path):
    plain = Node("sensor_node", seed=3).simulate("1d")
    node = Node("sensor_node", seed=3)
    session = attach(node, _args(report=str(tmp_path / "r.json"), plot=str(tmp_path / "r.png"), samples=48),
                     DAY)
    result = node.simulate("1d")
    written = session.finish(result)
    assert result.text() == plain.text()
    assert result.summary == plain.summary
    assert written == [str(tmp_path / "r.json"), str(tmp_path / "r.png")]
    report = load_report(tmp_path / "r.json")
    energy = plain.summary["energy"]
    # The report's totals are the scheduler's own numbers.
    assert report["totals"]["energy_j"] == pytest.approx(energy["energy_j"], rel=1e-9)
    for comp, entry in energy["components"].items():
        assert report["components"][comp]["energy_j"] == pytest.approx(entry["energy_j"], rel=1e-9, abs=1e-15)
    for app, joules in energy["apps"].items():
        assert report["apps"][app]["energy_j"] == pytest.approx(joules, rel=1e-9)
    assert report["series"]["t_s"][0] == 0.0 and report["series"]["t_s"][-1] == pytest.approx(86400, abs=60)
    assert 40 <= len(report["series"]["t_s"]) <= 50
    assert report["meta"]["app"] == "sensor_node" and report["meta"]["board"] == energy["board"]
    assert report["battery"]["lifetime_s"] == pytest.approx(energy["lifetime_days"] * 86400, rel=0.05)
    # The CPU wakes every minute, so every interval reached its run state (the first row has no interval).
    assert report["series"]["state.cpu"][0] is None and set(report["series"]["state.cpu"][1:]) == {"run"}


def test_bad_reporting_options_are_clear_errors(tmp_path):
    node = Node("sensor_node")
    with pytest.raises(IotbpfError, match="--report file must end in .json or .csv"):
        attach(node, _args(report=str(tmp_path / "r.txt")), DAY)
    with pytest.raises(IotbpfError, match="--plot file must end"):
        attach(node, _args(plot=str(tmp_path / "r.jpg")), DAY)
    with pytest.raises(IotbpfError, match="bad MQTT URL"):
        attach(node, _args(mqtt="tcp://x"), DAY)
    assert attach(node, _args(), DAY) is None


def test_simulation_reports_over_mqtt(mosquitto_broker, tmp_path):
    rx = Receiver(mosquitto_broker.url, keepalive=2, reconnect_min=0.1).start()
    assert rx.wait_connected(10)
    node = Node("sensor_node", seed=1)
    session = attach(node, _args(mqtt=mosquitto_broker.url, node_name="sim-1", outbox=str(tmp_path / "o.db"),
                                 samples=20), DAY)
    session.finish(node.simulate("1d"))
    try:
        assert rx.wait_for(lambda r: len(r.reports) >= 3 * 21, 15)
    finally:
        rx.stop()
    kinds = {k: [r for r in rx.reports if r["kind"] == k] for k in ("battery", "energy", "apps")}
    assert all(len(v) >= 20 for v in kinds.values())
    battery = kinds["battery"][-1]
    assert battery["clock"] == "virtual" and battery["node"] == "sim-1"
    assert 99 < battery["data"]["soc_percent"] <= 100 and battery["data"]["lifetime_days"] > 100
    assert battery["ts_ns"] == pytest.approx(DAY, abs=120 * 10**9)
    assert kinds["energy"][-1]["data"]["energy_j"] > kinds["energy"][1]["data"]["energy_j"] > 0
    assert set(kinds["apps"][-1]["data"]["apps"]) >= {"sensor_node", "system"}
    assert rx.nodes["sim-1"].status == "offline"


def test_unreachable_broker_fails_after_writing_files(tmp_path):
    from conftest import free_port

    node = Node("sensor_node", seed=1)
    args = _args(mqtt="mqtt://127.0.0.1:%d" % free_port(), node_name="lost", outbox=str(tmp_path / "o.db"),
                 report=str(tmp_path / "r.csv"), samples=4)
    session = attach(node, args, DAY)
    with pytest.raises(RuntimeFailure, match="reports kept in .*o.db for the next run"):
        session.finish(node.simulate("1d"), flush_timeout=0.5)
    assert (tmp_path / "r.csv").read_text().startswith("t_s,t_ns,soc_percent,")
    assert (tmp_path / "r.meta.json").exists()
