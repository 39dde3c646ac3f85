"""`iotbpf monitor` on this machine: JSON, report and plot files, MQTT, and clear errors."""

import json

import pytest

from conftest import run_cli_subprocess


def test_monitor_json_reports_apps_model_and_its_own_overhead(cli):
    r = cli("monitor", "--interval", "200ms", "--duration", "600ms", "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["version"] == 2 and report["schema"] == "iotbpf.monitor"
    assert report["run"]["intervals"] == 3 and report["meta"]["group_by"] == "exe"
    assert report["meta"]["model"].startswith("board ")
    names = {a["app"] for a in report["apps"]}
    assert "[idle]" in names and "[system]" in names
    assert all(a["source"] for a in report["apps"])
    monitor = report["run"]["monitor"]
    assert monitor["samples"] == 4 and monitor["cpu_s_per_sample"] > 0
    assert monitor["process_percent_of_one_core"] > 0  # the whole monitoring process
    assert report["totals"]["measured_j"] is None or report["totals"]["error_percent"] is not None
    apps = report["run"]["apps_report"]  # the per-app report every source shares (iotbpf.report.apps)
    assert apps["kind"] == "iotbpf-apps" and apps["apps"][-1]["name"] == "system"
    assert sum(a["energy_j"] for a in apps["apps"]) == pytest.approx(apps["total_j"])


def test_monitor_writes_report_and_plot_files(cli, tmp_path):
    out = tmp_path / "usage.json"
    png = tmp_path / "apps.png"
    r = cli("monitor", "--interval", "200ms", "--duration", "400ms", "--group-by", "uid",
            "--report", out, "--plot", png)
    assert r.code == 0, r.err
    report = json.loads(out.read_text())
    assert report["meta"]["group_by"] == "uid"
    assert any(a["app"].endswith("(uid 0)") or a["app"] == "uid 0" for a in report["apps"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "monitor itself:" in r.out and "of one core at 1 s sampling" in r.out


def test_monitor_publishes_per_app_reports_over_mqtt(cli, mosquitto_broker, tmp_path):
    from iotbpf.report.mqtt import Receiver

    receiver = Receiver(mosquitto_broker.url, nodes="box1").start()
    try:
        assert receiver.wait_connected(10)
        r = cli("monitor", "--interval", "200ms", "--duration", "400ms", "--mqtt", mosquitto_broker.url,
                "--node", "box1", "--outbox", tmp_path / "outbox.sqlite", "--json")
        assert r.code == 0, r.err
        assert json.loads(r.out)["mqtt"]["delivered"] is True
        assert receiver.wait_for(lambda rc: sum(1 for x in rc.reports if x["kind"] == "apps") >= 2, 10)
    finally:
        receiver.stop()
    apps = [x for x in receiver.reports if x["kind"] == "apps"][0]
    assert "[idle]" in apps["data"]["apps"] and apps["node"] == "box1"
    energy = [x for x in receiver.reports if x["kind"] == "energy"][0]
    assert energy["data"]["estimate_j"] > 0 and "model" in energy["data"]["source"]


@pytest.mark.parametrize("argv, message", [
    (("monitor", "--group-by", "colour", "--duration", "1s"), "invalid choice"),
    (("monitor", "--interval", "soon", "--duration", "1s"), "duration"),
    (("monitor",), "--duration is required"),
    (("monitor", "--power-profile", "x.xml", "--duration", "1s"), "--android-checkin"),
    (("monitor", "--duration", "1s", "--board", "no_such_board"), "no_such_board"),
    (("monitor", "--duration", "1s", "--plot", "apps.gif"), "png"),
])
def test_bad_monitor_input_is_one_error_line_exit_2(argv, message, tmp_path):
    proc = run_cli_subprocess(*argv, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_monitor_with_a_replayed_ina219_shows_estimate_measurement_and_error(cli):
    from pathlib import Path

    trace = Path(__file__).parent.parent / "platforms" / "data" / "ina219_rpi_zero2w.trace"
    r = cli("monitor", "--interval", "300ms", "--duration", "600ms", "--board", "rpi_zero2w",
            "--ina219-replay", trace, "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    # the replayed Pi draws 0.6 .. 2.3 W: 0.6 s of it
    totals = report["totals"]
    assert 0.3 < totals["measured_j"] < 1.5
    assert totals["error_percent"] == pytest.approx(
        100.0 * (totals["estimate_j"] - totals["measured_j"]) / totals["measured_j"], abs=0.01)
    assert all(a["source"].startswith("measured ina219:0x40, split by model board rpi_zero2w")
               for a in report["apps"])
    assert sum(a["energy_j"] for a in report["apps"]) == pytest.approx(totals["measured_j"], rel=1e-3)


def test_monitor_on_a_terminal_redraws_a_live_table():
    import os
    import pty
    import subprocess
    import sys

    main, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "iotbpf", "monitor", "--interval", "300ms", "--duration",
                             "600ms", "--top", "5"], stdout=secondary, stderr=subprocess.PIPE)
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the terminal closed: the monitor exited
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.wait(30) == 0, proc.stderr.read()
    proc.stderr.close()
    screen = b"".join(chunks).decode()
    assert screen.count("\x1b[H\x1b[2J") == 2  # one redraw per interval
    frame, totals = screen.split("\x1b[H\x1b[2J")[-1].split("iotbpf monitor: 2 intervals")
    assert "APP" in totals and "ENERGY J" in totals  # the run's totals after the last frame
    assert "APP" in frame and "CPU%" in frame and "WAKEUP/s" in frame and "POWER W" in frame
    assert "monitor itself:" in frame and "[idle]" in frame
    table = frame[frame.index("APP"):frame.index("model estimate")].strip().splitlines()
    assert len(table) == 1 + 5  # header and --top rows
