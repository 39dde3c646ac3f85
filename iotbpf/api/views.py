"""Typed views of live eBPF maps: ``MapView`` (one map, dict-like), ``GlobalVariable`` (one C global)
and ``MapsView`` (a node's or a program's maps by name), with the BTF-driven ``encode``/``decode``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

from iotbpf.ebpf import maps as _maps
from iotbpf.ebpf import types as bpftypes
from iotbpf.ebpf.errors import IotbpfError

_INT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}
_DATASEC_PREFIXES = (".bss", ".data", ".rodata")


def _describe_plain(size: int) -> dict | None:
    """What a key or value without BTF is taken to be: an unsigned int when it has an int's size."""
    if size in _INT_FORMATS:
        return {"kind": "int", "size": size, "signed": False}
    return None


def decode(desc: dict | None, data: bytes) -> Any:
    """Python value of map bytes: through a BTF description (ints, dicts, lists, str), else an
    unsigned int for 1/2/4/8-byte data, else the bytes themselves."""
    desc = desc or _describe_plain(len(data))
    if desc is None:
        return bytes(data)
    value = _maps.decode_value(desc, bytes(data))
    if isinstance(value, str) and desc.get("kind") not in ("array",):
        return bytes(data)  # decode_value's hex fallback: give the raw bytes instead
    return value


_KEY_TYPES: dict = {}  # (struct name, member names) -> namedtuple class


def _key_type(desc: dict) -> Any:
    """The named tuple class a struct key decodes to (one per struct layout)."""
    from collections import namedtuple

    names = tuple(m.get("name") or "_%d" % i for i, m in enumerate(desc.get("members", ())))
    tag = (desc.get("name") or "key", names)
    cls = _KEY_TYPES.get(tag)
    if cls is None:
        name = desc.get("name") or "key"
        cls = namedtuple(name if name.isidentifier() else "key", names, rename=True)
        _KEY_TYPES[tag] = cls
    return cls


def _is_byte_array(desc: dict) -> bool:
    elem = desc.get("elem") or {}
    return elem.get("kind") == "int" and elem.get("size") == 1 and elem.get("name") != "char"


def decode_key(desc: dict | None, data: bytes) -> Any:
    """A hashable Python key: ints, named tuples for structs (fields by name, nested structs
    as named tuples too), ``bytes`` for byte arrays (``__u8[4]``), ``str`` for ``char``
    arrays, tuples for other arrays; the raw bytes when there is no type information."""
    desc = desc or _describe_plain(len(data))
    if desc is None:
        return bytes(data)
    return _hashable(desc, bytes(data))


def _hashable(desc: dict, data: bytes) -> Any:
    kind = desc.get("kind")
    if kind == "array":
        elem = desc.get("elem") or {}
        esize, count = elem.get("size", 0), desc.get("len", 0)
        if _is_byte_array(desc) or not esize or count * esize > len(data):
            return data[:count * esize] if esize == 1 else data
        if elem.get("name") == "char":
            return decode(desc, data)
        return tuple(_hashable(elem, data[i * esize:(i + 1) * esize]) for i in range(count))
    if kind in ("struct", "union"):
        fields = []
        for m in desc.get("members", ()):
            t = m.get("type") or {}
            off = m.get("offset", 0)
            fields.append(_hashable(t, data[off:off + t.get("size", 0)]))
        return _key_type(desc)(*fields)
    value = decode(desc, data)
    return value if not isinstance(value, (dict, list)) else data


