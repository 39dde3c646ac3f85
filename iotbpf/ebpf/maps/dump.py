"""Decoding map keys and values for dumps, from a BTF type description (btf.describe):
ints, structs as dicts, arrays as lists, char arrays as text, raw hex where it says too little."""

import struct

from iotbpf.ebpf.maps.base import to_hex

_INT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}


def decode_value(desc, data):
    """Python value of ``data`` described by a BTF type description (btf.describe / MapSpec
    key_type, value_type): ints, dicts for structs, lists for arrays, str for char arrays;
    raw hex where the description does not say enough."""
    if not desc or not isinstance(desc, dict):
        return to_hex(data)
    kind = desc.get("kind")
    size = desc.get("size", len(data))
    if kind in ("int", "enum") and size in _INT_FORMATS and len(data) >= size:
        fmt = _INT_FORMATS[size]
        if desc.get("signed"):
            fmt = fmt.lower()
        value = struct.unpack_from("<" + fmt, data, 0)[0]
        if kind == "enum":
            names = desc.get("values") or {}
            return names.get(str(value), names.get(value, value))
        if desc.get("bool"):
            return bool(value)
        return value
    if kind == "array":
        elem = desc.get("elem") or {}
        n = desc.get("len", 0)
        esize = elem.get("size", 0)
        if not esize or n * esize > len(data):
            return to_hex(data)
        if elem.get("kind") == "int" and esize == 1 and (elem.get("char") or "char" in elem.get("name", "")):
            raw = bytes(data[:n])
            end = raw.find(b"\0")
            return "".join(chr(b) for b in (raw if end < 0 else raw[:end]))
        return [decode_value(elem, data[i * esize:(i + 1) * esize]) for i in range(n)]
    if kind in ("struct", "union"):
        out = {}
        for m in desc.get("members", ()):
            t = m.get("type") or {}
            off = m.get("offset", 0)
            msize = t.get("size", 0)
            if off + msize <= len(data):
                out[m.get("name") or "?"] = decode_value(t, data[off:off + msize])
        return out
    return to_hex(data)
