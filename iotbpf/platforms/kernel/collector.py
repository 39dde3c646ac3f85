"""The in-kernel per-app collector (apps/linux_monitor/linux_monitor.bpf.c) behind
``iotbpf monitor --backend ebpf``.

``Collector`` compiles the C once (clang, cached by source hash), loads it with libbpf (CO-RE against
the kernel's BTF), attaches every program whose hook this kernel has and reads its maps.
``KernelMonitor`` is the /proc monitor (iotbpf.platforms.linux.LinuxMonitor) with its per-process
numbers taken from the kernel instead of /proc/PID: the same apps, energy attribution, table, JSON,
MQTT and plots, plus per-process network bytes, IRQs per line and idle/frequency residency, each
labelled with its source.

Nothing of the collector runs on a context switch: every sample runs its task iterator once (one
read() of a BPF iterator: every task's scheduler runtime, context switches and I/O bytes, which the
kernel keeps anyway), and a process reaped between two samples leaves its final totals in a map
(tp_btf/sched_process_free), so short-lived processes are counted. Only socket bytes, IRQs and (where
sysfs has no cpuidle statistics) idle residency are counted per event, in per-CPU maps.
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
# struct task_rec: tgid, pid, flags, uid, cpu_ns, switches, read_bytes, write_bytes, start_ns, comm
_REC = struct.Struct("<4I5Q16s")
# struct proc_info: task_rec last, execs, exited, pad, exe
_INFO = struct.Struct("<%dsQII64s" % _REC.size)
# program -> the kernel hook it needs ("iter/task" and fentry need none of the tracepoints)
PROGRAMS = {"dump_tasks": "iter/task", "on_free": "sched_process_free", "on_exec": "sched_process_exec",
            "on_send": "sock_send_length", "on_recv": "sock_recv_length", "on_irq": "irq_handler_entry",
            "on_idle": "cpu_idle", "on_freq": "cpu_frequency"}
REQUIRED = ("dump_tasks", "on_free", "on_exec")
CARRY = 30  # samples a vanished process is carried while its final record is on the way
BPF_STATS_RUN_TIME = 0
# run by the reader itself (their kernel time is in the reader's thread CPU time): not event-driven cost
READER_PROGRAMS = ("dump_tasks",)

SOURCES = {
    "cpu_s": "eBPF iter/task: the scheduler's runtime (se.sum_exec_runtime, ns) of the process's threads, "
             "dead ones included; reaped processes' final totals from tp_btf/sched_process_free",
    "wakeups": "eBPF iter/task: context switches (nvcsw + nivcsw) of the process's threads (as /proc's)",
    "processes": "eBPF iter/task at each sample and tp_btf/sched_process_free: short-lived processes included",
    "read_bytes": "eBPF iter/task: the task I/O accounting's read_bytes (as /proc/PID/io)",
    "write_bytes": "eBPF iter/task: the task I/O accounting's write_bytes (as /proc/PID/io)",
    "net_tx_bytes": "eBPF tp_btf/sock_send_length: bytes the process sent on sockets",
    "net_rx_bytes": "eBPF tp_btf/sock_recv_length: bytes the process received from sockets",
    "irqs": "eBPF tp_btf/irq_handler_entry: handler entries per interrupt line",
    "idle_ns": "eBPF tp_btf/cpu_idle: ns per idle state, all CPUs (only where sysfs has no cpuidle residency)",
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
    # no absolute path in the object (as the bundled apps): the source is named relative to its folder
    flags = ["-O2", "-g", "-target", "bpf", "-mcpu=v3", "-ffile-prefix-map=%s/=" % os.path.dirname(
        os.path.abspath(source)), "-fdebug-compilation-dir=."]
    digest = hashlib.sha256(text + clang.encode() + " ".join(flags[:5]).encode()).hexdigest()[:16]
    out = os.path.join(cache, "linux_monitor-%s.o" % digest)
    if not os.path.exists(out):
        tmp = out + ".%d.tmp" % os.getpid()
        proc = subprocess.run([clang] + flags + ["-c", source, "-o", tmp],
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


def sysfs_has_cpuidle(sys_root: str = "/sys") -> bool:
    """True when the kernel's own idle-state residency is in sysfs (cpu*/cpuidle/state*/time)."""
    root = sys_root + "/devices/system/cpu"
    try:
        cpus = [c for c in os.listdir(root) if c.startswith("cpu") and c[3:].isdigit()]
    except OSError:
        return False
    return any(os.path.exists("%s/%s/cpuidle/state0/time" % (root, c)) for c in cpus)


