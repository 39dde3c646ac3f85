"""The runtime runs sensor_node under real MicroPython for a simulated day, loaded from its .ibpf
bundle (the ELF reader is host-only), with its board's energy model and scheduler, and produces
exactly what CPython produces."""

import subprocess
import sys

from conftest import REPO

SIMULATE_A_DAY = """
import json
from iotbpf.kernel import app
from iotbpf.energy.board import load_board
from iotbpf.kernel.runtime import Runtime
from iotbpf.kernel.scheduler import make_scheduler
from iotbpf.platforms.sim.platform import SimPlatform

m, progs = app.load(ROOT + "apps/sensor_node/app.json", prefer="bundle")
board = load_board(m.board)
rt = Runtime(platform=SimPlatform(m.sim, 5), seed=5, engine="interp", board=board,
             scheduler=make_scheduler(m.policy, board))
rt.load_app(m, progs)
rt.boot()
rt.start_platform(86400 * 10**9)
handled = rt.run_until(86400 * 10**9)
s = rt.summary()
lines = ["events %d" % handled]
for name in sorted(s["hooks"]):
    h = s["hooks"][name]
    lines.append("%s %d %d %d %d %d" % (name, h["events"], h["runs"], h["instructions"], h["faults"],
                                       h["handler_ns"]))
for key in sorted(s["radio"]["tx"]):
    lines.append("tx %s %d" % (key, s["radio"]["tx"][key]))
stats = rt.apps[0].maps[".bss.stats"]
lines.append("stats " + bytes(stats.values).hex())
lines.append("energy %.9e J, soc %.9f" % (rt.scheduler.energy_used_j(), rt.scheduler.soc()))
print("\\n".join(lines))
"""


def test_sensor_node_runs_a_simulated_day_under_micropython_like_cpython(micropython, tmp_path):
    files = {"apps/sensor_node/app.json": REPO / "apps" / "sensor_node" / "app.json",
             "apps/sensor_node/sensor_node.ibpf": REPO / "apps" / "sensor_node" / "sensor_node.ibpf",
             "boards": REPO / "boards", "energy_models": REPO / "energy_models"}
    result = micropython.run('ROOT = "/root/"\n' + SIMULATE_A_DAY, files=files)
    script = tmp_path / "day.py"
    script.write_text("ROOT = %r\n" % (str(REPO) + "/") + SIMULATE_A_DAY)
    cpython = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO)
    assert cpython.returncode == 0, cpython.stderr
    assert result.stdout == cpython.stdout
    assert "timer 1439 1439 " in result.stdout and "energy " in result.stdout
