"""Differential C corpus: the same C built with clang -target bpf at -mcpu=v1..v4 and run in the
VM gives the same answers as the C built natively with gcc, for many random inputs. Multi-program
objects are linked as libbpf links them: each program gets exactly the .text subprograms it
reaches, relocated for it."""

import random
import shutil
import struct
import subprocess

import pytest

from conftest import REPO, missing
from iotbpf.ebpf.engines.vm import VM
from iotbpf.ebpf.helpers import linux_helpers
from iotbpf.ebpf.loader.elf import load_elf_object
from iotbpf.ebpf.maps import instantiate
from iotbpf.ebpf.verifier import verify

C_DIR = REPO / "tests" / "c"
CORPUS = ["corpus_globals", "corpus_recursion", "corpus_loops", "corpus_signed", "corpus_bswap"]
CPUS = ["v1", "v2", "v3", "v4"]
M64 = (1 << 64) - 1


def inputs(n=48, seed=1234):
    rng = random.Random(seed)
    edge = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x8000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
            1 << 63, M64, M64 - 1, 0x0123456789ABCDEF]
    out = []
    for i in range(n):
        row = []
        for _ in range(4):
            row.append(rng.choice(edge) if i % 3 == 0 else rng.getrandbits(rng.choice((8, 16, 32, 64))))
        out.append(row)
    return out


@pytest.fixture(scope="module")
def gcc(tmp_path_factory):
    path = shutil.which("gcc") or shutil.which("cc")
    if path is None:
        missing("gcc")
    return path, tmp_path_factory.mktemp("native")


def native_results(gcc, name, cpu, rows, entry="run"):
    path, workdir = gcc
    exe = workdir / ("%s_%s_%s" % (name, cpu, entry))
    if not exe.exists():
        cmd = [path, "-O2", "-DCPU=%s" % cpu[1:], "-Drun=%s" % entry, "-I", str(C_DIR), "-o", str(exe),
               str(C_DIR / "native_main.c"), str(C_DIR / (name + ".c"))]
        subprocess.run(cmd, check=True, capture_output=True)
    text = "".join("%x %x %x %x\n" % tuple(r) for r in rows)
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True).stdout
    return [int(line, 16) for line in out.split()]


@pytest.mark.parametrize("engine", ["interp", "compiled"])
@pytest.mark.parametrize("cpu", CPUS)
@pytest.mark.parametrize("name", CORPUS)
def test_bpf_build_matches_native_build(clang, gcc, name, cpu, engine):
    obj = load_elf_object(clang.compile(C_DIR / (name + ".c"), cpu=cpu))
    program = obj.program("prog")
    instantiate(program)
    vm = VM(program, helpers=linux_helpers(), budget=1_000_000, engine=engine)
    rows = inputs()
    want = native_results(gcc, name, cpu, rows)
    got = [vm.run(mem=struct.pack("<4Q", *r)) for r in rows]
    assert got == want


def test_line_info_names_the_c_source(clang):
    program = load_elf_object(clang.compile(C_DIR / "corpus_globals.c")).program("prog")
    files = {f for f, _line, _text in program.line_info.values()}
    assert any(f.endswith("corpus_globals.c") for f in files)
    texts = [text for _f, _line, text in program.line_info.values()]
    assert any("histogram[in->a & 7] += 1;" in t for t in texts)


# ---------------------------------------------------------------- per-program linking
# program -> the functions it reaches (itself first)
REACHES = {
    "corpus_link": {
        "p_none": {"p_none"},
        "p_square": {"p_square", "global_add", "square"},
        "p_deep": {"p_deep", "deep", "twist"},
        "p_all": {"p_all", "global_add", "square", "deep", "twist"},
    },
    "corpus_link2": {
        "q_one": {"q_one", "shared", "fold"},
        "q_two": {"q_two", "shared", "fold"},
        "q_plain": {"q_plain"},
    },
}
CASES = [(src, prog) for src, progs in REACHES.items() for prog in progs]


@pytest.mark.parametrize("src,prog", CASES)
def test_each_program_gets_exactly_the_functions_it_reaches(clang, src, prog):
    program = load_elf_object(clang.compile(C_DIR / (src + ".c"))).program(prog)
    assert set(program.labels) == REACHES[src][prog]
    assert program.labels[prog] == 0
    verify(program, helpers=linux_helpers(), mem_size=32)


@pytest.mark.parametrize("engine", ["interp", "compiled"])
@pytest.mark.parametrize("cpu", ["v1", "v3", "v4"])
@pytest.mark.parametrize("src,prog", CASES)
def test_linked_program_matches_native_build(clang, gcc, src, prog, cpu, engine):
    program = load_elf_object(clang.compile(C_DIR / (src + ".c"), cpu=cpu)).program(prog)
    instantiate(program)
    vm = VM(program, helpers=linux_helpers(), budget=1_000_000, engine=engine)
    rows = inputs(24, seed=25)
    want = native_results(gcc, src, cpu, rows, entry=prog)
    assert [vm.run(mem=struct.pack("<4Q", *r)) for r in rows] == want


def test_subprogram_line_info_follows_it_into_each_program(clang):
    obj = load_elf_object(clang.compile(C_DIR / "corpus_link.c"))
    for name in ("p_deep", "p_all"):
        program = obj.program(name)
        pc = program.labels["twist"]
        assert "mix[x & 3]" in program.line_info[pc][2]


def test_section_with_several_programs_lists_them(clang):
    obj = load_elf_object(clang.compile(C_DIR / "corpus_link2.c"))
    assert [p.name for p in obj._by_section["prog2"]] == ["q_two", "q_plain"]
