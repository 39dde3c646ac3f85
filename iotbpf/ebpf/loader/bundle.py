"""``.ibpf`` bundles: a small, versioned, checksummed form of a linked BPF object that the MicroPython
core loads without pyelftools (format: docs/vm.md, "Inside")."""

import json
import os

from iotbpf.ebpf import boundedjson, isa
from iotbpf.ebpf import types as T
from iotbpf.ebpf.checksum import fnv1a32
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.program import Program

MAGIC = b"IBPF"
VERSION = 1
MAX_BUNDLE_BYTES = 16 << 20
MAX_MAPS = 256
MAX_PROGRAMS = 256
_HDR = isa.make_struct("<4sHHII")
_U32 = isa.make_struct("<I")


class Bundle:
    """A loaded bundle: ``programs`` (name -> Program), ``maps`` (shared MapSpec list), ``license``."""

    def __init__(self, path):
        self.path = path
        self.programs = {}
        self.maps = []
        self.license = ""

    def names(self):
        return list(self.programs)

    def program(self, section=None):
        if section is None:
            if len(self.programs) == 1:
                for p in self.programs.values():
                    return p
            if not self.programs:
                raise LoadError("%s: the bundle has no programs" % self.path)
            raise LoadError(_printable("%s has %d programs (%s): choose one with --section"
                                       % (self.path, len(self.programs), ", ".join(self.programs))))
        if section in self.programs:
            return self.programs[section]
        matches = [p for p in self.programs.values() if p.section == section]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise LoadError(_printable("%s: section %s holds %d programs (%s): name the function instead"
                                       % (self.path, section, len(matches), ", ".join(p.name for p in matches))))
        raise LoadError(_printable("%s: no program section %r (sections: %s)"
                                   % (self.path, section, ", ".join(self.programs) or "none")))


def _printable(text):
    """Names from a bundle may hold control characters: never print them raw to a terminal."""
    return "".join(c if " " <= c != "\x7f" else "?" for c in text)


# ------------------------------------------------------------------ writing
def save_bundle(source, path=None):
    """Bundle bytes for ``source`` (an ELF object from elf.load_elf_object, a Bundle, a Program
    or a list of Programs sharing one maps list); written to ``path`` when given."""
    if isinstance(source, Program):
        programs = [source]
        license = getattr(source, "license", "")
    elif isinstance(source, (list, tuple)):
        programs = list(source)
        license = getattr(programs[0], "license", "") if programs else ""
    else:
        programs = list(source.programs.values())
        license = source.license
    if not programs:
        raise LoadError("nothing to bundle: no programs")
    maps = programs[0].maps
    for p in programs:
        if p.maps is not maps and [_spec(m).name for m in p.maps] != [_spec(m).name for m in maps]:
            raise LoadError("programs to bundle together must share one map list")
    blobs = bytearray()

    def blob(data):
        off = len(blobs)
        blobs.extend(data)
        return [off, len(data)]

    header_maps = []
    for m in maps:
        spec = _spec(m)
        d = spec.to_dict()
        d.pop("data_len", None)
        data = spec.data
        d["data"] = None if data is None else blob(bytes(data))
        header_maps.append(d)
    files = []
    header_progs = []
    for p in programs:
        lines = []
        for pc in sorted(p.line_info):
            if not 0 <= pc < len(p.insns):
                continue   # line info past the program (an object's stray entry): never saved
            fname, line, text = p.line_info[pc]
            if fname not in files:
                files.append(fname)
            lines.append([pc, files.index(fname), line, text])
        header_progs.append({"name": p.name, "section": p.section, "insns": blob(isa.encode(p.insns)),
                             "labels": dict(p.labels), "line_info": lines})
    header = {"version": VERSION, "license": license or "", "maps": header_maps,
              "programs": header_progs, "files": files}
    hbytes = json.dumps(header).encode("utf-8")
    body = _HDR.pack(MAGIC, VERSION, 0, len(hbytes), len(blobs)) + hbytes + bytes(blobs)
    out = body + _U32.pack(fnv1a32(body))
    if path is not None:
        with open(path, "wb") as f:
            f.write(out)
    return out


def _spec(m):
    return getattr(m, "spec", m)


