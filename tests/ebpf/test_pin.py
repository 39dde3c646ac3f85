"""Pinned maps: save and reload every kind of map, crash-safe writes (a torn temporary file never
replaces the pin), damage detection, version checks, `iotbpf map dump`, and MicroPython."""

import json
import struct

import pytest

from iotbpf.ebpf import types as T
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.loader import pin
from iotbpf.ebpf.maps import create_map


def u32(x):
    return struct.pack("<I", x)


def counters():
    spec = T.MapSpec("counts", T.BPF_MAP_TYPE_HASH, 4, 8, 16,
                     key_type={"kind": "int", "size": 4, "signed": False},
                     value_type={"kind": "struct", "size": 8, "members": [
                         {"name": "lo", "offset": 0, "type": {"kind": "int", "size": 4, "signed": False}},
                         {"name": "hi", "offset": 4, "type": {"kind": "int", "size": 4, "signed": True}}]})
    m = create_map(spec)
    m.update(u32(1), struct.pack("<Ii", 5, -2))
    m.update(u32(2), struct.pack("<Ii", 7, 3))
    return m


def test_pin_and_reload(tmp_path):
    path = str(tmp_path / "counts.pin")
    m = counters()
    pin.pin_map(m, path)
    again = pin.load_pinned(path)
    assert again.items() == m.items()
    assert again.spec.to_dict() == m.spec.to_dict()


@pytest.mark.parametrize("spec,fill", [
    (T.MapSpec("a", T.BPF_MAP_TYPE_ARRAY, 4, 4, 100), lambda m: m.update(u32(42), u32(9))),
    (T.MapSpec("l", T.BPF_MAP_TYPE_LRU_HASH, 4, 4, 3),
     lambda m: [m.update(u32(k), u32(k)) for k in (1, 2, 3)] and m.lookup_slot(u32(1))),
    (T.MapSpec("q", T.BPF_MAP_TYPE_QUEUE, 0, 4, 4), lambda m: [m.push(u32(k)) for k in (1, 2, 3)]),
    (T.MapSpec("p", T.BPF_MAP_TYPE_LPM_TRIE, 8, 4, 4, T.BPF_F_NO_PREALLOC),
     lambda m: m.update(u32(16) + bytes([10, 1, 0, 0]), u32(3))),
    (T.MapSpec("b", T.BPF_MAP_TYPE_BLOOM_FILTER, 0, 4, 64), lambda m: m.push(u32(77))),
    (T.MapSpec("r", T.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096), lambda m: m.output(b"event")),
])
def test_every_map_kind_survives_a_restart(tmp_path, spec, fill):
    path = str(tmp_path / "m.pin")
    m = create_map(spec)
    fill(m)
    pin.pin_map(m, path)
    fresh = create_map(spec)
    assert pin.restore(fresh, path)
    assert fresh.export_state() == m.export_state()
    if spec.type == T.BPF_MAP_TYPE_LRU_HASH:
        fresh.update(u32(9), u32(9))  # evicts 2, the least recently used before the restart
        assert sorted(fresh.keys()) == [u32(1), u32(3), u32(9)]
    if spec.type == T.BPF_MAP_TYPE_BLOOM_FILTER:
        assert fresh.peek(u32(77)) == 0


def test_a_crash_during_a_write_leaves_the_previous_pin(tmp_path):
    path = str(tmp_path / "counts.pin")
    m = counters()
    pin.pin_map(m, path)
    before = open(path, "rb").read()
    m.update(u32(3), bytes(8))
    data = pin.dumps(m)
    with open(path + ".tmp", "wb") as f:  # power cut half way through the next write
        f.write(data[:len(data) // 2])
    assert open(path, "rb").read() == before
    assert pin.load_pinned(path).items() == counters().items()
    pin.pin_map(m, path)  # the next write replaces the torn temporary file
    assert len(pin.load_pinned(path)) == 3


def test_damaged_or_foreign_pins_are_refused(tmp_path):
    path = str(tmp_path / "counts.pin")
    pin.pin_map(counters(), path)
    data = open(path, "rb").read()
    with pytest.raises(LoadError, match="no checksum line"):
        pin.read_pin(data[:len(data) // 2])
    damaged = data.replace(b'"counts"', b'"countz"')
    with pytest.raises(LoadError, match="checksum mismatch"):
        pin.read_pin(damaged)
    doc = json.loads(data.split(b"\nfnv1a32")[0])
    doc["version"] = 2
    body = json.dumps(doc).encode()
    with pytest.raises(LoadError, match="version 2 is not supported"):
        pin.read_pin(body + b"\nfnv1a32 %08x\n" % pin.fnv1a32(body))
    other = create_map(T.MapSpec("x", T.BPF_MAP_TYPE_HASH, 8, 8, 4))
    with pytest.raises(LoadError, match="does not match"):
        pin.restore(other, path)
    assert not pin.restore(other, str(tmp_path / "absent.pin"))


def test_restore_refuses_entries_that_do_not_fit(tmp_path):
    path = str(tmp_path / "counts.pin")
    pin.pin_map(counters(), path)
    small = create_map(T.MapSpec("counts", T.BPF_MAP_TYPE_HASH, 4, 8, 1))
    with pytest.raises(LoadError, match="restoring an entry failed"):
        pin.restore(small, path)


def test_map_dump_cli_decodes_with_types(cli, tmp_path):
    path = tmp_path / "counts.pin"
    pin.pin_map(counters(), str(path))
    r = cli("map", "dump", path)
    assert r.code == 0
    assert "map counts: hash" in r.out
    assert '  key: 1  value: {"lo": 5, "hi": -2}' in r.out
    r = cli("map", "dump", path, "--hex")
    assert "  key: 01 00 00 00  value: 05 00 00 00 fe ff ff ff" in r.out
    r = cli("map", "dump", path, "--json")
    doc = json.loads(r.out)
    assert doc["maps"][0]["entries"][1]["value_decoded"] == {"lo": 7, "hi": 3}
    junk = tmp_path / "junk"
    junk.write_text("nothing")
    r = cli("map", "dump", junk)
    assert r.code == 2 and r.err.startswith("error: ") and "Traceback" not in r.err


MP_SCRIPT = """
import struct
from iotbpf.ebpf import types as T
from iotbpf.ebpf.loader import pin
from iotbpf.ebpf.maps import create_map
m = create_map(T.MapSpec('c', T.BPF_MAP_TYPE_HASH, 4, 8, 8))
for k in range(3):
    m.update(struct.pack('<I', k), struct.pack('<Q', k * 1000))
pin.pin_map(m, '/root/c.pin')
pin.pin_map(m, '/root/c.pin')
again = pin.load_pinned('/root/c.pin')
print(sorted(struct.unpack('<Q', v)[0] for k, v in again.items()))
"""


def test_pinning_works_under_micropython(micropython):
    assert micropython.run(MP_SCRIPT).stdout.split("\n")[0] == "[0, 1000, 2000]"
