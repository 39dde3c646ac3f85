"""Issue 24, item 9: a per-app work budget per period of time, so a verified program cannot
starve the node (docs/runtime.md, "Work bounds")."""

import pytest

from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.program import Program
from iotbpf.kernel import appstate, helpers
from iotbpf.kernel.clock import NS_PER_H, NS_PER_MS, NS_PER_S
from iotbpf.kernel.manifest import Manifest
from iotbpf.kernel.runtime import Runtime
from iotbpf.platforms.sim.platform import SimPlatform


def manifest(name, programs, **extra):
    data = {"version": 1, "name": name, "object": "t.o", "programs": programs}
    data.update(extra)
    return Manifest(data)


# The boot program arms 16 timers at the helpers' minimum period (1 ms), the most it may.
ARM_16 = """
    mov %r6, 0
loop:
    mov %r1, %r6
    mov %r2, 1000000
    mov %r3, 1000000
    call 0x1001
    add %r6, 1
    jlt %r6, 16, loop
    mov %r0, 0
    exit
"""
# Each timer run burns 203 instructions.
BURN = """
    mov %r6, 0
loop:
    add %r6, 1
    jlt %r6, 100, loop
    mov %r0, 0
    exit
"""
BURN_INSNS = 203
# The well-behaved app logs each expiry with the time in its context.
LOG_NOW = """
    ldxdw %r3, [%r1+0]
    mov %r1, 0x6b6f
    stxdw [%r10-8], %r1
    mov %r1, %r10
    add %r1, -8
    mov %r2, 8
    call 0x1009
    mov %r0, 0
    exit
"""


def _node(**work):
    rt = Runtime(platform=SimPlatform({}, seed=1))
    extra = {"work": work} if work else {}
    rt.load_app(manifest("hostile", {"boot": "b", "timer": "t"}, budget=65536, **extra),
                {"b": Program.from_asm(ARM_16), "t": Program.from_asm(BURN)})
    rt.load_app(manifest("polite", {"timer": "t"}, timers=[{"id": 0, "period": "100ms"}]),
                {"t": Program.from_asm(LOG_NOW)})
    rt.boot()
    return rt


def _runs(rt, app_name):
    app = [a for a in rt.apps if a.name == app_name][0]
    return sum(att.runs for att in app.attached if att.hook.name == "timer"), app


def test_a_hostile_app_is_held_to_its_work_budget_and_the_other_app_keeps_its_times():
    rt = _node()
    rt.run_until(2 * NS_PER_S)
    runs, hostile = _runs(rt, "hostile")
    # before the bound: 16 timers x 1 000 runs per second x 203 instructions = 3.2 M per second
    per_run = BURN_INSNS + appstate.RUN_COST
    assert hostile.work_budget == appstate.WORK_BUDGET
    assert runs * per_run <= 2 * (appstate.WORK_BUDGET + per_run) + 2 * per_run
    assert runs > appstate.WORK_BUDGET // per_run       # it did run up to its budget
    assert hostile.throttled + runs == 16 * 1999   # every other expiry (1 ms .. 1.999 s) was dropped, counted
    summary = rt.summary()
    assert summary["throttled"]["apps"] == {"hostile": hostile.throttled}
    assert summary["throttled"]["hooks"] == {"timer": hostile.throttled}
    polite_runs, polite = _runs(rt, "polite")
    assert polite.throttled == 0 and polite_runs == 19
    assert [t for t, app, _msg, _v in rt.logs if app == "polite"] == [k * 100 * NS_PER_MS for k in range(1, 20)]
    assert [v for _t, app, _msg, v in rt.logs if app == "polite"] == [k * 100 * NS_PER_MS for k in range(1, 20)]


