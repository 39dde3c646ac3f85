"""The Linux monitor's attribution: one interval's usage per app (``AppUsage``, ``Interval``), CPU
energy split by the power model or scaled to a measurement (``Attribution``, a part of
``LinuxMonitor``), the ``app_usage`` hook events and the top-like text table.

Split from iotbpf.platforms.linux (which re-exports every name here); host-only (CPython).
"""

from iotbpf.platforms.linux_proc import IDLE_APP, SYSTEM_APP, USAGE_DISK, USAGE_SAMPLE, Snapshot


class AppUsage:
    """One app's usage and attributed energy over one interval (or accumulated totals)."""

    def __init__(self, app: str, app_id: int):
        self.app = app
        self.app_id = app_id
        self.pids = set()
        self.cpu_s = 0.0
        self.wakeups = 0
        self.read_bytes = 0
        self.write_bytes = 0
        self.io_known = False
        self.energy_j = 0.0
        self.model_energy_j = 0.0
        self.source = ""
        self.uid = None  # the real uid when apps are grouped by uid

    def to_dict(self, seconds=None) -> dict:
        out = {"app": self.app, "app_id": self.app_id, "processes": len(self.pids),
               "cpu_s": round(self.cpu_s, 6), "wakeups": self.wakeups,
               "read_bytes": self.read_bytes if self.io_known else None,
               "write_bytes": self.write_bytes if self.io_known else None,
               "energy_j": round(self.energy_j, 6), "model_energy_j": round(self.model_energy_j, 6),
               "source": self.source}
        if seconds:
            out["cpu_percent"] = round(100.0 * self.cpu_s / seconds, 3)
            out["power_w"] = round(self.energy_j / seconds, 6)
        return out


class Interval:
    """What happened between two snapshots: per-app usage and energy, CPU state, measurement."""

    def __init__(self, start: float, end: float):
        self.start = start
        self.end = end
        self.seconds = end - start
        self.apps = []  # AppUsage, highest energy first (buckets included)
        self.busy_s = 0.0
        self.cores = 0
        self.freq_residency = {}  # khz -> fraction of time (all policies weighted by CPUs)
        self.avg_freq_khz = None
        self.idle_residency = {}  # idle state name -> fraction of CPU time
        self.model = ""
        self.estimate_j = 0.0
        self.measured_j = None
        self.measured_source = None
        self.error_pct = None
        self.energy_source = ""
        self.monitor_cpu_s = 0.0
        self.notes = []

    def app(self, name: str) -> "AppUsage | None":
        for usage in self.apps:
            if usage.app == name:
                return usage
        return None

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "seconds": round(self.seconds, 6),
                "cores": self.cores, "busy_s": round(self.busy_s, 6),
                "freq_residency": dict((str(k), round(v, 4)) for k, v in sorted(self.freq_residency.items())),
                "avg_freq_khz": self.avg_freq_khz,
                "idle_residency": dict((k, round(v, 4)) for k, v in sorted(self.idle_residency.items())),
                "model": self.model, "energy_source": self.energy_source,
                "estimate_j": round(self.estimate_j, 6),
                "measured_j": None if self.measured_j is None else round(self.measured_j, 6),
                "measured_source": self.measured_source, "error_pct": self.error_pct,
                "monitor_cpu_s": round(self.monitor_cpu_s, 6),
                "monitor_cpu_percent": round(100.0 * self.monitor_cpu_s / self.seconds, 4)
                if self.seconds > 0 else None,
                "apps": [a.to_dict(self.seconds) for a in self.apps], "notes": list(self.notes)}