def encode(desc: dict | None, size: int, value: Any, what: str = "value") -> bytes:
    """Bytes of ``value`` for a map key or value of ``size`` bytes described by ``desc``.

    bytes must be exactly ``size`` long; ints are packed little-endian (negative ones as two's
    complement); dicts fill struct members by name (missing members are zero); lists fill
    arrays; str fills char arrays. Anything else is an IotbpfError naming the problem.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if len(data) != size:
            raise IotbpfError("%s is %d bytes, the map takes %d-byte %ss" % (what, len(data), size, what))
        return data
    desc = desc or _describe_plain(size)
    if desc is None:
        raise IotbpfError("%s of %d bytes has no type information: give bytes" % (what, size))
    out = bytearray(size)
    _encode_into(desc, out, 0, size, value, what)
    return bytes(out)


def _encode_into(desc: dict, out: bytearray, offset: int, size: int, value: Any, what: str) -> None:
    kind = desc.get("kind")
    if isinstance(value, (bytes, bytearray)):
        if len(value) != size:
            raise IotbpfError("%s: %d bytes given for a %d-byte field" % (what, len(value), size))
        out[offset:offset + size] = value
        return
    if kind in ("int", "enum"):
        if kind == "enum" and isinstance(value, str):
            names = dict((n, int(v)) for v, n in (desc.get("values") or {}).items())
            if value not in names:
                raise IotbpfError("%s: %r is not one of %s" % (what, value, ", ".join(sorted(names))))
            value = names[value]
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int):
            raise IotbpfError("%s: expected an integer, got %s" % (what, type(value).__name__))
        bits = 8 * size
        if not -(1 << (bits - 1)) <= value < (1 << bits):
            raise IotbpfError("%s: %d does not fit in %d bytes" % (what, value, size))
        out[offset:offset + size] = (value & ((1 << bits) - 1)).to_bytes(size, "little")
        return
    if kind == "array":
        elem = desc.get("elem") or {}
        esize = elem.get("size", 0)
        count = desc.get("len", 0)
        if isinstance(value, str):
            raw = value.encode("utf-8")
            if esize != 1 or len(raw) > count:
                raise IotbpfError("%s: %r does not fit in char[%d]" % (what, value, count))
            out[offset:offset + len(raw)] = raw
            return
        if not isinstance(value, (list, tuple)) or len(value) > count:
            raise IotbpfError("%s: expected a list of at most %d items" % (what, count))
        for i, item in enumerate(value):
            _encode_into(elem, out, offset + i * esize, esize, item, "%s[%d]" % (what, i))
        return
    if kind in ("struct", "union"):
        if isinstance(value, tuple) and hasattr(value, "_asdict"):
            value = value._asdict()  # a named tuple key
        elif isinstance(value, tuple) and len(value) == len(desc.get("members", ())):
            value = dict((m.get("name"), v) for m, v in zip(desc.get("members", ()), value))
        if not isinstance(value, dict):
            raise IotbpfError("%s: expected a dict of %s members, got %s"
                              % (what, desc.get("name") or "struct", type(value).__name__))
        members = dict((m.get("name"), m) for m in desc.get("members", ()))
        for name, item in value.items():
            if name not in members:
                raise IotbpfError("%s: no member %r (members: %s)" % (what, name, ", ".join(
                    str(n) for n in members)))
            m = members[name]
            t = m.get("type") or {}
            _encode_into(t, out, offset + m.get("offset", 0), t.get("size", 0), item, "%s.%s" % (what, name))
        return
    raise IotbpfError("%s: cannot encode a %s from Python; give bytes" % (what, kind))


class MapView(MutableMapping):
    """A dict-like, typed view of one live eBPF map.

    ``view[key]`` returns the decoded value (KeyError when absent); ``view[key] = value`` writes
    it (BPF_ANY); ``del view[key]`` deletes it. Keys and values are decoded and encoded through
    the map's BTF types when the object carried them (``int``, ``dict`` for a struct, ``list``
    for an array, ``str`` for a char array), otherwise as unsigned ints when 1, 2, 4 or 8 bytes
    long, else as bytes; raw ``bytes`` of the right size are always accepted. Keys are always
    hashable, so ``dict(view)`` works: a struct key is a named tuple (``key.prefixlen``), a
    byte array (``__u8[4]``) is ``bytes``; named tuples, tuples and dicts are accepted back.
    A prog_array view maps indexes to program names (``view[i] = program`` installs one).
    Queue and stack maps have no keys: use ``push``/``pop``/``peek`` and ``values()``.
    ``view.map`` is the underlying ``iotbpf.ebpf.maps.Map``.
    """

    def __init__(self, map_obj: _maps.Map, key_type: dict | None = None, value_type: dict | None = None):
        self.map = map_obj
        self.name: str = map_obj.name
        self.key_type = key_type or getattr(map_obj.spec, "key_type", None)
        self.value_type = value_type or getattr(map_obj.spec, "value_type", None)

    def __repr__(self) -> str:
        return "<MapView %s: %s, %d entries>" % (self.name, self.type, len(self))

    @property
    def type(self) -> str:
        """The map type's name, e.g. ``hash``, ``array``, ``lru_hash``."""
        name = getattr(self.map.spec, "type_name", None)
        return name or str(self.map.type)

    def key_bytes(self, key: Any) -> bytes:
        """The raw key for ``key`` (encoded as the view encodes keys)."""
        return encode(self.key_type, self.map.key_size, key, "key")

    def value_bytes(self, value: Any) -> bytes:
        """The raw value for ``value``."""
        return encode(self.value_type, self.map.value_size, value, "value")

    def decode_key(self, data: bytes) -> Any:
        """The Python key for raw key bytes (as the view decodes keys)."""
        return decode_key(self.key_type, data)

    def decode_value(self, data: bytes) -> Any:
        """The Python value for raw value bytes."""
        return decode(self.value_type, data)

    def _entries(self) -> dict | None:
        """{index: entry} of a prog_array (program names) or a map-in-map (inner map names);
        None for maps of data."""
        if self.map.type == bpftypes.BPF_MAP_TYPE_PROG_ARRAY:
            return dict((i, getattr(p, "name", "") or "?") for i, p in sorted(self.map.programs.items()))
        inner = getattr(self.map, "inner_maps", None)
        if inner is not None:
            return dict((self.decode_key(k), m.name) for k, m in inner())
        return None

    def __getitem__(self, key: Any) -> Any:
        self._need_keys()
        entries = self._entries()
        if entries is not None:
            if key not in entries:
                raise KeyError(key)
            return entries[key]
        raw = self.map.lookup(self.key_bytes(key))
        if raw is None:
            raise KeyError(key)
        return self.decode_value(raw)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._need_keys()
        if self.map.type == bpftypes.BPF_MAP_TYPE_PROG_ARRAY:
            program = getattr(value, "program", value)  # an iotbpf.Program or an ebpf Program
            if not hasattr(program, "insns"):
                raise IotbpfError("prog_array %s takes programs, not %s" % (self.name, type(value).__name__))
            try:
                self.map.set_program(int(key), program)
            except ValueError as exc:
                raise IotbpfError(str(exc)) from None
            return
        if self.map.type in bpftypes.MAP_IN_MAP_TYPES:
            inner = getattr(value, "map", value)  # a MapView or a Map
            if not isinstance(inner, _maps.Map):
                raise IotbpfError("map of maps %s takes maps, not %s" % (self.name, type(value).__name__))
            rc = self.map.set_map(self.key_bytes(key), inner)
            if rc:
                raise IotbpfError("map %s: %s does not fit (%s)" % (self.name, inner.name, _errno_name(rc)))
            return
        rc = self.map.update(self.key_bytes(key), self.value_bytes(value), bpftypes.BPF_ANY)
        if rc:
            raise IotbpfError("map %s: update of key %r refused (%s)" % (self.name, key, _errno_name(rc)))

    def __delitem__(self, key: Any) -> None:
        self._need_keys()
        rc = self.map.delete(self.key_bytes(key))
        if rc == -bpftypes.ENOENT:
            raise KeyError(key)
        if rc:
            raise IotbpfError("map %s: delete of key %r refused (%s)" % (self.name, key, _errno_name(rc)))

    def __iter__(self) -> Iterator:
        if not self.map.key_size:
            return iter(range(len(self.map.items())))
        entries = self._entries()
        if entries is not None:
            return iter(list(entries))
        return iter([self.decode_key(k) for k, _ in self._raw_items()])

    def __len__(self) -> int:
        entries = self._entries()
        return len(entries) if entries is not None else len(self._raw_items())

    def items(self) -> list:  # type: ignore[override]
        """[(key, value)] decoded, in the map's key order (queues: [(index, value)], oldest first)."""
        if not self.map.key_size:
            return [(i, self.decode_value(v)) for i, (_, v) in enumerate(self.map.items())]
        entries = self._entries()
        if entries is not None:
            return list(entries.items())
        return [(self.decode_key(k), self.decode_value(v)) for k, v in self._raw_items()]

    def values(self) -> list:  # type: ignore[override]
        """The decoded values, in the map's key order (queues: oldest first)."""
        return [v for _, v in self.items()]

    def to_dict(self) -> dict:
        """The whole map as a plain dict (a snapshot)."""
        return dict(self.items())

    def push(self, value: Any) -> None:
        """Queue/stack/bloom filter: add a value (IotbpfError when full)."""
        rc = self.map.push(self.value_bytes(value), bpftypes.BPF_ANY)
        if rc:
            raise IotbpfError("map %s: push refused (%s)" % (self.name, _errno_name(rc)))

    def pop(self, *default: Any) -> Any:  # type: ignore[override]
        """Queue/stack: remove and return the next value (IndexError when empty)."""
        if self.map.key_size:
            return MutableMapping.pop(self, *default)
        raw = self.map.pop()
        if isinstance(raw, int):
            raise IndexError("map %s is empty" % self.name)
        return self.decode_value(raw)

    def peek(self) -> Any:
        """Queue/stack: the next value without removing it (IndexError when empty)."""
        raw = self.map.peek()
        if isinstance(raw, int):
            raise IndexError("map %s is empty" % self.name)
        return self.decode_value(raw)

    # ------------------------------------------------------------ ring and perf buffers
    def poll(self, callback: Callable[..., Any], lost: Callable[[int, int], Any] | None = None) -> int:
        """Hand every record waiting in a ring buffer or perf event array to ``callback`` and
        remove it; returns how many. Like bcc's ``ring_buffer_poll``/``perf_buffer_poll``:
        a ring buffer calls ``callback(data)``, a perf event array ``callback(cpu, data)``
        (``data`` is the record's bytes), and ``lost(cpu, count)`` hears of samples a full
        perf buffer dropped."""
        if self.map.type == bpftypes.BPF_MAP_TYPE_RINGBUF:
            records = self.map.consume()
            for data in records:
                callback(data)
            return len(records)
        if self.map.type == bpftypes.BPF_MAP_TYPE_PERF_EVENT_ARRAY:
            if lost is not None:
                for cpu, count in sorted(self.map.take_lost().items()):
                    lost(cpu, count)
            samples = self.map.consume()
            for cpu, data in samples:
                callback(cpu, data)
            return len(samples)
        raise IotbpfError("map %s (%s) is not a ring buffer or perf event array: nothing to poll"
                          % (self.name, self.type))

    def open_ring_buffer(self, callback: Callable[[bytes], Any]) -> None:
        """Deliver each ring buffer record to ``callback(data)`` as soon as a program submits it
        (a wake-up), while the node runs; ``close_buffer()`` stops it."""
        self._subscribe(bpftypes.BPF_MAP_TYPE_RINGBUF, callback, None)

    def open_perf_buffer(self, callback: Callable[[int, bytes], Any],
                         lost: Callable[[int, int], Any] | None = None) -> None:
        """Deliver each perf event array sample to ``callback(cpu, data)`` as soon as a program
        outputs it; ``lost(cpu, count)`` hears of dropped samples."""
        self._subscribe(bpftypes.BPF_MAP_TYPE_PERF_EVENT_ARRAY, callback, lost)

    def close_buffer(self) -> None:
        """Stop delivering records opened with open_ring_buffer/open_perf_buffer."""
        self.map.on_wakeup = None

    def _subscribe(self, map_type: int, callback: Callable[..., Any], lost: Any) -> None:
        if self.map.type != map_type:
            raise IotbpfError("map %s is a %s map, not %s" % (self.name, self.type,
                                                              bpftypes.MAP_TYPE_NAMES[map_type]))
        self.map.on_wakeup = lambda _m: self.poll(callback, lost)

    def _raw_items(self) -> list:
        used = getattr(self.map, "used_items", None)
        if used is not None and self.map.max_entries > 64:
            return used()  # a large array: only the elements ever written
        return self.map.items()

    def _need_keys(self) -> None:
        if not self.map.key_size:
            raise IotbpfError("map %s (%s) has no keys: use push(), pop(), peek() or values()"
                              % (self.name, self.type))


