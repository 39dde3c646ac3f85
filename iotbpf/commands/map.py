"""`iotbpf map dump`: print a pinned map, or the maps and initial global data of a .o/.ibpf."""

from __future__ import annotations

import argparse
import json

from iotbpf.ebpf.errors import IotbpfError
from iotbpf.ebpf.maps import ArrayMap, Map, decode_value

NAME = "map"
HELP = "inspect maps: `map dump FILE` prints a pinned map or an object's maps (hex and decoded)"
# Arrays larger than SHOW_ALL_ARRAY elements list only their non-zero elements.
EXAMPLE = """iotbpf map dump /var/lib/iotbpf/node1/counts.pin
iotbpf map dump apps/sensor_node/sensor_node.o
iotbpf map dump app.ibpf --json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    dump = sub.add_parser("dump", help="print a map's entries (hex, and decoded when BTF types are known)")
    dump.add_argument("file", metavar="FILE|PIN", help="pinned map file, .o or .ibpf")
    dump.add_argument("--json", action="store_true", help="print JSON")


def _load(path: str) -> list:
    """[(MapSpec, [(key bytes, value bytes)])] for a pinned map, an ELF object or a bundle."""
    from iotbpf.ebpf.maps import create_map, instantiate

    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise IotbpfError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    if head == b"\x7fELF" or head == b"IBPF":
        if head == b"IBPF":
            from iotbpf.ebpf.bundle import load_bundle_object as load
        else:
            from iotbpf.ebpf.elf import load_elf_object as load
        obj = load(path)
        progs = list(obj.programs.values())
        maps = instantiate(progs) if progs else {s.name: create_map(s) for s in obj.maps}
        return [(maps[s.name].spec, maps[s.name]) for s in obj.maps]
    from iotbpf.ebpf.pin import load_pinned

    m = load_pinned(path)
    return [(m.spec, m)]


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "\\x%02x" % (ord(ch) & 0xFF) for ch in str(text))


SHOW_ALL_ARRAY = 64  # arrays up to this many elements are shown whole, larger ones sparsely


def _entries(m: Map) -> list:
    if isinstance(m, ArrayMap) and m.max_entries > SHOW_ALL_ARRAY:
        return m.used_items()
    return m.items()


def run(args: argparse.Namespace) -> int:
    out = []
    for spec, m in _load(args.file):
        rows = []
        programs = getattr(spec, "programs", None) or {}
        if programs:   # a prog_array the object initialised: slot -> the function it holds
            for index in sorted(programs, key=int):
                rows.append({"key": int(index).to_bytes(4, "little").hex(), "value": None,
                             "program": programs[index]})
        for key, value in _entries(m):
            if value is None:   # an empty or program slot: no bytes to show
                continue
            row = {"key": key.hex(), "value": value.hex()}
            if spec.key_type is not None and key:
                row["key_decoded"] = decode_value(spec.key_type, key)
            if spec.value_type is not None:
                row["value_decoded"] = decode_value(spec.value_type, value)
            rows.append(row)
        out.append({"name": spec.name, "type": spec.type_name, "key_size": spec.key_size,
                    "value_size": spec.value_size, "max_entries": spec.max_entries,
                    "entries": rows})
    if args.json:
        print(json.dumps({"version": 1, "file": args.file, "maps": out}, indent=2))
        return 0
    for m in out:
        print("map %s: %s, key %d bytes, value %d bytes, max_entries %d, %d entries"
              % (m["name"], m["type"], m["key_size"], m["value_size"], m["max_entries"], len(m["entries"])))
        for row in m["entries"]:
            if "program" in row:
                print("  key %s  program %s" % (row["key"], _printable(row["program"])))
                continue
            line = "  key %s  value %s" % (row["key"] or "-", row["value"])
            if "key_decoded" in row or "value_decoded" in row:
                line += "   # %s = %s" % (json.dumps(row.get("key_decoded", row["key"])),
                                          json.dumps(row.get("value_decoded", row["value"])))
            print(line)
    return 0
