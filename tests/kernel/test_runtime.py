"""The runtime: each hook's context reaches programs with the declared layout, timers, budgets,
fault isolation (a faulty app is stopped, recorded, detached; the node keeps running), stats."""

import random

import pytest

from iotbpf.ebpf.program import Program
from iotbpf.kernel.clock import NS_PER_H, NS_PER_MIN, NS_PER_S
from iotbpf.kernel.hooks import HOOKS
from iotbpf.kernel.manifest import Manifest
from iotbpf.kernel.runtime import Runtime
from iotbpf.platforms.sim.platform import SimPlatform

LOADS = {1: "ldxb", 2: "ldxh", 4: "ldxw", 8: "ldxdw"}


def manifest(programs, **extra):
    data = {"version": 1, "name": extra.pop("name", "t"), "object": "t.o", "programs": programs}
    data.update(extra)
    return Manifest(data)


def node(**kw):
    kw.setdefault("platform", SimPlatform({}, seed=1))
    kw.setdefault("verify", False)
    return Runtime(**kw)


def scalar_fields():
    for hook in HOOKS.values():
        for f in hook.fields:
            if not f.ctype.endswith("]"):
                yield hook.name, f


@pytest.mark.parametrize("hook_name,field", list(scalar_fields()),
                         ids=["%s.%s" % (h, f.name) for h, f in scalar_fields()])
def test_each_context_field_reaches_the_program_at_its_declared_offset(hook_name, field):
    prog = Program.from_asm("%s %%r0, [%%r1+%d]\nexit" % (LOADS[field.size], field.offset))
    rt = node()
    rt.load_app(manifest({hook_name: "p"}), {"p": prog})
    rng = random.Random(field.offset * 31 + len(hook_name))
    values = {}
    for f in HOOKS[hook_name].fields:
        if f.ctype.endswith("]"):
            continue
        bits = 8 * f.size
        values[f.name] = rng.randrange(-(1 << (bits - 1)), 1 << (bits - 1)) if f.ctype.startswith("s") \
            else rng.randrange(1 << bits)
    values.pop("now_ns", None)
    results = rt.raise_event(hook_name, values, app=None) if hook_name != "boot" else \
        rt._run_hook(rt.hooks["boot"], "boot", dict(values, now_ns=0))
    expected = 0 if field.name == "now_ns" else values[field.name] & ((1 << (8 * field.size)) - 1)
    assert results == [expected]


def test_the_packet_payload_reaches_radio_rx_programs_byte_for_byte():
    off = HOOKS["radio_rx"].field("payload").offset
    prog = Program.from_asm("ldxdw %%r0, [%%r1+%d]\nexit" % (off + 8))
    rt = node()
    rt.load_app(manifest({"radio_rx": "rx"}), {"rx": prog})
    payload = bytes(range(1, 65))
    assert rt.raise_event("radio_rx", {"src": 1, "len": 64, "payload": payload}) == \
        [int.from_bytes(payload[8:16], "little")]


def test_a_writable_context_field_is_visible_to_the_next_program_on_the_hook():
    mark = HOOKS["radio_rx"].field("mark").offset
    writer = Program.from_asm("stw [%%r1+%d], 7\nmov %%r0, 1\nexit" % mark)
    reader = Program.from_asm("ldxw %%r0, [%%r1+%d]\nexit" % mark)
    rt = node()
    rt.load_app(manifest({"radio_rx": ["w"]}, name="a"), {"w": writer})
    app = rt.load_app(manifest({"radio_rx": ["r"]}, name="b"), {"r": reader})
    # contexts are per program: the reader sees the event's value, not the other app's write
    assert rt.raise_event("radio_rx", {"mark": 3}) == [1, 3]
    assert app.attached[0].ctx[mark] == 3


def test_manifest_timers_fire_periodically_in_virtual_time():
    prog = Program.from_asm("ldxw %r0, [%r1+20]\nexit")  # expirations
    rt = node()
    rt.load_app(manifest({"timer": "t"}, timers=[{"id": 1, "period": "1m"}]), {"t": prog})
    rt.run_until(NS_PER_H + 1)
    assert rt.hook_stats["timer"].runs == 60
    assert rt.clock.now_ns() == NS_PER_H + 1


