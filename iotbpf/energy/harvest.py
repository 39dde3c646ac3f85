"""Energy harvesters: a solar panel driven by a day-night model or a power trace.

``energy_j(t0_ns, t1_ns)`` integrates the harvested power in closed form (a half-sine per day,
or a piecewise-constant trace), so charging the battery between two events costs O(1).
The day-night model: power = peak_w x sin(pi (t - sunrise) / daylight) during daylight, 0 at
night, repeating every 24 h. It must never sample power in small time steps.
"""

import math

from iotbpf.energy.models import ModelError

NS_PER_S = 1000000000
DAY_NS = 86400 * NS_PER_S


class DayNightSolar:
    """A panel whose output follows a half-sine between sunrise and sunset, every day."""

    kind = "solar"

    def __init__(self, peak_w, sunrise_h=6.0, daylight_h=12.0, efficiency=1.0):
        if peak_w < 0 or not 0 < daylight_h <= 24:
            raise ModelError("solar: peak_w must be >= 0 and daylight_h in (0, 24]")
        self.peak_w = peak_w * efficiency
        self.rise_ns = int(sunrise_h * 3600 * NS_PER_S)
        self.day_ns = int(daylight_h * 3600 * NS_PER_S)

    def power_w(self, t_ns):
        tod = (t_ns - self.rise_ns) % DAY_NS
        if tod >= self.day_ns:
            return 0.0
        return self.peak_w * math.sin(math.pi * tod / self.day_ns)

    def _cumulative(self, t_ns):
        """Energy (J) harvested from time 0 to ``t_ns``."""
        shifted = t_ns - self.rise_ns
        days = shifted // DAY_NS
        tod = shifted - days * DAY_NS
        per_day = self.peak_w * 2.0 * self.day_ns / math.pi / NS_PER_S
        part = min(tod, self.day_ns)
        scale = self.peak_w * self.day_ns / math.pi / NS_PER_S
        partial = scale * (1.0 - math.cos(math.pi * part / self.day_ns))
        return days * per_day + partial

    def energy_j(self, t0_ns, t1_ns):
        if t1_ns <= t0_ns:
            return 0.0
        return self._cumulative(t1_ns) - self._cumulative(t0_ns)


class TraceHarvester:
    """Piecewise-constant power from a trace [(t_ns, power_w), ...], repeated every ``period_ns``."""

    kind = "trace"

    def __init__(self, points, period_ns=None, efficiency=1.0):
        if not points:
            raise ModelError("harvest trace is empty")
        pts = []
        last = -1
        for t, p in points:
            t = int(t)
            if t <= last:
                raise ModelError("harvest trace times must increase (at %d)" % t)
            if p < 0:
                raise ModelError("harvest trace power must be >= 0 (at %d)" % t)
            pts.append((t, float(p) * efficiency))
            last = t
        if pts[0][0] != 0:
            pts.insert(0, (0, 0.0))
        self.points = pts
        self.period_ns = period_ns
        # prefix energy at each breakpoint
        self._prefix = [0.0]
        for i in range(1, len(pts)):
            self._prefix.append(self._prefix[-1] + pts[i - 1][1] * (pts[i][0] - pts[i - 1][0]) / NS_PER_S)
        end = period_ns if period_ns else pts[-1][0]
        self._period_j = self._prefix[-1] + pts[-1][1] * (end - pts[-1][0]) / NS_PER_S

    def _index(self, t_ns):
        lo, hi = 0, len(self.points) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.points[mid][0] <= t_ns:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def power_w(self, t_ns):
        if self.period_ns:
            t_ns %= self.period_ns
        return self.points[self._index(t_ns)][1]

    def _cumulative(self, t_ns):
        base = 0.0
        if self.period_ns:
            base = (t_ns // self.period_ns) * self._period_j
            t_ns %= self.period_ns
        i = self._index(t_ns)
        return base + self._prefix[i] + self.points[i][1] * (t_ns - self.points[i][0]) / NS_PER_S

    def energy_j(self, t0_ns, t1_ns):
        if t1_ns <= t0_ns:
            return 0.0
        return self._cumulative(t1_ns) - self._cumulative(t0_ns)


def make_harvester(spec, where="harvester"):
    """Build a harvester from a board's ``harvester`` object, or None when absent."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ModelError(where + ": expected an object")
    kind = spec.get("kind", "solar")
    eff = float(spec.get("efficiency", 1.0))
    if kind == "solar":
        peak = spec.get("peak_w")
        if isinstance(peak, bool) or not isinstance(peak, (int, float)):
            raise ModelError(where + ".peak_w: expected a number")
        return DayNightSolar(float(peak), float(spec.get("sunrise_h", 6.0)),
                             float(spec.get("daylight_h", 12.0)), eff)
    if kind == "trace":
        pts = spec.get("points")
        if not isinstance(pts, list):
            raise ModelError(where + ".points: expected a list of [t_s, power_w]")
        period = spec.get("period_s")
        return TraceHarvester([(int(t * NS_PER_S), p) for t, p in pts],
                              int(period * NS_PER_S) if period else None, eff)
    raise ModelError("%s.kind: unknown %r (solar or trace)" % (where, kind))
