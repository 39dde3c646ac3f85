"""api/program.py: Program from C (clang-19) and assembly, running on both engines, faults that name
the instruction, the verifier, typed maps of a program, and clear errors for bad C."""


import pytest

import iotbpf
from iotbpf import IotbpfError
from iotbpf.ebpf.engines.vm import BPFFault
from iotbpf.ebpf.errors import LoadError, VerifierError

COUNTER_C = r"""
#include "iotbpf.h"

struct hit {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct hit);
} hits SEC(".maps");

/* A standalone run passes the input in r1 and its length in r2. */
SEC("counter")
int count(__u8 *data, __u64 len)
{
	if (len < 1)
		return 0;
	__u32 key = data[0];
	struct hit zero = {0, 0};
	bpf_map_update_elem(&hits, &key, &zero, BPF_NOEXIST);
	struct hit *h = bpf_map_lookup_elem(&hits, &key);
	if (!h)
		return 0;
	h->packets += 1;
	h->bytes += len;
	return key;
}

char LICENSE[] SEC("license") = "GPL";
"""

SIMPLE_C = r"""
#include "iotbpf.h"

SEC("a") int first(void *ctx) { return 1; }
SEC("b") int second(void *ctx) { return 2; }
char LICENSE[] SEC("license") = "GPL";
"""


def test_program_from_asm_runs_on_both_engines_and_round_trips():
    prog = iotbpf.Program.from_asm("mov %r0, 0\nldxb %r2, [%r1]\nadd %r0, %r2\nexit")
    assert prog.run(mem=b"\x2a") == 42
    assert prog.run(mem=b"\x07", engine="compiled") == 7
    assert iotbpf.Program.from_asm(prog.disasm()).to_bytes() == prog.to_bytes()
    assert len(prog) == 4


def test_program_fault_names_pc_and_instruction():
    prog = iotbpf.Program.from_asm("ldxdw %r0, [%r1+100]\nexit")
    with pytest.raises(BPFFault) as info:
        prog.run(mem=b"\0" * 8)
    assert str(info.value).startswith("pc 0: ldxdw %r0, [%r1+100]:")


def test_verify_accepts_checked_access_and_rejects_unchecked(tmp_path):
    ok = iotbpf.Program.from_asm("mov %r0, 0\njge %r2, 1, +1\nexit\nldxb %r0, [%r1]\nexit")
    assert ok.verify().max_path_insns <= 5          # the load is guarded by r2 >= 1
    bad = iotbpf.Program.from_asm("ldxb %r0, [%r1]\nexit")
    with pytest.raises(VerifierError) as info:
        bad.verify()
    assert "pc 0" in str(info.value)
    assert bad.verify(mem_size=1) is not None


def test_from_c_compiles_runs_and_reads_typed_map(clang):
    prog = iotbpf.Program.from_c(COUNTER_C, section="counter")
    assert "call 1" in prog.disasm()
    prog.verify(mem_size=4)
    assert prog.run(mem=b"\x05abc") == 5
    assert prog.run(mem=b"\x05a", engine="compiled") == 5
    assert prog.run(mem=b"\x09") == 9
    hits = prog.maps["hits"]
    assert hits[5] == {"packets": 2, "bytes": 6}
    assert dict(hits) == {5: {"packets": 2, "bytes": 6}, 9: {"packets": 1, "bytes": 1}}
    hits[5] = {"packets": 100}
    assert hits[5] == {"packets": 100, "bytes": 0}
    assert prog.run(mem=b"\x05") == 5
    assert hits[5]["packets"] == 101
    del hits[9]
    assert 9 not in hits and len(hits) == 1


def test_from_c_file_and_section_choice(clang, tmp_path):
    src = tmp_path / "two.c"
    src.write_text(SIMPLE_C)
    assert iotbpf.Program.from_c(src, section="b").run() == 2
    assert iotbpf.Program.from_c(str(src), section="a").run() == 1
    with pytest.raises(LoadError) as info:
        iotbpf.Program.from_c(src)
    assert "a" in str(info.value) and "b" in str(info.value)


def test_from_c_reports_compile_errors_and_missing_files(clang, tmp_path):
    with pytest.raises(LoadError) as info:
        iotbpf.Program.from_c("int broken(void) { return undeclared_thing; }\n")
    assert "undeclared_thing" in str(info.value)
    assert str(info.value).startswith("clang could not compile program.c: program.c:1:")
    one_line = '__attribute__((section("x"))) int f(void *ctx) { return 3; }'
    assert iotbpf.Program.from_c(one_line).run() == 3
    with pytest.raises(LoadError) as info:
        iotbpf.Program.from_c(tmp_path / "missing.c")
    assert "not found" in str(info.value)
    with pytest.raises(IotbpfError) as info:
        iotbpf.Program.from_c(SIMPLE_C, section="a", cpu="v9")
    assert "cpu" in str(info.value)
