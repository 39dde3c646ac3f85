"""engines/compiler/: structured translation, verifier proofs, host safety, cache, CLI engine switch."""

import io
import os
import random
import struct
import tokenize

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REPO
from iotbpf.ebpf import isa
from iotbpf.ebpf.engines import compiler
from iotbpf.ebpf.engines.vm import VM, BPFFault
from iotbpf.ebpf.errors import VerifierError
from iotbpf.ebpf.program import Program
from iotbpf.ebpf.types import MapSpec
from iotbpf.ebpf.verifier import verify

BENCH = REPO / "bench" / "programs"
KEYWORDS = {"def", "nonlocal", "if", "else", "elif", "while", "True", "break", "continue", "return",
            "raise", "is", "not", "None", "and", "or", "try", "finally", "pass", "in", "except", "as",
            "Exception", "int", "e", "pc", "__class__"}


def names_in(source):
    return {tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.NAME}


def test_loops_become_while_statements_without_a_dispatch_loop():
    for name in ("arith_loop", "mem_loop", "call_loop"):
        comp = compiler.compile_program(Program.from_asm((BENCH / (name + ".s")).read_text()))
        assert comp.structured >= 1 and comp.state_machines == 0
        assert "while True:" in comp.source
        assert "L = " not in comp.source


def test_masks_proved_idle_are_left_out():
    source = compiler.compile_program(Program.from_asm((BENCH / "arith_loop.s").read_text())).source
    assert "r2 = r2 + 7" in source  # (r2 >> 1) + 7 cannot wrap
    assert "r0 = r0 << 1" in source  # (r0 & 0xffffff) << 1 cannot wrap
    assert "r2 = (r2 * 3) & 18446744073709551615" in source  # this one can


def test_irreducible_flow_runs_as_a_state_machine_with_the_same_results():
    # two entries into the cycle L1 <-> L2
    text = ("mov %r0, 0\nmov %r2, 5\njeq %r1, 0, L2\nL1:\nadd %r0, 1\nL2:\nadd %r0, 2\n"
            "sub %r2, 1\njne %r2, 0, L1\nexit")
    program = Program.from_asm(text)
    comp = compiler.compile_program(program)
    assert comp.state_machines == 1
    for mem in (b"", b"\x01"):
        assert VM(program, engine="compiled").run(mem=mem) == VM(program, engine="interp").run(mem=mem)


def test_generated_source_holds_only_names_the_compiler_makes():
    # hostile names in the program's maps and section never reach the generated source
    evil = "__import__('os').system('echo pwned')"
    program = Program.from_asm("lddw %r1, map_idx 0\nlddw %r2, map_idx_value 0, 4\nmov %r0, 0\nexit",
                               name=evil)
    program.section = evil
    program.maps = [MapSpec(evil, 2, 4, 8, 1)]
    comp = compiler.compile_program(program)
    assert evil not in comp.source and "'" not in comp.source and '"' not in comp.source
    strings = [tok for tok in tokenize.generate_tokens(io.StringIO(comp.source).readline)
               if tok.type == tokenize.STRING]
    assert strings == []
    made_here = {"factory", "fp", "st", "b", "d", "a", "g", "o", "v", "k", "res", "_j", "L", "depth", "left",
                 "tail_target", "qx", "px"}
    for name in names_in(comp.source) - KEYWORDS:
        assert name.isupper() or name in made_here or (name[0] in "rfgcomnqpe" and name[1:].isdigit()), name


def test_verifier_proofs_drop_the_checks_and_keep_the_results():
    text = "ldxw %r0, [%r1+4]\nstxw [%r1], %r0\nldxdw %r0, [%r1]\nexit"
    program = Program.from_asm(text)
    proofs = verify(program, mem_size=8).safe_access_pcs
    assert proofs == frozenset([0, 1, 2])
    checked = compiler.compile_program(program).source
    proven = compiler.compile_program(program, proofs=proofs).source
    assert "LD(" in checked and "LD(" not in proven and "ST(" not in proven
    program.safe_access_pcs = proofs
    mem = struct.pack("<II", 1, 0xDEADBEEF)
    assert VM(program, engine="compiled").run(mem=mem) == VM(Program.from_asm(text)).run(mem=mem) == 0xDEADBEEFDEADBEEF


