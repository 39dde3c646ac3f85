"""api/clang.py: the header folder, compiling C to a BPF object with clang-19, its errors, and what
happens without clang."""

from pathlib import Path

import pytest

import iotbpf
from iotbpf import IotbpfError
from iotbpf.api import clang as api_clang
from iotbpf.ebpf.errors import LoadError

SIMPLE_C = r"""
#include "iotbpf.h"

SEC("a") int first(void *ctx) { return 1; }
char LICENSE[] SEC("license") = "GPL";
"""


def test_include_dir_holds_the_header():
    assert (Path(api_clang.include_dir()) / "iotbpf.h").is_file()


def test_compile_c_writes_a_bpf_object_or_names_the_error(clang, tmp_path):
    source = tmp_path / "a.c"
    source.write_text(SIMPLE_C)
    out = api_clang.compile_c(source, tmp_path / "a.o", clang=clang.path)
    data = Path(out).read_bytes()
    assert data[:4] == b"\x7fELF" and int.from_bytes(data[18:20], "little") == 247  # EM_BPF
    source.write_text(SIMPLE_C.replace("return 1;", "return undefined_name;"))
    with pytest.raises(LoadError, match="clang could not compile .*undefined_name"):
        api_clang.compile_c(source, tmp_path / "b.o", clang=clang.path)
    with pytest.raises(IotbpfError, match="cpu must be"):
        api_clang.compile_c(source, tmp_path / "c.o", cpu="v9", clang=clang.path)


def test_from_c_without_clang_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(api_clang, "find_clang", lambda: None)
    with pytest.raises(IotbpfError) as info:
        iotbpf.Program.from_c(SIMPLE_C, section="a")
    assert "clang-19 not found" in str(info.value)
