"""Android import: the real checkin dump and power profiles, our attribution beside Android's own."""

import os
from pathlib import Path

import pytest

from iotbpf import resources
from iotbpf.ebpf.errors import IotbpfError
from iotbpf.platforms.android import (
    USAGE_SAMPLE,
    USAGE_WAKELOCK,
    app_usage_events,
    attribute,
    comparison_markdown,
    cpu_active_ma,
    load_checkin,
    load_power_profile,
    parse_checkin,
    wakelock_ms,
)

# A profile with AOSP's deliberately dummy default values (0.1 mA for everything, radio.on 0.2/0.1,
# one 400 MHz core, 1000 mAh), written in the newer key style: the emulator's Android computed its
# `pwi` estimates from such a profile, so with it our global items must match Android's.
DUMMY_PROFILE = """<?xml version="1.0" encoding="utf-8"?>
<device name="Android">
  <item name="none">0</item>
  <item name="screen.on">0.1</item>
  <item name="screen.full">0.1</item>
  <item name="wifi.on">0.1</item>
  <item name="wifi.scan">0.1</item>
  <item name="radio.active">0.1</item>
  <item name="radio.scanning">0.1</item>
  <array name="radio.on"><value>0.2</value><value>0.1</value></array>
  <array name="cpu.clusters.cores"><value>1</value></array>
  <array name="cpu.core_speeds.cluster0"><value>400000</value></array>
  <array name="cpu.core_power.cluster0"><value>0.1</value></array>
  <item name="cpu.suspend">0</item>
  <item name="cpu.idle">0.1</item>
  <item name="battery.capacity">1000</item>
</device>
"""


@pytest.fixture(scope="module")
def checkin(shared):
    return load_checkin(str(shared / "data" / "batterystats_checkin_emulator.txt"))


def test_checkin_dump_imports(checkin):
    assert checkin.checkin_version == 35 and checkin.build == "QQ2A.200405.005"
    assert checkin.uids[10042].packages == ["com.memfault.smartfridge.bort"]
    assert len(checkin.uids[1000].packages) == 5
    assert checkin.battery["realtime_ms"] == 43722106
    assert checkin.battery["screen_off_realtime_ms"] == 43699893
    assert checkin.misc["screen_on_ms"] == 22213 and checkin.misc["partial_wakelock_ms"] == 43699892
    assert checkin.brightness_ms == [6217, 0, 15996, 0, 0]
    assert checkin.signal_ms == [0, 840243, 2620801, 2760844, 37500218]
    # per uid: CPU, processes, wakelocks
    assert (checkin.uids[1001].cpu_user_ms, checkin.uids[1001].cpu_system_ms) == (85, 187)
    assert checkin.uids[1001].processes["com.android.phone"]["user_ms"] == 2090
    assert checkin.uids[1000].wakelock_partial_ms == 1236
    assert checkin.uids[1000].wakelocks[
        "*job*/android/com.android.server.net.watchlist.ReportWatchlistJobService"] == 1
    assert checkin.kernel_wakelocks["ApmAudio"] == (0, 0)
    assert checkin.discharge["low_percent"] == 16 and checkin.discharge["high_percent"] == 17
    # Android's own estimates
    assert checkin.power_summary == (1000.0, 3.65, 160.0, 170.0)
    labels = [(e["label"], e["uid"], e["mah"]) for e in checkin.android_estimates]
    assert ("unacc", None, 156.0) in labels and ("uid", 50158, 32.0) in labels
    assert ("uid", 10042, 0.000671) in labels and ("scrn", None, 0.000856) in labels
    assert len(labels) == 14
    assert any("2 pws lines" in n for n in checkin.notes)


def test_not_a_checkin_dump_is_a_clear_error():
    with pytest.raises(IotbpfError, match="not a `dumpsys batterystats --checkin` dump"):
        parse_checkin("hello\nworld\n")


def test_bad_lines_become_a_note_not_an_exception():
    dump = "9,0,i,vers,35,186,X,X\n9,1000,l,cpu,notanumber,1,0\n9,1000,l,cpu,5,6,0\n9,0,l,pws,1,2\n"
    parsed = parse_checkin(dump)
    assert parsed.uids[1000].cpu_ms == 11
    assert any("2 lines could not be parsed" in n for n in parsed.notes)


