"""Map views behave like Python mappings for every key shape (struct keys as hashable named
tuples, byte arrays as bytes, prog_array entries by index), `map dump` decodes through BTF like
`bpftool map dump` (raw hex on request), and pinned maps can be changed from the command line."""

import json

import pytest

from conftest import REPO
from iotbpf import Program

SOURCE = REPO / "tests" / "c" / "map_views.c"
MAC = bytes.fromhex("deadbeef0001")


@pytest.fixture
def obj(clang, tmp_path):
    return clang.compile(SOURCE, out=tmp_path / "map_views.o")


@pytest.fixture
def prog(obj):
    return Program.from_file(str(obj), section="first")


def test_struct_keys_are_hashable_named_tuples(prog):
    flows = prog.maps["flows"]
    flows[{"addr": 0x0A000001, "port": 80, "proto": 6}] = {"packets": 1, "bytes": 2}
    prog.run(mem=bytes(96))
    table = dict(flows)
    (key, value), = table.items()
    assert (key.addr, key.port, key.proto) == (0x0A000001, 80, 6)
    assert value == {"packets": 2, "bytes": 102}  # the program counted into it
    assert flows[key] == value  # the named tuple is accepted back
    assert flows[(0x0A000001, 80, 6)] == value  # so is a plain tuple


def test_lpm_keys_with_byte_arrays(prog):
    lpm = prog.maps["lpm"]
    lpm[(24, bytes([10, 1, 2, 0]))] = 7
    assert dict(lpm) == {(24, b"\x0a\x01\x02\x00"): 7}
    key = next(iter(lpm))
    assert key.prefixlen == 24 and key.data == b"\x0a\x01\x02\x00"
    assert prog.run(mem=bytes(96)) == 70  # 10.1.2.3 matches 10.1.2.0/24


def test_byte_array_keys_are_bytes(prog):
    macs = prog.maps["macs"]
    macs[MAC] = 5
    prog.run(mem=bytes(96))
    assert dict(macs) == {MAC: 6}
    del macs[MAC]
    assert len(macs) == 0


def test_prog_array_view_lists_its_programs(prog):
    chain = prog.maps["chain"]
    assert dict(chain) == {1: "second", 3: "third"}
    chain[0] = prog
    assert chain[0] == "first" and len(chain) == 3
    del chain[0]
    assert list(chain) == [1, 3]


def test_map_dump_decodes_through_btf(obj, cli):
    r = cli("map", "dump", str(obj))
    assert r.code == 0, r.err
    assert "map chain: prog_array" in r.out
    assert '  key: 1  value: "second"' in r.out


def test_map_dump_hex_on_request(clang, cli, tmp_path):
    obj = clang.compile(REPO / "tests" / "c" / "globals_views.c", out=tmp_path / "g.o")
    r = cli("map", "dump", str(obj), "--map", ".rodata", "--hex")
    assert r.code == 0, r.err
    assert r.out.splitlines()[1] == ("  key: 00 00 00 00  value: 64 00 00 00 c8 00 00 00 03 00 00 00 "
                                     "00 00 00 00 0d f0 fe ca 00 00 00 00")
    r = cli("map", "dump", str(obj), "--map", ".rodata")
    assert r.out.splitlines()[1] == '  key: 0  value: {"limits": [100, 200], "level": 3, "magic": 3405705229}'


def test_map_dump_unknown_map_is_an_error(obj, cli):
    r = cli("map", "dump", str(obj), "--map", "nope")
    assert r.code == 2 and r.err.startswith("error: ") and "flows" in r.err


def test_pin_dir_then_update_and_delete_from_the_command_line(cli, tmp_path):
    pins = tmp_path / "pins"
    r = cli("simulate", "rx_filter", "--duration", "1h", "--pin-dir", str(pins))
    assert r.code == 0, r.err
    pin = pins / "rx_filter" / "blocklist.pin"
    dump = cli("map", "dump", str(pin), "--json")
    assert json.loads(dump.out)["maps"][0]["name"] == "blocklist"
    assert cli("map", "update", str(pin), "--key", "99", "--value", "1").code == 0
    assert cli("map", "update", str(pin), "--key-hex", "02 00 00 00", "--value-hex", "01000000").code == 0
    entries = json.loads(cli("map", "dump", str(pin), "--json").out)["maps"][0]["entries"]
    assert sorted(e["key_decoded"] for e in entries) == [2, 99]
    assert cli("map", "delete", str(pin), "--key", "99").code == 0
    again = cli("map", "delete", str(pin), "--key", "99")
    assert again.code == 1 and "no such key" in again.err
    bad = cli("map", "update", str(pin), "--key", "{", "--value", "1")
    assert bad.code == 2 and "not JSON" in bad.err
    # the next boot restores the changed map: source 2's packets are now dropped
    before = cli("simulate", "rx_filter", "--duration", "1h", "--json")
    after = cli("simulate", "rx_filter", "--duration", "1h", "--json", "--pin-dir", str(pins))
    dropped = [json.loads(x.out)["run"]["radio"]["rx"]["dropped"] for x in (before, after)]
    assert dropped[1] > dropped[0]
