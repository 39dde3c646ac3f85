"""bpf_spin_lock as Linux checks it: a struct bpf_spin_lock in a map value's BTF type, one lock
at a time, no helper or function calls and no exit while it is held, unlocked by the same
pointer; at run time a verified program always finds it free (the node runs one program at a
time), and an unverified double lock faults."""

import struct

import pytest

from conftest import REPO
from iotbpf import Program
from iotbpf.ebpf.engines.vm import BPFFault
from iotbpf.ebpf.errors import VerifierError

SOURCE = REPO / "tests" / "c" / "spin_lock.c"


def build(clang, misuse):
    return Program.from_file(str(clang.compile(SOURCE, extra=("-DMISUSE=%d" % misuse,))), section="prog")


def mem(key, amount, c=0):
    return struct.pack("<4Q", key, amount, c, 0)


@pytest.mark.parametrize("engine", ["interp", "compiled"])
def test_locked_update_verifies_and_runs(clang, engine):
    prog = build(clang, 0)
    prog.verify(mem_size=32)
    assert prog.run(mem=mem(1, 5), engine=engine) == 5
    assert prog.run(mem=mem(1, 6), engine=engine) == 11
    value = prog.maps["accounts"][1]
    assert value["balance"] == 11 and value["updates"] == 2
    assert value["lock"] == {"val": 0}  # released after every run


@pytest.mark.parametrize("misuse,reason", [
    (1, "ktime_get_ns called while holding the bpf_spin_lock"),
    (2, "exit while holding the bpf_spin_lock"),
    (3, "bpf_spin_lock while already holding the lock"),
    (4, "where there is no struct bpf_spin_lock"),
    (5, "direct access to the struct bpf_spin_lock at offset 0"),
])
def test_misuse_is_rejected(clang, misuse, reason):
    with pytest.raises(VerifierError, match=reason):
        build(clang, misuse).verify(mem_size=32)


def test_unverified_double_lock_faults(clang):
    prog = build(clang, 3)
    with pytest.raises(BPFFault, match="already held"):
        prog.run(mem=mem(0, 1))
