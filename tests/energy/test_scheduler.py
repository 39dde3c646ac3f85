"""Scheduler policies, the DP oracle (exact, never beaten), policy parameters, and sensor_node runs."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iotbpf.kernel.scheduler import (
    compare,
    format_compare,
    lora_time_on_air_ns,
    make_scheduler,
    optimal_burst_times,
    oracle,
)

NS = 1000000000


def drive(policy, trace, board="nrf52840_dk", params=None, end=None, listens=(), cpu=()):
    """Run a scheduler directly on a trace of (t, nbytes, relative deadline) without the VM."""
    sched = make_scheduler(policy, board, params)
    sched.boot(0)
    events = [(t, 1, ("tx", n, d)) for t, n, d in trace] + [(t, 0, ("listen", d)) for t, d in listens] \
        + [(t, 2, ("cpu", b)) for t, b in cpu]
    events.sort(key=lambda e: (e[0], e[1]))

    def catch_up(t):
        while True:
            wake = sched.next_wakeup_ns()
            if wake is None or wake > t:
                return
            sched.advance(wake)
            sched.on_wakeup(wake)

    for t, _o, ev in events:
        catch_up(t)
        sched.advance(t)
        if ev[0] == "tx":
            sched.enqueue_tx(t, ev[1], t + ev[2], "app%d" % (ev[1] % 3))
        elif ev[0] == "listen":
            sched.request_listen(t, ev[1], "listener")
        else:
            sched.cpu_busy(t, ev[1], "app")
    end = end if end is not None else (events[-1][0] if events else 0) + 3600 * NS
    catch_up(end)
    sched.advance(end)
    sched.flush()
    return sched


def test_batching_beats_baselines_on_a_periodic_sensor_trace():
    trace = [(i * 60 * NS, 12, 30 * 60 * NS) for i in range(1, 1440)]
    runs = {p: drive(p, trace, end=86400 * NS) for p in ("always_on", "duty_cycle", "batching")}
    energy = {p: s.energy_used_j() for p, s in runs.items()}
    assert energy["batching"] < energy["duty_cycle"] < energy["always_on"]
    assert all(s.stats["missed"] == 0 for s in runs.values())
    rows = compare(runs)
    table = format_compare(rows)
    assert "oracle" in table and "x oracle" in table
    ratios = {r["policy"]: r["ratio_to_oracle"] for r in rows}
    assert ratios["oracle"] == 1.0 and min(ratios.values()) >= 1.0 - 1e-12


def brute_force(windows, listens, cost_out, cost_in):
    """Exhaustive minimum over subsets of every integer time point (tiny instances only)."""
    lo = min(a for a, _l in windows)
    hi = max(last for _a, last in windows)
    points = list(range(lo, hi + 1))

    def cost(t):
        return cost_in if any(s <= t < e for s, e in listens) else cost_out

    best = None
    for r in range(1, len(windows) + 1):
        for combo in itertools.combinations(points, r):
            if all(any(a <= t <= last for t in combo) for a, last in windows):
                c = sum(cost(t) for t in combo)
                best = c if best is None or c < best else best
    return best


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 4)), min_size=1, max_size=4),
       st.lists(st.tuples(st.integers(0, 14), st.integers(1, 4)), max_size=2),
       st.sampled_from([(1.0, 0.25), (1.0, 1.0), (2.0, 0.5), (0.5, 2.0), (1.0, 0.0)]))
def test_dp_oracle_is_exact_on_small_instances(raw, raw_listens, costs):
    windows = [(a, a + w) for a, w in raw]
    listens = sorted((s, s + d) for s, d in raw_listens)
    merged = []
    for s, e in listens:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    value, times = optimal_burst_times(windows, merged, *costs)
    assert value == pytest.approx(brute_force(windows, merged, *costs))
    assert all(any(a <= t <= last for t in times) for a, last in windows)


trace_strategy = st.lists(
    st.tuples(st.integers(1, 600), st.integers(1, 300), st.integers(61, 3600)), min_size=1, max_size=25)


@settings(max_examples=40)
@given(trace_strategy, st.sampled_from(["nrf52840_dk", "telosb", "lora_node", "esp32_devkit"]),
       st.lists(st.tuples(st.integers(1, 6000), st.integers(1, 2000)), max_size=3))
def test_no_policy_beats_the_oracle_on_random_traces(gaps, board, listens):
    t = 0
    trace = []
    for gap_s, nbytes, deadline_s in gaps:
        t += gap_s * NS
        trace.append((t, nbytes, deadline_s * NS))
    listen_events = [(s * NS, d * 1000000) for s, d in listens]
    end = t + 7200 * NS
    runs = {p: drive(p, trace, board, end=end, listens=listen_events,
                     cpu=[(x[0], 50000) for x in trace])
            for p in ("always_on", "duty_cycle", "batching", "dvfs")}
    best = oracle(runs["batching"], end)
    floor = best.oracle_info["lower_bound_j"]
    for policy, sched in runs.items():
        assert sched.stats["missed"] == 0, policy
        assert sched.energy_used_j() >= floor * (1 - 1e-9), policy


def test_policy_parameters_come_from_the_iot_policy_map():
    values = [0] * 16
    reader_calls = []

    def reader():
        reader_calls.append(1)
        return values

    sched = make_scheduler("duty_cycle", "nrf52840_dk")
    sched.set_param_reader(reader)
    sched.boot(0)
    assert sched.next_wakeup_ns() == 60 * NS          # default period
    values[1] = 5 * NS                                 # IOT_POLICY_LISTEN_INTERVAL_NS
    sched.on_wakeup(60 * NS)
    assert sched.next_wakeup_ns() == 65 * NS
    sched.update_params({"LISTEN_WINDOW_NS": 2000000})
    assert sched.pval("IOT_POLICY_LISTEN_WINDOW_NS") == 2000000
    assert reader_calls


def test_batching_holds_packets_no_longer_than_max_batch_delay():
    sched = make_scheduler("batching", "nrf52840_dk")
    sched.boot(0)
    sched.update_params({"MAX_BATCH_DELAY_NS": 10 * NS})
    sched.enqueue_tx(0, 20, 3600 * NS, "a")
    assert sched.next_wakeup_ns() == 10 * NS
    sched.update_params({"MAX_BATCH_DELAY_NS": 0})
    due = sched.next_wakeup_ns()
    assert 3590 * NS < due < 3600 * NS  # just before the deadline, minus guard and airtime
    done = sched.on_wakeup(due)
    assert done == [] and sched.done and sched.done[0][0] <= 3600 * NS


def test_dvfs_runs_light_load_slower_than_race_to_idle_on_a_multi_frequency_cpu():
    race = make_scheduler("batching", "phone", {"cpu_policy": "race"})
    dvfs = make_scheduler("dvfs", "phone")
    best = make_scheduler("batching", "phone", {"cpu_policy": "min_energy"})
    for s in (race, dvfs, best):
        s.boot(0)
        for i in range(100):
            s.cpu_busy(i * NS, 1000000, "app")
        s.advance(100 * NS)
        s.flush()
    dvfs_states = {state for (comp, state) in dvfs.ledger.ns if comp == "cpu"}
    race_states = {state for (comp, state) in race.ledger.ns if comp == "cpu"}
    assert race.cpu_run in race_states
    assert any(state.startswith("run@") and state != dvfs.cpu_run for state in dvfs_states)
    e = {n: s.ledger.energy_j("cpu") for n, s in (("race", race), ("dvfs", dvfs), ("best", best))}
    assert e["best"] <= e["race"] and e["best"] <= e["dvfs"]


def test_lora_time_on_air_follows_the_sx1276_formula():
    # SF7, 125 kHz, CR 4/5, 8-symbol preamble, explicit header, CRC, 10-byte payload:
    # n_payload = 8 + ceil((80 - 28 + 28 + 16) / 28) * 5 = 28 symbols; preamble 12.25 symbols;
    # T_sym = 2^7 / 125 kHz = 1.024 ms -> 40.25 x 1.024 ms = 41.216 ms.
    assert lora_time_on_air_ns(10, 7, 125000, 1, 8) == 41216000


def test_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="unknown policy"):
        make_scheduler("lazy", "nrf52840_dk")


def test_sensor_node_default_board_batching_beats_always_on_and_duty_cycle():
    from iotbpf.api import Node

    runs = {}
    for policy in ("always_on", "duty_cycle", "batching"):
        node = Node("sensor_node", seed=3, policy=policy)
        node.simulate("1d")
        assert node.board.name == "nrf52840_dk"
        runs[policy] = node.scheduler
    energy = {p: s.energy_used_j() for p, s in runs.items()}
    assert energy["batching"] < energy["duty_cycle"] < energy["always_on"]
    assert runs["batching"].stats["missed"] == 0
    rows = {r["policy"]: r for r in compare(runs)}
    assert rows["batching"]["ratio_to_oracle"] >= 1.0 - 1e-12
    assert rows["batching"]["ratio_to_oracle"] < 1.01


def test_sample_is_read_only_and_agrees_with_the_final_ledger():
    a = drive("batching", [(i * 60 * NS, 30, 900 * NS) for i in range(1, 200)], end=200 * 60 * NS)
    b = make_scheduler("batching", "nrf52840_dk")
    b.boot(0)
    t = 0
    snaps = []
    for i in range(1, 200):
        t = i * 60 * NS
        while True:
            wake = b.next_wakeup_ns()
            if wake is None or wake > t:
                break
            b.advance(wake)
            b.on_wakeup(wake)
        b.advance(t)
        b.enqueue_tx(t, 30, t + 900 * NS, "app%d" % (30 % 3))
        snaps.append(b.sample(t))
    end = 200 * 60 * NS
    while True:
        wake = b.next_wakeup_ns()
        if wake is None or wake > end:
            break
        b.advance(wake)
        b.on_wakeup(wake)
    b.advance(end)
    final = b.sample(end)
    b.flush()
    assert b.energy_used_j() == a.energy_used_j()          # sampling changed nothing
    assert final["components"]["cpu"]["energy_j"] == pytest.approx(b.ledger.energy_j("cpu"), rel=1e-9)
    assert sum(final["apps"].values()) == pytest.approx(
        sum(c["energy_j"] for c in final["components"].values()), rel=1e-9)
    assert [s["t_ns"] for s in snaps] == sorted(s["t_ns"] for s in snaps)


def test_oracle_policy_reports_the_offline_optimum_in_its_summary():
    sched = drive("oracle", [(i * 60 * NS, 30, 20 * 60 * NS) for i in range(1, 300)], end=300 * 60 * NS)
    info = sched.summary()["oracle"]
    assert info["lower_bound_j"] <= sched.energy_used_j() * (1 + 1e-12)
    assert any(line.startswith("oracle (offline optimum") for line in sched.summary_lines())


def test_a_solar_board_in_daylight_can_be_energy_neutral():
    sched = make_scheduler("batching", "esp32_devkit")
    sched.boot(0)
    for hour in range(1, 49):
        sched.cpu_busy(hour * 3600 * NS, 1000000, "app")
        sched.advance(hour * 3600 * NS)
    summary = sched.summary()
    assert summary["battery"]["harvested_mah"] > 0
    assert summary["lifetime_days"] is None
    dark = make_scheduler("batching", "esp32_devkit")
    dark.harvester = None
    dark.boot(0)
    dark.advance(48 * 3600 * NS)
    assert dark.lifetime_days() > 0


def test_bumping_the_cpu_and_sensor_counters_charges_exactly_what_the_calls_charge():
    # the runtime bumps scheduler.cpu_counter/sensor_counter cells instead of calling per run
    called = make_scheduler("batching", "nrf52840_dk")
    bumped = make_scheduler("batching", "nrf52840_dk")
    for sched in (called, bumped):
        sched.boot(0)
    cpu_cell = bumped.cpu_counter(35000, "app")
    sensor_cell = bumped.sensor_counter(0, "app")
    for i in range(1, 500):
        t = i * 60 * NS
        for sched in (called, bumped):
            sched.advance(t)
        called.cpu_busy(t, 35000, "app")
        called.sensor_read(t, 0, "app")
        cpu_cell[0] += 1
        sensor_cell[0] += 1
    for sched in (called, bumped):
        sched.advance(600 * 60 * NS)
        sched.flush()
    assert called.trace_cpu == bumped.trace_cpu == {(35000, "app"): 499}
    assert called.trace_sensor == bumped.trace_sensor == {(0, "app"): 499}
    assert called.ledger.ns == bumped.ledger.ns and called.attr.ns == bumped.attr.ns
    assert called.energy_used_j() == bumped.energy_used_j() > 0
    # the DVFS governor needs each burst's time: no counter, calls only
    assert make_scheduler("dvfs", "esp32_devkit").cpu_counter(35000, "app") is None