def test_a_program_can_re_arm_and_cancel_its_timer_with_helpers():
    # at the first (1-minute) expiry: re-arm timer 0 every 10 minutes; at its 3rd expiry: cancel it
    prog = Program.from_asm("""
        ldxdw %r6, [%r1+8]
        ldxw %r7, [%r1+20]
        lddw %r8, 60000000000
        jne %r6, %r8, slow
        mov %r1, 0
        lddw %r2, 600000000000
        lddw %r3, 600000000000
        call 0x1001
        exit
    slow:
        mov %r0, 0
        jne %r7, 3, done
        mov %r1, 0
        call 0x1002
    done:
        exit
    """)
    rt = node()
    rt.load_app(manifest({"timer": "t"}, timers=[{"id": 0, "period": "1m"}]), {"t": prog})
    rt.run_until(2 * NS_PER_H)
    assert rt.hook_stats["timer"].runs == 4  # 1 min, then 11, 21, 31 min; cancelled at 31
    assert rt.apps[0].timers == {}


def test_same_seed_same_summary_and_different_seed_differs():
    prog = Program.from_asm("mov %r1, 0\ncall 0x1000\nexit")

    def run(seed):
        rt = Runtime(platform=SimPlatform({"gpio": [{"pin": 3, "rate_per_hour": 30}]}, seed=seed),
                     seed=seed, verify=False)
        rt.load_app(manifest({"timer": "t", "gpio": "t"}, timers=[{"id": 0, "period": "1m", "jitter": "5s"}]),
                    {"t": prog})
        rt.boot()
        rt.start_platform(6 * NS_PER_H)
        rt.run_until(6 * NS_PER_H)
        return rt.summary()

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_a_faulty_app_is_stopped_recorded_and_detached_while_the_node_keeps_running():
    bad = Program.from_asm("mov %r1, 0\nldxw %r0, [%r1+0]\nexit")  # NULL dereference
    good = Program.from_asm("mov %r0, 1\nexit")
    rt = node()
    rt.load_app(manifest({"timer": "bad"}, name="faulty", timers=[{"id": 0, "period": "1m"}],
                         faults={"max": 3, "window": "1h"}), {"bad": bad})
    rt.load_app(manifest({"timer": "good"}, name="healthy", timers=[{"id": 0, "period": "1m"}]),
                {"good": good})
    rt.run_until(NS_PER_H)
    faulty, healthy = rt.apps
    assert faulty.attached[0].faults == 3 and faulty.attached[0].detached
    assert healthy.attached[0].runs == 59 and healthy.attached[0].faults == 0
    record = rt.faults[0]
    assert (record["hook"], record["pc"], record["kind"]) == ("timer", 1, "oob")
    assert "pc 1: " in record["message"]
    assert rt.events == [{"t_ns": 3 * NS_PER_MIN, "event": "detached", "app": "faulty", "hook": "timer",
                          "section": "bad", "reason": rt.events[0]["reason"]}]
    assert rt.hook_stats["timer"].faults == 3


def test_faults_spread_wider_than_the_window_do_not_detach():
    bad = Program.from_asm("mov %r1, 0\nldxw %r0, [%r1+0]\nexit")
    rt = node()
    rt.load_app(manifest({"timer": "bad"}, timers=[{"id": 0, "period": "1h"}],
                         faults={"max": 2, "window": "30m"}), {"bad": bad})
    rt.run_until(10 * NS_PER_H)
    assert rt.apps[0].attached[0].faults == 9
    assert not rt.apps[0].attached[0].detached


def test_a_program_over_its_instruction_budget_is_stopped_with_a_budget_fault():
    spin = Program.from_asm("mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 100000, loop\nexit")
    rt = node()
    rt.load_app(manifest({"gpio": "spin"}, budget=1000), {"spin": spin})
    assert rt.raise_event("gpio", {"pin": 1}) == []
    assert rt.faults[0]["kind"] == "budget"
    assert rt.hook_stats["gpio"].insns <= 1000


def test_only_verified_programs_skip_clearing_their_stack_between_runs():
    prog = Program.from_asm("mov %r0, 0\nstdw [%r10-8], 7\nexit")
    for verify in (True, False):
        rt = node(verify=verify)
        rt.load_app(manifest({"gpio": "p"}), {"p": prog})
        assert rt.apps[0].attached[0].vm.clear_stack is (not verify)
        assert rt.raise_event("gpio", {"pin": 1}) == [0]


