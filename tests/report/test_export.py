"""The report schema family: every producer's document validates against its shipped JSON Schema,
series have one length, --json is --report, CSV loads into pandas with typed columns."""

from __future__ import annotations

import json

import jsonschema
import pytest

from iotbpf.ebpf.errors import IotbpfError, LoadError
from iotbpf.report.export import Recorder, csv_table, load_report, sidecar_path, write_report
from iotbpf.report.schema import KINDS, load_schema, validate

pd = pytest.importorskip("pandas")

H = 3600 * 10**9


def _record() -> dict:
    """Three hours: the radio listens 1 h, transmits 1 h, sleeps 1 h; the CPU is awake a tenth of the time."""
    rec = Recorder({"node": "n1", "app": "sensor_node", "board": "nrf52840_dk", "policy": "batching"})
    radio_ns = {"off": 0, "rx": 0, "tx": 0}
    radio_j = cpu_j = 0.0
    plan = [("rx", 0.018), ("tx", 0.030), ("off", 0.0)]   # W while in that state
    rec.sample(0, {"radio": {"energy_j": 0.0, "states_ns": dict(radio_ns)},
                   "cpu": {"energy_j": 0.0, "states_ns": {"sleep": 0, "run": 0}}},
               soc_percent=100.0, time_to_empty_s=None, apps={"sensor_node": 0.0, "system": 0.0})
    for hour, (state, watts) in enumerate(plan, start=1):
        radio_ns[state] += H
        radio_j += watts * 3600
        cpu_j += 0.003 * 3600
        rec.sample(hour * H, {"radio": {"energy_j": radio_j, "states_ns": dict(radio_ns)},
                              "cpu": {"energy_j": cpu_j, "states_ns": {"sleep": hour * H * 9 // 10,
                                                                       "run": hour * H // 10}}},
                   soc_percent=100.0 - 10 * hour, time_to_empty_s=(10 - hour) * 3600.0,
                   apps={"sensor_node": radio_j, "system": cpu_j})
    rec.event(H // 2, "radio burst", 5 * 10**6, "sensor_node", "1 packet")
    return rec.report()


def _schema_ok(doc: dict) -> None:
    """The shipped schema accepts it (jsonschema directly), and so does validate() (plus one length)."""
    kind = doc["schema"][len("iotbpf."):]
    jsonschema.Draft202012Validator(load_schema(kind)).validate(doc)
    assert validate(doc) == kind


def test_recorder_series_are_one_length_columns():
    doc = _record()
    s = doc["series"]
    assert {len(v) for v in s.values()} == {4}
    assert s["t_s"] == [0.0, 3600.0, 7200.0, 10800.0] and s["t_ns"] == [0, H, 2 * H, 3 * H]
    assert s["power_w.radio"][0] is None and s["power_w.radio"][1:] == pytest.approx([0.018, 0.030, 0.0])
    # without per-state energy the state held longest wins
    assert s["state.radio"] == [None, "rx", "tx", "off"] and s["state.cpu"][1:] == ["sleep"] * 3
    assert s["duty_percent.radio"][1:] == [100.0, 100.0, 0.0] and s["duty_percent.cpu"][1:] == [10.0] * 3
    assert doc["components"]["radio"]["states"]["tx"] == {"time_s": 3600.0, "time_ns": H}
    assert doc["totals"]["duty_cycle_percent"] == {"cpu": 10.0, "radio": pytest.approx(200 / 3)}
    assert doc["battery"] == {"soc_percent": 70.0, "time_to_empty_s": 7 * 3600.0, "lifetime_s": 10 * 3600.0,
                              "died_s": None}
    assert doc["events"] == [{"t_s": 1800.0, "t_ns": H // 2, "kind": "radio burst", "duration_s": 0.005,
                              "app": "sensor_node", "detail": "1 packet"}]
    frame = pd.DataFrame(s)
    assert len(frame) == 4 and frame["power_w.radio"].dtype.kind == "f"
    _schema_ok(doc)


def test_recorder_thins_without_losing_energy():
    rec = Recorder(max_samples=50)
    for i in range(1001):
        rec.sample(i * 10**9, {"cpu": {"energy_j": 0.5 * i, "states_ns": {"on": i * 10**9}}})
    r = rec.report()
    assert len(r["series"]["t_s"]) <= 51 and r["series"]["t_s"][-1] == 1000.0
    assert r["components"]["cpu"]["energy_j"] == 500.0
    assert all(p == pytest.approx(0.5) for p in r["series"]["power_w.cpu"][1:])
    with pytest.raises(ValueError):
        rec.sample(0, {})
    with pytest.raises(IotbpfError, match="no samples"):
        Recorder().report()


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    """One document of every kind, from the real producers (the CLI)."""
    from iotbpf.cli import main

    folder = tmp_path_factory.mktemp("docs")
    runs = {
        "node-result": ["simulate", "sensor_node", "--duration", "1d", "--samples", "24"],
        "comparison": ["simulate", "sensor_node", "--duration", "3d", "--samples", "24", "--compare",
                       "always_on,batching"],
        "fleet": ["simulate", "sensor_node", "--fleet", "3", "--duration", "2d", "--backend", "inprocess"],
        "monitor": ["monitor", "--interval", "200ms", "--duration", "400ms"],
    }
    from conftest import shared_dir

    data = shared_dir()
    if data is not None:
        runs["app-usage"] = ["monitor", "--android-checkin", str(data / "data" / "batterystats_checkin_emulator.txt"),
                             "--power-profile", str(data / "data" / "power_profile_sample.xml")]
    out = {}
    for kind, argv in runs.items():
        path = folder / (kind + ".json")
        assert main(argv + ["--report", str(path)]) == 0, kind
        out[kind] = load_report(path)
    return folder, runs, out


def test_every_producer_validates_against_its_shipped_schema(documents):
    _folder, _runs, docs = documents
    for doc in docs.values():
        _schema_ok(doc)
    comparison = docs["comparison"]
    for node in comparison["nodes"].values():
        _schema_ok(node)
    if "app-usage" not in docs:
        from conftest import missing

        missing("shared data folder (the Android dump for the app-usage producer; set IOTBPF_SHARED)")
    assert set(docs) == set(KINDS)


def test_json_and_report_give_the_same_document(documents, cli):
    folder, runs, docs = documents
    for kind in ("node-result", "comparison"):
        r = cli(*runs[kind], "--json")
        assert r.code == 0, r.err
        assert json.loads(r.out) == docs[kind], kind


def test_compare_tells_the_truth_about_a_battery_that_died(documents):
    doc = documents[2]["comparison"]
    rows = {r["policy"]: r for r in doc["policies"]}
    dead, alive = rows["always_on"], rows["batching"]
    assert dead["died_s"] is not None and 1 * 86400 < dead["died_s"] < 2 * 86400
    assert dead["duration_s"] == pytest.approx(dead["died_s"], abs=1) and dead["lifetime_s"] == dead["died_s"]
    assert alive["died_s"] is None and alive["duration_s"] == pytest.approx(3 * 86400)
    # the ratio is of average power, and the average power is the energy over the policy's own span
    assert dead["avg_power_w"] == pytest.approx(dead["energy_j"] / dead["duration_s"])
    oracle = rows["oracle"]
    assert dead["power_ratio_to_oracle"] == pytest.approx(dead["avg_power_w"] / oracle["avg_power_w"], rel=1e-3)
    # one series per policy, each to its own end
    ends = {p: n["series"]["t_s"][-1] for p, n in doc["nodes"].items()}
    assert ends["always_on"] == pytest.approx(dead["died_s"], abs=3 * 3600) and ends["batching"] == 3 * 86400
    assert doc["nodes"]["always_on"]["meta"]["policy"] == "always_on"


def test_every_csv_loads_into_pandas_with_typed_columns(documents, tmp_path):
    _folder, _runs, docs = documents
    for kind, doc in docs.items():
        path = write_report(doc, tmp_path / (kind + ".csv"))
        frame = pd.read_csv(path)
        meta = json.loads(open(sidecar_path(path)).read())
        assert meta["schema"] == doc["schema"] and meta["csv"]["file"] == kind + ".csv"
        types = {c["name"]: c["type"] for c in meta["csv"]["columns"]}
        assert list(frame.columns) == list(types)
        for name, kind_of_column in types.items():
            if kind_of_column in ("number", "integer"):
                assert frame[name].dtype.kind in "fi", (kind, name, frame[name].dtype)
        assert any(t in ("number", "integer") for t in types.values())
    fleet = pd.read_csv(tmp_path / "fleet.csv")
    assert {"index", "name", "policy", "seed", "energy_j", "lifetime_s", "died_s"} <= set(fleet.columns)
    assert len(fleet) == 3
    comparison = pd.read_csv(tmp_path / "comparison.csv")
    ends = dict(zip(comparison["policy"], comparison["duration_s"]))
    assert ends["always_on"] < ends["batching"]      # one end time per policy


def test_fleet_rows_carry_their_varied_parameters(tmp_path, cli):
    spec = {"version": 1, "name": "vary", "seed": 1, "duration": "1d",
            "groups": [{"count": 2, "app": "sensor_node", "board": "nrf52840_dk",
                        "vary": {"sampling_period": {"min": 30, "max": 120}}}]}
    (tmp_path / "f.json").write_text(json.dumps(spec))
    r = cli("simulate", "--fleet", tmp_path / "f.json", "--backend", "inprocess", "--report", tmp_path / "f.csv")
    assert r.code == 0, r.err
    frame = pd.read_csv(tmp_path / "f.csv")
    drawn = list(frame["param.sampling_period"])
    assert frame["param.sampling_period"].dtype.kind == "f" and all(30 <= p <= 120 for p in drawn)
    assert len(set(drawn)) == 2   # each row its own draw


def test_bad_documents_are_clear_errors(tmp_path):
    doc = _record()
    with pytest.raises(IotbpfError, match=r"\.json or \.csv"):
        write_report(doc, tmp_path / "r.txt")
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(LoadError, match="not JSON"):
        load_report(tmp_path / "x.json")
    (tmp_path / "v.json").write_text(json.dumps(dict(doc, version=9)))
    with pytest.raises(LoadError, match="version 9"):
        load_report(tmp_path / "v.json")
    short = json.loads(json.dumps(doc))
    short["series"]["power_w.radio"].pop()
    (tmp_path / "b.json").write_text(json.dumps(short))
    with pytest.raises(LoadError, match="power_w.radio has 3 values, t_s has 4"):
        load_report(tmp_path / "b.json")
    wrong = json.loads(json.dumps(doc))
    wrong["battery"]["soc_percent"] = "full"
    with pytest.raises(LoadError, match="battery/soc_percent"):
        validate(wrong)
    with pytest.raises(LoadError, match="cannot read"):
        load_report(tmp_path / "missing.json")


def test_csv_table_of_a_node_result_is_its_series():
    doc = _record()
    columns, rows, rest = csv_table(doc)
    assert [c[0] for c in columns][:4] == ["t_s", "t_ns", "soc_percent", "time_to_empty_s"]
    units = {c[0]: c[1] for c in columns}
    assert units["power_w.radio"] == "W" and units["t_ns"] == "ns" and units["soc_percent"] == "%"
    assert len(rows) == 4 and "series" not in rest and rest["components"] == doc["components"]


def test_schema_command_lists_prints_and_checks(cli, tmp_path):
    r = cli("schema")
    assert r.code == 0 and all(k in r.out for k in KINDS)
    r = cli("schema", "fleet")
    assert r.code == 0 and json.loads(r.out)["properties"]["schema"] == {"const": "iotbpf.fleet"}
    write_report(_record(), tmp_path / "r.json")
    r = cli("schema", "--validate", tmp_path / "r.json")
    assert r.code == 0 and "valid iotbpf.node-result version 2" in r.out
    (tmp_path / "bad.json").write_text(json.dumps({"schema": "iotbpf.fleet", "version": 2}))
    r = cli("schema", "--validate", tmp_path / "bad.json")
    assert r.code == 2 and r.err.startswith("error: report") and "required" in r.err


def test_app_usage_documents_for_phones_validate_and_render(tmp_path):
    """The member iotbpf.report.apps (per-app phone usage) produces: apps, plus screen/wakelock events."""
    from iotbpf.report.export import app_usage_document
    from iotbpf.report.html import render

    doc = app_usage_document([{"app": "maps", "uid": 10061, "energy_j": 12.5, "screen_s": 600.0, "wakelock_s": 5.0},
                              {"app": "mail", "uid": 10062, "energy_j": 0.75, "wakeups": 40}],
                             "usage trace", 3600.0, clock="virtual", simulated=True, device="phone",
                             events=[{"t_s": 10.0, "kind": "screen on", "duration_s": 600.0, "app": None},
                                     {"t_s": 100.0, "kind": "wakelock", "duration_s": 5.0, "app": "maps"}])
    _schema_ok(doc)
    frame = pd.read_csv(write_report(doc, tmp_path / "apps.csv"))
    assert list(frame["app"]) == ["maps", "mail"] and frame["energy_j"].dtype.kind == "f"
    page = render(doc)
    assert "<h2>Timeline</h2>" in page and "wakelock" in page and "screen on" in page


def test_monitor_report_csv_is_a_csv(cli, tmp_path):
    r = cli("monitor", "--interval", "200ms", "--duration", "400ms", "--report", tmp_path / "m.csv")
    assert r.code == 0, r.err
    frame = pd.read_csv(tmp_path / "m.csv")
    assert {"app", "energy_j", "cpu_s", "wakeups"} <= set(frame.columns) and frame["energy_j"].dtype.kind == "f"
    assert json.loads((tmp_path / "m.meta.json").read_text())["schema"] == "iotbpf.monitor"
