"""program.py and api.Program: loading from every source, running, disassembling."""

import struct

import pytest

from iotbpf.api import Program as ApiProgram
from iotbpf.ebpf import isa, types
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.loader.files import load_program
from iotbpf.ebpf.program import Program


def test_program_from_asm_keeps_labels_line_info_and_subprograms():
    prog = Program.from_asm("mov %r0, 0\ncall local f\nexit\nf:\nlddw %r0, 1\nexit", name="p")
    assert prog.labels["f"] == 3 and prog.subprograms == [0, 3]
    assert prog.line_info[3] == ("p", 5, "lddw %r0, 1")
    assert prog.insn_text(3) == "lddw %r0, 0x1"


def test_program_from_bytes_checks_sizes():
    assert len(Program.from_bytes(struct.pack("<Q", 0x95))) == 1
    for data, words in ((b"", "empty"), (b"\x95" * 9, "truncated"),
                        (struct.pack("<Q", 0x18), "second slot")):
        with pytest.raises(LoadError) as info:
            Program.from_bytes(data)
        assert words in str(info.value)


def test_program_from_file_by_suffix(tmp_path, conformance_dir):
    s = tmp_path / "a.s"
    s.write_text("mov %r0, 3\nexit\n")
    b = tmp_path / "a.bin"
    b.write_bytes(load_program(str(s)).to_bytes())
    assert load_program(str(b)).to_bytes() == b.read_bytes()
    d = load_program(str(conformance_dir / "mem-len.data"))
    assert d.mem == bytes([0, 0, 0, 1, 0, 0, 0, 2]) and d.expected == 8
    with pytest.raises(LoadError):
        load_program(str(tmp_path / "a.txt"))


def test_api_program_runs_with_its_own_mem_and_disassembles(conformance_dir):
    p = ApiProgram.from_file(conformance_dir / "mem-len.data")
    assert p.run() == p.expected == 8
    assert p.run(mem=b"abc") == 3
    text = ApiProgram.from_asm("mov %r0, 42\nexit").disasm()
    assert text == "mov %r0, 42\nexit\n"
    assert ApiProgram.from_bytes(ApiProgram.from_asm(text).to_bytes()).run() == 42


def test_api_program_execute_reports_instructions_trace_and_profile():
    p = ApiProgram.from_asm("mov %r0, 1\nadd %r0, 2\nexit")
    res = p.execute(trace=True, profile=True)
    assert (res.r0, res.insns) == (3, 3)
    assert res.trace[1] == (1, "add %r0, 2", [(0, 3)]) and res.profile == {0: 1, 1: 1, 2: 1}


def test_api_program_uses_linux_helpers_and_keeps_map_contents_between_runs():
    p = ApiProgram.from_asm("""
        stw [%r10-4], 0
        lddw %r1, map_fd 0
        mov %r2, %r10
        add %r2, -4
        call 1
        jeq %r0, 0, out
        mov %r1, 1
        lock add [%r0], %r1
        ldxdw %r0, [%r0]
    out:
        exit""")
    p.program.maps = [types.MapSpec("hits", types.BPF_MAP_TYPE_ARRAY, 4, 8, 1)]
    assert [p.run() for _ in range(3)] == [1, 2, 3]


def test_api_program_engine_switch_reports_unknown_engines():
    p = ApiProgram.from_asm("exit")
    with pytest.raises(LoadError):
        p.run(engine="jit")


def test_slot_list_encodes_back():
    prog = Program.from_asm("lddw %r1, 0x1122334455667788\nexit")
    assert isa.decode(prog.to_bytes())[0].imm == 0x1122334455667788