def test_unproven_accesses_still_fault_exactly_like_the_interpreter():
    program = Program.from_asm("ldxdw %r0, [%r1+4]\nexit")
    faults = []
    for engine in ("interp", "compiled"):
        try:
            VM(program, engine=engine).run(mem=bytes(8))
        except BPFFault as exc:
            faults.append((exc.kind, exc.pc, str(exc)))
    assert len(faults) == 2 and faults[0] == faults[1] and faults[0][0] == "oob"


def test_translation_is_cached_and_budget_variants_are_separate():
    program = Program.from_asm("mov %r0, 7\nexit")
    assert compiler.compile_program(program) is compiler.compile_program(Program.from_asm("mov %r0, 7\nexit"))
    counting = compiler.compile_program(program, budget_checks=False)
    assert counting is not compiler.compile_program(program)
    assert "raise BF" not in counting.source and "b -= 2" in counting.source


def test_trace_on_the_compiled_engine_matches_the_interpreter():
    program = Program.from_asm("mov %r0, 1\nadd %r0, 2\nexit")
    traces = []
    for engine in ("interp", "compiled"):
        vm = VM(program, engine=engine)
        vm.run(trace=True)
        traces.append(vm.last.trace)
    assert traces[0] == traces[1] and len(traces[0]) == 3


def test_cli_run_and_conformance_use_the_compiled_engine(cli, conformance_dir):
    r = cli("run", BENCH / "arith_loop.s", "--mem", struct.pack("<Q", 16).hex() + "00" * 64, "--engine", "compiled")
    want = VM(Program.from_asm((BENCH / "arith_loop.s").read_text())).run(mem=struct.pack("<Q", 16) + bytes(64))
    assert r.code == 0 and r.out.strip() == "0x%x" % want
    r = cli("conformance", conformance_dir, "--engine", "both")
    assert r.code == 0 and r.out.strip().splitlines()[-1] == "626 passed, 0 failed"


def test_a_4096_instruction_program_translates_structured():
    from iotbpf.benchmarks.compiler import generated_program

    program = generated_program(4096)
    compiler.clear_cache()
    comp = compiler.compile_program(program)
    assert comp.state_machines == 0
    assert VM(program, engine="compiled").run() == VM(program, engine="interp").run()
    assert isa.MAX_CALL_FRAMES == 8


def test_proven_accesses_through_a_map_value_address_use_its_buffer_directly():
    from iotbpf.ebpf.maps import create_map

    text = ("lddw %r1, map_value 0, 8\nstdw [%r1], 5\nldxdw %r0, [%r1]\nmov %r2, %r1\nadd %r2, 8\n"
            "jeq %r0, 0, out\nstxdw [%r2+8], %r0\nldxdw %r3, [%r2-8]\nadd %r0, %r3\nout:\nexit")
    results = []
    for engine in ("interp", "compiled"):
        value_map = create_map(MapSpec("v", 2, 4, 32, 1))
        program = Program.from_asm(text)
        program.maps = [value_map]
        program.safe_access_pcs = verify(program).safe_access_pcs
        results.append((VM(program, engine=engine).run(), bytes(value_map.values)))
    assert results[0] == results[1] and results[0][0] == 10
    source = compiler.compile_program(program, proofs=program.safe_access_pcs).source
    assert "w8_0[2] = r0" in source  # across the branch, r2 is still the value address + 8


def test_a_simulated_sensor_node_day_is_identical_on_both_engines():
    from iotbpf.api import Node

    interp = Node("sensor_node", engine="interp").simulate("1d").to_dict()
    compiled = Node("sensor_node", engine="compiled").simulate("1d").to_dict()
    assert interp == compiled


