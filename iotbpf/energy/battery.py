"""Battery models: ideal coulomb counting, Peukert, and KiBaM (two wells, with recovery), with a
cell's open-circuit voltage curve, internal resistance and brown-out under the pulse current.

Each model is driven by ``draw(current_a, dt_ns, harvest_a=0.0)``: the load's constant current
over an interval and, separately, what a harvester delivers meanwhile (both integrated in closed
form). The harvest feeds the load first; a surplus charges a rechargeable cell through its charger
(``charge_efficiency``, at most ``max_charge_a``, never past the capacity) and is spilled by a
primary cell, which never charges. ``drawn_c`` is the load's charge (never netted against the
harvest), ``harvested_c`` what the harvester delivered, ``charged_c`` what went into the cell,
``spilled_c`` the harvest wasted, ``leaked_c`` the self-discharge (a constant leakage current of
``self_discharge_per_year`` x nominal capacity per year).

The cell (``CELLS``, from datasheets) gives the open-circuit voltage over state of charge and the
internal resistance; the node's pulse current (``set_pulse``: the board's peak current, e.g. a
radio burst) browns the node out when OCV(soc) - I_pulse x R(soc) falls below the cut-off voltage,
so the usable floor is the larger of ``cutoff_soc`` and that brown-out state of charge (found once,
in closed form on the piecewise-linear curves). A coin cell under a LoRa burst browns out long
before it is empty, or at once.

Death is exact: an interval that crosses the floor ends the battery at the closed-form moment
(``dead_at_ns``, ns after the first draw), draws nothing past it, and ``drawn_c`` stops there.
Peukert's exponent applies only inside its valid current range (from the rated current to
``i_max_a``): below the rated current the cell gives its rated capacity, not more.
Equations: Peukert (1897), t = H (C / (I H))^k; KiBaM: Manwell & McGowan (1993), "Lead acid
battery storage model for hybrid energy systems", Solar Energy 50(5):399-405, eqs. for y1, y2
under constant current; summarised in Jongerden & Haverkort (2009), "Which battery model to
use?", IET Software 3(6). It must never step time in small increments.
"""

import math

from iotbpf.energy.models import ModelError

NS = 1e-9
YEAR_S = 365 * 86400.0

