"""Android import: `dumpsys batterystats --checkin` per-uid usage, attributed with a power profile and
reported beside Android's own estimates. Host-only; it never trusts the dump: bad lines become
notes (docs/platforms.md, "Android: batterystats and power_profile.xml").
"""

import csv

from iotbpf.ebpf.errors import IotbpfError

MAX_DUMP_BYTES = 64 * 1024 * 1024
MS_PER_HOUR = 3600.0 * 1000.0

USAGE_SAMPLE = 7  # IOT_USAGE_SAMPLE (iotbpf.kernel.hooks)
USAGE_WAKELOCK = 5  # IOT_USAGE_WAKELOCK
USAGE_NETWORK = 6  # IOT_USAGE_NETWORK

# Android's labels for non-app items in `pwi` lines (BatteryStats.dumpCheckinLocked).
GLOBAL_LABELS = ("idle", "cell", "phone", "wifi", "blue", "scrn", "flashlight", "user", "unacc",
                 "over", "camera", "memory", "ambi")


class UidUsage:
    """What one Android uid did since the last charge, as the checkin dump reports it."""

    def __init__(self, uid: int):
        self.uid = uid
        self.packages = []
        self.cpu_user_ms = 0
        self.cpu_system_ms = 0
        self.wakelock_partial_ms = 0  # awl: actual (not apportioned) partial wakelock time
        self.wakelocks = {}  # name -> partial wakelock total time ms (wl)
        self.processes = {}  # name -> {"user_ms", "system_ms", "foreground_ms", "starts"}
        self.network = {}  # nt fields by name
        self.wifi_running_ms = 0
        self.wifi_scan_ms = 0
        self.foreground_ms = 0  # fg: time with an activity on top
        self.foreground_count = 0

    @property
    def cpu_ms(self) -> int:
        return self.cpu_user_ms + self.cpu_system_ms

    @property
    def name(self) -> str:
        if self.packages:
            return self.packages[0] + (" (+%d)" % (len(self.packages) - 1) if len(self.packages) > 1 else "")
        return {0: "root", 1000: "android (system)", 1001: "radio", 2000: "shell",
                9999: "nobody"}.get(self.uid, "uid %d" % self.uid)

    def to_dict(self) -> dict:
        return {"uid": self.uid, "name": self.name, "packages": list(self.packages),
                "cpu_user_ms": self.cpu_user_ms, "cpu_system_ms": self.cpu_system_ms,
                "wakelock_partial_ms": self.wakelock_partial_ms, "wakelocks": dict(self.wakelocks),
                "processes": dict(self.processes), "network": dict(self.network),
                "wifi_running_ms": self.wifi_running_ms, "wifi_scan_ms": self.wifi_scan_ms,
                "foreground_ms": self.foreground_ms, "foreground_count": self.foreground_count}


class Checkin:
    """A parsed `dumpsys batterystats --checkin` (the "l", since-charged, section)."""

    def __init__(self):
        self.checkin_version = None
        self.build = None
        self.uids = {}  # uid -> UidUsage
        self.battery = {}  # bt fields
        self.misc = {}  # m fields
        self.brightness_ms = []  # br: time in each of 5 screen brightness bins
        self.signal_ms = []  # sgt: time in each phone signal strength bin
        self.signal_scanning_ms = 0
        self.discharge = {}  # dc fields
        self.kernel_wakelocks = {}  # name -> (total ms, count)
        self.power_summaries = []  # pws: (capacity mAh, computed mAh, min drained, max drained)
        self.android_estimates = []  # pwi: {"label", "uid", "mah", "hidden", "screen_mah", "smear_mah"}
        self.lines = 0
        self.unknown_types = {}
        self.notes = []

    def uid(self, uid: int) -> UidUsage:
        if uid not in self.uids:
            self.uids[uid] = UidUsage(uid)
        return self.uids[uid]

    @property
    def power_summary(self) -> tuple | None:
        """Android's summary that precedes its `pwi` items (the last `pws` line), or None."""
        return self.power_summaries[-1] if self.power_summaries else None


def _int(value, default=0):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_BT = ("start_count", "realtime_ms", "uptime_ms", "total_realtime_ms", "total_uptime_ms",
       "start_clock_ms", "screen_off_realtime_ms", "screen_off_uptime_ms", "estimated_capacity_mah",
       "min_learned_capacity_uah", "max_learned_capacity_uah", "screen_doze_ms")
