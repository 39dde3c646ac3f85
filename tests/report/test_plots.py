"""PNG plots of every report kind: what each draws, units on every axis, SoC 0-100 %, `iotbpf plot` for all."""

from __future__ import annotations

import json

import pytest
from matplotlib.image import imread

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.report.plots import (
    COMPONENT_COLORS,
    VIEWS,
    available_views,
    plot_dir,
    plot_duty,
    plot_policies,
    plot_power,
    plot_report,
    plot_soc,
    time_unit,
)


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    from iotbpf.cli import main

    folder = tmp_path_factory.mktemp("plots")
    runs = {"node": ["simulate", "sensor_node", "--duration", "1d", "--samples", "48"],
            "comparison": ["simulate", "sensor_node", "--duration", "3d", "--samples", "24", "--compare",
                           "always_on,batching"],
            "fleet": ["simulate", "sensor_node", "--fleet", "4", "--duration", "2d", "--backend", "inprocess"],
            "monitor": ["monitor", "--interval", "200ms", "--duration", "600ms"]}
    out = {}
    for name, argv in runs.items():
        assert main(argv + ["--report", str(folder / (name + ".json"))]) == 0
        out[name] = folder / (name + ".json")
    return out


def _load(path):
    return json.loads(path.read_text())


def test_power_view_shows_the_peak_of_each_interval_beside_its_average(docs):
    doc = _load(docs["node"])
    ax = plot_power(doc).axes[0]
    assert ax.get_xlabel() == "time (h)" and ax.get_ylabel().startswith("power (W")
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert {"cpu (average)", "radio (average)", "sensor (average)", "total (average)"} <= set(lines)
    assert lines["radio (average)"].get_color() == COMPONENT_COLORS["radio"]
    peak = max(y for y in lines["peak: highest-power states entered"].get_ydata() if y is not None)
    average = max(y for y in lines["total (average)"].get_ydata() if y is not None)
    assert peak > 100 * average and ax.get_yscale() == "log"   # the bursts stay visible
    assert ax.yaxis.get_major_formatter().format_data(0.001) == "1 mW"


def test_soc_axis_is_always_0_to_100_percent(docs):
    doc = _load(docs["node"])
    ax = plot_soc(doc).axes[0]
    assert ax.get_ylim() == (0.0, 101.0) and ax.get_ylabel() == "state of charge (%)"
    assert "used in the run" in ax.get_lines()[0].get_label()


def test_duty_view_replaces_the_solid_state_bars(docs):
    ax = plot_duty(_load(docs["node"])).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(label.startswith("radio (run:") for label in labels) and ax.get_yscale() == "log"
    assert ax.get_ylabel() == "time awake (% of interval, log)"


def test_policy_panels_mark_the_death_and_label_power(docs):
    doc = _load(docs["comparison"])
    power_ax, life_ax = plot_policies(doc).axes
    assert power_ax.get_ylabel() == "average power (W)"
    assert any("died day 1." in t.get_text() for t in life_ax.texts)
    assert any("oracle" in t.get_text() for t in power_ax.texts)
    assert available_views(doc) == ["policies", "policy_power", "policy_soc"]


def test_every_view_of_every_kind_has_labelled_axes(docs, tmp_path):
    seen = set()
    for name, path in docs.items():
        doc = _load(path)
        fig = plot_report(doc, tmp_path / (name + ".png"))
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title(loc="left"), (name, ax.get_ylabel())
        image = imread(tmp_path / (name + ".png"))
        assert image.std() > 0.05     # a real, non-blank picture
        seen.update(available_views(doc))
    assert seen >= set(VIEWS) - {"fleet_policies"}
    with pytest.raises(IotbpfError, match="must end in"):
        plot_report(_load(docs["node"]), tmp_path / "x.txt")


def test_fleet_lifetimes_count_whole_nodes_in_plain_days(docs):
    from iotbpf.report.fleet_plots import plot_lifetimes, plot_soc

    doc = _load(docs["fleet"])
    ax = plot_lifetimes(doc).axes[0]
    assert all(float(t).is_integer() for t in ax.get_yticks())
    assert ax.xaxis.get_major_formatter().get_offset() == ""
    soc = plot_soc(doc).axes[0]
    assert soc.get_ylim() == (0.0, 101.0)
    median = [line for line in soc.get_lines() if line.get_label() == "median"][0]
    assert median.get_zorder() > 2


def test_monitor_plot_names_its_model_and_host(docs):
    doc = _load(docs["monitor"])
    fig = plot_report(doc)
    title = fig.axes[0].get_title(loc="left")
    assert doc["meta"]["host"] in title and doc["meta"]["model"] in title


def test_plot_command_replots_every_kind(cli, docs, tmp_path):
    for name, path in docs.items():
        r = cli("plot", path, "--plot-dir", tmp_path / name)
        assert r.code == 0, (name, r.err)
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == sorted(
            v + ".png" for v in available_views(_load(path)))
    r = cli("plot", docs["node"], "--view", "policies")
    assert (r.code, r.err) == (2, "error: the report has no data for: policies\n")
    for name, path in docs.items():   # and the interactive report of every kind
        r = cli("plot", path, "--html", tmp_path / (name + ".html"))
        assert r.code == 0, (name, r.err)
        assert "Plotly.newPlot" in (tmp_path / (name + ".html")).read_text()


def test_plot_views_agree_with_the_command():
    from iotbpf.commands.plot import VIEWS as COMMAND_VIEWS

    assert tuple(COMMAND_VIEWS) == tuple(VIEWS)


@pytest.mark.parametrize("seconds,unit", [(60, "s"), (3600, "min"), (86400, "h"), (365 * 86400, "d")])
def test_time_axis_units(seconds, unit):
    assert time_unit(seconds)[0] == unit


def test_plot_dir_writes_one_image_per_view(docs, tmp_path):
    paths = plot_dir(_load(docs["node"]), tmp_path / "views")
    assert [p.rsplit("/", 1)[1] for p in paths] == ["power.png", "duty.png", "soc.png", "apps.png"]
