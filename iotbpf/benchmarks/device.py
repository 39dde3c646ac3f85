"""RAM of the device profile under real MicroPython: live heap per module and with sensor_node running.

Needs the MicroPython WebAssembly port (`npm ci` in tests/micropython of a source checkout, or
IOTBPF_MICROPYTHON naming a runner command) and mpy-cross; without them it reports why it did
not run. Measures what DESIGN.md's 100 KiB target speaks of: gc.mem_alloc() after a collection.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from iotbpf.platforms.device import FolderTransport, deploy, device_profile_modules, plan_deploy

REPO = Path(__file__).resolve().parent.parent.parent
STAND_IN_MACHINE = REPO / "tests" / "platforms" / "mcu" / "machine.py"


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


def _script(modules: list[str], engine: str) -> str:
    code = "import sys, gc\nsys.path.insert(0, '/root/lib')\nimport machine\n# @gc\nlast = gc.mem_alloc()\n"
    code += "print('RAM base', last)\n"
    for name in modules:
        code += "import %s\n# @gc\nnow = gc.mem_alloc()\nprint('RAM %s', now - last)\nlast = now\n" % (name, name)
    code += ("from iotbpf.platforms import mcu\nnode = mcu.load_node('/root/app', pin_dir='/root/pins', engine=%r)\n"
             "node.run(500 * 10**6)\n# @gc\nnow = gc.mem_alloc()\nprint('RAM sensor_node loaded and running', "
             "now - last)\nprint('RAM total', now)\n" % engine)
    return code


def run(quick: bool = False) -> list[dict]:
    runner = _runner()
    if runner is None or not STAND_IN_MACHINE.exists():
        return [{"name": "device RAM", "value": "not measured", "unit": "",
                 "note": "needs the MicroPython npm package of a source checkout (tests/micropython)"}]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fs = Path(tmp) / "fs"
        deploy(plan_deploy("sensor_node", workdir=Path(tmp) / "stage"), FolderTransport(fs))
        shutil.copy(STAND_IN_MACHINE, fs / "lib" / "machine.py")
        app = json.loads((fs / "app" / "app.json").read_text())
        app["timers"][0]["period"] = "100ms"
        (fs / "app" / "app.json").write_text(json.dumps(app))
        modules = [m for m in device_profile_modules() if m.count(".") >= 2 and m != "iotbpf.ebpf.compiler"
                   and m != "iotbpf.ebpf.cfg"]
        deployed = Path(tmp) / "ram_deployed.py"
        deployed.write_text(_script([], "interp"))
        proc = subprocess.run(runner + [str(fs), str(deployed)], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError("MicroPython failed: " + proc.stderr[-2000:])
        total = [line for line in proc.stdout.splitlines() if line.startswith("RAM total ")]
        rows.append({"name": "live heap as deployed (load_node imports only what it needs)",
                     "value": int(total[0].rsplit(" ", 1)[1]), "unit": "bytes"})
        for engine in ("interp",) if quick else ("interp", "compiled"):
            script = Path(tmp) / ("ram_%s.py" % engine)
            script.write_text(_script(modules if engine == "interp" else [], engine))
            proc = subprocess.run(runner + [str(fs), str(script)], capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError("MicroPython failed: " + proc.stderr[-2000:])
            for line in proc.stdout.splitlines():
                if line.startswith("RAM "):
                    label, value = line[4:].rsplit(" ", 1)
                    if engine == "compiled" and label != "total":
                        continue
                    name = ("live heap, %s engine, every profile module imported" % engine) if label == "total" \
                        else "  " + label
                    rows.append({"name": name, "value": int(value), "unit": "bytes"})
    rows.append({"name": "target (DESIGN.md)", "value": 100 * 1024, "unit": "bytes"})
    return rows
