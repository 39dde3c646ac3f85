"""Energest-style energy ledger: integer nanoseconds per (component, state), charge and energy derived
only when asked. Background time is settled in closed form at ``flush``, so an idle stretch costs
O(1) and nothing iterates over time steps (docs/energy.md, "Accounting and attribution").
"""

NS = 1e-9


class Ledger:
    """Integer ns per (component, state) for a set of ComponentModels keyed by component name."""

    def __init__(self, models, start_ns=0):
        self.models = models
        self.ns = {}
        self.transitions = {}
        self.background = {}
        self._debt = {}
        self._since = {}
        self.start_ns = start_ns
        self.now_ns = start_ns
        self._factor = {}  # ledger key -> (current A, voltage V), see _factors
        for comp, model in models.items():
            self.background[comp] = model.default_state
            self._debt[comp] = 0
            self._since[comp] = start_ns

    def add_component(self, comp, model, now_ns):
        """Account one more component from ``now_ns`` on (a phone's camera, say, that the board
        does not list); its default state is its background."""
        if comp in self.models:
            raise ValueError("ledger already has a component %r" % comp)
        self.models = dict(self.models)  # the board's own dict stays as loaded
        self.models[comp] = model
        self.background[comp] = model.default_state
        self._debt[comp] = 0
        self._since[comp] = now_ns

    # ---------------------------------------------------------------- recording

    def add(self, comp, state, ns):
        """Foreground: ``comp`` spent ``ns`` in ``state`` (taken out of its background time)."""
        key = (comp, state)
        self.ns[key] = self.ns.get(key, 0) + ns
        self._debt[comp] += ns

    def add_transition(self, comp, src, dst, count=1):
        """``count`` state changes src->dst; returns the ns charged (0 if the datasheet gives none)."""
        tr = self.models[comp].transitions.get(src + ">" + dst)
        if tr is None or tr.time_ns == 0:
            return 0
        ns = tr.time_ns * count
        key = (comp, tr.key)
        self.ns[key] = self.ns.get(key, 0) + ns
        self.transitions[key] = self.transitions.get(key, 0) + count
        self._debt[comp] += ns
        return ns

    def set_background(self, comp, state, now_ns, transition=True):
        """Switch ``comp``'s background state at ``now_ns`` (settling the time before it)."""
        old = self.background[comp]
        if old == state:
            return 0
        self._settle(comp, now_ns)
        self.background[comp] = state
        if transition:
            return self.add_transition(comp, old, state)
        return 0

    def _settle(self, comp, now_ns):
        elapsed = now_ns - self._since[comp]
        if elapsed < 0:
            raise ValueError("ledger time went back for %s: %d < %d" % (comp, now_ns, self._since[comp]))
        debt = self._debt[comp]
        if debt >= elapsed:
            self._debt[comp] = debt - elapsed
            elapsed = 0
        else:
            self._debt[comp] = 0
            elapsed -= debt
        if elapsed:
            key = (comp, self.background[comp])
            self.ns[key] = self.ns.get(key, 0) + elapsed
        self._since[comp] = now_ns

    def flush(self, now_ns):
        """Settle every component's background time up to ``now_ns``."""
        for comp in self.background:
            self._settle(comp, now_ns)
        if now_ns > self.now_ns:
            self.now_ns = now_ns

    def peek(self, now_ns):
        """{(component, state): ns} as ``flush(now_ns)`` would leave it, changing nothing (for
        readers: reports, live plots). A component whose foreground time runs past ``now_ns``
        gets no background time."""
        out = dict(self.ns)
        for comp, state in self.background.items():
            unsettled = now_ns - self._since[comp] - self._debt[comp]
            if unsettled > 0:
                key = (comp, state)
                out[key] = out.get(key, 0) + unsettled
        return out

    def energy_of(self, ns_by_key):
        """Energy (J) of a {(component, state): ns} dict such as ``peek`` returns."""
        total = 0.0
        factors = self._factor
        for key, ns in ns_by_key.items():
            f = factors.get(key) or self._factors(key)
            total += ns * f[0] * f[1]
        return total * NS

    # ---------------------------------------------------------------- derived values

    def charge_c(self, comp=None, state=None):
        """Charge (C) at each component's voltage, optionally for one component and/or state."""
        total = 0.0
        for (c, s), ns in self.ns.items():
            if (comp is None or c == comp) and (state is None or s == state):
                total += ns * self.models[c].current_a(s)
        return total * NS

    def _factors(self, key):
        """(current A, voltage V) of a ledger key (models do not change; cached per key)."""
        f = self._factor.get(key)
        if f is None:
            model = self.models[key[0]]
            f = self._factor[key] = (model.current_a(key[1]), model.voltage_v)
        return f

    def energy_j(self, comp=None, state=None):
        """Energy (J): ns x current x the component's voltage, summed."""
        total = 0.0
        factors = self._factor
        for key, ns in self.ns.items():
            if (comp is None or key[0] == comp) and (state is None or key[1] == state):
                f = factors.get(key) or self._factors(key)
                total += ns * f[0] * f[1]
        return total * NS

    def by_component(self):
        """{component: energy J}."""
        out = {}
        for (c, s), ns in self.ns.items():
            out[c] = out.get(c, 0.0) + self.models[c].energy_j(s, ns)
        return out

    def by_state(self):
        """{(component, state): (ns, energy J)} including transition keys ``a>b``."""
        out = {}
        for (c, s), ns in self.ns.items():
            out[(c, s)] = (ns, self.models[c].energy_j(s, ns))
        return out

    def time_ns(self, comp):
        """Total ns accounted for ``comp`` (equals elapsed time plus any overlap not yet settled)."""
        total = 0
        for (c, _s), ns in self.ns.items():
            if c == comp:
                total += ns
        return total

    def pending_ns(self, comp):
        """Foreground ns recorded beyond the settled time (work that overran the last flush)."""
        return self._debt[comp]

    def energy_delta_since(self, mark):
        """Energy (J) accounted since ``mark`` (a copy of ``self.ns`` from ``snapshot()``)."""
        total = 0.0
        factors = self._factor
        for key, ns in self.ns.items():
            d = ns - mark.get(key, 0)
            if d:
                f = factors.get(key) or self._factors(key)
                total += d * f[0] * f[1]
        return total * NS

    def snapshot(self):
        return dict(self.ns)


