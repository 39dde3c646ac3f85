"""Refactors leave simulation output byte-identical: bench/outputs.py re-runs the cases bench/RESULTS.md
uses (simulate text and JSON for sensor_node, rx_filter and app_monitor, the policy comparison, dvfs)
and compares them with the outputs stored in tests/data/outputs.

A change that means to alter results re-records them (`python bench/outputs.py --record`) in the same
commit, and says why in its message."""

import subprocess
import sys

from conftest import REPO


def test_simulation_outputs_are_byte_identical_to_the_stored_ones():
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "outputs.py"), "--check"], capture_output=True,
                          text=True, cwd=REPO, timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("same ") == 6, proc.stdout


def test_the_check_names_the_first_difference(tmp_path):
    stored = tmp_path / "outputs"
    stored.mkdir()
    (stored / "sensor_node_60d.txt").write_text("something else\n")
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "outputs.py"), "--check", str(stored),
                           "--only", "sensor_node_60d.txt"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 1 and "DIFFERENT sensor_node_60d.txt" in proc.stdout
    assert "-something else" in proc.stdout
