"""Energy harvesters: a solar panel under the real sky (latitude, date, weather), a day-night
half-sine, or a power trace.

``energy_j(t0_ns, t1_ns)`` integrates the harvested power per interval, so charging the battery
between two events costs O(1): closed forms for the half-sine and the trace, a fixed Gauss-Legendre
rule per daylight segment (and a per-day cache) for the clear sky. It must never sample power in
small time steps.

``ClearSkySolar``: a horizontal panel of ``area_m2`` and module ``efficiency`` at ``latitude_deg``,
virtual time 0 = local solar midnight of day ``start_doy`` (1 = January 1). Solar declination after
Cooper (1969), "The absorption of radiation in solar stills", Solar Energy 12(3):333-346
(delta = 23.45 deg x sin(360 (284 + n) / 365)); zenith angle from latitude, declination and hour
angle (Duffie & Beckman, "Solar Engineering of Thermal Processes", 4th ed., eq. 1.6.5); clear-sky
global horizontal irradiance after Haurwitz (1945), "Insolation in relation to cloud type", J.
Meteorology 3:123-124 (GHI = 1098 cos Z exp(-0.059 / cos Z) W/m^2), the simple model that Reno,
Hansen & Stein (Sandia SAND2012-2389, 2012) rank among the best of its class. ``weather`` (a bundled
site, weather/*.json: 365 measured daily GHI totals from NREL TMY3) scales each day's clear-sky
shape to that day's measured total, so a cloudy day harvests what was measured at the site.
``charger_efficiency`` is the harvesting converter's (e.g. a boost charger at ~80 %).
"""

import math

from iotbpf.energy.models import ModelError, find_file, read_json

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


# 8-point Gauss-Legendre rule on [-1, 1] (Abramowitz & Stegun, Table 25.4)
_GL_X = (0.1834346424956498, 0.5255324099163290, 0.7966664774136267, 0.9602898564975363)
_GL_W = (0.3626837833783620, 0.3137066458778873, 0.2223810344533745, 0.1012285362903763)
DAY_S = 86400.0


def declination_rad(doy):
    """Solar declination on day ``doy`` (1..365), Cooper (1969)."""
    return math.radians(23.45) * math.sin(2.0 * math.pi * (284 + doy) / 365.0)


def haurwitz_ghi(cos_zenith):
    """Clear-sky global horizontal irradiance (W/m^2) at a solar zenith with this cosine."""
    if cos_zenith <= 0.0:
        return 0.0
    return 1098.0 * cos_zenith * math.exp(-0.059 / cos_zenith)


