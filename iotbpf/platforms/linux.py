"""Linux per-app usage and energy monitor: samples /proc and sysfs, groups processes into apps.

Reads per-process CPU time, context switches (as wakeups) and I/O bytes, CPU frequency
residency and idle states, and measured power (battery power_supply, RAPL powercap, or any
given meter such as an INA219), then attributes CPU energy per app with a CPU power model, or
scales the model's shares to the measured total, labelling every number with its source.
Host-only (CPython). It must never crash on a missing or unreadable file: it notes and goes on,
and it must never import the report layer (the CLI wires monitor, MQTT and plots together).
"""

import os
import pwd
import time

from iotbpf.ebpf.errors import IotbpfError

# The monitor is split by concern; every name stays importable from here.
from iotbpf.platforms.linux_attribution import (  # noqa: F401
    AppUsage,
    Attribution,
    Interval,
    _human_bytes,
    _rate,
    app_usage_events,
    format_table,
)
from iotbpf.platforms.linux_power import (  # noqa: F401
    BatterySource,
    CpuModel,
    HardwareReader,
    RaplSource,
    cpu_model_for_board,
    find_power_sources,
)
from iotbpf.platforms.linux_proc import (  # noqa: F401
    GROUP_BY,
    IDLE_APP,
    KERNEL_APP,
    PF_KTHREAD,
    SYSTEM_APP,
    USAGE_DISK,
    USAGE_SAMPLE,
    ProcessSample,
    Snapshot,
    _field,
    _read,
    _read_int,
    _read_text,
    _switches,
)

# ------------------------------------------------------------------ the monitor