class GlobalVariable(MutableMapping):
    """One C global variable (``struct stats stats;``) that clang placed in a .bss/.data/.rodata map.

    ``var.value`` is its decoded value (a dict for a struct); for a struct the view is also a
    dict of its members: ``var["count"]``, ``var["count"] = 0``, ``dict(var)``. Writes change the
    node's memory at once, as a program's store would.
    """

    def __init__(self, section: MapView, member: dict):
        self.section = section
        self.name: str = member.get("name") or "?"
        self.offset: int = member.get("offset", 0)
        self.desc: dict = member.get("type") or {}
        self.size: int = self.desc.get("size", 0)

    def __repr__(self) -> str:
        return "<GlobalVariable %s in %s: %r>" % (self.name, self.section.name, self.value)

    def _raw(self) -> bytes:
        return self.section.map.lookup(b"\0\0\0\0") or bytes(self.section.map.value_size)

    @property
    def value(self) -> Any:
        return decode(self.desc, self._raw()[self.offset:self.offset + self.size])

    @value.setter
    def value(self, new: Any) -> None:
        self._write(encode(self.desc, self.size, new, self.name))

    def _write(self, data: bytes) -> None:
        if self.section.map.frozen:
            raise IotbpfError("%s is in %s, read-only once its program is loaded (libbpf freezes it "
                              "too): change it in the C source" % (self.name, self.section.name))
        raw = bytearray(self._raw())
        raw[self.offset:self.offset + self.size] = data
        rc = self.section.map.update(b"\0\0\0\0", bytes(raw), bpftypes.BPF_ANY)
        if rc:
            raise IotbpfError("%s: write refused (%s)" % (self.name, _errno_name(rc)))

    def _members(self) -> dict:
        if self.desc.get("kind") not in ("struct", "union"):
            raise IotbpfError("%s is a %s, not a struct: use .value" % (self.name, self.desc.get("kind")))
        return dict((m.get("name"), m) for m in self.desc.get("members", ()))

    def __getitem__(self, field: str) -> Any:
        value = self.value
        if field not in self._members():
            raise KeyError(field)
        return value[field]

    def __setitem__(self, field: str, new: Any) -> None:
        members = self._members()
        if field not in members:
            raise IotbpfError("%s has no member %r (members: %s)" % (self.name, field, ", ".join(members)))
        t = members[field].get("type") or {}
        off = members[field].get("offset", 0)
        raw = bytearray(self._raw()[self.offset:self.offset + self.size])
        raw[off:off + t.get("size", 0)] = encode(t, t.get("size", 0), new, "%s.%s" % (self.name, field))
        self._write(bytes(raw))

    def __delitem__(self, field: str) -> None:
        raise IotbpfError("cannot delete a member of %s; set it to 0 instead" % self.name)

    def __iter__(self) -> Iterator:
        return iter(list(self._members()))

    def __len__(self) -> int:
        return len(self._members())


