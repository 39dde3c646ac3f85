"""The scheduler's CPU and sensor bookkeeping: bursts and reads counted on the hot path, charged to
the ledger in bulk, the DVFS governor. Part of the Scheduler class (kernel/scheduler_policy.py);
it must never look at wall-clock time.
"""

from iotbpf.kernel.scheduler_base import NS_PER_S


def _counter(cells, key):
    """The counter cell ``[count, count already charged]`` of ``key`` in ``cells``, made at its
    first use (so the cells keep the order of first use, which the ledger's sums follow)."""
    cell = cells.get(key)
    if cell is None:
        cell = cells[key] = [0, 0]
    return cell


class CpuAccounting:
    """CPU bursts, sensor reads and wakelocks of a Scheduler (a mixin: it uses the Scheduler's
    ledger, attribution, board and parameters)."""

    def _setup_cpu(self):
        b = self.board
        self.cpu = b.cpu["component"]
        model = b.models[self.cpu]
        self.cpu_sleep = b.cpu["sleep_state"]
        self.cpu_idle = b.cpu.get("idle_state", self.cpu_sleep)
        self.cpu_run = b.cpu["run_state"]
        freqs = model.frequencies()
        if freqs:
            self.cpu_freqs = freqs
        else:
            self.cpu_freqs = [(int(b.clock_hz), self.cpu_run)]
        self.cpu_fmax = self.cpu_freqs[-1][0]
        wake = model.transition(self.cpu_sleep, self.cpu_run)
        self.cpu_wake_state = self.cpu_run if wake is None else None
        v = model.voltage_v
        sleep_i = model.current_a(self.cpu_sleep)
        # energy above sleep per ns of work at f_max, for each frequency: (I_f - I_sleep) * fmax/f
        self._cpu_cost = [((model.current_a(st) - sleep_i) * v * self.cpu_fmax / hz, hz, st)
                          for hz, st in self.cpu_freqs]
        best = min(self._cpu_cost)
        self._cpu_min_energy = (best[1], best[2])
        self._cpu_fixed = self._cpu_min_energy if self.cpu_policy == "min_energy" else self.cpu_freqs[-1]
        self._dvfs = self.cpu_policy == "dvfs" and len(self.cpu_freqs) > 1

    @property
    def trace_cpu(self):
        """(busy_ns, app) -> how many bursts of busy_ns ran for app (the trace the oracle replays)."""
        return {key: cell[0] for key, cell in self._cpu_cells.items() if cell[0]}

    @property
    def trace_sensor(self):
        """(sensor, app) -> how many reads of the sensor app made."""
        return {key: cell[0] for key, cell in self._sensor_cells.items() if cell[0]}

    def cpu_busy(self, now_ns, busy_ns, app):
        """``busy_ns`` of work (timed at the CPU's top frequency) ran for ``app`` at ``now_ns``.

        Hot path: bursts are only counted here (one counter) and charged to the ledger in bulk
        (``_apply_pending``) before anything reads it, so the totals are the same."""
        if busy_ns <= 0:
            return
        _counter(self._cpu_cells, (busy_ns, app))[0] += 1
        if self._dvfs:
            key = (busy_ns, app, self._dvfs_pick(now_ns, busy_ns))
            pending = self._cpu_pending
            pending[key] = pending.get(key, 0) + 1

    def cpu_counter(self, busy_ns, app):
        """The counter ``[count]`` that ``cpu_busy(now, busy_ns, app)`` increments, for a caller that
        runs the same burst again and again (``cell[0] += 1`` instead of a call per run), or None
        when each burst's time matters (the DVFS governor) or it charges nothing."""
        if self._dvfs or busy_ns <= 0:
            return None
        return _counter(self._cpu_cells, (busy_ns, app))

    def sensor_counter(self, sensor, app):
        """The counter ``[count]`` that ``sensor_read(now, sensor, app)`` increments (see
        cpu_counter); a read's time never matters."""
        return _counter(self._sensor_cells, (sensor, app))

    def _pending_cpu(self):
        """(busy_ns, app, (hz, state), count) of the CPU bursts not yet in the ledger (read only)."""
        if self._dvfs:
            return [(b, a, choice, n) for (b, a, choice), n in self._cpu_pending.items()]
        return [(key[0], key[1], self._cpu_fixed, cell[0] - cell[1])
                for key, cell in self._cpu_cells.items() if cell[0] > cell[1]]

    def _pending_sensor(self):
        """(component, app, count) of the sensor reads not yet in the ledger (read only)."""
        out = []
        for key, cell in self._sensor_cells.items():
            if cell[0] > cell[1]:
                comp = self._sensor_component(key[0])
                if comp:
                    out.append((comp, key[1], cell[0] - cell[1]))
        return out

    def _run_ns(self, busy_ns, hz):
        """CPU time of a burst timed at the top frequency when it runs at ``hz`` (rounded up)."""
        fmax = self.cpu_fmax
        return busy_ns if hz == fmax else (busy_ns * fmax + hz - 1) // hz

    def _take_pending_cpu(self):
        """{app: [ns, bursts]} of the CPU bursts not yet in the ledger at the fixed frequency,
        apps in the order of their first burst, and marks them charged (integer sums: one
        charge per app equals one per burst)."""
        hz = self._cpu_fixed[0]
        out = {}
        for key, cell in self._cpu_cells.items():
            n = cell[0] - cell[1]
            if n > 0:
                cell[1] = cell[0]
                ns = self._run_ns(key[0], hz)
                acc = out.get(key[1])
                if acc is None:
                    out[key[1]] = [ns * n, n]
                else:
                    acc[0] += ns * n
                    acc[1] += n
        return out

    def _sensor_component(self, sensor):
        comp = self._sensor_comp.get(sensor)
        if comp is None:
            comp = self.board.sensor_component(sensor)
            model = self.board.models[comp] if comp is not None else None
            if model is None or "measure" not in model.states or not model.param("measure_s", 0):
                comp = ""
            else:
                self._measure_ns[comp] = int(model.param("measure_s", 0) * NS_PER_S)
            self._sensor_comp[sensor] = comp
        return comp

    def _apply_pending(self):
        """Charge the counted CPU bursts and sensor reads to the ledger and the apps."""
        led = self.ledger
        attr = self.attr
        wake_key = self.cpu_sleep + ">" + self.cpu_run
        if self._dvfs:
            pending = self._cpu_pending
            self._cpu_pending = {}
            for (busy_ns, app, (hz, state)), count in pending.items():
                self._charge_cpu(app, state, self._run_ns(busy_ns, hz) * count, count, wake_key)
            for cell in self._cpu_cells.values():
                cell[1] = cell[0]
        else:
            state = self._cpu_fixed[1]
            for app, (ns, count) in self._take_pending_cpu().items():
                self._charge_cpu(app, state, ns, count, wake_key)
        for comp, app, count in self._pending_sensor():
            ns = self._measure_ns[comp] * count
            led.add(comp, "measure", ns)
            attr.charge(app, comp, "measure", ns)
        for cell in self._sensor_cells.values():
            cell[1] = cell[0]
        if self._chk_int or self._chk_count > self._chk_done:
            self._charge_checks(self.now_ns)

    def _charge_cpu(self, app, state, ns, bursts, wake_key):
        """``ns`` of CPU time in ``state`` and ``bursts`` wake-ups from sleep, for ``app``."""
        led = self.ledger
        cpu = self.cpu
        led.add(cpu, state, ns)
        self.attr.charge(app, cpu, state, ns)
        tns = led.add_transition(cpu, self.cpu_sleep, self.cpu_run, bursts)
        if tns:
            self.attr.charge(app, cpu, wake_key, tns)

    def _dvfs_pick(self, now_ns, busy_ns):
        """schedutil: next_freq = 1.25 x f_max x util, util an exponential average of busy time."""
        tau = self.params["util_tau_ns"]
        dt = now_ns - self._util_t
        if dt > 0:
            decay = 0.0 if dt >= 8 * tau else 2.0 ** (-dt / tau)
            self._util *= decay
            self._util_t = now_ns
        self._util += busy_ns / tau
        util = min(1.0, self._util)
        target = 1.25 * self.cpu_fmax * util
        for hz, state in self.cpu_freqs:
            if hz >= target:
                return hz, state
        return self.cpu_freqs[-1]

    def sensor_read(self, now_ns, sensor, app):
        self.sensor_counter(sensor, app)[0] += 1

    def hold_wakelock(self, now_ns, duration_ns, app):
        """The CPU stays awake (idle state) for ``duration_ns`` because ``app`` holds a wakelock."""
        if duration_ns <= 0:
            return
        if self.record:
            key = (duration_ns, app)
            self.trace_wakelock[key] = self.trace_wakelock.get(key, 0) + 1
        self.ledger.add(self.cpu, self.cpu_idle, duration_ns)
        self.attr.charge(app, self.cpu, self.cpu_idle, duration_ns)
