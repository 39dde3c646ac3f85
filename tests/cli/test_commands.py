"""`iotbpf simulate`, `iotbpf header`, `iotbpf build`: same seed same bytes, clear errors, exit codes."""

import json

from conftest import REPO, run_cli_subprocess


def test_simulate_prints_a_summary_and_is_byte_identical_for_the_same_seed(cli):
    a = cli("simulate", "sensor_node", "--duration", "2d", "--seed", "7")
    b = cli("simulate", "sensor_node", "--duration", "2d", "--seed", "7")
    assert a.code == 0 and a.err == ""
    assert a.out == b.out
    assert "timer" in a.out and "packets sent" in a.out
    c = cli("simulate", "sensor_node", "--duration", "2d", "--seed", "8")
    assert c.out != a.out


def test_simulate_is_byte_identical_across_processes():
    args = ("simulate", "rx_filter", "--duration", "6h", "--seed", "3")
    first = run_cli_subprocess(*args)
    second = run_cli_subprocess(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout


def test_simulate_json_has_a_version_and_the_per_hook_stats(cli):
    r = cli("simulate", "app_monitor", "--duration", "1d", "--json")
    assert r.code == 0
    data = json.loads(r.out)
    assert data["schema"] == "iotbpf.node-result" and data["version"] == 2
    usage = data["run"]["hooks"]["app_usage"]
    assert usage["events"] == usage["runs"] > 0
    assert data["run"]["faults"] == 0


def test_simulate_replays_an_event_file_instead_of_the_generators(cli, tmp_path):
    events = tmp_path / "rx.jsonl"
    lines = ['{"version": 1, "format": "iotbpf-events"}']
    lines += ['{"t": "%ds", "hook": "radio_rx", "src": 5, "len": 20}' % s for s in range(1, 16)]
    events.write_text("\n".join(lines) + "\n")
    r = cli("simulate", "rx_filter", "--duration", "1m", "--events", str(events), "--json")
    assert r.code == 0, r.err
    rx = json.loads(r.out)["run"]["radio"]["rx"]
    assert rx == {"received": 15, "passed": 10, "dropped": 5, "missed": 0}  # 10 per minute per source


def test_simulate_bad_input_is_one_error_line_with_exit_2(cli, tmp_path):
    bad_events = tmp_path / "bad.jsonl"
    bad_events.write_text('{"t": "1s", "hook": "gpio", "pin": "x"}\n')
    for args, message in ((("no_such_app",), "unknown app 'no_such_app'"),
                          (("sensor_node", "--duration", "forever"), "bad duration"),
                          (("sensor_node", "--events", str(tmp_path / "missing.jsonl")), "cannot read events"),
                          (("sensor_node", "--events", str(bad_events)), "line 1: pin must be an integer"),
                          (("sensor_node", "--board", "no_board"), "no_board"),
                          (("sensor_node", "--policy", "nope"), "unknown policy 'nope'")):
        r = cli("simulate", *args)
        assert r.code == 2, (args, r.err)
        assert r.err.startswith("error: ") and r.err.count("\n") == 1, r.err
        assert message in r.err, r.err


def test_a_progress_bar_is_only_drawn_on_a_terminal():
    import os
    import pty
    import subprocess
    import sys

    proc = run_cli_subprocess("simulate", "sensor_node", "--duration", "1d")
    assert proc.returncode == 0 and proc.stderr == ""
    master, slave = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "iotbpf", "simulate", "sensor_node", "--duration", "30d"],
                          stdout=subprocess.PIPE, stderr=slave, cwd=REPO) as tty_proc:
        os.close(slave)
        out, _ = tty_proc.communicate(timeout=600)
        drawn = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    os.close(master)
    assert tty_proc.returncode == 0
    # a label, the percentage, the rate and the time left
    assert b"simulate sensor_node" in drawn and b"%|" in drawn and b"simulated days" in drawn and b"d/s" in drawn
    assert out.startswith(b"node 0: sensor_node, 30d simulated")


def test_header_check_detects_a_stale_header(cli, tmp_path):
    ok = cli("header", "--check", "-o", str(REPO / "apps" / "include" / "iotbpf.h"))
    assert ok.code == 0
    stale = tmp_path / "iotbpf.h"
    stale.write_text("/* old */\n")
    r = cli("header", "--check", "-o", str(stale))
    assert r.code == 1 and "is stale" in r.err
    w = cli("header", "-o", str(stale))
    assert w.code == 0 and stale.read_text() == (REPO / "apps" / "include" / "iotbpf.h").read_text()


def test_build_compiles_an_app_with_clang(cli, clang, tmp_path):
    out = tmp_path / "rx.o"
    r = cli("build", str(REPO / "apps" / "rx_filter"), "-o", str(out), "--clang", clang.path)
    assert r.code == 0, r.err
    assert out.read_bytes()[:4] == b"\x7fELF"


def test_build_reports_compiler_errors_in_one_line(cli, clang, tmp_path):
    app = tmp_path / "broken"
    app.mkdir()
    (app / "broken.c").write_text('#include "iotbpf.h"\nint f( {\n')
    (app / "app.json").write_text(json.dumps({"version": 1, "name": "broken", "object": "broken.o",
                                              "programs": {"timer": "timer"}}))
    r = cli("build", str(app), "--clang", clang.path)
    assert r.code == 1 and r.err.startswith("error: clang failed") and r.err.count("\n") == 1


def test_a_bad_sim_section_is_a_one_line_error(cli, tmp_path):
    app = json.loads((REPO / "apps" / "sensor_node" / "app.json").read_text())
    app["object"] = str(REPO / "apps" / "sensor_node" / "sensor_node.o")
    app.pop("bundle")
    for sim, message in (({"gpio": [{"pin": 1, "rate_per_hour": 0}]}, "rate_per_hour must be a positive"),
                         ({"sensors": [{"id": 0, "mean": [1]}]}, "sim:"),
                         ({"radio": {"bitrate": -5}}, "bitrate must be")):
        app["sim"] = sim
        (tmp_path / "app.json").write_text(json.dumps(app))
        r = cli("simulate", str(tmp_path / "app.json"), "--duration", "1h")
        assert r.code == 2 and r.err.startswith("error: app sensor_node: sim:") and message in r.err, r.err
