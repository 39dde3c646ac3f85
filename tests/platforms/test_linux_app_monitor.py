"""Monitor samples become app_usage events, and the app_monitor eBPF app keeps the per-app counters."""

import os
import subprocess
import time

from iotbpf.platforms.android import app_usage_events as android_events
from iotbpf.platforms.android import attribute, load_checkin, load_power_profile
from iotbpf.platforms.linux import CpuModel, LinuxMonitor, app_usage_events

MODEL = CpuModel("test-cpu", idle_w=2.0, active_w=5.0)


def _app_monitor_node():
    from iotbpf.api import Node
    from iotbpf.kernel.clock import MonotonicClock

    node = Node("app_monitor", clock=MonotonicClock())
    node.build().boot()
    return node


def _deliver(node, events):
    for event in events:
        node.runtime.raise_event("app_usage", dict((k, v) for k, v in event.items() if k != "app"))


def test_app_monitor_counts_what_the_monitor_measured_on_real_proc():
    node = _app_monitor_node()
    monitor = LinuxMonitor(MODEL, group_by="uid", power_sources=[])
    burner = subprocess.Popen(["/bin/sh", "-c", "while :; do :; done"])
    try:
        monitor.sample()
        # the burner is sampled while it runs: a process that exits between samples leaves /proc
        # and its CPU time with it, so a short-lived burner could be missed on a busy machine
        deadline = time.monotonic() + 10
        while True:
            time.sleep(0.2)
            interval = monitor.sample()
            usage = next((u for u in interval.apps if u.uid == os.getuid()), None)
            if (usage is not None and usage.cpu_s > 0) or time.monotonic() > deadline:
                break
    finally:
        burner.kill()
        burner.wait()
    events = app_usage_events(interval, now_ns=1)
    _deliver(node, events)
    stats = node.app_stats("app_monitor")
    mine = stats[os.getuid()]
    usage = next(u for u in interval.apps if u.uid == os.getuid())
    assert mine["cpu_ns"] == round(usage.cpu_s * 1e9) > 0
    assert mine["wakeups"] == usage.wakeups
    assert mine["energy_uj"] == round(usage.energy_j * 1e6)
    assert node.runtime.hook_stats["app_usage"].runs == len(events)
    assert node.runtime.fault_count == 0


def test_android_checkin_drives_app_monitor_counters(shared):
    checkin = load_checkin(str(shared / "data" / "batterystats_checkin_emulator.txt"))
    profile = load_power_profile(str(shared / "data" / "power_profile_sample.xml"))
    comparison = attribute(checkin, profile)
    node = _app_monitor_node()
    _deliver(node, android_events(checkin, comparison))
    stats = node.app_stats("app_monitor")
    assert stats[1001]["cpu_ns"] == 272 * 1000000
    # BatteryStats' per-uid wakelock time: the `wl` timers (1 ms), and the cut lines' rest for 1001
    assert stats[1000]["wakelock_ns"] == 1 * 1000000 and stats[1001]["wakelock_ns"] == 43699891 * 1000000
    assert stats[1001]["energy_uj"] == round(comparison.row("uid 1001")["ours_mah"] * 3.6 * 3.85 * 1e6)