def test_both_power_profiles_import(shared, tmp_path):
    real = load_power_profile(str(shared / "data" / "power_profile_sample.xml"))
    assert real["battery_mah"] == 4000 and [c["cores"] for c in real["clusters"]] == [4, 3, 1]
    assert real["suspend_ma"] == 6.2 and real["idle_ma"] == 9.7  # old names: cpu.idle, cpu.awake
    path = tmp_path / "dummy.xml"
    path.write_text(DUMMY_PROFILE)
    dummy = load_power_profile(str(path))
    assert dummy["suspend_ma"] == 0 and dummy["idle_ma"] == 0.1  # new names: cpu.suspend, cpu.idle
    assert cpu_active_ma(dummy) == pytest.approx(0.1)
    # the real one: cores-weighted mean of the clusters' per-speed core currents
    means = [sum(c["core_ma"]) / len(c["core_ma"]) for c in real["clusters"]]
    assert cpu_active_ma(real) == pytest.approx((4 * means[0] + 3 * means[1] + means[2]) / 8)


def test_with_the_profile_android_used_our_global_items_match_androids(checkin, tmp_path):
    path = tmp_path / "dummy.xml"
    path.write_text(DUMMY_PROFILE)
    comparison = attribute(checkin, load_power_profile(str(path)), "aosp dummy values")
    for item in ("idle", "cell", "scrn", "unacc"):
        row = comparison.row(item)
        assert abs(row["diff_pct"]) < 1.0, row  # Android prints 3 significant digits
    # uid 1000: its `wl` partial timers (1 ms) x cpu.idle, as BatteryStats' wakelock calculator
    system = comparison.row("uid 1000")
    assert system["ours_mah"] == pytest.approx(1 * 0.1 / 3.6e6)
    assert system["android_mah"] == 0.000027
    assert "wakelock 1 ms" in system["basis"]
    # totals agree with Android's computed total within 1 %
    assert comparison.ours_total_mah == pytest.approx(comparison.android_total_mah, rel=0.01)
    assert comparison.drained_mah == "160..170"


def test_cut_wakelock_lines_go_to_the_uid_with_a_wakelock_process(checkin):
    held = wakelock_ms(checkin)
    # `m` says 43699892 ms of partial wakelocks; the `wl` lines list 1 ms (uid 1000); uid 1001
    # has the `*wakelock*` process
    assert held == {1000: 1, 1001: 43699891, 10096: 0}
    assert any("given to uid(s) 1001" in n for n in checkin.notes)


def _reproduce(shared):
    checkin = load_checkin(str(shared / "data" / "batterystats_checkin_emulator.txt"))
    profile = load_power_profile(str(resources.resolve("energy_models", "aosp_default_power_profile.xml")))
    return attribute(checkin, profile, "aosp_default_power_profile.xml")


def test_checkin_dump_is_reproduced_per_uid_with_the_profile_the_emulator_used(shared):
    comparison = _reproduce(shared)
    total = comparison.android_total_mah
    assert total == 3.65
    checked = 0
    for row in comparison.rows:
        if row["android_mah"] is None or not row["item"].startswith("uid "):
            continue
        if row["android_mah"] < 0.01 * total:
            assert abs(row["ours_mah"] - row["android_mah"]) <= 0.005, row
            continue
        if not row["in_android_total"]:
            continue
        checked += 1
        assert abs(row["ours_mah"] - row["android_mah"]) <= max(0.05 * row["android_mah"], 0.005), row
    assert checked == 1 and comparison.row("uid 1001")["diff_pct"] is not None
    # the unaccounted and idle items as Android reports them
    for item in ("unacc", "idle", "cell", "scrn"):
        row = comparison.row(item)
        assert abs(row["ours_mah"] - row["android_mah"]) <= max(0.01 * row["android_mah"], 0.005), row
    # the two uid lines Android's own total leaves out (its items would add up to 35.8 mAh)
    outside = sorted(r["uid"] for r in comparison.rows if not r["in_android_total"])
    assert outside == [9999, 50158]
    assert comparison.ours_total_mah == pytest.approx(total, abs=0.005)


def test_docs_carry_the_generated_ours_vs_android_table(shared):
    table = comparison_markdown(_reproduce(shared))
    doc = Path(__file__).resolve().parents[2] / "docs" / "platforms.md"
    text = doc.read_text(encoding="utf-8")
    start, end = "<!-- android-table:start -->\n", "<!-- android-table:end -->"
    assert start in text and end in text
    head, rest = text.split(start, 1)
    body, tail = rest.split(end, 1)
    if os.environ.get("IOTBPF_UPDATE_DOCS") == "1":
        doc.write_text(head + start + table + end + tail, encoding="utf-8")
        body = table
    assert body == table, "docs/platforms.md is stale: run this test with IOTBPF_UPDATE_DOCS=1"


