"""Temperature where the datasheet gives it (issue 21): ``battery.temperature_c`` on a board (or
``Battery.set_temperature``) takes a cell outside its operating range (dead at once) and applies
its capacity and internal-resistance derating tables (``temp_capacity``, ``temp_r``)."""

import pytest

from iotbpf.energy.battery import CELLS, IdealBattery, brownout_soc, make_battery
from iotbpf.energy.models import ModelError

NS = 1000000000
H = 3600 * NS


def test_an_l91_works_down_to_minus_40_c_and_not_below():
    # Energizer Li/FeS2 handbook (Form 12004-A): operates from -40 C up to +60 C
    assert CELLS["l91"]["temp_range_c"] == (-40.0, 60.0)
    cold = make_battery({"model": "ideal", "cell": "l91", "series": 2, "temperature_c": -40})
    assert not cold.dead() and cold.draw(0.01, H)
    colder = make_battery({"model": "ideal", "cell": "l91", "series": 2, "temperature_c": -41})
    assert colder.dead() and colder.dead_at_ns == 0
    assert not colder.draw(0.01, H) and colder.drawn_c == 0.0
    hot = make_battery({"model": "ideal", "cell": "l91", "temperature_c": 61})
    assert hot.dead()
    assert hot.describe()["temperature_c"] == 61


def test_a_cell_without_temperature_data_is_not_derated():
    warm = make_battery({"model": "ideal", "cell": "nimh"})
    cold = make_battery({"model": "ideal", "cell": "nimh", "temperature_c": -30})
    assert cold.floor_soc == warm.floor_soc and cold.r_factor == 1.0


# A cell with derating tables (the form a datasheet's 'capacity vs temperature' and 'internal
# resistance vs temperature' charts take): 100 % at 20 C, 60 % at -20 C; R x1 at 20 C, x3 at -20 C.
COLD_CELL = dict(CELLS["cr2032"])
COLD_CELL.update({"temp_capacity": [(-20.0, 0.6), (20.0, 1.0)], "temp_r": [(-20.0, 3.0), (20.0, 1.0)]})


def cold_cell(temp_c, pulse_a=0.0):
    battery = IdealBattery(235.0, 3.0, cell=COLD_CELL)
    battery.set_temperature(temp_c)
    if pulse_a:
        battery.set_pulse(pulse_a)
    return battery


def test_capacity_derating_delivers_the_datasheet_fraction():
    for temp_c, fraction in ((20.0, 1.0), (0.0, 0.8), (-20.0, 0.6), (-30.0, 0.6)):
        battery = cold_cell(temp_c)
        t = 0
        while battery.draw(0.001, H):
            t += 1
        assert battery.drawn_c == pytest.approx(fraction * 235 * 3.6, rel=1e-9)


def test_cold_raises_the_internal_resistance_so_a_pulse_browns_out_earlier():
    warm = cold_cell(20.0, pulse_a=0.015)
    cold = cold_cell(-20.0, pulse_a=0.015)
    assert warm.brownout_soc == pytest.approx(brownout_soc(COLD_CELL, 0.015))
    assert cold.brownout_soc == pytest.approx(brownout_soc(COLD_CELL, 0.045))
    assert cold.brownout_soc > warm.brownout_soc
    assert cold.terminal_v() == pytest.approx(warm.terminal_v() - 0.015 * 2 * 15.0, rel=1e-9)
    # the floor is the larger of what the cold cell cannot deliver and its brown-out
    assert cold.floor_soc == max(0.4, cold.brownout_soc)


def test_warming_a_cell_that_died_cold_does_not_revive_it():
    battery = cold_cell(-20.0)
    while battery.draw(0.001, H):
        pass
    battery.set_temperature(20.0)
    assert battery.dead() and not battery.draw(0.001, H)


def test_a_bad_temperature_is_an_error_naming_the_field():
    with pytest.raises(ModelError, match=r"battery\.temperature_c"):
        make_battery({"model": "ideal", "cell": "l91", "temperature_c": "cold"})