def run_both(text, value_sizes=(64,), mem=None, proofs_mem=None, verified=True):
    """The result (or fault) of ``text`` -- the same on the interpreter and on the compiled
    engine, and so are the map values after the run -- and the compiled source (with the
    verifier's proofs unless not ``verified``)."""
    from iotbpf.ebpf.maps import create_map

    results = []
    for engine in ("interp", "compiled"):
        maps = [create_map(MapSpec("m%d" % i, 2, 4, size, 1)) for i, size in enumerate(value_sizes)]
        for i, m in enumerate(maps):
            m.values[0:4] = struct.pack("<I", 3 + i)
        program = Program.from_asm(text)
        program.maps = maps
        if verified:
            result = verify(program, mem_size=proofs_mem) if proofs_mem is not None else verify(program)
            program.safe_access_pcs = result.safe_access_pcs
        try:
            value = VM(program, engine=engine).run(mem=mem if mem is not None else b"")
        except BPFFault as exc:
            value = (exc.kind, exc.pc, str(exc))
        results.append((value, [bytes(m.values) for m in maps]))
    assert results[0] == results[1]
    return results[1][0], compiler.compile_program(program, proofs=getattr(program, "safe_access_pcs", None)).source


def test_proven_accesses_through_a_map_value_address_plus_a_number_use_its_buffer():
    # r4 = value address + (r3 unknown): proven accesses read the region's buffer at the
    # address's low 32 bits instead of looking the region up
    text = ("lddw %r1, map_value 0, 0\nldxw %r3, [%r1+0]\nand %r3, 7\nlsh %r3, 3\n"
            "lddw %r4, map_value 0, 0\nadd %r4, %r3\nstxw [%r4+4], %r3\nldxw %r0, [%r4+4]\n"
            "mov %r5, %r1\nadd %r5, %r3\nsub %r5, -8\nldxdw %r2, [%r5-8]\nadd %r0, %r2\nexit")
    value, source = run_both(text)
    assert value == 24 + (24 << 32)  # index 3: the u32 at 28, read back, and the u64 at 24
    assert "P4(q1, (r4 + 4) & 4294967295, r3)" in source
    assert "r0 = U4(q1, (r4 + 4) & 4294967295)[0]" in source
    assert "U8(q0, (r5 - 8) & 4294967295)[0]" in source
    assert "G(a >> 32)" not in source


def test_a_known_region_with_different_offsets_on_two_paths_keeps_the_region():
    text = ("lddw %r1, map_value 0, 0\nldxw %r3, [%r1+0]\njeq %r3, 3, three\nadd %r1, 8\nja join\n"
            "three:\nadd %r1, 16\njoin:\nstdw [%r1+0], 7\nldxdw %r0, [%r1+0]\nexit")
    value, source = run_both(text)
    assert value == 7
    assert "P8(q0, r1 & 4294967295, 7)" in source and "r0 = U8(q0, r1 & 4294967295)[0]" in source


def test_pointers_into_two_different_maps_merged_on_two_paths_are_not_one_region():
    # on one path r4 points into map 0, on the other into map 1: the access after the join
    # must look the region up (and writes the right map on both paths)
    for first in (3, 4):
        text = ("lddw %%r1, map_value 0, 0\nldxw %%r3, [%%r1+0]\nmov %%r2, %%r3\nand %%r2, 1\n"
                "lsh %%r2, 3\njeq %%r3, %d, other\nlddw %%r4, map_value 0, 0\nja join\n"
                "other:\nlddw %%r4, map_value 1, 0\njoin:\nadd %%r4, %%r2\nstxdw [%%r4+8], %%r3\n"
                "ldxdw %%r0, [%%r4+8]\nexit" % first)
        value, source = run_both(text, value_sizes=(64, 64))
        assert value == 3
        assert "a = r4 + 8" in source and "G(a >> 32)[0]" in source
        assert "(r4 + 8) & 4294967295" not in source