def test_handler_time_is_instructions_times_the_boards_instruction_time():
    class Board:
        ns_per_insn = 50.0

    prog = Program.from_asm("mov %r0, 1\nmov %r0, 2\nexit")
    rt = node(board=Board())
    rt.load_app(manifest({"gpio": "p"}), {"p": prog})
    rt.raise_event("gpio", {})
    stats = rt.hook_stats["gpio"].as_dict()
    assert stats == {"events": 1, "runs": 1, "instructions": 3, "faults": 0, "handler_ns": 150}


def test_idle_stretches_cost_nothing():
    prog = Program.from_asm("mov %r0, 0\nexit")
    rt = node(battery_report_ns=0)
    rt.load_app(manifest({"timer": "t"}, timers=[{"id": 0, "period": "1d"}]), {"t": prog})
    handled = rt.run_until(365 * 86400 * NS_PER_S)
    assert handled == 364


def test_posted_events_are_delivered_at_their_time():
    prog = Program.from_asm("ldxw %r0, [%r1+8]\nexit")
    rt = node()
    rt.load_app(manifest({"gpio": "p"}), {"p": prog})
    rt.post("gpio", {"pin": 9}, 5 * NS_PER_S)
    rt.run_until(10 * NS_PER_S)
    assert rt.hook_stats["gpio"].runs == 1


def test_injected_events_reach_programs_in_real_time():
    from iotbpf.kernel.clock import MonotonicClock

    prog = Program.from_asm("mov %r0, 0\nexit")
    rt = node(clock=MonotonicClock())
    rt.load_app(manifest({"gpio": "p"}), {"p": prog})
    rt.inject("gpio", {"pin": 4, "level": 1})
    rt.run_realtime(30 * 1000000)
    assert rt.hook_stats["gpio"].runs == 1


def test_loading_a_manifest_whose_section_is_missing_is_a_clear_error():
    from iotbpf.ebpf.errors import LoadError

    rt = node()
    with pytest.raises(LoadError, match="no program in section 'nope' for hook timer"):
        rt.load_app(manifest({"timer": "nope"}), {"other": Program.from_asm("exit")})


def test_the_verifier_checks_context_accesses_against_the_hook_layout():
    from iotbpf.ebpf.errors import VerifierError

    mark = HOOKS["radio_rx"].field("mark").offset
    src = HOOKS["radio_rx"].field("src").offset
    rt = Runtime(platform=SimPlatform({}, seed=1))  # verify=True: the node always verifies
    rt.load_app(manifest({"radio_rx": "ok"}, name="ok"),
                {"ok": Program.from_asm("stw [%%r1+%d], 2\nmov %%r0, 1\nexit" % mark)})
    with pytest.raises(VerifierError, match="app bad, section w"):
        rt.load_app(manifest({"radio_rx": "w"}, name="bad"),
                    {"w": Program.from_asm("stw [%%r1+%d], 2\nmov %%r0, 1\nexit" % src)})
    with pytest.raises(VerifierError):
        rt.load_app(manifest({"timer": "oob"}, name="oob"),
                    {"oob": Program.from_asm("ldxw %%r0, [%%r1+%d]\nexit" % HOOKS["timer"].size)})
    assert [a.name for a in rt.apps] == ["ok"]  # rejected apps are not loaded at all


def test_events_from_outside_must_name_a_hook_and_its_fields():
    from iotbpf.ebpf.errors import LoadError

    rt = node()
    with pytest.raises(LoadError, match="unknown hook 'gpi0'"):
        rt.post("gpi0", {}, 1)
    with pytest.raises(LoadError, match="hook gpio has no context field 'lvl'"):
        rt.inject("gpio", {"lvl": 1})


def test_a_real_platform_sends_the_packet_bytes_and_gets_the_log_lines():
    class Wire(SimPlatform):
        def __init__(self):
            SimPlatform.__init__(self, {"radio": {"loss_ppm": 0}}, seed=1)
            self.sent = []
            self.lines = []

        def transmit(self, app_name, payload, now_ns):
            self.sent.append((app_name, bytes(payload), now_ns))
            return len(self.sent) == 1  # the second packet is lost on the wire

        def log_line(self, now_ns, app_name, msg, value):
            self.lines.append((now_ns, app_name, msg, value))

    # boot: send 8 bytes of the stack twice, log "hi"
    prog = Program.from_asm("""
        lddw %r1, 0x0807060504030201
        stxdw [%r10-8], %r1
        mov %r1, %r10
        add %r1, -8
        mov %r2, 8
        mov %r3, 0
        call 0x1005
        mov %r1, %r10
        add %r1, -8
        mov %r2, 8
        mov %r3, 0
        call 0x1005
        mov %r1, 0x6968
        stxdw [%r10-16], %r1
        mov %r1, %r10
        add %r1, -16
        mov %r2, 8
        mov %r3, 42
        call 0x1009
        mov %r0, 0
        exit
    """)
    wire = Wire()
    rt = Runtime(platform=wire, verify=False)
    rt.load_app(manifest({"boot": "b"}, name="w"), {"b": prog})
    rt.run_until(NS_PER_S)
    assert [(a, p) for a, p, _t in wire.sent] == [("w", bytes(range(1, 9)))] * 2
    assert rt.tx["sent"] == 1 and rt.tx["lost"] == 1
    assert wire.lines == [(0, "w", "hi", 42)]