# Cells, from their datasheets. ocv: (state of charge, volts per cell) read from the datasheet's
# low-drain discharge curve (at that drain the I x R drop is a few mV, so the curve is the OCV);
# r: (state of charge, ohms per cell); cutoff_v: the end voltage the rated capacity is quoted to.
CELLS = {
    "cr2032": {
        "chemistry": "Li/MnO2 coin cell", "primary": True, "capacity_mah": 235.0, "nominal_v": 3.0,
        "cutoff_v": 2.0, "self_discharge_per_year": 0.01, "max_continuous_a": 0.003,
        "temp_range_c": (-30.0, 60.0),
        "ocv": [(0.0, 2.0), (0.05, 2.5), (0.1, 2.7), (0.2, 2.8), (0.5, 2.88), (0.8, 2.93),
                (0.95, 3.0), (1.0, 3.05)],
        "r": [(0.0, 40.0), (0.2, 20.0), (1.0, 15.0)],
        "source": "Energizer CR2032 product datasheet (Form No. EBC-4120), p.1: nominal 3.0 V, "
                  "235 mAh to 2.0 V at 15 kohm (0.19 mA) and 21 C, 'Typical Discharge Characteristics' "
                  "chart (OCV points read from the 15 kohm curve); typical internal resistance 10-40 ohm "
                  "(a CR2032 datasheet's 'typical IR 10 ohms, rising to 40 ohms at end of life', read out "
                  "in EEVblog #140 'Battery Capacity Tutorial', 2010, its transcript; the PDF itself was "
                  "not at hand: 15 ohm fresh rising to 40 ohm at 2.0 V is an estimate inside that range; "
                  "checked since: the "
                  "datasheet's pulse test, 2.9 V under the 0.19 mA background and 2.7 V under a "
                  "6.8 mA pulse, implies ~30 ohm for its 2 s pulses, and TI SWRA349 section 3 gives "
                  "~60 ohm at the 2.0 V end of life for 15 mA peaks: the curve here is lower, kept "
                  "for millisecond radio bursts, which SWRA349 finds cost a CR2032 little (30 mA "
                  "against 15 mA peaks: 9 % less capacity on average), and remains an estimate); "
                  "max continuous 3 mA, pulse 15 mA; ~1 %/year self-discharge at 21 C; operating "
                  "range -30 C to 60 C (datasheet 'Operating Temp', Form No. 2032NA0618, as "
                  "transcribed in public design notes; the PDF itself was not at hand); no capacity- or "
                  "resistance-versus-temperature figure was at hand as numbers (not derated)",
    },
    "l91": {
        "chemistry": "Li/FeS2 AA", "primary": True, "capacity_mah": 3500.0, "nominal_v": 1.5,
        "cutoff_v": 0.9, "self_discharge_per_year": 0.01, "max_continuous_a": 2.0,
        "temp_range_c": (-40.0, 60.0),
        "ocv": [(0.0, 0.9), (0.03, 1.2), (0.1, 1.4), (0.5, 1.45), (0.9, 1.5), (1.0, 1.8)],
        "r": [(0.0, 0.15), (1.0, 0.09)],
        "source": "Energizer L91 Ultimate Lithium product datasheet, p.1: "
                  "3500 mAh to 0.9 V at 25 mA and 21 C, OCV 1.8 V fresh, 'Constant Current Discharge' "
                  "chart (flat 1.4-1.5 V plateau, points read from the 25 mA curve), typical internal "
                  "resistance 90-150 mohm, max continuous 2.0 A; 'up to 20 years' storage -> ~1 %/year; "
                  "operating range -40 C to +60 C (Energizer Cylindrical Primary Lithium Handbook, "
                  "Form No. 12004-A, 'Introduction': 'designed to operate even in extreme "
                  "temperatures from as low as -40 C up to +60 C'); capacity and resistance versus "
                  "temperature are charts only there (not derated)",
    },
    "e91": {
        "chemistry": "Zn/MnO2 alkaline AA", "primary": True, "capacity_mah": 2500.0, "nominal_v": 1.5,
        "cutoff_v": 0.8, "self_discharge_per_year": 0.02, "max_continuous_a": 1.0,
        "peukert_k": 1.25, "i_max_a": 1.0, "rated_hours": 100.0,
        "ocv": [(0.0, 0.8), (0.1, 1.0), (0.3, 1.15), (0.6, 1.25), (0.9, 1.4), (1.0, 1.58)],
        "r": [(0.0, 0.3), (1.0, 0.15)],
        "source": "Energizer E91 product datasheet, p.1: ~2500 mAh at 25 mA to "
                  "0.8 V read from the 'Constant Current Performance' chart, sloping discharge curve "
                  "(points read from the 25 mA curve), OCV 1.58 V fresh, internal resistance "
                  "150-300 mohm ('Internal Resistance' line); Peukert k 1.25 above the rated 25 mA is an "
                  "estimate for alkaline AA (Energizer Alkaline Handbook Alk2.0, 'Capacity': capacity "
                  "falls with drain), not a datasheet figure; rated 2500 mAh / 25 mA = 100 h; "
                  "~2 %/year",
    },
    "ncr18650b": {
        "chemistry": "Li-ion NCA 18650", "primary": False, "capacity_mah": 3200.0, "nominal_v": 3.6,
        "cutoff_v": 2.5, "self_discharge_per_year": 0.36, "max_continuous_a": 6.5,
        "max_charge_a": 1.625, "charge_efficiency": 0.99,
        "ocv": [(0.0, 2.5), (0.03, 3.0), (0.1, 3.3), (0.3, 3.5), (0.5, 3.6), (0.7, 3.75),
                (0.9, 4.0), (1.0, 4.2)],
        "r": [(0.0, 0.08), (0.2, 0.05), (1.0, 0.045)],
        "source": "Panasonic NCR18650B datasheet (2012), p.1: minimum capacity 3200 mAh (typ. 3350) at "
                  "0.2 C to 2.5 V, nominal 3.6 V, charge 4.2 V CC-CV at 0.5 C = 1625 mA; 'Discharge "
                  "Characteristics (by rate of discharge)' chart, 0.2 C curve (OCV points read from "
                  "it); internal resistance not stated by the datasheet: ~45 mohm is an estimate of "
                  "the 0.2 C / 1 C curve separation on that chart; Li-ion self-discharge ~3 %/month "
                  "(Battery University BU-802b)",
    },
    "lifepo4": {
        "chemistry": "LiFePO4 26650", "primary": False, "capacity_mah": 2500.0, "nominal_v": 3.3,
        "cutoff_v": 2.0, "self_discharge_per_year": 0.03, "max_continuous_a": 50.0,
        "max_charge_a": 10.0, "charge_efficiency": 0.99,
        "ocv": [(0.0, 2.0), (0.05, 3.0), (0.1, 3.2), (0.5, 3.3), (0.9, 3.35), (1.0, 3.6)],
        "r": [(0.0, 0.012), (1.0, 0.006)],
        "source": "A123 Systems ANR26650M1-B datasheet, p.1: nominal 2.5 Ah, 3.3 V, "
                  "charge 3.6 V, discharge cut-off 2.0 V, internal impedance 6 mohm (1 kHz AC), max "
                  "continuous discharge 50 A, fast charge 10 A; flat 3.3 V plateau from the "
                  "'Discharge Characteristics' chart; self-discharge ~3 %/year (BU-802b, LiFePO4)",
    },
    "nimh": {
        "chemistry": "NiMH AA (low self-discharge)", "primary": False, "capacity_mah": 1900.0,
        "nominal_v": 1.2, "cutoff_v": 1.0, "self_discharge_per_year": 0.15, "max_continuous_a": 1.9,
        "max_charge_a": 0.19, "charge_efficiency": 0.625,
        "ocv": [(0.0, 1.0), (0.05, 1.15), (0.2, 1.22), (0.8, 1.27), (0.95, 1.33), (1.0, 1.42)],
        "r": [(0.0, 0.04), (1.0, 0.025)],
        "source": "Panasonic eneloop BK-3MCC datasheet, p.1: minimum 1900 mAh, 1.2 V, standard charge "
                  "0.1 It (190 mA) for 16 h (160 % input -> coulombic efficiency 1/1.6 = 0.625), "
                  "'Discharge characteristics' 0.2 It curve to 1.0 V (OCV points read from it), "
                  "70 % retained after 10 years with ~15 % lost in the first year; internal "
                  "resistance 25-40 mohm (1 kHz) typical of AA NiMH (Panasonic Ni-MH Technical Handbook)",
    },
}
CELLS["lipo"] = CELLS["ncr18650b"]  # a LiCoO2/NCA pouch cell: the same curve per unit capacity


