"""The ELF loader on real clang-19 objects: programs by section, maps of every declaration style,
global data, subprograms, line info, -mcpu=v1..v4; and clear errors (never a traceback) for
truncated, foreign, badly relocated, incomplete and fuzzed objects."""

import shutil
import struct
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, missing
from iotbpf.ebpf import types as T
from iotbpf.ebpf.engines.vm import VM
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.helpers import linux_helpers
from iotbpf.ebpf.loader.elf import load_elf, load_elf_object
from iotbpf.ebpf.maps import instantiate
from iotbpf.ebpf.memory import Memory

C_DIR = REPO / "tests" / "c"


@pytest.fixture(scope="module")
def features(clang):
    return clang.compile(C_DIR / "elf_features.c", cpu="v3")


def run_all(obj, calls):
    instantiate(list(obj.programs.values()))
    memory = Memory()
    vms = {n: VM(p, helpers=linux_helpers(), memory=memory) for n, p in obj.programs.items()}
    return [vms[name].run() for name in calls]


def test_programs_maps_license_and_global_data(features):
    obj = load_elf_object(features)
    assert obj.names() == ["timer", "gpio"]
    assert obj.license == "Dual BSD/GPL"
    by_name = {m.name: m for m in obj.maps}
    assert by_name["legacy"].type == T.BPF_MAP_TYPE_ARRAY and by_name["legacy"].value_size == 8
    stats = by_name["stats"]
    assert (stats.type, stats.key_size, stats.value_size, stats.max_entries, stats.pinning) == (
        T.BPF_MAP_TYPE_HASH, 4, 16, 64, 1)
    assert [m["name"] for m in stats.value_type["members"]] == ["packets", "last", "tag"]
    assert by_name[".data"].data == struct.pack("<Q", 3)
    assert by_name[".rodata"].readonly and by_name[".rodata"].data == struct.pack("<4Q", 10, 20, 30, 40)
    assert by_name[".bss"].value_size == 16 and not by_name[".bss"].readonly
    for p in obj.programs.values():
        assert p.maps == obj.maps


@pytest.mark.parametrize("cpu", ["v1", "v2", "v3", "v4"])
def test_programs_run_with_subprograms_and_globals_at_every_cpu(clang, cpu):
    obj = load_elf_object(clang.compile(C_DIR / "elf_features.c", cpu=cpu))
    # timer: creates the entry, then adds weights[7 & 3] + generation = 43 per run
    assert run_all(obj, ["timer", "timer", "timer", "gpio", "gpio"]) == [0, 44, 87, 28, 33]
    assert "weight" in obj.program("timer").labels


def test_section_selection(features):
    assert load_elf(features, section="gpio").section == "gpio"
    with pytest.raises(LoadError, match="choose one with --section"):
        load_elf(features)
    with pytest.raises(LoadError, match="no program section 'nope'"):
        load_elf(features, section="nope")


def test_line_info_covers_main_program_and_subprograms(features):
    p = load_elf(features, section="timer")
    texts = {text.strip() for _f, _l, text in p.line_info.values()}
    assert "v->packets += weight(key);" in texts
    assert "return weights[i & 3] + generation;" in texts
    assert all(0 <= pc < len(p.insns) for pc in p.line_info)


def test_bytes_and_path_give_the_same_program(features):
    a = load_elf(features, section="timer")
    b = load_elf(features.read_bytes(), section="timer")
    assert a.insns == b.insns and a.line_info == b.line_info


# ------------------------------------------------------------------ errors
def expect_error(data, match):
    with pytest.raises(LoadError, match=match):
        load_elf_object(bytes(data))


