"""api/result.py: a SimulationResult's energy properties, plots, report and JSON; sampling for plots
changes nothing; without an energy model the energy properties say so."""

import json

import pytest

import iotbpf
from iotbpf import IotbpfError


def test_result_properties_plot_and_json(tmp_path):
    node = iotbpf.Node("sensor_node", board="nrf52840_dk", policy="batching", seed=1)
    result = node.simulate("2d")
    energy = result.summary["energy"]
    assert result.energy == pytest.approx(energy["energy_j"]) and result.energy > 0
    assert result.lifetime_days == pytest.approx(energy["lifetime_days"])
    assert result.average_current_a > 0
    assert list(result.per_app) == sorted(result.per_app, key=lambda a: -result.per_app[a])
    assert sum(result.per_app.values()) == pytest.approx(result.energy, rel=1e-6)
    assert 0 < result.battery["soc"] <= 1
    data = json.loads(result.to_json())
    assert data["version"] == 1 and data["summary"]["energy"]["energy_j"] == pytest.approx(result.energy)
    fig = result.plot(tmp_path / "run.png")
    assert (tmp_path / "run.png").stat().st_size > 10000 and len(fig.axes) >= 3
    assert len(result.plot(view="soc").axes) >= 1
    with pytest.raises(IotbpfError, match="unknown plot view 'bogus'"):
        result.plot(view="bogus")
    assert result.save_report(tmp_path / "run.json").endswith("run.json")
    saved = json.loads((tmp_path / "run.json").read_text())
    assert (saved["schema"], saved["version"]) == ("iotbpf.node-result", 2)


def test_sampling_for_plots_does_not_change_results():
    plain = iotbpf.Node("sensor_node", seed=4).simulate("2d", samples=0)
    sampled = iotbpf.Node("sensor_node", seed=4).simulate(days=2)
    assert plain.text() == sampled.text() and plain.to_json() == sampled.to_json()
    with pytest.raises(IotbpfError, match="no time series"):
        plain.plot()


def test_result_without_energy_model_says_so(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    manifest = json.loads((iotbpf.api.find_app("rx_filter")).read_text())
    src_dir = iotbpf.api.find_app("rx_filter").parent
    for name in ("rx_filter.o", "rx_filter.c"):
        (app / name).write_bytes((src_dir / name).read_bytes())
    manifest.pop("board", None)
    manifest.pop("policy", None)
    manifest.pop("bundle", None)
    (app / "app.json").write_text(json.dumps(manifest))
    result = iotbpf.Node(app).simulate("1h")
    with pytest.raises(IotbpfError, match="without an energy model"):
        _ = result.energy