class MapsView(MutableMapping):
    """The maps of a node (or a program) by name: ``maps["blocklist"]`` -> MapView.

    C global variables are found by their own name too: ``maps["stats"]`` is the
    GlobalVariable ``stats`` inside the ``.bss.stats`` map. Well-known maps shared by all apps
    (``iot_txq``, ``iot_policy``, ``iot_app_demand``) are included. Names are looked up in the
    first app that has them; ``Node.map(name, app=...)`` picks a specific app.
    """

    def __init__(self, maps_by_name: dict):
        self._maps = maps_by_name

    def __repr__(self) -> str:
        return "<maps: %s>" % ", ".join(self)

    def _variables(self) -> dict:
        out = {}
        for name, m in self._maps.items():
            if not name.startswith(_DATASEC_PREFIXES):
                continue
            desc = getattr(m.spec, "value_type", None) or {}
            for member in desc.get("members", ()):
                if member.get("name") and member["name"] not in self._maps:
                    out.setdefault(member["name"], (name, member))
        return out

    def __getitem__(self, name: str) -> MapView | GlobalVariable:
        if name in self._maps:
            m = self._maps[name]
            if getattr(m.spec, "value_type", None) is None:
                key_type, value_type = _well_known_types(name)
                return MapView(m, key_type, value_type)
            return MapView(m)
        variables = self._variables()
        if name in variables:
            section, member = variables[name]
            return GlobalVariable(MapView(self._maps[section]), member)
        raise IotbpfError("no map or global variable %r (maps: %s)" % (name, ", ".join(self) or "none"))

    def __setitem__(self, name: str, value: Any) -> None:
        raise IotbpfError("maps are declared by the programs; write entries with maps[%r][key] = value" % name)

    def __delitem__(self, name: str) -> None:
        raise IotbpfError("maps are declared by the programs and cannot be removed")

    def __contains__(self, name: object) -> bool:
        return name in self._maps or name in self._variables()

    def __iter__(self) -> Iterator:
        return iter(list(self._maps) + sorted(self._variables()))

    def __len__(self) -> int:
        return len(self._maps) + len(self._variables())


