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