class Attribution:
    """From two Snapshots to an Interval, and the running totals (a part of ``LinuxMonitor``: it uses
    its ``hz``, ``cpu_model``, ``group_by``, ``app_id`` and ``power_sources``)."""

    def _interval(self, prev: Snapshot, snap: Snapshot) -> Interval:
        hz = float(self.hz)
        iv = Interval(prev.when, snap.when)
        iv.cores = snap.cores or prev.cores or 1
        apps = {}
        io_unknown = 0
        for pid, proc in snap.processes.items():
            old = prev.processes.get(pid)
            if old is not None and old.starttime == proc.starttime:
                d_cpu = proc.cpu_ticks - old.cpu_ticks
                d_wake = proc.wakeups - old.wakeups
                d_read = None if proc.read_bytes is None or old.read_bytes is None \
                    else proc.read_bytes - old.read_bytes
                d_write = None if proc.write_bytes is None or old.write_bytes is None \
                    else proc.write_bytes - old.write_bytes
            elif prev.uptime_ticks is None or proc.starttime >= prev.uptime_ticks - 1:
                # Started since the previous snapshot: everything it did happened in this interval.
                d_cpu, d_wake = proc.cpu_ticks, proc.wakeups
                d_read, d_write = proc.read_bytes, proc.write_bytes
            else:
                continue  # older than the previous snapshot but unseen then: no baseline yet
            usage = apps.get(proc.key)
            if usage is None:
                usage = apps[proc.key] = AppUsage(proc.key, self.app_id(proc.key))
                if self.group_by == "uid":
                    usage.uid = proc.uid
            usage.pids.add(pid)
            usage.cpu_s += max(0, d_cpu) / hz
            usage.wakeups += max(0, d_wake)
            if d_read is None:
                io_unknown += 1
            else:
                usage.io_known = True
                usage.read_bytes += max(0, d_read)
                usage.write_bytes += max(0, d_write or 0)
        if io_unknown:
            iv.notes.append("I/O bytes unreadable for %d processes (needs root or the same uid)" % io_unknown)
        process_busy = sum(u.cpu_s for u in apps.values())
        if snap.cpu_busy_ticks is not None and prev.cpu_busy_ticks is not None:
            iv.busy_s = (snap.cpu_busy_ticks - prev.cpu_busy_ticks) / hz
        else:
            iv.busy_s = process_busy
        self._frequency(prev, snap, iv)
        self._idle(prev, snap, iv)
        # CPU model: every busy core-second costs the active power at the interval's frequency,
        # the idle baseline is the CPU's power with all cores idle.
        model = self.cpu_model
        active_w = model.active_w_at(iv.avg_freq_khz)
        iv.model = model.name + (" at %d kHz" % iv.avg_freq_khz if iv.avg_freq_khz and model.freq_points
                                 else "")
        for usage in apps.values():
            usage.model_energy_j = usage.cpu_s * active_w
        system = AppUsage(SYSTEM_APP, self.app_id(SYSTEM_APP))
        system.cpu_s = max(0.0, iv.busy_s - process_busy)
        system.model_energy_j = system.cpu_s * active_w
        idle = AppUsage(IDLE_APP, self.app_id(IDLE_APP))
        idle.model_energy_j = model.idle_w * iv.seconds
        everything = list(apps.values()) + [system, idle]
        iv.estimate_j = sum(u.model_energy_j for u in everything)
        self._measure(prev, snap, iv)
        if iv.measured_j is not None and iv.estimate_j > 0:
            scale = iv.measured_j / iv.estimate_j
            iv.energy_source = "measured %s, split by model %s" % (iv.measured_source, model.name)
            iv.error_pct = round(100.0 * (iv.estimate_j - iv.measured_j) / iv.measured_j, 3) \
                if iv.measured_j > 0 else None
        else:
            scale = 1.0
            iv.energy_source = "model %s" % model.name
        for usage in everything:
            usage.energy_j = usage.model_energy_j * scale
            usage.source = iv.energy_source
        iv.apps = sorted(everything, key=lambda u: (-u.energy_j, -u.cpu_s, u.app))
        return iv

    def _frequency(self, prev: Snapshot, snap: Snapshot, iv: Interval) -> None:
        weights = {}
        for policy, table in snap.freq.items():
            old = prev.freq.get(policy, {})
            cpus = snap.freq_cpus.get(policy, 1)
            for khz, ticks in table.items():
                if ticks is None:  # only the current frequency is known
                    weights[khz] = weights.get(khz, 0) + cpus
                    continue
                delta = ticks - old.get(khz, ticks)
                if delta > 0:
                    weights[khz] = weights.get(khz, 0) + delta * cpus
        total = float(sum(weights.values()))
        if total > 0:
            iv.freq_residency = dict((k, w / total) for k, w in weights.items())
            iv.avg_freq_khz = int(round(sum(k * w for k, w in weights.items()) / total))

    def _idle(self, prev: Snapshot, snap: Snapshot, iv: Interval) -> None:
        cpu_us = iv.seconds * 1e6 * iv.cores
        if cpu_us <= 0:
            return
        for name, used in snap.idle.items():
            delta = used - prev.idle.get(name, used)
            if delta >= 0:
                iv.idle_residency[name] = min(1.0, delta / cpu_us)

    def _measure(self, prev: Snapshot, snap: Snapshot, iv: Interval) -> None:
        for source in self.power_sources:
            now = snap.power.get(source.name)
            before = prev.power.get(source.name)
            if now is None or before is None:
                continue
            if source.kind == "energy":
                iv.measured_j = max(0.0, now - before)
            else:  # two power readings: trapezoid over the interval
                iv.measured_j = (now + before) / 2.0 * iv.seconds
            iv.measured_source = source.name
            return

    def _accumulate(self, iv: Interval) -> None:
        self.intervals += 1
        self.total_seconds += iv.seconds
        for usage in iv.apps:
            total = self.totals.get(usage.app)
            if total is None:
                total = self.totals[usage.app] = AppUsage(usage.app, usage.app_id)
            total.pids |= usage.pids
            total.cpu_s += usage.cpu_s
            total.wakeups += usage.wakeups
            total.read_bytes += usage.read_bytes
            total.write_bytes += usage.write_bytes
            total.io_known = total.io_known or usage.io_known
            total.energy_j += usage.energy_j
            total.model_energy_j += usage.model_energy_j
            total.source = usage.source
        self.total_estimate_j += iv.estimate_j
        if iv.measured_j is not None:
            self.total_measured_j += iv.measured_j
            self.measured_seconds += iv.seconds


