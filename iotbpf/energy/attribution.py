"""Per-app energy attribution by Android BatteryStats' rules, on top of the Energest ledger: integer ns
per (app, component, state), so the per-app totals plus "system" equal the ledger exactly
(docs/energy.md, "Accounting and attribution").
"""

SYSTEM = "system"


class Attribution:
    """Integer ns per (app, component, state), checked against a Ledger."""

    def __init__(self, ledger):
        self.ledger = ledger
        self.ns = {}

    def charge(self, app, comp, state, ns):
        """Give ``ns`` of (comp, state) to ``app``."""
        key = (app, comp, state)
        self.ns[key] = self.ns.get(key, 0) + ns

    def split(self, apps, comp, state, ns):
        """Split ``ns`` of (comp, state) evenly across ``apps`` (one entry per packet); the
        remainder of the integer division goes to the first entries, so nothing is lost."""
        n = len(apps)
        if n == 0 or ns == 0:
            return
        share, rest = divmod(ns, n)
        for i, app in enumerate(apps):
            self.charge(app, comp, state, share + (1 if i < rest else 0))

    def split_weighted(self, weights, comp, state, ns):
        """Split ``ns`` of (comp, state) between apps in proportion to their weights (a list of
        (app, weight), e.g. bytes moved); integer shares, the remainder to the heaviest app."""
        total = 0
        for _app, w in weights:
            total += w
        if total <= 0 or ns == 0:
            return
        given = 0
        heaviest = weights[0][0]
        top = -1
        for app, w in weights:
            share = ns * w // total
            if share:
                self.charge(app, comp, state, share)
            given += share
            if w > top:
                top = w
                heaviest = app
        if ns - given:
            self.charge(heaviest, comp, state, ns - given)

    def _system_ns(self):
        """Ledger ns not attributed to any app, per (comp, state)."""
        left = dict(self.ledger.ns)
        for (app, comp, state), ns in self.ns.items():
            key = (comp, state)
            left[key] = left.get(key, 0) - ns
            if left[key] < 0:
                raise ValueError("attribution exceeds the ledger for %s/%s (app %r)" % (comp, state, app))
        return left

    def per_app_j(self):
        """{app: energy J} with "system" holding the remainder; sums to the ledger's energy."""
        out = {}
        models = self.ledger.models
        for (app, comp, state), ns in self.ns.items():
            m = models[comp]
            out[app] = out.get(app, 0.0) + m.energy_j(state, ns)
        system = 0.0
        for (comp, state), ns in self._system_ns().items():
            if ns:
                m = models[comp]
                system += m.energy_j(state, ns)
        out[SYSTEM] = out.get(SYSTEM, 0.0) + system
        return out

    def per_app_detail(self):
        """{app: {(comp, state): ns}} including "system"."""
        out = {}
        for (app, comp, state), ns in self.ns.items():
            out.setdefault(app, {})[(comp, state)] = out.get(app, {}).get((comp, state), 0) + ns
        sys_detail = out.setdefault(SYSTEM, {})
        for key, ns in self._system_ns().items():
            if ns:
                sys_detail[key] = sys_detail.get(key, 0) + ns
        return out
