"""A real phone's day replayed: checkin totals, the history timeline and usagestats become app_usage
traces that app_monitor counts exactly as the dump says."""

import json

import pytest

from iotbpf import Node
from iotbpf.ebpf.errors import IotbpfError
from iotbpf.platforms.android import load_checkin, parse_checkin, wakelock_ms
from iotbpf.platforms.android_usage import (
    FOREGROUND,
    checkin_trace,
    load_trace,
    parse_history,
    parse_usagestats,
)
from iotbpf.platforms.sim.trace import format_events

# The shape of `dumpsys batterystats --history` (Android 10): time since the start, the command
# count, the battery level, then state changes (+on, -off, name=value).
HISTORY = '''Battery History (1% used, 3120 used of 256KB, 21 strings using 1204):
                    0 (10) RESET:TIME: 2020-04-05-11-04-36
                    0 (2) 100 status=discharging plug=none temp=290 volt=4310 +running +screen brightness=medium
                    0 (2) 100 top=u0a81:"com.android.launcher3"
           +12s004ms (2) 100 +top=u0a42:"com.memfault.smartfridge.bort"
         +1m40s500ms (2) 100 brightness=bright
         +3m02s000ms (2) 100 +top=u0a83:"com.android.systemui"
         +3m30s250ms (2) 099 -screen
         +3m31s000ms (2) 099 +wake_lock_in=1001:"RILJ_ACK_WL"
         +3m41s000ms (2) 099 -wake_lock_in=1001:"RILJ_ACK_WL"
      +1h00m00s000ms (2) 098 +screen brightness=dim
      +1h00m00s001ms (2) 098 +top=u0a42:"com.memfault.smartfridge.bort"
      +1h02m00s001ms (2) 098 -screen
'''

USAGESTATS = '''  In-memory daily stats
    events
      time="2020-04-05 11:04:36" type=SCREEN_INTERACTIVE package=android
      time="2020-04-05 11:04:37" type=ACTIVITY_RESUMED package=com.android.launcher3 class=.Launcher
      time="2020-04-05 11:05:07" type=ACTIVITY_PAUSED package=com.android.launcher3 class=.Launcher
      time="2020-04-05 11:05:07" type=ACTIVITY_RESUMED package=com.android.settings class=.Settings
      time="2020-04-05 11:06:07.500" type=SCREEN_NON_INTERACTIVE package=android
'''


def _replay(trace, tmp_path, duration):
    path = tmp_path / "day.jsonl"
    path.write_text(format_events(trace.events))
    node = Node("app_monitor", events=path)
    node.simulate(duration)
    return node


def test_the_real_checkin_day_replays_with_the_dumps_per_uid_times(shared, tmp_path):
    checkin = load_checkin(str(shared / "data" / "batterystats_checkin_emulator.txt"))
    trace = checkin_trace(checkin)
    node = _replay(trace, tmp_path, "%dms" % (checkin.battery["realtime_ms"] + 1))
    stats = node.app_stats()
    for uid, usage in checkin.uids.items():
        got = stats.get(uid, {})
        assert got.get("foreground_ns", 0) == usage.foreground_ms * 1000000, uid  # no `fg` lines: 0
        assert got.get("cpu_ns", 0) == usage.cpu_ms * 1000000, uid
    for uid, ms in wakelock_ms(checkin).items():
        assert stats.get(uid, {}).get("wakelock_ns", 0) == ms * 1000000, uid
    # the replayed phone spent the dump's screen-on time at its brightness bins
    ledger = node.scheduler.ledger.ns
    assert sum(ns for (c, s), ns in ledger.items() if c == "screen" and s.startswith("bright")) == 22213 * 10**6
    assert node.platform.phone.names[1001].startswith("com.android.providers.telephony")


def test_foreground_lines_of_a_checkin_dump_are_replayed_exactly(tmp_path):
    dump = "\n".join([
        "9,0,i,vers,35,186,X,X", "9,0,i,uid,10042,com.example.mail", "9,0,i,uid,10043,com.example.maps",
        "9,0,l,bt,1,3600000,3600000,3600000,3600000,0,3000000,3000000,3000,0,0,0",
        "9,0,l,m,600000,0,0,0,0,0,600000,0,0,0,0,0,0,0,0", "9,0,l,br,0,0,600000,0,0",
        "9,10042,l,fg,420000,7", "9,10043,l,fg,150000,2", "9,10043,l,wl,nav,0,f,0,0,0,0,60000,p,1,0,0,0",
    ])
    checkin = parse_checkin(dump)
    trace = checkin_trace(checkin)
    assert trace.foreground_ms() == {10042: 420000, 10043: 150000}
    stats = _replay(trace, tmp_path, "1h").app_stats()
    assert stats[10042]["foreground_ns"] == 420000 * 10**6
    assert stats[10043]["foreground_ns"] == 150000 * 10**6
    assert stats[10043]["wakelock_ns"] == 60000 * 10**6


