"""Issue 24, items 8-9: bounds a verified program cannot push the host past (sensor ids, timers)."""

from iotbpf.ebpf.program import Program
from iotbpf.kernel import helpers
from iotbpf.kernel.appstate import MAX_SENSOR_CACHE
from iotbpf.kernel.clock import NS_PER_MIN, NS_PER_S
from iotbpf.kernel.manifest import Manifest
from iotbpf.kernel.runtime import Runtime
from iotbpf.platforms.sim.platform import SimPlatform

MASK64 = (1 << 64) - 1


def manifest(programs, **extra):
    data = {"version": 1, "name": "t", "object": "t.o", "programs": programs}
    data.update(extra)
    return Manifest(data)


def _sensor_cache(app):
    fn = app.env.sensor_helper
    for cell in fn.__closure__ or ():
        if isinstance(cell.cell_contents, dict):
            return cell.cell_contents
    raise AssertionError("no sensor cache in the helper")


# Every timer run reads 50 sensor ids never seen before (the expirations count moves them on).
EVER_NEW_SENSORS = """
    ldxw %r6, [%r1+20]
    mul %r6, 50
    mov %r7, 0
loop:
    mov %r1, %r6
    add %r1, %r7
    call 0x1000
    add %r7, 1
    jlt %r7, 50, loop
    mov %r0, 0
    exit
"""


def test_ever_new_sensor_ids_keep_no_host_memory_and_read_as_errors():
    platform = SimPlatform({"sensors": [{"id": 0, "name": "t", "model": "random_walk", "mean": 21000}]}, seed=1)
    rt = Runtime(platform=platform, verify=False)
    rt.load_app(manifest({"timer": "t"}, timers=[{"id": 0, "period": "1s"}], budget=4096),
                {"t": Program.from_asm(EVER_NEW_SENSORS)})
    rt.boot()
    rt.run_until(10 * NS_PER_MIN)    # 600 runs, 30 000 distinct sensor ids
    cache = _sensor_cache(rt.apps[0])
    assert len(cache) <= 1 <= MAX_SENSOR_CACHE   # only the board's sensor 0 (before: 30 000 entries)
    read = Program.from_asm("mov %r1, 12345\ncall 0x1000\nexit")
    rt2 = Runtime(platform=platform, verify=False)
    rt2.load_app(manifest({"boot": "b"}), {"b": read})
    assert rt2._run_hook(rt2.hooks["boot"], "boot", {"now_ns": 0}) == [helpers.SENSOR_ERROR]


# The boot program arms timers 0..N-1 with the period in the context-free r9.
ARM_MANY = """
    mov %r6, 0
loop:
    mov %r1, %r6
    mov %r2, 1000
    mov %r3, PERIOD
    call 0x1001
    stxdw [%r10-8], %r0
    add %r6, 1
    jlt %r6, 1000, loop
    ldxdw %r0, [%r10-8]
    exit
"""


def _arm_many(period):
    rt = Runtime(platform=SimPlatform({}, seed=1), verify=False)
    tick = Program.from_asm("mov %r0, 0\nexit")
    rt.load_app(manifest({"boot": "b", "timer": "t"}, budget=65536),
                {"b": Program.from_asm(ARM_MANY.replace("PERIOD", str(period))), "t": tick})
    return rt


def test_timers_faster_than_the_minimum_period_are_refused():
    rt = _arm_many(1000)        # 1 000 timers at 1 us: before the fix, 999 000 runs per virtual ms
    rt.boot()
    assert rt.apps[0].timers == {}
    rt.run_until(NS_PER_S // 1000)
    assert rt.hook_stats["timer"].runs == 0


def test_timers_per_app_are_bounded():
    rt = _arm_many(helpers.MIN_TIMER_PERIOD_NS)
    rt.boot()
    assert len(rt.apps[0].timers) == helpers.MAX_APP_TIMERS      # the other 984 got -ENOSPC
    rt.run_until(NS_PER_S)
    runs = rt.hook_stats["timer"].runs
    # the bound docs/runtime.md states: timers x (1 s / minimum period) per virtual second
    assert 0 < runs <= helpers.MAX_APP_TIMERS * (NS_PER_S // helpers.MIN_TIMER_PERIOD_NS)


def test_a_one_shot_timer_re_armed_with_no_delay_cannot_spin_in_place():
    rearm = Program.from_asm("mov %r1, 0\nmov %r2, 0\nmov %r3, 0\ncall 0x1001\nmov %r0, 0\nexit")
    rt = Runtime(platform=SimPlatform({}, seed=1), verify=False)
    rt.load_app(manifest({"timer": "t"}, timers=[{"id": 0, "period": "1s"}]), {"t": rearm})
    rt.boot()
    rt.run_until(2 * NS_PER_S)
    assert rt.hook_stats["timer"].runs <= 2 * NS_PER_S // helpers.MIN_TIMER_PERIOD_NS + 2


def test_the_boards_minimum_timer_period_applies():
    class SlowBoard:   # a board may raise the minimum (Board objects with min_timer_period_ns)
        min_timer_period_ns = 50 * 1000000
        ns_per_insn = 125

    arm = Program.from_asm("mov %r1, 3\nmov %r2, 0\nmov %r3, 20000000\ncall 0x1001\nexit")
    rt = Runtime(platform=SimPlatform({}, seed=1), verify=False, board=SlowBoard())
    rt.load_app(manifest({"boot": "b"}), {"b": arm})
    assert rt._run_hook(rt.hooks["boot"], "boot", {"now_ns": 0}) == [(-22) & MASK64]   # 20 ms < 50 ms
    assert helpers.min_timer_period_ns(rt) == 50 * 1000000
