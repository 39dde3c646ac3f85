"""Simulated radio: a link model (loss probability, airtime from the bit rate) and generators of
incoming traffic (periodic or Poisson sources, optionally floods). Never sends real packets.
"""

from iotbpf.ebpf.prng import Rng
from iotbpf.kernel.clock import NS_PER_H, NS_PER_S, parse_duration


class Link:
    """Bit rate, per-packet overhead and loss (parts per million) of the node's radio link."""

    def __init__(self, seed, bitrate=250000, overhead_bytes=17, loss_ppm=10000):
        self.rng = Rng(seed, "radio:link")
        for name, value in (("bitrate", bitrate), ("overhead_bytes", overhead_bytes), ("loss_ppm", loss_ppm)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError("sim.radio.%s must be a non-negative integer" % name)
        self.bitrate = bitrate
        self.overhead = overhead_bytes
        self.loss_ppm = loss_ppm
        if self.bitrate <= 0:
            raise ValueError("sim.radio.bitrate must be positive")
        if self.loss_ppm > 1000000:
            raise ValueError("sim.radio.loss_ppm must be at most 1000000")

    def airtime_ns(self, nbytes):
        """Time on air of a packet of nbytes payload (preamble/header/CRC overhead included)."""
        return ((nbytes + self.overhead) * 8 * NS_PER_S) // self.bitrate

    def delivered(self):
        """Draw whether one transmission gets through the link."""
        return not self.rng.chance(self.loss_ppm)


class TrafficSource:
    """Packets from one sender: ``src``, ``len``, ``port``, and either a ``period`` or a ``rate_per_hour``.

    A source with ``start``/``stop`` is active only in that interval (a flood from an attacker).
    """

    def __init__(self, seed, index, spec):
        self.src = int(spec.get("src", index + 1))
        self.rng = Rng(seed, "radio:source:%d:%d" % (index, self.src))
        self.length = int(spec.get("len", 24))
        self.port = int(spec.get("port", 1))
        self.rssi = int(spec.get("rssi", -70))
        self.period_ns = parse_duration(spec["period"]) if "period" in spec else 0
        rate = spec.get("rate_per_hour", 0)
        if not isinstance(rate, (int, float)) or rate < 0:
            raise ValueError("traffic source %d: rate_per_hour must be a positive number" % self.src)
        self.mean_gap_ns = int(NS_PER_H / rate) if rate > 0 else 0
        if not self.period_ns and not self.mean_gap_ns:
            raise ValueError("traffic source %d needs a period or a rate_per_hour" % self.src)
        self.start_ns = parse_duration(spec.get("start", "0s"))
        self.stop_ns = parse_duration(spec["stop"]) if "stop" in spec else None
        if self.length < 0 or self.length > 4096:
            raise ValueError("traffic source %d: len must be 0..4096" % self.src)

    def next_after(self, t_ns):
        """Time of this source's next packet after t_ns, or None when it has stopped."""
        if t_ns < self.start_ns:
            t_ns = self.start_ns
        if self.period_ns:
            nxt = t_ns + self.period_ns
        else:
            nxt = t_ns + self.rng.expo_ns(self.mean_gap_ns) + 1
        if self.stop_ns is not None and nxt >= self.stop_ns:
            return None
        return nxt

    def packet(self, seq):
        """Fields of the radio_rx context for the seq-th packet of this source."""
        payload = bytes([(self.src + seq + i) & 0xFF for i in range(min(self.length, 64))])
        return {"src": self.src, "dst": 0, "len": self.length, "rssi": self.rssi, "port": self.port,
                "payload": payload}
