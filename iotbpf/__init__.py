"""iotbpf: run and measure energy-aware eBPF event handlers on IoT nodes and mobile devices.

The public API (``iotbpf.Program``, ``iotbpf.Node``, ...) lives in ``iotbpf.api`` and is
loaded lazily, so that importing ``iotbpf.ebpf`` on a microcontroller pulls in nothing else.
"""

from iotbpf.ebpf.errors import IotbpfError

__version__ = "0.1.0"

_API_NAMES = ("Program", "Node", "SimulationResult", "MapView", "Comparison", "compare")


def __getattr__(name):
    if name in _API_NAMES:
        from iotbpf import api

        return getattr(api, name)
    raise AttributeError("module 'iotbpf' has no attribute " + repr(name))


__all__ = ["IotbpfError", "__version__"] + list(_API_NAMES)