def test_proven_context_accesses_use_the_context_buffer_looked_up_once():
    text = ("mov %r6, %r1\nldxw %r0, [%r6+4]\nadd %r6, 8\nldxdw %r2, [%r6+0]\nstxw [%r6-8], %r0\n"
            "ldxb %r3, [%r1+2]\nmov %r7, %r1\nand %r3, 7\nadd %r7, %r3\nldxb %r3, [%r7+0]\n"
            "add %r0, %r2\nadd %r0, %r3\nexit")
    mem = bytes(range(1, 17))
    value, source = run_both(text, value_sizes=(), mem=mem, proofs_mem=16)
    # the store puts 05 06 07 08 at offset 0, so the byte loads read 7, then the byte at 7
    assert value == 0x08070605 + struct.unpack_from("<Q", mem, 8)[0] + 8
    assert source.count("qx = G(r1 >> 32, NOREG)[0]") == 1 and "px = r1 & 4294967295" in source
    assert "r0 = U4(qx, px + 4)[0]" in source and "r2 = U8(qx, px + 8)[0]" in source
    assert "P4(qx, px, r0)" in source and "r3 = qx[r7 & 4294967295]" in source
    assert "G(a >> 32)" not in source


def test_the_context_of_a_subprogram_is_not_the_main_functions_r1():
    # r1 of a subprogram is whatever its caller passed: no context buffer there
    text = ("mov %r6, %r1\nmov %r1, %r10\nadd %r1, -8\nstdw [%r10-8], 5\ncall local f\n"
            "ldxw %r1, [%r6+0]\nadd %r0, %r1\nexit\nf:\nldxdw %r0, [%r1+0]\nexit")
    value, source = run_both(text, value_sizes=(), mem=bytes([9, 0, 0, 0]), proofs_mem=4)
    assert value == 14
    f1 = source[source.index("def f1"):]
    assert "qx" not in f1 and "qx = G(r1 >> 32, NOREG)[0]" in source


def test_assignments_overwritten_before_any_use_are_left_out():
    text = ("lddw %r1, map_value 0, 0\nldxdw %r1, [%r1+8]\nmov %r2, 5\nstxdw [%r10-8], %r2\n"
            "mov %r2, 6\nmov %r3, 1\nmov %r3, %r2\nadd %r3, 1\nadd %r1, %r3\n"
            "ldxdw %r0, [%r10-8]\nadd %r0, %r1\nmov %r4, 9\nexit")
    value, source = run_both(text)
    assert value == 5 + 7
    assert "r1 = c0" not in source and "r3 = 1" not in source  # overwritten unread
    assert "r2 = 5" in source  # the stack store reads it
    assert "r3 = r2 + 1" in source  # the copy is folded into the add
    assert "r4 = 9" in source  # still live at the end of the block (here: the exit)
    assert "r1 = w8_0[1]" in source


def test_an_assignment_read_only_by_a_faulting_access_stays_and_others_go():
    text = "mov %r2, 64\nldxdw %r0, [%r1+0]\nmov %r2, 1\nexit"
    value, source = run_both(text, value_sizes=(), mem=bytes(8), proofs_mem=8)
    assert value == 0 and "r2 = 64" not in source  # the load does not read r2
    text = "mov %r3, 64\nldxdw %r0, [%r3+0]\nmov %r3, 0\nexit"
    value, source = run_both(text, value_sizes=(), mem=bytes(8), verified=False)
    assert value[0] == "oob" and value[1] == 1 and "r3 = 64" in source


def test_stores_leave_out_masks_value_ranges_prove_idle():
    text = "mov %r2, 300\nstxw [%r10-8], %r2\nstxb [%r10-9], %r2\nldxw %r0, [%r10-8]\nexit"
    value, source = run_both(text, value_sizes=())
    assert value == 300
    assert "P4(st, 504, r2)" in source and "st[503] = r2 & 255" in source


