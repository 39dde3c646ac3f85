"""The battery fed by the load's per-burst current profile, not its interval average (issue 21).

KiBaM (Manwell & McGowan 1993) and Peukert's law are rate-dependent: a node that sends a 100 mA
burst for 1 % of the time draws the same charge as a steady 1 mA, but the battery sees 100 mA.
``Battery.draw(..., profile=(bursts, [(current_a, ns), ...]))`` spreads each level over ``bursts``
equal cycles (each ending with its burst); the runtime feeds it from the energy ledger at every
battery update (``accounting.LedgerProfile``)."""

import pytest

from iotbpf.energy.battery import KiBaMBattery, kibam_cycles, kibam_step, make_battery

NS = 1000000000
H = 3600 * NS
C_REF, K_REF = 0.166, 0.122 / 60.0  # Jongerden & Haverkort's reference KiBaM parameters


def test_kibam_cycles_equals_the_cycles_stepped_one_by_one():
    cycle = [(0.001, 35.0), (0.12, 0.05), (0.03, 0.2)]
    for n in (1, 2, 7, 60, 1000):
        y1, y2 = 300.0, 500.0
        for _ in range(n):
            for current, dt in cycle:
                y1, y2 = kibam_step(y1, y2, current, dt, C_REF, K_REF)
        f1, f2 = kibam_cycles(300.0, 500.0, cycle, n, C_REF, K_REF)
        assert f1 == pytest.approx(y1, rel=1e-9, abs=1e-9)
        assert f2 == pytest.approx(y2, rel=1e-9, abs=1e-9)


def bursty(battery, hours, burst_a=0.1, duty=0.01, bursts=60, idle_a=0.0):
    """``hours`` hourly draws of a load at ``burst_a`` for ``duty`` of the time in ``bursts``
    bursts an hour (idle_a between): returns the mean current it was drawn at."""
    busy_ns = int(H * duty)
    mean = (burst_a * busy_ns + idle_a * (H - busy_ns)) / H
    for _ in range(hours):
        if not battery.draw(mean, H, profile=(bursts, [(burst_a, busy_ns)])):
            break
    return mean


def test_a_bursty_load_drains_kibam_available_charge_deeper_than_its_average():
    avg = KiBaMBattery(10.0, 3.0, c=C_REF, k_per_s=K_REF)
    burst = KiBaMBattery(10.0, 3.0, c=C_REF, k_per_s=K_REF)
    mean = bursty(burst, 1)
    avg.draw(mean, H)
    # the same charge left the cell ...
    assert burst.y1 + burst.y2 == pytest.approx(avg.y1 + avg.y2, rel=1e-12)
    assert burst.drawn_c == pytest.approx(avg.drawn_c, rel=1e-12)
    # ... but the available well ends each burst lower: at the hour's end (after a 0.6 s burst of
    # 100 mA) it holds about 60 mC less than the average's (the burst's charge x (1 - c))
    dip = avg.y1 - burst.y1
    assert 0.5 * 0.06 * (1 - C_REF) < dip < 0.06
    # the bursts are where a KiBaM cell dies: a small cell that outlives the hour at the average
    # current dies under its bursts
    # (10 mAh, one 36 s burst of 500 mA an hour: 18 C, the average 5 mA)
    small_avg = KiBaMBattery(10.0, 3.0, c=C_REF, k_per_s=K_REF)
    small_burst = KiBaMBattery(10.0, 3.0, c=C_REF, k_per_s=K_REF)
    bursty(small_burst, 1, burst_a=0.5, bursts=1)
    assert small_burst.dead() and small_burst.dead_at_ns <= H
    assert small_avg.draw(0.5 * 0.01, H) and not small_avg.dead()
    assert small_avg.y1 > 0.1 * small_avg.c * small_avg.capacity_c


def test_peukert_charges_each_burst_at_its_own_rate():
    # E91 alkaline AA (k 1.25 above the rated 25 mA, see CELLS): 100 mA bursts 1 % of the time
    # average 1 mA, below the rated current, where the average would cost exactly its charge
    avg = make_battery({"model": "peukert", "cell": "e91", "self_discharge_per_year": 0.0})
    burst = make_battery({"model": "peukert", "cell": "e91", "self_discharge_per_year": 0.0})
    mean = bursty(burst, 10)
    for _ in range(10):
        avg.draw(mean, H)
    used_avg = avg.capacity_c - avg.level_c
    used_burst = burst.capacity_c - burst.level_c
    assert used_avg == pytest.approx(mean * 36000, rel=1e-9)
    # each burst costs I (I / I_ref)^(k - 1): (100 / 25)^0.25 = 1.414 x its charge
    assert used_burst == pytest.approx(used_avg * (0.1 / 0.025) ** 0.25, rel=1e-3)
    assert burst.drawn_c == pytest.approx(avg.drawn_c, rel=1e-12)


def test_ideal_battery_ignores_the_profile():
    a = make_battery({"model": "ideal", "capacity_mah": 100, "voltage_v": 3.0})
    b = make_battery({"model": "ideal", "capacity_mah": 100, "voltage_v": 3.0})
    mean = bursty(b, 5)
    for _ in range(5):
        a.draw(mean, H)
    assert a.soc() == pytest.approx(b.soc(), rel=1e-12)


def test_a_profile_that_does_not_fit_its_interval_falls_back_to_the_average():
    a = KiBaMBattery(10.0, 3.0, c=C_REF, k_per_s=K_REF)
    b = KiBaMBattery(10.0, 3.0, c=C_REF, k_per_s=K_REF)
    a.draw(0.01, H)
    b.draw(0.01, H, profile=(3, [(0.01, 2 * H)]))
    assert (a.y1, a.y2) == (b.y1, b.y2)


@pytest.mark.parametrize("policy", ["batching", "always_on"])
def test_the_runtime_feeds_the_battery_the_ledger_profile_of_its_bursts(policy):
    from iotbpf.api import Node

    # always_on: the radio's listening is its background, the TX bursts rise above it
    node = Node("sensor_node", board="esp32_devkit", policy=policy, seed=1)
    rt = node.build()
    rt.boot()
    batt = rt.scheduler.battery
    assert batt.kind == "kibam" and batt.profile_source is not None
    seen = []
    source = batt.profile_source

    def spy(mean_a, dt_ns):
        out = source(mean_a, dt_ns)
        seen.append((mean_a, dt_ns, out))
        return out

    batt.profile_source = spy
    rt.start_platform(3 * H)
    rt.run_until(3 * H)
    mean_a, dt_ns, (bursts, levels) = seen[-1]
    assert dt_ns == H and bursts > 10  # the sensor app's bursts in an hour
    radio = rt.scheduler.board.component("radio")
    top = max(a for a, _ns in levels)
    # the highest level is the ESP32's TX burst (190 mA at 3.3 V, converted to the cell)
    assert top > 0.5 * radio.current_a("tx") * radio.voltage_v / batt.voltage_v
    busy_c = sum(a * ns for a, ns in levels) * 1e-9
    assert busy_c < mean_a * dt_ns * 1e-9  # the levels are part of the hour's charge
    assert sum(ns for _a, ns in levels) < dt_ns // 100  # bursts, not the background