_M = ("screen_on_ms", "phone_on_ms", "full_wakelock_ms", "partial_wakelock_ms", "mobile_radio_active_ms",
      "mobile_radio_active_adjusted_ms", "interactive_ms", "low_power_mode_ms", "connectivity_changes",
      "device_idle_deep_ms", "device_idle_deep_count", "device_idling_deep_ms", "device_idling_deep_count",
      "mobile_radio_active_count", "mobile_radio_active_unknown_ms")
_DC = ("low_percent", "high_percent", "screen_on_percent", "screen_off_percent", "discharge_mah",
       "screen_off_discharge_mah", "screen_doze_percent", "screen_doze_discharge_mah",
       "light_doze_discharge_mah", "deep_doze_discharge_mah")
_NT = ("mobile_rx_bytes", "mobile_tx_bytes", "wifi_rx_bytes", "wifi_tx_bytes", "mobile_rx_packets",
       "mobile_tx_packets", "wifi_rx_packets", "wifi_tx_packets", "mobile_active_ms", "mobile_active_count")


def parse_checkin(text: str) -> Checkin:
    """Parse a checkin dump; raises IotbpfError when it is not one at all."""
    if len(text) > MAX_DUMP_BYTES:
        raise IotbpfError("batterystats dump is larger than %d bytes" % MAX_DUMP_BYTES)
    out = Checkin()
    bad = 0
    for row in csv.reader(text.splitlines()):
        if not row:
            continue
        if len(row) < 4 or not row[0].isdigit():
            bad += 1
            continue
        out.lines += 1
        uid = _int(row[1], None)
        section, kind, fields = row[2], row[3], row[4:]
        if uid is None:
            bad += 1
            continue
        if section == "i":
            if kind == "vers" and len(fields) >= 4:
                out.checkin_version = _int(fields[0])
                out.build = fields[2]
            elif kind == "uid" and len(fields) >= 2:
                usage = out.uid(_int(fields[0]))
                if fields[1] not in usage.packages:
                    usage.packages.append(fields[1])
            continue
        if section != "l":
            continue  # older dumps also have "c"/"u" sections; we use since-charged only
        try:
            _parse_line(out, uid, kind, fields)
        except (ValueError, IndexError):
            bad += 1
    if out.lines == 0:
        raise IotbpfError("not a `dumpsys batterystats --checkin` dump (no checkin lines)")
    if bad:
        out.notes.append("%d lines could not be parsed and were skipped" % bad)
    if len(out.power_summaries) > 1:
        out.notes.append("%d pws lines; Android's estimates are compared with the last one %r"
                         % (len(out.power_summaries), out.power_summaries[-1]))
    if out.unknown_types:
        out.notes.append("line types not used: " + ", ".join(sorted(out.unknown_types)))
    return out


def _parse_line(out: Checkin, uid: int, kind: str, f: list) -> None:
    if kind == "bt":
        out.battery = dict((name, _int(v)) for name, v in zip(_BT, f))
    elif kind == "m":
        out.misc = dict((name, _int(v)) for name, v in zip(_M, f))
    elif kind == "br":
        out.brightness_ms = [_int(v) for v in f]
    elif kind == "sgt":
        out.signal_ms = [_int(v) for v in f]
    elif kind == "sst":
        out.signal_scanning_ms = _int(f[0])
    elif kind == "dc":
        out.discharge = dict((name, _int(v)) for name, v in zip(_DC, f))
    elif kind == "kwl":
        out.kernel_wakelocks[f[0]] = (_int(f[1]), _int(f[2]))
    elif kind == "pws":
        values = tuple(_float(v) for v in f[:4])
        if None in values or len(values) < 4:
            raise ValueError("bad pws")
        out.power_summaries.append(values)
    elif kind == "pwi":
        mah = _float(f[1])
        if mah is None:
            raise ValueError("bad pwi")
        out.android_estimates.append({"label": f[0], "uid": uid if f[0] == "uid" else None, "mah": mah,
                                      "hidden": f[2] == "1" if len(f) > 2 else False,
                                      "screen_mah": _float(f[3]) if len(f) > 3 else None,
                                      "smear_mah": _float(f[4]) if len(f) > 4 else None})
    elif kind == "cpu":
        usage = out.uid(uid)
        usage.cpu_user_ms += int(f[0])
        usage.cpu_system_ms += int(f[1])
    elif kind == "pr":
        out.uid(uid).processes[f[0]] = {"user_ms": int(f[1]), "system_ms": int(f[2]),
                                        "foreground_ms": _int(f[3]), "starts": _int(f[4])}
    elif kind == "awl":
        out.uid(uid).wakelock_partial_ms += int(f[0])
    elif kind == "wl":
        # name, then groups of (total ms, type letter, count, current, max, total duration)
        name = f[0]
        for i in range(1, len(f) - 1):
            if f[i + 1] == "p":
                out.uid(uid).wakelocks[name] = int(f[i])
                break
    elif kind == "fg":
        usage = out.uid(uid)
        usage.foreground_ms += int(f[0])
        usage.foreground_count += _int(f[1])
    elif kind == "nt":
        out.uid(uid).network = dict((name, _int(v)) for name, v in zip(_NT, f))
    elif kind == "wfl":
        usage = out.uid(uid)
        usage.wifi_running_ms = _int(f[2])
        usage.wifi_scan_ms = _int(f[1])
    else:
        out.unknown_types[kind] = out.unknown_types.get(kind, 0) + 1


