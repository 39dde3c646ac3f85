"""`iotbpf node`: clear errors for bad GPIO and INA219 arguments (before anything runs)."""

import pytest

from conftest import run_cli_subprocess


@pytest.mark.parametrize("argv, message", [
    (("node", "sensor_node", "--platform", "rpi", "--gpio", "BUTTON"), "NAME=PIN"),
    (("node", "sensor_node", "--platform", "rpi", "--gpio", "A=4", "--gpio", "B=4"), "used twice"),
    (("node", "sensor_node", "--platform", "linux", "--gpio", "BUTTON=17"), "--platform rpi"),
    (("node", "sensor_node", "--platform", "rpi", "--ina219", "forty"), "I2C address"),
    (("node", "sensor_node", "--platform", "rpi", "--ina219-replay", "missing.trace"), "missing.trace"),
    (("node", "sensor_node", "--platform", "mars"), "invalid choice"),
    (("node", "sensor_node", "--platform", "linux", "--duration", "0s"), "positive"),
])
def test_bad_node_input_is_one_error_line_exit_2(argv, message, tmp_path):
    proc = run_cli_subprocess(*argv, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr
