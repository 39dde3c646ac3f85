""".ibpf bundles: a faithful round trip of an ELF object, strict checks on hostile input, and
loading and running under real MicroPython without pyelftools."""

import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO
from iotbpf.ebpf.engines.vm import VM
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.helpers import linux_helpers
from iotbpf.ebpf.loader import bundle
from iotbpf.ebpf.loader.bundle import load_bundle, load_bundle_object, save_bundle
from iotbpf.ebpf.loader.elf import load_elf_object
from iotbpf.ebpf.maps import instantiate
from iotbpf.ebpf.memory import Memory

C_DIR = REPO / "tests" / "c"


@pytest.fixture(scope="module")
def obj_path(clang):
    return clang.compile(C_DIR / "elf_features.c", cpu="v4")


def test_round_trip_keeps_everything(obj_path):
    obj = load_elf_object(obj_path)
    b = load_bundle_object(save_bundle(obj))
    assert b.license == obj.license
    assert b.names() == obj.names()
    assert b.maps == obj.maps
    for name, p in obj.programs.items():
        q = b.programs[name]
        assert q.insns == p.insns
        assert q.line_info == p.line_info
        assert q.labels == p.labels
        assert q.section == p.section


def run_sequence(programs):
    instantiate(list(programs.values()))
    memory = Memory()
    vms = {n: VM(p, helpers=linux_helpers(), memory=memory) for n, p in programs.items()}
    return [vms[n].run() for n in ("timer", "timer", "gpio", "timer", "gpio")]


def test_bundle_runs_like_the_object(obj_path, tmp_path):
    path = tmp_path / "app.ibpf"
    save_bundle(load_elf_object(obj_path), str(path))
    assert run_sequence(load_bundle_object(str(path)).programs) == run_sequence(
        load_elf_object(obj_path).programs)
    assert load_bundle(str(path), section="gpio").section == "gpio"
    with pytest.raises(LoadError, match="choose one with --section"):
        load_bundle(str(path))


def _rebuild(header, blobs, version=1):
    hbytes = json.dumps(header).encode()
    body = struct.pack("<4sHHII", b"IBPF", version, 0, len(hbytes), len(blobs)) + hbytes + blobs
    return body + struct.pack("<I", bundle.fnv1a32(body))


def _split(data):
    _m, _v, _r, hlen, blen = struct.unpack_from("<4sHHII", data, 0)
    return json.loads(data[16:16 + hlen]), data[16 + hlen:16 + hlen + blen]


@pytest.mark.parametrize("mutate,match", [
    (lambda h, b: (h, b, 2), "format version 2 is not supported"),
    (lambda h, b: (dict(h, version=9), b, 1), "header version 9"),
    (lambda h, b: (dict(h, maps=[dict(h["maps"][0], key_size=-1)] + h["maps"][1:]), b, 1),
     "key_size -1 out of range"),
    (lambda h, b: (dict(h, maps=[dict(h["maps"][0], data=[0, 10**9])] + h["maps"][1:]), b, 1),
     "data length"),
    (lambda h, b: (dict(h, maps=h["maps"][:1]), b, 1), "map index .* out of range"),
    (lambda h, b: (dict(h, programs=[dict(h["programs"][0], insns=[0, 12])]), b, 1),
     "not a whole number of slots"),
    (lambda h, b: (dict(h, programs="x"), b, 1), "bad program list"),
])
def test_hostile_headers_are_refused(obj_path, mutate, match):
    header, blobs = _split(save_bundle(load_elf_object(obj_path)))
    h, b, version = mutate(header, blobs)
    with pytest.raises(LoadError, match=match):
        load_bundle_object(_rebuild(h, b, version))


def test_checksum_is_fnv1a_32():
    def reference(data):
        h = 0x811C9DC5
        for b in data:
            h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
        return h

    for data in (b"", b"a", b"hello", bytes(range(256)) * 3):
        assert bundle.fnv1a32(data) == reference(data)