def _interp(table, x):
    """Piecewise-linear interpolation on a sorted [(x, y)] table, clamped at its ends."""
    if x <= table[0][0]:
        return table[0][1]
    for i in range(1, len(table)):
        x1, y1 = table[i]
        if x <= x1:
            x0, y0 = table[i - 1]
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return table[-1][1]


def brownout_soc(cell, pulse_a, series=1, r_factor=1.0):
    """The state of charge below which OCV(soc) - pulse x R(soc) < cut-off (closed form on the
    merged breakpoints of both curves): 0.0 if the pulse never browns out, 1.0 if even a full cell
    cannot carry it. ``r_factor`` scales R (the cell's temperature, see Battery.set_temperature)."""
    xs = sorted(set([p[0] for p in cell["ocv"]] + [p[0] for p in cell["r"]]))
    pulse_r = pulse_a * r_factor

    def margin(s):
        return series * (_interp(cell["ocv"], s) - pulse_r * _interp(cell["r"], s) - cell["cutoff_v"])

    if margin(1.0) < 0:
        return 1.0
    for i in range(len(xs) - 1, 0, -1):
        hi, lo = xs[i], xs[i - 1]
        m_hi, m_lo = margin(hi), margin(lo)
        if m_lo < 0 <= m_hi:
            return lo + (hi - lo) * (0 - m_lo) / (m_hi - m_lo)
    return 0.0