# ------------------------------------------------------------------ attribution

def cpu_active_ma(profile: dict) -> float:
    """mA of one busy core with no frequency data: the cores-weighted mean of each cluster's
    per-speed core currents (plus its cluster current), plus the CPU's base active current
    (cpu.active) when the profile has them."""
    total = 0.0
    cores = 0
    for cluster in profile.get("clusters") or ():
        powers = [float(p) for p in cluster.get("core_ma") or ()]
        if not powers:
            continue
        n = int(cluster.get("cores") or 1)
        total += n * (sum(powers) / len(powers) + float(cluster.get("cluster_ma") or 0.0))
        cores += n
    core = total / cores if cores else 0.0
    return core + float(profile.get("active_ma") or 0.0)


def _ma(profile: dict, key: str) -> float:
    value = profile.get(key)
    if isinstance(value, (list, tuple)):
        return float(value[0]) if value else 0.0
    return float(value or 0.0)


class Comparison:
    """Our attribution beside Android's own `pwi` estimates, per uid and per global item."""

    def __init__(self):
        self.rows = []  # dicts: item, uid, name, ours_mah, android_mah, diff_mah, diff_pct, basis
        self.ours_total_mah = 0.0
        self.android_total_mah = None
        self.drained_mah = None
        self.model = ""
        self.notes = []

    def row(self, item: str) -> dict | None:
        for row in self.rows:
            if row["item"] == item:
                return row
        return None

    def to_dict(self) -> dict:
        return {"version": 1, "kind": "iotbpf-android-comparison", "model": self.model,
                "ours_total_mah": round(self.ours_total_mah, 6), "android_total_mah": self.android_total_mah,
                "drained_mah": self.drained_mah, "rows": self.rows, "notes": list(self.notes)}

    def table(self, limit: int = 0) -> str:
        """The comparison as a text table, largest items first."""
        lines = ["%-34s %12s %12s %12s %9s  %s" % ("item", "ours mAh", "android mAh", "diff mAh", "diff %",
                                                   "our basis")]
        rows = self.rows[:limit] if limit else self.rows
        for r in rows:
            lines.append("%-34s %12s %12s %12s %9s  %s" % (
                r["name"][:34], _fmt(r["ours_mah"]), _fmt(r["android_mah"]), _fmt(r["diff_mah"]),
                "-" if r["diff_pct"] is None else "%.1f" % r["diff_pct"], r["basis"]))
        lines.append("%-34s %12s %12s" % ("total", _fmt(self.ours_total_mah), _fmt(self.android_total_mah)))
        if self.drained_mah is not None:
            lines.append("battery drained (Android's min..max): %s mAh" % self.drained_mah)
        return "\n".join(lines)


def comparison_markdown(comparison: Comparison) -> str:
    """The comparison as a Markdown table (docs/platforms.md carries the emulator dump's)."""
    lines = ["| item | uid | ours mAh | Android mAh | diff | in Android's total | our basis |",
             "|---|---:|---:|---:|---:|:-:|---|"]
    for r in comparison.rows:
        diff = "-" if r["diff_mah"] is None else (
            "%+.1f %%" % r["diff_pct"] if r["diff_pct"] is not None else "%+.3g mAh" % r["diff_mah"])
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            r["name"], "" if r["uid"] is None else r["uid"], _fmt(r["ours_mah"]), _fmt(r["android_mah"]),
            diff, "yes" if r["in_android_total"] else "no", r["basis"]))
    lines.append("| computed total | | %s | %s | | | |" % (_fmt(comparison.ours_total_mah),
                                                         _fmt(comparison.android_total_mah)))
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) < 0.001:
        return "%.2e" % value
    return "%.4f" % value


