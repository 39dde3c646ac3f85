"""Numbers as people read them: engineering notation with units, durations, the duty-cycle line."""

from __future__ import annotations

import pytest

from iotbpf.report.text import duration_text, duty_cycle_line, eng


@pytest.mark.parametrize("value,unit,text", [
    (0.819538, "J", "820 mJ"), (0.00271759, "J", "2.72 mJ"), (7.71e-05, "J", "77.1 µJ"), (2570.0, "J", "2.57 kJ"),
    (0.0188, "W", "18.8 mW"), (3.3e-06, "A", "3.3 µA"), (0, "J", "0 J"), (None, "J", "-"), (-0.002, "W", "-2 mW"),
])
def test_engineering_notation_with_units(value, unit, text):
    assert eng(value, unit) == text


@pytest.mark.parametrize("seconds,text", [(3600, "1 h"), (86400 * 7, "7 d"), (45, "45 s"), (90, "1.5 min"),
                                          (0.5, "500 ms"), (86400 * 365 * 2, "2 y"), (136512, "1.58 d")])
def test_durations_in_plain_units(seconds, text):
    assert duration_text(seconds) == text


def test_duty_cycle_line_never_uses_exponents():
    line = duty_cycle_line({"radio": 0.000165, "cpu": 5.45e-05})
    assert line == "duty cycle (time outside sleep states): cpu 0.0000545 %, radio 0.000165 %\n"


def test_simulate_summary_ends_with_the_duty_cycle(cli):
    r = cli("simulate", "sensor_node", "--duration", "1h")
    assert r.code == 0, r.err
    last = r.out.splitlines()[-1]
    assert last.startswith("duty cycle (time outside sleep states): cpu ") and "radio " in last and "e-" not in last