def kibam_cycles(y1, y2, cycle, n, c, k):
    """``n`` repetitions of a cycle ``[(current_a, dt_s), ...]`` from the wells (y1, y2), in closed
    form: a KiBaM step is affine in the state (y -> M y + b), so the cycle's map is found from three
    runs of it and raised to the n-th power by squaring (log2 n compositions, never n steps)."""
    def run(a1, a2, loaded):
        for current, dt in cycle:
            if dt > 0:
                a1, a2 = kibam_step(a1, a2, current if loaded else 0.0, dt, c, k)
        return a1, a2

    m11, m21 = run(1.0, 0.0, False)
    m12, m22 = run(0.0, 1.0, False)
    b1, b2 = run(0.0, 0.0, True)
    # r: the accumulated map (identity), (m, b): the cycle's map squared as n is consumed
    r11, r12, r21, r22, rb1, rb2 = 1.0, 0.0, 0.0, 1.0, 0.0, 0.0
    while n > 0:
        if n & 1:
            r11, r12, r21, r22, rb1, rb2 = (m11 * r11 + m12 * r21, m11 * r12 + m12 * r22,
                                            m21 * r11 + m22 * r21, m21 * r12 + m22 * r22,
                                            m11 * rb1 + m12 * rb2 + b1, m21 * rb1 + m22 * rb2 + b2)
        n >>= 1
        if n:
            m11, m12, m21, m22, b1, b2 = (m11 * m11 + m12 * m21, m11 * m12 + m12 * m22,
                                          m21 * m11 + m22 * m21, m21 * m12 + m22 * m22,
                                          m11 * b1 + m12 * b2 + b1, m21 * b1 + m22 * b2 + b2)
    return r11 * y1 + r12 * y2 + rb1, r21 * y1 + r22 * y2 + rb2