def wakelock_ms(checkin: Checkin) -> dict:
    """{uid: partial wakelock ms} as BatteryStats charges them: each uid's `wl` partial timers
    (Android's timer pool already splits time between uids holding wakelocks at once).

    A dump whose `wl` lines were cut (the shared emulator fixture is one) has a total (`m`) larger
    than the listed timers; that rest goes to the uids that show a `*wakelock*` process (the CPU
    BatteryStats books under a held wakelock), in proportion to that process's CPU time. With no
    such uid it stays unassigned, and Android's rule gives it to the OS (uid 0).
    """
    out = {}
    for uid, usage in checkin.uids.items():
        if usage.wakelocks:
            out[uid] = sum(usage.wakelocks.values())
    rest = checkin.misc.get("partial_wakelock_ms", 0) - sum(out.values())
    weights = []
    for uid, usage in sorted(checkin.uids.items()):
        proc = usage.processes.get("*wakelock*")
        if proc is not None:
            weights.append((uid, proc["user_ms"] + proc["system_ms"] + 1))
    if rest > 0 and weights:
        total = sum(w for _u, w in weights)
        given = 0
        for i, (uid, w) in enumerate(weights):
            share = rest - given if i == len(weights) - 1 else rest * w // total
            out[uid] = out.get(uid, 0) + share
            given += share
        checkin_note = ("%d ms of partial wakelock time (`m`) is in no `wl` line; given to uid(s) %s "
                        "that hold a `*wakelock*` process" % (rest, ", ".join(str(u) for u, _w in weights)))
        if checkin_note not in checkin.notes:
            checkin.notes.append(checkin_note)
    return out


