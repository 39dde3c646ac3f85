"""conformance.py: the whole bpf_conformance suite passes; the runner judges files correctly."""

import pytest

from iotbpf.ebpf import conformance
from iotbpf.ebpf.errors import LoadError
from iotbpf.ebpf.loader.data import parse_data


@pytest.mark.parametrize("engine", ["interp", "compact"])
def test_every_conformance_file_passes(conformance_dir, engine):
    files = sorted(conformance_dir.glob("*.data"))
    results = conformance.run_paths([str(conformance_dir)], engines=(engine,))
    failures = ["%s: expected %s, got %s" % (r.path, r.expected, r.actual) for r in results if not r.passed]
    assert failures == []
    assert len(results) == len(files) == 313


def test_parse_data_reads_every_section():
    case = parse_data(
        "# comment\n-- asm\nmov %r0, 1 # one\nexit\n-- mem\naa bb\n  cc\n-- result\n0x1\n"
        "-- no register offset\ncall instruction\n", "t.data")
    assert case.asm.split() == ["mov", "%r0,", "1", "exit"]
    assert case.mem == b"\xaa\xbb\xcc" and case.result == 1 and case.skip is None


def test_raw_section_overrides_asm():
    case = parse_data("-- asm\nmov %r0, 1\nexit\n-- raw\n0x00000007000000b7\n0x95\n"
                                  "-- result\n7\n")
    assert conformance.run_case(case).passed


def test_wrong_result_fails_with_expected_and_actual():
    result = conformance.run_case(parse_data("-- asm\nmov %r0, 2\nexit\n-- result\n0x3\n"))
    assert not result.passed and (result.expected, result.actual) == ("0x3", "0x2")


def test_files_expecting_an_error_pass_only_when_there_is_one():
    bad = parse_data("-- asm\nja +7\nexit\n-- error\njump out of range\n")
    good = parse_data("-- asm\nmov %r0, 0\nexit\n-- error\nsomething\n")
    assert conformance.run_case(bad).passed
    assert not conformance.run_case(good).passed


def test_unwind_helper_exists_only_in_conformance_mode():
    from iotbpf.ebpf.engines.vm import VM, BPFFault
    from iotbpf.ebpf.program import Program

    text = "mov %r1, 0\ncall 5\nmov %r0, 2\nexit"
    case = parse_data("-- asm\n%s\n-- result\n0\n" % text)
    assert conformance.run_case(case).passed
    with pytest.raises(BPFFault):
        VM(Program.from_asm(text)).run()


def test_unknown_section_skips_the_file():
    case = parse_data("-- asm\nexit\n-- frobnicate\nx\n-- result\n0\n")
    assert case.skip and conformance.run_case(case).passed


@pytest.mark.parametrize("text, words", [
    ("-- asm\nexit\n-- mem\naa zz\n-- result\n0\n", ["line 4", "bad hex byte 'zz'"]),
    ("-- asm\nexit\n-- mem\naab\n-- result\n0\n", ["bad hex byte"]),
    ("-- asm\nexit\n-- result\n0x1 0x2\n", ["one number"]),
    ("-- asm\nexit\n", ["no result"]),
    ("-- result\n1\n", ["no asm"]),
    ("-- asm\nexit\n-- raw\n0xzz\n-- result\n0\n", ["raw"]),
])
def test_malformed_files_are_load_errors(text, words):
    with pytest.raises(LoadError) as info:
        parse_data(text, "bad.data")
    for word in words:
        assert word in str(info.value)


def test_asm_errors_name_the_line_of_the_data_file():
    case = parse_data("# c\n-- asm\nmov %r0, 1\nfrob\n-- result\n0\n", "bad.data")
    with pytest.raises(LoadError) as info:
        case.program()
    assert "bad.data: line 4" in str(info.value)