class Battery:
    """Common part: capacity, SoC, cut-off and brown-out floor, self-discharge, harvest, exact death."""

    kind = "ideal"
    profile_source = None  # fn(mean_a, dt_ns) -> (bursts, [(current_a, ns)]) or None (see draw)
    rate_dependent = False  # True when the load's profile changes the result (Peukert, KiBaM)

    def __init__(self, capacity_mah, voltage_v, self_discharge_per_year=0.0, cutoff_soc=0.0, cell=None,
                 series=1, charge_efficiency=None, max_charge_a=None, primary=None):
        if capacity_mah <= 0:
            raise ModelError("battery capacity must be positive")
        self.capacity_c = capacity_mah * 3.6
        if not _finite(capacity_mah) or not _finite(self.capacity_c * YEAR_S):
            raise ModelError("battery capacity %r mAh is not a usable finite number" % (capacity_mah,))
        self.voltage_v = voltage_v
        self.leak_a = self_discharge_per_year * self.capacity_c / YEAR_S
        self.cutoff_soc = cutoff_soc
        self.cell = cell
        self.series = series
        self.primary = bool(cell["primary"]) if primary is None and cell is not None else bool(primary)
        if charge_efficiency is None:
            charge_efficiency = cell.get("charge_efficiency", 1.0) if cell is not None else 1.0
        self.charge_eff = charge_efficiency
        if max_charge_a is None and cell is not None:
            max_charge_a = cell.get("max_charge_a")
        self.max_charge_a = max_charge_a
        self.pulse_a = 0.0
        self.brownout_soc = 0.0
        self.floor_soc = cutoff_soc
        self.temperature_c = None
        self.r_factor = 1.0       # R at the cell's temperature / R at the datasheet's
        self.temp_floor_soc = 0.0  # the part of the capacity the cell cannot deliver that cold
        self.out_of_range = False  # outside the datasheet's operating temperature: delivers nothing
        self.drawn_c = 0.0
        self.harvested_c = 0.0
        self.charged_c = 0.0
        self.spilled_c = 0.0
        self.leaked_c = 0.0
        self.elapsed_ns = 0
        self.avg_current_a = None
        self.last_net_a = None
        self.dead_at_ns = None

    # overridden by models
    def _discharge(self, current_a, dt_s):
        self.level_c = min(self.capacity_c, self.level_c - current_a * dt_s)

    def _discharge_profile(self, current_a, cycle, bursts, dt_s):
        """The interval as ``bursts`` repetitions of ``cycle`` (net currents, seconds per cycle);
        the net charge is ``current_a`` x ``dt_s``. Coulomb counting has no rate effect."""
        self._discharge(current_a, dt_s)

    def available_c(self):
        return self.level_c

    def _state(self):
        return self.level_c

    def _set_state(self, state):
        self.level_c = state

    def _set_empty(self):
        self.level_c = self.floor_soc * self.capacity_c

    def _total_of(self, state):
        return state

    def set_pulse(self, pulse_a):
        """The node's peak current (A at the battery): the cut-off is checked under it. Raises the
        usable floor to the brown-out state of charge; a cell that cannot carry it is dead at once."""
        self.pulse_a = pulse_a
        self._update_floor()

    def set_temperature(self, temp_c):
        """The cell's temperature (C), where its datasheet gives the effect: outside the cell's
        operating range (``temp_range_c``) it delivers nothing (the node is dead at once); inside,
        ``temp_capacity`` ([(C, fraction of the rated capacity)]) raises the usable floor to the
        part it cannot deliver, and ``temp_r`` ([(C, x the rated R)]) scales the internal
        resistance in the brown-out check. A cell without these entries is not derated. A death
        is final: warming a cell that died cold does not revive the node."""
        self.temperature_c = temp_c
        cell = self.cell
        self.out_of_range = False
        self.temp_floor_soc = 0.0
        self.r_factor = 1.0
        if cell is not None:
            rng = cell.get("temp_range_c")
            if rng is not None and not rng[0] <= temp_c <= rng[1]:
                self.out_of_range = True
            if "temp_capacity" in cell:
                self.temp_floor_soc = max(0.0, min(1.0, 1.0 - _interp(cell["temp_capacity"], temp_c)))
            if "temp_r" in cell:
                self.r_factor = _interp(cell["temp_r"], temp_c)
        self._update_floor()

    def _update_floor(self):
        if self.cell is not None and self.pulse_a > 0:
            self.brownout_soc = brownout_soc(self.cell, self.pulse_a, self.series, self.r_factor)
        else:
            self.brownout_soc = 0.0
        self.floor_soc = max(self.cutoff_soc, self.brownout_soc, self.temp_floor_soc,
                             1.0 if self.out_of_range else 0.0)
        if self.dead_at_ns is None and self.dead():
            self.dead_at_ns = self.elapsed_ns

    def ocv_v(self):
        """Open-circuit voltage now (the cell's curve x cells in series; nominal without a cell)."""
        if self.cell is None:
            return self.voltage_v
        return self.series * _interp(self.cell["ocv"], self.soc())

    def terminal_v(self, current_a=None):
        """Voltage under ``current_a`` (default: the pulse current): OCV - I x R."""
        if current_a is None:
            current_a = self.pulse_a
        if self.cell is None:
            return self.voltage_v
        return self.ocv_v() - current_a * self.series * self.r_factor * _interp(self.cell["r"], self.soc())

    def draw(self, current_a, dt_ns, alpha=0.2, harvest_a=0.0, profile=None):
        """The load draws ``current_a`` (A) for ``dt_ns`` while a harvester delivers ``harvest_a``
        (A at the battery voltage, before the charger); returns True while alive. A negative
        ``current_a`` is a harvest (older callers).

        ``profile`` (or, when None, what ``profile_source(current_a, dt_ns)`` returns) is the
        load's shape in the interval: ``(bursts, [(current_a, ns), ...])``, each level's current
        at the battery and its total time, spread over ``bursts`` equal cycles (a radio burst, the
        CPU run and the transitions around it); the rest of the interval is the level that keeps
        the mean at ``current_a``. The rate-dependent models (Peukert, KiBaM) then see each
        burst's current rather than the interval's average; each cycle ends with its burst, so the
        state at the interval's end (where death is checked) is the trough after a burst."""
        if dt_ns <= 0:
            return not self.dead()
        if current_a < 0:
            harvest_a -= current_a
            current_a = 0.0
        dt_s = dt_ns * NS
        if self.dead_at_ns is not None:
            # dead (the node browned out): nothing more is drawn, harvested or charged; the
            # cell itself still relaxes at rest (KiBaM recovery), which no longer revives the node
            self._discharge(0.0, dt_s)
            self.elapsed_ns += dt_ns
            return False
        direct = harvest_a if harvest_a < current_a else current_a
        surplus = harvest_a - direct
        charge = 0.0
        if surplus > 0 and not self.primary:
            charge = surplus * self.charge_eff
            if self.max_charge_a is not None and charge > self.max_charge_a:
                charge = self.max_charge_a
        total = current_a - direct + self.leak_a - charge
        self.last_net_a = total
        before = self._state()
        if profile is None and self.profile_source is not None:
            profile = self.profile_source(current_a, dt_ns)
        cycle = _cycle(profile, current_a, total, dt_ns) if profile is not None else None
        if cycle is None:
            self._discharge(total, dt_s)
        else:
            self._discharge_profile(total, cycle, profile[0], dt_s)
        if total > 0 and self.available_c() - self.floor_soc * self.capacity_c <= total * 1e-9 + 1e-12:
            # empties in this interval (or within a nanosecond of its end): stop at that moment,
            # computed from the state at the interval's start; draw nothing past it
            self._set_state(before)
            left = self.time_to_empty_s(total)
            if left is None:
                left = dt_s
            died_ns = int(math.ceil(left * 1e9 - 1e-6))
            if died_ns > dt_ns:
                died_ns = dt_ns
            if died_ns < 0:
                died_ns = 0
            part = left if left < dt_s else dt_s
            self._set_empty()
            self.dead_at_ns = self.elapsed_ns + died_ns
            self._account(current_a, harvest_a, 0.0, 0.0, part)
            self.elapsed_ns += dt_ns
            return False
        if charge > 0:
            stored = self._total_c() - self._total_of(before) + (current_a - direct + self.leak_a) * dt_s
            if stored < charge * dt_s:
                charge = stored / dt_s if stored > 0 else 0.0  # full: the rest is spilled
        self._account(current_a, harvest_a, direct, charge, dt_s)
        self.elapsed_ns += dt_ns
        if current_a > 0:
            if self.avg_current_a is None:
                self.avg_current_a = current_a
            else:
                self.avg_current_a += alpha * (current_a - self.avg_current_a)
        return True

    def _account(self, load_a, harvest_a, direct_a, charge_a, dt_s):
        self.drawn_c += load_a * dt_s
        self.harvested_c += harvest_a * dt_s
        self.leaked_c += self.leak_a * dt_s
        self.charged_c += charge_a * dt_s
        used = direct_a + (charge_a / self.charge_eff if self.charge_eff > 0 else 0.0)
        if harvest_a > used:
            self.spilled_c += (harvest_a - used) * dt_s

    def soc(self):
        """State of charge in [0, 1] (charge left / nominal capacity)."""
        return max(0.0, min(1.0, self._total_c() / self.capacity_c))

    def _total_c(self):
        return self.level_c

    def dead(self):
        if self.dead_at_ns is not None:
            return True
        return self.available_c() <= self.floor_soc * self.capacity_c + 1e-12

    def empty_in_ns(self, net_a=None):
        """ns until the floor at ``net_a`` (default: the net current of the last interval), None
        if not draining."""
        if net_a is None:
            net_a = self.last_net_a
        if net_a is None or net_a <= 0:
            return None
        left = self.time_to_empty_s(net_a)
        if left is None:
            return None
        return int(math.ceil(left * 1e9 - 1e-6))

    def time_to_empty_s(self, current_a=None):
        """Seconds until cut-off at a constant ``current_a`` (default: the recent average drain)."""
        if current_a is None:
            current_a = self.avg_current_a
            if current_a is None:
                return None
            current_a += self.leak_a
        if current_a <= 0:
            return None
        usable = self.available_c() - self.floor_soc * self.capacity_c
        if usable <= 0:
            return 0.0
        return usable / current_a

    def describe(self):
        out = {"model": self.kind, "capacity_mah": self.capacity_c / 3.6, "soc": self.soc(),
               "drawn_mah": self.drawn_c / 3.6, "harvested_mah": self.harvested_c / 3.6,
               "charged_mah": self.charged_c / 3.6, "spilled_mah": self.spilled_c / 3.6,
               "leaked_mah": self.leaked_c / 3.6, "dead": self.dead(), "dead_at_ns": self.dead_at_ns,
               "primary": self.primary, "floor_soc": self.floor_soc}
        if self.cell is not None:
            out["cell"] = self.cell_name
            out["ocv_v"] = self.ocv_v()
            out["pulse_a"] = self.pulse_a
            out["terminal_v_at_pulse"] = self.terminal_v()
            out["brownout_soc"] = self.brownout_soc
        if self.temperature_c is not None:
            out["temperature_c"] = self.temperature_c
        return out

    cell_name = None


