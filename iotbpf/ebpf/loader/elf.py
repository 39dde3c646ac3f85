"""The ELF loader (host side, pyelftools): ``clang -target bpf`` objects to Programs, doing what
libbpf does before BPF_PROG_LOAD (sections, subprograms, relocations, maps, BTF line info)."""

from __future__ import annotations

import io
import os
import struct

from iotbpf.ebpf import isa
from iotbpf.ebpf import types as T
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.loader.btf import Btf, parse_btf_ext
from iotbpf.ebpf.program import Program

MAX_OBJECT_BYTES = 64 << 20
EM_BPF = 247
R_BPF_NONE = 0
R_BPF_64_64 = 1
R_BPF_64_ABS64 = 2
R_BPF_64_ABS32 = 3
R_BPF_64_NODYLD32 = 4
R_BPF_64_32 = 10
RELOC_NAMES = {0: "R_BPF_NONE", 1: "R_BPF_64_64", 2: "R_BPF_64_ABS64", 3: "R_BPF_64_ABS32",
               4: "R_BPF_64_NODYLD32", 10: "R_BPF_64_32"}
MACHINES = {3: "x86 (i386)", 62: "x86-64", 40: "ARM", 183: "AArch64", 243: "RISC-V", 8: "MIPS",
            20: "PowerPC", 21: "PowerPC64"}
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_RELA = 4
SHT_NOBITS = 8
SHT_REL = 9
SHF_ALLOC = 2
SHF_EXECINSTR = 4
SHN_UNDEF = 0
STT_FUNC = 2
STT_SECTION = 3
STB_LOCAL = 0
LEGACY_MAP_FIELDS = 5  # type, key_size, value_size, max_entries, map_flags (u32 each)
IGNORED_PREFIXES = (".debug", ".llvm", ".eh_frame", ".note", ".comment", ".BTF", ".strtab",
                    ".symtab", ".shstrtab", ".group")
BTF_MAP_FIELDS = ("type", "max_entries", "map_flags", "key_size", "value_size", "pinning",
                  "map_extra", "numa_node")


class _Section:
    __slots__ = ("index", "name", "type", "flags", "size", "data", "link", "info", "offset")


class _Symbol:
    __slots__ = ("name", "value", "size", "shndx", "type", "bind")


class ElfObject:
    """A loaded object: programs by name, the shared MapSpec list, license."""

    def __init__(self, path: str):
        self.path = path
        self.programs: dict = {}
        self.maps: list = []
        self.license = ""
        self._by_section: dict = {}
        self._by_function: dict = {}

    def names(self) -> list:
        return list(self.programs)

    def program(self, section: str | None = None) -> Program:
        """The program in section (or function) ``section``; the only one when None."""
        if section is None:
            if len(self.programs) == 1:
                return next(iter(self.programs.values()))
            if not self.programs:
                raise LoadError("%s: no programs in this object" % self.path)
            raise LoadError(printable("%s has %d programs (%s): choose one with --section"
                                      % (self.path, len(self.programs), ", ".join(self.programs))))
        if section in self.programs:
            return self.programs[section]
        if section in self._by_function:
            return self._by_function[section]
        found = self._by_section.get(section)
        if found is not None and len(found) == 1:
            return found[0]
        if found:
            raise LoadError(printable("%s: section %s holds %d programs (%s): name the function instead"
                                      % (self.path, section, len(found), ", ".join(p.name for p in found))))
        raise LoadError(printable("%s: no program section %r (sections: %s)"
                                  % (self.path, section, ", ".join(self.programs) or "none")))


def load_elf(source, section: str | None = None) -> Program:
    """The Program in ``section`` of a BPF object (path or bytes); ``program.siblings`` lists
    the object's other programs (tail-call targets share its maps)."""
    obj = load_elf_object(source)
    program = obj.program(section)
    program.siblings = [p for p in obj.programs.values() if p is not program]
    return program