def test_transmissions_handed_over_by_take_done_end_exactly_as_through_wakeups():
    # a scheduler with SchedulerBase's take_done (hands nothing over) reports finished packets from
    # on_wakeup; one with its own hands them over when timed and the runtime makes each an event:
    # the same node either way
    from iotbpf.api import Node
    from iotbpf.kernel.scheduler_base import SchedulerBase

    results = []
    for hand_over in (True, False):
        node = Node("sensor_node", seed=2)
        node.build()
        if not hand_over:
            node.runtime.scheduler.take_done = SchedulerBase.take_done.__get__(node.runtime.scheduler)
        results.append(node.simulate("3d", samples=0).to_dict())
    assert results[0] == results[1]
    assert results[0]["summary"]["radio"]["tx"]["sent"] > 200


def test_timers_fired_again_without_the_heap_give_the_same_node_as_the_heap_loop():
    # run_until's simulated loop lets a periodic timer fire again in place while it stays the
    # earliest event; the loop with a progress callback always goes through the heap. Ties
    # (timers of two apps due at the same instant), jitter, a re-arm from inside the handler and
    # GPIO interrupts in between must come out in the same order either way.
    logger = Program.from_asm("""
        ldxdw %r6, [%r1+0]
        ldxw %r7, [%r1+16]
        ldxw %r8, [%r1+20]
        stw [%r10-8], 0x6b6374
        mov %r1, %r10
        add %r1, -8
        mov %r2, 4
        mov %r3, %r6
        add %r3, %r7
        call 0x1009
        jne %r8, 5, done
        jne %r7, 1, done
        mov %r1, %r7
        lddw %r2, 30000000000
        lddw %r3, 90000000000
        call 0x1001
    done:
        mov %r0, 0
        exit
    """)

    def run(progress):
        rt = Runtime(platform=SimPlatform({"gpio": [{"pin": 3, "rate_per_hour": 4}]}, seed=3), seed=3,
                     verify=False)
        timers = [{"id": 0, "period": "1m"}, {"id": 1, "period": "1m"}, {"id": 2, "period": "7m", "jitter": "20s"}]
        rt.load_app(manifest({"timer": "t", "gpio": "t"}, name="a", timers=timers), {"t": logger})
        rt.load_app(manifest({"timer": "t"}, name="b", timers=[{"id": 3, "period": "2m"}]), {"t": logger})
        rt.boot()
        rt.start_platform(5 * NS_PER_H)
        calls = []
        fired_in_place = 0
        for end in (NS_PER_H + 1, 181 * NS_PER_MIN, 5 * NS_PER_H):  # timer 0 is due alone at 181 min
            calls.append((rt.run_until(end, progress), len(rt.logs), rt.clock.now_ns()))
            fired_in_place += rt._direct_fired
        return (calls, rt.logs, rt.summary()), fired_in_place

    direct, fired_in_place = run(None)
    assert sum(c[0] for c in direct[0]) > 600 and len(direct[1]) > 500
    assert fired_in_place > 10  # the path under test was taken
    assert direct == run(lambda now_ns: None)[0]