def app_usage_events(interval: Interval, now_ns: int = 0) -> list:
    """The interval as ``app_usage`` hook contexts, per active app: a sample (kind IOT_USAGE_SAMPLE)
    and, when it did storage I/O, a disk event (kind IOT_USAGE_DISK).

    Field names are the hook's (iotbpf.kernel.hooks): uid is the app's id (its real uid when
    grouping by uid), cpu_time_ns, wakeups, energy_uj, duration_ns (the interval); a disk event's
    rx_bytes/tx_bytes are the bytes read/written (app_monitor keeps them apart from network
    bytes); "app" carries the name for the host side.
    """
    events = []
    for usage in interval.apps:
        if usage.app == IDLE_APP:
            continue
        if usage.cpu_s <= 0 and usage.wakeups == 0 and usage.read_bytes == 0 and usage.write_bytes == 0:
            continue
        uid = usage.uid if usage.uid is not None else usage.app_id
        events.append({"app": usage.app, "uid": uid & 0xFFFFFFFF, "kind": USAGE_SAMPLE,
                       "now_ns": int(now_ns), "duration_ns": int(round(interval.seconds * 1e9)),
                       "cpu_time_ns": int(round(usage.cpu_s * 1e9)), "wakeups": int(usage.wakeups),
                       "energy_uj": int(round(usage.energy_j * 1e6))})
        if usage.read_bytes or usage.write_bytes:
            events.append({"app": usage.app, "uid": uid & 0xFFFFFFFF, "kind": USAGE_DISK, "now_ns": int(now_ns),
                           "rx_bytes": int(usage.read_bytes), "tx_bytes": int(usage.write_bytes)})
    return events


def _rate(value, seconds):
    return value / seconds if seconds > 0 else 0.0


def _human_bytes(value):
    for unit in ("B", "K", "M", "G"):
        if abs(value) < 1024 or unit == "G":
            return ("%.0f%s" if unit == "B" else "%.1f%s") % (value, unit)
        value /= 1024.0
    return "%.1fG" % value


def format_table(interval: Interval, monitor: Attribution, top: int = 20) -> str:
    """A top-like text table of one interval (``monitor``: the LinuxMonitor that sampled it): apps by
    energy, the monitor's own cost, notes."""
    secs = interval.seconds
    lines = ["iotbpf monitor  %.1f s interval  %d cores  busy %.1f%%  group by %s" % (
        secs, interval.cores, 100.0 * interval.busy_s / (secs * interval.cores) if secs else 0.0,
        monitor.group_by)]
    lines.append("energy: " + interval.energy_source)
    if interval.avg_freq_khz:
        lines.append("cpu frequency: %.0f MHz average" % (interval.avg_freq_khz / 1000.0))
    if interval.idle_residency:
        lines.append("idle states: " + ", ".join("%s %.0f%%" % (k, 100 * v)
                                                 for k, v in sorted(interval.idle_residency.items())))
    lines.append("")
    lines.append("%-28s %5s %7s %9s %9s %9s %9s %9s" % ("APP", "PROCS", "CPU%", "WAKEUP/s", "READ/s",
                                                        "WRITE/s", "POWER W", "ENERGY J"))
    rows = [u for u in interval.apps if u.app != IDLE_APP][:max(0, top - 1)] + \
        [u for u in interval.apps if u.app == IDLE_APP]  # the idle baseline last, as a footer
    for usage in rows:
        io = usage.io_known
        lines.append("%-28s %5d %7.1f %9.0f %9s %9s %9.3f %9.3f" % (
            usage.app[:28], len(usage.pids), 100.0 * _rate(usage.cpu_s, secs), _rate(usage.wakeups, secs),
            _human_bytes(_rate(usage.read_bytes, secs)) if io else "-",
            _human_bytes(_rate(usage.write_bytes, secs)) if io else "-",
            _rate(usage.energy_j, secs), usage.energy_j))
    lines.append("")
    if interval.measured_j is not None:
        lines.append("model vs measurement: estimate %.3f J, measured %.3f J (%s), error %s%%" % (
            interval.estimate_j, interval.measured_j, interval.measured_source,
            "-" if interval.error_pct is None else "%+.1f" % interval.error_pct))
    else:
        lines.append("model estimate %.3f J (no measurement)" % interval.estimate_j)
    overhead = monitor.overhead()
    whole = overhead["process_percent_of_one_core"]
    lines.append("monitor itself: %.2f ms per sample, %.3f%% of one core at 1 s sampling; whole process %s" % (
        overhead["cpu_s_per_sample"] * 1000.0, overhead["percent_at_1s_sampling"],
        "-" if whole is None else "%.2f%% of one core" % whole))
    for note in monitor.notes + interval.notes:
        lines.append("note: " + note)
    return "\n".join(lines) + "\n"
