"""`iotbpf listen` and `iotbpf plot` through the real CLI."""

from __future__ import annotations

import json

import pytest

from iotbpf.report.export import Recorder, write_report
from iotbpf.report.mqtt import Publisher

FAST = {"keepalive": 2, "reconnect_min": 0.1, "reconnect_max": 0.5}


def test_listen_shows_nodes_and_saves_reports(cli, mosquitto_broker, tmp_path):
    # A first, short listen creates the persistent session; reports sent while away arrive later.
    r = cli("listen", mosquitto_broker.url, "--client-id", "ops-1", "--duration", "300ms", "--json")
    assert r.code == 0, r.err
    for node, soc in (("field-1", 81.5), ("field-2", 42.0), ("lab-1", 10.0)):
        pub = Publisher(mosquitto_broker.url, node, tmp_path / (node + ".db"), **FAST).start()
        pub.report("battery", {"soc_percent": soc, "lifetime_days": soc * 2})
        pub.report("energy", {"power_w": 0.0025, "energy_j": 1.0})
        assert pub.flush(10)
        pub.close()
    save = tmp_path / "seen.jsonl"
    r = cli("listen", mosquitto_broker.url, "--client-id", "ops-1", "--nodes", "field-*", "--duration", "1s",
            "--save", save, "--json")
    assert r.code == 0, r.err
    table = json.loads(r.out)
    rows = {n["node"]: n for n in table["nodes"]}
    assert set(rows) == {"field-1", "field-2"}
    assert (rows["field-1"]["soc_percent"], rows["field-1"]["lifetime_days"], rows["field-1"]["power_w"]) == (
        81.5, 163.0, 0.0025)
    assert rows["field-2"]["status"] == "offline" and rows["field-2"]["reports"] == 2
    saved = [json.loads(line) for line in save.read_text().splitlines()]
    assert {s["topic"] for s in saved} >= {"iotbpf/field-1/battery", "iotbpf/field-2/energy"}
    assert not any(s["topic"].startswith("iotbpf/lab-1") for s in saved)
    # Without --json the table is printed as text.
    r = cli("listen", mosquitto_broker.url, "--duration", "500ms")
    assert r.code == 0 and r.out.splitlines()[0].split()[:4] == ["node", "status", "battery", "power"]


def test_listen_errors(cli):
    from conftest import free_port

    r = cli("listen", "http://broker")
    assert (r.code, r.err) == (2, "error: bad MQTT URL 'http://broker': scheme must be mqtt:// or mqtts://, "
                                  "not http://\n")
    r = cli("listen", "mqtt://127.0.0.1:%d" % free_port(), "--connect-timeout", "500ms")
    assert r.code == 1 and r.err.startswith("error: cannot reach MQTT broker")
    r = cli("listen", "mqtt://h", "--duration", "soon")
    assert r.code == 2 and r.err.startswith("error: ")


def _report(tmp_path):
    rec = Recorder({"node": "n1"})
    for i in range(4):
        rec.sample(i * 60 * 10**9, {"cpu": {"energy_j": 0.01 * i, "states_ns": {"run": i * 10**9}}},
                   soc_percent=100 - i, time_to_empty_s=600.0, apps={"a": 0.01 * i})
    return write_report(rec.report(), tmp_path / "run.json")


def test_plot_replots_a_saved_report(cli, tmp_path):
    path = _report(tmp_path)
    r = cli("plot", path)
    assert r.code == 0, r.err
    assert r.out.strip() == str(tmp_path / "run.png") and (tmp_path / "run.png").stat().st_size > 10000
    r = cli("plot", path, "--plot-dir", tmp_path / "p", "--view", "power", "--view", "soc")
    assert r.code == 0
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["power.png", "soc.png"]


def test_plot_errors(cli, tmp_path):
    path = _report(tmp_path)
    r = cli("plot", path, "--view", "policies")
    assert (r.code, r.err) == (2, "error: the report has no data for: policies\n")
    (tmp_path / "bad.json").write_text(json.dumps({"schema": "iotbpf.node-result", "version": 7}))
    r = cli("plot", tmp_path / "bad.json")
    assert r.code == 2 and "version 7 is not supported" in r.err
    (tmp_path / "old.json").write_text(json.dumps({"schema": "iotbpf.energy-report", "version": 1}))
    r = cli("plot", tmp_path / "old.json")
    assert r.code == 2 and "version-1 report" in r.err
    r = cli("plot", path, "-o", tmp_path / "x.jpg")
    assert r.code == 2 and "must end in .png" in r.err
    assert "Traceback" not in r.err


def test_simulate_writes_reports_and_plots_without_changing_its_output(cli, tmp_path):
    plain = cli("simulate", "sensor_node", "--duration", "1d")
    r = cli("simulate", "sensor_node", "--duration", "1d", "--report", tmp_path / "r.json", "--plot",
            tmp_path / "r.png", "--plot-dir", tmp_path / "views", "--samples", "24")
    assert r.code == 0, r.err
    assert r.out == plain.out
    assert (tmp_path / "r.png").stat().st_size > 10000
    assert sorted(p.name for p in (tmp_path / "views").iterdir()) == ["apps.png", "duty.png", "power.png",
                                                                       "soc.png"]
    assert cli("plot", tmp_path / "r.json", "-o", tmp_path / "again.png").code == 0
    bad = cli("simulate", "sensor_node", "--duration", "1d", "--mqtt", "mqtt://h:notaport")
    assert bad.code == 2 and bad.err.startswith("error: bad MQTT URL") and bad.err.count("\n") == 1


def test_plot_what_listen_saved(cli, mosquitto_broker, tmp_path):
    from iotbpf.report.export import load_report, report_from_saved

    url = mosquitto_broker.url
    assert cli("listen", url, "--client-id", "ops-2", "--duration", "300ms").code == 0
    r = cli("simulate", "sensor_node", "--duration", "1d", "--samples", "12", "--mqtt", url, "--node-name",
            "field-9", "--outbox", tmp_path / "o.db", "--report", tmp_path / "sim.json")
    assert r.code == 0, r.err
    assert cli("listen", url, "--client-id", "ops-2", "--duration", "1s", "--save", tmp_path / "seen.jsonl").code == 0
    saved = report_from_saved(tmp_path / "seen.jsonl")
    sim = load_report(tmp_path / "sim.json")
    assert saved["meta"]["node"] == "field-9"
    assert saved["series"]["t_s"] == sim["series"]["t_s"]
    assert saved["totals"]["energy_j"] == pytest.approx(sim["totals"]["energy_j"], rel=1e-9)
    assert saved["series"]["power_w.radio"][1:] == pytest.approx(sim["series"]["power_w.radio"][1:], rel=1e-9)
    assert saved["series"]["soc_percent"] == pytest.approx(sim["series"]["soc_percent"], rel=1e-6)
    r = cli("plot", tmp_path / "seen.jsonl", "--plot-dir", tmp_path / "views")
    assert r.code == 0, r.err
    # MQTT reports carry energy per component, not time per state: no duty cycle.
    assert sorted(p.name for p in (tmp_path / "views").iterdir()) == ["apps.png", "power.png", "soc.png"]
    r = cli("plot", tmp_path / "seen.jsonl", "--node-name", "nobody")
    assert r.code == 2 and "no reports of node 'nobody' (nodes: field-9)" in r.err
