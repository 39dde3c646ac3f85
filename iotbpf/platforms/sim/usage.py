"""An Android-like app-usage generator: a phone's day of screen sessions, foreground apps, CPU, alarms,
wakelocks, radio bursts, GPS, camera and audio from one seed, with the ground truth per uid kept
for tests. The published usage it follows: docs/platforms.md ("Phones: per-app energy from usage").
"""

import heapq

from iotbpf.ebpf.prng import Rng
from iotbpf.kernel.clock import parse_duration
from iotbpf.kernel.hooks import constant

SCREEN_ON = constant("IOT_USAGE_SCREEN_ON")
SCREEN_OFF = constant("IOT_USAGE_SCREEN_OFF")
FOREGROUND = constant("IOT_USAGE_FOREGROUND")
WAKEUP = constant("IOT_USAGE_WAKEUP")
WAKELOCK = constant("IOT_USAGE_WAKELOCK")
NETWORK = constant("IOT_USAGE_NETWORK")
CPU = constant("IOT_USAGE_CPU")
BRIGHTNESS = constant("IOT_USAGE_BRIGHTNESS")
ACQUIRE = constant("IOT_USAGE_WAKELOCK_ACQUIRE")
GPS = constant("IOT_USAGE_GPS")
CAMERA = constant("IOT_USAGE_CAMERA")
AUDIO = constant("IOT_USAGE_AUDIO")
DISK = constant("IOT_USAGE_DISK")
NET_WIFI = constant("IOT_USAGE_NET_WIFI")
NET_CELL = constant("IOT_USAGE_NET_CELL")

NS_PER_S = 1000000000
NS_PER_H = 3600 * NS_PER_S
NS_PER_DAY = 24 * NS_PER_H

# One row per app. weight: share of foreground time; cpu: share of one core busy while in the
# foreground; big: share of that CPU time on the big cluster(s); fg_net_per_min: bursts while on
# top; alarms/wakelocks/net_per_hour: background activity; gps/camera: used while on top;
# audio: plays while it holds its background wakelock (music).
DEFAULT_APPS = (
    {"uid": 10061, "name": "com.whatsapp", "weight": 30, "cpu": 0.15, "big": 0.1, "fg_net_per_min": 2,
     "bytes": 20000, "alarms_per_hour": 4, "wakelocks_per_hour": 2, "wakelock": "20s", "net_per_hour": 6,
     "disk_per_hour": 4},
    {"uid": 10062, "name": "com.android.chrome", "weight": 25, "cpu": 0.35, "big": 0.4, "fg_net_per_min": 4,
     "bytes": 400000, "net_per_hour": 1, "disk_per_hour": 2},
    {"uid": 10063, "name": "com.instagram.android", "weight": 15, "cpu": 0.3, "big": 0.3,
     "fg_net_per_min": 6, "bytes": 600000, "alarms_per_hour": 1, "net_per_hour": 2, "disk_per_hour": 2},
    {"uid": 10064, "name": "com.spotify.music", "weight": 8, "cpu": 0.1, "big": 0.05, "fg_net_per_min": 1,
     "bytes": 900000, "wakelocks_per_hour": 0.5, "wakelock": "15m", "net_per_hour": 3, "audio": True},
    {"uid": 10065, "name": "com.google.android.apps.maps", "weight": 7, "cpu": 0.25, "big": 0.3,
     "fg_net_per_min": 2, "bytes": 150000, "gps": True, "wakelocks_per_hour": 0.2, "wakelock": "2m"},
    {"uid": 10066, "name": "com.google.android.gm", "weight": 8, "cpu": 0.1, "big": 0.1, "fg_net_per_min": 1,
     "bytes": 30000, "alarms_per_hour": 4, "wakelocks_per_hour": 3, "wakelock": "5s", "net_per_hour": 6},
    {"uid": 10067, "name": "com.android.camera", "weight": 3, "cpu": 0.4, "big": 0.5, "camera": True,
     "disk_per_hour": 30},
    {"uid": 1000, "name": "android", "weight": 0, "alarms_per_hour": 12, "wakelocks_per_hour": 6,
     "wakelock": "2s", "net_per_hour": 4, "bytes": 5000, "disk_per_hour": 6},
)
APP_KEYS = ("uid", "name", "weight", "cpu", "big", "fg_net_per_min", "bytes", "alarms_per_hour",
            "wakelocks_per_hour", "wakelock", "net_per_hour", "disk_per_hour", "gps", "camera", "audio")

