"""Battery models: ideal coulomb counting, Peukert, and KiBaM (two wells, with recovery).

Each model is driven by ``draw(current_a, dt_ns)``: a constant current over an interval,
integrated in closed form (a negative current charges, e.g. from a harvester). Self-discharge is
a constant leakage current (``self_discharge_per_year`` x nominal capacity per year). The
battery is dead when its usable charge reaches the cut-off (``cutoff_soc``).
Equations: Peukert (1897), t = H (C / (I H))^k; KiBaM: Manwell & McGowan (1993), "Lead acid
battery storage model for hybrid energy systems", Solar Energy 50(5):399-405, eqs. for y1, y2
under constant current; summarised in Jongerden & Haverkort (2009), "Which battery model to
use?", IET Software 3(6). It must never step time in small increments.
"""

import math

from iotbpf.energy.models import ModelError

NS = 1e-9
YEAR_S = 365 * 86400.0


class Battery:
    """Common part: capacity, SoC, cut-off, self-discharge, time-to-empty prediction."""

    kind = "ideal"

    def __init__(self, capacity_mah, voltage_v, self_discharge_per_year=0.0, cutoff_soc=0.0):
        if capacity_mah <= 0:
            raise ModelError("battery capacity must be positive")
        self.capacity_c = capacity_mah * 3.6
        if not _finite(capacity_mah) or not _finite(self.capacity_c * YEAR_S):
            raise ModelError("battery capacity %r mAh is not a usable finite number" % (capacity_mah,))
        self.voltage_v = voltage_v
        self.leak_a = self_discharge_per_year * self.capacity_c / YEAR_S
        self.cutoff_soc = cutoff_soc
        self.drawn_c = 0.0
        self.harvested_c = 0.0
        self.elapsed_ns = 0
        self.avg_current_a = None
        self.dead_at_ns = None

    # overridden by models
    def _discharge(self, current_a, dt_s):
        self.level_c = min(self.capacity_c, self.level_c - current_a * dt_s)

    def available_c(self):
        return self.level_c

    def _state(self):
        return self.level_c

    def _set_state(self, state):
        self.level_c = state

    def draw(self, current_a, dt_ns, alpha=0.2):
        """Draw ``current_a`` (A, negative to charge) for ``dt_ns``; returns True while alive."""
        if dt_ns <= 0:
            return not self.dead()
        dt_s = dt_ns * NS
        total = current_a + self.leak_a
        before = self._state()
        self._discharge(total, dt_s)
        if self.dead_at_ns is None and total > 0 and self.dead():
            # died during this interval: find when, from the state at its start
            after = self._state()
            self._set_state(before)
            left = self.time_to_empty_s(total)
            self._set_state(after)
            self.dead_at_ns = self.elapsed_ns + int((left if left is not None else dt_s) * 1e9)
        if current_a >= 0:
            self.drawn_c += current_a * dt_s
        else:
            self.harvested_c -= current_a * dt_s
        self.elapsed_ns += dt_ns
        if current_a > 0:
            if self.avg_current_a is None:
                self.avg_current_a = current_a
            else:
                self.avg_current_a += alpha * (current_a - self.avg_current_a)
        return not self.dead()

    def soc(self):
        """State of charge in [0, 1] (charge left / nominal capacity)."""
        return max(0.0, min(1.0, self._total_c() / self.capacity_c))

    def _total_c(self):
        return self.level_c

    def dead(self):
        return self.available_c() <= self.cutoff_soc * self.capacity_c + 1e-12

    def time_to_empty_s(self, current_a=None):
        """Seconds until cut-off at a constant ``current_a`` (default: the recent average drain)."""
        if current_a is None:
            current_a = self.avg_current_a
            if current_a is None:
                return None
            current_a += self.leak_a
        if current_a <= 0:
            return None
        usable = self.available_c() - self.cutoff_soc * self.capacity_c
        if usable <= 0:
            return 0.0
        return usable / current_a

    def describe(self):
        return {"model": self.kind, "capacity_mah": self.capacity_c / 3.6, "soc": self.soc(),
                "drawn_mah": self.drawn_c / 3.6, "harvested_mah": self.harvested_c / 3.6,
                "dead": self.dead(), "dead_at_ns": self.dead_at_ns}


class IdealBattery(Battery):
    """Coulomb counting: lifetime = capacity / current exactly."""

    kind = "ideal"

    def __init__(self, capacity_mah, voltage_v, **kw):
        Battery.__init__(self, capacity_mah, voltage_v, **kw)
        self.level_c = self.capacity_c


class PeukertBattery(Battery):
    """Rate-dependent capacity: discharging at I for t uses I (I / I_ref)^(k-1) t of the capacity.

    I_ref = C / H (the rated current for the rated discharge time H), so a constant current I
    lasts t = H (C / (I H))^k, Peukert's law.
    """

    kind = "peukert"

    def __init__(self, capacity_mah, voltage_v, peukert_k=1.2, rated_hours=20.0, **kw):
        Battery.__init__(self, capacity_mah, voltage_v, **kw)
        if peukert_k < 1.0:
            raise ModelError("Peukert exponent must be >= 1 (got %r)" % peukert_k)
        self.k = peukert_k
        self.rated_s = rated_hours * 3600.0
        self.i_ref = self.capacity_c / self.rated_s
        self.level_c = self.capacity_c

    def _effective(self, current_a):
        if current_a <= 0:
            return current_a
        return current_a * (current_a / self.i_ref) ** (self.k - 1.0)

    def _discharge(self, current_a, dt_s):
        self.level_c = min(self.capacity_c, self.level_c - self._effective(current_a) * dt_s)

    def time_to_empty_s(self, current_a=None):
        if current_a is None:
            if self.avg_current_a is None:
                return None
            current_a = self.avg_current_a + self.leak_a
        if current_a <= 0:
            return None
        usable = self.level_c - self.cutoff_soc * self.capacity_c
        return max(0.0, usable / self._effective(current_a))


