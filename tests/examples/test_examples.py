"""Every script in examples/ runs with --quick and prints what it found, so none of them rots."""

import os
import subprocess
import sys

from conftest import REPO

EXAMPLES = REPO / "examples"


def run_example(name, tmp_path, *args):
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), "--quick", *args], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, "%s failed:\n--- stdout\n%s\n--- stderr\n%s" % (name, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_every_example_is_tested():
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    tested = ["01_handler_in_c.py", "02_simulate_year_and_plot.py", "03_compare_policies.py",
              "04_per_app_usage.py", "05_update_map_over_mqtt.py", "06_bcc_style_tracing.py",
              "07_energy_neutral_winter.py"]
    assert scripts == tested
    for name in scripts:
        text = (EXAMPLES / name).read_text()
        assert text.startswith('"""') and "--quick" in text, name


def test_01_handler_in_c(clang, tmp_path):
    out = run_example("01_handler_in_c.py", tmp_path)
    assert "verifier: VerifyResult(ok" in out
    assert "60 readings classified" in out
    for band in ("cold", "mild", "warm", "hot"):
        assert "\n  %s " % band in out


def test_01_handler_in_c_interp_engine_agrees(clang, tmp_path):
    compiled = run_example("01_handler_in_c.py", tmp_path)
    interp = run_example("01_handler_in_c.py", tmp_path, "--engine", "interp")
    assert compiled == interp


def test_02_simulate_and_plot(tmp_path):
    out = run_example("02_simulate_year_and_plot.py", tmp_path, "--plot", "week.png")
    assert "sensor_node on nrf52840_dk, policy batching, 7 days simulated" in out
    assert "lifetime:" in out and "sensor_node" in out.split("energy per app:")[1]
    assert "readings" in out
    assert (tmp_path / "week.png").stat().st_size > 10000


def test_03_compare_policies(tmp_path):
    out = run_example("03_compare_policies.py", tmp_path)
    assert out.splitlines()[1].split() == ["policy", "energy", "over", "avg", "power", "avg", "current", "lifetime",
                                           "died", "misses", "rx_lost", "power/oracle", "gap"]
    assert "best policy: " in out and "oracle" in out and "batteries that died during the run: none" in out


def test_04_per_app_usage(tmp_path):
    out = run_example("04_per_app_usage.py", tmp_path)
    assert "APP" in out and "ENERGY J" in out
    assert "the busy child used" in out
    assert "top apps by energy:" in out


def test_05_update_map_over_mqtt(mosquitto_broker, tmp_path):
    out = run_example("05_update_map_over_mqtt.py", tmp_path, "--broker", mosquitto_broker.url,
                      "--node-name", "example-test")
    assert "node acknowledged: ok=True" in out
    assert "wrong key: ok=False, reason: bad signature" in out
    assert "blocklist after:  {66: 1}" in out
    blocked = int(out.split("passed, ")[1].split(" blocked")[0])
    assert blocked > 1000


def test_05_without_a_broker_says_so(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / "05_update_map_over_mqtt.py"), "--quick", "--broker",
                           "mqtt://127.0.0.1:1", "--timeout", "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "cannot reach the MQTT broker" in proc.stdout


def test_06_bcc_style_tracing_delivers_through_callbacks(clang, tmp_path):
    out = run_example("06_bcc_style_tracing.py", tmp_path)
    lines = out.splitlines()
    assert lines[0] == "00:01:00 temp_watch trace: reading %s mC" % lines[0].split()[-2]
    assert any(" ring buffer: hot reading " in line for line in lines)
    assert "01:00:00 perf buffer (cpu 0): hour of 60 readings" in out
    assert "2h simulated: 119 trace lines" in out


def test_07_energy_neutral_winter(tmp_path):
    out = run_example("07_energy_neutral_winter.py", tmp_path, "--plot", "winter.png")
    rows = {line.split("  ")[0].strip(): line.split() for line in out.splitlines()[1:4]}
    assert rows["energy-neutral"][1] == "lives"
    assert float(rows["fixed 60 s"][3]) < 75 and float(rows["fixed 120 s"][3]) < 75
    assert (tmp_path / "winter.png").stat().st_size > 10000
