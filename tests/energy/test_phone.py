"""The usage-driven phone (iotbpf.energy.phone): BatteryStats' rules on the ledger, exact sums."""

import json

import pytest

from iotbpf import Node
from iotbpf.energy import phone as ph
from iotbpf.energy.accounting import Ledger
from iotbpf.energy.android_profile import parse_power_profile, phone_models
from iotbpf.energy.attribution import SYSTEM, Attribution
from iotbpf.energy.models import parse_model
from iotbpf.kernel.hooks import constant

PROFILE = parse_power_profile("""<device name="Android">
  <item name="screen.on">100</item>
  <item name="screen.full">500</item>
  <item name="cpu.suspend">5</item>
  <item name="cpu.idle">20</item>
  <item name="cpu.active">10</item>
  <array name="cpu.clusters.cores"><value>4</value><value>2</value></array>
  <item name="cpu.cluster_power.cluster0">3</item>
  <item name="cpu.cluster_power.cluster1">8</item>
  <array name="cpu.core_speeds.cluster0"><value>500000</value><value>1000000</value></array>
  <array name="cpu.core_power.cluster0"><value>15</value><value>40</value></array>
  <array name="cpu.core_speeds.cluster1"><value>1000000</value><value>2000000</value></array>
  <array name="cpu.core_power.cluster1"><value>80</value><value>300</value></array>
  <item name="wifi.on">2</item>
  <item name="wifi.active">200</item>
  <item name="radio.active">250</item>
  <array name="radio.on"><value>3</value></array>
  <item name="gps.on">50</item>
  <item name="camera.avg">400</item>
  <item name="audio">30</item>
  <item name="battery.capacity">4000</item>
</device>""")
S = 1000000000


def _phone():
    models = dict((name, parse_model(m)) for name, m in phone_models(PROFILE, "t").items())
    ledger = Ledger(models)
    attr = Attribution(ledger)
    return ph.Phone(PROFILE, ledger, attr, 0, {10: "a", 11: "b"}), ledger, attr


def _j(attr, app):
    return attr.per_app_j().get(app, 0.0)


def test_kinds_match_the_hook_constants():
    for name, value in (("SCREEN_ON", ph.SCREEN_ON), ("CPU", ph.CPU), ("BRIGHTNESS", ph.BRIGHTNESS),
                        ("WAKELOCK_ACQUIRE", ph.ACQUIRE), ("GPS", ph.GPS), ("CAMERA", ph.CAMERA),
                        ("AUDIO", ph.AUDIO), ("NET_CELL", ph.NET_CELL), ("NETWORK", ph.NETWORK)):
        assert constant("IOT_USAGE_" + name) == value, name


def test_the_foreground_app_pays_the_screen_at_its_brightness_bin():
    phone, ledger, attr = _phone()
    phone.on_usage(0, {"kind": ph.SCREEN_ON, "arg": 4})
    phone.on_usage(0, {"kind": ph.FOREGROUND, "uid": 10})
    phone.on_usage(10 * S, {"kind": ph.BRIGHTNESS, "arg": 0})
    phone.on_usage(20 * S, {"kind": ph.SCREEN_OFF})
    bright4 = (100 + 500 * 4.5 / 5) * 1e-3 * 3.85 * 10
    bright0 = (100 + 500 * 0.5 / 5) * 1e-3 * 3.85 * 10
    assert _j(attr, "a") == pytest.approx(bright4 + bright0)
    assert ledger.ns[("screen", "bright4")] == 10 * S
    # the CPU is awake while the screen is on: the idle item, nobody's app
    assert ledger.ns[("cpu", "idle")] == 20 * S and ("a", "cpu", "idle") not in attr.ns


def test_cpu_time_costs_active_plus_cluster_plus_core_power():
    phone, _ledger, attr = _phone()
    phone.on_usage(0, {"kind": ph.CPU, "uid": 11, "cpu_time_ns": 2 * S, "arg": 1 << 8 | 1})
    assert _j(attr, "b") == pytest.approx((10 + 8 + 300) * 1e-3 * 3.85 * 2)


