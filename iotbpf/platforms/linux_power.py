"""The Linux monitor's hardware side: the CPU power model (``CpuModel``, per board), measured power
sources (RAPL powercap, batteries) and the reading of frequency and idle-state residency from sysfs
(``HardwareReader``, a part of ``LinuxMonitor``).

Split from iotbpf.platforms.linux (which re-exports every name here); host-only (CPython).
"""

import os

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.platforms.linux_proc import Snapshot, _read, _read_int, _read_text

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


# ------------------------------------------------------------------ residency


class HardwareReader:
    """CPU frequency and idle-state residency and power readings into a Snapshot (a part of
    ``LinuxMonitor``: it uses its ``sys_root``, ``power_sources`` and ``note``)."""

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
