"""clang-19 for the API: find it, compile C to a BPF object with ``iotbpf.h`` on the include path,
and keep the build machine's paths out of the object's debug info."""

from __future__ import annotations

import os
import shutil
import subprocess

from iotbpf.ebpf.errors import IotbpfError, LoadError


def find_clang() -> str | None:
    """Path of clang-19 (or a ``clang`` that is version 17 or newer), or None."""
    path = shutil.which("clang-19")
    if path is not None:
        return path
    path = shutil.which("clang")
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for word in out.split():
        major = word.split(".")[0]
        if "." in word and major.isdigit():
            return path if int(major) >= 17 else None
    return None


def path_map_flags(source: str | os.PathLike, include_dirs: list | tuple = ()) -> list:
    """clang flags that keep the build machine's absolute paths out of an object's debug and line
    info: the source's folder maps to nothing (file names relative to the app), each include folder
    to its own name, and the compilation directory to ``.``."""
    folder = os.path.dirname(os.path.abspath(os.fspath(source)))
    flags = ["-ffile-prefix-map=%s/=" % folder, "-fdebug-compilation-dir=."]
    for inc in include_dirs:
        inc = os.path.abspath(os.fspath(inc))
        flags.append("-ffile-prefix-map=%s=%s" % (inc, os.path.basename(inc)))
    return flags


def include_dir() -> str:
    """The folder holding ``iotbpf.h`` (the bundled ``apps/include``)."""
    from iotbpf.resources import data_root

    return str(data_root("apps") / "include")


def compile_c(source: str | os.PathLike, output: str | os.PathLike, cpu: str = "v3",
              clang: str | None = None, include: list | None = None) -> str:
    """Compile a C file to a BPF object: ``clang-19 -O2 -g -target bpf -mcpu=CPU -I <iotbpf.h dir>``.

    Raises IotbpfError when clang is not installed, LoadError with clang's first error lines
    when the source does not compile. Returns the object's path.
    """
    if cpu not in ("v1", "v2", "v3", "v4"):
        raise IotbpfError("cpu must be v1, v2, v3 or v4, not %r" % (cpu,))
    compiler = clang or find_clang()
    if compiler is None:
        raise IotbpfError("clang-19 not found: compiling C needs it (Debian/Ubuntu: apt install clang-19)")
    includes = [include_dir()] + [os.fspath(folder) for folder in include or ()]
    cmd = [compiler, "-O2", "-g", "-target", "bpf", "-mcpu=" + cpu] + path_map_flags(source, includes)
    for folder in includes:
        cmd += ["-I", folder]
    cmd += ["-c", os.fspath(source), "-o", os.fspath(output)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except OSError as exc:
        raise IotbpfError("cannot run %s: %s" % (compiler, exc.strerror or exc)) from None
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "error:" in line] or proc.stderr.splitlines()
        raise LoadError("clang could not compile %s: %s" % (os.fspath(source),
                                                             "; ".join(errors[:3]) or "clang failed"))
    return os.fspath(output)