def test_concurrent_wakelocks_split_the_awake_time():
    phone, ledger, attr = _phone()
    phone.on_usage(0, {"kind": ph.ACQUIRE, "uid": 10})
    phone.on_usage(4 * S, {"kind": ph.ACQUIRE, "uid": 11})
    phone.on_usage(6 * S, {"kind": ph.WAKELOCK, "uid": 10, "duration_ns": 6 * S})
    phone.on_usage(10 * S, {"kind": ph.WAKELOCK, "uid": 11, "duration_ns": 6 * S})
    assert attr.ns[("a", "cpu", "idle")] == 4 * S + 1 * S
    assert attr.ns[("b", "cpu", "idle")] == 1 * S + 4 * S
    assert ledger.ns[("cpu", "idle")] == 10 * S  # awake once, not once per holder


def test_a_radio_active_period_with_its_tail_is_split_by_bytes():
    phone, ledger, attr = _phone()
    phone.on_usage(0, {"kind": ph.NETWORK, "uid": 10, "rx_bytes": 300000, "arg": ph.NET_CELL})
    phone.on_usage(S, {"kind": ph.NETWORK, "uid": 11, "rx_bytes": 100000, "arg": ph.NET_CELL})
    phone.on_usage(60 * S, {"kind": ph.NETWORK, "uid": 11, "rx_bytes": 1000, "arg": ph.NET_WIFI})
    phone.finish(120 * S)
    air = 100000 * 8 * S // ph.CELL_BPS + 1
    period = S + air + ph.CELL_TAIL_NS  # the second burst extended the first one's tail
    assert ledger.ns[("cell", "active")] == period
    assert attr.ns[("b", "cell", "active")] == period // 4  # integer shares by bytes,
    assert attr.ns[("a", "cell", "active")] == period - period // 4  # the rest to the heaviest
    assert ledger.ns[("wifi", "active")] == 1000 * 8 * S // ph.WIFI_BPS + 1 + ph.WIFI_TAIL_NS


def test_gps_camera_and_audio_are_charged_to_their_app():
    phone, _ledger, attr = _phone()
    phone.on_usage(5 * S, {"kind": ph.GPS, "uid": 10, "duration_ns": 5 * S})
    phone.on_usage(5 * S, {"kind": ph.CAMERA, "uid": 11, "duration_ns": S})
    phone.on_usage(5 * S, {"kind": ph.AUDIO, "uid": 11, "duration_ns": 2 * S})
    assert _j(attr, "a") == pytest.approx(50e-3 * 3.85 * 5)
    assert _j(attr, "b") == pytest.approx((400 + 2 * 30) * 1e-3 * 3.85)


@pytest.fixture(scope="module")
def phone_day():
    node = Node("app_monitor", seed=0)
    result = node.simulate("1d")
    return node, result


def test_a_simulated_phone_day_charges_every_app_that_ran_by_name(phone_day):
    node, result = phone_day
    summary = node.scheduler.summary()
    truth = node.platform.usage.truth
    names = node.platform.usage.names
    for uid, counts in truth.items():
        if any(counts.values()):
            assert summary["apps"][names[uid]] > 0, names[uid]
    for comp in ("screen", "cpu", "radio", "cell"):
        assert summary["components"][comp]["energy_j"] > 0, comp
    total = summary["energy_j"]
    assert abs(sum(summary["apps"].values()) - total) <= 1e-9 * total
    assert summary["apps"][SYSTEM] < total / 2
    assert "app com.whatsapp" in result.text()


