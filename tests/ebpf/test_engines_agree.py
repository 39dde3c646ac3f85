"""Differential: every engine gives the same r0, or the same fault (kind, pc, text), on random
programs built from the opcode table (registers, offsets and immediates biased to matter)."""

import struct

from hypothesis import given
from hypothesis import strategies as st

from iotbpf.ebpf import isa
from iotbpf.ebpf.engines.vm import VM, BPFFault, engine_available
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.program import Program

ENGINES = ["interp", "compact"] + (["compiled"] if engine_available("compiled") else [])
OPCODES = sorted(op for op in isa.OPCODES if op != isa.LDDW) + [0xFF]


def helper(ex, r1, r2, r3, r4, r5):
    return (r1 * 3 + r2) & 0xFFFFFFFFFFFFFFFF


slot = st.tuples(st.sampled_from(OPCODES), st.integers(0, 10), st.integers(0, 10),
                 st.sampled_from([-2, -1, 0, 1, 2, 3, -8, 4]),
                 st.sampled_from([0, 1, 2, 7, -1, 8, 16, 32, 64, 0x7FFFFFFF, -0x80000000, 3, 5]))


def outcome(data, engine, mem):
    try:
        vm = VM(Program.from_bytes(data), helpers={1: helper, 5: helper}, engine=engine, budget=300)
        r0 = vm.run(mem=mem)
        return ("ok", r0, vm.last.insns_executed, bytes(vm.stack_bufs[0]))
    except BPFFault as exc:
        return ("fault", exc.kind, exc.pc, str(exc))
    except LoadError as exc:
        return ("load", str(exc))


@given(st.lists(slot, min_size=1, max_size=14), st.binary(min_size=0, max_size=24))
def test_engines_agree_on_random_programs(slots, mem):
    data = b"".join(struct.pack("<BBhi", op, (s << 4) | d, off, imm) for op, d, s, off, imm in slots)
    data += struct.pack("<Q", isa.EXIT)
    results = {engine: outcome(data, engine, mem) for engine in ENGINES}
    first = results[ENGINES[0]]
    for engine in ENGINES[1:]:
        assert results[engine] == first, (engine, results)