def _cycle(profile, mean_a, net_a, dt_ns):
    """One cycle of net currents and seconds from a load profile (see Battery.draw), or None when
    the profile is empty or does not fit in the interval (then the average is used)."""
    bursts, levels = profile
    if bursts < 1 or not levels:
        return None
    busy_ns = 0
    busy_c = 0.0
    for current, ns in levels:
        busy_ns += ns
        busy_c += current * ns
    rest_ns = dt_ns - busy_ns
    if rest_ns <= 0:
        return None
    rest_a = (mean_a * dt_ns - busy_c) / rest_ns  # keeps the interval's charge exact
    shift = net_a - mean_a  # harvest, leak and charging stay spread over the interval
    per = NS / bursts
    cycle = [(rest_a + shift, rest_ns * per)]
    for current, ns in levels:
        cycle.append((current + shift, ns * per))
    return cycle


class IdealBattery(Battery):
    """Coulomb counting: lifetime = capacity / current exactly."""

    kind = "ideal"

    def __init__(self, capacity_mah, voltage_v, **kw):
        Battery.__init__(self, capacity_mah, voltage_v, **kw)
        self.level_c = self.capacity_c


class PeukertBattery(Battery):
    """Rate-dependent capacity: discharging at I for t uses I (I / I_ref)^(k-1) t of the capacity,
    inside the law's valid range [I_ref, i_max_a]; below I_ref the rated capacity (no more).

    I_ref = C / H (the rated current for the rated discharge time H), so a constant current I
    lasts t = H (C / (I H))^k, Peukert's law.
    """

    kind = "peukert"
    rate_dependent = True

    def __init__(self, capacity_mah, voltage_v, peukert_k=1.2, rated_hours=20.0, i_max_a=None, **kw):
        Battery.__init__(self, capacity_mah, voltage_v, **kw)
        if peukert_k < 1.0:
            raise ModelError("Peukert exponent must be >= 1 (got %r)" % peukert_k)
        self.k = peukert_k
        self.rated_s = rated_hours * 3600.0
        self.i_ref = self.capacity_c / self.rated_s
        self.i_max = i_max_a
        self.level_c = self.capacity_c

    def _effective(self, current_a):
        if current_a <= self.i_ref:
            return current_a
        i = current_a if self.i_max is None or current_a < self.i_max else self.i_max
        return current_a * (i / self.i_ref) ** (self.k - 1.0)

    def _discharge(self, current_a, dt_s):
        self.level_c = min(self.capacity_c, self.level_c - self._effective(current_a) * dt_s)

    def _discharge_profile(self, current_a, cycle, bursts, dt_s):
        # Peukert per level: a burst above the rated current costs its own rate's exponent
        used = 0.0
        for current, seconds in cycle:
            used += self._effective(current) * seconds
        self.level_c = min(self.capacity_c, self.level_c - used * bursts)

    def time_to_empty_s(self, current_a=None):
        if current_a is None:
            if self.avg_current_a is None:
                return None
            current_a = self.avg_current_a + self.leak_a
        if current_a <= 0:
            return None
        usable = self.level_c - self.floor_soc * self.capacity_c
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


