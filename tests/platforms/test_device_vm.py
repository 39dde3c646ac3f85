"""The device runtime's compact interpreter on the bpf_conformance vectors (as linked by the
host: `devimage.link_program`). A vector the linker refuses (a bpf-to-bpf call, an instruction
the device lacks) or that calls a conformance-only helper is not a failure; a wrong r0 is."""

import pytest

from iotbpf.device import vm
from iotbpf.ebpf.loader.data import load_case
from iotbpf.platforms import devimage


class _NoHelper(Exception):
    pass


def _no_helper(hid, regs):
    raise _NoHelper(hid)


def test_device_interpreter_passes_the_conformance_vectors(conformance_dir):
    files = sorted(conformance_dir.glob("*.data"))
    if not files:
        pytest.skip("no conformance vectors")
    passed, refused, failed = [], [], []
    for path in files:
        case = load_case(str(path))
        if case.skip is not None or case.error is not None:
            continue
        try:
            code = devimage.link_program(case.program(), {}, path.stem)
        except devimage.ImageError:
            refused.append(path.stem)
            continue
        mem = vm.Memory()
        mem.regions[2] = bytearray(case.mem)
        try:
            r0, _n = vm.run(code, mem, 2 << 16 if case.mem else 0, _no_helper, 100000, r2=len(case.mem))
        except _NoHelper:
            refused.append(path.stem)
            continue
        except vm.Fault as exc:
            failed.append((path.stem, "fault: %s" % exc))
            continue
        (passed if r0 == case.result else failed).append((path.stem, "0x%x != 0x%x" % (r0, case.result)))
    print("conformance on the device interpreter: %d passed, %d refused at link or call, %d failed"
          % (len(passed), len(refused), len(failed)))
    assert not failed, failed
    assert len(passed) >= 250, refused
