"""The thin device runtime (MicroPython): runs a device image the host linked (``iotbpf link``). It
never parses ELF, bundles or manifests and never verifies: the host did that. Modules are imported
lazily, so a feature the image does not use costs no RAM (docs/mcu.md).
"""
