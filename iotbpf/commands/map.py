"""`iotbpf map dump|update|delete`: print a pinned map (or the maps and initial global data of a
.o/.ibpf) decoded through BTF like ``bpftool map dump``, and change a pinned map's entries."""

from __future__ import annotations

import argparse
import json
import struct

from iotbpf.ebpf import types as T
from iotbpf.ebpf.errors import IotbpfError, RuntimeFailure
from iotbpf.ebpf.maps import ArrayMap, Map, MapOfMaps, ProgArrayMap, decode_value

NAME = "map"
HELP = "inspect and change maps: `map dump FILE`, `map update PIN`, `map delete PIN`"
# Arrays larger than SHOW_ALL_ARRAY elements list only their non-zero elements.
EXAMPLE = """iotbpf map dump /tmp/pins/rx_filter/rates.pin    # after: iotbpf simulate rx_filter --pin-dir /tmp/pins
iotbpf map dump apps/sensor_node/sensor_node.o
iotbpf map dump app.ibpf --json
iotbpf map dump /tmp/pins/rx_filter/rates.pin --hex
iotbpf map update /tmp/pins/rx_filter/blocklist.pin --key 66 --value 1
iotbpf map delete /tmp/pins/rx_filter/blocklist.pin --key-hex "42 00 00 00"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    dump = sub.add_parser("dump", help="print a map's entries, decoded through BTF when types are known")
    dump.add_argument("file", metavar="FILE|PIN", help="pinned map file, .o or .ibpf")
    dump.add_argument("--json", action="store_true", help="print JSON")
    dump.add_argument("--hex", action="store_true", help="raw key and value bytes in hex, as "
                      "bpftool prints maps without BTF")
    dump.add_argument("--map", metavar="NAME", help="only this map of a .o/.ibpf")
    for action, text in (("update", "write one entry of a pinned map"),
                         ("delete", "delete one entry of a pinned map")):
        p = sub.add_parser(action, help=text)
        p.add_argument("file", metavar="PIN", help="pinned map file (simulate --pin-dir DIR writes them)")
        key = p.add_mutually_exclusive_group(required=True)
        key.add_argument("--key", metavar="JSON", help="key as JSON, encoded through the map's BTF "
                         "types (42, {\"addr\": 1, \"port\": 80}, [10, 0, 0, 1])")
        key.add_argument("--key-hex", metavar="HEX", help="key as raw hex bytes")
        if action == "update":
            value = p.add_mutually_exclusive_group(required=True)
            value.add_argument("--value", metavar="JSON", help="value as JSON (see --key)")
            value.add_argument("--value-hex", metavar="HEX", help="value as raw hex bytes")
            p.add_argument("--flags", choices=("any", "noexist", "exist"), default="any",
                           help="BPF_ANY (default), BPF_NOEXIST or BPF_EXIST")


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
            from iotbpf.ebpf.loader.bundle import load_bundle_object as load
        else:
            from iotbpf.ebpf.loader.elf import load_elf_object as load
        obj = load(path)
        progs = list(obj.programs.values())
        maps = instantiate(progs) if progs else {s.name: create_map(s) for s in obj.maps}
        return [(maps[s.name].spec, maps[s.name]) for s in obj.maps]
    from iotbpf.ebpf.loader.pin import load_pinned

    m = load_pinned(path)
    return [(m.spec, m)]


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "\\x%02x" % (ord(ch) & 0xFF) for ch in str(text))


SHOW_ALL_ARRAY = 64  # arrays up to this many elements are shown whole, larger ones sparsely


def _entries(m: Map) -> list:
    if isinstance(m, ArrayMap) and m.max_entries > SHOW_ALL_ARRAY:
        return m.used_items()
    return m.items()


def _key_type(spec) -> dict | None:
    if spec.key_type is not None:
        return spec.key_type
    if spec.type in (T.BPF_MAP_TYPE_ARRAY, T.BPF_MAP_TYPE_PERCPU_ARRAY, T.BPF_MAP_TYPE_PROG_ARRAY):
        return {"kind": "int", "size": 4, "signed": False}  # an array's key is its u32 index
    return None


def _spaced(data: bytes) -> str:
    return " ".join("%02x" % b for b in data)


def run(args: argparse.Namespace) -> int:
    if args.action != "dump":
        return _change(args)
    out = []
    loaded = _load(args.file)
    if args.map is not None:
        names = [spec.name for spec, _m in loaded]
        loaded = [(spec, m) for spec, m in loaded if spec.name == args.map]
        if not loaded:
            raise IotbpfError("%s has no map %s (maps: %s)" % (args.file, args.map, ", ".join(names)))
    for spec, m in loaded:
        rows = []
        key_type = _key_type(spec)
        nested = isinstance(m, (ProgArrayMap, MapOfMaps))
        for key, value in ([] if nested else _entries(m)):
            row = {"key": key.hex(), "value": value.hex()}
            if key_type is not None and key:
                row["key_decoded"] = decode_value(key_type, key)
            if spec.value_type is not None and (spec.value_type.get("members")
                                                or spec.value_type.get("kind") != "struct"):
                row["value_decoded"] = decode_value(spec.value_type, value)
            rows.append(row)
        if isinstance(m, ProgArrayMap):
            rows = [{"key": struct.pack("<I", i).hex(), "key_decoded": i, "value": "",
                     "value_decoded": getattr(p, "name", "?")} for i, p in sorted(m.programs.items())]
        if isinstance(m, MapOfMaps):
            rows = [{"key": k.hex(), "key_decoded": decode_value(key_type, k) if key_type else k.hex(),
                     "value": "", "value_decoded": inner.name} for k, inner in m.inner_maps()]
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
            if args.hex or "value_decoded" not in row:
                key = _spaced(bytes.fromhex(row["key"])) if row["key"] else "-"
                text = "  key: %s  value: %s" % (key, _spaced(bytes.fromhex(row["value"])))
            else:
                key = json.dumps(row["key_decoded"]) if "key_decoded" in row else _spaced(bytes.fromhex(row["key"]))
                text = "  key: %s  value: %s" % (key or "-", json.dumps(row["value_decoded"]))
            print(text)
    return 0


_FLAGS = {"any": T.BPF_ANY, "noexist": T.BPF_NOEXIST, "exist": T.BPF_EXIST}


def _bytes_of(text_json: str | None, text_hex: str | None, desc: dict | None, size: int, what: str) -> bytes:
    from iotbpf.api.views import encode
    from iotbpf.commands.run import parse_hex

    if text_hex is not None:
        data = parse_hex(text_hex, "--%s-hex" % what)
        if len(data) != size:
            raise IotbpfError("--%s-hex is %d bytes; the map's %ss are %d bytes" % (what, len(data), what, size))
        return data
    try:
        value = json.loads(text_json)
    except ValueError:
        raise IotbpfError("--%s %r is not JSON (a number, an object, a list or a \"string\"); "
                          "use --%s-hex for raw bytes" % (what, text_json, what)) from None
    return encode(desc, size, value, what)


def _change(args: argparse.Namespace) -> int:
    """map update / map delete on a pinned map file, written back crash-safely."""
    from iotbpf.ebpf.loader.pin import load_pinned, pin_map

    try:
        with open(args.file, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise IotbpfError("cannot read %s: %s" % (args.file, exc.strerror or exc)) from None
    if head in (b"\x7fELF", b"IBPF"):
        raise IotbpfError("%s is an object, not a pinned map: pin its maps with `iotbpf simulate APP "
                          "--pin-dir DIR`, then change DIR/<app>/<map>.pin" % args.file)
    m = load_pinned(args.file)
    spec = m.spec
    key = _bytes_of(args.key, args.key_hex, _key_type(spec), m.key_size, "key")
    if args.action == "update":
        value = _bytes_of(args.value, args.value_hex, spec.value_type, m.value_size, "value")
        rc = m.update(key, value, _FLAGS[args.flags])
    else:
        rc = m.delete(key)
    if rc:
        names = {T.ENOENT: "no such key", T.EEXIST: "the key exists (--flags noexist)",
                 T.E2BIG: "the map is full or the index is out of range", T.EINVAL: "not supported "
                 "for a %s map" % spec.type_name, T.EPERM: "the map is read-only"}
        raise RuntimeFailure("map %s: %s refused: %s" % (spec.name, args.action, names.get(-rc, "errno %d" % -rc)))
    pin_map(m, args.file)
    print("%s: %s done" % (spec.name, args.action))
    return 0
