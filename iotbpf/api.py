"""The public Python API of iotbpf, in the spirit of bcc: build, load, run and measure in a few lines.

Exported lazily from ``iotbpf``. The CLI is built on these objects, not beside them.
"""


# ---------------------------------------------------------------- Program (written by vm)
from iotbpf.ebpf import program as _ebpf_program  # noqa: E402
from iotbpf.ebpf import vm as _ebpf_vm  # noqa: E402
from iotbpf.ebpf.errors import IotbpfError as _IotbpfError  # noqa: E402


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
    """An eBPF program you can load, run and disassemble.

    >>> p = Program.from_asm("mov %r0, 42\\nexit")
    >>> hex(p.run())
    '0x2a'
    """

    def __init__(self, program: _ebpf_program.Program):
        self.program = program
        self.last_run: RunResult | None = None

    # ------------------------------------------------------------ loading
    @classmethod
    def from_asm(cls, text: str, name: str = "") -> "Program":
        """Assemble bpf_conformance-syntax text (labels allowed)."""
        return cls(_ebpf_program.Program.from_asm(text, name=name))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "") -> "Program":
        """Raw instruction bytes (8-byte slots, little endian)."""
        return cls(_ebpf_program.Program.from_bytes(data, name=name))

    @classmethod
    def from_data(cls, text: str, name: str = "") -> "Program":
        """A bpf_conformance ``.data`` test: its program, default ``mem`` and ``expected`` r0."""
        return cls(_ebpf_program.Program.from_data(text, name=name))

    @classmethod
    def from_file(cls, path, section: str | None = None) -> "Program":
        """``.s``, ``.bin``, ``.data``; ``.o`` (ELF) and ``.ibpf`` (bundle) when those loaders exist."""
        return cls(_ebpf_program.Program.from_file(str(path), section=section))

    # ------------------------------------------------------------ views
    @property
    def name(self) -> str:
        return self.program.name or self.program.section

    @property
    def insns(self) -> list:
        return self.program.insns

    @property
    def mem(self) -> bytes:
        """Default input memory (a conformance file's ``-- mem``; empty otherwise)."""
        return self.program.mem

    @property
    def expected(self) -> int | None:
        return self.program.expected

    def __len__(self) -> int:
        return len(self.program.insns)

    def to_bytes(self) -> bytes:
        return self.program.to_bytes()

    def disasm(self, labels: bool = True) -> str:
        """The program as assembler text (``asm(disasm(x)) == x``)."""
        return self.program.disasm(labels=labels)

    # ------------------------------------------------------------ running
    def vm(self, engine: str = "interp", helpers=None, budget: int | None = None, env=None):
        """A ready VM for repeated runs (``vm.run(mem=...)``)."""
        return _ebpf_vm.VM(self.program, helpers=helpers, engine=engine, budget=budget, env=env)

    def verify(self, **options) -> object:
        """Run the static verifier (ebpf/verifier.py); raises VerifierError if rejected."""
        try:
            from iotbpf.ebpf import verifier
        except ImportError:
            raise _IotbpfError("the verifier is not available in this build") from None
        return verifier.verify(self.program, **options)

    def execute(self, mem: bytes | None = None, engine: str = "interp", budget: int | None = None,
                helpers=None, ctx=None, trace: bool = False, profile: bool = False, env=None) -> RunResult:
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
            helpers=None, ctx=None) -> int:
        """Run once and return r0 (64-bit unsigned). ``mem`` defaults to the program's own."""
        return self.execute(mem=mem, engine=engine, budget=budget, helpers=helpers, ctx=ctx).r0
