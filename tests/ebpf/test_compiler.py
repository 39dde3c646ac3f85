"""compiler.py: structured translation, verifier proofs, host safety, cache, CLI engine switch."""

import io
import struct
import tokenize

from conftest import REPO
from iotbpf.ebpf import compiler, isa
from iotbpf.ebpf.program import Program
from iotbpf.ebpf.types import MapSpec
from iotbpf.ebpf.verifier import verify
from iotbpf.ebpf.vm import VM, BPFFault

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
                 "tail_target"}
    for name in names_in(comp.source) - KEYWORDS:
        assert name.isupper() or name in made_here or (name[0] in "rfgcomnqp" and name[1:].isdigit()), name


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
