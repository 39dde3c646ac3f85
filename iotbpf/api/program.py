"""``Program``: one eBPF program to compile (clang), assemble or load, then run, verify and
disassemble; ``RunResult`` is what one run produced."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from iotbpf.api.clang import compile_c
from iotbpf.api.views import MapsView
from iotbpf.ebpf import maps as _maps
from iotbpf.ebpf import program as _ebpf_program
from iotbpf.ebpf.engines import vm as _ebpf_vm
from iotbpf.ebpf.errors import IotbpfError, LoadError
from iotbpf.ebpf.loader.data import parse_data as _parse_data
from iotbpf.ebpf.loader.files import load_program as _load_program


class RunResult:
    """What one run produced: ``r0``, ``insns`` executed (budget charged), optional trace/profile."""

    def __init__(self, r0: int, insns: int, trace: list | None = None, profile: dict | None = None):
        self.r0 = r0
        self.insns = insns
        self.trace = trace
        self.profile = profile

    def __repr__(self) -> str:
        return "RunResult(r0=0x%x, insns=%d)" % (self.r0, self.insns)


class Program:
    """An eBPF program you can compile, load, verify, run and disassemble.

    Build one with ``Program.from_c("handler.c", section="timer")`` (clang-19),
    ``Program.from_asm("mov %r0, 42\\nexit")``, ``Program.from_file("prog.o" | ".ibpf" | ".s" |
    ".bin" | ".data", section=...)`` or ``Program.from_bytes(raw)``. Then:

    - ``prog.run(mem=b"...", engine="interp"|"compiled")`` -> r0 (a fault raises BPFFault
      ``pc N: <insn>: <reason>``); ``prog.execute(...)`` -> RunResult with ``r0``, ``insns``;
    - ``prog.verify(mem_size=None, hook=None)`` -> the verifier's result, or VerifierError;
      helpers default to the Linux helpers, as for ``run``;
    - ``prog.disasm()`` -> assembler text; ``prog.maps["counts"]`` -> typed views of its maps
      (their contents persist across runs of the same Program).

    >>> p = Program.from_asm("mov %r0, 42\\nexit")
    >>> p.run()
    42
    """

    def __init__(self, program: _ebpf_program.Program):
        self.program = program
        self.last_run: RunResult | None = None

    # ------------------------------------------------------------ loading
    @classmethod
    def from_asm(cls, text: str, name: str = "") -> Program:
        """Assemble bpf_conformance-syntax text (labels allowed)."""
        return cls(_ebpf_program.Program.from_asm(text, name=name))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "") -> Program:
        """Raw instruction bytes (8-byte slots, little endian)."""
        return cls(_ebpf_program.Program.from_bytes(data, name=name))

    @classmethod
    def from_data(cls, text: str, name: str = "") -> Program:
        """A bpf_conformance ``.data`` test: its program, default ``mem`` and ``expected`` r0."""
        return cls(_parse_data(text, name or "<data>").program())

    @classmethod
    def from_file(cls, path: str | os.PathLike, section: str | None = None) -> Program:
        """``.s``, ``.bin``, ``.data``; ``.o`` (ELF) and ``.ibpf`` (bundle) when those loaders exist."""
        return cls(_load_program(str(path), section=section))

    @classmethod
    def from_c(cls, path_or_source: str | os.PathLike, section: str | None = None, cpu: str = "v3",
               clang: str | None = None, include: list | None = None) -> Program:
        """Compile C with ``clang-19 -O2 -g -target bpf`` (``#include "iotbpf.h"`` works: the
        bundled header folder is on the include path) and load the program of ``section``.

        ``path_or_source`` is a ``.c`` file, or C source text (anything containing a newline or
        a ``{``).
        ``section=None`` works when the object has one program; otherwise the LoadError lists
        the sections. Raises IotbpfError when clang-19 is missing, LoadError on a compile error.
        """
        text = os.fspath(path_or_source)
        with tempfile.TemporaryDirectory(prefix="iotbpf-c-") as tmp:
            if "\n" in text or "{" in text:
                source = os.path.join(tmp, "program.c")
                with open(source, "w") as f:
                    f.write(text)
                name = "program"
            else:
                if not os.path.isfile(text):
                    raise LoadError("C source not found: %s (give a .c file or C source text)" % text)
                source = text
                name = os.path.splitext(os.path.basename(text))[0]
            try:
                obj = compile_c(source, os.path.join(tmp, name + ".o"), cpu=cpu, clang=clang, include=include)
            except LoadError as exc:
                if source == text:
                    raise
                # C given as text: name it "program.c" in messages, not a temporary path
                raise LoadError(str(exc).replace(source, "program.c")) from None
            return cls.from_file(obj, section=section)

    # ------------------------------------------------------------ views
    @property
    def name(self) -> str:
        """The program's name (its function), else its ELF section."""
        return self.program.name or self.program.section

    @property
    def insns(self) -> list:
        """The instructions, one per 8-byte slot (``iotbpf.ebpf.isa.Instruction``)."""
        return self.program.insns

    @property
    def mem(self) -> bytes:
        """Default input memory (a conformance file's ``-- mem``; empty otherwise)."""
        return self.program.mem

    @property
    def expected(self) -> int | None:
        """The r0 a conformance file expects; None for other programs."""
        return self.program.expected

    def __len__(self) -> int:
        return len(self.program.insns)

    def to_bytes(self) -> bytes:
        """The raw instruction bytes (8-byte slots, little endian), as ``from_bytes`` takes them."""
        return self.program.to_bytes()

    def disasm(self, labels: bool = True) -> str:
        """The program as assembler text (``asm(disasm(x)) == x``)."""
        return self.program.disasm(labels=labels)

    @property
    def maps(self) -> MapsView:
        """The program's maps by name (MapView / GlobalVariable), live: runs of this Program
        share them, so counters a program keeps can be read after ``run()``."""
        entries = self.program.maps
        if any(not isinstance(m, _maps.Map) for m in entries):
            _maps.instantiate(self.program)
        return MapsView(dict((m.name, m) for m in self.program.maps))

    # ------------------------------------------------------------ running
    def vm(self, engine: str = "interp", helpers: Any = None, budget: int | None = None, env: Any = None) -> Any:
        """A ready VM for repeated runs (``vm.run(mem=...)``).

        ``helpers`` defaults to the Linux helpers (ebpf/helpers.py); map specs of the program
        become live maps on first use and keep their contents across runs.
        """
        if helpers is None:
            from iotbpf.ebpf.helpers import linux_helpers

            helpers = linux_helpers()
        machine = _ebpf_vm.VM(self.program, helpers=helpers, engine=engine, budget=budget, env=env)
        from iotbpf.ebpf.maps import freeze_readonly

        freeze_readonly(self.program.maps)  # loaded: .rodata is now constant, as libbpf freezes it
        return machine

    def verify(self, helpers: Any = None, **options: Any) -> object:
        """Run the static verifier (ebpf/verifier/ ``verify``); raises VerifierError if rejected.

        ``helpers`` defaults to the Linux helpers, as for ``run``; other options (``hook``,
        ``mem_size``, ``budget``...) are passed through.
        """
        try:
            from iotbpf.ebpf import verifier
        except ImportError:
            raise IotbpfError("the verifier is not available in this build") from None
        if helpers is None:
            from iotbpf.ebpf.helpers import linux_helpers

            helpers = linux_helpers()
        return verifier.verify(self.program, helpers=helpers, **options)

    def execute(self, mem: bytes | None = None, engine: str = "interp", budget: int | None = None,
                helpers: Any = None, ctx: Any = None, trace: bool = False, profile: bool = False,
                env: Any = None) -> RunResult:
        """Run once and return a RunResult; a fault raises BPFFault (``pc N: insn: reason``)."""
        if mem is None:
            mem = self.program.mem
        machine = self.vm(engine=engine, helpers=helpers, budget=budget, env=env)
        try:
            r0 = machine.run(mem=mem, ctx=ctx, trace=trace, profile=profile)
        finally:
            ex = machine.last
            self.last_run = RunResult(0, ex.insns_executed, ex.trace, ex.profile)
        self.last_run.r0 = r0
        return self.last_run

    def run(self, mem: bytes | None = None, engine: str = "interp", budget: int | None = None,
            helpers: Any = None, ctx: Any = None) -> int:
        """Run once and return r0 (64-bit unsigned). ``mem`` defaults to the program's own."""
        return self.execute(mem=mem, engine=engine, budget=budget, helpers=helpers, ctx=ctx).r0
