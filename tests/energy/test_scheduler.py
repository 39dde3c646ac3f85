"""Scheduler policies, the oracle (never beaten), policy parameters, and sensor_node runs."""


import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iotbpf.kernel.scheduler import (
    compare,
    lora_time_on_air_ns,
    make_scheduler,
    oracle,
    run_trace,
)

NS = 1000000000


def drive(policy, trace, board="nrf52840_dk", params=None, end=None, listens=(), cpu=()):
    """Run a scheduler directly on a trace of (t, nbytes, relative deadline) without the VM."""
    sched = make_scheduler(policy, board, params)
    sched.boot(0)
    if end is None:
        end = max([e[0] for e in list(trace) + list(listens) + list(cpu)] or [0]) + 3600 * NS
    return run_trace(sched, end, tx=trace, listens=listens, cpu=cpu, tx_app=lambda n: "app%d" % (n % 3))


def test_batching_beats_baselines_on_a_periodic_sensor_trace():
    trace = [(i * 60 * NS, 12, 30 * 60 * NS) for i in range(1, 1440)]
    runs = {p: drive(p, trace, end=86400 * NS) for p in ("always_on", "duty_cycle", "batching")}
    energy = {p: s.energy_used_j() for p, s in runs.items()}
    assert energy["batching"] < energy["duty_cycle"] < energy["always_on"]
    assert all(s.stats["missed"] == 0 for s in runs.values())
    rows = compare(runs)
    from iotbpf.report.export import comparison_rows
    from iotbpf.report.text import format_comparison

    table = format_comparison(comparison_rows(runs, rows, {}))
    assert "oracle" in table and "power/oracle" in table and "rx_lost" in table
    ratios = {r["policy"]: r["ratio_to_oracle"] for r in rows}
    assert ratios["oracle"] == 1.0 and min(ratios.values()) >= 1.0 - 1e-12


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
    values[8] = 5 * NS                                 # IOT_POLICY_DUTY_PERIOD_NS
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
    from iotbpf.report.text import energy_summary_lines

    assert any(line.startswith("oracle (offline optimum") for line in energy_summary_lines(sched.summary()))


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


def _windows(sched):
    """Start times of the scheduled receive windows recorded so far."""
    return [s for s, _d, app in sched.trace_listen if app == "system"]


def _run_wakeups(sched, end):
    while True:
        wake = sched.next_wakeup_ns()
        if wake is None or wake > end:
            return
        sched.advance(wake)
        sched.on_wakeup(wake)


@pytest.mark.parametrize("policy", ["duty_cycle", "batching", "dvfs", "race", "oracle"])
def test_listen_interval_and_window_set_before_boot_and_changed_mid_run_take_effect(policy):
    values = [0] * 16
    values[1] = 4 * NS          # IOT_POLICY_LISTEN_INTERVAL_NS, set before boot
    values[2] = 3000000         # IOT_POLICY_LISTEN_WINDOW_NS
    sched = make_scheduler(policy, "nrf52840_dk")
    sched.boot(0)
    sched.set_param_reader(lambda: values)   # the runtime attaches its reader after boot
    _run_wakeups(sched, 10 * NS)
    assert _windows(sched) == [4 * NS, 8 * NS]
    assert sched.stats["listen_ns"] == 2 * 3000000
    values[1] = 7 * NS          # a program or a remote update changes it mid-run
    values[2] = 5000000
    _run_wakeups(sched, 23 * NS)
    assert _windows(sched) == [4 * NS, 8 * NS, 15 * NS, 22 * NS]
    assert sched.stats["listen_ns"] == 2 * 3000000 + 2 * 5000000
    values[1] = 0               # off again: no more windows (duty_cycle falls back to its default)
    _run_wakeups(sched, 40 * NS)
    assert _windows(sched) == [4 * NS, 8 * NS, 15 * NS, 22 * NS]


def test_duty_cycle_first_period_comes_from_the_map():
    sched = make_scheduler("duty_cycle", "nrf52840_dk")
    sched.update_params({"DUTY_PERIOD_NS": 45 * NS})
    sched.boot(0)
    assert sched.next_wakeup_ns() == 45 * NS


def test_duty_cycle_keeps_the_maps_receive_windows_and_sends_only_at_its_own_wake_ups():
    sched = make_scheduler("duty_cycle", "nrf52840_dk")
    sched.update_params({"LISTEN_INTERVAL_NS": NS, "LISTEN_WINDOW_NS": 3000000, "DUTY_PERIOD_NS": 10 * NS})
    sched.boot(0)
    _run_wakeups(sched, 2 * NS)
    assert _windows(sched) == [NS, 2 * NS]            # required windows, as every policy keeps them
    assert sched.rx_arrival(2 * NS + 1000, 20) is True
    sched.enqueue_tx(2 * NS + 2000, 20, 4 * NS, "a")  # listening, but duty_cycle waits for its wake-up
    _run_wakeups(sched, 9 * NS)
    assert sched.stats["packets"] == 0
    _run_wakeups(sched, 10 * NS)
    assert sched.stats["packets"] == 1 and sched.stats["missed"] == 1


