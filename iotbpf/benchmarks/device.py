"""`iotbpf bench device`: RAM (``gc.mem_alloc()`` after a collection) and flash of the device runtime
under real MicroPython, sensor_node deployed with energy accounting on; without the MicroPython
port or mpy-cross it reports why it did not run (docs/mcu.md, "RAM and flash").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from iotbpf.platforms.device import (
    FLASH_BUDGET_BYTES,
    FolderTransport,
    deploy,
    device_profile_modules,
    plan_deploy,
    plan_update,
)


def _checkout() -> Path:
    """The source checkout whose tests/ hold the MicroPython runner and the stand-in ``machine``
    module: the current folder when it is one (an installed iotbpf run from a checkout, as CI
    does), else the folder above the package."""
    for candidate in (Path.cwd(), Path(__file__).resolve().parent.parent.parent):
        if (candidate / "tests" / "micropython" / "run_micropython.mjs").is_file():
            return candidate
    return Path(__file__).resolve().parent.parent.parent


REPO = _checkout()
STAND_IN_MACHINE = REPO / "tests" / "platforms" / "mcu" / "machine.py"
RAM_TARGET_BYTES = 64 * 1024
BOARD = "nrf52840_dk"
DEVICE_CONFIG = {"gpio": [{"pin": 5, "trigger": "falling"}], "sensors": [{"id": 0, "adc": 3}]}
# the order node.start imports them (the package root, then what each needs)
IMPORT_ORDER = ("iotbpf", "iotbpf.device", "iotbpf.device.vm", "iotbpf.device.maps", "iotbpf.device.node",
                "iotbpf.device.hw", "iotbpf.device.image", "iotbpf.device.energy")


def _runner() -> list[str] | None:
    env = os.environ.get("IOTBPF_MICROPYTHON")
    if env:
        return env.split()
    script = REPO / "tests" / "micropython" / "run_micropython.mjs"
    package = REPO / "tests" / "micropython" / "node_modules" / "@micropython"
    node = shutil.which("node")
    if node and script.exists() and package.is_dir():
        return [node, str(script)]
    return None


_START = ("from iotbpf.device import node\nn = node.start('/root/app', pin_dir='/root/pins')\n"
          "n.run(300 * 10**6)\nmachine.drive(5, 0)\nn.run(300 * 10**6)\n")


def _script(per_module: bool) -> str:
    code = "import sys, gc\nsys.path.insert(0, '/root/lib')\nimport machine\nmachine.set_adc(3, [21000, 31000])\n"
    code += "# @gc\nlast = gc.mem_alloc()\nprint('RAM base', last)\n"
    if per_module:
        for name in IMPORT_ORDER:
            code += "import %s\n# @gc\nnow = gc.mem_alloc()\nprint('RAM %s', now - last)\nlast = now\n" % (name, name)
    code += _START + "# @gc\nnow = gc.mem_alloc()\nprint('RAM sensor_node loaded and running', now - last)\n"
    code += "print('RAM total', now)\nprint('RUNS', n.stats['timer'][1], n.battery_permille())\n"
    code += "print('COUNTER', n.image['counter'])\n"
    return code


def _measure(runner: list[str], fs: Path, script: Path) -> list[tuple[str, int]]:
    proc = subprocess.run(runner + [str(fs), str(script)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError("MicroPython failed: " + proc.stderr[-2000:])
    rows = []
    for line in proc.stdout.splitlines():
        if line.startswith("RAM "):
            label, value = line[4:].rsplit(" ", 1)
            rows.append((label, int(value)))
        elif line.startswith("RUNS ") and int(line.split()[1]) < 2:
            raise RuntimeError("sensor_node did not run: " + line)
        elif line.startswith("COUNTER "):
            rows.append(("counter", int(line.split()[1])))
    return rows


def run(quick: bool = False) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fs = Path(tmp) / "fs"
        plan = plan_deploy("sensor_node", board=BOARD, device_config=DEVICE_CONFIG, workdir=Path(tmp) / "stage",
                           timer_period_ns=100 * 10**6)
        deploy(plan, FolderTransport(fs))
        for local, remote in plan.files:
            rows.append({"name": "  flash " + remote, "value": local.stat().st_size, "unit": "bytes"})
        rows.append({"name": "flash, deployed files (%d modules + image + main.py)" % len(device_profile_modules()),
                     "value": plan.flash_bytes(), "unit": "bytes"})
        rows.append({"name": "flash budget", "value": FLASH_BUDGET_BYTES, "unit": "bytes"})
        runner = _runner()
        if runner is None or not STAND_IN_MACHINE.exists():
            rows.append({"name": "device RAM", "value": "not measured", "unit": "",
                         "note": "needs the MicroPython npm package of a source checkout (tests/micropython)"})
            return rows
        shutil.copy(STAND_IN_MACHINE, fs / "lib" / "machine.py")
        deployed = Path(tmp) / "ram_deployed.py"
        deployed.write_text(_script(False))
        total = dict(_measure(runner, fs, deployed))["total"]
        rows.append({"name": "live heap as deployed, sensor_node running (energy + SoC on)", "value": total,
                     "unit": "bytes"})
        if not quick:
            per_module = Path(tmp) / "ram_modules.py"
            per_module.write_text(_script(True))
            for label, value in _measure(runner, fs, per_module):
                if label != "counter":
                    name = "live heap, imported module by module" if label == "total" else "  " + label
                    rows.append({"name": name, "value": value, "unit": "bytes"})
            # an over-the-air update waiting on the board: the node applies it between slices
            update = plan_update("sensor_node", board=BOARD, device_config=DEVICE_CONFIG,
                                 workdir=Path(tmp) / "update", counter=1)
            shutil.copy(update.files[0][0], fs / "app" / "update.dimg")
            measured = dict(_measure(runner, fs, deployed))
            if measured.get("counter") != 1:
                raise RuntimeError("the update was not applied")
            rows.append({"name": "live heap after an OTA update (ota imported, rollback kept)",
                         "value": measured["total"], "unit": "bytes"})
    rows.append({"name": "RAM target (issue 28)", "value": RAM_TARGET_BYTES, "unit": "bytes"})
    return rows