@pytest.mark.parametrize("engine", ["compiled", "interp"])
def test_sensor_reads_follow_the_platform_when_it_is_replaced(engine):
    # the compiled engine calls the app's bound sensor helper directly (HelperSpec.bind); it must
    # still read the platform the node has now, and return the error value when there is none
    reader = Program.from_asm("""
        ldxdw %r1, [%r1+0]
        mov %r1, 0
        call 0x1000
        mov %r3, %r0
        stw [%r10-8], 0x76
        mov %r1, %r10
        add %r1, -8
        mov %r2, 1
        call 0x1009
        mov %r0, 0
        exit
    """)

    def platform(mean):
        return SimPlatform({"sensors": [{"id": 0, "model": "random_walk", "mean": mean, "step_size": 0,
                                         "diurnal": 0}]}, seed=1)

    rt = Runtime(platform=platform(1000), seed=1, verify=False, engine=engine)
    rt.load_app(manifest({"timer": "t"}, timers=[{"id": 0, "period": "1m"}]), {"t": reader})
    rt.run_until(3 * NS_PER_MIN + 1)
    rt.platform = platform(2000)
    rt.run_until(5 * NS_PER_MIN + 1)
    rt.platform = None
    rt.run_until(6 * NS_PER_MIN + 1)
    assert [value for _t, _app, _text, value in rt.logs] == [1000, 1000, 1000, 2000, 2000, 1 << 63]


def test_run_statistics_are_exact_when_read_at_any_moment(monkeypatch):
    # runs are counted in per-program cells and folded into the program's and the hook's
    # statistics when read: after a forgotten cell (more distinct instruction counts than the
    # memo keeps), a replaced program and a replaced scheduler, nothing is lost or counted twice
    import iotbpf.kernel.runtime as runtime_module

    monkeypatch.setattr(runtime_module, "RUN_MEMO_MAX", 4)
    looping = Program.from_asm("""
        ldxw %r2, [%r1+20]
        mod %r2, 7
        mov %r0, 0
    again:
        jeq %r2, 0, out
        add %r0, 1
        sub %r2, 1
        ja again
    out:
        exit
    """)

    def insns_of(expiration):
        return 5 + 4 * (expiration % 7)

    rt = node()
    rt.load_app(manifest({"timer": "t"}, timers=[{"id": 0, "period": "1m"}]), {"t": looping})
    att = rt.hooks["timer"][0]
    stats = rt.hook_stats["timer"]
    rt.run_until(30 * NS_PER_MIN + 1)
    assert (att.runs, att.insns) == (30, sum(insns_of(e) for e in range(1, 31)))
    assert (stats.runs, stats.insns) == (att.runs, att.insns)
    assert stats.handler_ns == att.handler_ns == att.insns * rt.ns_per_insn
    rt.run_until(50 * NS_PER_MIN + 1)
    rt.replace_program("t", "t", looping)
    assert stats.runs == 50  # (read before the old program's own statistics)
    fresh = rt.hooks["timer"][0]
    assert fresh is not att and fresh.runs == 0 and att.runs == 50
    rt.scheduler = None
    rt.run_until(60 * NS_PER_MIN + 1)
    assert (fresh.runs, fresh.insns) == (10, sum(insns_of(e) for e in range(51, 61)))
    assert (stats.runs, stats.insns) == (60, sum(insns_of(e) for e in range(1, 61)))
    assert rt.summary()["hooks"]["timer"]["runs"] == 60


def test_the_runtimes_own_events_pack_their_context_in_the_declared_layout():
    # packet completions and battery reports pack their fields positionally (no dict): what a
    # program finds must still be each field at its declared offset
    send = Program.from_asm("""
        stdw [%r10-8], 0
        mov %r1, %r10
        add %r1, -8
        mov %r2, 8
        mov %r3, 0
        call 0x1005
        mov %r0, 0
        exit
    """)
    done = Program.from_asm("mov %r0, 0\nexit")
    rt = Runtime(platform=SimPlatform({"radio": {"loss_ppm": 0}}, seed=1), verify=False)
    app = rt.load_app(manifest({"boot": "b", "radio_tx_done": "d", "battery": "d"}),
                      {"b": send, "d": done})
    rt.run_until(NS_PER_H + 1)
    contexts = {att.hook.name: HOOKS[att.hook.name].unpack(att.ctx) for att in app.attached}
    tx = contexts["radio_tx_done"]
    assert tx["nbytes"] == 8 and tx["ok"] == 1 and tx["deadline_missed"] == 1 and tx["pad"] == 0
    assert 0 < tx["now_ns"] == tx["latency_ns"] < NS_PER_S  # queued at boot, time 0
    assert contexts["battery"] == {"now_ns": NS_PER_H, "energy_used_uj": 0, "soc_permille": 1000, "flags": 0}
    assert rt.hook_stats["radio_tx_done"].runs == 1 and rt.hook_stats["battery"].runs == 1