TRUTH_FIELDS = ("foreground_ns", "cpu_ns", "rx_bytes", "tx_bytes", "wakelock_ns", "energy_uj",
                "wakeups", "sessions", "disk_read_bytes", "disk_write_bytes")


class App:
    """One generated app's behaviour (see DEFAULT_APPS)."""

    def __init__(self, row):
        if isinstance(row, (list, tuple)):  # the older row form: uid, name, weight, alarms/h, wakelocks/h,
            row = dict(zip(("uid", "name", "weight", "alarms_per_hour", "wakelocks_per_hour", "wakelock",
                            "net_per_hour", "bytes"), row))  # wakelock mean, bursts/h, bytes
        if not isinstance(row, dict):
            raise ValueError("usage.apps: each app must be an object")
        for key in row:
            if key not in APP_KEYS:
                raise ValueError("usage.apps: unknown field %r (known: %s)" % (key, ", ".join(APP_KEYS)))
        self.uid = int(row["uid"])
        if not 0 <= self.uid <= 0xFFFFFFFF:
            raise ValueError("usage.apps: uid %d is not a u32" % self.uid)
        self.name = str(row.get("name", "uid %d" % self.uid))
        self.weight = int(row.get("weight", 1))
        self.cpu = float(row.get("cpu", 0.1))
        self.big = float(row.get("big", 0.2))
        self.fg_net = float(row.get("fg_net_per_min", 0))
        self.bytes = int(row.get("bytes", 10000))
        self.alarms = float(row.get("alarms_per_hour", 0))
        self.locks = float(row.get("wakelocks_per_hour", 0))
        self.lock_mean = parse_duration(row.get("wakelock", "10s"))
        self.nets = float(row.get("net_per_hour", 0))
        self.disks = float(row.get("disk_per_hour", 0))
        self.gps = bool(row.get("gps", False))
        self.camera = bool(row.get("camera", False))
        self.audio = bool(row.get("audio", False))
        if self.weight < 0 or not 0.0 <= self.cpu <= 8.0 or not 0.0 <= self.big <= 1.0:
            raise ValueError("usage.apps %s: weight must be >= 0, cpu in [0, 8], big in [0, 1]" % self.name)


