"""The engines sit below the VM: no import circle through vm, interp, compact, compiler, frames, ops."""

import ast
from pathlib import Path

import iotbpf.ebpf

EBPF = Path(iotbpf.ebpf.__file__).parent
ENGINE_MODULES = ("interp", "compact", "compiler", "frames", "ops", "isa", "cfg")


def _imports(name):
    """ebpf modules that ``name`` imports anywhere in its file (also inside functions)."""
    tree = ast.parse((EBPF / (name + ".py")).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "iotbpf.ebpf":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("iotbpf.ebpf."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith("iotbpf.ebpf."))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith("iotbpf.ebpf.") and node.value.count(".") == 2:
            found.add(node.value.split(".")[2])  # a module named for __import__ (the engine registry)
    return found & set(p.stem for p in EBPF.glob("*.py"))


def _reaches(graph, start, goal):
    seen = set()
    work = list(graph[start])
    while work:
        m = work.pop()
        if m == goal:
            return True
        if m not in seen:
            seen.add(m)
            work.extend(graph.get(m, ()))
    return False


def test_no_engine_module_is_on_an_import_circle():
    graph = {p.stem: _imports(p.stem) for p in EBPF.glob("*.py") if p.stem != "__init__"}
    on_circle = [m for m in ENGINE_MODULES if _reaches(graph, m, m)]
    assert on_circle == []


def test_the_engines_do_not_reach_the_vm():
    # (vm itself still sits on the maps -> maps_more -> bundle circle, which is not the engines')
    graph = {p.stem: _imports(p.stem) for p in EBPF.glob("*.py") if p.stem != "__init__"}
    assert [m for m in ENGINE_MODULES if _reaches(graph, m, "vm")] == []


def test_the_checker_sees_lazy_and_registry_imports():
    assert {"interp", "compact", "compiler"} <= _imports("vm")