# ------------------------------------------------------------------ reading
def load_bundle(source, section=None):
    """The Program in ``section`` of an .ibpf bundle (path or bytes)."""
    return load_bundle_object(source).program(section)


def _inner(value, nmaps, path, what):
    """A map of maps' [template index, {index: inner map name}] (MapSpec.inner), checked."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], dict):
        raise _bad(path, "%s: bad inner map description" % what)
    template = _int(value[0], 0, max(nmaps - 1, 0), path, what + " inner template")
    entries = {}
    for key in value[1]:
        entries[_int(int(key) if str(key).isdigit() else -1, 0, 0xFFFFFFFF, path, what + " inner index")] = \
            _str(value[1][key], path, what + " inner map name")
    return (template, entries)


def load_bundle_object(source):
    """Parse a whole bundle (path or bytes) into a Bundle; LoadError for anything malformed."""
    if isinstance(source, (bytes, bytearray)):
        data, path = bytes(source), "<bundle>"
    else:
        path = str(source)
        data = read_limited(path, MAX_BUNDLE_BYTES, "bundle")
    if len(data) > MAX_BUNDLE_BYTES:
        raise LoadError("%s: bundle larger than %d bytes" % (path, MAX_BUNDLE_BYTES))
    try:
        return _parse(data, path)
    except LoadError as exc:
        text = str(exc)
        clean = "".join(c if " " <= c != "\x7f" else "?" for c in text)
        if clean != text:  # names from the bundle may hold control characters
            raise LoadError(clean) from None
        raise
    except Exception as exc:  # any other failure on hostile input is still a load error
        raise LoadError("%s: malformed bundle: %s" % (path, exc)) from None


def read_limited(path, limit, what):
    """The bytes of file ``path``, refusing files over ``limit`` bytes before reading them.

    (Asking MicroPython's read() for ``limit`` bytes would allocate that much up front.)"""
    try:
        size = os.stat(path)[6]
        if size > limit:
            raise LoadError("%s: %s larger than %d bytes" % (path, what, limit))
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise LoadError("cannot read %s: %s" % (path, exc)) from None


def _bad(path, what):
    return LoadError("%s: malformed bundle: %s" % (path, what))


def _int(value, lo, hi, path, what):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise _bad(path, "%s %r out of range" % (what, value))
    return value


def _str(value, path, what):
    if not isinstance(value, str):
        raise _bad(path, "%s is not a string" % what)
    return value


def _programs(raw, path, what):
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _bad(path, "%s: bad prog_array contents" % what)
    out = {}
    for key in raw:
        try:
            index = int(key)
        except (TypeError, ValueError):
            raise _bad(path, "%s: bad prog_array index %r" % (what, key)) from None
        out[_int(index, 0, 0xFFFFFFFF, path, what + " prog_array index")] = _str(raw[key], path, "program")
    return out


def _parse(data, path):
    if len(data) < _HDR.size + 4 or data[:4] != MAGIC:
        raise LoadError("%s: not an .ibpf bundle (bad magic or truncated)" % path)
    _magic, version, _res, hlen, blen = _HDR.unpack_from(data, 0)
    if version != VERSION:
        raise LoadError("%s: bundle format version %d is not supported (this iotbpf reads version %d)"
                        % (path, version, VERSION))
    end = _HDR.size + hlen + blen
    if end + 4 != len(data):
        raise LoadError("%s: truncated or padded bundle (%d bytes, header says %d)"
                        % (path, len(data), end + 4))
    if _U32.unpack_from(data, end)[0] != fnv1a32(data[:end]):
        raise LoadError("%s: bundle checksum mismatch (corrupted file)" % path)
    try:
        header = boundedjson.loads(data[_HDR.size:_HDR.size + hlen])
    except (ValueError, UnicodeError):
        raise _bad(path, "header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _bad(path, "header is not an object")
    if header.get("version") != VERSION:
        raise LoadError("%s: bundle header version %r is not supported" % (path, header.get("version")))
    blobs = data[_HDR.size + hlen:end]

    def blob(ref, what):
        if ref is None:
            return None
        if not isinstance(ref, list) or len(ref) != 2:
            raise _bad(path, "%s: bad blob reference" % what)
        off = _int(ref[0], 0, len(blobs), path, what + " offset")
        n = _int(ref[1], 0, len(blobs) - off, path, what + " length")
        return blobs[off:off + n]

    bundle = Bundle(path)
    bundle.license = _str(header.get("license", ""), path, "license")
    maps = header.get("maps", [])
    progs = header.get("programs", [])
    files = header.get("files", [])
    if not isinstance(maps, list) or len(maps) > MAX_MAPS:
        raise _bad(path, "bad map list")
    if not isinstance(progs, list) or len(progs) > MAX_PROGRAMS:
        raise _bad(path, "bad program list")
    if not isinstance(files, list):
        raise _bad(path, "bad file list")
    for i, m in enumerate(maps):
        if not isinstance(m, dict):
            raise _bad(path, "map %d is not an object" % i)
        what = "map %d" % i
        spec = T.MapSpec(
            _str(m.get("name"), path, what + " name"),
            _int(m.get("type"), 0, 0xFFFFFFFF, path, what + " type"),
            _int(m.get("key_size"), 0, 0xFFFFFFFF, path, what + " key_size"),
            _int(m.get("value_size"), 0, 0xFFFFFFFF, path, what + " value_size"),
            _int(m.get("max_entries"), 0, 0xFFFFFFFF, path, what + " max_entries"),
            _int(m.get("flags", 0), 0, 0xFFFFFFFF, path, what + " flags"),
            data=blob(m.get("data"), what + " data"),
            key_type=m.get("key_type"), value_type=m.get("value_type"),
            pinning=_int(m.get("pinning", 0), 0, 0xFFFFFFFF, path, what + " pinning"),
            section=m.get("section"),
            map_extra=_int(m.get("map_extra", 0), 0, (1 << 64) - 1, path, what + " map_extra"),
            programs=_programs(m.get("programs"), path, what),
            inner=_inner(m.get("inner"), len(maps), path, what))
        bundle.maps.append(spec)
    for i, p in enumerate(progs):
        if not isinstance(p, dict):
            raise _bad(path, "program %d is not an object" % i)
        what = "program %d" % i
        name = _str(p.get("name"), path, what + " name")
        code = blob(p.get("insns"), what + " instructions")
        if not code or len(code) % 8 or len(code) > isa.MAX_INSNS * 8:
            raise _bad(path, "%s: instructions are not a whole number of slots" % what)
        try:
            insns = isa.decode(code)
        except isa.DecodeError as exc:
            raise _bad(path, "%s: %s" % (what, exc)) from None
        for pc in range(len(insns)):
            insn = insns[pc]
            if insn.opcode == isa.LDDW and insn.src in (isa.BPF_PSEUDO_MAP_FD, isa.BPF_PSEUDO_MAP_VALUE):
                k = insn.imm & 0xFFFFFFFF
                if k >= len(bundle.maps):
                    raise _bad(path, "%s pc %d: map index %d out of range" % (what, pc, k))
        line_info = {}
        for entry in p.get("line_info", []):
            if not isinstance(entry, list) or len(entry) != 4:
                raise _bad(path, "%s: bad line info entry" % what)
            pc = _int(entry[0], 0, len(insns) - 1, path, what + " line info pc")
            fi = _int(entry[1], 0, len(files) - 1, path, what + " line info file")
            line = _int(entry[2], 0, 1 << 30, path, what + " line number")
            line_info[pc] = (_str(files[fi], path, "file name"), line, _str(entry[3], path, "line text"))
        labels = {}
        raw_labels = p.get("labels", {})
        if not isinstance(raw_labels, dict):
            raise _bad(path, "%s: bad labels" % what)
        for lname in raw_labels:
            labels[_str(lname, path, "label")] = _int(raw_labels[lname], 0, len(insns) - 1, path, "label pc")
        prog = Program(insns, maps=bundle.maps, name=name,
                       section=_str(p.get("section", name), path, what + " section"),
                       line_info=line_info, labels=labels)
        prog.license = bundle.license
        if name in bundle.programs:
            raise _bad(path, "two programs named %s" % name)
        bundle.programs[name] = prog
    return bundle
