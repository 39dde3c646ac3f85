"""Shared fixtures: real clang-19, a real mosquitto broker, real MicroPython, the shared data.

Tools that are missing skip their tests on a user's machine; with IOTBPF_REQUIRE_ALL=1 (CI)
a missing tool fails the test instead, so CI can never pass by skipping.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import settings

# Property and fuzz tests: bounded in CI, longer by hand with IOTBPF_FUZZ_EXAMPLES=N.
settings.register_profile("iotbpf", max_examples=int(os.environ.get("IOTBPF_FUZZ_EXAMPLES", "60")),
                          deadline=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("iotbpf")

REPO = Path(__file__).resolve().parent.parent
MICROPYTHON_DIR = REPO / "tests" / "micropython"
CORE_PACKAGES = ("ebpf", "energy", "kernel", "platforms")


def require_all() -> bool:
    return os.environ.get("IOTBPF_REQUIRE_ALL", "") not in ("", "0")


def missing(what: str):
    """Skip, or fail under IOTBPF_REQUIRE_ALL=1, because ``what`` is not available."""
    if require_all():
        pytest.fail("required tool missing (IOTBPF_REQUIRE_ALL=1): " + what)
    pytest.skip(what + " not available")


# ---------------------------------------------------------------- shared data

def shared_dir() -> Path | None:
    env = os.environ.get("IOTBPF_SHARED")
    path = Path(env) if env else REPO.parent / "shared"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared folder (conformance vectors, reference data)."""
    path = shared_dir()
    if path is None:
        missing("shared data folder (set IOTBPF_SHARED)")
    return path


@pytest.fixture(scope="session")
def conformance_dir(shared) -> Path:
    return shared / "conformance"


# ---------------------------------------------------------------- clang

def find_clang() -> str | None:
    for name in ("clang-19", "clang"):
        path = shutil.which(name)
        if path is None:
            continue
        if name == "clang":
            out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
            if "version 1" not in out or any("version %d." % v in out for v in range(1, 17)):
                continue
        return path
    return None


