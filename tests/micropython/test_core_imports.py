"""Every module of the core imports under real MicroPython 1.27; the live heap is printed."""

from conftest import REPO

# Host-side modules that live inside core packages by design (DESIGN.md: the ELF reader and
# its BTF parser need pyelftools/CPython); everything else in the core must import on MicroPython.
HOST_ONLY = {"iotbpf.ebpf.elf", "iotbpf.ebpf.btf"}
CORE_DIRS = ("ebpf", "energy", "kernel", "platforms/sim")


def core_modules():
    names = []
    for folder in CORE_DIRS:
        for path in sorted((REPO / "iotbpf" / folder).rglob("*.py")):  # subpackages too
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if name not in HOST_ONLY:
                names.append(name)
    return names


def test_core_modules_import_under_micropython(micropython):
    modules = core_modules()
    code = "import gc\n"
    for name in modules:
        code += "import %s\ngc.collect()\nprint(%r, gc.mem_alloc())\n" % (name, name)
    result = micropython.run(code)
    printed = [line.split()[0] for line in result.stdout.splitlines()]
    assert printed == modules
    print("live heap after importing the core: %d bytes" % result.mem_alloc)
    assert result.mem_alloc > 0


def test_importing_ebpf_pulls_in_nothing_else_of_iotbpf(micropython):
    result = micropython.run(
        "import sys\nimport iotbpf.ebpf.errors\n"
        "print(sorted(m for m in sys.modules if m.startswith('iotbpf')))\n")
    loaded = eval(result.stdout.strip())
    assert loaded == ["iotbpf", "iotbpf.ebpf", "iotbpf.ebpf.errors"]


def test_device_runtime_imports_alone_under_micropython(micropython):
    """The device runtime (iotbpf/device) imports under MicroPython with nothing else of iotbpf
    on the board (its package root is empty there), and pulls in no other iotbpf module."""
    names = sorted("iotbpf.device" + ("" if p.stem == "__init__" else "." + p.stem)
                   for p in (REPO / "iotbpf" / "device").glob("*.py"))
    code = "import sys\n" + "".join("import %s\n" % name for name in names)
    code += "print(sorted(m for m in sys.modules if m.startswith('iotbpf')))\n"
    result = micropython.run(code, files={"iotbpf/__init__.py": "", "iotbpf/device": REPO / "iotbpf" / "device"},
                             core=False)
    assert eval(result.stdout.strip()) == ["iotbpf"] + names
    print("live heap with every device runtime module imported (.py): %d bytes" % result.mem_alloc)