def attribute(checkin: Checkin, profile: dict, model_name: str = "power_profile") -> Comparison:
    """Attribute charge per uid with our model and set it beside Android's `pwi` estimates.

    The rules are BatteryStatsHelper's power calculators (Android 8-11), applied to the dump:
    app CPU = CPU ms x the mean busy-core current (the dump has no per-speed times); app
    wakelock = its partial wakelock ms (``wakelock_ms``) x cpu.idle; app mobile radio = its active
    ms x radio.active; app Wi-Fi = running ms x wifi.on + scan ms x wifi.scan. The OS (uid 0)
    gets the awake time no app or screen accounts for: uptime - app wakelocks - screen on, x
    cpu.idle. Global items: idle = realtime x cpu.suspend + uptime x cpu.idle; cell = signal-bin
    time x radio.on[bin] + scanning x radio.scanning + active time no app caused x radio.active;
    screen = on time x screen.on + brightness-bin time x screen.full x (bin + 0.5) / 5; unaccounted
    = Android's minimum drained charge (discharge % x capacity) - the computed total.
    """
    result = Comparison()
    result.model = model_name
    core_ma = cpu_active_ma(profile)
    awake_ma = _ma(profile, "idle_ma")
    radio_active_ma = _ma(profile, "radio_active_ma")
    ours = {}  # item -> (uid, name, mah, basis)
    held = wakelock_ms(checkin)
    app_mobile_ms = 0
    for uid, usage in sorted(checkin.uids.items()):
        lock_ms = held.get(uid, 0)
        mobile_ms = usage.network.get("mobile_active_ms", 0)
        app_mobile_ms += mobile_ms
        cpu = usage.cpu_ms * core_ma / MS_PER_HOUR
        wakelock = lock_ms * awake_ma / MS_PER_HOUR
        radio = mobile_ms * radio_active_ma / MS_PER_HOUR
        wifi = (usage.wifi_running_ms * _ma(profile, "wifi_on_ma")
                + usage.wifi_scan_ms * _ma(profile, "wifi_scan_ma")) / MS_PER_HOUR
        parts = []
        if usage.cpu_ms:
            parts.append("cpu %d ms x %.4g mA" % (usage.cpu_ms, core_ma))
        if lock_ms:
            parts.append("wakelock %d ms x %.4g mA" % (lock_ms, awake_ma))
        if radio:
            parts.append("radio %d ms" % mobile_ms)
        if wifi:
            parts.append("wifi")
        ours["uid %d" % uid] = [uid, usage.name, cpu + wakelock + radio + wifi,
                                ", ".join(parts) or "no usage in dump"]
    battery = checkin.battery
    realtime = battery.get("realtime_ms", 0)
    uptime = battery.get("uptime_ms", 0)
    screen_on_ms = checkin.misc.get("screen_on_ms", 0)
    os_ms = uptime - sum(held.values()) - screen_on_ms
    if os_ms > 0:
        entry = ours.setdefault("uid 0", [0, UidUsage(0).name, 0.0, "no usage in dump"])
        entry[2] += os_ms * awake_ma / MS_PER_HOUR
        entry[3] = ("" if entry[3] == "no usage in dump" else entry[3] + ", ") + \
            "awake time no app or screen accounts for %d ms x %.4g mA" % (os_ms, awake_ma)
    idle = (realtime * _ma(profile, "suspend_ma") + uptime * awake_ma) / MS_PER_HOUR
    ours["idle"] = [None, "idle", idle, "realtime %d ms x suspend, uptime %d ms x awake" % (realtime, uptime)]
    radio_on = profile.get("radio_on_ma") or [0.0]
    if not isinstance(radio_on, (list, tuple)):
        radio_on = [radio_on]
    cell = 0.0
    for level, ms in enumerate(checkin.signal_ms):
        cell += ms * float(radio_on[min(level, len(radio_on) - 1)] if radio_on else 0.0)
    cell += checkin.signal_scanning_ms * _ma(profile, "radio_scanning_ma")
    unclaimed_ms = max(0, checkin.misc.get("mobile_radio_active_ms", 0) - app_mobile_ms)
    cell += unclaimed_ms * radio_active_ma
    ours["cell"] = [None, "cell", cell / MS_PER_HOUR, "signal-bin time x radio.on, scanning x radio.scanning, "
                    "radio active %d ms no app caused x radio.active" % unclaimed_ms]
    screen = screen_on_ms * _ma(profile, "screen_on_ma")
    bins = len(checkin.brightness_ms) or 5
    for level, ms in enumerate(checkin.brightness_ms):
        screen += ms * _ma(profile, "screen_full_ma") * (level + 0.5) / bins
    ours["scrn"] = [None, "screen", screen / MS_PER_HOUR,
                    "on %d ms x screen.on + brightness bins x screen.full" % screen_on_ms]
    computed = sum(v[2] for v in ours.values())
    capacity = float(profile.get("battery_mah") or 0.0)
    low = checkin.discharge.get("low_percent")
    high = checkin.discharge.get("high_percent")
    if capacity and low is not None and low > 1:
        min_drained = low * capacity / 100.0
        max_drained = (high if high is not None else low) * capacity / 100.0
        if min_drained > computed:
            ours["unacc"] = [None, "unaccounted", min_drained - computed,
                             "drained at least %d %% x %g mAh - computed" % (low, capacity)]
        elif max_drained < computed:
            ours["over"] = [None, "overcounted", computed - max_drained,
                            "computed - drained at most %d %% x %g mAh" % (high, capacity)]
    android = {}
    for est in checkin.android_estimates:
        item = "uid %d" % est["uid"] if est["label"] == "uid" else est["label"]
        android[item] = android.get(item, 0.0) + est["mah"]
    for item in sorted(set(ours) | set(android)):
        uid, name, mah, basis = ours.get(item, [None, None, None, "not modelled"])
        if name is None:
            if item.startswith("uid "):
                uid = int(item[4:])
                name = (checkin.uids.get(uid) or UidUsage(uid)).name
                mah, basis = 0.0, "no usage in dump"
            else:
                name = item
        theirs = android.get(item)
        if not mah and theirs is None:
            continue  # an installed package that did nothing and that Android did not list either
        diff = None if mah is None or theirs is None else mah - theirs
        pct = None if diff is None or not theirs else 100.0 * diff / theirs
        result.rows.append({"item": item, "uid": uid, "name": name,
                            "ours_mah": None if mah is None else round(mah, 12),
                            "android_mah": theirs, "diff_mah": None if diff is None else round(diff, 12),
                            "diff_pct": None if pct is None else round(pct, 3), "basis": basis,
                            "in_android_total": True})
    result.rows.sort(key=lambda r: -max(r["ours_mah"] or 0.0, r["android_mah"] or 0.0))
    result.ours_total_mah = computed
    summary = checkin.power_summary
    if summary is not None:
        result.android_total_mah = summary[1]
        result.drained_mah = "%g..%g" % (summary[2], summary[3])
        _mark_outside_total(result, summary[1])
    profile_mah = profile.get("battery_mah")
    if summary is not None and profile_mah and abs(float(profile_mah) - summary[0]) > 0.5:
        result.notes.append("Android's estimates used a %g mAh power profile; ours uses a %g mAh one, so "
                            "the two models differ, not only the rules" % (summary[0], float(profile_mah)))
    result.notes.extend(checkin.notes)
    return result


