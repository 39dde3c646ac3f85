"""Exact battery death and the cell physics that decides it (issue 21).

A constant load empties the battery at the closed-form moment, to the nanosecond of virtual time:
the runtime schedules that moment (computed once per battery report from the last interval's
drain, never per event), stops the node there, and every report gives the same lifetime.
"""

import math

import pytest

from iotbpf.energy.battery import CELLS, IdealBattery, PeukertBattery, brownout_soc, make_battery
from iotbpf.energy.board import load_board
from iotbpf.kernel.runtime import Runtime
from iotbpf.kernel.scheduler import make_scheduler

NS = 1000000000
H = 3600 * NS
DAY = 86400 * NS


def constant_load_a(sched):
    """The always_on node's load at the battery: every component in its background state (radio
    listening, CPU and sensor asleep), each at its model voltage, converted to the battery's."""
    v = sched.battery.voltage_v
    total = 0.0
    for comp, state in sched.ledger.background.items():
        model = sched.board.models[comp]
        total += model.current_a(state) * model.voltage_v / v
    return total


def run_to_death(board="nrf52840_dk"):
    sched = make_scheduler("always_on", board)
    rt = Runtime(scheduler=sched, board=sched.board)
    rt.boot()
    rt.run_until(400 * DAY)
    return rt, sched


def test_constant_load_dies_at_the_closed_form_nanosecond():
    rt, sched = run_to_death()
    batt = sched.battery
    load = constant_load_a(sched)
    usable_c = batt.capacity_c * (1.0 - batt.floor_soc)
    expected_ns = math.ceil(usable_c / (load + batt.leak_a) * 1e9)
    assert abs(rt.dead_at_ns - expected_ns) <= 1
    # the node stopped there: no event ran after the battery was empty
    assert rt.clock.now_ns() == rt.dead_at_ns
    # drawn charge (load + self-discharge) equals the usable capacity, nothing past empty
    assert batt.drawn_c + batt.leaked_c == pytest.approx(usable_c, rel=1e-12)
    assert batt.drawn_c == pytest.approx(load * rt.dead_at_ns * 1e-9, rel=1e-9)
    # one lifetime everywhere
    s = rt.summary()
    assert s["battery_dead_ns"] == rt.dead_at_ns == batt.dead_at_ns
    assert s["energy"]["lifetime_days"] == rt.dead_at_ns / DAY
    assert s["energy"]["battery"]["dead_at_ns"] == rt.dead_at_ns
    assert [e["t_ns"] for e in s["events"] if e["event"] == "battery_dead"] == [rt.dead_at_ns]


def test_a_coin_cell_under_a_lora_burst_browns_out_before_it_is_empty():
    # the lora_node's peak (SX1276 TX at +13 dBm, 29 mA at 3.3 V) on one CR2032 instead of 2 x L91
    board = load_board("lora_node")
    spec = {"model": "ideal", "cell": "cr2032"}
    board.battery_spec = spec
    batt = board.make_battery()
    peak = board.peak_current_a(3.0)
    assert batt.pulse_a == peak > 0.029
    # under that pulse the cell reaches 2.0 V at the terminal while >10 % of its charge is left
    assert batt.brownout_soc > 0.10
    ocv = CELLS["cr2032"]["ocv"]
    r = CELLS["cr2032"]["r"]
    s = batt.brownout_soc
    from iotbpf.energy.battery import _interp
    assert _interp(ocv, s) - peak * _interp(r, s) == pytest.approx(2.0, abs=1e-9)
    # at rest (no pulse) the same cell delivers its rated capacity to 2.0 V
    assert brownout_soc(CELLS["cr2032"], 0.0) == 0.0
    # and a +20 dBm PA (SX1276 Table 6: 120 mA) cannot be carried at all: dead at boot
    assert brownout_soc(CELLS["cr2032"], 0.120) == 1.0
    dead = make_battery({"model": "ideal", "cell": "cr2032", "pulse_a": 0.120})
    assert dead.dead() and dead.dead_at_ns == 0


def test_a_node_that_cannot_carry_its_pulse_dies_at_boot():
    sched = make_scheduler("always_on", "nrf52840_dk")
    sched.battery.set_pulse(0.120)
    rt = Runtime(scheduler=sched, board=sched.board)
    rt.boot()
    rt.run_until(DAY)
    assert rt.dead_at_ns == 0
    assert rt.summary()["energy"]["lifetime_days"] == 0.0


def test_primary_cells_never_charge():
    cell = make_battery({"model": "ideal", "cell": "cr2032"})
    cell.draw(1e-3, 10 * H)
    soc = cell.soc()
    cell.draw(1e-3, 10 * H, harvest_a=5e-3)  # the harvest feeds the load, the surplus is spilled
    assert cell.soc() == pytest.approx(soc - cell.leak_a * 36000 / cell.capacity_c, rel=1e-12)
    assert cell.charged_c == 0.0
    assert cell.spilled_c == pytest.approx(4e-3 * 36000, rel=1e-12)
    assert cell.harvested_c == pytest.approx(5e-3 * 36000, rel=1e-12)
    # harvested and consumed are kept apart: the load drew 20 h x 1 mA, not a net figure
    assert cell.drawn_c == pytest.approx(1e-3 * 72000, rel=1e-12)


