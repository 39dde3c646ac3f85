"""A small deterministic PRNG (xorshift64*, seeded with splitmix64), the only one in iotbpf: the VM's
environment, the kernel, the simulator and the fleet draw from it. Integers only, so every port agrees."""

from iotbpf.ebpf.isa.encoding import M64

_LN2 = 0.6931471805599453


def splitmix64(x):
    """One splitmix64 step: a well-mixed 64-bit value from any 64-bit input."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def stream_seed(seed, name):
    """A seed for the named stream, so adding a device never changes another device's draws."""
    h = 0xCBF29CE484222325
    for ch in name:
        h = ((h ^ ord(ch)) * 0x100000001B3) & M64
    return splitmix64((seed & M64) ^ h)


def ln(u):
    """Natural log of a float in (0, 1] using only + - * / (correctly rounded on every IEEE port)."""
    k = 0
    while u < 0.5:
        u = u * 2.0
        k += 1
    z = (u - 1.0) / (u + 1.0)
    z2 = z * z
    term = z
    total = 0.0
    n = 1
    while n < 60:
        total += term / n
        term = term * z2
        n += 2
    return 2.0 * total - k * _LN2


class Rng:
    """xorshift64*: ``u32()``, ``below(n)``, ``uniform()``, ``expo(mean)``, ``chance(p_permille)``."""

    def __init__(self, seed, name=""):
        state = stream_seed(seed, name) if name else splitmix64(seed & M64)
        self.state = state or 0x2545F4914F6CDD1D

    @classmethod
    def from_state(cls, state):
        """A generator that continues from the raw xorshift state ``state`` (non-zero), unseeded."""
        rng = cls(0)
        rng.state = state
        return rng

    def u64(self):
        x = self.state
        x ^= x >> 12
        x ^= (x << 25) & M64
        x ^= x >> 27
        self.state = x
        return (x * 0x2545F4914F6CDD1D) & M64

    def u32(self):
        return self.u64() >> 32

    def below(self, n):
        """Uniform integer in [0, n) for n >= 1 (multiply-shift, no modulo bias worth measuring)."""
        return ((self.u64() >> 32) * n) >> 32

    def between(self, lo, hi):
        """Uniform integer in [lo, hi] inclusive."""
        return lo + self.below(hi - lo + 1)

    def uniform(self):
        """Float in (0, 1]: 53 random bits, never exactly zero."""
        return ((self.u64() >> 11) + 1) / 9007199254740992.0

    def expo_ns(self, mean_ns):
        """Exponentially distributed integer nanoseconds with the given mean (Poisson gaps)."""
        return int(-ln(self.uniform()) * mean_ns)

    def chance(self, p_ppm):
        """True with probability ``p_ppm`` parts per million."""
        return self.below(1000000) < p_ppm
