"""/proc reading for the Linux monitor: small-file reads that never raise, the names of the
monitor's buckets, and one sample of the system (``Snapshot``, with a ``ProcessSample`` per process).

Split from iotbpf.platforms.linux (which re-exports every name here); host-only (CPython).
"""

import os

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