REGIONS_PROGRAM = """
    mov %r6, %r1
    ldxw %r3, [%r6+0]
    and %r3, 7
    lsh %r3, 2
    jeq %r3, 4, other
    lddw %r4, map_value 0, 8
    ja join
other:
    lddw %r4, map_value 1, 4
join:
    add %r4, %r3
    ldxw %r5, [%r4+0]
    add %r5, 1
    stxw [%r4+4], %r5
    mov %r7, %r6
    add %r7, 4
    ldxb %r2, [%r7+1]
    and %r2, 3
    add %r7, %r2
    ldxb %r0, [%r7+0]
    stxb [%r7+1], %r5
    lddw %r1, map_value 0, 0
    mov %r8, %r1
    add %r8, %r3
    ldxdw %r9, [%r8+16]
    add %r0, %r9
    mov %r2, 5
    mov %r2, %r9
    stxdw [%r1+8], %r2
    exit
"""


@settings(max_examples=int(os.environ.get("IOTBPF_FUZZ_EXAMPLES", "60")), deadline=None)
@given(st.integers(0, 2 ** 32))
def test_mutated_region_programs_run_the_same_with_proofs_on_both_engines(seed):
    # context and map value pointers with known and unknown offsets, merged on two paths,
    # mutated: whatever the verifier accepts runs identically (results, faults, counts, maps)
    from iotbpf.ebpf.maps import create_map

    rng = random.Random(seed)
    insns = Program.from_asm(REGIONS_PROGRAM).insns
    for _ in range(rng.choice([1, 1, 2, 3])):
        insns = [isa.Instruction(x.opcode, x.dst, x.src, x.off, x.imm) for x in insns]
        x = insns[rng.choice([pc for pc, x in enumerate(insns) if x.opcode])]
        what = rng.randrange(4)
        if what == 0:
            x.off += rng.choice([-8, -4, -1, 1, 4, 8])
        elif what == 1 and x.opcode != isa.LDDW:
            x.imm += rng.choice([-8, -1, 1, 8, 1 << 20])
        elif what == 2:
            x.dst = rng.randrange(11)
        elif x.opcode != isa.LDDW:
            x.src = rng.randrange(11)
    mem_size = rng.choice([8, 16, 24])

    def make_maps():
        maps = [create_map(MapSpec("a", 2, 4, 64, 1)), create_map(MapSpec("b", 2, 4, 48, 1))]
        for i, m in enumerate(maps):
            m.values[:] = bytes((j * 7 + i) & 255 for j in range(len(m.values)))
        return maps
    try:
        proofs = verify(Program(insns, maps=make_maps()), mem_size=mem_size).safe_access_pcs
    except VerifierError:
        return
    mem = bytes(rng.randrange(256) for _ in range(mem_size))
    outs = []
    for engine in ("interp", "compiled"):
        program = Program(insns, maps=make_maps())
        program.safe_access_pcs = proofs
        vm = VM(program, engine=engine, budget=1000)
        try:
            value = vm.run(mem=mem)
        except BPFFault as exc:
            value = (exc.kind, exc.pc, str(exc))
        outs.append((value, vm.last.insns_executed, [bytes(m.values) for m in program.maps]))
    assert outs[0] == outs[1]


def test_helpers_that_promise_a_u64_result_are_called_plainly_and_the_rest_are_checked():
    # HelperSpec.u64_result (and no look at the registers) lets the compiled code call the
    # helper without the register sync branch, the result check and the mask; a helper without
    # the promise keeps them, so its bool result still becomes 1
    from iotbpf.ebpf import types

    def seven(ex, r1, r2, r3, r4, r5):
        return 7

    def yes(ex, r1, r2, r3, r4, r5):
        return True

    table = types.HelperTable([
        types.HelperSpec(0x1100, "seven", (), types.RET_INTEGER, seven, u64_result=True),
        types.HelperSpec(0x1101, "yes", (), types.RET_INTEGER, yes),
    ])
    program = Program.from_asm("call 0x1100\nmov %r6, %r0\ncall 0x1101\nadd %r0, %r6\nexit")
    vm = VM(program, helpers=table, engine="compiled")
    assert vm.engine.direct == frozenset([0x1100])
    source = vm.engine.compiled.source
    assert source.count("if SY[") == 1 and source.count("r0 = HV(") == 1
    assert vm.run() == 8 == VM(program, helpers=table, engine="interp").run()
