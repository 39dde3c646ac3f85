"""A real phone's day as an app_usage trace, from `dumpsys batterystats --checkin` or `--history` or
from `dumpsys usagestats`, to replay through app_monitor. Host-only; unreadable lines are counted
in ``notes``, never guessed at (docs/platforms.md, "A real Android day").
"""

import re

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.kernel.hooks import constant

SCREEN_ON = constant("IOT_USAGE_SCREEN_ON")
SCREEN_OFF = constant("IOT_USAGE_SCREEN_OFF")
FOREGROUND = constant("IOT_USAGE_FOREGROUND")
WAKELOCK = constant("IOT_USAGE_WAKELOCK")
NETWORK = constant("IOT_USAGE_NETWORK")
CPU = constant("IOT_USAGE_CPU")
BRIGHTNESS = constant("IOT_USAGE_BRIGHTNESS")
ACQUIRE = constant("IOT_USAGE_WAKELOCK_ACQUIRE")
NET_WIFI = constant("IOT_USAGE_NET_WIFI")
NET_CELL = constant("IOT_USAGE_NET_CELL")

MS = 1000000
MAX_TEXT = 64 * 1024 * 1024
# BatteryStats' screen brightness bins as the history prints them (SCREEN_BRIGHTNESS_NAMES)
BRIGHTNESS_NAMES = ("dark", "dim", "medium", "light", "bright")


