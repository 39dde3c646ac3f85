"""TX current as a function of the TX power setting, from each radio's datasheet table."""

import pytest

from iotbpf.energy.board import find_file
from iotbpf.energy.models import ModelError, load_model, parse_model


def model(name):
    return load_model(find_file("energy_models", name, ".json"))


@pytest.mark.parametrize("name, dbm, ma", [
    ("cc2420", 0, 17.4), ("cc2420", -25, 8.5), ("cc2420", -6, 13.9),   # SWRS041c Table 9
    ("sx1276", 13, 29), ("sx1276", 20, 120), ("sx1276", 14, 87),       # SX1276 Table 6
    ("nrf52840_radio", 0, 6.40), ("nrf52840_radio", 8, 16.40),         # nRF52840 PS 5.2.1
    ("nrf52840_radio", -40, 3.83), ("esp32_wifi", 16, 190),
])
def test_tx_current_is_the_datasheet_level_reaching_the_requested_power(name, dbm, ma):
    assert model(name).tx_current_a(dbm) == pytest.approx(ma * 1e-3)


def test_trading_range_for_energy_and_the_table_limits():
    cc = model("cc2420")
    levels = cc.tx_levels()
    assert len(levels) == 8
    currents = [a for _dbm, a in levels]
    assert currents == sorted(currents)  # less power, less current
    assert cc.tx_current_a() == cc.current_a("tx") == levels[-1][1]
    with pytest.raises(ModelError, match="no TX power setting reaches 3"):
        cc.tx_current_a(3)


def test_a_tx_power_table_must_be_cited_and_well_formed():
    base = {"version": 1, "name": "r", "kind": "radio", "voltage_v": 3.0, "default_state": "tx",
            "states": {"tx": {"current_ma": 1, "source": "a datasheet, page 1, table 2"}}}
    with pytest.raises(ModelError, match="tx_power_source"):
        parse_model(dict(base, params={"tx_power_ma": [[0, 1]], "source": "a datasheet, page 1"}))
    with pytest.raises(ModelError, match=r"tx_power_ma\[0\]"):
        parse_model(dict(base, params={"tx_power_ma": [[0]], "tx_power_source": "a datasheet, table 9",
                                       "source": "a datasheet, page 1"}))
