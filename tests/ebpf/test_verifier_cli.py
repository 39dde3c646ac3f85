"""`iotbpf verify` end to end, C programs compiled by clang (errors name the C line), and the
verifier under real MicroPython."""

import json

from conftest import REPO

SAFE = "mov %r0, 0\njlt %r2, 8, +1\nldxdw %r0, [%r1]\nexit\n"
UNSAFE = "ldxdw %r0, [%r1]\nexit\n"


def test_verify_prints_ok_with_counts(cli, tmp_path):
    path = tmp_path / "safe.s"
    path.write_text(SAFE)
    r = cli("verify", path)
    assert r.code == 0, r.err
    assert r.out.startswith("ok: 4 instructions, ")
    assert "states explored" in r.out and "max stack 0 bytes" in r.out
    assert "standalone, buffer length in r2" in r.out


def test_verify_rejection_prints_the_error_and_exits_1(cli, tmp_path):
    path = tmp_path / "unsafe.s"
    path.write_text(UNSAFE)
    r = cli("verify", path)
    assert r.code == 1
    assert r.err.startswith("error: pc 0: ldxdw %r0, [%r1]: reading 8 bytes at input offset 0 may go past "
                            "the end of the input")
    assert "Traceback" not in r.err


def test_mem_size_declares_the_input_length(cli, tmp_path):
    path = tmp_path / "unsafe.s"
    path.write_text(UNSAFE)
    r = cli("verify", path, "--mem-size", "8", "--json")
    assert r.code == 0
    out = json.loads(r.out)
    assert out["ok"] is True and out["version"] == 1 and out["safe_access_pcs"] == [0]
    r = cli("verify", path, "--mem-size", "4", "--json")
    assert r.code == 1
    assert "8 bytes at offset 0 of the 4-byte input buffer" in json.loads(r.out)["errors"][0]


def test_budget_option_bounds_loops(cli, tmp_path):
    path = tmp_path / "loop.s"
    path.write_text("mov %r0, 0\nl:\nadd %r0, 1\njlt %r0, 100, l\nexit\n")
    assert cli("verify", path, "--budget", "202").code == 0
    r = cli("verify", path, "--budget", "150")
    assert r.code == 1 and "more than 150 instructions" in r.err


def test_bundled_app_verifies_against_its_hook(cli):
    r = cli("verify", REPO / "apps" / "sensor_node" / "sensor_node.o", "--section", "timer")
    assert r.code == 0, r.err
    assert "(hook timer)" in r.out


def test_bad_usage_is_a_clear_error(cli, tmp_path):
    path = tmp_path / "safe.s"
    path.write_text(SAFE)
    r = cli("verify", path, "--hook", "nope")
    assert r.code == 2 and r.err.startswith("error: unknown hook 'nope' (known: ")
    r = cli("verify", path, "--mem-size", "-1")
    assert r.code == 2 and "--mem-size must be >= 0" in r.err
    r = cli("verify", tmp_path / "missing.s")
    assert r.code == 2 and r.err.startswith("error: ")
    bad = tmp_path / "bad.s"
    bad.write_text("frobnicate %r0\n")
    r = cli("verify", bad)
    assert r.code == 2 and "Traceback" not in r.err


BUGGY_C = r"""
#include <iotbpf.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32);
         __type(value, __u64); } counts SEC(".maps");
SEC("timer")
int on_timer(void *ctx)
{
    __u32 key = 0;
    __u64 *v = bpf_map_lookup_elem(&counts, &key);
    *v += 1;
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_c_program_error_names_the_c_source_line(cli, clang):
    obj = clang.compile(BUGGY_C)
    r = cli("verify", obj, "--section", "timer")
    assert r.code == 1
    assert "may be NULL (map lookup result not checked)" in r.err
    assert ".c:10: *v += 1;)" in r.err
    fixed = clang.compile(BUGGY_C.replace("*v += 1;", "if (v) *v += 1;"))
    assert cli("verify", fixed, "--section", "timer").code == 0


def test_verifier_runs_under_micropython(micropython):
    code = (
        "from iotbpf.ebpf import verifier\nfrom iotbpf.ebpf.isa import asm\n"
        "from iotbpf.ebpf.errors import VerifierError\n"
        "r = verifier.verify(asm.assemble('mov %r0, 0\\nl:\\nadd %r0, 1\\njlt %r0, 10, l\\nexit'))\n"
        "print(r.max_path_insns)\n"
        "try:\n"
        "    verifier.verify(asm.assemble('ldxdw %r0, [%r1]\\nexit'))\n"
        "except VerifierError as e:\n"
        "    print(e.errors[0].split(':')[0])\n"
    )
    result = micropython.run(code)
    assert result.stdout.split() == ["22", "pc", "0"]


INPUT_IDIOMS_C = r"""
#include <iotbpf.h>
SEC("sum") __u64 sum_bytes(const __u8 *buf, __u64 len)
{
    __u64 sum = 0;
    for (__u64 i = 0; i < len && i < 64; i++)
        sum += buf[i];
    return sum;
}
SEC("header") __u64 eth_type(const __u8 *buf, __u64 len)
{
    if (len < 14)
        return 0;
    return (buf[12] << 8) | buf[13];
}
SEC("tlv") __u64 parse_tlv(const __u8 *buf, __u64 len)
{
    __u64 off = 0, total = 0;
    for (int k = 0; k < 8; k++) {
        if (off + 2 > len)
            break;
        total += buf[off];
        off += 2 + (buf[off + 1] & 7);
    }
    return total;
}
SEC("end") __u64 end_pointer(const __u8 *buf, __u64 len)
{
    const __u8 *end = buf + len;
    if (buf + 4 > end)
        return 0;
    return *(const __u32 *)buf;
}
"""


def test_c_input_idioms_are_proven_against_the_length(clang):
    from iotbpf.ebpf.engines.vm import VM
    from iotbpf.ebpf.loader.elf import load_elf_object
    from iotbpf.ebpf.verifier import verify

    obj = load_elf_object(clang.compile(INPUT_IDIOMS_C))
    for section in ("sum", "header", "tlv", "end"):
        program = obj.program(section)
        result = verify(program)
        for n in (0, 1, 4, 13, 14, 100):
            vm = VM(program, budget=result.max_path_insns)
            vm.run(mem=bytes(range(n)))
