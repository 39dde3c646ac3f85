"""A small BTF reader (host side): types from ``.BTF`` and line info from ``.BTF.ext``, every offset
bounds-checked; malformed data is a LoadError."""

from __future__ import annotations

import struct

from iotbpf.ebpf.errors import LoadError

BTF_MAGIC = 0xEB9F

KIND_INT = 1
KIND_PTR = 2
KIND_ARRAY = 3
KIND_STRUCT = 4
KIND_UNION = 5
KIND_ENUM = 6
KIND_FWD = 7
KIND_TYPEDEF = 8
KIND_VOLATILE = 9
KIND_CONST = 10
KIND_RESTRICT = 11
KIND_FUNC = 12
KIND_FUNC_PROTO = 13
KIND_VAR = 14
KIND_DATASEC = 15
KIND_FLOAT = 16
KIND_DECL_TAG = 17
KIND_TYPE_TAG = 18
KIND_ENUM64 = 19

KIND_NAMES = {
    KIND_INT: "int", KIND_PTR: "ptr", KIND_ARRAY: "array", KIND_STRUCT: "struct",
    KIND_UNION: "union", KIND_ENUM: "enum", KIND_FWD: "fwd", KIND_TYPEDEF: "typedef",
    KIND_VOLATILE: "volatile", KIND_CONST: "const", KIND_RESTRICT: "restrict", KIND_FUNC: "func",
    KIND_FUNC_PROTO: "func_proto", KIND_VAR: "var", KIND_DATASEC: "datasec", KIND_FLOAT: "float",
    KIND_DECL_TAG: "decl_tag", KIND_TYPE_TAG: "type_tag", KIND_ENUM64: "enum64",
}
MODIFIERS = (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG)
MAX_TYPES = 1 << 20
MAX_DEPTH = 32


class BtfType:
    """One BTF type: kind, name, ``size_or_type``, and kind-specific ``extra``."""

    __slots__ = ("id", "kind", "name", "vlen", "kind_flag", "size_or_type", "extra")

    def __init__(self, tid, kind, name, vlen, kind_flag, size_or_type, extra):
        self.id = tid
        self.kind = kind
        self.name = name
        self.vlen = vlen
        self.kind_flag = kind_flag
        self.size_or_type = size_or_type
        self.extra = extra

    def __repr__(self) -> str:
        return "BtfType(%d, %s, %r)" % (self.id, KIND_NAMES.get(self.kind, self.kind), self.name)


def _u32s(data: bytes, off: int, n: int, what: str) -> tuple:
    if off < 0 or off + 4 * n > len(data):
        raise LoadError("malformed BTF: %s runs past the end of the data" % what)
    return struct.unpack_from("<%dI" % n, data, off)


