"""The compiled engine ("compiled"): analysis, ranges, structure and codegen turn a program into
Python source once; engine runs it. Exported: CompiledEngine, compile_program, clear_cache."""

from iotbpf.ebpf.engines.compiler.engine import Compiled, CompiledEngine, clear_cache, compile_program

__all__ = ["Compiled", "CompiledEngine", "clear_cache", "compile_program"]
