"""The compiled engine under real MicroPython 1.27: it translates, execs and agrees with CPython."""

from conftest import REPO
from iotbpf.ebpf import conformance
from iotbpf.ebpf.engines.vm import VM, BPFFault
from iotbpf.ebpf.program import Program

PROGRAMS = {
    "loop": "mov %r0, 0\nmov %r1, 0\nl:\nadd %r1, 1\nadd %r0, %r1\njlt %r1, 100, l\nexit",
    "calls": "mov %r1, 5\ncall local f\nadd %r0, 1\nexit\nf:\nmov %r0, %r1\nmul %r0, %r1\nexit",
    "stack": "stdw [%r10-8], 0x1234\nldxh %r0, [%r10-8]\nlock add [%r10-8], %r0\nldxdw %r0, [%r10-8]\nexit",
    "oob": "ldxdw %r0, [%r10+8]\nexit",
    "budget": "l:\nja l",
    "helper": "mov %r1, 7\ncall 5\nadd %r0, 1\nexit",
}

SCRIPT = """
from iotbpf.ebpf import conformance
from iotbpf.ebpf.engines.compiler import engine as compiler
from iotbpf.ebpf.program import Program
from iotbpf.ebpf.engines.vm import VM, BPFFault
results = conformance.run_paths(['/root/conf'], engines=('compiled',))
print('conformance', sum(1 for r in results if r.passed), len(results))
for name in NAMES:
    vm = VM(Program.from_asm(open('/root/p/' + name + '.s').read()), engine='compiled', budget=1000,
            helpers=conformance.CONFORMANCE_HELPERS)
    try:
        print(name, vm.run(), vm.last.insns_executed)
    except BPFFault as e:
        print(name, 'fault', e.kind, e.pc, str(e))
vm = VM(Program.from_asm(open('/root/arith_loop.s').read()), engine='compiled')
print('arith', vm.run(mem=b'\\x10' + bytes(7)), vm.last.insns_executed)
print('cached', len(compiler._CACHE) > 0)
"""


def expected_lines():
    lines = []
    for name in sorted(PROGRAMS):
        vm = VM(Program.from_asm(PROGRAMS[name]), engine="interp", budget=1000,
                helpers=conformance.CONFORMANCE_HELPERS)
        try:
            lines.append("%s %d %d" % (name, vm.run(), vm.last.insns_executed))
        except BPFFault as e:
            lines.append("%s fault %s %d %s" % (name, e.kind, e.pc, str(e)))
    return lines


def test_compiled_engine_under_micropython(micropython, conformance_dir):
    files = {"conf": conformance_dir, "arith_loop.s": REPO / "bench" / "programs" / "arith_loop.s"}
    for name, text in PROGRAMS.items():
        files["p/%s.s" % name] = text
    script = "NAMES = %r\n" % sorted(PROGRAMS) + SCRIPT
    lines = micropython.run(script, files=files).stdout.splitlines()
    assert lines[0] == "conformance 313 313"
    assert lines[1:1 + len(PROGRAMS)] == expected_lines()
    arith = VM(Program.from_asm((REPO / "bench" / "programs" / "arith_loop.s").read_text()))
    assert lines[1 + len(PROGRAMS)] == "arith %d %d" % (arith.run(mem=b"\x10" + bytes(7)),
                                                     arith.last.insns_executed)
    assert lines[-1] == "cached True"
