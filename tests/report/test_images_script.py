"""docs/images/regenerate.py keeps working: the 1 d pictures of every kind and the HTML screenshots."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from matplotlib.image import imread

from conftest import REPO, missing


@pytest.mark.slow
def test_the_images_script_draws_every_kind(tmp_path):
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        missing("chromium (apt install chromium)")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, str(REPO / "docs" / "images" / "regenerate.py"), "--quick", "--out",
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = {p.name for p in tmp_path.iterdir()}
    assert {"node_1d.png", "compare_1d.png", "fleet_1d.png", "monitor.png", "html_report.png",
            "html_report_zoom.png"} <= names
    for name in names:
        assert imread(tmp_path / name).std() > 0.05, name   # drawn, not blank
