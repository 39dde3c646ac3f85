"""The in-kernel collector's reader, against the running kernel: batched map reads give what
per-key reads give (plain and per-CPU maps, more keys than one batch), the task iterator sees this
process with its own CPU time, and a child reaped between two reads is reported once with its final
totals (what it measured itself), then forgotten by the kernel map."""

import os
import struct
import subprocess
import time

import pytest

from conftest import REPO, find_clang, missing


def test_batch_reads_equal_per_key_reads(no_bpf_left):
    libbpf = no_bpf_left
    with libbpf.Map(libbpf.BPF_MAP_TYPE_HASH, 4, 12, 2048, "iotbpf_batch") as m:
        for k in range(700):  # more than two chunks of 256
            m.update(struct.pack("<I", k), struct.pack("<QI", k * 7, k))
        assert sorted(m.items_batch()) == sorted(m.items())
        assert len(m.items_batch(chunk=256)) == 700


@pytest.fixture(scope="module")
def burner(tmp_path_factory, kernel_bpf):
    clang = find_clang()
    if clang is None:
        missing("clang-19")
    exe = tmp_path_factory.mktemp("collector") / ("iotbpf_reaped_%d" % os.getpid())
    subprocess.run([clang, "-O1", "-o", str(exe), str(REPO / "tests" / "kernel_oracle" / "data" / "workload.c")],
                   check=True)
    return exe


def test_iterator_sees_live_processes_and_reaped_ones_once(burner, no_bpf_left):
    from iotbpf.platforms.kernel.collector import Collector

    with Collector() as collector:
        first = collector.read_procs()
        me = first[os.getpid()]
        assert not me.exited and me.threads >= 1 and me.cpu_ns > 0
        with open("/proc/self/comm") as f:
            assert me.comm == f.read().strip()
        # a per-CPU map (irqs: one u64 per CPU, 8-byte aligned) read in batches: every CPU's copy, no
        # less than a per-key read a moment before shows (the kernel only counts up)
        irqs = collector.maps["irqs"]
        step = 8 * no_bpf_left.possible_cpus()
        before = dict((k, irqs.lookup(k, step)) for k in (struct.pack("<I", i) for i in range(1024)))
        rows = dict(irqs.items_batch(per_cpu=True))
        assert sorted(rows) == sorted(before) and all(len(v) == step for v in rows.values())
        assert all(a >= b for k in rows for a, b in zip(struct.iter_unpack("<Q", rows[k]),
                                                        struct.iter_unpack("<Q", before[k])))
        assert abs(me.start_ns / 1e9 - _start_s(os.getpid())) < 0.02
        child = subprocess.run([str(burner), "burn", "60"], capture_output=True, text=True, check=True)  # reaped
        own_ns = int(child.stdout)
        found = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # its final record comes from an RCU callback, after the reap
            time.sleep(0.01)
            entries = collector.read_procs()
            gone = [e for e in entries.values() if e.exited and e.exe == str(burner)]
            if gone:
                found = gone[0]
                break
        assert found is not None, "the reaped child never showed up"
        assert found.unseen and found.execs == 1 and found.comm == burner.name[:15]
        # the process's whole runtime: at least what it measured itself, plus fork/exec/exit (< 30 ms)
        assert own_ns <= found.cpu_ns <= own_ns + 30_000_000, (found.cpu_ns, own_ns)
        again = collector.read_procs()
        assert found.tgid not in again or not again[found.tgid].exited
        assert collector.procs.lookup(struct.pack("<I", found.tgid)) is None


def _start_s(pid: int) -> float:
    """The process's start (field 22 of /proc/PID/stat, clock ticks since boot) in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def test_no_program_runs_per_context_switch(burner, no_bpf_left):
    """The collector's cost does not grow with the switch rate: during 200 000 context switches of a
    ping-pong its event programs run a few hundred times at most (exec, exit, IRQs, sockets), counted
    by the kernel's own BPF run-time statistics."""
    from iotbpf.platforms.kernel.collector import Collector

    def ctxt():
        with open("/proc/stat") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("ctxt "))

    with Collector() as collector:
        before, c0 = collector.kernel_stats(), ctxt()
        assert before is not None, "BPF run-time statistics unavailable"
        out = subprocess.run([str(burner), "switch", "100000"], capture_output=True, text=True, check=True)
        after, switches = collector.kernel_stats(), ctxt() - c0
        assert out.stdout.split() == ["100000"] and switches >= 200000
        runs = sum(after[name][1] - before[name][1] for name in after)
        assert "dump_tasks" not in after  # run by the reader: its time is the reader's
        assert runs < switches / 100, (runs, switches, after)


def test_the_compiled_collector_names_no_absolute_path(tmp_path):
    """As the bundled apps: the object names its source relative to the source's folder."""
    if find_clang() is None:
        missing("clang-19")
    from iotbpf.platforms.kernel.collector import SOURCE, build

    data = open(build(cache_dir=str(tmp_path)), "rb").read()
    assert b"linux_monitor.bpf.c" in data
    assert os.path.dirname(os.path.abspath(SOURCE)).encode() not in data and str(REPO).encode() not in data