class ClearSkySolar:
    """A horizontal panel under a clear sky at a latitude, scaled day by day to measured weather."""

    kind = "clearsky"

    def __init__(self, latitude_deg, area_m2, efficiency, start_doy=1, weather=None, charger_efficiency=1.0):
        if not -90.0 <= latitude_deg <= 90.0:
            raise ModelError("clearsky: latitude_deg must be in [-90, 90]")
        if area_m2 < 0 or not 0.0 <= efficiency <= 1.0 or not 0.0 <= charger_efficiency <= 1.0:
            raise ModelError("clearsky: area_m2 >= 0, efficiency and charger_efficiency in [0, 1]")
        if weather is not None and len(weather) != 365:
            raise ModelError("clearsky: weather needs 365 daily GHI totals (Wh/m^2)")
        self.lat = math.radians(latitude_deg)
        self.scale = area_m2 * efficiency * charger_efficiency  # W per W/m^2
        self.start_doy = int(start_doy)
        self.weather = weather
        self._days = {}  # doy -> (sunrise s, sunset s, sin lat sin d, cos lat cos d, factor, day J)

    def _day(self, doy):
        day = self._days.get(doy)
        if day is None:
            d = declination_rad(doy)
            a = math.sin(self.lat) * math.sin(d)
            b = math.cos(self.lat) * math.cos(d)
            x = -a / b if b > 1e-12 else (-1.0 if a > 0 else 1.0)
            ws = math.acos(max(-1.0, min(1.0, x)))  # sunset hour angle
            half = ws / math.pi * 43200.0
            day = (43200.0 - half, 43200.0 + half, a, b, 1.0, 0.0)
            clear_wh = self._integral(day, day[0], day[1]) / 3600.0
            factor = 1.0
            if self.weather is not None:
                measured = float(self.weather[doy - 1])
                factor = measured / clear_wh if clear_wh > 0 else 0.0
            day = (day[0], day[1], a, b, factor, clear_wh * 3600.0 * factor)
            self._days[doy] = day
        return day

    def _ghi(self, day, sec):
        return haurwitz_ghi(day[2] + day[3] * math.cos((sec - 43200.0) * math.pi / 43200.0))

    def _integral(self, day, s0, s1):
        """J/m^2 of clear-sky GHI between seconds ``s0`` and ``s1`` of a day (clipped to daylight)."""
        if s0 < day[0]:
            s0 = day[0]
        if s1 > day[1]:
            s1 = day[1]
        if s1 <= s0:
            return 0.0
        parts = int((s1 - s0) / 1800.0) + 1  # composite rule: <= 30 min per part
        h = (s1 - s0) / parts
        total = 0.0
        for k in range(parts):
            mid = s0 + (k + 0.5) * h
            half = 0.5 * h
            acc = 0.0
            for i in range(4):
                acc += _GL_W[i] * (self._ghi(day, mid - half * _GL_X[i]) + self._ghi(day, mid + half * _GL_X[i]))
            total += acc * half
        return total

    def _doy(self, day_index):
        return (self.start_doy - 1 + day_index) % 365 + 1

    def power_w(self, t_ns):
        index = t_ns // DAY_NS
        day = self._day(self._doy(index))
        return self.scale * day[4] * self._ghi(day, (t_ns - index * DAY_NS) / float(NS_PER_S)) \
            if day[0] <= (t_ns - index * DAY_NS) / float(NS_PER_S) <= day[1] else 0.0

    def daily_energy_j(self, doy):
        """Energy (J) one day brings at the panel output (after the charger)."""
        return self.scale * self._day(doy)[5]

    def energy_j(self, t0_ns, t1_ns):
        if t1_ns <= t0_ns:
            return 0.0
        first = t0_ns // DAY_NS
        last = (t1_ns - 1) // DAY_NS
        total = 0.0
        for index in range(first, last + 1):
            day = self._day(self._doy(index))
            base = index * DAY_NS
            a = t0_ns - base if index == first else 0
            b = t1_ns - base if index == last else DAY_NS
            if a == 0 and b == DAY_NS:
                total += day[5]
            else:
                total += day[4] * self._integral(day, a / float(NS_PER_S), b / float(NS_PER_S))
        return self.scale * total


def load_weather(name):
    """A bundled weather site (weather/<name>.json): (latitude_deg, 365 daily GHI Wh/m^2, source)."""
    data = read_json(find_file("weather", name, ".json"))
    ghi = data.get("daily_ghi_wh_m2")
    if not isinstance(ghi, list) or len(ghi) != 365 or not isinstance(data.get("source"), str):
        raise ModelError("weather %s: needs 365 daily_ghi_wh_m2 values and a source" % name)
    return float(data["latitude_deg"]), ghi, data["source"]


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
    if kind == "clearsky":
        weather = None
        lat = spec.get("latitude_deg")
        if spec.get("weather") is not None:
            wlat, weather, _src = load_weather(str(spec["weather"]))
            if lat is None:
                lat = wlat
        for key, value in (("latitude_deg", lat), ("area_m2", spec.get("area_m2"))):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ModelError("%s.%s: expected a number" % (where, key))
        return ClearSkySolar(float(lat), float(spec["area_m2"]), eff, int(spec.get("start_doy", 1)), weather,
                             float(spec.get("charger_efficiency", 1.0)))
    raise ModelError("%s.kind: unknown %r (solar, clearsky or trace)" % (where, kind))
