"""No block of six or more lines is written twice in the engines, the instruction set and the verifier.

Lines are compared normalised (whitespace collapsed; blank and comment lines left out), so a
copy that was only re-indented still counts as a copy.
"""

from pathlib import Path

import iotbpf.ebpf

EBPF = Path(iotbpf.ebpf.__file__).parent
# every module of the engines and the instruction set, the range transfer and the verifier
MODULES = sorted(str(p.relative_to(EBPF))[:-3] for folder in ("engines", "isa") for p in (EBPF / folder).rglob("*.py")
                 if p.name != "__init__.py") + ["ranges", "verifier"]
WINDOW = 6
KNOWN = set()  # the first normalised line of a repeat accepted on purpose (none)


def _lines(text):
    """(number, normalised line) of the lines that count; import statements do not (a package's
    modules import the same names, one per line as ruff writes them, without repeating logic)."""
    out = []
    in_import = False
    for number, line in enumerate(text.splitlines(), 1):
        line = " ".join(line.split())
        if in_import:
            in_import = line != ")"
            continue
        if line.startswith("import ") or (line.startswith("from ") and " import " in line):
            in_import = line.endswith("(")
            continue
        if line and not line.startswith("#"):
            out.append((number, line))
    return out


def repeated_blocks(sources, window=WINDOW):
    """{first line of a window: [(name, line number), ...]} for windows that occur twice or more."""
    seen = {}
    for name, text in sources.items():
        lines = _lines(text)
        for k in range(len(lines) - window + 1):
            block = tuple(line for _, line in lines[k:k + window])
            seen.setdefault(block, []).append((name, lines[k][0]))
    return dict((block[0], places) for block, places in seen.items() if len(places) > 1)


def test_the_checker_finds_a_reindented_copy():
    body = "\n".join("x%d = f(%d)" % (i, i) for i in range(WINDOW))
    copy = "\n".join("        " + line for line in body.splitlines())
    found = repeated_blocks({"a": body + "\n# note\n", "b": "if y:\n" + copy})
    assert list(found) == ["x0 = f(0)"]
    assert repeated_blocks({"a": body, "b": "\n".join(body.splitlines()[1:])}) == {}
    names = "from m import (\n" + "".join("    n%d,\n" % i for i in range(WINDOW)) + ")\n"
    assert repeated_blocks({"a": names, "b": names}) == {}


def module_sources(names=MODULES):
    """{name: text} of each module, or of every file of a package (verifier/) by that name."""
    sources = {}
    for name in names:
        if (EBPF / name).is_dir():
            for path in sorted((EBPF / name).glob("*.py")):
                sources[name + "/" + path.name] = path.read_text()
        else:
            sources[name] = (EBPF / (name + ".py")).read_text()
    return sources


def test_no_block_is_written_twice():
    sources = module_sources()
    found = repeated_blocks(sources)
    unknown = dict((first, places) for first, places in found.items() if first not in KNOWN)
    assert unknown == {}
