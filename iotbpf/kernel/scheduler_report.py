"""The scheduler's readers: energy, average current, lifetime, the summary and live samples (all
read-only: the ledger is read through ``Ledger.peek``), and the battery's integration. Part of the
Scheduler class (kernel/scheduler_policy.py); text formatting is the report layer's.
"""

from iotbpf.energy.attribution import SYSTEM
from iotbpf.kernel.scheduler_base import NS_PER_DAY


class Readers:
    """Reading a Scheduler's energy (a mixin: it uses the Scheduler's ledger, battery and counters)."""

    offline = None      # the oracle's replay for a live "oracle" policy's summary (make_scheduler sets it)

    def _update_battery(self, now_ns):
        dt = now_ns - self._batt_ns
        if dt <= 0:
            return
        self._apply_pending()
        self.ledger.flush(now_ns)
        energy = self.ledger.energy_delta_since(self._batt_mark)
        self._batt_mark = self.ledger.snapshot()
        v = self.battery.voltage_v
        current = energy / v / (dt * 1e-9)
        harvest = 0.0  # kept apart from the load: the battery reports both (issue 21)
        if self.harvester is not None:
            harvest = self.harvester.energy_j(self._batt_ns, now_ns) / v / (dt * 1e-9)
        self.battery.draw(current, dt, harvest_a=harvest)
        self._batt_ns = now_ns

    def _peek_ns(self, now_ns=None):
        """{(comp, state): ns} as of ``now_ns`` with the counted CPU bursts and sensor reads
        included, changing nothing."""
        led = self.ledger
        ns = led.peek(self.now_ns if now_ns is None else now_ns)
        models = led.models
        for busy_ns, _app, (hz, state), count in self._pending_cpu():
            key = (self.cpu, state)
            ns[key] = ns.get(key, 0) + self._run_ns(busy_ns, hz) * count
            tr = models[self.cpu].transition(self.cpu_sleep, self.cpu_run)
            if tr is not None and tr.time_ns:
                key = (self.cpu, tr.key)
                ns[key] = ns.get(key, 0) + tr.time_ns * count
        for comp, _app, count in self._pending_sensor():
            key = (comp, "measure")
            ns[key] = ns.get(key, 0) + self._measure_ns[comp] * count
        n = self._checks_due(self.now_ns if now_ns is None else now_ns) if self._chk_int or self._chk_count else 0
        if n > 0:
            rm = self.rm
            tr = models[self.radio].transition(rm.sleep, rm.listen)
            if tr is not None and tr.time_ns:
                key = (self.radio, tr.key)
                ns[key] = ns.get(key, 0) + tr.time_ns * n
            key = (self.radio, rm.listen)
            ns[key] = ns.get(key, 0) + rm.cca_ns * n
        return ns

    def energy_used_j(self):
        """Energy used since boot up to the latest time the runtime reported (read-only)."""
        return self.ledger.energy_of(self._peek_ns())

    def soc(self):
        self._update_battery(self.now_ns)
        return self.battery.soc()

    def battery_dead(self):
        return self.battery.dead()

    def elapsed_ns(self):
        return self.now_ns - (self.boot_ns or 0)

    def average_current_a(self):
        """Average current drawn from the battery since boot (energy / battery voltage / time)."""
        dt = self.elapsed_ns()
        if dt <= 0:
            return 0.0
        return self.energy_used_j() / self.battery.voltage_v / (dt * 1e-9)

    def lifetime_days(self):
        """Predicted lifetime from boot: elapsed + time to empty at the average drain since boot
        (minus harvest); None when the drain is not positive (energy-neutral or better). Read-only."""
        dt = self.elapsed_ns()
        if self.battery.dead() and self.battery.dead_at_ns is not None:
            return self.battery.dead_at_ns / NS_PER_DAY
        current = self.average_current_a()
        if self.harvester is not None and dt > 0:
            current -= self.harvester.energy_j(self.boot_ns or 0, self.now_ns) / self.battery.voltage_v \
                / (dt * 1e-9)
        if current <= 0:
            return None
        left = self.battery.time_to_empty_s(current + self.battery.leak_a)
        return (dt * 1e-9 + (left or 0.0)) / 86400.0

    def summary(self):
        """Per component and state, per app, battery and predicted lifetime (plain dict). Read-only:
        packets still queued stay queued (``tx["queued"]``); call flush() to end a run first."""
        comps = {}
        models = self.ledger.models
        for (comp, state), ns in sorted(self._peek_ns().items()):
            m = models[comp]
            joules = m.energy_j(state, ns)
            entry = comps.setdefault(comp, {"energy_j": 0.0, "states": {}})
            entry["energy_j"] += joules
            entry["states"][state] = {"ns": ns, "energy_j": joules}
        apps = {}
        for app, joules in sorted(self.sample(self.now_ns)["apps"].items(), key=lambda kv: str(kv[0])):
            apps[str(app)] = joules
        batt = self.battery.describe()
        batt["time_to_empty_s"] = self.battery.time_to_empty_s()
        tx = dict(self.stats)
        tx["queued"] = len(self.queue)
        extra = {}
        if self.policy == "oracle" and self.record and self.offline is not None:
            extra["oracle"] = self.offline(self).oracle_info
        out = {
            "policy": self.policy, "cpu_policy": self.cpu_policy, "board": self.board.name,
            "duration_ns": self.elapsed_ns(), "energy_j": self.energy_used_j(),
            "average_current_a": self.average_current_a(), "components": comps, "apps": apps,
            "battery": batt, "lifetime_days": self.lifetime_days(),
            "tx": tx, "ns_per_insn": self.board.ns_per_insn,
        }
        out.update(extra)
        return out

    def sample(self, now_ns):
        """A read-only snapshot at ``now_ns`` for live plots and reports; changes nothing, so a run
        gives the same results whether or not it is sampled. Keys: t_ns, components {comp:
        {energy_j, states_ns, states_j}}, apps {app: J}, soc_percent, time_to_empty_s."""
        led = self.ledger
        ns = led.peek(now_ns)
        app_j = {}
        models = led.models

        def add(comp, state, amount, app=None):
            ns[(comp, state)] = ns.get((comp, state), 0) + amount
            if app is not None:
                m = models[comp]
                app_j[app] = app_j.get(app, 0.0) + m.energy_j(state, amount)

        for busy_ns, app, (hz, state), count in self._pending_cpu():
            run = self._run_ns(busy_ns, hz)
            add(self.cpu, state, run * count, app)
            tr = models[self.cpu].transition(self.cpu_sleep, self.cpu_run)
            if tr is not None and tr.time_ns:
                add(self.cpu, tr.key, tr.time_ns * count, app)
        for comp, app, count in self._pending_sensor():
            add(comp, "measure", self._measure_ns[comp] * count, app)
        n = self._checks_due(now_ns) if self._chk_int or self._chk_count else 0
        if n > 0:
            rm = self.rm
            tr = models[self.radio].transition(rm.sleep, rm.listen)
            if tr is not None and tr.time_ns:
                add(self.radio, tr.key, tr.time_ns * n)
            add(self.radio, rm.listen, rm.cca_ns * n)
        comps = {}
        total = 0.0
        for (comp, state), amount in ns.items():
            m = models[comp]
            joules = m.energy_j(state, amount)
            total += joules
            entry = comps.setdefault(comp, {"energy_j": 0.0, "states_ns": {}, "states_j": {}})
            entry["energy_j"] += joules
            entry["states_ns"][state] = amount
            entry["states_j"][state] = joules
        for app, joules in self.attr.per_app_j().items():
            if app != SYSTEM:
                app_j[app] = app_j.get(app, 0.0) + joules
        app_j[SYSTEM] = total - sum(v for k, v in app_j.items() if k != SYSTEM)
        return {"t_ns": now_ns, "components": comps, "apps": app_j,
                "soc_percent": 100.0 * self.battery.soc(), "time_to_empty_s": self.battery.time_to_empty_s()}
