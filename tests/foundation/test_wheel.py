"""The wheel carries the data folders, so bare names work after a plain `pip install .`."""

import subprocess
import sys
import zipfile

from conftest import REPO


def test_wheel_contains_apps_boards_energy_models_and_bench(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(REPO)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    wheel = next(tmp_path.glob("iotbpf-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("apps", "boards", "energy_models", "bench"):
        assert any(n.startswith("iotbpf/_data/%s/" % kind) for n in names), kind
    for source in (REPO / "boards").glob("*.json"):
        assert "iotbpf/_data/boards/" + source.name in names
    for source in (REPO / "energy_models").glob("*.json"):
        assert "iotbpf/_data/energy_models/" + source.name in names
