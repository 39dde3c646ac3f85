"""The energy core and the scheduler run under real MicroPython and give CPython's numbers."""

import json

from conftest import REPO

SNIPPET = """
import json
from iotbpf.energy.board import load_board
from iotbpf.kernel.scheduler import make_scheduler, oracle
board = load_board(json.load(open('/root/board.json')), models_dir='/root/models')
out = {}
for policy in ('always_on', 'duty_cycle', 'batching'):
    s = make_scheduler(policy, board)
    s.boot(0)
    t = 0
    for i in range(300):
        t += 60 * 1000000000
        s.advance(t)
        w = s.next_wakeup_ns()
        while w is not None and w <= t:
            s.advance(w)
            s.on_wakeup(w)
            w = s.next_wakeup_ns()
        s.cpu_busy(t, 50000, 'app')
        s.sensor_read(t, 0, 'app')
        if i % 10 == 9:
            s.enqueue_tx(t, 40, t + 900 * 1000000000, 'app')
    s.advance(t)
    s.flush()
    out[policy] = [sum(s.ledger.ns.values()), s.energy_used_j(), s.stats['bursts']]
out['oracle'] = oracle(s).energy_used_j()
print(json.dumps(out))
"""


def run_cpython():
    from iotbpf.energy.board import load_board
    from iotbpf.kernel.scheduler import make_scheduler, oracle
    board = load_board("nrf52840_dk")
    out = {}
    s = None
    for policy in ("always_on", "duty_cycle", "batching"):
        s = make_scheduler(policy, board)
        s.boot(0)
        t = 0
        for i in range(300):
            t += 60 * 1000000000
            s.advance(t)
            w = s.next_wakeup_ns()
            while w is not None and w <= t:
                s.advance(w)
                s.on_wakeup(w)
                w = s.next_wakeup_ns()
            s.cpu_busy(t, 50000, "app")
            s.sensor_read(t, 0, "app")
            if i % 10 == 9:
                s.enqueue_tx(t, 40, t + 900 * 1000000000, "app")
        s.advance(t)
        s.flush()
        out[policy] = [sum(s.ledger.ns.values()), s.energy_used_j(), s.stats["bursts"]]
    out["oracle"] = oracle(s).energy_used_j()
    return out


def test_scheduler_under_micropython_matches_cpython(micropython):
    board = json.loads((REPO / "boards" / "nrf52840_dk.json").read_text())
    files = {"board.json": json.dumps(board)}
    for comp in board["components"].values():
        files["models/%s.json" % comp] = REPO / "energy_models" / (comp + ".json")
    result = micropython.run(SNIPPET, files=files)
    got = json.loads(result.stdout.strip().splitlines()[-1])
    want = run_cpython()
    for policy in ("always_on", "duty_cycle", "batching"):
        assert got[policy][0] == want[policy][0]          # integer ledgers identical
        assert got[policy][2] == want[policy][2]
        assert abs(got[policy][1] - want[policy][1]) <= 1e-9 * want[policy][1]
    assert abs(got["oracle"] - want["oracle"]) <= 1e-9 * want["oracle"]


IMPORTER = """
import json
from iotbpf.energy import android_profile
from iotbpf.energy.models import parse_model
from iotbpf.energy.battery import KiBaMBattery, PeukertBattery
from iotbpf.energy.harvest import DayNightSolar
p = android_profile.parse_power_profile(open('/root/pp.xml').read())
cpu = parse_model(android_profile.phone_model(p, 'x', 'cpu'))
print(json.dumps([p['suspend_ma'], p['idle_ma'], [c['cores'] for c in p['clusters']],
                  sorted(cpu.states), KiBaMBattery(1000, 3.0, c=0.166, k_per_s=0.00203).time_to_empty_s(0.5),
                  PeukertBattery(1000, 3.0, peukert_k=1.2).time_to_empty_s(0.2),
                  DayNightSolar(1.0).energy_j(0, 86400 * 10 ** 9)]))
"""


def test_importer_and_battery_models_under_micropython_match_cpython(micropython, shared):
    from iotbpf.energy import android_profile
    from iotbpf.energy.battery import KiBaMBattery, PeukertBattery
    from iotbpf.energy.harvest import DayNightSolar
    from iotbpf.energy.models import parse_model

    xml = shared / "data" / "power_profile_sample.xml"
    got = json.loads(micropython.run(IMPORTER, files={"pp.xml": xml}).stdout.strip().splitlines()[-1])
    p = android_profile.parse_power_profile(xml.read_text())
    cpu = parse_model(android_profile.phone_model(p, "x", "cpu"))
    assert got[:4] == [p["suspend_ma"], p["idle_ma"], [c["cores"] for c in p["clusters"]], sorted(cpu.states)]
    want = [KiBaMBattery(1000, 3.0, c=0.166, k_per_s=0.00203).time_to_empty_s(0.5),
            PeukertBattery(1000, 3.0, peukert_k=1.2).time_to_empty_s(0.2),
            DayNightSolar(1.0).energy_j(0, 86400 * 10 ** 9)]
    for a, b in zip(got[4:], want):
        assert abs(a - b) <= 1e-9 * abs(b)