def kibam_step(y1, y2, current_a, dt_s, c, k):
    """Manwell & McGowan's closed form: wells (y1 available, y2 bound) after dt at constant current."""
    kp = k / (c * (1.0 - c))
    y0 = y1 + y2
    e = math.exp(-kp * dt_s)
    one_e = 1.0 - e
    ramp = kp * dt_s - one_e
    n1 = y1 * e + (y0 * kp * c - current_a) * one_e / kp - current_a * c * ramp / kp
    n2 = y2 * e + y0 * (1.0 - c) * one_e - current_a * (1.0 - c) * ramp / kp
    return n1, n2


class KiBaMBattery(Battery):
    """Kinetic battery model: charge flows from the bound well to the available well at rate k.

    A fraction ``c`` of the charge is directly available; the battery is empty when the
    available well is empty, even though bound charge remains — which it recovers at rest.
    """

    kind = "kibam"

    def __init__(self, capacity_mah, voltage_v, c=0.625, k_per_s=4.5e-5, **kw):
        Battery.__init__(self, capacity_mah, voltage_v, **kw)
        if not 0.0 < c < 1.0:
            raise ModelError("KiBaM c must be in (0, 1) (got %r)" % c)
        if k_per_s <= 0:
            raise ModelError("KiBaM k must be positive (got %r)" % k_per_s)
        self.c = c
        self.k = k_per_s
        self.y1 = c * self.capacity_c
        self.y2 = (1.0 - c) * self.capacity_c

    @property
    def level_c(self):
        return self.y1 + self.y2

    def _discharge(self, current_a, dt_s):
        y1, y2 = kibam_step(self.y1, self.y2, current_a, dt_s, self.c, self.k)
        if current_a < 0:
            # charging never fills past the nominal capacity; the excess is lost
            total = y1 + y2
            if total > self.capacity_c:
                y1 -= (total - self.capacity_c) * self.c
                y2 -= (total - self.capacity_c) * (1.0 - self.c)
        self.y1, self.y2 = y1, y2

    def available_c(self):
        return self.y1 / self.c

    def _state(self):
        return (self.y1, self.y2)

    def _set_state(self, state):
        self.y1, self.y2 = state

    def _total_c(self):
        return self.y1 + self.y2

    def dead(self):
        return self.y1 <= self.cutoff_soc * self.c * self.capacity_c + 1e-12

    def time_to_empty_s(self, current_a=None):
        """Time until the available well hits the cut-off at constant current (bisection on y1(t))."""
        if current_a is None:
            if self.avg_current_a is None:
                return None
            current_a = self.avg_current_a + self.leak_a
        if current_a <= 0:
            return None
        floor = self.cutoff_soc * self.c * self.capacity_c
        if self.y1 <= floor:
            return 0.0
        hi = (self.y1 + self.y2 - floor) / current_a
        if kibam_step(self.y1, self.y2, current_a, hi, self.c, self.k)[0] > floor:
            return hi
        lo = 0.0
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            if kibam_step(self.y1, self.y2, current_a, mid, self.c, self.k)[0] > floor:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)


MODELS = {"ideal": IdealBattery, "peukert": PeukertBattery, "kibam": KiBaMBattery}


def make_battery(spec, where="battery"):
    """Build a battery from a board's ``battery`` object (validated; errors name the field)."""
    if not isinstance(spec, dict):
        raise ModelError("%s: expected an object" % where)
    model = spec.get("model", "ideal")
    cls = MODELS.get(model)
    if cls is None:
        raise ModelError("%s.model: unknown %r (known: %s)" % (where, model, ", ".join(sorted(MODELS))))
    cap = spec.get("capacity_mah")
    volt = spec.get("voltage_v")
    for key, value in (("capacity_mah", cap), ("voltage_v", volt)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) or value <= 0:
            raise ModelError("%s.%s: expected a positive finite number, got %r" % (where, key, value))
    kw = {"self_discharge_per_year": _finite_float(spec.get("self_discharge_per_year", 0.0),
                                                   where + ".self_discharge_per_year"),
          "cutoff_soc": _finite_float(spec.get("cutoff_soc", 0.0), where + ".cutoff_soc")}
    params = spec.get("params", {})
    if not isinstance(params, dict):
        raise ModelError(where + ".params: expected an object")
    allowed = {"ideal": (), "peukert": ("peukert_k", "rated_hours"), "kibam": ("c", "k_per_s")}[model]
    for key, value in params.items():
        if key == "source":
            continue
        if key not in allowed:
            raise ModelError("%s.params.%s: not a parameter of the %s model (allowed: %s)"
                             % (where, key, model, ", ".join(allowed) or "none"))
        kw[key] = _finite_float(value, "%s.params.%s" % (where, key))
    return cls(float(cap), float(volt), **kw)


def _finite(value):
    """True for a finite int or float (NaN and infinities fail; MicroPython has no math.isfinite
    on every port)."""
    try:
        value = float(value)
    except OverflowError:  # an int beyond the float range
        return False
    return value == value and value - value == 0.0


def _finite_float(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        raise ModelError("%s: expected a finite number, got %r" % (where, value))
    return float(value)
