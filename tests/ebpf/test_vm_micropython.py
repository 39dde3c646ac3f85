"""The interpreter under real MicroPython 1.27 gives the same results as under CPython."""

from iotbpf.ebpf import conformance

SCRIPT = """
from iotbpf.ebpf import conformance
from iotbpf.ebpf.engines import vm as V
from iotbpf.ebpf.program import Program
from iotbpf.ebpf.engines.vm import VM, BPFFault
assert V._MICROPYTHON  # "interp" means the compact interpreter here
for r in conformance.run_paths(['/root/conf']):
    print(r.path.split('/')[-1], r.passed, r.actual)
V._MICROPYTHON = False  # the closure interpreter, as on CPython
closures = [r.passed for r in conformance.run_paths(['/root/conf'])]
print('closures', closures.count(True), len(closures))
V._MICROPYTHON = True
try:
    VM(Program.from_asm('lddw %r1, 0x7000000000\\nldxb %r0, [%r1]\\nexit')).run()
except BPFFault as e:
    print('fault', e.kind, str(e))
vm = VM(Program.from_asm(open('/root/arith_loop.s').read()))
print('arith', vm.run(mem=b'\\x10' + bytes(7)), vm.last.insns_executed)
"""


def test_conformance_suite_under_micropython(micropython, conformance_dir, tmp_path):
    from conftest import REPO

    result = micropython.run(SCRIPT, files={"conf": conformance_dir,
                                            "arith_loop.s": REPO / "bench" / "programs" / "arith_loop.s"})
    lines = result.stdout.splitlines()
    expected = []
    for r in conformance.run_paths([str(conformance_dir)]):
        expected.append("%s %s %s" % (r.path.split("/")[-1], r.passed, r.actual))
    assert len(expected) == 313
    assert lines[:313] == expected
    assert all(" True " in line for line in lines[:313])
    assert lines[313] == "closures 313 313"
    lines = lines[:313] + lines[314:]
    assert lines[313] == ("fault oob pc 2: ldxb %r0, [%r1]: read of 1 bytes at invalid address "
                          "0x7000000000 (no such region)")
    assert lines[314] == "arith 839824 148"