def display_file_name(name: str, object_path: str) -> str:
    """A source file name as messages show it: relative to the object's folder when the object
    was built with an absolute path (no build machine's paths in errors, bundles or OTA replies)."""
    if not name or not os.path.isabs(name):
        return name
    base = os.path.dirname(os.path.abspath(object_path)) if object_path and os.path.exists(object_path) else ""
    if base:
        rel = os.path.relpath(name, base)
        if not rel.startswith(".."):
            return rel
    return os.path.basename(name)


def load_elf_object(source) -> ElfObject:
    """Parse a BPF ELF object (path, bytes) into an ElfObject; LoadError when it cannot."""
    if isinstance(source, (bytes, bytearray)):
        data, path = bytes(source), "<object>"
    else:
        path = str(source)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_OBJECT_BYTES + 1)
        except OSError as exc:
            raise LoadError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    if len(data) > MAX_OBJECT_BYTES:
        raise LoadError("%s: larger than %d bytes" % (path, MAX_OBJECT_BYTES))
    _check_header(data, path)
    loader = None
    try:
        loader = _Loader(data, path)
        return loader.load()
    except LoadError as exc:
        text = str(exc)
        if loader is not None and not text.startswith(path + ":"):   # e.g. BTF read lazily
            text = "%s: %s (while reading %s)" % (path, text, loader.where)
        clean = printable(text)
        if clean != str(exc):  # names from the object may hold control characters
            raise LoadError(clean) from None
        raise
    except RecursionError:
        raise LoadError("%s: malformed ELF object (nesting too deep) in %s"
                        % (path, printable(loader.where if loader else "the ELF header"))) from None
    except Exception as exc:  # pyelftools and struct raise many kinds on garbage
        # name the structure and the file offset being read (issue 24: "where, and what")
        where = loader.where if loader is not None else "the ELF header (offset 0x0)"
        raise LoadError("%s: malformed ELF object in %s: %s" % (path, printable(where), printable(_short(exc)))) \
            from None


def printable(text: str) -> str:
    """``text`` with control characters replaced, so an error stays one line."""
    return "".join(c if " " <= c != "\x7f" else "?" for c in text)