class Btf:
    """Parsed ``.BTF`` section: ``types`` (index = type id, 0 is void) and ``string(off)``."""

    def __init__(self, data: bytes):
        data = bytes(data)
        if len(data) < 24:
            raise LoadError("malformed BTF: %d bytes, shorter than its header" % len(data))
        magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
        if magic != BTF_MAGIC:
            raise LoadError("malformed BTF: bad magic 0x%04x" % magic)
        if version != 1:
            raise LoadError("BTF version %d is not supported" % version)
        type_off, type_len, str_off, str_len = _u32s(data, 8, 4, "header")
        if hdr_len < 24 or hdr_len > len(data):
            raise LoadError("malformed BTF: header length %d" % hdr_len)
        t0 = hdr_len + type_off
        s0 = hdr_len + str_off
        if t0 + type_len > len(data) or s0 + str_len > len(data):
            raise LoadError("malformed BTF: type or string section outside the data")
        self.strings = data[s0:s0 + str_len]
        self.types = [BtfType(0, 0, "", 0, 0, 0, None)]
        self._parse_types(data[t0:t0 + type_len])
        self._by_name = {}
        for t in self.types:
            if t.name and t.name not in self._by_name:
                self._by_name[t.name] = t

    def string(self, off: int) -> str:
        if off == 0:
            return ""
        if off < 0 or off >= len(self.strings):
            raise LoadError("malformed BTF: string offset %d out of range" % off)
        end = self.strings.find(b"\0", off)
        if end < 0:
            end = len(self.strings)
        return self.strings[off:end].decode("utf-8", "replace")

    def _parse_types(self, data: bytes) -> None:
        off = 0
        n = len(data)
        while off < n:
            if len(self.types) > MAX_TYPES:
                raise LoadError("malformed BTF: more than %d types" % MAX_TYPES)
            name_off, info, size_or_type = _u32s(data, off, 3, "a type header")
            off += 12
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            kind_flag = info >> 31
            extra = None
            if kind == KIND_INT:
                extra = _u32s(data, off, 1, "an int")[0]
                off += 4
            elif kind == KIND_ARRAY:
                extra = _u32s(data, off, 3, "an array")  # elem type, index type, nelems
                off += 12
            elif kind in (KIND_STRUCT, KIND_UNION):
                raw = _u32s(data, off, 3 * vlen, "struct members")
                off += 12 * vlen
                extra = [(self.string(raw[i]), raw[i + 1], raw[i + 2]) for i in range(0, 3 * vlen, 3)]
            elif kind == KIND_ENUM:
                raw = _u32s(data, off, 2 * vlen, "enum values")
                off += 8 * vlen
                extra = [(self.string(raw[i]), raw[i + 1]) for i in range(0, 2 * vlen, 2)]
            elif kind == KIND_ENUM64:
                raw = _u32s(data, off, 3 * vlen, "enum64 values")
                off += 12 * vlen
                extra = [(self.string(raw[i]), raw[i + 1] | (raw[i + 2] << 32))
                         for i in range(0, 3 * vlen, 3)]
            elif kind == KIND_FUNC_PROTO:
                raw = _u32s(data, off, 2 * vlen, "function parameters")
                off += 8 * vlen
                extra = [(self.string(raw[i]), raw[i + 1]) for i in range(0, 2 * vlen, 2)]
            elif kind == KIND_VAR:
                extra = _u32s(data, off, 1, "a variable")[0]
                off += 4
            elif kind == KIND_DATASEC:
                raw = _u32s(data, off, 3 * vlen, "datasec entries")
                off += 12 * vlen
                extra = [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, 3 * vlen, 3)]
            elif kind == KIND_DECL_TAG:
                extra = _u32s(data, off, 1, "a decl tag")[0]
                off += 4
            elif kind not in (KIND_PTR, KIND_FWD, KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST,
                              KIND_RESTRICT, KIND_FUNC, KIND_FLOAT, KIND_TYPE_TAG):
                raise LoadError("malformed BTF: unknown type kind %d" % kind)
            self.types.append(BtfType(len(self.types), kind, self.string(name_off), vlen, kind_flag,
                                      size_or_type, extra))

    # ---------------------------------------------------------------- queries
    def get(self, tid: int) -> BtfType:
        if not 0 <= tid < len(self.types):
            raise LoadError("malformed BTF: type id %d out of range" % tid)
        return self.types[tid]

    def by_name(self, name: str) -> BtfType | None:
        return self._by_name.get(name)

    def resolve(self, tid: int) -> BtfType:
        """Follow typedef/const/volatile/restrict/type_tag to the underlying type."""
        t = self.get(tid)
        for _ in range(MAX_DEPTH):
            if t.kind not in MODIFIERS:
                return t
            t = self.get(t.size_or_type)
        raise LoadError("malformed BTF: type chain too deep at type %d" % tid)

    def size_of(self, tid: int, depth: int = 0) -> int:
        if depth > MAX_DEPTH:
            raise LoadError("malformed BTF: type nesting too deep")
        t = self.resolve(tid)
        if t.kind == KIND_PTR:
            return 8
        if t.kind == KIND_ARRAY:
            return t.extra[2] * self.size_of(t.extra[0], depth + 1)
        if t.kind in (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_FLOAT,
                      KIND_DATASEC):
            return t.size_or_type
        if t.kind == KIND_VAR:
            return self.size_of(t.size_or_type, depth + 1)
        raise LoadError("BTF type %d (%s) has no size" % (t.id, KIND_NAMES.get(t.kind, t.kind)))

    def datasec(self, name: str) -> BtfType | None:
        for t in self.types:
            if t.kind == KIND_DATASEC and t.name == name:
                return t
        return None

    def var(self, name: str) -> BtfType | None:
        for t in self.types:
            if t.kind == KIND_VAR and t.name == name:
                return t
        return None

    def map_definition(self, var_name: str) -> dict:
        """Fields of a libbpf BTF map definition (``struct {...} name SEC(".maps")``).

        ``__uint(f, N)`` gives ``{f: N}``; ``__type(key|value, T)`` gives ``key_size`` /
        ``value_size`` and ``key_type_id`` / ``value_type_id``; ``__array(values, ...)`` is
        reported as ``values_offset`` (byte offset of the member) for the caller to reject
        or handle.
        """
        var = self.var(var_name)
        if var is None:
            raise LoadError("map %s: no BTF variable describes it" % var_name)
        return self._definition(var.size_or_type, var_name, 0)

    def _definition(self, tid: int, var_name: str, depth: int) -> dict:
        st = self.resolve(tid)
        if st.kind != KIND_STRUCT:
            raise LoadError("map %s: its BTF type is a %s, not a struct"
                            % (var_name, KIND_NAMES.get(st.kind)))
        out = {}
        for name, mtype, offset in st.extra:
            mt = self.resolve(mtype)
            if name in ("key", "value"):
                if mt.kind != KIND_PTR:
                    raise LoadError("map %s: member %s must be a pointer (__type)" % (var_name, name))
                out[name + "_size"] = self.size_of(mt.size_or_type)
                out[name + "_type_id"] = mt.size_or_type
            elif name == "values":
                out["values_offset"] = offset // 8
                inner = self._values_element(mt)
                if inner is not None:
                    if depth:
                        raise LoadError("map %s: maps of maps of maps are not supported" % var_name)
                    out["inner"] = self._definition(inner.id, var_name + ".values", depth + 1)
            elif mt.kind == KIND_PTR:
                arr = self.resolve(mt.size_or_type)
                if arr.kind != KIND_ARRAY:
                    raise LoadError("map %s: member %s is not an __uint(...)" % (var_name, name))
                out[name] = arr.extra[2]
            else:
                raise LoadError("map %s: unsupported member %s in its definition" % (var_name, name))
        return out

    def _values_element(self, arr):
        """The struct an ``__array(values, struct inner)`` points to (a map of maps), or None
        (a prog_array's function prototypes)."""
        if arr.kind != KIND_ARRAY:
            return None
        ptr = self.resolve(arr.extra[0])
        if ptr.kind != KIND_PTR:
            return None
        target = self.resolve(ptr.size_or_type)
        return target if target.kind == KIND_STRUCT else None

    def describe(self, tid: int, depth: int = 0) -> dict:
        """A JSON-able description of a type, for decoding map keys and values."""
        if depth > 8:
            return {"kind": "bytes", "size": self.size_of(tid)}
        t = self.resolve(tid)
        if t.kind == KIND_INT:
            enc = (t.extra >> 24) & 0xF
            d = {"kind": "int", "size": t.size_or_type, "signed": bool(enc & 1)}
            if enc & 4:
                d["bool"] = True
            if enc & 2:
                d["char"] = True
            if t.name:
                d["name"] = t.name
            return d
        if t.kind in (KIND_ENUM, KIND_ENUM64):
            return {"kind": "enum", "size": t.size_or_type, "name": t.name,
                    "values": dict((v, n) for n, v in t.extra[:64])}
        if t.kind == KIND_PTR:
            return {"kind": "int", "size": 8, "signed": False, "name": "pointer"}
        if t.kind == KIND_FLOAT:
            return {"kind": "float", "size": t.size_or_type}
        if t.kind == KIND_ARRAY:
            return {"kind": "array", "len": t.extra[2], "size": self.size_of(t.id),
                    "elem": self.describe(t.extra[0], depth + 1)}
        if t.kind in (KIND_STRUCT, KIND_UNION):
            members = []
            for name, mtype, offset in t.extra:
                if t.kind_flag and offset >> 24:  # bitfield: shown as part of raw bytes
                    continue
                members.append({"name": name, "offset": (offset & 0xFFFFFF) // 8,
                                "type": self.describe(mtype, depth + 1)})
            return {"kind": KIND_NAMES[t.kind], "name": t.name, "size": t.size_or_type,
                    "members": members}
        return {"kind": "bytes", "size": self.size_of(t.id)}