def test_the_phone_day_is_within_published_usage(phone_day):
    from iotbpf.platforms.sim.usage import AndroidUsage, day_stats

    spec = phone_day[0].manifests[0].sim["usage"]  # app_monitor's own day
    stats = day_stats(list(AndroidUsage(0, spec).events(24 * 3600 * S)))
    # Falaki et al. (MobiSys 2010): 10-200 interactions a day, mean length 10-250 s
    assert 10 <= stats["sessions"] <= 200
    mean_s = stats["screen_on_ns"] / stats["sessions"] / S
    assert 10 <= mean_s <= 250
    fg = stats["foreground_ns"]
    communication = fg["com.whatsapp"] + fg["com.google.android.gm"]  # Böhmer et al. (MobileHCI 2011)
    assert len(fg) >= 5 and communication > max(ns for app, ns in fg.items()
                                                 if app not in ("com.whatsapp", "com.google.android.gm"))


PHONE_SNIPPET = """
import json
from iotbpf.energy import android_profile
from iotbpf.energy.accounting import Ledger
from iotbpf.energy.attribution import Attribution
from iotbpf.energy.models import parse_model
from iotbpf.energy.phone import Phone
profile = android_profile.parse_power_profile(open('/root/pp.xml').read())
models = {}
for name, m in android_profile.phone_models(profile, 'p').items():
    models[name] = parse_model(m)
ledger = Ledger(models)
attr = Attribution(ledger)
phone = Phone(profile, ledger, attr, 0, {10: 'a', 11: 'b'})
S = 1000000000
for t, f in EVENTS:
    phone.on_usage(t, f)
phone.finish(600 * S)
print(json.dumps([sorted([list(k), v] for k, v in ledger.ns.items()),
                  sorted([list(k), v] for k, v in attr.ns.items())]))
"""
EVENTS = [(0, {"kind": 1, "arg": 3}), (0, {"kind": 3, "uid": 10}),
          (5 * S, {"kind": 6, "uid": 10, "rx_bytes": 123456, "arg": 1}),
          (9 * S, {"kind": 8, "uid": 10, "cpu_time_ns": 3 * S, "arg": (2 << 8) | 7}),
          (30 * S, {"kind": 2}), (31 * S, {"kind": 10, "uid": 11}), (40 * S, {"kind": 10, "uid": 10}),
          (70 * S, {"kind": 5, "uid": 11, "duration_ns": 39 * S}), (71 * S, {"kind": 11, "uid": 10, "duration_ns": S}),
          (90 * S, {"kind": 5, "uid": 10, "duration_ns": 50 * S})]


def test_the_phone_model_gives_the_same_integer_ledger_under_micropython(micropython, shared):
    xml = shared / "data" / "power_profile_sample.xml"
    code = "EVENTS = %r\n" % EVENTS + PHONE_SNIPPET
    got = json.loads(micropython.run(code, files={"pp.xml": xml}).stdout.strip().splitlines()[-1])
    profile = parse_power_profile(xml.read_text())
    models = dict((name, parse_model(m)) for name, m in phone_models(profile, "p").items())
    ledger = Ledger(models)
    attr = Attribution(ledger)
    phone = ph.Phone(profile, ledger, attr, 0, {10: "a", 11: "b"})
    for t, f in EVENTS:
        phone.on_usage(t, dict(f))
    phone.finish(600 * S)
    want = [sorted([list(k), v] for k, v in ledger.ns.items()), sorted([list(k), v] for k, v in attr.ns.items())]
    assert got == want


def test_the_phone_takes_the_boards_own_power_profile(tmp_path):
    from conftest import REPO

    board = json.loads((REPO / "boards" / "phone.json").read_text())
    for comp, ref in board["components"].items():
        board["components"][comp] = ref.replace("raphael_power_profile.xml", "aosp_default_power_profile.xml")
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps(board))
    node = Node("app_monitor", board=str(path))
    node.simulate("2h")
    assert node.platform.phone.profile["battery_mah"] == 1000  # AOSP's default, not the Xiaomi's 4000
    assert node.scheduler.ledger.models["screen"].current_a("bright4") == pytest.approx((0.1 + 0.1 * 0.9) * 1e-3)