class UsageTrace:
    """Events of one imported day, the names of its uids and notes on what was skipped."""

    def __init__(self, source: str):
        self.source = source
        self.events = []  # (t_ns, "app_usage", fields)
        self.names = {}   # uid -> package
        self.notes = []

    def add(self, t_ns: int, kind: int, uid: int = 0, **fields) -> None:
        fields["kind"] = kind
        fields["uid"] = uid
        if uid and uid in self.names:
            fields["app"] = self.names[uid]
        self.events.append((int(t_ns), "app_usage", fields))

    def foreground_ms(self) -> dict:
        """{uid: ms} on top while the screen was on: what app_monitor's foreground_ns should count."""
        out = {}
        screen = False
        fg = None
        since = 0
        for t, _hook, f in sorted(self.events, key=lambda e: e[0]):
            kind = f["kind"]
            if kind in (SCREEN_OFF, FOREGROUND) and screen and fg is not None:
                out[fg] = out.get(fg, 0) + (t - since)
            if kind == SCREEN_ON:
                screen = True
            elif kind == SCREEN_OFF:
                screen = False
            elif kind == FOREGROUND:
                fg = f["uid"]
            if kind in (SCREEN_ON, SCREEN_OFF, FOREGROUND):
                since = t
        return dict((uid, ns // MS) for uid, ns in out.items())


# ------------------------------------------------------------------ checkin totals

def checkin_trace(checkin) -> UsageTrace:
    """Lay a checkin dump's since-charged totals out on a timeline of its battery realtime.

    The dump has totals, not times, so the day is rebuilt in order: the screen-on time (its
    brightness bins in turn, the uids' foreground activity time `fg` at its end), then each uid's
    partial wakelock time (BatteryStats' own per-uid figure, see ``android.wakelock_ms``), then each
    uid's CPU time and network bytes. Replayed, each uid's foreground and wakelock counters equal
    the dump's.
    """
    from iotbpf.platforms.android import wakelock_ms

    trace = UsageTrace("batterystats --checkin")
    for uid, usage in checkin.uids.items():
        trace.names[uid] = usage.name
    screen_ms = checkin.misc.get("screen_on_ms", 0)
    fg = [(uid, u.foreground_ms) for uid, u in sorted(checkin.uids.items()) if u.foreground_ms > 0]
    fg_total = sum(ms for _u, ms in fg)
    on_ms = max(screen_ms, fg_total)
    t = 0
    if on_ms:
        bins = [(level, ms) for level, ms in enumerate(checkin.brightness_ms) if ms > 0]
        trace.add(0, SCREEN_ON, arg=bins[0][0] if bins else 2)
        at = 0
        for i, (level, ms) in enumerate(bins):
            if i:
                trace.add(at * MS, BRIGHTNESS, arg=level)
            at += ms
        t = on_ms - fg_total
        for uid, ms in fg:
            trace.add(t * MS, FOREGROUND, uid)
            t += ms
        t = on_ms
        trace.add(t * MS, SCREEN_OFF)
    for uid, ms in sorted(wakelock_ms(checkin).items()):
        if ms > 0:
            trace.add(t * MS, ACQUIRE, uid)
            t += ms
            trace.add(t * MS, WAKELOCK, uid, duration_ns=ms * MS)
    for uid, usage in sorted(checkin.uids.items()):
        if usage.cpu_ms:
            trace.add(t * MS, CPU, uid, cpu_time_ns=usage.cpu_ms * MS)
        net = usage.network
        for arg, rx, tx in ((NET_WIFI, "wifi_rx_bytes", "wifi_tx_bytes"),
                            (NET_CELL, "mobile_rx_bytes", "mobile_tx_bytes")):
            if net.get(rx, 0) or net.get(tx, 0):
                trace.add(t * MS, NETWORK, uid, rx_bytes=net.get(rx, 0), tx_bytes=net.get(tx, 0), arg=arg)
    realtime = checkin.battery.get("realtime_ms", 0)
    if t > realtime:
        trace.notes.append("the dump's totals need %d ms laid end to end, more than its %d ms of battery "
                           "realtime" % (t, realtime))
    return trace


# ------------------------------------------------------------------ history timeline

_TIME = re.compile(r"^\+?((?:\d+d)?(?:\d+h)?(?:\d+m(?!s))?(?:\d+s)?(?:\d+ms)?|0)$")
_PART = re.compile(r"(\d+)(d|h|ms|m|s)")
_TOKEN = re.compile(r'([+-]?)([A-Za-z_][\w.]*)(?:=((?:[^\s"]|"[^"]*")*))?')
_UID = re.compile(r"^(?:u(\d+)a(\d+)|u(\d+)s(\d+)|(\d+))")
_UNIT_MS = {"d": 86400000, "h": 3600000, "m": 60000, "s": 1000, "ms": 1}


def _offset_ms(text: str) -> int | None:
    if not _TIME.match(text):
        return None
    return sum(int(n) * _UNIT_MS[u] for n, u in _PART.findall(text))


def _uid(value: str) -> tuple | None:
    """(uid, name) from a history value like ``u0a57:"com.example"`` or ``1000:"android"``."""
    m = _UID.match(value)
    if m is None:
        return None
    if m.group(2) is not None:
        uid = int(m.group(1)) * 100000 + 10000 + int(m.group(2))
    elif m.group(4) is not None:
        uid = int(m.group(3)) * 100000 + int(m.group(4))
    else:
        uid = int(m.group(5))
    name = None
    i = value.find(":")
    if i >= 0:
        name = value[i + 1:]
        if name.startswith('"'):
            name = name[1:-1] if name.endswith('"') and len(name) > 1 else name[1:]
    return uid, name or None


def parse_history(text: str) -> UsageTrace:
    """The `dumpsys batterystats --history` timeline: screen on/off and brightness, the top app
    (`top=u0a42:"pkg"`, names quoted or not), partial wakelocks per uid (`wake_lock_in=` with full
    wake history, else `+wake_lock=uid:"tag"` ... `-wake_lock`); state words in hex, battery
    fields and other entries are passed over."""
    if len(text) > MAX_TEXT:
        raise IotbpfError("history dump is larger than %d bytes" % MAX_TEXT)
    trace = UsageTrace("batterystats --history")
    t = 0
    lines = 0
    bad = 0
    held = {}  # (uid, tag) -> start ms
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[1].startswith("("):
            continue
        offset = _offset_ms(parts[0])
        if offset is None:
            bad += 1
            continue
        lines += 1
        t = offset  # the history prints each entry's time since its start
        rest = parts[2] if len(parts) > 2 else ""
        for sign, key, value in _TOKEN.findall(rest):
            if key == "screen" and sign:
                trace.add(t * MS, SCREEN_ON if sign == "+" else SCREEN_OFF)
            elif key == "brightness" and value in BRIGHTNESS_NAMES:
                trace.add(t * MS, BRIGHTNESS, arg=BRIGHTNESS_NAMES.index(value))
            elif key == "top" and sign != "-" and value:
                who = _uid(value)
                if who is None:
                    bad += 1
                    continue
                if who[1]:
                    trace.names.setdefault(who[0], who[1])
                trace.add(t * MS, FOREGROUND, who[0])
            elif key in ("wake_lock_in", "wake_lock") and sign == "+" and value:
                who = _uid(value)
                if who is None:
                    bad += 1
                    continue
                held[(key, who[0], who[1])] = t
                trace.add(t * MS, ACQUIRE, who[0])
            elif key in ("wake_lock_in", "wake_lock") and sign == "-":
                # `-wake_lock_in=uid:"tag"` ends that wakelock; a bare `-wake_lock` (the default
                # history names only the wakelock that woke the device) ends the one it named
                who = _uid(value) if value else None
                for k in [k for k in held if k[0] == key and (who is None or k[1:] == who)]:
                    trace.add(t * MS, WAKELOCK, k[1], duration_ns=(t - held.pop(k)) * MS)
    if lines == 0:
        raise IotbpfError("not a `dumpsys batterystats --history` dump (no history lines)")
    if bad:
        trace.notes.append("%d history entries could not be read and were skipped" % bad)
    _name_events(trace)
    return trace


# ------------------------------------------------------------------ usagestats events

_EVENT = re.compile(r'time="([^"]+)"\s+type=(\w+)(?:.*?\bpackage=(\S+))?')
_CLOCK = re.compile(r"(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,3}))?")
FOREGROUND_TYPES = ("ACTIVITY_RESUMED", "MOVE_TO_FOREGROUND")
SCREEN_TYPES = {"SCREEN_INTERACTIVE": SCREEN_ON, "SCREEN_NON_INTERACTIVE": SCREEN_OFF}


def _clock_ms(text: str) -> int | None:
    m = _CLOCK.search(text)
    if m is None:
        return None
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    # days from a civil date (proleptic Gregorian), so no time zone or locale is involved
    y2 = y - (mo <= 2)
    era = y2 // 400
    yoe = y2 - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    days = era * 146097 + (yoe * 365 + yoe // 4 - yoe // 100 + doy)
    return ((days * 24 + h) * 60 + mi) * 60000 + s * 1000 + int((m.group(7) or "0").ljust(3, "0"))


def parse_usagestats(text: str, uids: dict | None = None) -> UsageTrace:
    """`dumpsys usagestats` event lines (``time="..." type=ACTIVITY_RESUMED package=...``): screen
    interactive/non-interactive and the app moved to the foreground. usagestats names packages,
    not uids: ``uids`` ({package: uid}, e.g. from a checkin dump's uid table) gives them; other
    packages get uids from 90000 in order of appearance (noted)."""
    if len(text) > MAX_TEXT:
        raise IotbpfError("usagestats dump is larger than %d bytes" % MAX_TEXT)
    trace = UsageTrace("usagestats")
    by_pkg = dict(uids or {})
    start = None
    made = 0
    for line in text.splitlines():
        m = _EVENT.search(line)
        if m is None:
            continue
        ms = _clock_ms(m.group(1))
        if ms is None:
            continue
        start = ms if start is None else start
        t = ms - start
        kind = m.group(2)
        if kind in SCREEN_TYPES:
            trace.add(t * MS, SCREEN_TYPES[kind])
        elif kind in FOREGROUND_TYPES and m.group(3):
            pkg = m.group(3)
            if pkg not in by_pkg:
                by_pkg[pkg] = 90000 + made
                made += 1
            trace.names[by_pkg[pkg]] = pkg
            trace.add(t * MS, FOREGROUND, by_pkg[pkg])
    if start is None:
        raise IotbpfError("not a `dumpsys usagestats` dump (no time=... type=... event lines)")
    if trace.events and trace.events[0][0] < 0:
        raise IotbpfError("usagestats events are not in time order")
    trace.events.sort(key=lambda e: e[0])
    if made:
        trace.notes.append("%d packages had no uid; numbered from 90000" % made)
    _name_events(trace)
    return trace


def _name_events(trace: UsageTrace) -> None:
    for _t, _h, fields in trace.events:
        name = trace.names.get(fields["uid"])
        if name and fields["uid"]:
            fields["app"] = name


def load_trace(path: str, kind: str | None = None, uids: dict | None = None) -> UsageTrace:
    """Read a dump file and convert it: ``kind`` "checkin", "history" or "usagestats" (None: guess
    from the text)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(MAX_TEXT + 1)
    except OSError as exc:
        raise IotbpfError("cannot read %s: %s" % (path, exc.strerror)) from None
    if kind is None:
        kind = "checkin" if re.search(r"^\d+,\d+,[il],", text, re.M) else \
            "usagestats" if 'time="' in text and "type=" in text else "history"
    if kind == "checkin":
        from iotbpf.platforms.android import parse_checkin

        return checkin_trace(parse_checkin(text))
    if kind == "history":
        return parse_history(text)
    if kind == "usagestats":
        return parse_usagestats(text, uids)
    raise IotbpfError("unknown dump kind %r (checkin, history or usagestats)" % kind)
