"""A phone driven by app usage (screen, CPU clusters, wakelocks, radios with tails, GPS, camera, audio),
charged to the energy ledger and attributed per app by BatteryStats' rules, with currents from a
power_profile.xml. The rules and guarantees: docs/platforms.md ("Phones: per-app energy from usage").
"""

from iotbpf.energy import android_profile
from iotbpf.energy.models import parse_model

# app_usage kinds and NETWORK args: the values of kernel.hooks' IOT_USAGE_* constants (energy/ sits
# below kernel/ and cannot import it; a test checks they agree).
SCREEN_ON = 1
SCREEN_OFF = 2
FOREGROUND = 3
WAKEUP = 4
WAKELOCK = 5
NETWORK = 6
SAMPLE = 7
CPU = 8
BRIGHTNESS = 9
ACQUIRE = 10
GPS = 11
CAMERA = 12
AUDIO = 13
NET_WIFI = 0
NET_CELL = 1

NS_PER_S = 1000000000
DEFAULT_BRIGHTNESS = 2

# Link rates and tails of the radios (host-independent defaults; a board's radio params win for Wi-Fi).
WIFI_BPS = 65000000
WIFI_TAIL_NS = 200000000
CELL_BPS = 12740000
CELL_TAIL_NS = 11576000000
RADIO_SOURCES = {
    "wifi": "IEEE 802.11-2016 HT20 MCS7 65 Mbit/s; Wi-Fi tail ~0.2 s (Huang et al., 'A Close "
            "Examination of Performance and Power Characteristics of 4G LTE Networks', MobiSys 2012)",
    "cell": "LTE median downlink 12.74 Mbit/s and tail 11.576 s (Huang et al., MobiSys 2012, 4GTest "
            "measurements and Table 3)",
}

# Roles the phone drives -> the ledger component that plays it (board names first).
ROLES = (("cpu", ("cpu",)), ("screen", ("screen",)), ("wifi", ("radio", "wifi")), ("cell", ("cell",)),
         ("gps", ("gps",)), ("camera", ("camera",)), ("audio", ("audio",)))


