"""The instruction set, written once: encoding, text, validation, control flow (exported here as
``isa.X``), the operations (ops), the assembler (asm) and the disassembler (disasm)."""

from iotbpf.ebpf.isa.cfg import basic_blocks, block_leaders, function_starts, lddw_tails  # noqa: F401
from iotbpf.ebpf.isa.encoding import *  # noqa: F403 (the package is the encoding's namespace)
from iotbpf.ebpf.isa.text import format_imm, format_insn, format_slot, slot_value  # noqa: F401
from iotbpf.ebpf.isa.validate import (  # noqa: F401
    WRITES_DST,
    instruction_error,
    is_canonical,
    operand_error,
    reserved_field_error,
    validate,
)