def test_corruption_and_truncation_are_detected(obj_path):
    data = save_bundle(load_elf_object(obj_path))
    with pytest.raises(LoadError, match="not an .ibpf bundle"):
        load_bundle_object(b"ELF!" + data[4:])
    with pytest.raises(LoadError, match="truncated"):
        load_bundle_object(data[:-7])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    with pytest.raises(LoadError, match="checksum"):
        load_bundle_object(bytes(flipped))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=6))
def test_fuzzed_headers_with_valid_checksums_only_raise_load_error(obj_path, flips):
    header, blobs = _split(save_bundle(load_elf_object(obj_path)))
    text = bytearray(json.dumps(header).encode())
    for pos, value in flips:
        text[pos % len(text)] = value
    body = struct.pack("<4sHHII", b"IBPF", 1, 0, len(text), len(blobs)) + bytes(text) + blobs
    data = body + struct.pack("<I", bundle.fnv1a32(body))
    try:
        load_bundle_object(data)
    except LoadError:
        pass


MP_SCRIPT = """
from iotbpf.ebpf.loader.bundle import load_bundle_object
from iotbpf.ebpf.maps import instantiate
from iotbpf.ebpf.helpers import linux_helpers
from iotbpf.ebpf.memory import Memory
from iotbpf.ebpf.engines.vm import VM
import sys
b = load_bundle_object('/root/app.ibpf')
print('elftools' in sys.modules)
instantiate(list(b.programs.values()))
mem = Memory()
vms = {}
for n in b.programs:
    vms[n] = VM(b.programs[n], helpers=linux_helpers(), memory=mem)
print([vms[n].run() for n in ('timer', 'timer', 'gpio', 'timer', 'gpio')])
print(b.license, sorted(b.programs))
"""


def test_bundle_loads_and_runs_under_micropython(micropython, obj_path, tmp_path):
    path = tmp_path / "app.ibpf"
    save_bundle(load_elf_object(obj_path), str(path))
    result = micropython.run(MP_SCRIPT, files={"app.ibpf": path})
    want = run_sequence(load_elf_object(obj_path).programs)
    assert result.stdout.splitlines() == ["False", str(want), "Dual BSD/GPL ['gpio', 'timer']"]


# ------------------------------------------------------------------ CLI
def test_pack_then_run_and_disasm(cli, obj_path, tmp_path):
    out = tmp_path / "x.ibpf"
    r = cli("pack", obj_path, "-o", out)
    assert r.code == 0 and "2 program(s) (timer, gpio)" in r.out
    r = cli("run", out, "--section", "gpio")
    assert r.code == 0 and r.out.strip() == "0x1c"  # weights[1] + generation + *slot: 20 + 3 + 5
    r = cli("disasm", out, "--section", "timer")
    assert r.code == 0 and "call 1" in r.out


def test_pack_errors_are_one_line(cli, tmp_path):
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"not an object")
    r = cli("pack", junk, "-o", tmp_path / "y.ibpf")
    assert r.code == 2 and r.err.startswith("error: ") and "not an ELF object" in r.err
    assert "Traceback" not in r.err
    r = cli("run", tmp_path / "missing.ibpf")
    assert r.code == 2 and r.err.startswith("error: ")


@pytest.mark.parametrize("suffix", [".o", ".ibpf"])
def test_run_verify_and_disasm_accept_objects_and_bundles_by_section(cli, obj_path, tmp_path, suffix):
    path = obj_path
    if suffix == ".ibpf":
        path = tmp_path / "app.ibpf"
        save_bundle(load_elf_object(obj_path), str(path))
    r = cli("verify", path, "--section", "timer")
    assert r.code == 0 and r.out.startswith("ok:") and "hook timer" in r.out
    r = cli("run", path, "--section", "gpio")
    assert r.code == 0 and r.out.strip() == "0x1c"
    r = cli("disasm", path, "--section", "gpio")
    assert r.code == 0 and "lddw %r1, map_fd 0" in r.out
    r = cli("run", path)
    assert r.code == 2 and "choose one with --section" in r.err