class ProcEntry:
    """One process: its counters since it started (summed over its threads), as of one read."""

    __slots__ = ("tgid", "cpu_ns", "switches", "read_bytes", "write_bytes", "start_ns", "uid", "flags",
                 "threads", "exited", "comm", "exe", "execs", "net_tx", "net_rx", "carried", "unseen")

    def __init__(self, tgid: int):
        self.tgid = tgid
        self.cpu_ns = self.switches = self.read_bytes = self.write_bytes = 0
        self.start_ns = self.uid = self.flags = self.threads = self.exited = self.execs = 0
        self.net_tx = self.net_rx = self.carried = 0
        self.unseen = False  # reaped before any read saw it alive: everything it did is new
        self.comm = self.exe = ""

    def add(self, rec: tuple) -> None:
        """Add one task's record (struct task_rec); the leader's names the process."""
        _tgid, pid, flags, uid, cpu_ns, switches, read_bytes, write_bytes, start_ns, comm = rec
        self.cpu_ns += cpu_ns
        self.switches += switches
        self.read_bytes += read_bytes
        self.write_bytes += write_bytes
        self.threads += 1
        if pid == self.tgid or not self.comm:
            self.flags, self.uid, self.start_ns = flags, uid, start_ns
            self.comm = comm.split(b"\0")[0].decode("utf-8", "replace") if pid == self.tgid else self.comm