def _short(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _check_header(data: bytes, path: str) -> None:
    if len(data) < 64 or data[:4] != b"\x7fELF":
        raise LoadError("%s: not an ELF object file (bad magic or truncated header)" % path)
    if data[4] != 2:
        raise LoadError("%s: 32-bit ELF; BPF objects are 64-bit" % path)
    if data[5] != 1:
        raise LoadError("%s: big-endian ELF (-target bpfeb) is not supported; compile with -target bpf"
                        % path)
    etype, machine = struct.unpack_from("<HH", data, 16)
    if machine != EM_BPF:
        raise LoadError("%s: wrong machine %s (e_machine %d), not BPF (%d): compile with clang -target bpf"
                        % (path, MACHINES.get(machine, "unknown"), machine, EM_BPF))
    if etype != 1:
        raise LoadError("%s: not a relocatable object (e_type %d); link nothing, pass the .o from clang -c"
                        % (path, etype))


class _Loader:
    def __init__(self, data: bytes, path: str):
        from elftools.elf.elffile import ELFFile

        self.data = data
        self.path = path
        self.where = "the ELF header (offset 0x0)"   # what is being read, for error messages
        self.elf = ELFFile(io.BytesIO(data))
        self.sections: list = []
        self.symbols: list = []
        self.btf: Btf | None = None
        self.obj = ElfObject(path)
        self.map_by_sym: dict = {}  # (shndx, offset) -> map index
        self.data_maps: dict = {}  # shndx -> map index
        self.rels: dict = {}  # target shndx -> [(offset, symbol, type)]
        self.maps_rels: list = []  # relocations in .maps: prog_array initialisers

    def fail(self, msg: str) -> LoadError:
        return LoadError("%s: %s" % (self.path, msg))

    # ---------------------------------------------------------------- reading
    def load(self) -> ElfObject:
        n = self.elf.num_sections()
        if n > 4096:
            raise self.fail("%d sections is too many" % n)
        shoff, shentsize = struct.unpack_from("<Q", self.data, 0x28)[0], struct.unpack_from("<H", self.data, 0x3A)[0]
        for i in range(n):
            self.where = "section header %d (offset 0x%x)" % (i, shoff + i * shentsize)
            s = self.elf.get_section(i)
            h = s.header
            self.where = "section %d %r (header at offset 0x%x, data at 0x%x)" % (
                i, s.name, shoff + i * shentsize, h["sh_offset"])
            sec = _Section()
            sec.index = i
            sec.name = s.name
            sec.type = h["sh_type"] if isinstance(h["sh_type"], int) else _SHT.get(h["sh_type"], -1)
            sec.flags = h["sh_flags"]
            sec.size = h["sh_size"]
            sec.link = h["sh_link"]
            sec.info = h["sh_info"]
            if sec.type == SHT_NOBITS:
                sec.data = None
            else:
                if h["sh_offset"] + sec.size > len(self.data):
                    raise self.fail("section %s extends past the end of the file (truncated?)"
                                    % (sec.name or i))
                sec.data = self.data[h["sh_offset"]:h["sh_offset"] + sec.size]
            sec.offset = h["sh_offset"]
            self.sections.append(sec)
        self._read_symbols()
        btf = self._named(".BTF")
        if btf is not None:
            self.where = "section .BTF (%d bytes)" % len(btf.data or b"")
            try:
                self.btf = Btf(btf.data)
            except LoadError as exc:
                raise self.fail("section .BTF (at file offset 0x%x): %s" % (btf.offset, exc)) from None
        lic = self._named("license")
        if lic is not None and lic.data:
            self.obj.license = lic.data.split(b"\0")[0].decode("utf-8", "replace")
        self.where = "the relocation sections"
        self._read_relocations()
        self.where = "the map definitions (maps, .maps)"
        self._legacy_maps()
        self._btf_maps()
        self._check_maps_relocations()
        self.where = "the global data sections"
        self._data_maps()
        self.where = "the program sections"
        self._programs()
        return self.obj

    def _named(self, name: str):
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def _read_symbols(self) -> None:
        tabs = [s for s in self.sections if s.type == SHT_SYMTAB]
        if not tabs:
            raise self.fail("no symbol table (.symtab): not an object produced by clang -c")
        symtab = self.elf.get_section(tabs[0].index)
        count = symtab.num_symbols()
        if count > 1 << 20:
            raise self.fail("%d symbols is too many" % count)
        for i in range(count):
            self.where = "symbol %d of %s (offset 0x%x)" % (i, tabs[0].name,
                                                           symtab["sh_offset"] + i * (symtab["sh_entsize"] or 24))
            s = symtab.get_symbol(i)
            sym = _Symbol()
            sym.name = s.name
            sym.value = s["st_value"]
            sym.size = s["st_size"]
            shndx = s["st_shndx"]
            sym.shndx = shndx if isinstance(shndx, int) else (SHN_UNDEF if shndx == "SHN_UNDEF" else -1)
            sym.type = _STT.get(s["st_info"]["type"], -1)
            sym.bind = 0 if s["st_info"]["bind"] == "STB_LOCAL" else 1
            self.symbols.append(sym)

    def _sec(self, index: int):
        if not 0 <= index < len(self.sections):
            raise self.fail("section index %d out of range" % index)
        return self.sections[index]

    def _read_relocations(self) -> None:
        for s in self.sections:
            if s.type == SHT_RELA:
                raise self.fail("RELA relocation section %s is not supported (BPF objects use REL)"
                                % s.name)
            if s.type != SHT_REL:
                continue
            target = self._sec(s.info)
            if target.name.startswith(IGNORED_PREFIXES):
                continue
            if len(s.data) % 16:
                raise self.fail("relocation section %s has a partial entry (truncated?)" % s.name)
            entries = []
            for off in range(0, len(s.data), 16):
                r_offset, r_info = struct.unpack_from("<QQ", s.data, off)
                sym_index = r_info >> 32
                rtype = r_info & 0xFFFFFFFF
                if sym_index >= len(self.symbols):
                    raise self.fail("relocation in %s refers to symbol %d, outside the symbol table"
                                    % (s.name, sym_index))
                entries.append((r_offset, self.symbols[sym_index], rtype))
            if not entries:
                continue
            if target.name == ".maps":
                self.maps_rels = entries  # prog_array initialisers, checked in _btf_maps
                continue
            if not target.flags & SHF_EXECINSTR:
                raise self.fail("relocations in data section %s (%s against %s) are not supported: "
                                "pointers in global data or map initialisers"
                                % (target.name, RELOC_NAMES.get(entries[0][2], entries[0][2]),
                                   entries[0][1].name or "a section"))
            self.rels[target.index] = entries

    # ---------------------------------------------------------------- maps
    def _add_map(self, spec) -> int:
        for m in self.obj.maps:
            if m.name == spec.name:
                raise self.fail("two maps named %s" % spec.name)
        self.obj.maps.append(spec)
        return len(self.obj.maps) - 1

    def _syms_in(self, sec) -> list:
        return sorted((s for s in self.symbols if s.shndx == sec.index and s.type != STT_SECTION
                       and s.name), key=lambda s: s.value)

    def _legacy_maps(self) -> None:
        sec = self._named("maps")
        if sec is None or not sec.size:
            return
        syms = self._syms_in(sec)
        if not syms:
            raise self.fail("section maps has no map symbols")
        def_size = sec.size // len(syms)
        if def_size < 4 * LEGACY_MAP_FIELDS or sec.size % len(syms):
            raise self.fail("legacy maps section: %d bytes for %d maps is not a whole "
                            "struct bpf_map_def (5 x u32) each" % (sec.size, len(syms)))
        for sym in syms:
            if sym.value + 20 > len(sec.data or b""):
                raise self.fail("map %s lies outside the maps section" % sym.name)
            t, ks, vs, n, flags = struct.unpack_from("<5I", sec.data, sym.value)
            idx = self._add_map(T.MapSpec(sym.name, t, ks, vs, n, flags, section="maps"))
            self.map_by_sym[(sec.index, sym.value)] = idx

    def _btf_maps(self) -> None:
        sec = self._named(".maps")
        if sec is None or not sec.size:
            return
        if self.btf is None:
            raise self.fail("section .maps needs BTF to describe its maps (compile with -g)")
        pending_inner = []
        for sym in self._syms_in(sec):
            d = self.btf.map_definition(sym.name)
            programs = None
            if "values_offset" in d and d.get("type") in T.MAP_IN_MAP_TYPES:
                pending_inner.append((sym, d, self._initialiser(sym, d, maps_section=sec)))
            elif "values_offset" in d:
                programs = self._prog_array_values(sym, d)
            for key in d:
                if key not in BTF_MAP_FIELDS and not key.endswith("_type_id") and \
                        key not in ("values_offset", "inner"):
                    raise self.fail("map %s: unsupported map definition field %s" % (sym.name, key))
            if "type" not in d:
                raise self.fail("map %s: no __uint(type, ...) in its definition" % sym.name)
            key_type = value_type = None
            if "key_type_id" in d:
                key_type = self.btf.describe(d["key_type_id"])
            if "value_type_id" in d:
                value_type = self.btf.describe(d["value_type_id"])
            spec = T.MapSpec(sym.name, d["type"], d.get("key_size", 0), d.get("value_size", 0),
                             d.get("max_entries", 0), d.get("map_flags", 0), key_type=key_type,
                             value_type=value_type, pinning=d.get("pinning", 0), section=".maps",
                             map_extra=d.get("map_extra", 0), programs=programs)
            if spec.type == T.BPF_MAP_TYPE_PERF_EVENT_ARRAY and not spec.max_entries:
                spec.max_entries = 1  # libbpf: the number of CPUs (the node has one)
            if spec.type == T.BPF_MAP_TYPE_PROG_ARRAY and "value_size" not in d:
                spec.value_size = 4
            if spec.type == T.BPF_MAP_TYPE_PROG_ARRAY and "key_size" not in d:
                spec.key_size = 4
            if spec.type in T.MAP_IN_MAP_TYPES:
                spec.value_size = d.get("value_size", 4)  # user space stores map fds
                if spec.type == T.BPF_MAP_TYPE_ARRAY_OF_MAPS and "key_size" not in d:
                    spec.key_size = 4
            self.map_by_sym[(sec.index, sym.value)] = self._add_map(spec)
        for sym, d, entries in pending_inner:
            self._map_in_map(sym, d, entries)

    def _map_in_map(self, sym, d, entries) -> None:
        """A map of maps: its inner template (the first initial inner map, else a map named
        ``<outer>.inner`` built from ``__array(values, struct {...})``) and initial entries."""
        outer = self.obj.maps[self.map_by_sym[(self._named(".maps").index, sym.value)]]
        if "inner" not in d:
            raise self.fail("map %s: a map of maps needs __array(values, struct {...}) describing "
                            "its inner maps" % sym.name)
        inner = d["inner"]
        names = dict((m.name, i) for i, m in enumerate(self.obj.maps))
        for index, name in entries.items():
            target = self.obj.maps[names[name]] if name in names else None
            if target is None or target.type != inner.get("type") or target.key_size != \
                    inner.get("key_size", 0) or target.value_size != inner.get("value_size", 0):
                raise self.fail("map %s: entry %d (%s) does not match the inner map definition"
                                % (sym.name, index, name))
        if entries:
            template = names[entries[min(entries)]]
        else:
            key_type = self.btf.describe(inner["key_type_id"]) if "key_type_id" in inner else None
            value_type = self.btf.describe(inner["value_type_id"]) if "value_type_id" in inner else None
            template = self._add_map(T.MapSpec(sym.name + ".inner", inner.get("type", 0),
                                               inner.get("key_size", 0), inner.get("value_size", 0),
                                               inner.get("max_entries", 0), inner.get("map_flags", 0),
                                               key_type=key_type, value_type=value_type, section=".maps"))
        outer.inner = (template, entries)

    def _check_maps_relocations(self) -> None:
        sec = self._named(".maps")
        claimed = []
        if sec is not None:
            for s in self._syms_in(sec):
                spec_idx = self.map_by_sym.get((sec.index, s.value))
                if spec_idx is not None and (self.obj.maps[spec_idx].programs is not None
                                         or self.obj.maps[spec_idx].type in T.MAP_IN_MAP_TYPES):
                    claimed.append((s.value, s.value + max(s.size, 1)))
        for r_offset, target, rtype in self.maps_rels:
            if not any(lo <= r_offset < hi for lo, hi in claimed):
                raise self.fail("relocations in data section .maps (%s against %s) are not supported"
                                % (RELOC_NAMES.get(rtype, rtype), target.name or "a section"))

    def _initialiser(self, sym, d, maps_section) -> dict:
        """{index: inner map name} from a map of maps' ``.values = { [i] = &map }``."""
        base = sym.value + d["values_offset"]
        out = {}
        for r_offset, target, rtype in self.maps_rels:
            if not sym.value <= r_offset < sym.value + max(sym.size, 1):
                continue
            if rtype != R_BPF_64_ABS64 or (r_offset - base) % 8 or r_offset < base:
                raise self.fail("map %s: unsupported %s relocation in its initialiser"
                                % (sym.name, RELOC_NAMES.get(rtype, "type %d" % rtype)))
            if target.shndx != maps_section.index:
                raise self.fail("map %s: initialiser entry %s is not a map of .maps"
                                % (sym.name, target.name or "?"))
            out[(r_offset - base) // 8] = target.name
        return out

    def _prog_array_values(self, sym, d) -> dict:
        """{index: function name} from a prog_array's ``__array(values, ...)`` initialiser."""
        if d.get("type") != T.BPF_MAP_TYPE_PROG_ARRAY:
            raise self.fail("map %s: __array(values, ...) is only supported for prog_array maps "
                            "(maps of maps are not supported)" % sym.name)
        base = sym.value + d["values_offset"]
        out = {}
        for r_offset, target, rtype in self.maps_rels:
            if not sym.value <= r_offset < sym.value + max(sym.size, 1):
                continue
            if rtype != R_BPF_64_ABS64 or (r_offset - base) % 8 or r_offset < base:
                raise self.fail("map %s: unsupported %s relocation in its initialiser"
                                % (sym.name, RELOC_NAMES.get(rtype, "type %d" % rtype)))
            tsec = self._sec(target.shndx) if target.shndx > 0 else None
            if tsec is None or not tsec.flags & SHF_EXECINSTR or target.type != STT_FUNC:
                raise self.fail("map %s: initialiser entry %s is not a program"
                                % (sym.name, target.name or "?"))
            out[(r_offset - base) // 8] = target.name
        return out

    def _data_maps(self) -> None:
        for sec in self.sections:
            name = sec.name
            if not (name == ".data" or name == ".bss" or name.startswith(".data.")
                    or name.startswith(".bss.") or name.startswith(".rodata")):
                continue
            if not sec.size:
                continue
            if sec.size > 1 << 20:
                raise self.fail("global data section %s is %d bytes (limit 1 MiB)" % (name, sec.size))
            flags = T.BPF_F_MMAPABLE
            if name.startswith(".rodata"):
                flags |= T.BPF_F_RDONLY_PROG
            data = None if sec.data is None else bytes(sec.data)
            spec = T.MapSpec(name, T.BPF_MAP_TYPE_ARRAY, 4, sec.size, 1, flags, data=data,
                             section=name)
            if self.btf is not None:
                ds = self.btf.datasec(name)
                if ds is not None:
                    offsets = dict((sym.name, sym.value) for sym in self._syms_in(sec))
                    spec.value_type = _datasec_description(self.btf, ds, sec.size, offsets)
            self.data_maps[sec.index] = self._add_map(spec)

    # ---------------------------------------------------------------- programs
    def _decode(self, sec) -> list:
        if sec.data is None or len(sec.data) % 8:
            raise self.fail("code section %s is %d bytes, not a whole number of instructions"
                            % (sec.name, sec.size))
        if sec.size > isa.MAX_INSNS * 8:
            raise self.fail("code section %s is too large" % sec.name)
        try:
            return isa.decode(sec.data)
        except isa.DecodeError as exc:
            raise self.fail("section %s: %s" % (sec.name, exc)) from None

    def _programs(self) -> None:
        text = None
        code = []
        for sec in self.sections:
            if sec.type == SHT_PROGBITS and sec.flags & SHF_EXECINSTR and sec.size:
                if sec.name == ".text":
                    text = sec
                else:
                    code.append(sec)
        if not code and text is not None:
            code = [text]  # an object with no SEC("..."): its .text is the program
            text = None
        self.text = text
        self.text_insns = self._decode(text) if text is not None else None
        self.text_funcs = None
        line_records = []
        if self.btf is not None:
            ext = self._named(".BTF.ext")
            if ext is not None and ext.data:
                line_records = parse_btf_ext(ext.data, self.btf)
        self.lines: dict = {}
        for rec in line_records:
            rec.file = display_file_name(rec.file, self.path)
            self.lines.setdefault(rec.section, []).append(rec)
        for sec in code:
            insns = self._decode(sec)
            funcs = [s for s in self._syms_in(sec) if s.type == STT_FUNC and s.bind != STB_LOCAL]
            if not funcs:
                funcs = [None]
            for func in funcs:
                if func is None or len(funcs) == 1:
                    start, end = 0, len(insns)
                else:
                    if func.value % 8 or func.size % 8 or func.value + func.size > sec.size:
                        raise self.fail("function %s has a bad position in %s" % (func.name, sec.name))
                    start, end = func.value // 8, (func.value + func.size) // 8
                name = sec.name if len(funcs) == 1 else func.name
                prog = self._link(sec, insns, start, end, name, func.name if func else sec.name)
                self.obj.programs[name] = prog
                self.obj._by_section.setdefault(sec.name, []).append(prog)
                if func is not None:
                    self.obj._by_function[func.name] = prog

    def _link(self, sec, sec_insns, start: int, end: int, name: str, func_name: str) -> Program:
        """One program as libbpf links it: its own function, then every .text subprogram it
        reaches (transitively, each once, in the order first reached), calls relocated."""
        if end < len(sec_insns) and end > 0 and sec_insns[end - 1].opcode == isa.LDDW:
            raise self.fail("function %s ends inside a lddw" % func_name)
        insns = []
        line_info = {}
        labels = {}
        placed = {}  # (section index, first insn of the piece) -> its pc in the program
        fixups = []  # (pc, is_call, piece key, insn offset in the piece)
        pieces = [(sec, sec_insns, start, end, func_name)]
        queued = {(sec.index, start)}
        for psec, pinsns, pstart, pend, pname in pieces:  # grows while it runs
            base = len(insns)
            placed[(psec.index, pstart)] = base
            labels.setdefault(pname, base)
            insns.extend(isa.Instruction(x.opcode, x.dst, x.src, x.off, x.imm)
                         for x in pinsns[pstart:pend])
            for rec in self.lines.get(psec.name, ()):
                pc = rec.insn_off // 8
                if pstart <= pc < pend:
                    line_info[base + pc - pstart] = (rec.file, rec.line, rec.text)
            relocs = {}
            for off, sym, rtype in self.rels.get(psec.index, ()):
                if pstart * 8 <= off < pend * 8:
                    relocs[off // 8] = (sym, rtype)
            for pc in range(pstart, pend):
                at = base + pc - pstart
                x = insns[at]
                entry = relocs.get(pc)
                if entry is not None:
                    if entry[1] == R_BPF_NONE:
                        continue
                    target = self._relocate(insns, at, entry[0], entry[1], psec)
                elif x.opcode == isa.CALL and x.src == isa.BPF_PSEUDO_CALL:
                    target = (psec, (pc + 1 + x.imm) * 8,
                              "bpf-to-bpf call at instruction %d of %s" % (pc, psec.name))
                else:
                    continue
                if target is None:
                    continue
                tsec, byte_off, what = target
                piece = self._piece(tsec, byte_off, what, sec, start, end, func_name)
                key = (tsec.index, piece[0])
                if key not in queued:
                    queued.add(key)
                    pieces.append((tsec, self.text_insns, piece[0], piece[1], piece[2]))
                fixups.append((at, x.opcode == isa.CALL, key, byte_off // 8 - piece[0]))
        for at, is_call, key, delta in fixups:
            rel = placed[key] + delta - (at + 1)
            if is_call:
                insns[at].imm = rel
            else:
                insns[at].src = isa.BPF_PSEUDO_FUNC
                insns[at].imm = rel & 0xFFFFFFFF
        prog = Program(insns, maps=self.obj.maps, name=name, section=sec.name, line_info=line_info,
                       labels=labels)
        prog.license = self.obj.license
        return prog

    def _piece(self, target, byte_off, what, sec, start, end, func_name):
        """(first, end, name) of the function holding code offset ``byte_off`` of ``target``:
        the program's own range, or a .text subprogram; other programs' code is an error."""
        if byte_off % 8 or byte_off < 0 or byte_off >= target.size:
            raise self.fail("%s: target offset %d is not an instruction of %s"
                            % (what, byte_off, target.name))
        idx = byte_off // 8
        if target.index == sec.index and start <= idx < end:
            return start, end, func_name
        if self.text is not None and target.index == self.text.index:
            if self.text_funcs is None:
                self.text_funcs = self._text_functions()
            for first, last, fname in self.text_funcs:
                if first <= idx < last:
                    return first, last, fname
        raise self.fail("%s: calls into another program's code (%s) are not supported; put shared "
                        "functions in .text (no SEC)" % (what, target.name))

    def _text_functions(self) -> list:
        """.text cut at its function symbols [(first, end, name)] (libbpf's subprograms); a
        .text without function symbols is one piece."""
        text = self.text
        starts = {}
        for s in self._syms_in(text):
            if s.type != STT_FUNC:
                continue
            if s.value % 8 or s.value >= text.size:
                raise self.fail("function %s has a bad position in .text" % s.name)
            starts.setdefault(s.value // 8, s.name)
        if 0 not in starts:
            starts[0] = ".text"
        order = sorted(starts)
        n = len(self.text_insns)
        out = []
        for i, first in enumerate(order):
            last = order[i + 1] if i + 1 < len(order) else n
            if first < last and self.text_insns[last - 1].opcode == isa.LDDW and last < n:
                raise self.fail("function %s ends inside a lddw" % starts[first])
            out.append((first, last, starts[first]))
        return out

    def _relocate(self, insns, pc, sym, rtype, sec):
        """Apply a map or data relocation; for a code reference return (section, byte offset,
        description) for _link to place."""
        if not 0 <= pc < len(insns):
            raise self.fail("relocation offset outside section %s" % sec.name)
        insn = insns[pc]
        what = "%s relocation at instruction %d of %s against %s" % (
            RELOC_NAMES.get(rtype, "type %d" % rtype), pc, sec.name, sym.name or "a section")
        if sym.shndx == SHN_UNDEF or sym.shndx < 0:
            raise self.fail("%s: unresolved external symbol %s (extern variables, kfuncs and "
                            "ksyms are not supported)" % (what, sym.name or "?"))
        target = self._sec(sym.shndx)
        if rtype == R_BPF_64_64:
            if insn.opcode != isa.LDDW:
                raise self.fail("%s: not on a lddw instruction" % what)
            addend = isa.s32(insn.imm & 0xFFFFFFFF)
            if (target.index, sym.value) in self.map_by_sym:
                insn.src = isa.BPF_PSEUDO_MAP_FD
                insn.imm = self.map_by_sym[(target.index, sym.value)]
            elif target.index in self.data_maps:
                off = sym.value + addend
                if not 0 <= off < max(target.size, 1):
                    raise self.fail("%s: offset %d outside %s" % (what, off, target.name))
                insn.src = isa.BPF_PSEUDO_MAP_VALUE
                insn.imm = self.data_maps[target.index] | (off << 32)
            elif target.flags & SHF_EXECINSTR:
                return target, sym.value + addend, what
            elif target.name in ("maps", ".maps"):
                raise self.fail("%s: no map starts at offset %d of %s" % (what, sym.value, target.name))
            else:
                raise self.fail("%s: section %s is not supported (only maps, .maps, .data, .rodata*, "
                                ".bss and code)" % (what, target.name))
            return None
        if rtype == R_BPF_64_32:
            if insn.opcode != isa.CALL or insn.src != isa.BPF_PSEUDO_CALL:
                raise self.fail("%s: not on a bpf-to-bpf call (kfunc calls are not supported)" % what)
            if not target.flags & SHF_EXECINSTR:
                raise self.fail("%s: call into non-code section %s" % (what, target.name))
            return target, sym.value + (insn.imm + 1) * 8, what
        raise self.fail("%s: relocation type not supported in code" % what)


def _datasec_description(btf: Btf, ds, size: int, offsets: dict) -> dict:
    """The section as a struct of its variables. clang leaves every DATASEC offset 0 in the
    object; like libbpf's btf_fixup_datasec, each variable's offset is its symbol's value."""
    members = []
    for tid, offset, vsize in ds.extra:
        var = btf.get(tid)
        if var.kind != 14:  # KIND_VAR
            continue
        offset = offsets.get(var.name, offset)
        if offset + vsize > size:
            continue  # a variable outside its section: no view rather than a wrong one
        members.append({"name": var.name, "offset": offset, "type": btf.describe(var.size_or_type)})
    return {"kind": "struct", "name": ds.name, "size": size, "members": members}


_SHT = {"SHT_NULL": 0, "SHT_PROGBITS": 1, "SHT_SYMTAB": 2, "SHT_STRTAB": 3, "SHT_RELA": 4,
        "SHT_HASH": 5, "SHT_DYNAMIC": 6, "SHT_NOTE": 7, "SHT_NOBITS": 8, "SHT_REL": 9,
        "SHT_DYNSYM": 11, "SHT_LLVM_ADDRSIG": 0x6FFF4C03}
_STT = {"STT_NOTYPE": 0, "STT_OBJECT": 1, "STT_FUNC": 2, "STT_SECTION": 3, "STT_FILE": 4}
