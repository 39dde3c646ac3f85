"""Static verifier: proves an eBPF program safe before it runs, or says why not (docs/verifier.md).
``verify(program, ...) -> VerifyResult``; a rejection raises ``VerifierError`` whose ``.errors``
lists one-line messages ``pc N: <insn>: <reason>``. MicroPython-compatible; imports only ebpf/."""

from iotbpf.ebpf.ranges import alu_concrete, const_bounds, end_bounds, scalar_alu
from iotbpf.ebpf.verifier.checker import DEFAULT_COMPLEXITY, DEFAULT_MAX_INSNS, Verifier, verify
from iotbpf.ebpf.verifier.domain import Reg, describe
from iotbpf.ebpf.verifier.state import VerifyResult

__all__ = ["DEFAULT_COMPLEXITY", "DEFAULT_MAX_INSNS", "Reg", "VerifyResult", "Verifier", "alu_concrete",
           "const_bounds", "describe", "end_bounds", "scalar_alu", "verify"]
