"""`iotbpf simulate` with boards and policies from the energy layer: summary lines and clean errors."""

import json

import pytest


@pytest.mark.parametrize("board", ["nrf52840_dk", "telosb", "lora_node", "esp32_devkit", "phone"])
def test_simulate_prints_energy_per_component_app_and_lifetime(cli, board):
    r = cli("simulate", "sensor_node", "--board", board, "--duration", "6h", "--policy", "batching")
    assert r.code == 0, r.err
    assert "energy: " in r.out and "board %s" % board in r.out
    assert "  component radio" in r.out and "  app sensor_node" in r.out
    assert "predicted lifetime: " in r.out


def test_a_malformed_board_is_one_line_error_exit_2(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "name": "b", "supply_voltage_v": 3,
                               "components": {"cpu": "nrf52840_cpu"}}))
    r = cli("simulate", "sensor_node", "--board", str(bad), "--duration", "1h")
    assert r.code == 2
    assert r.err.startswith("error: ") and r.err.count("\n") == 1
    assert "needs a 'cpu' object" in r.err and "Traceback" not in r.err


def test_a_model_without_sources_is_refused(cli, tmp_path):
    model = {"version": 1, "name": "m", "kind": "mcu", "voltage_v": 3.0, "default_state": "sleep",
             "states": {"sleep": {"current_ua": 1}, "run": {"current_ma": 1, "source": "x" * 20}},
             "params": {"clock_hz": 1000000, "source": "y" * 20}}
    (tmp_path / "m.json").write_text(json.dumps(model))
    board = {"version": 1, "name": "b", "supply_voltage_v": 3, "components": {"cpu": str(tmp_path / "m.json")},
             "cpu": {"component": "cpu", "cycles_per_insn": 30, "source": "z" * 20,
                     "sleep_state": "sleep", "run_state": "run"},
             "battery": {"model": "ideal", "capacity_mah": 100, "voltage_v": 3}}
    (tmp_path / "b.json").write_text(json.dumps(board))
    r = cli("simulate", "sensor_node", "--board", str(tmp_path / "b.json"), "--duration", "1h")
    assert r.code == 2
    assert "states.sleep: every number needs a 'source'" in r.err


def test_simulate_compare_prints_policies_against_the_oracle(cli):
    r = cli("simulate", "sensor_node", "--duration", "2d", "--compare", "always_on,duty_cycle,batching")
    assert r.code == 0, r.err
    lines = r.out.strip().splitlines()
    assert lines[0].split()[:2] == ["policy", "energy"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"always_on", "duty_cycle", "batching", "oracle"}
    ratio = {name: float(cols[-2]) for name, cols in rows.items()}
    assert ratio["oracle"] == 1.0
    assert 1.0 <= ratio["batching"] < ratio["duty_cycle"] < ratio["always_on"]
    assert all(cols[-4] == "0" for cols in rows.values())   # no deadline misses
