"""Issue 24, items 10-11 (host side): `run --trace` streams, `monitor --duration` is time and
`--interval` is validated, LinuxMonitor's key cache is pruned, a malformed /proc/stat is no crash."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys

import pytest

from iotbpf.cli import main
from iotbpf.platforms.linux import LinuxMonitor, run_monitor
from tests.platforms.test_linux import MODEL, _fake_monitor, _populate


class WhileRunning(io.StringIO):
    """stdout that counts the lines written while the eBPF interpreter is still running."""

    def __init__(self):
        super().__init__()
        self.during_run = 0

    def write(self, text):
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename.endswith(os.path.join("ebpf", "engines", "interp.py")):
                self.during_run += text.count("\n")
                break
            frame = frame.f_back
        return super().write(text)


def test_run_trace_streams_instead_of_keeping_the_trace(tmp_path):
    # An endless program under a large --budget: the trace must leave as it is made (before the
    # fix it was kept in a list and printed after the run, until the memory ran out).
    (tmp_path / "inf.s").write_text("loop:\nadd %r0, 1\nja loop\n")
    out = WhileRunning()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["run", str(tmp_path / "inf.s"), "--trace", "--budget", "5000"])
    assert code == 1
    assert out.getvalue().count("\n") >= 5000
    assert out.during_run >= 5000


class SteppingClock:
    """A clock that moves on by ``step`` on every read: samples that cost time themselves."""

    def __init__(self, step):
        self.t = 0.0
        self.step = step

    def __call__(self):
        self.t += self.step
        return self.t


def test_monitor_duration_is_time_not_a_sample_count(tmp_path):
    proc, _clock, kw = _fake_monitor(tmp_path)
    _populate(proc, 0)
    clock = SteppingClock(0.01)   # every sample costs 10 ms, far more than the 1 us interval
    kw["clock"] = clock
    monitor = LinuxMonitor(MODEL, power_sources=[], **kw)
    count = run_monitor(monitor, 1e-6, 1.0, sleep=lambda s: None, clock=clock)
    assert count < 200   # before the fix: 1 000 000 samples (1 s / 1 us), i.e. it "never ends"


def test_monitor_rejects_a_nanosecond_interval(capsys):
    assert main(["monitor", "--interval", "1ns", "--duration", "1s"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --interval 1ns is too short") and "Traceback" not in err


def test_key_cache_forgets_processes_that_ended(tmp_path):
    proc, clock, kw = _fake_monitor(tmp_path)
    monitor = LinuxMonitor(MODEL, power_sources=[], **kw)
    for step in range(30):
        pid = 1000 + step                          # a new short-lived process every sample
        proc.process(pid, "job", exe="/usr/bin/job", start=step)
        clock.t = float(step)
        monitor.sample()
        shutil.rmtree(proc.root / str(pid))
    assert len(monitor._key_cache) <= 2          # before the fix: 30


@pytest.mark.parametrize("stat", ["cpu  a b c d\ncpu0 0\n", "cpu  1 2 x\n", "cpu \xff\n"])
def test_malformed_proc_stat_is_a_note_not_a_crash(tmp_path, stat):
    proc, clock, kw = _fake_monitor(tmp_path)
    _populate(proc, 0)
    monitor = LinuxMonitor(MODEL, power_sources=[], **kw)
    (proc.root / "stat").write_bytes(stat.encode("latin-1"))
    monitor.sample()
    clock.t = 1.0
    monitor.sample()
    assert any("malformed cpu line" in n for n in monitor.notes)
    assert os.path.exists(proc.root / "stat")