def test_rechargeable_cell_charges_through_its_charger_within_its_limits():
    cell = make_battery({"model": "ideal", "cell": "nimh", "capacity_mah": 100.0})
    cell.draw(20e-3, 2 * H)  # 40 mAh out
    cell.draw(0.0, 1 * H, harvest_a=1.0)  # a big panel: charge limited to 0.1 It = 190 mA
    # never past full: what went in is what the load and the self-discharge took out
    assert cell.charged_c == pytest.approx(cell.drawn_c + cell.leaked_c, rel=1e-12)
    assert cell.soc() == pytest.approx(1.0)
    assert cell.spilled_c == pytest.approx(cell.harvested_c - cell.charged_c / 0.625, rel=1e-12)
    slow = make_battery({"model": "ideal", "cell": "nimh", "capacity_mah": 1000.0})
    slow.draw(100e-3, 5 * H)  # 500 mAh out
    slow.draw(0.0, 1 * H, harvest_a=1.0)
    assert slow.charged_c == pytest.approx(0.19 * 3600, rel=1e-9)  # max_charge_a of the cell


def test_peukert_holds_only_inside_its_valid_range():
    # below the rated current a cell gives its rated capacity, not 8x more
    cell = PeukertBattery(2500.0, 1.5, peukert_k=1.25, rated_hours=100.0)
    assert cell.time_to_empty_s(3e-6) == pytest.approx(2500 * 3.6 / 3e-6, rel=1e-12)
    # above it, Peukert's law
    i = 0.25
    assert cell.time_to_empty_s(i) == pytest.approx(100 * 3600 * (2.5 / (i * 100)) ** 1.25, rel=1e-12)
    # the E91 cell's range ends at its maximum continuous current
    e91 = make_battery({"model": "peukert", "cell": "e91", "params": {"rated_hours": 100.0}})
    assert e91.i_max == CELLS["e91"]["i_max_a"]


def test_exact_death_inside_one_long_interval():
    batt = IdealBattery(1.0, 3.0)  # 3.6 C
    assert not batt.draw(1e-3, 10 * H)
    assert batt.dead_at_ns == 3600 * NS
    assert batt.drawn_c == pytest.approx(3.6, rel=1e-12)
    batt.draw(1e-3, H)
    assert batt.drawn_c == pytest.approx(3.6, rel=1e-12)  # nothing drawn past empty


@pytest.mark.parametrize("name", sorted(CELLS))
def test_every_cell_is_cited_and_its_curves_are_sane(name):
    cell = CELLS[name]
    assert len(cell["source"]) > 60 and "datasheet" in cell["source"]
    ocv = cell["ocv"]
    assert ocv[0][0] == 0.0 and ocv[-1][0] == 1.0
    assert ocv[0][1] == cell["cutoff_v"]
    assert all(a[1] <= b[1] and a[0] < b[0] for a, b in zip(ocv, ocv[1:]))
    assert all(r > 0 for _s, r in cell["r"])
    batt = make_battery({"model": "ideal", "cell": name})
    assert batt.ocv_v() == ocv[-1][1]
    assert batt.primary == cell["primary"]


def Node_report_lifetime():
    """The lifetime the sampled report (iotbpf.Node with samples) gives for the same run."""
    import iotbpf

    result = iotbpf.Node("sensor_node", board="nrf52840_dk", policy="always_on").simulate("5d")
    battery = result.report["battery"]
    assert battery["died_s"] == battery["lifetime_s"]  # one lifetime in the report too
    return battery["lifetime_s"] / 86400.0


def test_a_node_with_an_app_stops_at_its_battery_death_and_reports_one_lifetime():
    from iotbpf.api import Node

    result = Node("sensor_node", board="nrf52840_dk", policy="always_on").simulate("5d")
    s = result.summary
    dead = s["battery_dead_ns"]
    # with bursts the load is not constant: the node stops at the check that finds the battery
    # empty, and that moment is the death in every report
    assert dead is not None and dead == s["now_ns"]
    assert s["energy"]["lifetime_days"] == dead / DAY
    assert s["energy"]["battery"]["dead_at_ns"] == dead
    assert s["energy"]["duration_ns"] == dead
    report = Node_report_lifetime()
    assert report == pytest.approx(dead / DAY, rel=1e-12)
    batt = s["energy"]["battery"]
    assert batt["soc"] == pytest.approx(batt["floor_soc"], abs=1e-12)  # empty to its floor, no lower
    text = result.text()
    assert "battery empty after %.2f days" % (dead / DAY) in text


def test_only_the_latest_death_prediction_is_pending():
    # each battery report makes a new prediction; older ones are void, so death checks can never
    # pile up (one pending check at a time, whatever the harvest does)
    sched = make_scheduler("always_on", "nrf52840_dk")
    rt = Runtime(scheduler=sched, board=sched.board)
    rt.boot()
    rt.run_until(H)
    for _ in range(50):
        rt._schedule_death(rt.clock.now_ns(), rt.clock.now_ns() + 1000 * DAY)
    pending = [arg for _t, fn, arg in rt.queue.pending() if getattr(fn, "__name__", "") == "_battery_death"]
    assert len(pending) == 50 and sum(1 for g in pending if g == rt._death_gen) == 1
    rt.run_until(400 * DAY)
    assert rt.dead_at_ns == sched.battery.dead_at_ns  # the valid one still ends the node on time
