"""The eBPF virtual machine: ISA tables, assembler, engines, verifier, maps, helpers.

MicroPython-compatible and self-contained: nothing here imports another part of iotbpf.
"""