class LineInfo:
    """One ``.BTF.ext`` line record: section, byte offset of the instruction, file, line, text."""

    __slots__ = ("section", "insn_off", "file", "line", "col", "text")

    def __init__(self, section, insn_off, file, line, col, text):
        self.section = section
        self.insn_off = insn_off
        self.file = file
        self.line = line
        self.col = col
        self.text = text


def parse_btf_ext(data: bytes, btf: Btf) -> list:
    """Line info records of a ``.BTF.ext`` section (func info is skipped; CO-RE relocations are
    refused, since nothing here could honour them)."""
    data = bytes(data)
    if len(data) < 8:
        raise LoadError("malformed .BTF.ext: %d bytes, shorter than its header" % len(data))
    magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
    if magic != BTF_MAGIC or version != 1:
        raise LoadError("malformed .BTF.ext: bad magic or version")
    if hdr_len < 24 or hdr_len > len(data):
        raise LoadError("malformed .BTF.ext: header length %d" % hdr_len)
    line_off, line_len = _u32s(data, 16, 2, ".BTF.ext header")
    if hdr_len >= 32:
        _core_off, core_len = _u32s(data, 24, 2, ".BTF.ext header")
        if core_len:
            raise LoadError("CO-RE relocations in .BTF.ext (preserve_access_index / BPF_CORE_READ) "
                            "are not supported: there are no kernel types to relocate against")
    start = hdr_len + line_off
    end = start + line_len
    if line_len == 0:
        return []
    if end > len(data) or line_len < 4:
        raise LoadError("malformed .BTF.ext: line info outside the section")
    rec_size = _u32s(data, start, 1, "line info")[0]
    if rec_size < 16:
        raise LoadError("malformed .BTF.ext: line record size %d" % rec_size)
    out = []
    off = start + 4
    while off < end:
        sec_name_off, count = _u32s(data, off, 2, "line info section")
        off += 8
        section = btf.string(sec_name_off)
        if off + count * rec_size > end:
            raise LoadError("malformed .BTF.ext: line records of %s run past the end" % section)
        for _ in range(count):
            insn_off, file_off, line_text_off, line_col = _u32s(data, off, 4, "a line record")
            off += rec_size
            out.append(LineInfo(section, insn_off, btf.string(file_off), line_col >> 10,
                                line_col & 0x3FF, btf.string(line_text_off)))
    return out
