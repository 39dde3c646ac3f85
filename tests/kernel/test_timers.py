"""kernel/timers.py: arming, cancelling and firing app timers, and the work bound on their expiries."""

from iotbpf.ebpf.program import Program
from iotbpf.kernel.clock import NS_PER_MS, NS_PER_S
from iotbpf.kernel.manifest import Manifest
from iotbpf.kernel.runtime import Runtime
from iotbpf.platforms.sim.platform import SimPlatform

BURN = "mov %r6, 0\nloop:\nadd %r6, 1\njlt %r6, 100, loop\nmov %r0, 0\nexit"   # 203 instructions
# logs the expiry's time (context now_ns) and timer id
LOG = """
    ldxdw %r3, [%r1+0]
    ldxw %r6, [%r1+16]
    stxdw [%r10-8], %r6
    mov %r1, %r10
    add %r1, -8
    mov %r2, 1
    call 0x1009
    mov %r0, 0
    exit
"""


def node(programs, **extra):
    data = {"version": 1, "name": "t", "object": "t.o", "programs": programs}
    data.update(extra)
    rt = Runtime(platform=SimPlatform({}, seed=1))
    return rt, Manifest(data)


def test_re_arming_replaces_the_timer_and_cancel_stops_it():
    rt, m = node({"timer": "t"})
    app = rt.load_app(m, {"t": Program.from_asm(LOG)})
    rt.arm_timer(app, 1, 10 * NS_PER_MS, 0)
    rt.arm_timer(app, 1, 30 * NS_PER_MS, 0)      # the 10 ms expiry is void now
    rt.arm_timer(app, 2, 5 * NS_PER_MS, 20 * NS_PER_MS)
    rt.run_until(50 * NS_PER_MS)
    assert rt.cancel_timer(app, 2) and not rt.cancel_timer(app, 2) and not rt.cancel_timer(app, 1)
    rt.run_until(200 * NS_PER_MS)
    assert [(t, ord(msg)) for t, _a, msg, _v in rt.logs] == [
        (5 * NS_PER_MS, 2), (25 * NS_PER_MS, 2), (30 * NS_PER_MS, 1), (45 * NS_PER_MS, 2)]


def test_a_one_shot_timer_of_an_app_out_of_credit_is_deferred_until_the_credit_is_back():
    # boot spends the whole credit (203 + 50 > 200); the one-shot timer due at 5 ms waits for 1 s
    rt, m = node({"boot": "b", "timer": "t"}, work={"budget": 200, "period": "1s"},
                 timers=[{"id": 7, "period": "0s", "start": "5ms"}])
    app = rt.load_app(m, {"b": Program.from_asm(BURN), "t": Program.from_asm(LOG)})
    rt.boot()
    rt.run_until(2 * NS_PER_S)
    assert [(t, ord(msg)) for t, _a, msg, _v in rt.logs] == [(NS_PER_S, 7)]
    assert app.throttled == 1 and rt.hook_stats["timer"].throttled == 1 and app.timers == {}


def test_a_periodic_timer_skips_the_expiries_inside_the_window_and_keeps_its_phase():
    rt, m = node({"timer": "t"}, work={"budget": 300, "period": "100ms"},
                 timers=[{"id": 0, "period": "30ms", "start": "10ms"}])
    burn_and_log = Program.from_asm(LOG.replace("    mov %r0, 0\n    exit", BURN))
    app = rt.load_app(m, {"t": burn_and_log})
    rt.boot()
    rt.run_until(250 * NS_PER_MS)
    # a run costs about 260 of the 300 credit: two runs per window (the second overdraws it).
    # Window [0, 100 ms): runs at 10 and 40, 70 dropped; the expiry at 100 refills the credit
    # (window [100, 200)): runs at 100 and 130, 160 and 190 dropped; 220 refills and runs.
    assert [t // NS_PER_MS for t, _a, _m, _v in rt.logs] == [10, 40, 100, 130, 220]
    assert app.throttled == 3 and app.work_since == 220 * NS_PER_MS