def test_a_simulated_hour_of_a_hostile_app_takes_bounded_runs():
    # 16 manifest timers at 1 us (a manifest may declare them; the helper's 1 ms minimum does not
    # apply) would be 57.6 billion runs an hour; the work bound keeps the events and runs a few
    # per period of credit
    timers = [{"id": i, "period": "1us"} for i in range(16)]
    rt = Runtime(platform=SimPlatform({}, seed=1))
    rt.load_app(manifest("hostile", {"timer": "t"}, timers=timers, work={"budget": 20000, "period": "1s"}),
                {"t": Program.from_asm(BURN)})
    rt.load_app(manifest("polite", {"timer": "t"}, timers=[{"id": 0, "period": "1m"}]),
                {"t": Program.from_asm(LOG_NOW)})
    rt.boot()
    handled = rt.run_until(NS_PER_H)
    runs, hostile = _runs(rt, "hostile")
    per_run = BURN_INSNS + appstate.RUN_COST
    periods = NS_PER_H // NS_PER_S
    assert runs <= periods * (20000 // per_run + 2)
    assert handled <= periods * (20000 // per_run + 2 + 16) + 200   # + one dropped event per timer per period
    assert [t for t, app, _m, _v in rt.logs if app == "polite"] == [k * 60 * NS_PER_S for k in range(1, 60)]


# radio_tx_done sends another packet: with no airtime each completion comes at the same instant
RESEND = """
    mov %r1, 0
    stxdw [%r10-8], %r1
    mov %r1, %r10
    add %r1, -8
    mov %r2, 8
    mov %r3, 1000000000
    call 0x1005
    mov %r0, 0
    exit
"""


def test_a_radio_send_loop_at_one_instant_ends():
    rt = Runtime()   # no platform: airtime 0, every completion at the time it was sent
    rt.load_app(manifest("loop", {"boot": "s", "radio_tx_done": "s"}, work={"budget": 50000}),
                {"s": Program.from_asm(RESEND)})
    rt.boot()
    rt.run_until(NS_PER_S // 2)
    app = rt.apps[0]
    assert 0 < rt.tx["sent"] <= 50000 // appstate.RUN_COST + 1
    assert app.throttled == 1   # the completion that found the credit gone ran nothing, so no more sends
    assert rt.summary()["throttled"] == {"apps": {"loop": 1}, "hooks": {"radio_tx_done": 1}}


def test_the_credit_comes_back_after_a_period():
    rt = _node(budget=10 * (BURN_INSNS + appstate.RUN_COST), period="100ms")
    rt.run_until(NS_PER_S)
    runs, hostile = _runs(rt, "hostile")
    # 10 runs in each 100 ms window (the last run may cross into the credit)
    assert 10 * 10 <= runs <= 10 * 11
    assert hostile.work_period_ns == 100 * NS_PER_MS


def test_the_board_sets_the_default_and_the_ceiling():
    class Board:
        ns_per_insn = 125
        work_budget_insns = 5000
        work_period_ns = 2 * NS_PER_S

    rt = Runtime(platform=SimPlatform({}, seed=1), board=Board())
    a = rt.load_app(manifest("a", {"timer": "t"}), {"t": Program.from_asm(BURN)})
    b = rt.load_app(manifest("b", {"timer": "t"}, work={"budget": 10 ** 6}), {"t": Program.from_asm(BURN)})
    c = rt.load_app(manifest("c", {"timer": "t"}, work={"budget": 100, "period": "10ms"}),
                    {"t": Program.from_asm(BURN)})
    assert (a.work_budget, a.work_period_ns) == (5000, 2 * NS_PER_S)
    assert (b.work_budget, b.work_period_ns) == (5000, 2 * NS_PER_S)   # the board's is a ceiling
    assert (c.work_budget, c.work_period_ns) == (100, 10 * NS_PER_MS)


@pytest.mark.parametrize("work, message", [
    ({"budget": 0}, "work.budget: must be an integer between 1 and"),
    ({"budget": True}, "work.budget: must be an integer"),
    ({"period": "1us"}, "work.period: must be between 1ms and 1h"),
    ({"period": "soon"}, "work.period:"),
    ({"cpu": 1}, "work.cpu: unknown field"),
])
def test_manifest_work_errors_name_the_field(work, message):
    with pytest.raises(LoadError, match=message):
        manifest("t", {"timer": "t"}, work=work)


def test_within_the_bound_nothing_changes():
    # helpers' own bound: 16 timers at 1 ms of a 2-instruction program stay under the default
    rt = Runtime(platform=SimPlatform({}, seed=1))
    rt.load_app(manifest("a", {"boot": "b", "timer": "t"}, budget=65536),
                {"b": Program.from_asm(ARM_16), "t": Program.from_asm("mov %r0, 0\nexit")})
    rt.boot()
    rt.run_until(NS_PER_S)
    assert rt.hook_stats["timer"].runs == helpers.MAX_APP_TIMERS * 999   # at 1, 2 .. 999 ms
    assert rt.apps[0].throttled == 0 and "throttled" not in rt.summary()


def test_the_simulate_text_names_the_throttled_apps():
    from iotbpf.api.result import SimulationResult

    rt = _node()
    rt.run_until(NS_PER_S)
    hostile = rt.apps[0]
    text = SimulationResult(rt.summary(), [a.name for a in rt.apps], NS_PER_S, 0).text()
    assert "throttled (out of work credit): hostile %d\n" % hostile.throttled in text
    quiet = Runtime(platform=SimPlatform({}, seed=1))
    quiet.load_app(manifest("polite", {"timer": "t"}, timers=[{"id": 0, "period": "100ms"}]),
                   {"t": Program.from_asm(LOG_NOW)})
    quiet.run_until(NS_PER_S)
    assert "throttled" not in SimulationResult(quiet.summary(), ["polite"], NS_PER_S, 0).text()


def test_a_board_file_sets_the_nodes_bounds(tmp_path):
    import json

    from iotbpf.energy.board import ModelError, find_file, load_board

    data = json.loads(open(find_file("boards", "nrf52840_dk", ".json")).read())
    data.update({"work_budget_insns": 4000, "work_period_ns": 500 * NS_PER_MS, "min_timer_period_ns": 5 * NS_PER_MS})
    (tmp_path / "b.json").write_text(json.dumps(data))
    board = load_board(str(tmp_path / "b.json"))
    rt = Runtime(platform=SimPlatform({}, seed=1), board=board)
    app = rt.load_app(manifest("a", {"timer": "t"}), {"t": Program.from_asm(BURN)})
    assert (app.work_budget, app.work_period_ns) == (4000, 500 * NS_PER_MS)
    assert helpers.min_timer_period_ns(rt) == 5 * NS_PER_MS
    stock = load_board("nrf52840_dk")
    assert (stock.work_budget_insns, stock.work_period_ns, stock.min_timer_period_ns) == (None, None, None)
    data["work_budget_insns"] = "lots"
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="work_budget_insns: expected a positive integer, got 'lots'"):
        load_board(str(tmp_path / "bad.json"))