class AndroidUsage:
    """Generates app_usage events lazily in time order: ``events(end_ns)`` yields (t_ns, fields).

    ``names`` maps uid -> package name; every event carries its app's name as ``app`` (host-side,
    not part of the eBPF context).
    """

    def __init__(self, seed, spec=None):
        spec = spec or {}
        self.rng = Rng(seed, "usage")
        self.mean_off_ns = parse_duration(spec.get("screen_off", "20m"))
        self.mean_on_ns = parse_duration(spec.get("screen_on", "2m"))
        self.mean_session_ns = parse_duration(spec.get("session", "60s"))
        night = spec.get("night", "0h-7h")
        try:
            a, b = str(night).split("-")
            self.night = (parse_duration(a) % NS_PER_DAY, parse_duration(b) % NS_PER_DAY)
        except ValueError:
            raise ValueError("usage.night must look like \"0h-7h\" (no screen use in that window)") from None
        self.apps = [App(row) for row in spec.get("apps", DEFAULT_APPS)]
        self.by_uid = {}
        for app in self.apps:
            if app.uid in self.by_uid:
                raise ValueError("usage.apps: uid %d twice" % app.uid)
            self.by_uid[app.uid] = app
        self.names = dict((a.uid, a.name) for a in self.apps)
        self.fg_apps = [a for a in self.apps if a.weight > 0]
        self.total_weight = sum(a.weight for a in self.fg_apps)
        if not self.fg_apps:
            raise ValueError("usage: at least one app needs a foreground weight > 0")
        self.truth = {}
        for app in self.apps:
            self.truth[app.uid] = dict((k, 0) for k in TRUTH_FIELDS)

    # ------------------------------------------------------------ draws

    def _pick(self, exclude):
        while True:
            r = self.rng.below(self.total_weight)
            for app in self.fg_apps:
                r -= app.weight
                if r < 0:
                    if app.uid != exclude or len(self.fg_apps) == 1:
                        return app
                    break

    def _gap(self, per_hour):
        return self.rng.expo_ns(int(3600e9 / per_hour)) + 1

    def _awake(self, t):
        """The first time at or after ``t`` outside the night window."""
        start, end = self.night
        if start == end:
            return t
        day = t - t % NS_PER_DAY
        tod = t % NS_PER_DAY
        inside = start <= tod < end if start < end else (tod >= start or tod < end)
        if not inside:
            return t
        wake = day + end if tod < end else day + NS_PER_DAY + end
        return wake + self.rng.expo_ns(30 * 60 * NS_PER_S)

    def _network(self, t):
        """Wi-Fi at home and at work, cellular on the way (8-9 h and 17-19 h)."""
        hour = (t % NS_PER_DAY) // NS_PER_H
        return NET_CELL if hour == 8 or 17 <= hour < 19 else NET_WIFI

    def _ev(self, app, kind, **fields):
        fields["kind"] = kind
        fields["uid"] = app.uid if app is not None else 0
        if app is not None:
            fields["app"] = app.name
        return fields

    # ------------------------------------------------------------ the stream

    def events(self, end_ns):
        """Yield (t_ns, fields) app_usage contexts in time order, up to end_ns (exclusive)."""
        heap = []
        seq = [0]

        def push(t, what, uid, extra=0):
            seq[0] += 1
            heapq.heappush(heap, (t, seq[0], what, uid, extra))

        push(self._awake(self.rng.expo_ns(self.mean_off_ns)), "screen_on", 0)
        for app in self.apps:
            if app.alarms > 0:
                push(self._gap(app.alarms), "alarm", app.uid)
            if app.locks > 0:
                push(self._gap(app.locks), "lock", app.uid)
            if app.nets > 0:
                push(self._gap(app.nets), "net", app.uid)
            if app.disks > 0:
                push(self._gap(app.disks), "disk", app.uid)
        for t, fields, delta in self._raw(heap, push, end_ns):
            yield t, fields
            for uid, key, amount in delta:
                self.truth[uid][key] += amount

    def _segment(self, t, app, since):
        """Events closing ``app``'s foreground stretch [since, t): its CPU on each cluster, GPS, camera."""
        length = t - since
        out = []
        busy = int(length * app.cpu)
        big = int(busy * app.big)
        for cluster, ns, step in ((0, busy - big, 4 + self.rng.below(8)), (1, big, 6 + self.rng.below(10))):
            if ns > 0:
                out.append((self._ev(app, CPU, cpu_time_ns=ns, arg=cluster << 8 | step), ((app.uid, "cpu_ns", ns),)))
        if app.gps and length > 0:
            out.append((self._ev(app, GPS, duration_ns=length), ()))
        if app.camera and length > 0:
            out.append((self._ev(app, CAMERA, duration_ns=length, arg=1 if self.rng.below(10) == 0 else 0), ()))
        return out

    def _burst(self, t, app, mean):
        rx = self.rng.between(mean // 2, mean + mean // 2)
        tx = rx // (4 + self.rng.below(12))
        return self._ev(app, NETWORK, rx_bytes=rx, tx_bytes=tx, arg=self._network(t)), \
            ((app.uid, "rx_bytes", rx), (app.uid, "tx_bytes", tx))

    def _raw(self, heap, push, end_ns):
        """(t, fields, truth changes) in time order; the caller applies the changes once delivered."""
        epoch = 0
        fg = None
        fg_since = 0
        by_uid = self.by_uid
        while heap:
            t, _s, what, uid, extra = heapq.heappop(heap)
            if t >= end_ns:
                return
            if what == "screen_on":
                epoch += 1
                fg = self._pick(None)
                fg_since = t
                push(t + self.rng.expo_ns(self.mean_on_ns) + 1, "screen_off", 0, epoch)
                push(t + self.rng.expo_ns(self.mean_session_ns) + 1, "switch", 0, epoch)
                push(t + self.rng.expo_ns(60 * NS_PER_S) + 1, "bright", 0, epoch)
                if fg.fg_net > 0:
                    push(t + self.rng.expo_ns(int(60e9 / fg.fg_net)) + 1, "fgnet", fg.uid, epoch)
                yield t, self._ev(None, SCREEN_ON, arg=1 + self.rng.below(3)), ()
                yield t, self._ev(fg, FOREGROUND), ((fg.uid, "sessions", 1),)
            elif what == "switch":
                if extra != epoch or fg is None:
                    continue
                for fields, delta in self._segment(t, fg, fg_since):
                    yield t, fields, delta
                closed = (fg.uid, "foreground_ns", t - fg_since)
                fg = self._pick(fg.uid)
                fg_since = t
                push(t + self.rng.expo_ns(self.mean_session_ns) + 1, "switch", 0, epoch)
                if fg.fg_net > 0:
                    push(t + self.rng.expo_ns(int(60e9 / fg.fg_net)) + 1, "fgnet", fg.uid, epoch)
                yield t, self._ev(fg, FOREGROUND), (closed, (fg.uid, "sessions", 1))
            elif what == "screen_off":
                epoch += 1
                push(self._awake(t + self.rng.expo_ns(self.mean_off_ns) + 1), "screen_on", 0)
                for fields, delta in self._segment(t, fg, fg_since):
                    yield t, fields, delta
                yield t, self._ev(None, SCREEN_OFF), ((fg.uid, "foreground_ns", t - fg_since),)
                fg = None
            elif what == "bright":
                if extra != epoch:
                    continue
                push(t + self.rng.expo_ns(60 * NS_PER_S) + 1, "bright", 0, epoch)
                yield t, self._ev(None, BRIGHTNESS, arg=self.rng.below(5)), ()
            elif what == "fgnet":
                if extra != epoch or fg is None or fg.uid != uid:
                    continue
                push(t + self.rng.expo_ns(int(60e9 / fg.fg_net)) + 1, "fgnet", uid, epoch)
                fields, delta = self._burst(t, fg, fg.bytes)
                yield t, fields, delta
            elif what == "alarm":
                app = by_uid[uid]
                cpu = self.rng.between(1000000, 50000000)
                push(t + self._gap(app.alarms), "alarm", uid)
                yield t, self._ev(app, WAKEUP, wakeups=1, cpu_time_ns=cpu), ((uid, "wakeups", 1), (uid, "cpu_ns", cpu))
            elif what == "lock":
                app = by_uid[uid]
                held = self.rng.expo_ns(app.lock_mean) + 1
                push(t + held, "unlock", uid, held)
                yield t, self._ev(app, ACQUIRE), ()
            elif what == "unlock":
                app = by_uid[uid]
                push(t + self._gap(app.locks), "lock", uid)
                cpu = extra // 20  # 5 % of a little core while the wakelock keeps the CPU up
                if app.audio:
                    yield t, self._ev(app, AUDIO, duration_ns=extra), ()
                if cpu:
                    yield t, self._ev(app, CPU, cpu_time_ns=cpu, arg=0), ((uid, "cpu_ns", cpu),)
                yield t, self._ev(app, WAKELOCK, duration_ns=extra), ((uid, "wakelock_ns", extra),)
            elif what == "net":
                app = by_uid[uid]
                push(t + self._gap(app.nets), "net", uid)
                fields, delta = self._burst(t, app, app.bytes)
                yield t, fields, delta
            elif what == "disk":
                app = by_uid[uid]
                push(t + self._gap(app.disks), "disk", uid)
                read = self.rng.between(4096, 2000000)
                written = self.rng.between(4096, 1000000)
                yield t, self._ev(app, DISK, rx_bytes=read, tx_bytes=written), \
                    ((uid, "disk_read_bytes", read), (uid, "disk_write_bytes", written))


def day_stats(events):
    """Screen-on time, sessions (screen-on periods) and foreground share per app of a list of
    (t_ns, fields): how a generated or replayed day compares with published usage."""
    on_ns = 0
    sessions = 0
    since = None
    fg_ns = {}
    fg = None
    fg_since = 0
    for t, f in events:
        kind = f["kind"]
        if kind == SCREEN_ON and since is None:
            since = t
            sessions += 1
        elif kind == SCREEN_OFF and since is not None:
            on_ns += t - since
            since = None
            if fg is not None:
                fg_ns[fg] = fg_ns.get(fg, 0) + t - fg_since
            fg = None
        elif kind == FOREGROUND:
            if fg is not None:
                fg_ns[fg] = fg_ns.get(fg, 0) + t - fg_since
            fg = f.get("app") or f["uid"]
            fg_since = t
    return {"screen_on_ns": on_ns, "sessions": sessions, "foreground_ns": fg_ns}
