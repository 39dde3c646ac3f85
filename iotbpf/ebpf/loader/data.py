"""The bpf_conformance ``.data`` test format: sections of asm or raw slots, input memory and the
expected result or error, parsed into a Case whose ``program()`` is the Program to run."""

from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.isa import M64
from iotbpf.ebpf.program import Program

KNOWN_SECTIONS = ("asm", "raw", "mem", "result", "error", "c", "no register offset")


class Case:
    """One parsed ``.data`` file."""

    def __init__(self, name):
        self.name = name
        self.asm = ""
        self.asm_line = 1
        self.raw = None
        self.mem = b""
        self.result = None
        self.error = None
        self.skip = None

    def program(self):
        """The Program of this test (from ``raw`` when present, else from ``asm``)."""
        if self.raw is not None:
            prog = Program.from_bytes(self.raw, name=self.name)
        else:
            try:
                prog = Program.from_asm(self.asm, name=self.name, filename=self.name)
            except LoadError as exc:
                raise _shift_line(exc, self.asm_line - 1, self.name) from None
        prog.mem = self.mem
        prog.expected = self.result
        return prog


def _shift_line(exc, delta, name):
    """Re-number ``line N:`` of an AsmError to the line of the .data file."""
    text = str(exc)
    if text.startswith("line ") and delta:
        head, sep, rest = text.partition(":")
        try:
            text = "line %d%s%s" % (int(head[5:]) + delta, sep, rest)
        except ValueError:
            pass
    return type(exc)("%s: %s" % (name, text))


def parse_hex_bytes(text, where="", first_line=1):
    """Whitespace-separated hex bytes (``aa bb 11``, optional 0x prefix) -> bytes."""
    out = bytearray()
    for offset, line in enumerate(text.split("\n")):
        for word in line.split():
            w = word.lower()
            if w.startswith("0x"):
                w = w[2:]
            if len(w) % 2 or not w or any(c not in "0123456789abcdef" for c in w):
                raise LoadError("%sline %d: bad hex byte %r" % (where, first_line + offset, word))
            out.extend(bytes.fromhex(w))
    return bytes(out)


def parse_data(text, name="<data>"):
    """Parse the text of a ``.data`` file into a Case (LoadError on malformed content)."""
    case = Case(name)
    sections = {}
    starts = {}
    current = None
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.split("#", 1)[0].rstrip()
        if "--" in line and line.strip().startswith("--"):
            header = " ".join(line.strip()[2:].split()).lower()
            if header not in KNOWN_SECTIONS:
                case.skip = "unknown section %r" % header
                current = None
                continue
            current = header
            sections[current] = []
            starts[current] = lineno + 1
            continue
        if current is not None:
            sections[current].append(line)
    where = name + ": "
    if "asm" in sections:
        case.asm = "\n".join(sections["asm"])
        case.asm_line = starts["asm"]
    if "raw" in sections:
        case.raw = _parse_raw(sections["raw"], where)
    if "mem" in sections:
        case.mem = parse_hex_bytes("\n".join(sections["mem"]), where, starts["mem"])
    if "result" in sections:
        words = " ".join(sections["result"]).split()
        value = _parse_number(words[0]) if len(words) == 1 else None
        if value is None:
            raise LoadError("%sresult section must hold one number" % where)
        if not -(1 << 63) <= value <= M64:
            raise LoadError("%sresult %s does not fit in 64 bits" % (where, words[0]))
        case.result = value & M64
    if "error" in sections:
        case.error = " ".join(" ".join(sections["error"]).split())
    if "asm" not in sections and "raw" not in sections and case.skip is None:
        raise LoadError("%sno asm or raw section" % where)
    if case.result is None and case.error is None and case.skip is None:
        raise LoadError("%sno result or error section" % where)
    return case


def _is_byte_line(words):
    """A raw line written as the instruction's eight bytes in memory order (``63 0a fc ff 01 00 00 00``,
    the form of bpf_conformance's negative tests) rather than as 64-bit slot values."""
    return len(words) == 8 and all(len(w) == 2 and all(c in "0123456789abcdefABCDEF" for c in w) for w in words)


def _parse_raw(lines, where):
    """The raw section: per line either eight hex bytes (one instruction) or 64-bit slot values."""
    data = bytearray()
    for line in lines:
        words = line.split()
        if _is_byte_line(words):
            data.extend(bytes.fromhex("".join(words)))
            continue
        for word in words:
            value = _parse_number(word)
            if value is None or not 0 <= value <= M64:
                raise LoadError("%sraw section: bad 64-bit slot %r" % (where, word))
            data.extend(value.to_bytes(8, "little"))
    return bytes(data)


def _parse_number(word):
    w = word.lower()
    neg = w.startswith("-")
    if neg:
        w = w[1:]
    try:
        value = int(w[2:], 16) if w.startswith("0x") else int(w)
    except ValueError:
        return None
    return -value if neg else value


def load_case(path):
    with open(path, "rb") as f:
        data = f.read(4 * 1024 * 1024)
    try:
        text = data.decode("utf-8")
    except UnicodeError:
        raise LoadError("%s: not a text file" % path) from None
    return parse_data(text, path)
