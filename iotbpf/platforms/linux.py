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

GROUP_BY = ("exe", "comm", "uid", "cgroup")

PF_KTHREAD = 0x00200000  # task flag of kernel threads (include/linux/sched.h)

USAGE_SAMPLE = 7  # IOT_USAGE_SAMPLE in iotbpf.kernel.hooks: a periodic per-app sample from a monitor
USAGE_DISK = 14  # IOT_USAGE_DISK: storage bytes read (rx_bytes) and written (tx_bytes)

# Bucket names for CPU energy that belongs to no sampled process.
SYSTEM_APP = "[system]"  # busy CPU time not seen in any process: kernel, IRQs, processes that exited
IDLE_APP = "[idle]"  # the CPU's idle (baseline) power over the interval
KERNEL_APP = "[kernel]"  # kernel threads when grouping by exe or comm


def _read(path):
    """The bytes of a small /proc or sysfs file, or None when it is missing or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 65536)  # a /proc or sysfs file comes whole in one read when it fits
        if len(data) < 65536:
            return data
        chunks = [data]
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_int(path):
    data = _read(path)
    if data is None:
        return None
    try:
        return int(data.strip())
    except ValueError:
        return None


def _field(data, key):
    """The first integer after ``key`` (b"\\nName:") in a /proc key-value file, or None."""
    if data.startswith(key[1:]):  # the file's first line
        start = len(key) - 1
    else:
        i = data.find(key)
        if i < 0:
            return None
        start = i + len(key)
    end = data.find(b"\n", start)
    words = data[start:end if end >= 0 else len(data)].split()
    try:
        return int(words[0])
    except (IndexError, ValueError):
        return None


def _switches(status):
    """Voluntary plus involuntary context switches from a /proc status file (0 when absent)."""
    return (_field(status, b"\nvoluntary_ctxt_switches:") or 0) + \
        (_field(status, b"\nnonvoluntary_ctxt_switches:") or 0)


def _read_text(path):
    data = _read(path)
    return None if data is None else data.decode("utf-8", "replace").strip()


# ------------------------------------------------------------------ power model


class CpuModel:
    """Power of a host CPU: watts per busy core (optionally by frequency) and the idle baseline.

    ``freq_points`` is a list of (kHz, watts per busy core); a frequency between two points is
    interpolated linearly. ``name`` says where the numbers come from (board and model file).
    """

    def __init__(self, name: str, idle_w: float, active_w: float, freq_points=None, cores: int = 0):
        if idle_w < 0 or active_w < 0:
            raise IotbpfError("CPU model %s: power must not be negative" % name)
        self.name = name
        self.idle_w = float(idle_w)
        self.active_w = float(active_w)
        self.freq_points = sorted((int(k), float(w)) for k, w in (freq_points or ()))
        self.cores = cores

    def active_w_at(self, khz=None) -> float:
        """Watts of one busy core at ``khz`` (the nominal figure when unknown or no table)."""
        points = self.freq_points
        if khz is None or not points:
            return self.active_w
        if khz <= points[0][0]:
            return points[0][1]
        for (k0, w0), (k1, w1) in zip(points, points[1:]):
            if khz <= k1:
                return w0 + (w1 - w0) * (khz - k0) / float(k1 - k0)
        return points[-1][1]

    def to_dict(self) -> dict:
        return {"name": self.name, "idle_w": self.idle_w, "active_w_per_core": self.active_w,
                "freq_points": [list(p) for p in self.freq_points], "cores": self.cores}


def cpu_model_for_board(board, cores=None) -> CpuModel:
    """The CPU power model of a board (bundled name, path, or iotbpf.energy Board).

    From the board's CPU component: idle = its idle state's power; a busy core costs
    (run power - idle power) / cores, where the run state is the whole CPU busy (all cores, as in
    the datasheets and measurements the energy models cite); DVFS states ``run@<freq>`` give
    the per-frequency points. ``cores``: the model's ``cores`` parameter, else this host's count.
    """
    from iotbpf.energy.board import load_board

    loaded = load_board(board)
    role = loaded.cpu
    model = loaded.component(role["component"])
    idle_state = role.get("idle_state") or role.get("sleep_state")
    idle_w = model.power_w(idle_state)
    n = cores or model.params.get("cores") or os.cpu_count() or 1
    cores_note = "" if (cores or model.params.get("cores")) else ", cores = this host's %d" % n
    active_w = max(0.0, (model.power_w(role["run_state"]) - idle_w) / n)
    points = []
    for hz, state in model.frequencies():
        points.append((hz // 1000, max(0.0, (model.power_w(state) - idle_w) / n)))
    name = "board %s cpu %s (idle %.3g W, +%.3g W per busy core%s)" % (
        loaded.name, model.name, idle_w, active_w, cores_note)
    return CpuModel(name, idle_w, active_w, points, cores=n)


# ------------------------------------------------------------------ power sources


class RaplSource:
    """Cumulative package energy from /sys/class/powercap/intel-rapl:N/energy_uj (wraps handled)."""

    kind = "energy"

    def __init__(self, zones):
        self.zones = zones  # list of (zone dir, max_energy_range_uj)
        self.name = "rapl:" + "+".join(os.path.basename(z) for z, _ in zones)
        self._last = {}
        self._total_uj = 0

    def read(self) -> float | None:
        """Joules since the first read, or None when a zone became unreadable."""
        for zone, wrap in self.zones:
            value = _read_int(zone + "/energy_uj")
            if value is None:
                return None
            last = self._last.get(zone)
            if last is not None:
                delta = value - last
                if delta < 0:
                    delta += wrap or 0
                self._total_uj += max(0, delta)
            self._last[zone] = value
        return self._total_uj / 1e6


class BatterySource:
    """Instantaneous discharge power of a battery from /sys/class/power_supply/NAME."""

    kind = "power"

    def __init__(self, path: str):
        self.path = path
        self.name = "power_supply:" + os.path.basename(path)
        self.last_status = None

    def read(self) -> float | None:
        """Watts drawn from the battery now, or None when charging/full/unreadable."""
        status = _read_text(self.path + "/status")
        self.last_status = status
        if status is not None and status not in ("Discharging", "Not charging"):
            return None
        power = _read_int(self.path + "/power_now")
        if power is not None:
            return abs(power) / 1e6
        current = _read_int(self.path + "/current_now")
        voltage = _read_int(self.path + "/voltage_now")
        if current is None or voltage is None:
            return None
        return abs(current) * voltage / 1e12


def find_power_sources(sys_root: str = "/sys") -> tuple[list, list[str]]:
    """Measured-power sources present under ``sys_root``: (sources, notes)."""
    notes = []
    sources = []
    powercap = sys_root + "/class/powercap"
    try:
        entries = sorted(os.listdir(powercap))
    except OSError:
        entries = None
        notes.append("no RAPL powercap (%s missing)" % powercap)
    if entries is not None:
        zones = [e for e in entries if e.startswith("intel-rapl:") and e.count(":") == 1]
        names = dict((z, _read_text(powercap + "/" + z + "/name") or "") for z in zones)
        psys = [z for z in zones if names[z] == "psys"]
        chosen = psys or [z for z in zones if names[z] != "psys"]
        readable = []
        for zone in chosen:
            path = powercap + "/" + zone
            if _read_int(path + "/energy_uj") is None:
                notes.append("RAPL %s energy_uj unreadable (root only since Linux 5.10)" % zone)
                continue
            readable.append((path, _read_int(path + "/max_energy_range_uj") or 0))
        if readable:
            sources.append(RaplSource(readable))
        elif not zones:
            notes.append("no RAPL zones in %s" % powercap)
    supply = sys_root + "/class/power_supply"
    try:
        supplies = sorted(os.listdir(supply))
        listed = True
    except OSError:
        supplies = []
        listed = False
        notes.append("no power_supply class (%s missing)" % supply)
    batteries = 0
    for name in supplies:
        path = supply + "/" + name
        if _read_text(path + "/type") != "Battery":
            continue
        batteries += 1
        if _read(path + "/power_now") is None and (_read(path + "/current_now") is None
                                                    or _read(path + "/voltage_now") is None):
            notes.append("battery %s reports neither power_now nor current_now+voltage_now" % name)
            continue
        sources.append(BatterySource(path))
    if listed and batteries == 0:
        notes.append("no battery in %s" % supply)
    return sources, notes


# ------------------------------------------------------------------ samples


class ProcessSample:
    """One process at one instant: cumulative counters since it started."""

    __slots__ = ("pid", "starttime", "comm", "ppid", "flags", "uid", "cpu_ticks", "wakeups",
                 "read_bytes", "write_bytes", "threads", "key")

    def __init__(self, pid, starttime, comm, ppid, flags, cpu_ticks):
        self.pid = pid
        self.starttime = starttime
        self.comm = comm
        self.ppid = ppid
        self.flags = flags
        self.cpu_ticks = cpu_ticks
        self.uid = None
        self.wakeups = 0
        self.read_bytes = None
        self.write_bytes = None
        self.threads = 1
        self.key = None


class Snapshot:
    """Everything read at one instant: processes, /proc/stat, cpufreq and cpuidle, power."""

    def __init__(self, when: float):
        self.when = when
        self.uptime_ticks = None
        self.processes = {}
        self.cpu_busy_ticks = None
        self.cpu_total_ticks = None
        self.cores = 0
        self.freq = {}  # policy -> {khz: ticks of 10 ms}
        self.freq_cpus = {}  # policy -> number of CPUs it covers
        self.idle = {}  # state name -> microseconds summed over CPUs
        self.power = {}  # source name -> reading (joules cumulative or watts)


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


# ------------------------------------------------------------------ the monitor


class LinuxMonitor:
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

    def _read_hardware(self, snap: Snapshot) -> None:
        """CPU frequency and idle-state residency, and every power source that answers."""
        self._read_cpufreq(snap)
        self._read_cpuidle(snap)
        for source in self.power_sources:
            try:
                value = source.read()
            except OSError:
                value = None
            if value is not None:
                snap.power[source.name] = value

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

    def _read_cpufreq(self, snap: Snapshot) -> None:
        root = self.sys_root + "/devices/system/cpu/cpufreq"
        try:
            dirs = [(p, root + "/" + p) for p in sorted(os.listdir(root)) if p.startswith("policy")]
        except OSError:
            dirs = []
        if not dirs:  # kernels before 4.3 have no policy folders: one cpufreq folder per CPU
            cpu_root = self.sys_root + "/devices/system/cpu"
            try:
                cpus = sorted(c for c in os.listdir(cpu_root) if c.startswith("cpu") and c[3:].isdigit())
            except OSError:
                cpus = []
            dirs = [(c, cpu_root + "/" + c + "/cpufreq") for c in cpus
                    if os.path.isdir(cpu_root + "/" + c + "/cpufreq")]
            for name, _path in dirs:  # each counts for itself only
                snap.freq_cpus[name] = 1
        if not dirs:
            self.note("no CPU frequency residency (%s has no policies): nominal model power" % root)
            return
        for policy, path in dirs:
            table = _read_text(path + "/stats/time_in_state")
            if policy.startswith("policy"):
                cpus = _read_text(path + "/related_cpus") or _read_text(path + "/affected_cpus") or "0"
                snap.freq_cpus[policy] = max(1, len(cpus.split()))
            if not table:
                current = _read_int(path + "/scaling_cur_freq")
                if current is None:
                    self.note("%s: no stats/time_in_state and no scaling_cur_freq" % policy)
                    continue
                self.note("%s: no stats/time_in_state; using scaling_cur_freq" % policy)
                snap.freq[policy] = {current: None}
                continue
            residency = {}
            for line in table.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                    residency[int(parts[0])] = int(parts[1])
            snap.freq[policy] = residency

    def _read_cpuidle(self, snap: Snapshot) -> None:
        root = self.sys_root + "/devices/system/cpu"
        try:
            cpus = [c for c in os.listdir(root) if c.startswith("cpu") and c[3:].isdigit()]
        except OSError:
            self.note("%s missing: no idle-state residency" % root)
            return
        found = False
        for cpu in cpus:
            idle_dir = root + "/" + cpu + "/cpuidle"
            try:
                states = [s for s in os.listdir(idle_dir) if s.startswith("state")]
            except OSError:
                continue
            for state in states:
                name = _read_text(idle_dir + "/" + state + "/name")
                used = _read_int(idle_dir + "/" + state + "/time")
                if name is None or used is None:
                    continue
                found = True
                snap.idle[name] = snap.idle.get(name, 0) + used
        if not found:
            self.note("no cpuidle states under %s/cpu*/cpuidle" % root)

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


def _rate(value, seconds):
    return value / seconds if seconds > 0 else 0.0


def _human_bytes(value):
    for unit in ("B", "K", "M", "G"):
        if abs(value) < 1024 or unit == "G":
            return ("%.0f%s" if unit == "B" else "%.1f%s") % (value, unit)
        value /= 1024.0
    return "%.1fG" % value


def format_table(interval: Interval, monitor: LinuxMonitor, top: int = 20) -> str:
    """A top-like text table of one interval: apps by energy, the monitor's own cost, notes."""
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
