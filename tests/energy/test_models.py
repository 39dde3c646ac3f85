"""Energy-model and board files: schema validation, sources, unit conversion, the Android importer."""

import json

import pytest

from conftest import REPO
from iotbpf.energy import android_profile
from iotbpf.energy.board import available_boards, load_board
from iotbpf.energy.models import ModelError, load_model, parse_model

BASE = {"version": 1, "name": "x", "kind": "radio", "voltage_v": 2.0, "default_state": "off",
        "sources": {"ds": "Example datasheet rev 1, table 3"},
        "states": {"off": {"current_a": 0.0, "source": "ds"}, "tx": {"power_mw": 30.0, "source": "ds"}}}


def test_every_bundled_model_loads_and_cites_a_source_for_every_state():
    paths = sorted((REPO / "energy_models").glob("*.json"))
    assert len(paths) >= 10
    for path in paths:
        model = load_model(str(path))
        for state in model.states.values():
            assert len(state.source) >= 12, (path.name, state.name)
        for tr in model.transitions.values():
            assert len(tr.source) >= 12
        assert json.loads(path.read_text())["version"] == 1


def test_every_bundled_board_loads_with_a_battery_and_timing():
    names = available_boards()
    for required in ("nrf52840_dk", "telosb", "esp32_devkit", "lora_node", "rpi_zero2w", "rpi4", "phone"):
        assert required in names
    for name in names:
        board = load_board(name)
        assert board.ns_per_insn > 0
        assert board.make_battery().soc() == 1.0
        assert board.insn_ns(1000) == int(1000 * board.ns_per_insn + 0.5)


def test_ns_per_insn_comes_from_clock_and_cycles_per_instruction():
    board = load_board("nrf52840_dk")
    assert board.ns_per_insn == pytest.approx(30 * 1e9 / 64e6)


def test_power_is_converted_to_current_at_the_model_voltage():
    model = parse_model(BASE)
    assert model.current_a("tx") == pytest.approx(0.015)
    assert model.power_w("tx") == pytest.approx(0.030)


@pytest.mark.parametrize("change, message", [
    ({"version": 2}, "unsupported version 2"),
    ({"kind": "toaster"}, "kind must be one of"),
    ({"default_state": "sleep"}, "default_state"),
    ({"states": {"off": {"current_a": 0.0}}}, "needs a 'source'"),
    ({"states": {"off": {"source": "ds"}}}, "needs current_a"),
    ({"states": {"off": {"current_a": -1, "source": "ds"}}}, "must not be negative"),
    ({"states": {"off": {"current_a": 1, "power_w": 1, "source": "ds"}}}, "not several"),
    ({"transitions": [{"from": "off", "to": "rx", "time_us": 1, "current_a": 1, "source": "ds"}]},
     "from/to must name states"),
])
def test_malformed_models_are_rejected_with_the_field_named(change, message):
    data = dict(BASE)
    data.update(change)
    with pytest.raises(ModelError, match=message):
        parse_model(data, "bad.json")


def test_board_errors_name_the_file_and_field(tmp_path):
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps({"version": 1, "name": "b", "supply_voltage_v": 3,
                               "components": {"cpu": "nrf52840_cpu"},
                               "cpu": {"component": "cpu", "cycles_per_insn": 30, "source": "x" * 20,
                                       "sleep_state": "nap", "run_state": "run"},
                               "battery": {"model": "ideal", "capacity_mah": 1, "voltage_v": 3}}))
    with pytest.raises(ModelError, match="sleep_state: 'nap' is not a state"):
        load_board(str(bad))
    with pytest.raises(ModelError, match="unknown board 'nope'"):
        load_board("nope")


def test_android_importer_reads_the_old_key_names(shared):
    profile = android_profile.parse_power_profile((shared / "data" / "power_profile_sample.xml").read_text())
    assert profile["naming"] == "old"
    assert profile["suspend_ma"] == 6.2   # old cpu.idle
    assert profile["idle_ma"] == 9.7      # old cpu.awake
    assert profile["battery_mah"] == 4000
    assert [c["cores"] for c in profile["clusters"]] == [4, 3, 1]
    assert [len(c["speeds_khz"]) for c in profile["clusters"]] == [18, 17, 21]
    assert profile["clusters"][2]["core_ma"][-1] == 420.69
    assert profile["wifi_active_ma"] == 427.55
    assert profile["radio_on_ma"] == [1.53, 1.53]


NEW_XML = """<?xml version="1.0" encoding="utf-8"?>
<device name="Android">
  <item name="battery.capacity">3000</item>
  <item name="cpu.suspend">2.5</item>
  <item name="cpu.idle">7.0</item>
  <item name="cpu.active">20.0</item>
  <array name="cpu.clusters.cores"><value>2</value></array>
  <item name="cpu.cluster_power.cluster0">5.0</item>
  <array name="cpu.core_speeds.cluster0"><value>300000</value><value>1000000</value></array>
  <array name="cpu.core_power.cluster0"><value>10</value><value>40</value></array>
  <item name="screen.on.display0">80</item>
  <item name="screen.full.display0">300</item>
  <array name="wifi.batchedscan" />
</device>"""


def test_android_importer_reads_the_new_key_names_and_builds_models():
    profile = android_profile.parse_power_profile(NEW_XML)
    assert profile["naming"] == "new"
    assert (profile["suspend_ma"], profile["idle_ma"], profile["active_ma"]) == (2.5, 7.0, 20.0)
    assert profile["screen_on_ma"] == 80 and profile["screen_full_ma"] == 300
    models = android_profile.phone_models(profile, "newphone")
    cpu = parse_model(models["cpu"])
    # BatteryStats CPU formula: cores x core power + cluster power + active power
    assert cpu.current_a("run@1000") == pytest.approx((2 * 40 + 5 + 20) * 1e-3)
    assert cpu.current_a("suspend") == pytest.approx(2.5e-3)


def test_android_importer_rejects_malformed_profiles():
    with pytest.raises(ModelError, match="no <item>"):
        android_profile.parse_power_profile("<device></device>")
    with pytest.raises(ModelError, match="not a number"):
        android_profile.parse_power_profile('<device><item name="a">x</item></device>')
    with pytest.raises(ModelError, match="cluster 0 has 2 speeds but 1 powers"):
        android_profile.parse_power_profile(NEW_XML.replace("<value>10</value>", ""))


def test_phone_board_is_built_from_the_importer():
    board = load_board("phone")
    assert board.component("cpu").current_a("suspend") == pytest.approx(6.2e-3)
    assert board.component("radio").current_a("tx") == pytest.approx(427.55e-3)
    assert board.cpu["run_state"] == "run@2956800k"


def test_energy_j_is_time_times_current_times_voltage():
    model = parse_model(dict(BASE), "base")  # tx: 30 mW at 2 V, i.e. 15 mA
    assert model.energy_j("tx", 2 * 10**9) == pytest.approx(0.060)  # 30 mW for 2 s
    assert model.energy_j("off", 10**12) == 0.0
    assert model.energy_j("tx", 7) == 7 * model.current_a("tx") * model.voltage_v * 1e-9  # the ledger's order
    with pytest.raises(ModelError):
        model.energy_j("rx", 1)
