"""bpf_conformance runner: parse ``.data`` test files, run them, compare r0.

The suite's own test helper (#5 "unwind", as in uBPF) is registered here and only here,
so it never leaks into real programs. Files that expect an error pass only if loading or
running reports one. MicroPython-compatible (os.listdir/os.stat only).
"""

import os

from iotbpf.ebpf import vm as vm_module
from iotbpf.ebpf.errors import IotbpfError, LoadError
from iotbpf.ebpf.program import Program

M64 = 0xFFFFFFFFFFFFFFFF
DEFAULT_BUDGET = 10000000
KNOWN_SECTIONS = ("asm", "raw", "mem", "result", "error", "c", "no register offset")


def unwind(ex, r1, r2, r3, r4, r5):
    """uBPF test helper 5: returns r1; if r1 is 0 the whole program stops and returns 0."""
    if r1 == 0:
        ex.stop(0)
    return r1


CONFORMANCE_HELPERS = {5: unwind}


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


class Result:
    """Outcome of one file with one engine."""

    def __init__(self, path, engine, passed, expected="", actual="", skipped=None):
        self.path = path
        self.engine = engine
        self.passed = passed
        self.expected = expected
        self.actual = actual
        self.skipped = skipped

    def __repr__(self):
        return "Result(%r, %s, passed=%r)" % (self.path, self.engine, self.passed)


def run_case(case, engine="interp", budget=DEFAULT_BUDGET):
    """Run one Case; never raises for problems of the test itself (they are failures)."""
    if case.skip is not None:
        return Result(case.name, engine, True, skipped=case.skip)
    expected = ("error: " + case.error) if case.error is not None else "0x%x" % case.result
    try:
        prog = case.program()
        machine = vm_module.VM(prog, helpers=CONFORMANCE_HELPERS, engine=engine, budget=budget)
        r0 = machine.run(mem=case.mem)
    except IotbpfError as exc:
        return Result(case.name, engine, case.error is not None, expected, "error: " + str(exc))
    actual = "0x%x" % r0
    return Result(case.name, engine, case.error is None and r0 == case.result, expected, actual)


def run_file(path, engine="interp", budget=DEFAULT_BUDGET):
    try:
        case = load_case(path)
    except IotbpfError as exc:
        return Result(path, engine, False, "a valid test file", "error: " + str(exc))
    return run_case(case, engine, budget)


def _is_dir(path):
    try:
        return (os.stat(path)[0] & 0x4000) != 0
    except OSError:
        return False


def collect(paths):
    """The ``.data`` files named by ``paths`` (files, or folders searched one level deep), sorted."""
    files = []
    for path in paths:
        if _is_dir(path):
            base = path.rstrip("/")
            for entry in sorted(os.listdir(path)):
                if entry.endswith(".data"):
                    files.append(base + "/" + entry)
        else:
            try:
                os.stat(path)
            except OSError:
                raise LoadError("no such file or folder: %s" % path) from None
            files.append(path)
    return files


def run_paths(paths, engines=("interp",), budget=DEFAULT_BUDGET):
    """Run every file with every engine; returns the list of Results."""
    results = []
    for path in collect(paths):
        for engine in engines:
            results.append(run_file(path, engine, budget))
    return results
