"""Trace and log lines reach the user: bpf_trace_printk with 0-3 arguments (verified as Linux
verifies it), `run`/`simulate --trace-log` streaming lines with virtual timestamps, bounded."""

import json
import shutil

import pytest

from conftest import REPO
from iotbpf import Program
from iotbpf.ebpf.helpers import linux_helpers

APP = REPO / "tests" / "c" / "trace_app"
PRINTK = r"""
#include "iotbpf.h"
SEC("prog") __u64 tp(void *ctx)
{
	bpf_trace_printk("zero", 5);
	bpf_trace_printk("one %d", 7, -1);
	bpf_trace_printk("two %d %x", 10, 2, 0x2a);
	return bpf_trace_printk("three %u %lld %c", 17, 3, -3LL, 'z');
}
"""


@pytest.fixture
def trace_app(clang, tmp_path):
    app = tmp_path / "trace_app"
    shutil.copytree(APP, app)
    clang.compile(app / "trace_app.c", out=app / "trace_app.o")
    return app


def test_trace_printk_with_zero_to_three_args_verifies(clang):
    prog = Program.from_file(clang.compile(PRINTK), section="prog")
    prog.verify(mem_size=0)  # r3..r5 unset for fewer args: Linux accepts it too


@pytest.mark.parametrize("engine", ["interp", "compiled"])
def test_run_trace_log_prints_each_line(clang, cli, engine):
    obj = clang.compile(PRINTK)
    r = cli("run", str(obj), "--verify", "--engine", engine, "--trace-log", "-")
    assert r.code == 0, r.err
    texts = [line.split("bpf_trace_printk: ", 1)[1] for line in r.out.splitlines() if "printk" in line]
    assert texts == ["zero", "one -1", "two 2 2a", "three 3 -3 z"]
    assert r.out.splitlines()[-1] == "0x%x" % len("three 3 -3 z")


def test_simulate_trace_log_streams_lines_with_virtual_times(trace_app, cli, tmp_path):
    out = tmp_path / "trace.txt"
    r = cli("simulate", str(trace_app), "--duration", "3m", "--trace-log", str(out))
    assert r.code == 0, r.err
    lines = out.read_text().splitlines()
    assert lines[:4] == [
        "    60.000000000 trace_app bpf_trace_printk: tick",
        "    60.000000000 trace_app bpf_trace_printk: tick 1",
        "    60.000000000 trace_app bpf_trace_printk: tick 1 timer 0",
        "    60.000000000 trace_app bpf_trace_printk: t=60000000000 n=1 id=0",
    ]
    assert "   120.000000000 trace_app iot_log: even 2" in lines
    assert sum("bpf_trace_printk" in line for line in lines) == 4 * 2  # ticks at 60 s and 120 s
    assert "log lines 1" in r.out


def test_trace_log_is_bounded(trace_app, cli, tmp_path):
    out = tmp_path / "trace.txt"
    r = cli("simulate", str(trace_app), "--duration", "10m", "--trace-log", str(out), "--trace-limit", "6")
    assert r.code == 0, r.err
    lines = out.read_text().splitlines()
    assert len(lines) == 7
    assert lines[-1] == "# %d more trace/log lines not written (--trace-limit 6)" % (9 * 4 + 4 - 6)  # 9 ticks, 4 logs


def test_helper_table_leaves_printk_varargs_unchecked():
    spec = linux_helpers().get(6)
    assert spec.args[2:] == ("ARG_DONTCARE",) * 3


def test_node_trace_log_and_pin_dir(trace_app, cli, tmp_path):
    manifest = trace_app / "app.json"
    manifest.write_text(manifest.read_text().replace('"period": "1m"', '"period": "200ms"'))
    out = tmp_path / "node.txt"
    pins = tmp_path / "pins"
    r = cli("node", str(trace_app), "--platform", "linux", "--duration", "1s", "--trace-log", str(out),
            "--pin-dir", str(pins))
    assert r.code == 0, r.err
    lines = out.read_text().splitlines()
    assert lines and all(" trace_app " in line for line in lines)
    assert any(line.endswith("bpf_trace_printk: tick 1") for line in lines)
    ticks = cli("map", "dump", str(pins / "trace_app" / ".bss.pin"), "--json")
    count = len([line for line in lines if line.endswith("bpf_trace_printk: tick")])
    assert json.loads(ticks.out)["maps"][0]["entries"][0]["value_decoded"] == {"ticks": count}


@pytest.mark.parametrize("argv,message", [
    (("--trace-limit", "-3", "--trace-log", "-"), "--trace-limit must be >= 0"),
    (("--trace-log", "/nonexistent/dir/trace.txt"), "cannot write trace log"),
    (("--events-out", "/nonexistent/dir/events.jsonl"), "cannot write events file"),
])
def test_bad_trace_options_are_one_line_errors(cli, argv, message):
    r = cli("simulate", "sensor_node", "--duration", "1h", *argv)
    assert r.code == 2 and r.err.startswith("error: ") and message in r.err