PHYSICS = """
import json
from iotbpf.energy.battery import make_battery, brownout_soc, CELLS
from iotbpf.energy.harvest import ClearSkySolar
from iotbpf.energy.neutral import neutral_period_ns
w = json.load(open('/root/weather.json'))
panel = ClearSkySolar(w['latitude_deg'], 0.0004, 0.15, 305, w['daily_ghi_wh_m2'], 0.8)
b = make_battery({'model': 'ideal', 'cell': 'cr2032', 'pulse_a': 0.029})
b.draw(1e-3, 400 * 3600 * 10 ** 9)
n = make_battery({'model': 'peukert', 'cell': 'e91', 'params': {'rated_hours': 100.0}})
print(json.dumps([panel.energy_j(0, 86400 * 10 ** 9), panel.energy_j(3 * 3600 * 10 ** 9, 13 * 3600 * 10 ** 9),
                  b.dead_at_ns, b.drawn_c, brownout_soc(CELLS['cr2032'], 0.029), n.time_to_empty_s(0.3),
                  neutral_period_ns([0.0] * 8 + [50.0] * 8 + [0.0] * 8, 3600.0, 1e-3, 0.15, 0.9, 0.0,
                                    10 ** 9, 3600 * 10 ** 9)]))
"""


def test_cells_clear_sky_and_neutral_solver_under_micropython_match_cpython(micropython):
    from iotbpf.energy.battery import CELLS, brownout_soc, make_battery
    from iotbpf.energy.harvest import ClearSkySolar
    from iotbpf.energy.neutral import neutral_period_ns

    path = REPO / "weather" / "tmy3_703165_sand_point_ak.json"
    got = json.loads(micropython.run(PHYSICS, files={"weather.json": path}).stdout.strip().splitlines()[-1])
    w = json.loads(path.read_text())
    panel = ClearSkySolar(w["latitude_deg"], 0.0004, 0.15, 305, w["daily_ghi_wh_m2"], 0.8)
    b = make_battery({"model": "ideal", "cell": "cr2032", "pulse_a": 0.029})
    b.draw(1e-3, 400 * 3600 * 10 ** 9)
    n = make_battery({"model": "peukert", "cell": "e91", "params": {"rated_hours": 100.0}})
    want = [panel.energy_j(0, 86400 * 10 ** 9), panel.energy_j(3 * 3600 * 10 ** 9, 13 * 3600 * 10 ** 9),
            b.dead_at_ns, b.drawn_c, brownout_soc(CELLS["cr2032"], 0.029), n.time_to_empty_s(0.3),
            neutral_period_ns([0.0] * 8 + [50.0] * 8 + [0.0] * 8, 3600.0, 1e-3, 0.15, 0.9, 0.0,
                              10 ** 9, 3600 * 10 ** 9)]
    assert got[2] == want[2] and got[6] == want[6]  # integer ns identical
    for a, b_ in zip(got, want):
        assert abs(a - b_) <= 1e-9 * abs(b_)


PROFILE = """
import json
from iotbpf.energy.battery import make_battery, kibam_cycles
H = 3600 * 10 ** 9
k = make_battery({'model': 'kibam', 'capacity_mah': 10.0, 'voltage_v': 3.0,
                  'params': {'c': 0.166, 'k_per_s': 0.00203}})
k.draw(0.005, H, profile=(60, [(0.5, 36 * 10 ** 9 // 60 * 60)]))
p = make_battery({'model': 'peukert', 'cell': 'e91', 'self_discharge_per_year': 0.0})
p.draw(0.001, H, profile=(60, [(0.1, 36 * 10 ** 9)]))
t = make_battery({'model': 'ideal', 'cell': 'l91', 'temperature_c': -41})
print(json.dumps([k.y1, k.y2, p.level_c, kibam_cycles(300.0, 500.0, [(0.001, 35.0), (0.12, 0.05)], 1000,
                                                     0.166, 0.00203)[0], t.dead(), t.floor_soc]))
"""


def test_burst_profiles_and_temperature_under_micropython_match_cpython(micropython):
    from iotbpf.energy.battery import kibam_cycles, make_battery

    got = json.loads(micropython.run(PROFILE).stdout.strip().splitlines()[-1])
    H = 3600 * 10 ** 9
    k = make_battery({"model": "kibam", "capacity_mah": 10.0, "voltage_v": 3.0,
                      "params": {"c": 0.166, "k_per_s": 0.00203}})
    k.draw(0.005, H, profile=(60, [(0.5, 36 * 10 ** 9 // 60 * 60)]))
    p = make_battery({"model": "peukert", "cell": "e91", "self_discharge_per_year": 0.0})
    p.draw(0.001, H, profile=(60, [(0.1, 36 * 10 ** 9)]))
    t = make_battery({"model": "ideal", "cell": "l91", "temperature_c": -41})
    want = [k.y1, k.y2, p.level_c, kibam_cycles(300.0, 500.0, [(0.001, 35.0), (0.12, 0.05)], 1000,
                                                0.166, 0.00203)[0], t.dead(), t.floor_soc]
    assert got[4:] == [True, 1.0]
    for a, b in zip(got[:4], want[:4]):
        assert abs(a - b) <= 1e-9 * abs(b)