class LinuxMonitor(HardwareReader, Attribution):
    """Samples a Linux system and attributes CPU energy per app.

    ``proc_root``/``sys_root`` let tests point it at a fake tree. ``power_sources`` None means
    auto-detect (RAPL, batteries); extra meters (e.g. an INA219 from platforms.rpi) are objects
    with ``name``, ``kind`` ("energy": cumulative joules, or "power": watts) and ``read()``.
    Call ``sample()`` every interval: the first call records a baseline and returns None,
    later calls return an ``Interval``.
    """

    def __init__(self, cpu_model: CpuModel, group_by: str = "exe", proc_root: str = "/proc",
                 sys_root: str = "/sys", power_sources=None, clock=time.monotonic,
                 thread_wakeups: bool = True):
        if group_by not in GROUP_BY:
            raise IotbpfError("unknown --group-by %r (choose from %s)" % (group_by, ", ".join(GROUP_BY)))
        self.cpu_model = cpu_model
        self.group_by = group_by
        self.proc_root = proc_root.rstrip("/") or "/"
        self.sys_root = sys_root.rstrip("/") or "/"
        self.clock = clock
        self.thread_wakeups = thread_wakeups
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.notes = []  # standing notes about what could not be read
        self._note_set = set()
        if power_sources is None:
            power_sources, notes = find_power_sources(self.sys_root)
            for note in notes:
                self.note(note)
        self.power_sources = list(power_sources)
        if not self.power_sources:
            self.note("no measured power source: energy is the model's estimate")
        self._key_cache = {}
        self._app_ids = {}
        self._user_names = {}
        self._prev = None
        self.samples = 0
        self.monitor_cpu_s = 0.0
        self._process_first = None
        self._process_last = None
        self.totals = {}  # app -> AppUsage accumulated over all intervals
        self.total_estimate_j = 0.0
        self.total_measured_j = 0.0
        self.total_seconds = 0.0
        self.measured_seconds = 0.0
        self.intervals = 0

    @property
    def last(self) -> "Snapshot | None":
        """The most recent Snapshot (``.processes``: pid -> ProcessSample), or None before sampling."""
        return self._prev

    def process_cpu_s(self, pid: int) -> float | None:
        """CPU seconds (user + system, all threads) of ``pid`` since it started, as of the last sample."""
        proc = self._prev.processes.get(pid) if self._prev is not None else None
        return None if proc is None else proc.cpu_ticks / float(self.hz)

    def note(self, text: str) -> None:
        """Record a standing note once (a missing file, a permission problem)."""
        if text not in self._note_set:
            self._note_set.add(text)
            self.notes.append(text)

    def app_id(self, app: str) -> int:
        """A small stable integer id per app name, in order of first appearance (1, 2, ...)."""
        if app not in self._app_ids:
            self._app_ids[app] = len(self._app_ids) + 1
        return self._app_ids[app]

    # -------------------------------------------------- reading

    def snapshot(self) -> Snapshot:
        """Read everything once; never raises for a missing or vanished file."""
        snap = Snapshot(self.clock())
        uptime = _read_text(self.proc_root + "/uptime")
        if uptime:
            try:
                snap.uptime_ticks = int(float(uptime.split()[0]) * self.hz)
            except ValueError:
                pass
        self._read_proc_stat(snap)
        try:
            entries = os.listdir(self.proc_root)
        except OSError as exc:
            raise IotbpfError("cannot list %s: %s" % (self.proc_root, exc.strerror)) from exc
        for entry in entries:
            if entry.isdigit():
                proc = self._read_process(int(entry))
                if proc is not None:
                    snap.processes[proc.pid] = proc
        # forget the group keys of processes that are gone (pids are reused, the cache must not grow)
        if len(self._key_cache) > len(snap.processes):
            live = set((p.pid, p.starttime) for p in snap.processes.values())
            self._key_cache = dict((k, v) for k, v in self._key_cache.items() if k in live)
        self._read_hardware(snap)
        return snap

    def _read_proc_stat(self, snap: Snapshot) -> None:
        data = _read(self.proc_root + "/stat")
        if data is None:
            self.note("%s/stat unreadable: busy time is the sum of processes" % self.proc_root)
            return
        cores = 0
        for line in data.split(b"\n"):
            if line.startswith(b"cpu "):
                try:
                    fields = [int(x) for x in line.split()[1:]]
                except ValueError:
                    self.note("%s/stat: malformed cpu line: busy time is the sum of processes" % self.proc_root)
                    continue
                fields += [0] * (8 - len(fields))
                user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
                snap.cpu_busy_ticks = user + nice + system + irq + softirq + steal
                snap.cpu_total_ticks = snap.cpu_busy_ticks + idle + iowait
            elif line.startswith(b"cpu"):
                cores += 1
        snap.cores = cores

    def _read_process(self, pid: int):
        base = "%s/%d" % (self.proc_root, pid)
        stat = _read(base + "/stat")
        if stat is None:
            return None
        close = stat.rfind(b")")
        if close < 0:
            return None
        comm = stat[stat.find(b"(") + 1:close].decode("utf-8", "replace")
        fields = stat[close + 2:].split()
        try:
            ppid = int(fields[1])
            flags = int(fields[6])
            cpu_ticks = int(fields[11]) + int(fields[12])
            starttime = int(fields[19])
        except (IndexError, ValueError):
            return None
        proc = ProcessSample(pid, starttime, comm, ppid, flags, cpu_ticks)
        status = _read(base + "/status")
        if status is not None:
            proc.uid = _field(status, b"\nUid:")
            proc.threads = _field(status, b"\nThreads:") or 1
            proc.wakeups = _switches(status)
        if proc.threads > 1 and self.thread_wakeups:
            proc.wakeups = self._thread_wakeups(base, pid, proc.wakeups)
        io = _read(base + "/io")
        if io is not None:
            proc.read_bytes = _field(io, b"\nread_bytes:")
            proc.write_bytes = _field(io, b"\nwrite_bytes:")
        proc.key = self._group_key(base, proc)
        return proc

    def _thread_wakeups(self, base: str, pid: int, leader: int) -> int:
        """Context switches of all threads (the process's status shows only its main thread)."""
        try:
            tids = os.listdir(base + "/task")
        except OSError:
            return leader
        total = 0
        for tid in tids:
            if tid == str(pid):
                total += leader
                continue
            status = _read(base + "/task/" + tid + "/status")
            if status is not None:
                total += _switches(status)
        return total

    def _group_key(self, base: str, proc: ProcessSample) -> str:
        cache_key = (proc.pid, proc.starttime)
        key = self._key_cache.get(cache_key)
        if key is not None:
            return key
        mode = self.group_by
        if mode == "uid":
            key = self._user_name(proc.uid)
        elif mode == "cgroup":
            key = self._cgroup(base)
        elif proc.flags & PF_KTHREAD or proc.pid == 2 or proc.ppid == 2:
            key = KERNEL_APP
        elif mode == "comm":
            key = proc.comm
        else:
            try:
                key = os.path.basename(os.readlink(base + "/exe"))
                if key.endswith(" (deleted)"):
                    key = key[:-len(" (deleted)")]
            except OSError:
                key = proc.comm  # other users' processes without root: the kernel's name for it
        if key is not None:
            self._key_cache[cache_key] = key
        return key

    def _user_name(self, uid) -> str:
        if uid is None:
            return "uid ?"
        name = self._user_names.get(uid)
        if name is None:
            try:
                name = "%s (uid %d)" % (pwd.getpwuid(uid).pw_name, uid)
            except KeyError:
                name = "uid %d" % uid
            self._user_names[uid] = name
        return name

    def _cgroup(self, base: str) -> str:
        text = _read_text(base + "/cgroup")
        if not text:
            return "cgroup ?"
        unified = None
        by_controller = None
        for line in text.splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            hid, controllers, path = parts
            if hid == "0" and controllers == "":
                unified = path
            elif by_controller is None and ("cpu" in controllers.split(",")
                                            or "cpuacct" in controllers.split(",")):
                by_controller = path
        if unified and unified != "/":
            return unified
        return by_controller or unified or "/"

    # -------------------------------------------------- attribution

    def sample(self) -> "Interval | None":
        """Take a snapshot; return the Interval since the previous one (None the first time)."""
        cpu0 = time.thread_time()
        snap = self.snapshot()
        interval = None
        if self._prev is not None:
            interval = self._interval(self._prev, snap)
        self._prev = snap
        self.samples += 1
        used = time.thread_time() - cpu0
        self.monitor_cpu_s += used
        # the whole monitoring process (its table, MQTT, the eBPF feed, meter threads) as well
        marks = (time.monotonic(), time.process_time())
        if self._process_first is None:
            self._process_first = marks
        self._process_last = marks
        if interval is not None:
            interval.monitor_cpu_s = used
            self._accumulate(interval)
        return interval

    # -------------------------------------------------- results

    def summary(self) -> dict:
        """Totals over all intervals: per app, model vs measurement, the monitor's own cost."""
        apps = sorted(self.totals.values(), key=lambda u: (-u.energy_j, -u.cpu_s, u.app))
        out = {"version": 1, "kind": "iotbpf-monitor", "group_by": self.group_by,
               "seconds": round(self.total_seconds, 6), "intervals": self.intervals,
               "model": self.cpu_model.to_dict(),
               "apps": [a.to_dict(self.total_seconds) for a in apps],
               "estimate_j": round(self.total_estimate_j, 6),
               "measured_j": round(self.total_measured_j, 6) if self.measured_seconds else None,
               "monitor": self.overhead(), "notes": list(self.notes)}
        if self.measured_seconds and self.total_measured_j > 0:
            out["error_pct"] = round(100.0 * (self.total_estimate_j - self.total_measured_j)
                                     / self.total_measured_j, 3)
        else:
            out["error_pct"] = None
        return out

    def overhead(self) -> dict:
        """The monitor's own CPU use: seconds per sample and percent of one core."""
        per_sample = self.monitor_cpu_s / self.samples if self.samples else 0.0
        percent = 100.0 * self.monitor_cpu_s / self.total_seconds if self.total_seconds > 0 else None
        process = None
        if self._process_first is not None and self._process_last[0] > self._process_first[0]:
            process = 100.0 * (self._process_last[1] - self._process_first[1]) / (
                self._process_last[0] - self._process_first[0])
        return {"samples": self.samples, "cpu_s": round(self.monitor_cpu_s, 6),
                "cpu_s_per_sample": round(per_sample, 6),
                "percent_of_one_core": None if percent is None else round(percent, 4),
                "percent_at_1s_sampling": round(100.0 * per_sample, 4),
                "process_percent_of_one_core": None if process is None else round(process, 4)}


def run_monitor(monitor: LinuxMonitor, interval_s: float, duration_s: float | None = None, on_interval=None,
                sleep=time.sleep, clock=time.monotonic) -> int:
    """Sample every ``interval_s`` until ``duration_s`` (None: until interrupted); returns intervals.

    Samples are taken on a fixed schedule (start + k x interval), so a slow sample does not
    drift the next one; ``on_interval(interval)`` runs after each.
    """
    if interval_s <= 0:
        raise IotbpfError("--interval must be positive")
    start = clock()
    monitor.sample()
    count = 0
    k = 0
    # --duration is time: stop when it has elapsed, however many samples that took (an interval
    # shorter than a sample's own cost must not stretch the run).
    while duration_s is None or (count * interval_s < duration_s - 1e-9 and clock() - start < duration_s):
        k += 1
        delay = start + k * interval_s - clock()
        if delay > 0:
            sleep(delay)
        interval = monitor.sample()
        count += 1
        if on_interval is not None and interval is not None:
            on_interval(interval)
    return count
