"""The Energest ledger and BatteryStats attribution: closed forms and conservation."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotbpf.energy.accounting import Ledger
from iotbpf.energy.attribution import SYSTEM, Attribution
from iotbpf.energy.board import load_board
from iotbpf.kernel.scheduler import make_scheduler

NS = 1000000000


def test_fixed_duty_cycle_gives_the_analytic_average_current():
    board = load_board("nrf52840_dk")
    cpu = board.component("cpu")
    ledger = Ledger({"cpu": cpu})
    period, busy = 60 * NS, 2 * 1000000  # 2 ms of work every minute, for a day
    t = 0
    for _ in range(1440):
        ledger.add("cpu", "run", busy)
        ledger.add_transition("cpu", "sleep", "run")
        t += period
    ledger.flush(t)
    wake = cpu.transition("sleep", "run")
    i_sleep, i_run = cpu.current_a("sleep"), cpu.current_a("run")
    duty = busy / period
    wake_frac = wake.time_ns / period
    analytic = i_sleep * (1 - duty - wake_frac) + i_run * duty + wake.current_a * wake_frac
    measured = ledger.charge_c() / (t * 1e-9)
    assert measured == pytest.approx(analytic, rel=1e-12)
    assert ledger.time_ns("cpu") == t


def test_background_time_is_settled_in_closed_form_across_switches():
    board = load_board("telosb")
    ledger = Ledger({"radio": board.component("radio")})
    ledger.set_background("radio", "rx", 10 * NS, transition=False)
    ledger.set_background("radio", "sleep", 25 * NS, transition=False)
    ledger.flush(100 * NS)
    assert ledger.ns[("radio", "rx")] == 15 * NS
    assert ledger.ns[("radio", "sleep")] == 85 * NS


@given(st.lists(st.tuples(st.integers(1, 10 ** 9), st.sampled_from(["a", "b", "c"]),
                          st.sampled_from(["cpu", "tx", "listen", "sensor", "wakelock"]),
                          st.integers(0, 5 * 10 ** 6)), max_size=60))
def test_attribution_and_accounting_conserve_energy(events):
    sched = make_scheduler("batching", "nrf52840_dk")
    sched.boot(0)
    t = 0
    for gap, app, kind, amount in events:
        t += gap
        sched.advance(t)
        for _ in range(3):
            wake = sched.next_wakeup_ns()
            if wake is None or wake > t:
                break
            sched.on_wakeup(wake)
        if kind == "cpu":
            sched.cpu_busy(t, amount + 1, app)
        elif kind == "tx":
            sched.enqueue_tx(t, amount % 300 + 1, t + amount * 100, app)
        elif kind == "listen":
            sched.request_listen(t, amount, app)
        elif kind == "sensor":
            sched.sensor_read(t, 0, app)
        else:
            sched.hold_wakelock(t, amount, app)
    sched.advance(t + NS)
    sched.flush()
    total = sched.ledger.energy_j()
    per_comp = sum(sched.ledger.by_component().values())
    per_state = sum(j for _ns, j in sched.ledger.by_state().values())
    per_app = sched.attr.per_app_j()
    assert per_comp == pytest.approx(total, rel=1e-9)
    assert per_state == pytest.approx(total, rel=1e-9)
    assert sum(per_app.values()) == pytest.approx(total, rel=1e-9)
    assert all(v >= -1e-15 for v in per_app.values())
    # integer conservation: every (component, state) ns is split exactly among apps + system
    detail = sched.attr.per_app_detail()
    for key, ns in sched.ledger.ns.items():
        assert sum(d.get(key, 0) for d in detail.values()) == ns


def test_radio_wake_cost_is_split_across_the_apps_whose_packets_were_in_the_burst():
    board = load_board("nrf52840_dk")
    ledger = Ledger(board.models)
    attr = Attribution(ledger)
    ns = ledger.add_transition("radio", "sleep", "tx")
    attr.split(["a", "b", "a"], "radio", "sleep>tx", ns)
    ledger.flush(NS)
    detail = attr.per_app_detail()
    assert detail["a"][("radio", "sleep>tx")] + detail["b"][("radio", "sleep>tx")] == ns
    assert detail["a"][("radio", "sleep>tx")] == pytest.approx(2 * ns / 3, abs=1)
    assert SYSTEM in detail


def test_attributing_more_than_the_ledger_holds_is_an_error():
    board = load_board("nrf52840_dk")
    ledger = Ledger(board.models)
    attr = Attribution(ledger)
    attr.charge("a", "cpu", "run", 5)
    with pytest.raises(ValueError, match="exceeds the ledger"):
        attr.per_app_j()
