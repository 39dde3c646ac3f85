"""CLI: iotbpf run / asm / disasm / conformance, including bad input (one error line, exit 2)."""

import json

import pytest

from conftest import run_cli_subprocess


@pytest.fixture
def prog(tmp_path):
    path = tmp_path / "p.s"
    path.write_text("ldxb %r0, [%r1+1]\nadd %r0, %r2\nexit\n")
    return path


def test_run_prints_r0_once_per_input(cli, prog):
    r = cli("run", prog, "--mem", "01 02", "--mem", "0x0a0b0c")
    assert r.code == 0 and r.out == "0x4\n0xe\n"


def test_run_uses_the_mem_of_a_data_file(cli, conformance_dir):
    r = cli("run", conformance_dir / "mem-len.data")
    assert (r.code, r.out) == (0, "0x8\n")


def test_run_json_trace_and_profile(cli, prog):
    r = cli("run", prog, "--mem", "0102", "--json")
    data = json.loads(r.out)
    assert data["version"] == 1 and data["results"][0]["r0"] == 4 and data["results"][0]["insns"] == 3
    r = cli("run", prog, "--mem", "0102", "--trace", "--profile")
    lines = r.out.splitlines()
    assert lines[0].split() == ["0:", "ldxb", "%r0,", "[%r1+1]", "r0=0x2"]
    assert "total 3 instructions" in r.out and lines[-1] == "0x4"


def test_run_fault_prints_one_error_line_and_exits_1(cli, prog):
    r = cli("run", prog, "--mem", "01")
    assert r.code == 1
    head, _, tail = r.err.partition(" at 0x")
    assert head == "error: pc 0: ldxb %r0, [%r1+1]: out-of-bounds read of 1 bytes"
    assert tail.endswith("01 (mem+1): region mem is 1 bytes [%s:1: ldxb %%r0, [%%r1+1]]\n" % prog)
    assert r.err.count("\n") == 1


def test_run_budget(cli, tmp_path):
    path = tmp_path / "loop.s"
    path.write_text("l:\nja l\n")
    r = cli("run", path, "--budget", "50")
    assert r.code == 1 and "instruction budget exhausted (50 instructions)" in r.err


def test_run_json_reports_a_fault(cli, prog):
    r = cli("run", prog, "--json")
    assert r.code == 1 and json.loads(r.out)["results"][0]["kind"] == "oob"


@pytest.mark.parametrize("content, suffix, words", [
    (b"\x95\x00\x00\x00\x00\x00\x00\x00\x95\x00", ".bin", ["truncated", "10 bytes"]),
    (b"mov %r0, 1\nfrobnicate %r0\nexit\n", ".s", ["line 2", "unknown mnemonic"]),
    (b"mov %r12, 1\nexit\n", ".s", ["line 1", "no such register"]),
    (b"ja missing\nexit\n", ".s", ["undefined label 'missing'"]),
    (b"-- asm\nexit\n-- mem\nzz\n-- result\n0\n", ".data", ["bad hex byte"]),
    (b"\xff\xfe", ".s", ["not a text file"]),
    (b"", ".xyz", ["unknown program file type"]),
])
def test_bad_input_files(cli, tmp_path, content, suffix, words):
    path = tmp_path / ("bad" + suffix)
    path.write_bytes(content)
    r = cli("run", path)
    assert r.code == 2 and r.out == ""
    assert r.err.startswith("error: ") and r.err.count("\n") == 1
    for word in words:
        assert word in r.err


def test_bad_mem_and_missing_file(cli, prog, tmp_path):
    r = cli("run", prog, "--mem", "0g")
    assert r.code == 2 and "bad --mem" in r.err
    r = cli("run", tmp_path / "nope.s")
    assert r.code == 2 and r.err.startswith("error: ")


def test_asm_then_disasm_round_trips(cli, tmp_path, conformance_dir):
    src = conformance_dir / "call_local.data"
    r = cli("disasm", src)
    assert r.code == 0 and "call local L" in r.out
    text = tmp_path / "p.s"
    text.write_text(r.out)
    out = tmp_path / "p.bin"
    r = cli("asm", text, "-o", out)
    assert r.code == 0 and out.exists()
    r2 = cli("disasm", out)
    assert r2.out == text.read_text()
    r = cli("run", out)
    assert r.out == "0x1\n"


def test_asm_default_output_name(cli, prog):
    r = cli("asm", prog)
    assert r.code == 0 and prog.with_suffix(".bin").read_bytes()[:1] == b"\x71"


def test_conformance_command_counts(cli, conformance_dir, tmp_path):
    r = cli("conformance", conformance_dir)
    assert r.code == 0 and r.out.splitlines()[-1] == "313 passed, 0 failed"
    bad = tmp_path / "wrong.data"
    bad.write_text("-- asm\nmov %r0, 1\nexit\n-- result\n0x2\n")
    r = cli("conformance", bad, conformance_dir / "add.data")
    assert r.code == 1
    assert r.out == "FAIL %s [interp]: expected 0x2, got 0x1\n1 passed, 1 failed\n" % bad


def test_conformance_missing_path_is_bad_usage(cli, tmp_path):
    r = cli("conformance", tmp_path / "none")
    assert r.code == 2 and "no such file" in r.err


def test_subprocess_run_has_no_traceback(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x95" * 3)
    proc = run_cli_subprocess("run", path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: truncated program")


def test_run_verify_rejects_an_unsafe_program_before_running(cli, tmp_path):
    path = tmp_path / "v.s"
    path.write_text("ldxdw %r0, [%r1+8]\nexit\n")
    r = cli("run", path, "--mem", "0011", "--verify")
    assert r.code == 1 and r.out == "" and r.err.startswith("error: pc 0: ldxdw %r0, [%r1+8]: ")
    r = cli("run", path, "--mem", "00" * 16, "--verify")
    assert (r.code, r.out) == (0, "0x0\n")


C_PROGRAM = r"""
#define SEC(x) __attribute__((section(x), used))
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *) 1;
struct { int type, key_size, value_size, max_entries, flags; } counts SEC("maps") = {2, 4, 8, 4, 0};
unsigned long long total = 0;
static __attribute__((noinline)) int sq(int x) { return x * x; }
SEC("prog") int handler(unsigned char *mem) {
    int k = 1;
    unsigned long long *v = bpf_map_lookup_elem(&counts, &k);
    if (!v) return 0;
    *v += 1;
    total += sq(mem[0]);
    return *v + total;
}
"""


def test_run_an_elf_object_with_maps_globals_and_calls(cli, clang, tmp_path):
    obj = clang.compile(C_PROGRAM, out=tmp_path / "t.o")
    r = cli("run", obj, "--mem", "03", "--mem", "04")
    # maps and globals keep their values across the inputs of one run command
    assert (r.code, r.out) == (0, "0xa\n0x1b\n")
    r = cli("run", obj)
    assert r.code == 1 and "NULL" in r.err and "total += sq(mem[0]);" in r.err