class LedgerProfile:
    """The load's current levels between two battery updates, read from a ledger, for the
    battery's rate-dependent models (``Battery.profile_source``): called with the interval's mean
    current (A at the battery) and length, it returns ``(bursts, [(current_a, ns), ...])``, one
    level per ledger key outside its component's background state (a radio's TX, a CPU run state,
    a transition) at the node's background current plus that key's step above its component's
    background, converted to ``battery_v`` at constant power as the scheduler converts the total;
    the number of bursts is the most frequent transition of the interval (at least 1). Reading the
    ledger costs one pass over its keys per battery update (hourly), nothing per event."""

    def __init__(self, ledger, battery_v):
        self.ledger = ledger
        self.battery_v = battery_v
        self.mark_ns = dict(ledger.ns)
        self.mark_tr = dict(ledger.transitions)
        self._step = {}  # (ledger key, background state) -> A at the battery above the background

    def _scaled_a(self, comp, state):
        return self.ledger.models[comp].power_w(state) / self.battery_v

    def __call__(self, mean_a, dt_ns):
        ledger = self.ledger
        background = ledger.background
        base = 0.0
        for comp, state in background.items():
            base += self._scaled_a(comp, state)
        mark = self.mark_ns
        steps = self._step
        levels = []
        for key, ns in ledger.ns.items():
            d = ns - mark.get(key, 0)
            if d > 0:
                bg = background.get(key[0])
                if key[1] == bg:
                    continue
                sk = (key, bg)
                step = steps.get(sk)
                if step is None:
                    step = steps[sk] = self._scaled_a(key[0], key[1]) - self._scaled_a(key[0], bg)
                levels.append((base + step, d))
        bursts = 1
        mark_tr = self.mark_tr
        for key, count in ledger.transitions.items():
            d = count - mark_tr.get(key, 0)
            if d > bursts:
                bursts = d
        self.mark_ns = dict(ledger.ns)
        self.mark_tr = dict(ledger.transitions)
        return bursts, levels
