"""The in-kernel per-app collector (apps/linux_monitor/linux_monitor.bpf.c) behind
``iotbpf monitor --backend ebpf``.

``Collector`` compiles the C once (clang, cached by source hash), loads it with libbpf (CO-RE against
the kernel's BTF), attaches every program whose tracepoint this kernel has and reads its maps.
``KernelMonitor`` is the /proc monitor (iotbpf.platforms.linux.LinuxMonitor) with its per-process
numbers taken from the kernel's maps instead of /proc/PID: the same apps, energy attribution, table,
JSON, MQTT and plots, plus per-process network bytes, IRQs per line and idle/frequency residency
seen by tracepoints, each labelled with its source. Processes that start and end between two
samples are counted (the kernel keeps their entry until the reader has seen it exited twice).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import time

from iotbpf.platforms.kernel import libbpf
from iotbpf.platforms.linux import KERNEL_APP, PF_KTHREAD, LinuxMonitor, ProcessSample, Snapshot
from iotbpf.resources import data_root

# the bundled apps folder: the checkout's apps/, or iotbpf/_data/apps in an installed wheel
SOURCE = str(data_root("apps") / "linux_monitor" / "linux_monitor.bpf.c")
_PROC = struct.Struct("<8Q4I16s64s")
# program -> tracepoint it attaches to (optional ones are skipped on kernels without them)
PROGRAMS = {"on_switch": "sched_switch", "on_exec": "sched_process_exec",
            "on_exit": "sched_process_exit", "on_send": "sock_send_length", "on_recv": "sock_recv_length",
            "on_bio": "block_bio_queue", "on_irq": "irq_handler_entry", "on_idle": "cpu_idle",
            "on_freq": "cpu_frequency"}
REQUIRED = ("on_switch", "on_exec", "on_exit")
BPF_STATS_RUN_TIME = 0

SOURCES = {
    "cpu_s": "eBPF tp_btf/sched_switch: the scheduler's runtime (se.sum_exec_runtime) per process, ns",
    "wakeups": "eBPF tp_btf/sched_switch: context switches of the process's threads (as /proc's)",
    "processes": "eBPF tp_btf/sched_process_exec/exit: short-lived processes included",
    "read_bytes": "eBPF tp_btf/block_bio_queue: bytes of read bios the process submitted",
    "write_bytes": "eBPF tp_btf/block_bio_queue: bytes of write bios the process submitted",
    "net_tx_bytes": "eBPF tp_btf/sock_send_length: bytes the process sent on sockets",
    "net_rx_bytes": "eBPF tp_btf/sock_recv_length: bytes the process received from sockets",
    "irqs": "eBPF tp_btf/irq_handler_entry: handler entries per interrupt line",
    "idle_ns": "eBPF tp_btf/cpu_idle: ns per idle state, all CPUs",
    "freq_ns": "eBPF tp_btf/cpu_frequency: ns per frequency, all CPUs (changes only)",
    "busy_s": "/proc/stat",
    "energy_j": "CPU power model (see model) or measurement",
}
PROC_SOURCES = {
    "cpu_s": "/proc/PID/stat utime+stime (clock ticks)",
    "wakeups": "/proc/PID/status voluntary+nonvoluntary context switches",
    "processes": "/proc/PID at each sample: processes that start and end between samples are missed",
    "read_bytes": "/proc/PID/io read_bytes",
    "write_bytes": "/proc/PID/io write_bytes",
    "busy_s": "/proc/stat",
    "energy_j": "CPU power model (see model) or measurement",
}


def _find_clang() -> str | None:
    for name in ("clang-19", "clang"):
        path = shutil.which(name)
        if path:
            return path
    return None


def build(source: str = SOURCE, cache_dir: str | None = None) -> str:
    """The compiled collector object (compiled once per source text, in the user's cache folder)."""
    try:
        with open(source, "rb") as f:
            text = f.read()
    except OSError as exc:
        raise libbpf.KernelUnavailable("the collector's source %s is missing (%s)" % (source, exc.strerror)) from None
    clang = _find_clang()
    if clang is None:
        raise libbpf.KernelUnavailable("clang-19 not found: the in-kernel collector is compiled at first use")
    cache = cache_dir or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "iotbpf")
    os.makedirs(cache, exist_ok=True)
    digest = hashlib.sha256(text + clang.encode()).hexdigest()[:16]
    out = os.path.join(cache, "linux_monitor-%s.o" % digest)
    if not os.path.exists(out):
        tmp = out + ".%d.tmp" % os.getpid()
        proc = subprocess.run([clang, "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-c", source, "-o", tmp],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise libbpf.KernelUnavailable("cannot compile the collector: %s" % (proc.stderr.strip().splitlines()
                                                                               or ["clang failed"])[0])
        os.replace(tmp, out)
    return out


def kernel_tracepoints() -> set:
    """Tracepoints this kernel has (``__traceiter_<name>`` symbols)."""
    names = set()
    try:
        with open("/proc/kallsyms", "rb") as f:
            for line in f:
                at = line.find(b" __traceiter_")
                if at >= 0:
                    names.add(line[at + 13:].split()[0].decode("ascii", "replace"))
    except OSError:
        pass
    return names


class ProcEntry:
    __slots__ = ("tgid", "cpu_ns", "spare", "switches", "net_tx", "net_rx", "disk_read", "disk_write", "execs",
                 "uid", "flags", "exited", "comm", "exe")

    def __init__(self, tgid: int, raw: bytes):
        self.tgid = tgid
        (self.cpu_ns, self.spare, self.switches, self.net_tx, self.net_rx, self.disk_read, self.disk_write,
         self.execs, self.uid, self.flags, self.exited, _pad, comm, exe) = _PROC.unpack_from(raw)
        self.comm = comm.split(b"\0")[0].decode("utf-8", "replace")
        self.exe = exe.split(b"\0")[0].decode("utf-8", "replace")


class Collector:
    """The loaded, attached collector; ``close()`` detaches and unloads everything."""

    def __init__(self, source: str = SOURCE, cache_dir: str | None = None):
        libbpf.require(need_btf=True)
        path = build(source, cache_dir)
        have = kernel_tracepoints()
        self.notes = []
        skip = [p for p, tp in PROGRAMS.items() if have and tp not in have]
        for prog in skip:
            if prog in REQUIRED:
                raise libbpf.KernelUnavailable("this kernel has no %s tracepoint" % PROGRAMS[prog])
            self.notes.append("no %s tracepoint in this kernel: %s not collected" % (PROGRAMS[prog], prog[3:]))
        self.obj = libbpf.Object(path, skip=tuple(skip))
        self.stats_fd = -1
        try:
            # before attaching: threads born from now on count from birth, older ones from first sight
            self.obj.map("config").update(b"\0\0\0\0", struct.pack("<Q", time.monotonic_ns()))
            for name, reason in self.obj.attach_all():
                if name in REQUIRED:
                    raise libbpf.KernelUnavailable(reason)
                self.notes.append(reason)
            self.attached = sorted(PROGRAMS[n] for n in self.obj.programs)
            self.procs = self.obj.map("procs")
            self.maps = dict((name, self.obj.map(name)) for name in ("irqs", "idle_ns", "freq_ns"))
            fd = libbpf.lib().bpf_enable_stats(BPF_STATS_RUN_TIME)  # run-time stats while we hold the fd
            self.stats_fd = fd if fd >= 0 else -1
        except BaseException:
            self.close()
            raise
        self.loaded_at = time.monotonic()

    def read_procs(self) -> dict:
        return dict((int.from_bytes(k, "little"), ProcEntry(int.from_bytes(k, "little"), v))
                    for k, v in self.procs.items())

    def forget(self, tgids) -> None:
        for tgid in tgids:
            self.procs.delete(struct.pack("<I", tgid))

    def counters(self, name: str) -> dict:
        """irqs / idle_ns / freq_ns as {key: value}."""
        return dict((int.from_bytes(k, "little"), int.from_bytes(v, "little")) for k, v in self.maps[name].items())

    def kernel_ns(self) -> int | None:
        """Total run time of the collector's programs (BPF_ENABLE_STATS), None when unavailable."""
        if self.stats_fd < 0:
            return None
        total = 0
        for prog in self.obj.programs.values():
            fd = libbpf.lib().bpf_program__fd(prog)
            try:
                with open("/proc/self/fdinfo/%d" % fd, encoding="ascii") as f:
                    for line in f:
                        if line.startswith("run_time_ns:"):
                            total += int(line.split()[1])
            except (OSError, ValueError):
                return None
        return total

    def close(self) -> None:
        if getattr(self, "stats_fd", -1) >= 0:
            os.close(self.stats_fd)
            self.stats_fd = -1
        obj = getattr(self, "obj", None)
        if obj is not None:
            obj.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _irq_names(proc_root: str = "/proc") -> dict:
    names = {}
    try:
        with open(proc_root + "/interrupts", encoding="utf-8", errors="replace") as f:
            for line in f:
                head, _, rest = line.partition(":")
                if head.strip().isdigit():
                    parts = rest.split()
                    words = [p for p in parts if not p.isdigit()]
                    names[int(head)] = " ".join(words[-2:]) if words else head.strip()
    except OSError:
        pass
    return names


class KernelMonitor(LinuxMonitor):
    """LinuxMonitor whose per-process numbers come from the in-kernel collector."""

    backend = "ebpf"

    def __init__(self, cpu_model, collector: Collector, **kwargs):
        LinuxMonitor.__init__(self, cpu_model, **kwargs)
        self.collector = collector
        self._exited_before = set()
        self._exe_cache = {}
        self._first_kernel_ns = None
        self._last_kernel_ns = None
        self.hidden_apps = set()
        for note in collector.notes:
            self.note(note)

    def snapshot(self) -> Snapshot:
        snap = Snapshot(self.clock())
        # uptime_ticks stays None: a process first seen now ran only since the previous sample
        # (the collector counts from the moment it was loaded), so it counts in full
        self._read_proc_stat(snap)
        entries = self.collector.read_procs()
        snap.net = {}
        scale = self.hz / 1e9
        for tgid, e in entries.items():
            proc = ProcessSample(tgid, 0, e.comm, 0, e.flags, e.cpu_ns * scale)
            proc.uid = e.uid
            proc.wakeups = e.switches
            proc.read_bytes = e.disk_read
            proc.write_bytes = e.disk_write
            proc.key = self._kernel_key(e)
            snap.processes[tgid] = proc
            snap.net[tgid] = (e.net_tx, e.net_rx)
        self._read_hardware(snap)
        exited = set(t for t, e in entries.items() if e.exited)
        # seen exited at two samples: its last on-CPU slice is in, the entry can go
        self.collector.forget(exited & self._exited_before)
        self._exited_before = exited - self._exited_before
        for tgid, execs in list(self._exe_cache):
            if tgid not in entries or entries[tgid].execs != execs:
                del self._exe_cache[(tgid, execs)]
        kernel_ns = self.collector.kernel_ns()
        if kernel_ns is not None:
            if self._first_kernel_ns is None:
                self._first_kernel_ns = (snap.when, kernel_ns)
            self._last_kernel_ns = (snap.when, kernel_ns)
        return snap

    def _kernel_key(self, e: ProcEntry) -> str:
        mode = self.group_by
        if mode == "uid":
            return self._user_name(e.uid)
        if mode == "cgroup":
            return self._cgroup("%s/%d" % (self.proc_root, e.tgid)) if not e.exited else "cgroup ?"
        if e.flags & PF_KTHREAD:
            return KERNEL_APP
        if mode == "comm":
            return e.comm
        key = self._exe_cache.get((e.tgid, e.execs))  # a fork named before its exec is renamed by it
        if key is None:  # alive: /proc's answer (as the proc backend); gone: the file it exec'd
            try:
                key = os.path.basename(os.readlink("%s/%d/exe" % (self.proc_root, e.tgid)))
                if key.endswith(" (deleted)"):
                    key = key[:-len(" (deleted)")]
            except OSError:
                key = os.path.basename(e.exe) if e.exe else e.comm
            self._exe_cache[(e.tgid, e.execs)] = key
        return key

    def _interval(self, prev: Snapshot, snap: Snapshot):
        iv = LinuxMonitor._interval(self, prev, snap)
        net = {}
        old_net = getattr(prev, "net", {})
        for pid, proc in snap.processes.items():
            tx, rx = snap.net.get(pid, (0, 0))
            otx, orx = old_net.get(pid, (0, 0)) if pid in prev.processes else (0, 0)
            cell = net.setdefault(proc.key, [0, 0])
            cell[0] += max(0, tx - otx)
            cell[1] += max(0, rx - orx)
        for usage in iv.apps:
            tx, rx = net.get(usage.app, (0, 0))
            usage.net_tx_bytes = tx
            usage.net_rx_bytes = rx
        return iv

    def _accumulate(self, iv) -> None:
        LinuxMonitor._accumulate(self, iv)
        for usage in iv.apps:
            total = self.totals[usage.app]
            total.net_tx_bytes = getattr(total, "net_tx_bytes", 0) + getattr(usage, "net_tx_bytes", 0)
            total.net_rx_bytes = getattr(total, "net_rx_bytes", 0) + getattr(usage, "net_rx_bytes", 0)

    def overhead(self) -> dict:
        out = LinuxMonitor.overhead(self)
        kernel_s = None
        if self._first_kernel_ns is not None and self._last_kernel_ns[0] > self._first_kernel_ns[0]:
            kernel_s = (self._last_kernel_ns[1] - self._first_kernel_ns[1]) / 1e9
            wall = self._last_kernel_ns[0] - self._first_kernel_ns[0]
            out["kernel_cpu_s"] = round(kernel_s, 6)
            out["kernel_percent_of_one_core"] = round(100.0 * kernel_s / wall, 4)
            out["total_percent_of_one_core"] = round(100.0 * (kernel_s + self.monitor_cpu_s * (
                wall / self.total_seconds if self.total_seconds else 1.0)) / wall, 4)
        else:
            out["kernel_cpu_s"] = None
        return out

    def summary(self) -> dict:
        out = LinuxMonitor.summary(self)
        out["backend"] = "ebpf"
        out["sources"] = dict(SOURCES)
        for app in out["apps"]:
            total = self.totals.get(app["app"])
            app["net_tx_bytes"] = getattr(total, "net_tx_bytes", 0)
            app["net_rx_bytes"] = getattr(total, "net_rx_bytes", 0)
        names = _irq_names(self.proc_root)
        irqs = self.collector.counters("irqs")
        out["kernel"] = {
            "tracepoints": self.collector.attached,
            "irqs": dict((("%d %s" % (irq, names.get(irq, ""))).strip(), n) for irq, n in sorted(irqs.items())),
            "idle_ns": dict((str(k), v) for k, v in sorted(self.collector.counters("idle_ns").items())),
            "freq_ns": dict((str(k), v) for k, v in sorted(self.collector.counters("freq_ns").items())),
        }
        if not out["kernel"]["idle_ns"]:
            self.note("no power:cpu_idle events (this CPU's idle driver does not report them)")
        if not out["kernel"]["freq_ns"]:
            self.note("no power:cpu_frequency events (no cpufreq driver, or the frequency never changed)")
        out["notes"] = list(self.notes)
        return out