# KiBaM's default c and k: c = 0.166, k = 0.122 /min (= 2.03e-3 /s), the values Jongerden &
# Haverkort, "Which battery model to use?", IET Software 3(6), 2009, report for a Li-ion
# cell (and the bundled Li-ion boards, esp32_devkit and phone, use). Quoted from that paper as
# recalled: its text was not at hand (only its abstract), so they are unverified, and they were
# not fitted to any cell of the boards (no datasheet gives c or k). They matter little at IoT
# currents: a 3000 mAh cell delivers 100 % of its charge at 0.8 mA, 99.4 % at 190 mA, 96.8 % at 1 A.
KIBAM_C = 0.166
KIBAM_K_PER_S = 0.122 / 60.0


class KiBaMBattery(Battery):
    """Kinetic battery model: charge flows from the bound well to the available well at rate k.

    A fraction ``c`` of the charge is directly available; the battery is empty when the
    available well is empty, even though bound charge remains — which it recovers at rest.
    Defaults: ``KIBAM_C``, ``KIBAM_K_PER_S`` (Jongerden & Haverkort 2009, unverified; see there).
    """

    kind = "kibam"
    rate_dependent = True

    def __init__(self, capacity_mah, voltage_v, c=KIBAM_C, k_per_s=KIBAM_K_PER_S, **kw):
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

    def _discharge_profile(self, current_a, cycle, bursts, dt_s):
        if current_a < 0:
            self._discharge(current_a, dt_s)  # charging: the capacity clamp of _discharge
            return
        self.y1, self.y2 = kibam_cycles(self.y1, self.y2, cycle, bursts, self.c, self.k)

    def _set_empty(self):
        self.y1 = self.floor_soc * self.c * self.capacity_c

    def _total_of(self, state):
        return state[0] + state[1]

    def available_c(self):
        return self.y1 / self.c

    def _state(self):
        return (self.y1, self.y2)

    def _set_state(self, state):
        self.y1, self.y2 = state

    def _total_c(self):
        return self.y1 + self.y2

    def dead(self):
        if self.dead_at_ns is not None:
            return True
        return self.y1 <= self.floor_soc * self.c * self.capacity_c + 1e-12

    def time_to_empty_s(self, current_a=None):
        """Time until the available well hits the floor at constant current (bisection on y1(t))."""
        if current_a is None:
            if self.avg_current_a is None:
                return None
            current_a = self.avg_current_a + self.leak_a
        if current_a <= 0:
            return None
        floor = self.floor_soc * self.c * self.capacity_c
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
    """Build a battery from a board's ``battery`` object (validated; errors name the field).

    ``cell`` names a CELLS entry (OCV curve, internal resistance, cut-off, primary or not) and
    ``series`` the cells in series; capacity and voltage default to the cell's."""
    if not isinstance(spec, dict):
        raise ModelError("%s: expected an object" % where)
    model = spec.get("model", "ideal")
    cls = MODELS.get(model)
    if cls is None:
        raise ModelError("%s.model: unknown %r (known: %s)" % (where, model, ", ".join(sorted(MODELS))))
    cell = None
    cell_name = spec.get("cell")
    series = spec.get("series", 1)
    if isinstance(series, bool) or not isinstance(series, int) or series < 1:
        raise ModelError("%s.series: expected a positive integer, got %r" % (where, series))
    if cell_name is not None:
        cell = CELLS.get(cell_name) if isinstance(cell_name, str) else None
        if cell is None:
            raise ModelError("%s.cell: unknown %r (known: %s)" % (where, cell_name, ", ".join(sorted(CELLS))))
    cap = spec.get("capacity_mah", cell["capacity_mah"] if cell is not None else None)
    volt = spec.get("voltage_v", cell["nominal_v"] * series if cell is not None else None)
    for key, value in (("capacity_mah", cap), ("voltage_v", volt)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) or value <= 0:
            raise ModelError("%s.%s: expected a positive finite number, got %r" % (where, key, value))
    sd_default = cell["self_discharge_per_year"] if cell is not None else 0.0
    kw = {"self_discharge_per_year": _finite_float(spec.get("self_discharge_per_year", sd_default),
                                                   where + ".self_discharge_per_year"),
          "cutoff_soc": _finite_float(spec.get("cutoff_soc", 0.0), where + ".cutoff_soc"),
          "cell": cell, "series": series}
    for key in ("charge_efficiency", "max_charge_a"):
        if key in spec:
            kw[key] = _finite_float(spec[key], where + "." + key)
    if "primary" in spec:
        kw["primary"] = bool(spec["primary"])
    params = spec.get("params", {})
    if not isinstance(params, dict):
        raise ModelError(where + ".params: expected an object")
    allowed = {"ideal": (), "peukert": ("peukert_k", "rated_hours", "i_max_a"),
               "kibam": ("c", "k_per_s")}[model]
    if model == "peukert" and cell is not None:
        for key in ("peukert_k", "i_max_a", "rated_hours"):
            if key in cell and key not in params:
                kw[key] = cell[key]
    for key, value in params.items():
        if key == "source":
            continue
        if key not in allowed:
            raise ModelError("%s.params.%s: not a parameter of the %s model (allowed: %s)"
                             % (where, key, model, ", ".join(allowed) or "none"))
        kw[key] = _finite_float(value, "%s.params.%s" % (where, key))
    battery = cls(float(cap), float(volt), **kw)
    battery.cell_name = cell_name
    temp = spec.get("temperature_c")
    if temp is not None:
        battery.set_temperature(_finite_float(temp, where + ".temperature_c"))
    pulse = spec.get("pulse_a")
    if pulse is not None:
        battery.set_pulse(_finite_float(pulse, where + ".pulse_a"))
    return battery


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
