"""`iotbpf monitor --android-checkin ... --power-profile ...`: ours beside Android's, per app."""

import json

from conftest import run_cli_subprocess


def test_android_import_prints_ours_beside_androids(cli, shared):
    data = shared / "data"
    r = cli("monitor", "--android-checkin", data / "batterystats_checkin_emulator.txt",
            "--power-profile", data / "power_profile_sample.xml")
    assert r.code == 0, r.err
    header = r.out.splitlines()[0]
    assert "ours mAh" in header and "android mAh" in header and "diff mAh" in header
    assert "com.memfault.smartfridge.bort" in r.out and "idle" in r.out
    assert "battery drained (Android's min..max): 160..170 mAh" in r.out
    assert "note: Android's estimates used a 1000 mAh power profile" in r.out


def test_android_import_json_report_and_plot(cli, shared, tmp_path):
    data = shared / "data"
    png = tmp_path / "android.png"
    r = cli("monitor", "--android-checkin", data / "batterystats_checkin_emulator.txt",
            "--power-profile", data / "power_profile_sample.xml", "--json", "--plot", png)
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["version"] == 2 and report["schema"] == "iotbpf.app-usage"
    rows = {row["uid"]: row for row in report["apps"] if row["uid"] is not None}
    assert rows[1001]["reference_charge_mah"] == 1.21 and rows[1001]["charge_mah"] > 0
    assert report["run"]["android_total_mah"] == 3.65
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_android_bad_input_is_one_error_line(tmp_path, shared):
    junk = tmp_path / "junk.txt"
    junk.write_text("this is not a checkin dump\n")
    profile = shared / "data" / "power_profile_sample.xml"
    for argv in (("--android-checkin", junk, "--power-profile", profile),
                 ("--android-checkin", tmp_path / "missing.txt", "--power-profile", profile),
                 ("--android-checkin", junk)):
        proc = run_cli_subprocess("monitor", *argv)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1


def test_android_comparison_is_published_over_mqtt(cli, shared, mosquitto_broker, tmp_path):
    from iotbpf.report.mqtt import Receiver

    data = shared / "data"
    receiver = Receiver(mosquitto_broker.url, nodes="phone-1").start()
    try:
        assert receiver.wait_connected(10)
        r = cli("monitor", "--android-checkin", data / "batterystats_checkin_emulator.txt",
                "--power-profile", data / "power_profile_sample.xml", "--mqtt", mosquitto_broker.url,
                "--node", "phone-1", "--outbox", tmp_path / "outbox.sqlite", "--json")
        assert r.code == 0, r.err
        assert json.loads(r.out)["mqtt"]["delivered"] is True
        assert receiver.wait_for(lambda rc: any(x["kind"] == "apps" for x in rc.reports), 10)
    finally:
        receiver.stop()
    apps = [x for x in receiver.reports if x["kind"] == "apps"][0]["data"]["apps"]
    assert apps["com.memfault.smartfridge.bort"]["android_mah"] == 0.000671
    assert apps["idle"]["ours_mah"] > 0
