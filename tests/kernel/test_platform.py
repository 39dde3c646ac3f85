"""kernel/platform.py: the Platform base class every platform implements; the runtime calls its
methods instead of probing for them."""

import ast
from pathlib import Path

import pytest

from iotbpf.ebpf.program import Program
from iotbpf.kernel.clock import NS_PER_S
from iotbpf.kernel.manifest import Manifest
from iotbpf.kernel.platform import Platform
from iotbpf.kernel.runtime import Runtime

KERNEL = Path(__file__).resolve().parents[2] / "iotbpf" / "kernel"


def test_start_and_sensor_read_are_abstract_and_the_rest_mean_no_device():
    p = Platform()
    with pytest.raises(NotImplementedError, match="Platform.start"):
        p.start(None, 0)
    with pytest.raises(NotImplementedError, match="Platform.sensor_read"):
        p.sensor_read(0, 0)
    assert (p.gpio_read(3), p.gpio_write(3, 1), p.airtime_ns(40), p.delivered(), p.jitter_ns(10)) == \
        (None, False, 0, True, 0)
    assert p.transmit("a", b"x", 0) is True and p.log_line(0, "a", "m", 1) is None


def test_every_platform_of_the_runtime_is_a_platform():
    from iotbpf.platforms.rpi import RealtimePlatform
    from iotbpf.platforms.sim.platform import SimPlatform

    assert issubclass(SimPlatform, Platform) and issubclass(RealtimePlatform, Platform)
    # mcu.py imports MicroPython's machine module: read its class line instead of importing it
    tree = ast.parse((KERNEL.parent / "platforms" / "mcu.py").read_text())
    bases = [[b.id for b in n.bases] for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "McuPlatform"]
    assert bases == [["Platform"]]


class Thermometer(Platform):
    """The least a platform writes: its start and one sensor; sensor_reader comes from the base."""

    def __init__(self):
        self.reads = []

    def start(self, runtime, end_ns):
        runtime.queue.push(NS_PER_S // 2, lambda t, arg: runtime.raise_event("gpio", {"pin": 1, "level": 1}))

    def sensor_read(self, sensor_id, now_ns):
        self.reads.append((sensor_id, now_ns))
        return 21500 if sensor_id == 0 else None


def test_a_minimal_platform_runs_a_node():
    read = Program.from_asm("mov %r1, 0\ncall 0x1000\nmov %r6, %r0\nmov %r1, 9\ncall 0x1000\n"
                            "mov %r1, 7\ncall 0x1003\nmov %r1, 7\nmov %r2, 1\ncall 0x1004\nmov %r0, %r6\nexit")
    platform = Thermometer()
    rt = Runtime(platform=platform)
    m = Manifest({"version": 1, "name": "t", "object": "t.o", "programs": {"gpio": "g"}})
    rt.load_app(m, {"g": read})
    rt.boot()
    rt.start_platform(NS_PER_S)
    rt.run_until(NS_PER_S)
    assert platform.reads == [(0, NS_PER_S // 2), (9, NS_PER_S // 2)]
    assert rt.hook_stats["gpio"].runs == 1 and rt.faults == []


def test_the_runtime_does_not_probe_the_platform():
    for path in sorted(KERNEL.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr"):
                target = ast.unparse(node.args[0])
                assert "platform" not in target, "%s:%d probes the platform: %s" % (
                    path.name, node.lineno, ast.unparse(node))
