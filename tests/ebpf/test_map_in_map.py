"""Maps of maps (ARRAY_OF_MAPS, HASH_OF_MAPS) from BTF definitions: the loader takes the inner
template and initial entries, the verifier types a lookup as "inner map or NULL", programs use
the inner map on both engines, and views and `map dump` list the entries."""

import struct

import pytest

from conftest import REPO
from iotbpf import IotbpfError, Program
from iotbpf.ebpf import types as T
from iotbpf.ebpf.errors import VerifierError
from iotbpf.ebpf.loader.elf import load_elf_object

SOURCE = REPO / "tests" / "c" / "map_in_map.c"


def mem(which, add, slot):
    return struct.pack("<4Q", which, add, slot, 0)


@pytest.fixture
def obj(clang, tmp_path):
    return clang.compile(SOURCE, out=tmp_path / "mim.o")


def test_loader_reads_template_and_initial_entries(obj):
    o = load_elf_object(str(obj))
    specs = dict((m.name, m) for m in o.maps)
    template, entries = specs["outer"].inner
    assert o.maps[template].name == "inner_a" and entries == {0: "inner_a", 1: "inner_b"}
    template, entries = specs["by_id"].inner
    assert o.maps[template].name == "by_id.inner" and entries == {}
    assert (specs["by_id"].type, o.maps[template].type) == (T.BPF_MAP_TYPE_HASH_OF_MAPS, T.BPF_MAP_TYPE_ARRAY)


@pytest.mark.parametrize("engine", ["interp", "compiled"])
def test_programs_reach_the_inner_maps(obj, engine):
    prog = Program.from_file(str(obj), section="prog")
    prog.verify(mem_size=32)
    assert prog.run(mem=mem(1, 5, 2), engine=engine) == 5
    assert prog.run(mem=mem(1, 5, 2), engine=engine) == 10
    assert prog.run(mem=mem(0, 3, 2), engine=engine) == 3  # inner_a is a different map
    assert prog.run(mem=mem(9, 1, 0), engine=engine) == 1000  # no inner map there: NULL
    assert prog.maps["inner_b"][2] == 10 and prog.maps["inner_a"][2] == 3


def test_views_list_and_set_inner_maps(obj):
    prog = Program.from_file(str(obj), section="prog")
    assert dict(prog.maps["outer"]) == {0: "inner_a", 1: "inner_b"}
    assert dict(prog.maps["by_id"]) == {}
    prog.maps["by_id"][7] = prog.maps["inner_b"]
    prog.run(mem=mem(0, 1, 3))
    assert prog.maps["inner_b"][3] == 1  # the hash of maps' entry 7 was bumped
    with pytest.raises(IotbpfError, match="takes maps"):
        prog.maps["by_id"][8] = 5


def test_map_dump_names_inner_maps(obj, cli):
    r = cli("map", "dump", str(obj), "--map", "outer")
    assert r.out.splitlines()[1:] == ['  key: 0  value: "inner_a"', '  key: 1  value: "inner_b"']


def test_inner_map_must_be_checked_for_null(clang):
    src = SOURCE.read_text().replace("if (!m)\n\t\treturn 1000;", "")
    prog = Program.from_file(str(clang.compile(src)), section="prog")
    with pytest.raises(VerifierError, match="inner map reference that may be NULL"):
        prog.verify(mem_size=32)


def test_programs_cannot_update_a_map_of_maps(clang):
    src = SOURCE.read_text().replace("__u32 id = 7;", "__u32 id = 7; bpf_map_delete_elem(&outer, &id);")
    prog = Program.from_file(str(clang.compile(src)), section="prog")
    with pytest.raises(VerifierError):
        prog.verify(mem_size=32)


def test_bundles_carry_maps_of_maps(obj, cli, tmp_path):
    bundle = tmp_path / "mim.ibpf"
    assert cli("pack", str(obj), "-o", str(bundle)).code == 0
    prog = Program.from_file(str(bundle), section="prog")
    prog.verify(mem_size=32)
    assert prog.run(mem=mem(1, 4, 0)) == 4
    assert dict(prog.maps["outer"]) == {0: "inner_a", 1: "inner_b"}

