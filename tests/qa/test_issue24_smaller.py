"""Issue 24, point 11: the smaller items, each a regression test (bad input -> one clean error)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import REPO
from iotbpf.ebpf.engines.vm import VM
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.loader.bundle import load_bundle_object, save_bundle
from iotbpf.ebpf.loader.elf import load_elf_object
from iotbpf.ebpf.program import Program
from tests.qa.test_bad_inputs import assert_one_error_line

SENSOR_NODE = REPO / "apps" / "sensor_node"
NESTED = "[" * 5000


@pytest.fixture(scope="module")
def real_report(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "real_report.json"
    proc = subprocess.run([sys.executable, "-m", "iotbpf", "simulate", str(SENSOR_NODE), "--duration", "10m",
                           "--report", str(path), "--compare", "batching,duty_cycle"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- nested JSON everywhere

@pytest.mark.parametrize("what", ["manifest", "board", "fleet", "events", "plot", "plot-jsonl"])
def test_nested_json_inputs_are_one_clean_error(cli, tmp_path, what):
    (tmp_path / "nested.json").write_text(NESTED)
    (tmp_path / "nested.jsonl").write_text(NESTED + "\n")
    app = tmp_path / "app"
    shutil.copytree(SENSOR_NODE, app)
    (app / "app.json").write_text(NESTED)
    argv = {"manifest": ["simulate", app, "--duration", "1m"],
            "board": ["simulate", "sensor_node", "--duration", "1m", "--board", tmp_path / "nested.json"],
            "fleet": ["simulate", "--fleet", tmp_path / "nested.json", "--backend", "inprocess"],
            "events": ["simulate", "sensor_node", "--duration", "1m", "--events", tmp_path / "nested.jsonl"],
            "plot": ["plot", tmp_path / "nested.json", "-o", tmp_path / "p.png"],
            "plot-jsonl": ["plot", tmp_path / "nested.jsonl", "-o", tmp_path / "p.png"]}[what]
    r = cli(*argv)
    assert_one_error_line(r)       # before: "internal error: RecursionError"
    assert "nested deeper" in r.err or "not valid JSON" in r.err or "JSON" in r.err


def test_manifest_errors_name_the_file(cli, tmp_path):
    app = tmp_path / "myapp"
    shutil.copytree(SENSOR_NODE, app)
    data = json.loads((app / "app.json").read_text())
    data["budget"] = "lots"
    (app / "app.json").write_text(json.dumps(data))
    r = cli("simulate", app, "--duration", "1m")
    assert_one_error_line(r)
    assert str(app / "app.json") in r.err and "budget" in r.err   # before: always "app.json: ..."


# --------------------------------------------------------------------------- plot

def test_plot_with_null_meta_is_one_clean_error(cli, tmp_path, real_report):
    (tmp_path / "r.json").write_text(json.dumps(dict(real_report, meta=None)))
    r = cli("plot", tmp_path / "r.json", "-o", tmp_path / "p.png")
    assert_one_error_line(r)       # before: internal error; the schema wants meta to be an object
    assert "meta" in r.err


def test_plot_refuses_a_policy_without_a_name(cli, tmp_path, real_report):
    policies = [dict(p) for p in real_report["policies"]]
    del policies[0]["policy"]
    (tmp_path / "r.json").write_text(json.dumps(dict(real_report, policies=policies)))
    r = cli("plot", tmp_path / "r.json", "-o", tmp_path / "p.png")
    assert_one_error_line(r)
    assert "policies/0" in r.err and "'policy' is a required property" in r.err


# --------------------------------------------------------------------------- objects and bundles

PROG_ARRAY = r"""
#include "iotbpf.h"
SEC("radio_rx") int drop_odd(struct iot_radio_rx_ctx *ctx) { return ctx->src & 1; }
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, int (void *));
} jt SEC(".maps") = { .values = { [1] = (void *)&drop_odd } };
SEC("radio_rx") int dispatch(struct iot_radio_rx_ctx *ctx) { bpf_tail_call(ctx, &jt, 1); return 0; }
char LICENSE[] SEC("license") = "GPL";
"""


def test_map_dump_of_an_initialised_prog_array(cli, clang, tmp_path):
    obj = clang.compile(PROG_ARRAY, out=tmp_path / "pa.o")
    r = cli("map", "dump", obj)
    assert r.code == 0, r.err       # before: internal error: AttributeError
    assert 'key: 1  value: "drop_odd"' in r.out
    r = cli("map", "dump", obj, "--json")
    entries = json.loads(r.out)["maps"][0]["entries"]
    assert [(e["key"], e.get("key_decoded"), e.get("value_decoded")) for e in entries] == [("01000000", 1, "drop_odd")]


def test_pack_drops_line_info_past_the_program(tmp_path):
    p = Program.from_asm("mov %r0, 7\nexit", name="p")
    p.section = "timer"
    p.line_info = {0: ("a.c", 1, "x"), 1: ("a.c", 2, "y"), 9: ("a.c", 3, "past the end")}
    data = save_bundle(p, str(tmp_path / "p.ibpf"))
    loaded = load_bundle_object(data).program()     # before: "line info pc ... out of range"
    assert sorted(loaded.line_info) == [0, 1]
    assert VM(loaded).run() == 7


ESCAPE = b"\x1b[2J\nX"


@pytest.fixture
def escaped_object(clang, tmp_path):
    src = ('#include "iotbpf.h"\nSEC("timerQQQQQQ") int a(struct iot_timer_ctx *c) { return 0; }\n'
           'SEC("timer") int b(struct iot_timer_ctx *c) { return 1; }\nchar LICENSE[] SEC("license") = "GPL";\n')
    data = (clang.compile(src, out=tmp_path / "e0.o")).read_bytes().replace(b"QQQQQQ", ESCAPE)
    (tmp_path / "esc.o").write_bytes(data)
    return tmp_path / "esc.o"


@pytest.mark.parametrize("argv", [("run", "{o}"), ("disasm", "{o}"), ("run", "{o}", "--section", "nosuch"),
                                  ("pack", "{o}", "-o", "{d}/e.ibpf"), ("run", "{d}/e.ibpf")])
def test_section_names_are_never_printed_raw(cli, escaped_object, argv):
    d = escaped_object.parent
    if argv[1] == "{d}/e.ibpf":
        cli("pack", escaped_object, "-o", d / "e.ibpf")
    r = cli(*[a.format(o=escaped_object, d=d) for a in argv])
    assert "\x1b" not in r.out + r.err and "timer?[2J?X" in r.out + r.err


def test_deploy_dry_run_leaves_no_temporary_folder(cli, tmp_path, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    r = cli("deploy", "sensor_node", "--to-folder", tmp_path / "fs", "--dry-run")
    assert r.code == 0 and "would copy" in r.out, r.err
    assert list(temp.iterdir()) == []        # before: iotbpf-deploy-XXXX stayed behind


def test_malformed_elf_errors_name_the_structure_and_offset():
    import random

    good = (SENSOR_NODE / "sensor_node.o").read_bytes()
    rng = random.Random(5)
    malformed = 0
    for _ in range(600):
        bad = bytearray(good)
        for _ in range(4):
            bad[rng.randrange(len(bad))] = rng.randrange(256)
        try:
            load_elf_object(bytes(bad))
        except LoadError as exc:
            m = str(exc)
            assert m.startswith("<object>: "), m
            if "malformed" in m:
                malformed += 1
                # before: "malformed BTF: type id 40997 out of range", "malformed ELF object: ..."
                assert "offset 0x" in m or "while reading" in m, m
    assert malformed > 20