class Collector:
    """The loaded, attached collector; ``close()`` detaches and unloads everything."""

    def __init__(self, source: str = SOURCE, cache_dir: str | None = None, idle_events: bool | None = None):
        """``idle_events``: load the cpu_idle program (None: only when sysfs has no cpuidle residency,
        which the kernel keeps itself; the program runs at every idle entry and exit)."""
        libbpf.require(need_btf=True)
        path = build(source, cache_dir)
        have = kernel_tracepoints()
        self.notes = []
        skip = [p for p, tp in PROGRAMS.items() if have and "/" not in tp and tp not in have]
        for prog in skip:
            if prog in REQUIRED:
                raise libbpf.KernelUnavailable("this kernel has no %s tracepoint" % PROGRAMS[prog])
            self.notes.append("no %s tracepoint in this kernel: %s not collected" % (PROGRAMS[prog], prog[3:]))
        if idle_events is None:
            idle_events = not sysfs_has_cpuidle()
            if not idle_events:
                self.notes.append("idle-state residency from sysfs cpuidle (the kernel's own counters): "
                                  "no cpu_idle program")
        if not idle_events and "on_idle" not in skip:
            skip.append("on_idle")
        self.obj = libbpf.Object(path, skip=tuple(skip))
        self.stats_fd = -1
        self._stale = {}
        self._last = {}
        try:
            for name, reason in self.obj.attach_all():
                if name in REQUIRED:
                    raise libbpf.KernelUnavailable(reason)
                self.notes.append(reason)
            self.attached = sorted(PROGRAMS[n] for n in self.obj.programs)
            self.procs = self.obj.map("procs")
            self.net = self.obj.map("net")
            self.maps = dict((name, self.obj.map(name)) for name in ("irqs", "idle_ns", "freq_ns"))
            fd = libbpf.lib().bpf_enable_stats(BPF_STATS_RUN_TIME)  # run-time stats while we hold the fd
            self.stats_fd = fd if fd >= 0 else -1
        except BaseException:
            self.close()
            raise
        self.loaded_at = time.monotonic()

    def read_procs(self) -> dict:
        """{tgid: ProcEntry} of every process now, and of every process reaped since the last read (with
        ``exited`` set and its final totals); a reaped process is reported once, then forgotten.

        The final record comes from an RCU callback, a moment after the process left the task list: a
        process that vanished without it yet is carried (its last values) until it comes."""
        entries = {}
        for rec in _REC.iter_unpack(self.obj.read_iter("dump_tasks")):
            e = entries.get(rec[0])
            if e is None:
                e = entries[rec[0]] = ProcEntry(rec[0])
            e.add(rec)
        done = []
        stale = []
        for key, raw in self.procs.items_batch():
            tgid = int.from_bytes(key, "little")
            last, execs, exited, _pad, exe = _INFO.unpack(raw)
            if exited:  # reaped: its final record replaces what the iterator may still have seen
                e = entries[tgid] = ProcEntry(tgid)
                e.add(_REC.unpack(last))
                e.exited = 1
                old = self._last.get(tgid)
                e.unseen = old is None or old.start_ns != e.start_ns
                done.append(key)
            elif tgid not in entries:
                if tgid not in self._last:
                    stale.append(key)  # exec'd after the iterator ran, or gone without a record
                continue
            else:
                e = entries[tgid]
            e.execs = execs
            e.exe = exe.split(b"\0")[0].decode("utf-8", "replace")
        for tgid, old in self._last.items():
            if tgid not in entries and not old.exited and old.carried < CARRY:
                old.carried += 1
                entries[tgid] = old
        step = (16 + 7) & ~7
        for key, raw in self.net.items_batch(per_cpu=True):
            tgid = int.from_bytes(key, "little")
            e = entries.get(tgid)
            if e is None:
                stale.append(b"n" + key)
                continue
            e.net_tx = e.net_rx = 0
            for cpu in range(0, len(raw), step):
                tx, rx = struct.unpack_from("<QQ", raw, cpu)
                e.net_tx += tx
                e.net_rx += rx
            if e.exited:
                done.append(b"n" + key)
        counts = {}
        for key in stale:  # entries no process owns for CARRY reads in a row go
            counts[key] = self._stale.get(key, 0) + 1
            if counts[key] > CARRY:
                done.append(key)
        self._stale = counts
        for key in done:
            (self.net if key[:1] == b"n" else self.procs).delete(key[-4:])
        self._last = entries
        return entries

    def counters(self, name: str) -> dict:
        """irqs / idle_ns / freq_ns as {key: value} (per-CPU copies summed; zero counts left out)."""
        m = self.maps[name]
        per_cpu = name in ("irqs", "idle_ns")
        out = {}
        for k, v in m.items_batch(per_cpu=per_cpu):
            total = sum(x[0] for x in struct.iter_unpack("<Q", v))
            if total:
                out[int.from_bytes(k, "little")] = total
        return out

    def kernel_stats(self) -> dict | None:
        """{program: (run_time_ns, run_cnt)} of the collector's event-driven programs, from the kernel's
        BPF run-time statistics (BPF_ENABLE_STATS, as `bpftool prog show`); None when unavailable."""
        if self.stats_fd < 0:
            return None
        out = {}
        for name, prog in self.obj.programs.items():
            if name in READER_PROGRAMS:
                continue
            fd = libbpf.lib().bpf_program__fd(prog)
            ns = cnt = 0
            try:
                with open("/proc/self/fdinfo/%d" % fd, encoding="ascii") as f:
                    for line in f:
                        if line.startswith("run_time_ns:"):
                            ns = int(line.split()[1])
                        elif line.startswith("run_cnt:"):
                            cnt = int(line.split()[1])
            except (OSError, ValueError):
                return None
            out[name] = (ns, cnt)
        return out

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
        self._exe_cache = {}
        self._first_kernel_ns = None
        self.hidden_apps = set()
        for note in collector.notes:
            self.note(note)

    def snapshot(self) -> Snapshot:
        snap = Snapshot(self.clock())
        # processes' start times are CLOCK_BOOTTIME (as /proc/uptime): one started since the previous
        # sample counts in full, one seen before counts by difference
        snap.uptime_ticks = int(time.clock_gettime(time.CLOCK_BOOTTIME) * self.hz)
        self._read_proc_stat(snap)
        entries = self.collector.read_procs()
        snap.net = {}
        scale = self.hz / 1e9
        for tgid, e in entries.items():
            # reaped before any sample saw it alive: all it did is new (its record may come a sample late)
            start = snap.uptime_ticks if e.unseen else e.start_ns * self.hz // 1000000000
            proc = ProcessSample(tgid, start, e.comm, 0, e.flags, e.cpu_ns * scale)
            proc.uid = e.uid
            proc.wakeups = e.switches
            proc.read_bytes = e.read_bytes
            proc.write_bytes = e.write_bytes
            proc.threads = e.threads
            proc.key = self._kernel_key(e)
            snap.processes[tgid] = proc
            snap.net[tgid] = (e.net_tx, e.net_rx)
        self._read_hardware(snap)
        if len(self._exe_cache) > 2 * len(entries) + 64:  # forget processes that are gone
            self._exe_cache = dict((k, v) for k, v in self._exe_cache.items()
                                   if k[0] in entries and entries[k[0]].start_ns == k[1])
        if self._first_kernel_ns is None:  # the programs' run time so far; the rest is read by overhead()
            stats = self.collector.kernel_stats()
            if stats is not None:
                self._first_kernel_ns = (snap.when, stats)
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
        cache = (e.tgid, e.start_ns, e.execs)
        key = self._exe_cache.get(cache)  # a fork named before its exec is renamed by it
        if key is None:  # alive: /proc's answer (as the proc backend); gone: the file it exec'd
            try:
                key = os.path.basename(os.readlink("%s/%d/exe" % (self.proc_root, e.tgid)))
                if key.endswith(" (deleted)"):
                    key = key[:-len(" (deleted)")]
            except OSError:
                key = os.path.basename(e.exe) if e.exe else e.comm
            self._exe_cache[cache] = key
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
        last = self.collector.kernel_stats() if self._first_kernel_ns is not None else None
        now = self.clock()
        if last is not None and self.samples > 1 and now > self._first_kernel_ns[0]:
            first = self._first_kernel_ns[1]  # from the first sample until now
            wall = now - self._first_kernel_ns[0]
            programs = {}
            for name, (ns, cnt) in sorted(last.items()):
                d_ns, d_cnt = ns - first.get(name, (0, 0))[0], cnt - first.get(name, (0, 0))[1]
                programs[name] = {"ns_per_run": round(d_ns / d_cnt, 1) if d_cnt else 0.0,
                                  "runs_per_s": round(d_cnt / wall, 1), "percent_of_one_core": round(
                                      100.0 * d_ns / 1e9 / wall, 4)}
            kernel_s = sum(ns for ns, _cnt in last.values()) / 1e9 - sum(ns for ns, _cnt in first.values()) / 1e9
            out["kernel_programs"] = programs
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
        if not out["kernel"]["idle_ns"] and "on_idle" in self.collector.obj.programs:
            self.note("no power:cpu_idle events (this CPU's idle driver does not report them)")
        if not out["kernel"]["freq_ns"]:
            self.note("no power:cpu_frequency events (no cpufreq driver, or the frequency never changed)")
        out["notes"] = list(self.notes)
        return out
