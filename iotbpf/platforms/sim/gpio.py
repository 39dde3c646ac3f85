"""Simulated GPIO: input pins driven by a Poisson process of pulses (or by a trace), output pins
that programs write. Reproducible from the seed; never touches real hardware.
"""

from iotbpf.ebpf.prng import Rng
from iotbpf.kernel.clock import NS_PER_H, parse_duration


class PoissonPin:
    """An input pin that pulses high for ``pulse`` at Poisson-distributed times (``rate_per_hour``)."""

    def __init__(self, seed, pin, rate_per_hour=1.0, pulse="100ms"):
        if not isinstance(pin, int) or pin < 0:
            raise ValueError("gpio pin must be a non-negative integer, got %r" % (pin,))
        if not isinstance(rate_per_hour, (int, float)) or rate_per_hour <= 0:
            raise ValueError("gpio pin %d: rate_per_hour must be a positive number" % pin)
        self.pin = pin
        self.rng = Rng(seed, "gpio:%d" % self.pin)
        self.mean_gap_ns = int(NS_PER_H / float(rate_per_hour))
        self.pulse_ns = parse_duration(pulse)

    def edges(self, start_ns, end_ns):
        """Yield (t_ns, level) edges in [start_ns, end_ns), lazily."""
        t = start_ns
        while True:
            t += self.rng.expo_ns(self.mean_gap_ns) + 1
            if t >= end_ns:
                return
            yield t, 1
            t += self.pulse_ns
            if t >= end_ns:
                return
            yield t, 0


class Gpio:
    """Pin levels of the simulated board: inputs follow their generators, outputs what programs write."""

    def __init__(self, inputs=(), outputs=()):
        self.levels = {}
        self.outputs = {}
        self.writes = 0
        for pin in inputs:
            self.levels[pin] = 0
        for pin in outputs:
            self.outputs[pin] = 0

    def read(self, pin):
        if pin in self.levels:
            return self.levels[pin]
        return self.outputs.get(pin)

    def write(self, pin, level):
        if pin not in self.outputs:
            return False
        self.outputs[pin] = level
        self.writes += 1
        return True
