"""`iotbpf node`: clear errors for bad GPIO and INA219 arguments (before anything runs)."""

import pytest

from conftest import run_cli_subprocess


@pytest.mark.parametrize("argv, message", [
    (("node", "sensor_node", "--platform", "rpi", "--gpio", "BUTTON"), "NAME=PIN"),
    (("node", "sensor_node", "--platform", "rpi", "--gpio", "A=4", "--gpio", "B=4"), "used twice"),
    (("node", "sensor_node", "--platform", "linux", "--gpio", "BUTTON=17"), "--platform rpi"),
    (("node", "sensor_node", "--platform", "rpi", "--ina219", "forty"), "I2C address"),
    (("node", "sensor_node", "--platform", "rpi", "--ina219-replay", "missing.trace"), "missing.trace"),
    (("node", "sensor_node", "--platform", "rpi", "--ina219", "0x40", "--i2c-bus", "97"), "I2C bus 97"),
    (("node", "sensor_node", "--platform", "linux", "--key", "node.key"), "--key needs --mqtt"),
    (("node", "sensor_node", "--platform", "mars"), "invalid choice"),
    (("node", "sensor_node", "--platform", "linux", "--duration", "0s"), "positive"),
])
def test_bad_node_input_is_one_error_line_exit_2(argv, message, tmp_path):
    proc = run_cli_subprocess(*argv, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_gpio_without_a_pi_is_one_clear_error_line(tmp_path):
    import os

    model = "/proc/device-tree/model"
    if os.path.exists(model) and "Raspberry Pi" in open(model, errors="replace").read():
        pytest.skip("this machine is a Raspberry Pi: its GPIO works")
    env = dict(os.environ)
    env.pop("GPIOZERO_PIN_FACTORY", None)
    proc = run_cli_subprocess("node", "sensor_node", "--platform", "rpi", "--gpio", "BUTTON=17", cwd=tmp_path,
                              env=env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --gpio BUTTON=17") and proc.stderr.count("\n") == 1
    assert "GPIOZERO_PIN_FACTORY=mock" in proc.stderr


def test_node_on_linux_runs_the_app_in_real_time(tmp_path):
    import json

    proc = run_cli_subprocess("node", "sensor_node", "--platform", "linux", "--duration", "500ms", "--json",
                              cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    final = json.loads(proc.stdout)
    assert final["app"] == ["sensor_node"] and final["platform"] == "linux"
    assert final["hooks"]["boot"]["runs"] == 1 and final["faults"] == 0
    assert final["now_ns"] >= 500000000  # real time passed


def test_node_on_a_mocked_pi_reports_model_beside_the_replayed_ina219(tmp_path, mosquitto_broker):
    import json
    import os
    from pathlib import Path

    from iotbpf.report.mqtt import Receiver

    trace = Path(__file__).parent.parent / "platforms" / "data" / "ina219_rpi_zero2w.trace"
    env = dict(os.environ, GPIOZERO_PIN_FACTORY="mock")
    receiver = Receiver(mosquitto_broker.url, nodes="pi-1").start()
    try:
        assert receiver.wait_connected(10)
        proc = run_cli_subprocess("node", "sensor_node", "--platform", "rpi", "--board", "rpi_zero2w",
                                  "--gpio", "BUTTON=17", "--ina219-replay", trace, "--duration", "600ms",
                                  "--report-every", "200ms", "--mqtt", mosquitto_broker.url, "--node", "pi-1",
                                  "--outbox", tmp_path / "outbox.sqlite", "--json", cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        final = json.loads(proc.stdout)
        assert receiver.wait_for(lambda r: {"energy", "battery", "apps"} <= {x["kind"] for x in r.reports}, 10)
    finally:
        receiver.stop()
    assert final["gpio"] == {"BUTTON": 17} and final["measured_source"] == "ina219:0x40"
    assert final["estimate_j"] > 0 and final["measured_j"] > 0
    assert final["error_pct"] == round(100.0 * (final["estimate_j"] - final["measured_j"]) / final["measured_j"], 3)
    assert final["mqtt"]["delivered"] is True
    energy = [x for x in receiver.reports if x["kind"] == "energy"][-1]["data"]
    assert energy["source"] == "ina219:0x40" and "estimate_j" in energy and "error_pct" in energy
    battery = [x for x in receiver.reports if x["kind"] == "battery"][-1]["data"]
    assert 0 < battery["soc_percent"] <= 100 and final["soc_percent"] == battery["soc_percent"]
    assert "sensor_node" in [x for x in receiver.reports if x["kind"] == "apps"][-1]["data"]["apps"]


def test_node_answers_signed_remote_commands_while_running(tmp_path, mosquitto_broker):
    import os
    import subprocess
    import sys

    from iotbpf.report.mqtt import Receiver, send_command
    from iotbpf.report.remote import generate_key

    key_file = tmp_path / "node.key"
    secret = generate_key(key_file)
    receiver = Receiver(mosquitto_broker.url, nodes="lab-1").start()
    node = subprocess.Popen([sys.executable, "-m", "iotbpf", "node", "sensor_node", "--platform", "linux",
                             "--duration", "20s", "--mqtt", mosquitto_broker.url, "--node", "lab-1",
                             "--outbox", str(tmp_path / "outbox.sqlite"), "--key", str(key_file), "--json"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert receiver.wait_connected(10)
        assert receiver.wait_for(lambda r: "lab-1" in r.nodes and r.nodes["lab-1"].status == "online", 20)
        reply = send_command(mosquitto_broker.url, "lab-1", secret, "map_lookup", timeout=15,
                             map=".data.config", key=0)
        assert reply["ok"] is True, reply
        assert reply["result"]["map"] == ".data.config" and len(reply["result"]["value"]) == 96  # 48 bytes
        refused = send_command(mosquitto_broker.url, "lab-1", os.urandom(32), "map_lookup", timeout=15,
                               map=".data.config", key=0)
        assert refused["ok"] is False  # signed with the wrong key
    finally:
        receiver.stop()
        node.terminate()
        node.wait(30)
        node.stdout.close()
        node.stderr.close()
