"""``Program``: the slot-indexed instructions of one eBPF program plus what a loader found beside
them (maps, name, section, line info, labels, subprograms). MicroPython-compatible."""

from iotbpf.ebpf import isa
from iotbpf.ebpf.errors import LoadError


class Program:
    def __init__(self, insns, maps=None, name="", section="", line_info=None, labels=None,
                 source=None):
        if len(insns) > isa.MAX_INSNS:
            raise LoadError("program has %d instructions (limit %d)" % (len(insns), isa.MAX_INSNS))
        self.insns = insns
        self.maps = list(maps) if maps else []
        self.name = name
        self.section = section
        self.line_info = line_info or {}
        self.labels = labels or {}
        self.source = source
        self.mem = b""
        self.expected = None
        self.subprograms = isa.function_starts(insns)

    def __len__(self):
        return len(self.insns)

    def __repr__(self):
        return "Program(%r, %d slots, %d maps)" % (self.name or self.section, len(self.insns), len(self.maps))

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_asm(cls, text, name="", filename=None):
        from iotbpf.ebpf.isa import asm

        insns, labels, lines = asm.assemble_with_info(text)
        where = filename or name
        info = {}
        if where:  # anonymous text gets no line info (fault messages would only repeat it)
            for pc, (lineno, src) in lines.items():
                info[pc] = (where, lineno, src)
        return cls(insns, name=name, line_info=info, labels=labels, source=text)

    @classmethod
    def from_bytes(cls, data, name=""):
        data = bytes(data)
        if len(data) > isa.MAX_INSNS * 8:
            raise LoadError("program is %d bytes (limit %d)" % (len(data), isa.MAX_INSNS * 8))
        if len(data) % 8:
            raise LoadError("truncated program: %d bytes is not a multiple of 8 (one instruction slot)"
                            % len(data))
        if not data:
            raise LoadError("empty program")
        try:
            insns = isa.decode(data)
        except isa.DecodeError as exc:
            raise LoadError(str(exc)) from None
        return cls(insns, name=name)

    # ---------------------------------------------------------------- views
    def to_bytes(self):
        return isa.encode(self.insns)

    def disasm(self, labels=True):
        from iotbpf.ebpf.isa import disasm

        return disasm.disassemble(self.insns, labels=labels)

    def pack(self):
        """Keep the instructions as raw slots (``isa.PackedInsns``) and drop source lines and
        labels: what a microcontroller keeps of a loaded program (engines read it the same)."""
        if not isinstance(self.insns, isa.PackedInsns):
            self.insns = isa.PackedInsns(isa.encode(self.insns))
        self.line_info = {}
        self.labels = {}
        self.source = None
        return self

    def insn_text(self, pc):
        if 0 <= pc < len(self.insns):
            return isa.format_insn(self.insns[pc], pc)
        return "<end of program>"

