"""Objects name their source files relative to the app: `iotbpf build` and `Program.from_c` keep the
build machine's folders out of line info, and the loader shows old objects' files relative too."""

import shutil
import subprocess
import sys

from conftest import REPO
from iotbpf.ebpf.errors import VerifierError
from iotbpf.ebpf.loader.elf import display_file_name, load_elf_object

# A loop the verifier refuses, so its message shows the failing line's file.
_BAD = """#include "iotbpf.h"
SEC("timer")
int on_timer(struct iot_timer_ctx *ctx)
{
\tvolatile int x[4];
\treturn x[ctx->now_ns & 7];
}
char _license[] SEC("license") = "GPL";
"""


def test_display_file_name_is_relative_to_the_object(tmp_path):
    obj = tmp_path / "app" / "x.o"
    obj.parent.mkdir()
    obj.write_bytes(b"")
    assert display_file_name(str(tmp_path / "app" / "x.c"), str(obj)) == "x.c"
    assert display_file_name(str(tmp_path / "app" / "src" / "y.c"), str(obj)) == "src/y.c"
    assert display_file_name("/elsewhere/lib/z.h", str(obj)) == "z.h"
    assert display_file_name("already.c", str(obj)) == "already.c"


def test_an_object_built_with_absolute_paths_shows_relative_names(clang, tmp_path):
    app = tmp_path / "myapp"
    app.mkdir()
    (app / "bad.c").write_text(_BAD)
    obj = clang.compile(app / "bad.c", out=app / "bad.o")
    assert str(app).encode() in obj.read_bytes()  # clang wrote the absolute path
    prog = load_elf_object(str(obj)).program("timer")
    assert {f for f, _line, _text in prog.line_info.values()} == {"bad.c"}
    from iotbpf.ebpf.verifier import verify

    try:
        verify(prog)
    except VerifierError as exc:
        assert str(tmp_path) not in str(exc)
        assert "bad.c:6" in str(exc)
    else:  # pragma: no cover - the program reads an uninitialised stack slot
        raise AssertionError("verifier accepted a read of uninitialised stack")


def test_iotbpf_build_writes_no_absolute_path(clang, tmp_path):
    app = tmp_path / "sensor_node"
    shutil.copytree(REPO / "apps" / "sensor_node", app)
    for built in app.glob("*.o"):
        built.unlink()
    proc = subprocess.run([sys.executable, "-m", "iotbpf", "build", str(app), "--clang", clang.path],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for artefact in list(app.glob("*.o")) + list(app.glob("*.ibpf")):
        data = artefact.read_bytes()
        assert str(tmp_path).encode() not in data, artefact
        assert str(REPO).encode() not in data, artefact


def test_program_from_c_writes_no_absolute_path(clang, tmp_path):
    from iotbpf.api.clang import compile_c

    src = tmp_path / "prog.c"
    src.write_text('#include "iotbpf.h"\nSEC("timer") int f(void *c) { return 0; }\n'
                   'char _license[] SEC("license") = "GPL";\n')
    out = compile_c(src, tmp_path / "prog.o", clang=clang.path)
    data = open(out, "rb").read()
    assert str(tmp_path).encode() not in data and str(REPO).encode() not in data