@pytest.mark.parametrize("policy", ["batching", "dvfs", "race", "oracle"])
def test_check_interval_set_before_boot_and_changed_mid_run_takes_effect(policy):
    values = [0] * 16
    values[7] = 2 * NS          # IOT_POLICY_CHECK_INTERVAL_NS, set before boot
    sched = make_scheduler(policy, "nrf52840_dk")
    sched.boot(0)
    sched.set_param_reader(lambda: values)
    sched.advance(10 * NS)
    sched.flush()
    assert sched.stats["checks"] == 5                 # 2, 4, 6, 8, 10 s
    assert sched.rx_arrival(10 * NS + 1, 20) is True  # caught at the check at 12 s
    values[7] = 5 * NS          # changed mid-run: the next check is 5 s after the last one (10 s)
    _run_wakeups(sched, 30 * NS)
    sched.advance(30 * NS)
    sched.flush()
    assert sched.stats["checks"] == 5 + 4             # 15, 20, 25, 30 s: the 12 s check never came
    assert sched.stats["rx_packets"] == 1 and sched.stats["rx_deferred"] == 1
    assert 4 * NS < sched.stats["rx_wait_ns"] < 6 * NS   # received at the 15 s check
    values[7] = 0
    sched.next_wakeup_ns()      # the runtime asks after every event: the map is read then
    sched.advance(60 * NS)
    sched.flush()
    assert sched.stats["checks"] == 9
    assert sched.rx_arrival(61 * NS, 20) is False and sched.stats["rx_missed"] == 1


@pytest.mark.parametrize("policy", ["batching", "dvfs", "race", "oracle"])
def test_max_batch_delay_changed_mid_run_moves_the_next_send(policy):
    sched = make_scheduler(policy, "nrf52840_dk")
    sched.boot(0)
    sched.enqueue_tx(0, 20, 3600 * NS, "a")
    assert sched.next_wakeup_ns() == 15 * 60 * NS
    sched.update_params({"MAX_BATCH_DELAY_NS": 10 * NS})
    assert sched.next_wakeup_ns() == 10 * NS
    _run_wakeups(sched, 10 * NS)
    assert sched.stats["packets"] == 1


@pytest.mark.parametrize("policy", ["batching", "dvfs", "race", "oracle"])
def test_tx_queue_limit_changed_mid_run_flushes_at_three_quarters(policy):
    sched = make_scheduler(policy, "nrf52840_dk")
    sched.boot(0)
    sched.enqueue_tx(0, 100, 3600 * NS, "a")
    assert sched.stats["packets"] == 0
    sched.update_params({"TX_QUEUE_LIMIT_BYTES": 200})
    sched.enqueue_tx(NS, 60, 3600 * NS, "a")       # 160 >= 3/4 of 200
    assert sched.stats["packets"] == 2


def test_summary_is_read_only():
    sched = make_scheduler("batching", "nrf52840_dk")
    sched.boot(0)
    sched.enqueue_tx(0, 20, 3600 * NS, "a")
    sched.cpu_busy(0, 50000, "a")
    sched.advance(10 * NS)
    before = (list(sched.queue), dict(sched.stats), dict(sched.ledger.ns), sched.next_wakeup_ns())
    first = sched.summary()
    assert first["tx"]["queued"] == 1
    assert (list(sched.queue), dict(sched.stats), dict(sched.ledger.ns), sched.next_wakeup_ns()) == before
    assert sched.summary() == first
    assert first["energy_j"] == pytest.approx(sum(c["energy_j"] for c in first["components"].values()))


def test_a_packet_arriving_while_the_radio_sleeps_is_missed_and_listening_costs_rx():
    sched = make_scheduler("batching", "nrf52840_dk")
    sched.boot(0)
    assert sched.rx_arrival(NS, 20) is False
    sched.update_params({"LISTEN_INTERVAL_NS": 2 * NS, "LISTEN_WINDOW_NS": 10000000})
    _run_wakeups(sched, 2 * NS)
    assert sched.rx_arrival(2 * NS + 1000, 20) is True
    assert sched.stats["rx_missed"] == 1 and sched.stats["rx_packets"] == 1
    on = make_scheduler("always_on", "nrf52840_dk")
    on.boot(0)
    assert on.rx_arrival(NS, 20) is True
    sched.advance(3 * NS)
    rx = sched.summary()["components"]["radio"]["states"]["rx"]
    assert rx["ns"] == 10000000 and rx["energy_j"] > 0


def test_lora_alarm_scenario_batching_is_near_the_oracle_and_the_baselines_are_clearly_worse():
    from conftest import REPO
    from iotbpf.api import Node

    runs = {}
    for policy in ("always_on", "duty_cycle", "batching"):
        node = Node(str(REPO / "apps" / "lora_alarm"), seed=3, policy=policy)
        node.simulate("1d")
        runs[policy] = node.scheduler
    rows = {r["policy"]: r for r in compare(runs)}
    assert rows["batching"]["deadline_misses"] == 0
    assert 1.0 - 1e-12 <= rows["batching"]["ratio_to_oracle"] < 1.15
    assert rows["duty_cycle"]["deadline_misses"] > 0          # 60 s wake-ups miss 3 s alarms
    assert rows["always_on"]["ratio_to_oracle"] > 100
    assert rows["oracle"]["deadline_misses"] == 0


def test_a_policy_value_a_boot_program_writes_arms_the_receive_windows():
    from conftest import REPO
    from iotbpf.api import Node

    node = Node(str(REPO / "apps" / "ble_commands"), seed=1, policy="batching")
    node.simulate("2m")
    rx = node.runtime.rx
    assert rx["missed"] == 0 and rx["received"] == 3     # commands at 30, 60, 90 s, each in an event
    assert node.scheduler.stats["listen_ns"] >= 115 * 3000000   # ~120 events (replies displace a little)
