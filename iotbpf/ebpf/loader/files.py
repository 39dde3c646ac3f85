"""A program from a file, by its extension: ``.s``/``.asm`` (assembler), ``.bin`` (raw slots),
``.data`` (bpf_conformance), ``.o`` (ELF, host only) and ``.ibpf`` (bundle)."""

from iotbpf.ebpf import isa
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.loader.data import parse_data
from iotbpf.ebpf.program import Program


def load_program(path, section=None):
    """Load ``.s``/``.asm``, ``.bin``, ``.data``; ``.o`` and ``.ibpf`` via their loaders."""
    lower = path.lower()
    if lower.endswith(".o"):
        return _load_with("iotbpf.ebpf.loader.elf", "load_elf", path, section, "ELF objects")
    if lower.endswith(".ibpf"):
        return _load_with("iotbpf.ebpf.loader.bundle", "load_bundle", path, section, ".ibpf bundles")
    name = path.replace("\\", "/").split("/")[-1]
    if lower.endswith(".bin"):
        with open(path, "rb") as f:
            data = f.read(isa.MAX_INSNS * 8 + 1)
        return Program.from_bytes(data, name=name)
    if lower.endswith(".data"):
        return parse_data(_read_text(path), name).program()
    if lower.endswith(".s") or lower.endswith(".asm"):
        return Program.from_asm(_read_text(path), name=name, filename=path)
    raise LoadError("unknown program file type %r (use .s, .bin, .data, .o or .ibpf)" % path)


MAX_TEXT = 16 * 1024 * 1024


def _read_text(path):
    with open(path, "rb") as f:
        data = f.read(MAX_TEXT + 1)
    if len(data) > MAX_TEXT:
        raise LoadError("%s: file too large" % path)
    try:
        return data.decode("utf-8")
    except UnicodeError:
        raise LoadError("%s: not a text file (UTF-8 expected)" % path) from None


def _load_with(module_name, func_name, path, section, what):
    try:
        module = __import__(module_name, None, None, [func_name])
    except ImportError:
        raise LoadError("loading %s is not available in this build (%s)" % (what, path)) from None
    func = getattr(module, func_name, None)
    if func is None:
        raise LoadError("loading %s is not available in this build (%s)" % (what, path))
    return func(path, section=section)