def test_not_elf_and_truncated(features):
    data = features.read_bytes()
    expect_error(b"hello world", "not an ELF object")
    expect_error(data[:40], "not an ELF object")
    for cut in (100, len(data) // 2, len(data) - 10):
        with pytest.raises(LoadError):
            load_elf_object(data[:cut])


def test_wrong_machine(features, tmp_path):
    data = bytearray(features.read_bytes())
    struct.pack_into("<H", data, 18, 62)
    expect_error(data, "wrong machine x86-64")
    gcc = shutil.which("gcc")
    if gcc is None:
        missing("gcc")
    src = tmp_path / "native.c"
    src.write_text("int f(int x) { return x + 1; }\n")
    subprocess.run([gcc, "-c", str(src), "-o", str(tmp_path / "native.o")], check=True)
    with pytest.raises(LoadError, match="wrong machine x86-64 .*compile with clang -target bpf"):
        load_elf(tmp_path / "native.o")


def test_big_endian_and_executables_are_refused(features):
    data = bytearray(features.read_bytes())
    data[5] = 2
    expect_error(data, "big-endian")
    data = bytearray(features.read_bytes())
    struct.pack_into("<H", data, 16, 2)
    expect_error(data, "not a relocatable object")


def _reloc_entry_offset(path, section):
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        elf = ELFFile(f)
        sec = elf.get_section_by_name(section)
        return sec["sh_offset"]


def test_bad_relocation_type_is_named(features):
    data = bytearray(features.read_bytes())
    off = _reloc_entry_offset(features, ".reltimer")
    r_offset, r_info = struct.unpack_from("<QQ", data, off)
    struct.pack_into("<QQ", data, off, r_offset, (r_info & ~0xFFFFFFFF) | 2)
    expect_error(data, "R_BPF_64_ABS64 relocation at instruction .* of timer")


def test_relocation_to_a_missing_symbol_or_off_an_instruction(features):
    data = bytearray(features.read_bytes())
    off = _reloc_entry_offset(features, ".reltimer")
    r_offset, r_info = struct.unpack_from("<QQ", data, off)
    struct.pack_into("<QQ", data, off, r_offset, (9999 << 32) | (r_info & 0xFFFFFFFF))
    expect_error(data, "symbol 9999, outside the symbol table")
    data = bytearray(features.read_bytes())
    struct.pack_into("<QQ", data, off, r_offset + 8, r_info)
    expect_error(data, "not on a lddw")


def _section_header_offset(path, name):
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        elf = ELFFile(f)
        for i in range(elf.num_sections()):
            if elf.get_section(i).name == name:
                return elf["e_shoff"] + i * elf["e_shentsize"]
    raise AssertionError(name)


def test_missing_sections_are_named(features):
    data = bytearray(features.read_bytes())
    struct.pack_into("<I", data, _section_header_offset(features, ".symtab") + 4, 0)  # SHT_NULL
    expect_error(data, r"no symbol table \(.symtab\)")
    data = bytearray(features.read_bytes())
    struct.pack_into("<I", data, _section_header_offset(features, ".reltimer") + 44, 999)  # sh_info
    expect_error(data, "section index 999 out of range")


def test_btf_maps_without_btf_and_unresolved_externs(clang):
    src = C_DIR / "elf_features.c"
    nobtf = clang.compile(src, extra=("-g0",))
    with pytest.raises(LoadError, match=r"\.maps needs BTF"):
        load_elf_object(nobtf)
    ext = clang.compile('#include "iotbpf.h"\nextern __u32 shared_counter;\n'
                        'SEC("timer") int f(void *c) { return shared_counter; }\n')
    with pytest.raises(LoadError, match="unresolved external symbol shared_counter"):
        load_elf_object(ext)


def test_core_relocations_are_refused_by_name(clang):
    obj = clang.compile('#include "iotbpf.h"\n'
                        'struct task { int pid; int tgid; } __attribute__((preserve_access_index));\n'
                        'SEC("timer") int f(struct task *t) { return t->tgid; }\n')
    with pytest.raises(LoadError, match="CO-RE relocations"):
        load_elf_object(obj)


def test_pointers_in_global_data_are_refused_by_name(clang):
    obj = clang.compile('#include "iotbpf.h"\nint x;\nint *px = &x;\n'
                        'SEC("timer") int f(void *c) { return *px; }\n')
    with pytest.raises(LoadError, match=r"relocations in data section \.data"):
        load_elf_object(obj)


def test_prog_array_initialiser_fills_the_slots(clang, tmp_path):
    obj_path = clang.compile(
        '#include "iotbpf.h"\nint second(void *c);\n'
        'struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 4); __type(key, __u32);\n'
        '  __array(values, int (void *)); } jt SEC(".maps") = { .values = { [2] = (void *)&second } };\n'
        'SEC("timer") int first(void *c) { bpf_tail_call(c, &jt, 2); return 1; }\n'
        'SEC("gpio") int second(void *c) { return 7; }\n')
    obj = load_elf_object(obj_path)
    assert obj.maps[0].programs == {2: "second"}
    assert run_all(obj, ["timer"]) == [7]
    from iotbpf.ebpf.loader.bundle import load_bundle_object, save_bundle

    again = load_bundle_object(save_bundle(obj))
    assert again.maps[0].programs == {2: "second"}
    assert run_all(again, ["timer"]) == [7]


def test_map_of_maps_entry_of_another_shape_is_refused_clearly(clang):
    obj = clang.compile(
        '#include "iotbpf.h"\nstruct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);\n'
        '  __type(key, __u32); __type(value, __u32); } in1 SEC(".maps");\n'
        'struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);\n'
        '  __type(key, __u32); __type(value, __u64); } wide SEC(".maps");\n'
        'struct { __uint(type, 12); __uint(max_entries, 2); __type(key, __u32);\n'
        '  __array(values, struct inner); } outer SEC(".maps") = { .values = { &in1, &wide } };\n'
        'SEC("timer") int f(void *c) { return 0; }\n')
    with pytest.raises(LoadError, match="map outer: entry 1 .wide. does not match the inner map definition"):
        load_elf_object(obj)


def test_several_programs_in_one_section_are_named_by_function(clang):
    obj = load_elf_object(clang.compile(
        '#include "iotbpf.h"\nstatic __noinline int twice(int x) { return x * 2; }\n'
        'SEC("timer") int first(void *c) { return twice(20) + 2; }\n'
        'SEC("timer") int second(void *c) { return twice(3); }\n'))
    assert obj.names() == ["first", "second"]
    assert [VM(obj.program(n)).run() for n in obj.names()] == [42, 6]
    assert obj.program("second").section == "timer"
    with pytest.raises(LoadError, match="section timer holds 2 programs .first, second.: name the function"):
        obj.program("timer")


def test_large_global_buffers_are_addressable(clang):
    obj = load_elf_object(clang.compile(
        '#include "iotbpf.h"\n__u8 buf[10000];\n__u64 big[2000] = {1};\n'
        'SEC("timer") __u64 f(void *c) { buf[9999] += 7; big[1999] += buf[9999]; '
        'return big[1999] + big[0]; }\n'))
    assert run_all(obj, ["timer", "timer"]) == [8, 22]


def test_text_only_object_is_one_program(clang):
    obj = load_elf_object(clang.compile("unsigned long long f(void) { return 41 + 1; }\n"))
    assert obj.names() == [".text"]
    assert VM(obj.program()).run() == 42


STRUCTURAL = (".BTF", ".BTF.ext", ".symtab", ".strtab", ".reltimer", ".rel.text", ".relgpio", "timer",
              "gpio", ".text", ".maps", "maps", ".data", ".rodata")


def _structural_ranges(path):
    """(offset, size) of the sections the loader interprets, and of the section headers."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        elf = ELFFile(f)
        out = [(s["sh_offset"], s["sh_size"]) for s in elf.iter_sections() if s.name in STRUCTURAL]
        out.append((elf["e_shoff"], elf["e_shnum"] * elf["e_shentsize"]))
        out.append((0, 64))
    return out


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 1 << 20), st.integers(0, 255)),
                min_size=1, max_size=6),
       st.one_of(st.none(), st.integers(0, 1 << 20)))
def test_fuzzed_objects_never_raise_anything_but_load_error(features, flips, cut):
    data = bytearray(features.read_bytes())
    ranges = _structural_ranges(features)
    for which, pos, value in flips:
        off, size = ranges[which % len(ranges)]
        data[(off + pos % max(size, 1)) % len(data)] = value
    if cut is not None:
        data = data[:cut % len(data)]
    try:
        obj = load_elf_object(bytes(data))
    except LoadError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for p in obj.programs.values():
        assert isinstance(p.insns, list)
