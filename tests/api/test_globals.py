"""C globals through their views: each variable at its own BTF DATASEC offset (libbpf's fixup
from symbol values), reads and writes checked against what the program itself reads, and
.rodata refused for writes once the program is loaded."""

import struct

import pytest

from conftest import REPO
from iotbpf import IotbpfError, Program

SOURCE = REPO / "tests" / "c" / "globals_views.c"
SELECT = {"tiny": 0, "scale": 1, "table": 2, "big": 3, "half": 4, "total": 5, "counters": 6,
          "where": 7, "flag_bss": 8, "limits": 9, "level": 10, "magic": 11}


def program_reads(prog, name):
    return prog.run(mem=struct.pack("<4Q", SELECT[name], 0, 0, 0))


@pytest.fixture
def prog(clang):
    return Program.from_file(clang.compile(SOURCE), section="prog")


def test_initial_values_read_at_their_own_offsets(prog):
    m = prog.maps
    assert m["tiny"].value == 7
    assert m["scale"].value == 10
    assert m["table"].value == [1, 2, 3, 4]
    assert m["big"].value == 0x1122334455667788
    assert m["half"].value == 0xBEEF
    assert m["limits"].value == [100, 200]
    assert m["level"].value == 3
    assert m["magic"].value == 0xCAFEF00D
    assert m["where"].value == {"x": 0, "y": 0, "z": 0}


def test_views_agree_with_what_the_program_reads(prog):
    assert program_reads(prog, "table") == 1 | 2 << 8 | 3 << 16 | 4 << 24
    for name in ("tiny", "scale", "big", "half", "limits", "level", "magic"):
        value = prog.maps[name].value
        want = value[0] | value[1] << 32 if name == "limits" else value
        assert program_reads(prog, name) == want, name


def test_writes_land_in_the_variable_and_nowhere_else(prog):
    m = prog.maps
    m["table"].value = [5, 6, 7, 8]
    m["tiny"].value = 0xAB
    m["half"].value = 0x1234
    m["counters"].value = [9, 10, 11]
    m["where"]["y"] = 0x77
    m["where"]["z"] = 5
    m["flag_bss"].value = 1
    assert program_reads(prog, "table") == 5 | 6 << 8 | 7 << 16 | 8 << 24
    assert program_reads(prog, "scale") == 10  # the neighbour of table is untouched
    assert program_reads(prog, "big") == 0x1122334455667788
    assert program_reads(prog, "tiny") == 0xAB
    assert program_reads(prog, "half") == 0x1234
    assert program_reads(prog, "counters") == 9 | 10 << 16 | 11 << 32
    assert program_reads(prog, "where") == 0x77 << 32 | 5 << 48
    assert program_reads(prog, "flag_bss") == 1


def test_program_writes_show_in_the_view(prog):
    before = prog.maps["total"].value
    program_reads(prog, "tiny")
    program_reads(prog, "tiny")
    assert prog.maps["total"].value == before + 2


def test_rodata_write_refused_once_loaded(prog):
    program_reads(prog, "level")
    with pytest.raises(IotbpfError, match="read-only"):
        prog.maps["level"].value = 9
    assert program_reads(prog, "level") == 3


def test_map_dump_shows_each_global_at_its_offset(clang, cli, tmp_path):
    obj = clang.compile(SOURCE, out=tmp_path / "g.o")
    r = cli("map", "dump", str(obj), "--json")
    assert r.code == 0, r.err
    assert '"table": [\n' in r.out or '"table": [1, 2, 3, 4]' in r.out.replace("\n", "").replace("  ", "")