def test_real_profile_comparison_is_shown_with_the_difference(checkin, shared):
    profile = load_power_profile(str(shared / "data" / "power_profile_sample.xml"))
    comparison = attribute(checkin, profile, "power_profile_sample.xml")
    data = comparison.to_dict()
    assert data["version"] == 1
    items = {r["item"]: r for r in data["rows"]}
    # every app Android estimated is in the table, ours beside it
    for est in checkin.android_estimates:
        key = "uid %d" % est["uid"] if est["label"] == "uid" else est["label"]
        assert items[key]["android_mah"] is not None
    radio = items["uid 1001"]
    assert radio["ours_mah"] == pytest.approx((272 * cpu_active_ma(profile) + 43699891 * 9.7) / 3.6e6)
    assert radio["diff_mah"] == pytest.approx(radio["ours_mah"] - 1.21)
    assert items["idle"]["ours_mah"] == pytest.approx((43722106 * 6.2 + 43722106 * 9.7) / 3.6e6)
    # unaccounted: 16 % of this profile's 4000 mAh drained, minus what the items explain
    assert items["unacc"]["ours_mah"] == pytest.approx(640 - comparison.ours_total_mah)
    assert any("1000 mAh power profile" in n for n in comparison.notes)
    text = comparison.table()
    assert "android mAh" in text and "com.memfault.smartfridge.bort" in text and "160..170" in text


def test_checkin_becomes_app_usage_events(checkin, tmp_path):
    path = tmp_path / "dummy.xml"
    path.write_text(DUMMY_PROFILE)
    comparison = attribute(checkin, load_power_profile(str(path)))
    events = app_usage_events(checkin, comparison, voltage_v=3.85)
    samples = {e["uid"]: e for e in events if e["kind"] == USAGE_SAMPLE}
    assert samples[1001]["cpu_time_ns"] == 272 * 1000000
    assert samples[1001]["duration_ns"] == 43722106 * 1000000
    expected_j = comparison.row("uid 1001")["ours_mah"] * 3.6 * 3.85
    assert samples[1001]["energy_uj"] == round(expected_j * 1e6)
    wakelocks = [e for e in events if e["kind"] == USAGE_WAKELOCK]
    assert [(e["uid"], e["duration_ns"]) for e in wakelocks] == [(1000, 1000000), (1001, 43699891000000)]
    hooks = pytest.importorskip("iotbpf.kernel.hooks")
    fields = {f[0] for h in hooks.HOOK_TABLE if h[0] == "app_usage" for f in h[4]}
    assert set(events[0]) - {"app"} <= fields
    constants = dict((c[0], c[1]) for c in hooks.CONSTANTS)
    assert constants["IOT_USAGE_SAMPLE"] == USAGE_SAMPLE and constants["IOT_USAGE_WAKELOCK"] == USAGE_WAKELOCK


def test_network_and_wifi_lines_are_attributed():
    dump = "\n".join([
        "9,0,i,vers,35,186,X,X",
        "9,0,i,uid,10100,com.example.sync",
        "9,0,l,bt,1,3600000,3600000,3600000,3600000,0,3600000,3600000,3000,0,0,0",
        "9,10100,l,nt,1000,2000,30000,40000,5,6,70,80,60000,3",
        "9,10100,l,wfl,0,1000,120000,2,,,,0,0,0",
        "9,10100,l,cpu,3600,0,0",
    ])
    checkin = parse_checkin(dump)
    usage = checkin.uids[10100]
    assert usage.network["wifi_rx_bytes"] == 30000 and usage.network["mobile_active_ms"] == 60000
    assert usage.wifi_running_ms == 120000 and usage.wifi_scan_ms == 1000
    profile = {"clusters": [{"cores": 1, "core_ma": [100.0]}], "idle_ma": 10.0, "suspend_ma": 1.0,
               "radio_active_ma": 200.0, "wifi_on_ma": 3.0, "wifi_scan_ma": 100.0}
    row = attribute(checkin, profile).row("uid 10100")
    expected = (3600 * 100.0 + 60000 * 200.0 + 120000 * 3.0 + 1000 * 100.0) / 3.6e6
    assert row["ours_mah"] == pytest.approx(expected) and row["android_mah"] is None
    assert row["name"] == "com.example.sync"
    events = app_usage_events(checkin)
    assert events[0]["rx_bytes"] == 31000 and events[0]["tx_bytes"] == 42000