def _mark_outside_total(result: Comparison, android_computed: float) -> None:
    """Flag Android's rows that its own computed total (`pws`) does not include.

    Android's items (not unaccounted/overcounted) add up to its computed total; when they add up
    to more, the excess is made of uid lines with no usage in the dump (an edited or merged
    dump): those rows, largest first, are marked ``in_android_total: False`` and named in a note.
    """
    items = [r for r in result.rows if r["android_mah"] is not None and r["item"] not in ("unacc", "over")]
    excess = sum(r["android_mah"] for r in items) - android_computed
    tolerance = 0.01 + 0.005 * android_computed  # `pwi` and `pws` print 3 significant digits
    if excess <= tolerance:
        return
    taken = []
    left = excess
    for r in sorted(items, key=lambda r: -r["android_mah"]):
        if r["item"].startswith("uid ") and r["basis"] == "no usage in dump" and r["android_mah"] >= 0.005 \
                and r["android_mah"] <= left + tolerance:
            r["in_android_total"] = False
            taken.append(r)
            left -= r["android_mah"]
    if taken:
        result.notes.append("Android's items add up to %.4g mAh, but its own computed total is %g mAh: %s "
                            "(no usage lines in the dump) are not part of it" % (
                                android_computed + excess, android_computed,
                                ", ".join("%s %g mAh" % (r["item"], r["android_mah"]) for r in taken)))


def app_usage_events(checkin: Checkin, comparison=None, voltage_v: float = 3.85) -> list:
    """The dump as app_usage hook contexts: a per-uid sample (CPU, bytes, energy) and wakelock events.

    Energy needs a voltage (profiles give mA): ``voltage_v`` is the battery's nominal voltage.
    """
    duration_ns = int(checkin.battery.get("realtime_ms", 0)) * 1000000
    energy = {}
    if comparison is not None:
        for row in comparison.rows:
            if row["uid"] is not None and row["ours_mah"] is not None:
                energy[row["uid"]] = row["ours_mah"] * 3.6 * voltage_v  # mAh x V = mWh; x 3.6 = J
    events = []
    held = wakelock_ms(checkin)
    for uid, usage in sorted(checkin.uids.items()):
        rx = usage.network.get("mobile_rx_bytes", 0) + usage.network.get("wifi_rx_bytes", 0)
        tx = usage.network.get("mobile_tx_bytes", 0) + usage.network.get("wifi_tx_bytes", 0)
        if usage.cpu_ms or rx or tx or uid in energy:
            events.append({"app": usage.name, "uid": uid & 0xFFFFFFFF, "kind": USAGE_SAMPLE,
                           "now_ns": duration_ns, "duration_ns": duration_ns,
                           "cpu_time_ns": usage.cpu_ms * 1000000, "rx_bytes": rx, "tx_bytes": tx,
                           "energy_uj": int(round(energy.get(uid, 0.0) * 1e6)), "wakeups": 0})
        if held.get(uid):
            events.append({"app": usage.name, "uid": uid & 0xFFFFFFFF, "kind": USAGE_WAKELOCK,
                           "now_ns": duration_ns, "duration_ns": held[uid] * 1000000,
                           "cpu_time_ns": 0, "rx_bytes": 0, "tx_bytes": 0, "energy_uj": 0, "wakeups": 0})
    return events


def load_power_profile(path: str) -> dict:
    """A power_profile.xml as the energy layer's normalised dict (old and new key names)."""
    from iotbpf.energy import android_profile
    from iotbpf.energy.models import read_text

    return android_profile.parse_power_profile(read_text(path))


def load_checkin(path: str) -> Checkin:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return parse_checkin(handle.read(MAX_DUMP_BYTES + 1))
