"""`iotbpf monitor` on this machine: JSON, report and plot files, MQTT, and clear errors."""

import json

import pytest

from conftest import run_cli_subprocess


def test_monitor_json_reports_apps_model_and_its_own_overhead(cli):
    r = cli("monitor", "--interval", "200ms", "--duration", "600ms", "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["version"] == 1 and report["kind"] == "iotbpf-monitor"
    assert report["intervals"] == 3 and report["group_by"] == "exe"
    assert report["model"]["name"].startswith("board ")
    names = {a["app"] for a in report["apps"]}
    assert "[idle]" in names and "[system]" in names
    assert all(a["source"] for a in report["apps"])
    assert report["monitor"]["samples"] == 4 and report["monitor"]["cpu_s_per_sample"] > 0
    assert report["measured_j"] is None or report["error_pct"] is not None


def test_monitor_writes_report_and_plot_files(cli, tmp_path):
    out = tmp_path / "usage.json"
    png = tmp_path / "apps.png"
    r = cli("monitor", "--interval", "200ms", "--duration", "400ms", "--group-by", "uid",
            "--report", out, "--plot", png)
    assert r.code == 0, r.err
    report = json.loads(out.read_text())
    assert report["group_by"] == "uid"
    assert any(a["app"].endswith("(uid 0)") or a["app"] == "uid 0" for a in report["apps"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "apps-timeline.png").read_bytes()[:4] == b"\x89PNG"
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
