"""Reports and plots: the recorder's numbers, JSON/CSV files, and what each plot really draws."""

from __future__ import annotations

import csv
import json

import pytest
from matplotlib.collections import PolyCollection
from matplotlib.image import imread

from iotbpf.ebpf.errors import IotbpfError, LoadError
from iotbpf.report.export import Recorder, csv_rows, load_report, write_report
from iotbpf.report.plots import (
    app_energy,
    app_power_timeline,
    plot_apps,
    plot_dir,
    plot_policies,
    plot_power,
    plot_report,
    plot_soc,
    plot_states,
    time_unit,
)

H = 3600 * 10**9


def _record() -> dict:
    """Three hours: the radio listens 1 h, transmits 1 h, sleeps 1 h; the CPU mostly sleeps."""
    rec = Recorder({"node": "n1", "app": "sensor_node", "board": "nrf52840_dk", "policy": "batching"})
    radio_ns = {"off": 0, "rx": 0, "tx": 0}
    radio_j = 0.0
    cpu_j = 0.0
    plan = [("rx", 0.018), ("tx", 0.030), ("off", 0.0)]   # W while in that state
    rec.sample(0, {"radio": {"energy_j": 0.0, "states_ns": dict(radio_ns)},
                   "cpu": {"energy_j": 0.0, "states_ns": {"sleep": 0, "active": 0}}},
               soc_percent=100.0, time_to_empty_s=None, apps={"sensor_node": 0.0, "system": 0.0})
    for hour, (state, watts) in enumerate(plan, start=1):
        radio_ns[state] += H
        radio_j += watts * 3600
        cpu_j += 0.003 * 3600
        rec.sample(hour * H, {"radio": {"energy_j": radio_j, "states_ns": dict(radio_ns)},
                              "cpu": {"energy_j": cpu_j, "states_ns": {"sleep": hour * H * 9 // 10,
                                                                       "active": hour * H // 10}}},
                   soc_percent=100.0 - 10 * hour, time_to_empty_s=(10 - hour) * 3600.0 * 3 / 3,
                   apps={"sensor_node": radio_j, "system": cpu_j})
    return rec.report(policies=[
        {"policy": "always_on", "energy_j": 900.0, "avg_current_a": 0.02, "lifetime_days": 10.0,
         "deadline_misses": 0, "oracle_ratio": 3.0},
        {"policy": "batching", "energy_j": 330.0, "avg_current_a": 0.007, "lifetime_days": 28.0,
         "deadline_misses": 0, "oracle_ratio": 1.1},
        {"policy": "oracle", "energy_j": 300.0, "avg_current_a": 0.006, "lifetime_days": 30.0,
         "deadline_misses": 0, "oracle_ratio": 1.0},
    ])


@pytest.fixture(scope="module")
def report():
    return _record()


def test_recorder_turns_cumulative_samples_into_interval_power_and_states(report):
    s = report["series"]
    assert s["t_s"] == [0.0, 3600.0, 7200.0, 10800.0]
    assert s["power_w"]["radio"] == pytest.approx([0.018, 0.030, 0.0])
    assert s["power_w"]["cpu"] == pytest.approx([0.003] * 3)
    assert s["state"] == {"radio": ["rx", "tx", "off"], "cpu": ["sleep"] * 3}
    assert s["soc_percent"] == [100.0, 90.0, 80.0, 70.0]
    assert report["components"]["radio"]["energy_j"] == pytest.approx(0.048 * 3600)
    assert report["components"]["radio"]["states"]["tx"] == {"time_s": 3600.0}
    assert report["apps"]["sensor_node"]["energy_j"] == pytest.approx(0.048 * 3600)
    assert report["totals"]["energy_j"] == pytest.approx(0.057 * 3600)
    assert report["totals"]["avg_power_w"] == pytest.approx(0.019)
    assert report["battery"] == {"soc_percent": 70.0, "time_to_empty_s": 7 * 3600.0,
                                 "lifetime_days": pytest.approx(10 * 3600 / 86400)}


def test_recorder_thins_without_losing_energy():
    rec = Recorder(max_samples=50)
    for i in range(1001):
        rec.sample(i * 10**9, {"cpu": {"energy_j": 0.5 * i, "states_ns": {"on": i * 10**9}}})
    r = rec.report()
    assert len(r["series"]["t_s"]) <= 51 and r["series"]["t_s"][-1] == 1000.0
    assert r["components"]["cpu"]["energy_j"] == 500.0
    assert all(p == pytest.approx(0.5) for p in r["series"]["power_w"]["cpu"])
    with pytest.raises(ValueError):
        rec.sample(0, {})
    with pytest.raises(IotbpfError, match="no samples"):
        Recorder().report()


def test_json_roundtrip_and_csv_hold_the_same_numbers(report, tmp_path):
    assert load_report(write_report(report, tmp_path / "r.json")) == json.loads(json.dumps(report))
    write_report(report, tmp_path / "r.csv")
    with open(tmp_path / "r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["section", "name", "t_start_s", "t_end_s", "value", "unit"]
    assert len(rows) == len(csv_rows(report))
    power = [(r["name"], float(r["t_start_s"]), float(r["value"])) for r in rows if r["section"] == "power"]
    assert ("radio", 3600.0, pytest.approx(0.030)) in power
    states = [r["value"] for r in rows if r["section"] == "state" and r["name"] == "radio"]
    assert states == ["rx", "tx", "off"]
    policy = {r["name"]: float(r["value"]) for r in rows if r["section"] == "policy"}
    assert policy["batching/oracle_ratio"] == 1.1 and policy["oracle/lifetime_days"] == 30.0
    apps = {r["name"]: float(r["value"]) for r in rows if r["section"] == "app_energy"}
    assert apps == {"sensor_node": pytest.approx(172.8), "system": pytest.approx(32.4)}


def test_bad_report_files_are_clear_errors(report, tmp_path):
    with pytest.raises(IotbpfError, match=r"\.json or \.csv"):
        write_report(report, tmp_path / "r.txt")
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(LoadError, match="not JSON"):
        load_report(tmp_path / "x.json")
    (tmp_path / "v.json").write_text(json.dumps(dict(report, version=9)))
    with pytest.raises(LoadError, match="version 9"):
        load_report(tmp_path / "v.json")
    broken = json.loads(json.dumps(report))
    broken["series"]["power_w"]["radio"].pop()
    (tmp_path / "b.json").write_text(json.dumps(broken))
    with pytest.raises(LoadError, match="power_w.radio must have 3 values"):
        load_report(tmp_path / "b.json")
    with pytest.raises(LoadError, match="cannot read"):
        load_report(tmp_path / "missing.json")


def test_power_plot_stacks_components_over_the_run(report):
    fig = plot_power(report)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time (h)" and ax.get_ylabel() == "power (mW)"
    assert ax.get_xlim() == (0.0, 3.0)
    polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert [p.get_label() for p in polys] == ["cpu", "radio"]
    # The top of the stack during hour 2 is cpu + radio = 3 + 30 mW.
    top = polys[1].get_paths()[0].vertices
    assert max(y for x, y in top if 1.0 <= x <= 2.0) == pytest.approx(33.0)
    assert max(y for x, y in top if 0.0 <= x < 1.0) == pytest.approx(21.0)
    assert max(y for x, y in top if 2.0 < x <= 3.0) == pytest.approx(3.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cpu", "radio"]
    assert "sensor_node" in ax.get_title()


def test_state_timeline_draws_each_state_where_it_was(report):
    ax = plot_states(report).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cpu", "radio"]
    assert ax.get_xlabel() == "time (h)" and ax.get_ylabel() == "component"
    assert ax.get_xlim() == (0.0, 3.0)
    bars = {}
    for coll in ax.collections:
        for path in coll.get_paths():
            xs = path.vertices[:, 0]
            ys = path.vertices[:, 1]
            bars.setdefault(coll.get_label(), []).append((round(xs.min(), 6), round(xs.max(), 6),
                                                          round((ys.min() + ys.max()) / 2)))
    assert bars["rx"] == [(0.0, 1.0, 1)] and bars["tx"] == [(1.0, 2.0, 1)] and bars["off"] == [(2.0, 3.0, 1)]
    assert bars["sleep"] == [(0.0, 3.0, 0)]    # merged into one bar


def test_soc_plot_shows_the_prediction_to_empty(report):
    ax = plot_soc(report).axes[0]
    assert ax.get_ylabel() == "state of charge (%)" and ax.get_xlabel() == "time (h)"
    measured, predicted = ax.get_lines()
    assert list(measured.get_xdata()) == [0.0, 1.0, 2.0, 3.0]
    assert list(measured.get_ydata()) == [100.0, 90.0, 80.0, 70.0]
    assert list(predicted.get_xdata()) == [3.0, 10.0] and list(predicted.get_ydata()) == [70.0, 0.0]
    assert "empty in 7.0 h" in predicted.get_label()
    assert ax.get_xlim() == (0.0, 10.0) and ax.get_ylim() == (0.0, 100.0)


def test_app_energy_and_policy_comparison(report):
    ax = plot_apps(report).axes[0]
    assert ax.get_xlabel() == "energy (J)" and ax.get_ylabel() == "app"
    widths = {t.get_text(): p.get_width() for t, p in zip(ax.get_yticklabels(), ax.patches)}
    assert widths == {"system": pytest.approx(32.4), "sensor_node": pytest.approx(172.8)}
    fig = plot_policies(report)
    energy_ax, life_ax = fig.axes
    assert [t.get_text() for t in energy_ax.get_xticklabels()] == ["always_on", "batching", "oracle"]
    assert [p.get_height() for p in energy_ax.patches] == [900.0, 330.0, 300.0]
    assert energy_ax.get_ylabel() == "energy (J)" and life_ax.get_ylabel() == "predicted lifetime (d)"
    assert [p.get_height() for p in life_ax.patches] == [10.0, 28.0, 30.0]
    assert any("×1.10 oracle" in t.get_text() for t in energy_ax.texts)
    without = dict(report)
    del without["policies"]
    with pytest.raises(IotbpfError, match="no policy comparison"):
        plot_policies(without)


def test_every_axis_of_the_full_report_is_labelled(report, tmp_path):
    fig = plot_report(report, tmp_path / "all.png")
    assert len(fig.axes) == 6
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    image = imread(tmp_path / "all.png")
    assert image.shape[0] > 1000 and image.std() > 0.05    # a real, non-blank picture
    paths = plot_dir(report, tmp_path / "plots")
    assert [p.rsplit("/", 1)[1] for p in paths] == ["power.png", "states.png", "soc.png", "apps.png",
                                                     "policies.png"]
    with pytest.raises(IotbpfError, match="must end in"):
        plot_report(report, tmp_path / "x.txt")


@pytest.mark.parametrize("seconds,unit", [(60, "s"), (3600, "min"), (86400, "h"), (365 * 86400, "d")])
def test_time_axis_units(seconds, unit):
    assert time_unit(seconds)[0] == unit


def test_app_energy_beside_a_second_estimate(tmp_path):
    fig = app_energy(tmp_path / "apps.png", {"chrome": 120.0, "maps": 40.0}, title="Per-app energy",
                     compare={"chrome": 100.0, "maps": 55.0}, unit="mAh")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "energy (mAh)" and ax.get_ylabel() == "app"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["maps", "chrome"]
    assert [p.get_width() for p in ax.patches] == [40.0, 120.0, 55.0, 100.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["iotbpf", "android"]
    assert (tmp_path / "apps.png").stat().st_size > 1000


def test_app_power_timeline_stacks_apps(tmp_path):
    fig = app_power_timeline(None, [0.0, 60.0, 120.0], {"a": [0.5, 1.0, 0.5], "b": [0.25, 0.25, 0.25]})
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time (s)" and ax.get_ylabel() == "power (W)"
    assert ax.get_xlim() == (0.0, 120.0)
    top = ax.collections[1].get_paths()[0].vertices
    assert max(y for x, y in top) == pytest.approx(1.25)


def test_policy_energies_far_apart_use_a_log_axis(report):
    wide = dict(report, policies=[dict(report["policies"][0], energy_j=2570.0),
                                  dict(report["policies"][1], energy_j=6.0)])
    ax = plot_policies(wide).axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "energy (kJ, log scale)"
    assert [p.get_height() for p in ax.patches] == [2.57, 0.006]
