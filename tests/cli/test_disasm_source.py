"""bpftool-like listings of C objects: function names as labels, C source lines, helper and map
names as comments (still assembling to the same program), and disasm/verify/run over every
program of an object."""

import json

import pytest

from conftest import REPO
from iotbpf.ebpf import isa
from iotbpf.ebpf.loader.elf import load_elf_object

C_DIR = REPO / "tests" / "c"


@pytest.fixture(scope="module")
def link_obj(clang):
    return clang.compile(C_DIR / "corpus_link.c")


@pytest.fixture(scope="module")
def views_obj(clang):
    return clang.compile(C_DIR / "map_views.c")


def test_disasm_names_helpers_maps_and_globals(views_obj, cli):
    r = cli("disasm", str(views_obj), "--section", "first")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == "first:"
    assert any(line.startswith("call 1 ") and line.endswith("# map_lookup_elem") for line in lines)
    assert any(line.startswith("lddw %r1, map_fd 1") and line.endswith("# map flows") for line in lines)
    assert any(line.startswith("# ") and line.endswith("map_views.c:45: struct counts *c = "
                                                       "bpf_map_lookup_elem(&flows, &f);") for line in lines)


def test_disasm_names_global_variables(clang, cli):
    obj = clang.compile(C_DIR / "globals_views.c")
    r = cli("disasm", str(obj))
    assert "# .bss+0 (total)" in r.out
    assert "# .data+8 (table)" in r.out and "# .bss+16 (where)" in r.out


def test_annotated_listing_assembles_to_the_same_program(link_obj, cli, tmp_path):
    listing = tmp_path / "p_all.s"
    listing.write_text(cli("disasm", str(link_obj), "--section", "p_all").out)
    r = cli("asm", str(listing), "-o", str(tmp_path / "p_all.bin"))
    assert r.code == 0, r.err
    program = load_elf_object(str(link_obj)).program("p_all")
    assert (tmp_path / "p_all.bin").read_bytes() == isa.encode(program.insns)
    text = listing.read_text()
    for fname in ("p_all:", "global_add:", "square:", "deep:", "twist:"):
        assert fname + "\n" in text
    assert "call local global_add" in text


def test_disasm_without_section_lists_every_program(link_obj, cli):
    r = cli("disasm", str(link_obj), "--no-source")
    headers = [line for line in r.out.splitlines() if line.startswith("# program ")]
    assert headers == ["# program p_none (section prog)", "# program p_square (section prog)",
                       "# program p_deep (section prog)", "# program p_all (section prog)"]
    assert "# corpus_link.c" not in r.out


def test_verify_without_section_verifies_each_program_for_its_hook(clang, cli):
    obj = clang.compile(C_DIR / "loops_unbounded.c")
    r = cli("verify", str(obj), "--json")
    assert r.code == 1
    doc = json.loads(r.out)
    verdicts = dict((p["name"], p["ok"]) for p in doc["programs"])
    assert verdicts == {"counter_vs_reading": False, "while_reading": False, "clamped": True,
                        "two_conditions": True, "ends_by_another_condition": True}
    r = cli("verify", str(obj), "--section", "clamped")
    assert r.code == 0 and "(hook timer)" in r.out  # the function's section names its hook


def test_run_section_all_runs_every_program(link_obj, cli):
    mem = "03000000000000000500000000000000 07000000000000000900000000000000"
    r = cli("run", str(link_obj), "--section", "all", "--mem", mem)
    assert r.code == 0, r.err
    assert r.out.split() == ["p_none:", "0x%x" % (3 * 31 + 5), "p_square:", "0x%x" % (9 + 5),
                             "p_deep:", r.out.split()[5], "p_all:", r.out.split()[7]]
