"""bpf_conformance runner: run ``.data`` tests (loader/data.py) with each engine and compare r0; the
suite's own helper #5 ("unwind", as in uBPF) is registered here and only here."""

import os

from iotbpf.ebpf.engines import vm as vm_module
from iotbpf.ebpf.errors import IotbpfError, LoadError
from iotbpf.ebpf.loader.data import load_case

DEFAULT_BUDGET = 10000000


def unwind(ex, r1, r2, r3, r4, r5):
    """uBPF test helper 5: returns r1; if r1 is 0 the whole program stops and returns 0."""
    if r1 == 0:
        ex.stop(0)
    return r1


CONFORMANCE_HELPERS = {5: unwind}


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
