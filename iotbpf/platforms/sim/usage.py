"""An Android-like app-usage generator: screen on/off cycles, foreground switches between apps,
background alarms (wakeups), wakelocks and network bursts, all from one seed.

It also keeps the ground truth of what it generated (per uid), so tests can check that a program
counting these events gets exactly the same numbers. An event counts in the truth once the
consumer has taken it and asked for the next one (an event still pending in a queue when a run
stops was never delivered). It must never depend on wall-clock time.
"""

import heapq

from iotbpf.kernel.clock import parse_duration
from iotbpf.kernel.hooks import constant
from iotbpf.kernel.prng import Rng

SCREEN_ON = constant("IOT_USAGE_SCREEN_ON")
SCREEN_OFF = constant("IOT_USAGE_SCREEN_OFF")
FOREGROUND = constant("IOT_USAGE_FOREGROUND")
WAKEUP = constant("IOT_USAGE_WAKEUP")
WAKELOCK = constant("IOT_USAGE_WAKELOCK")
NETWORK = constant("IOT_USAGE_NETWORK")

# uid, name, foreground weight, alarms/h, wakelocks/h, mean wakelock, network bursts/h, mean burst bytes
DEFAULT_APPS = (
    (10001, "messaging", 30, 4, 2, "20s", 6, 20000),
    (10002, "browser", 25, 0, 0, "0s", 2, 400000),
    (10003, "maps", 10, 1, 1, "2m", 2, 150000),
    (10004, "music", 15, 0, 1, "10m", 3, 900000),
    (10005, "email", 10, 6, 3, "5s", 6, 30000),
    (1000, "system", 0, 12, 6, "2s", 4, 5000),
)

TRUTH_FIELDS = ("foreground_ns", "cpu_ns", "rx_bytes", "tx_bytes", "wakelock_ns", "energy_uj",
                "wakeups", "sessions")


class AndroidUsage:
    """Generates app_usage events lazily in time order: ``events(end_ns)`` yields (t_ns, fields)."""

    def __init__(self, seed, spec=None):
        spec = spec or {}
        self.rng = Rng(seed, "usage")
        self.mean_off_ns = parse_duration(spec.get("screen_off", "40m"))
        self.mean_on_ns = parse_duration(spec.get("screen_on", "4m"))
        self.mean_session_ns = parse_duration(spec.get("session", "90s"))
        self.apps = []
        for row in spec.get("apps", DEFAULT_APPS):
            if isinstance(row, dict):
                row = (row["uid"], row.get("name", str(row["uid"])), row.get("weight", 1),
                       row.get("alarms_per_hour", 0), row.get("wakelocks_per_hour", 0),
                       row.get("wakelock", "10s"), row.get("net_per_hour", 0), row.get("bytes", 10000))
            uid, name, weight, alarms, locks, lock_mean, nets, nbytes = row
            self.apps.append((int(uid), name, int(weight), float(alarms), float(locks),
                              parse_duration(lock_mean), float(nets), int(nbytes)))
        self.fg_apps = [a for a in self.apps if a[2] > 0]
        self.total_weight = sum(a[2] for a in self.fg_apps)
        if not self.fg_apps:
            raise ValueError("usage: at least one app needs a foreground weight > 0")
        self.truth = {}
        for app in self.apps:
            self.truth[app[0]] = dict((k, 0) for k in TRUTH_FIELDS)
        self.counts = {}

    def _pick(self, exclude):
        while True:
            r = self.rng.below(self.total_weight)
            for app in self.fg_apps:
                r -= app[2]
                if r < 0:
                    if app[0] != exclude or len(self.fg_apps) == 1:
                        return app[0]
                    break

    def _gap(self, per_hour):
        return self.rng.expo_ns(int(3600e9 / per_hour)) + 1

    def events(self, end_ns):
        """Yield (t_ns, fields) app_usage contexts in time order, up to end_ns (exclusive)."""
        heap = []
        seq = [0]

        def push(t, what, uid, extra=0):
            seq[0] += 1
            heapq.heappush(heap, (t, seq[0], what, uid, extra))

        push(self.rng.expo_ns(self.mean_off_ns), "screen_on", 0)
        for app in self.apps:
            uid = app[0]
            if app[3] > 0:
                push(self._gap(app[3]), "alarm", uid)
            if app[4] > 0:
                push(self._gap(app[4]), "lock", uid)
            if app[6] > 0:
                push(self._gap(app[6]), "net", uid)
        by_uid = {}
        for app in self.apps:
            by_uid[app[0]] = app
        for t, fields, delta in self._raw(heap, push, by_uid, end_ns):
            yield t, fields
            for uid, key, amount in delta:
                self.truth[uid][key] += amount

    def _raw(self, heap, push, by_uid, end_ns):
        """(t, fields, truth changes) in time order; the caller applies the changes once delivered."""
        epoch = 0
        fg_uid = None
        fg_since = 0
        while heap:
            t, _s, what, uid, extra = heapq.heappop(heap)
            if t >= end_ns:
                return
            if what == "screen_on":
                epoch += 1
                fg_uid = self._pick(None)
                fg_since = t
                push(t + self.rng.expo_ns(self.mean_on_ns) + 1, "screen_off", 0, epoch)
                push(t + self.rng.expo_ns(self.mean_session_ns) + 1, "switch", 0, epoch)
                yield t, {"kind": SCREEN_ON, "uid": 0}, ()
                yield t, {"kind": FOREGROUND, "uid": fg_uid}, ((fg_uid, "sessions", 1),)
            elif what == "switch":
                if extra != epoch or fg_uid is None:
                    continue
                closed = (fg_uid, "foreground_ns", t - fg_since)
                fg_uid = self._pick(fg_uid)
                fg_since = t
                push(t + self.rng.expo_ns(self.mean_session_ns) + 1, "switch", 0, epoch)
                yield t, {"kind": FOREGROUND, "uid": fg_uid}, (closed, (fg_uid, "sessions", 1))
            elif what == "screen_off":
                epoch += 1
                push(t + self.rng.expo_ns(self.mean_off_ns) + 1, "screen_on", 0)
                yield t, {"kind": SCREEN_OFF, "uid": 0}, ((fg_uid, "foreground_ns", t - fg_since),)
            elif what == "alarm":
                cpu = self.rng.between(1000000, 50000000)
                push(t + self._gap(by_uid[uid][3]), "alarm", uid)
                yield t, {"kind": WAKEUP, "uid": uid, "wakeups": 1, "cpu_time_ns": cpu}, \
                    ((uid, "wakeups", 1), (uid, "cpu_ns", cpu))
            elif what == "lock":
                held = self.rng.expo_ns(by_uid[uid][5]) + 1
                push(t + held, "unlock", uid, held)
            elif what == "unlock":
                push(t + self._gap(by_uid[uid][4]), "lock", uid)
                yield t, {"kind": WAKELOCK, "uid": uid, "duration_ns": extra}, ((uid, "wakelock_ns", extra),)
            elif what == "net":
                mean = by_uid[uid][7]
                rx = self.rng.between(mean // 2, mean + mean // 2)
                tx = rx // (4 + self.rng.below(12))
                push(t + self._gap(by_uid[uid][6]), "net", uid)
                yield t, {"kind": NETWORK, "uid": uid, "rx_bytes": rx, "tx_bytes": tx}, \
                    ((uid, "rx_bytes", rx), (uid, "tx_bytes", tx))
