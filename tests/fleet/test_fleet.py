"""Fleets: per-node variation from the seed alone, identical results on every backend, statistics."""

import json

import pytest

from iotbpf import fleet
from iotbpf.ebpf.errors import IotbpfError

SMALL = {
    "version": 1, "name": "test", "seed": 3, "duration": "2d", "policy": "batching",
    "groups": [
        {"count": 3, "app": "sensor_node", "board": "nrf52840_dk",
         "vary": {"sampling_period": [30, 120], "link_loss": {"min": 0.0, "max": 0.3},
                  "battery_capacity_spread": 0.1}},
        {"count": 1, "app": "sensor_node", "board": "nrf52840_dk", "policy": "always_on", "name": "base"},
    ],
}


@pytest.fixture(scope="module")
def reference():
    return fleet.run_fleet(fleet.FleetSpec.from_dict(SMALL), backend="inprocess")


def test_node_parameters_depend_only_on_seed_and_index():
    first = [n.to_dict() for n in fleet.FleetSpec.from_dict(SMALL).nodes()]
    again = [n.to_dict() for n in fleet.FleetSpec.from_dict(SMALL).nodes()]
    assert first == again
    assert len({n["seed"] for n in first}) == len(first)
    other = [n.to_dict() for n in fleet.FleetSpec.from_dict(dict(SMALL, seed=4)).nodes()]
    assert [n["params"] for n in other] != [n["params"] for n in first]
    assert first[3]["policy"] == "always_on" and first[3]["name"] == "base-00003"
    for node in first[:3]:
        assert node["params"]["sampling_period"] in (30, 120)
        assert 0.0 <= node["params"]["link_loss"] <= 0.3


def test_variation_reaches_the_simulation(reference):
    nodes = reference["nodes"]
    by_period = {}
    for node in nodes[:3]:
        by_period.setdefault(node["params"]["sampling_period"], []).append(node["packets_sent"])
    if len(by_period) == 2:  # more samples per day means more batches on air
        assert min(by_period[30]) > max(by_period[120])
    assert nodes[3]["policy"] == "always_on"
    assert nodes[3]["energy_j"] > min(n["energy_j"] for n in nodes[:3])


@pytest.mark.parametrize("backend,workers", [("processes", 1), ("processes", 2), ("dask", 2)])
def test_every_backend_gives_identical_results(reference, backend, workers):
    report = fleet.run_fleet(fleet.FleetSpec.from_dict(SMALL), backend=backend, workers=workers)
    assert fleet.deterministic_view(report) == fleet.deterministic_view(reference)


def test_statistics_cover_every_node(reference):
    stats = reference["stats"]
    assert stats["nodes"] == 4
    lifetimes = sorted(n["lifetime_days"] for n in reference["nodes"])
    assert stats["lifetime_days"]["min"] == lifetimes[0]
    assert stats["lifetime_days"]["max"] == lifetimes[-1]
    assert sum(stats["lifetime_histogram"]["counts"]) == 4
    assert stats["energy_j_total"] == pytest.approx(sum(n["energy_j"] for n in reference["nodes"]))
    assert all(len(n["soc"]) == fleet.SOC_SAMPLES for n in reference["nodes"])


def test_first_death_is_the_earliest_dead_node():
    results = [{"index": i, "name": "n%d" % i, "lifetime_days": d, "died_at_days": d} for i, d in
               enumerate([5.0, 2.5, 9.0])] + [{"index": 3, "name": "n3", "lifetime_days": 40.0, "died_at_days": None}]
    stats = fleet.fleet_statistics(results)
    assert stats["first_death"] == {"node": "n1", "days": 2.5}
    assert stats["dead_nodes"] == 3
    assert stats["lifetime_days"]["p50"] == pytest.approx(7.0)


def test_percentile_matches_linear_interpolation():
    values = [1.0, 2.0, 3.0, 4.0]
    assert fleet.percentile(values, 50) == 2.5
    assert fleet.percentile(values, 0) == 1.0
    assert fleet.percentile(values, 100) == 4.0