class Phone:
    """The usage-driven energy model of one phone on a Scheduler's ledger and attribution."""

    def __init__(self, profile, ledger, attr, now_ns=0, names=None, wifi=None):
        self.profile = profile
        self.ledger = ledger
        self.attr = attr
        self.names = dict(names or {})  # uid -> app name
        models = android_profile.phone_models(profile, "phone")
        self.comp = {}
        for role, candidates in ROLES:
            found = None
            for name in candidates:
                if name in ledger.models:
                    found = name
                    break
            if found is None:
                found = role
                ledger.add_component(found, parse_model(models[role], "power_profile#" + role), now_ns)
            self.comp[role] = found
        self._check_states()
        wifi = wifi or {}
        self.wifi_bps = int(wifi.get("bitrate_bps") or WIFI_BPS)
        tail_ms = wifi.get("tail_ms")
        self.wifi_tail_ns = WIFI_TAIL_NS if tail_ms is None else int(tail_ms * 1000000)
        self.t = now_ns
        self.screen_on = False
        self.level = DEFAULT_BRIGHTNESS
        self.fg = None
        self.holders = {}  # uid -> wakelocks held
        self.periods = {NET_WIFI: None, NET_CELL: None}  # [start, end, {app: bytes}]
        self.counts = {}

    def _check_states(self):
        needed = [("cpu", "idle"), ("screen", "bright0"), ("wifi", "active"), ("cell", "active"),
                  ("gps", "on"), ("camera", "on"), ("audio", "on")]
        for role, state in needed:
            comp = self.comp[role]
            if state not in self.ledger.models[comp].states:
                raise ValueError("phone: component %s has no state %r: the board's %s model must come "
                                 "from a power_profile.xml (name.xml#%s)" % (comp, state, comp, role))

    def app(self, uid, fields=None):
        """The attribution key (app name) of ``uid``."""
        if fields is not None and fields.get("app"):
            self.names[uid] = str(fields["app"])
        name = self.names.get(uid)
        if name is None:
            name = self.names[uid] = "uid %d" % uid
        return name

    # ------------------------------------------------------------ time between events

    def settle(self, now_ns):
        """Charge the screen and the awake CPU from the last event up to ``now_ns``."""
        dt = now_ns - self.t
        if dt <= 0:
            return
        self.t = now_ns
        cpu = self.comp["cpu"]
        if self.screen_on:
            screen = self.comp["screen"]
            state = "bright%d" % self.level
            self.ledger.add(screen, state, dt)
            if self.fg is not None:
                self.attr.charge(self.app(self.fg), screen, state, dt)
            self.ledger.add(cpu, "idle", dt)
        elif self.holders:
            self.ledger.add(cpu, "idle", dt)
            self.attr.split([self.app(uid) for uid in sorted(self.holders)], cpu, "idle", dt)

    # ------------------------------------------------------------ events

    def on_usage(self, now_ns, fields):
        """One app_usage context (a dict of its fields) at ``now_ns``."""
        self.settle(now_ns)
        kind = fields.get("kind", 0)
        uid = fields.get("uid", 0)
        arg = fields.get("arg", 0)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind == SCREEN_ON:
            if 0 <= arg < android_profile.BRIGHTNESS_BINS:
                self.level = arg
            self.screen_on = True
        elif kind == SCREEN_OFF:
            self.screen_on = False
        elif kind == BRIGHTNESS:
            if 0 <= arg < android_profile.BRIGHTNESS_BINS:
                self.level = arg
        elif kind == FOREGROUND:
            self.fg = uid
            self.app(uid, fields)
        elif kind == ACQUIRE:
            self.holders[uid] = self.holders.get(uid, 0) + 1
            self.app(uid, fields)
        elif kind == WAKELOCK:
            held = self.holders.get(uid, 0)
            if held > 1:
                self.holders[uid] = held - 1
            elif held == 1:
                del self.holders[uid]
            elif fields.get("duration_ns", 0) > 0:  # a trace with releases only: charge it whole
                ns = fields["duration_ns"]
                self.ledger.add(self.comp["cpu"], "idle", ns)
                self.attr.charge(self.app(uid, fields), self.comp["cpu"], "idle", ns)
        elif kind == CPU:
            self._cpu(uid, fields, arg >> 8, arg & 0xFF)
        elif kind in (WAKEUP, SAMPLE):
            self._cpu(uid, fields, 0, 0)
        elif kind == NETWORK:
            self._network(now_ns, uid, fields, NET_CELL if arg == NET_CELL else NET_WIFI)
        elif kind == GPS:
            self._use(uid, fields, "gps", "on")
        elif kind == CAMERA:
            self._use(uid, fields, "camera", "flashlight" if arg == 1 else "on")
        elif kind == AUDIO:
            self._use(uid, fields, "audio", "video" if arg == 1 else "on")

    def _cpu(self, uid, fields, cluster, step):
        ns = fields.get("cpu_time_ns", 0)
        clusters = self.profile["clusters"]
        if ns <= 0 or not clusters:
            return
        cluster = min(cluster, len(clusters) - 1)
        speeds = clusters[cluster]["speeds_khz"]
        if not speeds:
            return
        state = android_profile.cluster_state(cluster, speeds[min(step, len(speeds) - 1)])
        self.ledger.add(self.comp["cpu"], state, ns)
        self.attr.charge(self.app(uid, fields), self.comp["cpu"], state, ns)

    def _use(self, uid, fields, role, state):
        ns = fields.get("duration_ns", 0)
        if ns > 0:
            self.ledger.add(self.comp[role], state, ns)
            self.attr.charge(self.app(uid, fields), self.comp[role], state, ns)

    def _network(self, now_ns, uid, fields, net):
        nbytes = fields.get("rx_bytes", 0) + fields.get("tx_bytes", 0)
        if nbytes <= 0:
            return
        bps, tail = (self.wifi_bps, self.wifi_tail_ns) if net == NET_WIFI else (CELL_BPS, CELL_TAIL_NS)
        end = now_ns + nbytes * 8 * NS_PER_S // bps + 1 + tail
        period = self.periods[net]
        if period is not None and now_ns > period[1]:
            self._close(net, period[1])
            period = None
        if period is None:
            period = self.periods[net] = [now_ns, end, {}]
        elif end > period[1]:
            period[1] = end
        name = self.app(uid, fields)
        period[2][name] = period[2].get(name, 0) + nbytes

    def _close(self, net, until_ns):
        """Charge an active period (up to ``until_ns``) and split it by the bytes each app moved."""
        start, end, by_app = self.periods[net]
        self.periods[net] = None
        ns = min(end, until_ns) - start
        if ns <= 0:
            return
        comp = self.comp["wifi" if net == NET_WIFI else "cell"]
        self.ledger.add(comp, "active", ns)
        self.attr.split_weighted(sorted(by_app.items()), comp, "active", ns)

    def finish(self, now_ns):
        """Settle everything open at ``now_ns`` (the end of the run)."""
        self.settle(now_ns)
        for net in (NET_WIFI, NET_CELL):
            if self.periods[net] is not None:
                self._close(net, now_ns)