def _ctype_desc(ctype: str, size: int) -> dict:
    """A BTF-like description of a kernel-table C type ("u32", "s64", "u8[16]")."""
    base = ctype.split("[")[0]
    if "[" in ctype:
        count = int(ctype.split("[")[1].rstrip("]"))
        elem = size // count if count else 0
        return {"kind": "array", "len": count, "size": size,
                "elem": {"kind": "int", "size": elem, "signed": base.startswith("s"), "name": base}}
    return {"kind": "int", "size": size, "signed": base.startswith("s"), "name": base}


def _well_known_types(name: str) -> tuple:
    """(key_type, value_type) descriptions of a well-known map (iot_txq, iot_policy,
    iot_app_demand) from the kernel's declaration, which carries no BTF; (None, None) otherwise."""
    from iotbpf.kernel import wellknown as wk
    from iotbpf.kernel.hooks import Struct

    for row in wk.WELL_KNOWN_MAPS:
        if row[0] != name:
            continue
        key_type = _ctype_desc(row[2], wk.key_size(name))
        value = row[3]
        if isinstance(value, Struct):
            members = [{"name": f.name, "offset": f.offset, "type": _ctype_desc(f.ctype, f.size)}
                       for f in value.fields]
            value_type = {"kind": "struct", "name": value.name, "size": value.size, "members": members}
        else:
            value_type = _ctype_desc(value, wk.value_size(name))
        return key_type, value_type
    return None, None


def _errno_name(rc: int) -> str:
    names = dict((getattr(bpftypes, n), n) for n in ("ENOENT", "EEXIST", "E2BIG", "EINVAL", "ENOMEM", "EPERM",
                                               "ENOSPC", "EBUSY") if hasattr(bpftypes, n))
    return "%s, errno %d" % (names.get(-rc, "error"), -rc)


__all__ = ["MapView", "MapsView", "GlobalVariable", "encode", "decode", "decode_key"]