def test_a_history_timeline_replays_with_its_foreground_times(tmp_path):
    trace = parse_history(HISTORY)
    fg = trace.foreground_ms()
    # systemui stays on top until the next top app, 1 ms after the screen came back on
    assert fg == {10081: 12004, 10042: 169996 + 120000, 10083: 28250 + 1}
    assert trace.names[10042] == "com.memfault.smartfridge.bort"
    node = _replay(trace, tmp_path, "2h")
    stats = node.app_stats()
    for uid, ms in fg.items():
        assert stats[uid]["foreground_ns"] == ms * 1000000, uid
    assert stats[1001]["wakelock_ns"] == 10 * 10**9
    assert node.scheduler.summary()["apps"]["com.memfault.smartfridge.bort"] > 0


def test_history_shapes_of_older_releases_are_read():
    history = "\n".join([
        '                    0 (2) 100 c0500020 status=discharging +running +wake_lock=1000:"*alarm*:TIME_TICK" '
        '+screen brightness=dim',
        '                    0 (2) 100 c0500020 +top=u0a19:com.google.android.googlequick',
        '            +1s500ms (1) 100 c0500020 -wake_lock',
        '         +40s000ms (3) 100 80400020 -screen -top=u0a19:com.google.android.googlequick',
    ])
    trace = parse_history(history)
    assert trace.foreground_ms() == {10019: 40000}
    assert trace.names[10019] == "com.google.android.googlequick"
    locks = [f for _t, _h, f in trace.events if f["kind"] == 5]
    assert [(f["uid"], f["duration_ns"]) for f in locks] == [(1000, 1500 * 10**6)]


def test_usagestats_events_become_foreground_sessions():
    trace = parse_usagestats(USAGESTATS, {"com.android.launcher3": 10081})
    assert [f["kind"] for _t, _h, f in trace.events].count(FOREGROUND) == 2
    assert trace.foreground_ms() == {10081: 30000, 90000: 60500}
    assert trace.names[90000] == "com.android.settings" and "numbered from 90000" in trace.notes[0]


def test_dump_kinds_are_told_apart_and_bad_input_is_a_clear_error(tmp_path):
    path = tmp_path / "h.txt"
    path.write_text(HISTORY)
    assert load_trace(str(path)).source == "batterystats --history"
    path.write_text(USAGESTATS)
    assert load_trace(str(path)).source == "usagestats"
    with pytest.raises(IotbpfError, match="not a `dumpsys batterystats --history` dump"):
        parse_history("hello\n")
    with pytest.raises(IotbpfError, match="not a `dumpsys usagestats` dump"):
        parse_usagestats("hello\n")
    with pytest.raises(IotbpfError, match="cannot read"):
        load_trace(str(tmp_path / "missing.txt"))


def test_simulate_replays_an_android_dump_given_as_events(cli, shared, tmp_path):
    dump = shared / "data" / "batterystats_checkin_emulator.txt"
    result = cli("simulate", "app_monitor", "--events", dump, "--duration", "13h", "--json")
    assert result.code == 0, result.err
    rows = dict((r["uid"], r) for r in json.loads(result.out)["apps_report"]["apps"])
    assert rows[1001]["wakelock_s"] == pytest.approx(43699.891) and rows[1001]["cpu_s"] == pytest.approx(0.272)
    assert rows[1001]["name"].startswith("com.android.providers.telephony")
    history = tmp_path / "history.txt"
    history.write_text(HISTORY)
    out = cli("simulate", "app_monitor", "--events", history, "--duration", "2h").out
    assert "com.memfault.smartfridge.bort" in out
    bad = tmp_path / "bad.txt"
    bad.write_text("nothing useful\n")
    result = cli("simulate", "app_monitor", "--events", bad)
    assert result.code == 2 and result.err.startswith("error: not a `dumpsys batterystats --history` dump")
