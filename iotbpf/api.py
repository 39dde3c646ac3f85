"""The public Python API of iotbpf, in the spirit of bcc: build, load, run and measure in a few lines.

Exported lazily from ``iotbpf``. The CLI is built on these objects, not beside them.
"""