class Clang:
    """Compiles C to BPF objects (and natively, for differential tests)."""

    def __init__(self, path: str, workdir: Path):
        self.path = path
        self.workdir = workdir
        self.include = REPO / "apps" / "include"

    def compile(self, source: str | Path, out: Path | None = None, cpu: str = "v3",
                opt: str = "-O2", extra: tuple[str, ...] = ()) -> Path:
        """Compile C to a BPF object with debug line info; ``source`` is a Path or C source text."""
        if isinstance(source, Path):
            src = source
        else:
            src = Path(tempfile.mkstemp(suffix=".c", dir=self.workdir)[1])
            src.write_text(source)
        if out is None:
            out = Path(tempfile.mkstemp(suffix=".o", dir=self.workdir)[1])
        cmd = [self.path, opt, "-g", "-target", "bpf", "-mcpu=" + cpu, "-I", str(self.include),
               "-c", str(src), "-o", str(out), *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise AssertionError("clang failed: %s\n%s" % (" ".join(cmd), proc.stderr))
        return out


@pytest.fixture(scope="session")
def clang(tmp_path_factory) -> Clang:
    """clang-19 compiling C to ``-target bpf`` objects."""
    path = find_clang()
    if path is None:
        missing("clang-19")
    return Clang(path, tmp_path_factory.mktemp("clang"))


# ---------------------------------------------------------------- mosquitto

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MosquittoBroker:
    """A real mosquitto broker on 127.0.0.1 with a throwaway config and persistence."""

    def __init__(self, binary: str, workdir: Path, port: int | None = None):
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.config = workdir / "mosquitto.conf"
        # As root, mosquitto drops to user "mosquitto", which cannot write the test's private
        # tmp dir: persistence and the log would then fail silently. Stay the current user.
        self.config.write_text(
            "user %s\n"
            "listener %d 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            "persistence_location %s/\n"
            "autosave_interval 1\n"
            "log_dest file %s\n" % (getpass.getuser(), self.port, workdir, workdir / "mosquitto.log")
        )

    @property
    def url(self) -> str:
        return "mqtt://127.0.0.1:%d" % self.port

    def start(self) -> None:
        self.process = subprocess.Popen([self.binary, "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("mosquitto exited: " + self.log())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start: " + self.log())

    def stop(self) -> None:
        """Graceful stop (SIGTERM): persistence is written."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text() if path.exists() else ""


@pytest.fixture
def mosquitto_broker(tmp_path):
    """A running broker; yields the MosquittoBroker (``.url``, ``.port``, ``.restart()``)."""
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists()
                                           else None)
    if binary is None:
        missing("mosquitto")
    broker = MosquittoBroker(binary, tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


# ---------------------------------------------------------------- MicroPython

def find_micropython_runner() -> list[str] | None:
    """The command that runs MicroPython: IOTBPF_MICROPYTHON, or the pinned npm package."""
    env = os.environ.get("IOTBPF_MICROPYTHON")
    if env:
        return env.split()
    node = shutil.which("node")
    package = MICROPYTHON_DIR / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
    if node and package.is_dir():
        return [node, str(MICROPYTHON_DIR / "run_micropython.mjs")]
    return None


class MicroPythonResult:
    def __init__(self, stdout: str, mem_alloc: int):
        self.stdout = stdout
        self.mem_alloc = mem_alloc

    def __repr__(self):
        return "MicroPythonResult(mem_alloc=%d, stdout=%r)" % (self.mem_alloc, self.stdout[:200])


class MicroPythonError(AssertionError):
    pass


class MicroPython:
    """Runs snippets under real MicroPython with the core packages in its filesystem at /root."""

    def __init__(self, command: list[str], workdir: Path):
        self.command = command
        self.workdir = workdir

    def prepare_root(self, extra_files: dict | None = None, core: bool = True) -> Path:
        root = Path(tempfile.mkdtemp(dir=self.workdir))
        if core:
            pkg = root / "iotbpf"
            pkg.mkdir()
            shutil.copy(REPO / "iotbpf" / "__init__.py", pkg / "__init__.py")
            for name in CORE_PACKAGES:
                shutil.copytree(REPO / "iotbpf" / name, pkg / name,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for dest, source in (extra_files or {}).items():
            target = root / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, (bytes, bytearray)):
                target.write_bytes(bytes(source))
            elif isinstance(source, Path):
                if source.is_dir():
                    shutil.copytree(source, target, dirs_exist_ok=True)
                else:
                    shutil.copy(source, target)
            else:
                target.write_text(source)
        return root

    def run(self, code: str, files: dict | None = None, core: bool = True, root: Path | None = None,
            timeout: float = 600) -> MicroPythonResult:
        """Run ``code``; return its stdout and the live heap at the end (after a gc.collect()).

        A line ``# @gc`` in ``code`` splits it into parts with a real collection between them (this
        port frees garbage only in a collection outside the running call), so ``gc.mem_alloc()``
        at the start of a part is the live heap.
        """
        if root is None:
            root = self.prepare_root(files, core)
        script = root.parent / (root.name + "_script.py")
        script.write_text(code)
        proc = subprocess.run(self.command + [str(root), str(script)], capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0:
            raise MicroPythonError("MicroPython failed:\n" + proc.stderr + proc.stdout[-2000:])
        lines = proc.stdout.splitlines()
        mem = 0
        out = []
        for line in lines:
            if line.startswith("__MEM_ALLOC__ "):
                mem = int(line.split()[1])
            else:
                out.append(line)
        return MicroPythonResult("\n".join(out) + ("\n" if out else ""), mem)


@pytest.fixture(scope="session")
def micropython(tmp_path_factory) -> MicroPython:
    """Real MicroPython 1.27 (WebAssembly port under Node.js)."""
    command = find_micropython_runner()
    if command is None:
        missing("MicroPython (npm ci in tests/micropython, or set IOTBPF_MICROPYTHON)")
    return MicroPython(command, tmp_path_factory.mktemp("micropython"))


# ---------------------------------------------------------------- CLI

class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code = code
        self.out = out
        self.err = err


@pytest.fixture
def cli(capsys):
    """Run the iotbpf CLI in-process: cli("run", "x.s") -> CliResult(code, out, err)."""
    from iotbpf.cli import main

    def run(*argv) -> CliResult:
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_cli_subprocess(*argv, cwd=None, timeout=600, env=None) -> subprocess.CompletedProcess:
    """Run the installed CLI in a separate process (python -m iotbpf)."""
    return subprocess.run([sys.executable, "-m", "iotbpf", *map(str, argv)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env=env)


# ---------------------------------------------------------------- the running kernel's eBPF

@pytest.fixture(scope="session")
def kernel_bpf():
    """libbpf on the running kernel (skips with the one-line reason: no root/CAP_BPF, no BTF, no libbpf)."""
    from iotbpf.platforms.kernel import libbpf

    reason = libbpf.unavailable_reason()
    if reason is not None:
        missing("the running kernel's eBPF: " + reason)
    return libbpf


@pytest.fixture
def no_bpf_left(kernel_bpf):
    """Fails the test if it leaves a bpf program, map or link open in this process."""
    before = kernel_bpf.own_bpf_fds()
    yield kernel_bpf
    assert kernel_bpf.own_bpf_fds() == before, "bpf objects left open: %r" % kernel_bpf.own_bpf_fds()