@pytest.mark.parametrize("change,message", [
    ({"version": 9}, "unsupported version"),
    ({"groups": []}, "non-empty list"),
    ({"groups": [{"count": 0, "app": "sensor_node", "board": "nrf52840_dk"}]}, "positive integer"),
    ({"groups": [{"count": 1, "app": "sensor_node"}]}, "'board'"),
    ({"groups": [{"count": 1, "app": "x", "board": "y", "vary": {"colour": 1}}]}, "unknown 'vary' key"),
    ({"groups": [{"count": 1, "app": "x", "board": "y", "vary": {"link_loss": {"min": 2, "max": 1}}}]},
     "min"),
    ({"duration": "forever"}, "bad duration"),
    ({"surprise": 1}, "unknown field"),
    ({"groups": [{"count": 2_000_000, "app": "x", "board": "y"}]}, "limit"),
])
def test_bad_specs_are_refused_with_a_clear_message(change, message):
    with pytest.raises(IotbpfError, match=message):
        fleet.FleetSpec.from_dict(dict(SMALL, **change))


def test_cli_runs_a_fleet_spec_and_writes_reports(cli, tmp_path):
    spec = tmp_path / "fleet.json"
    spec.write_text(json.dumps(dict(SMALL, groups=[dict(SMALL["groups"][0], count=2)])))
    report = tmp_path / "fleet_report.json"
    result = cli("simulate", "--fleet", spec, "--backend", "inprocess", "--report", report,
                 "--plot-dir", tmp_path / "plots")
    assert result.code == 0, result.err
    assert "fleet test: 2 nodes" in result.out and "lifetime (days)" in result.out
    data = json.loads(report.read_text())
    assert len(data["nodes"]) == 2 and data["stats"]["nodes"] == 2
    assert (tmp_path / "plots" / "fleet_lifetimes.png").stat().st_size > 0
    assert (tmp_path / "plots" / "fleet_soc.png").stat().st_size > 0


def test_cli_fleet_by_count_and_csv(cli, tmp_path):
    out = tmp_path / "nodes.csv"
    result = cli("simulate", "sensor_node", "--fleet", "2", "--duration", "1d", "--backend", "inprocess",
                 "--report", out)
    assert result.code == 0, result.err
    rows = out.read_text().splitlines()
    assert rows[0].startswith("index,name,app") and len(rows) == 3


@pytest.mark.parametrize("argv,message", [
    (("--fleet", "missing.json"), "neither a node count nor an existing fleet spec"),
    (("--fleet", "3"), "needs an APP"),
    (("sensor_node", "--fleet", "2", "--workers", "0"), "at least 1"),
    (("sensor_node", "--fleet", "2", "--cluster", "tcp://127.0.0.1:1", "--backend", "inprocess"), "--cluster needs"),
])
def test_cli_bad_fleet_arguments(cli, argv, message):
    result = cli("simulate", *argv)
    assert result.code == 2
    assert result.err.startswith("error: ") and message in result.err


def test_bad_spec_file_is_one_error_line(cli, tmp_path):
    spec = tmp_path / "fleet.json"
    spec.write_text("{broken")
    result = cli("simulate", "--fleet", spec)
    assert result.code == 2 and "not valid JSON" in result.err


def test_sampling_period_reaches_the_apps_config():
    import struct

    from iotbpf.api import Node

    node = Node("sensor_node", seed=1)
    runtime = node.build()
    runtime.boot()
    fleet._set_sampling_config(runtime, 30 * 10**9)
    config = runtime.apps[0].maps.get("config") or runtime.apps[0].maps[".data.config"]
    value = config.lookup(struct.pack("<I", 0))
    assert struct.unpack_from("<QQ", value, 8) == (30 * 10**9, 150 * 10**9)


def test_the_text_histogram_shows_edges_that_differ_or_says_there_is_no_spread(reference):
    from iotbpf.commands.fleet_cli import format_report

    text = format_report(reference)  # lifetimes days apart: a histogram whose edges all differ
    rows = [line.split(" d ")[0].strip() for line in text.splitlines() if line.startswith("  ") and " d " in line]
    assert len(rows) == 20 and len(set(rows)) == 20
    same = json.loads(json.dumps(reference))
    for node in same["nodes"]:
        node["lifetime_days"] = 2740.673
    same["stats"] = fleet.fleet_statistics(same["nodes"])
    same["stats"]["lifetime_days"]["max"] += 1e-6  # 0.09 s apart: float noise, not a distribution
    text = format_report(same)
    assert "lifetime histogram: none, every lifetime is within 0.0864 s of the others" in text
    assert "#" not in text
