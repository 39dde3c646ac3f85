"""Energy-aware radio/CPU scheduler policies and the node's energy bookkeeping.

The runtime reports what programs did (CPU bursts, sensor reads, packets with deadlines,
listen requests, packets arriving over the air); a policy decides when the radio wakes, listens
and transmits and at which frequency the CPU runs. The physics (airtime, ramps, tails, what a
burst or a listen window costs) live in energy/radio.py, the offline optimum in kernel/oracle.py;
every choice is charged to the Energest ledger, attributed per app and drained from the battery.
Policies read their parameters from the ``iot_policy`` well-known map (kernel/maps.py) whenever
it changes. Readers (summary, sample) never change the scheduler's state. The documented model
is in docs/energy.md. It must never look at wall-clock time or draw random numbers.
"""

from iotbpf.energy.accounting import Ledger
from iotbpf.energy.attribution import SYSTEM, Attribution
from iotbpf.energy.board import load_board
from iotbpf.energy.radio import RadioModel, RadioTimeline, lora_time_on_air_ns  # noqa: F401 (re-export)
from iotbpf.kernel import maps as wkmaps

NS_PER_S = 1000000000
NS_PER_DAY = 86400 * NS_PER_S
POLICIES = ("always_on", "duty_cycle", "batching", "dvfs", "race", "oracle")
CPU_POLICIES = ("race", "dvfs", "min_energy")
PARAM_NAMES = tuple(row[0] for row in wkmaps.POLICY_PARAMS)
_PARAM_INDEX = {}
for _row in wkmaps.POLICY_PARAMS:
    _PARAM_INDEX[_row[0]] = _row[1]
    _PARAM_INDEX[_row[0][len("IOT_POLICY_"):]] = _row[1]


def _by_deadline(entry):
    return entry[1]


def _counter(cells, key):
    """The counter cell ``[count, count already charged]`` of ``key`` in ``cells``, made at its
    first use (so the cells keep the order of first use, which the ledger's sums follow)."""
    cell = cells.get(key)
    if cell is None:
        cell = cells[key] = [0, 0]
    return cell


def _param_index(name):
    """Index in iot_policy of ``name`` (IOT_POLICY_X, X, or x)."""
    index = _PARAM_INDEX.get(name)
    if index is None:
        index = _PARAM_INDEX.get(name.upper())
    if index is None:
        return wkmaps.policy_index(name)
    return index

_HOLD_INDEX = _PARAM_INDEX["IOT_POLICY_MAX_BATCH_DELAY_NS"]

DEFAULTS = {
    "duty_period_ns": 60 * NS_PER_S,       # duty_cycle: wake period when IOT_POLICY_LISTEN_INTERVAL is 0
    "duty_window_ns": 10 * 1000000,        # duty_cycle: listen window per wake when ..._WINDOW is 0
    "battery_step_ns": 3600 * NS_PER_S,    # how often the battery model integrates the drain
    "guard_ns": 1000000,                   # batching: margin before a deadline
    "util_tau_ns": 10 * NS_PER_S,          # dvfs: utilisation averaging window
}


class Scheduler:
    """One node's energy side: policy state, ledger, attribution, battery, harvester."""

    def __init__(self, policy, board, params=None):
        if policy not in POLICIES and policy != "planned":   # "planned": the oracle's replay
            raise ValueError("unknown policy %r (known: %s)" % (policy, ", ".join(POLICIES)))
        self.policy = policy
        # "oracle" runs live like batching; its summary adds the offline optimum for the trace
        self._batching = policy in ("batching", "dvfs", "race", "oracle")
        self.board = board = load_board(board)
        p = dict(DEFAULTS)
        if params:
            p.update(params)
        self.params = p
        self.cpu_policy = p.get("cpu_policy") or ("dvfs" if policy == "dvfs" else
                                                  "min_energy" if policy in ("oracle", "planned") else "race")
        if self.cpu_policy not in CPU_POLICIES:
            raise ValueError("unknown cpu policy %r (known: %s)" % (self.cpu_policy, ", ".join(CPU_POLICIES)))
        self.ledger = Ledger(board.models)
        self.attr = Attribution(self.ledger)
        self.battery = board.make_battery()
        self.harvester = board.make_harvester()
        self.policy_values = wkmaps.policy_defaults()
        self._param_reader = None
        self._param_seen = None    # the reader's last list, already applied (see _refresh_params)
        self.record = bool(p.get("record", True))
        self._setup_cpu()
        self._setup_radio()
        self.queue = []            # [arrival, deadline, nbytes, app, airtime_ns]
        self.done = []             # completions not yet handed to the runtime
        self.trace_tx = []         # (arrival, deadline, nbytes, app)
        self.trace_listen = []     # (start, duration, app)
        self._cpu_cells = {}       # (busy_ns, app) -> [count, charged] (trace_cpu); callers may bump a count
        self._sensor_cells = {}    # (sensor, app) -> [count, charged] (trace_sensor)
        self.trace_wakelock = {}   # (duration, app) -> count
        self.stats = {"bursts": 0, "packets": 0, "bytes": 0, "missed": 0, "listen_ns": 0,
                      "rx_packets": 0, "rx_missed": 0}
        self.boot_ns = None
        self.now_ns = 0
        self._next_listen = None   # next scheduled receive window (IOT_POLICY_LISTEN_INTERVAL_NS)
        self._last_listen = None   # start of the last scheduled window (the next is interval after it)
        self._next_duty = None
        self._last_duty = None
        self.trace_rx = []         # (arrival, airtime_ns, nbytes, reach_ns) of packets sent to this node
        self._chk_int = 0          # wake-up sampling: channel-check period in force (0: off)
        self._chk_next = None      # next check not yet counted
        self._chk_last = None      # last check counted
        self._chk_count = 0        # checks counted (up to _chk_next), ...
        self._chk_done = 0         # ... of which charged or spent on a reception
        self._rx_pending = []      # [start, end, nbytes, at_check] receptions due (wake-up sampling)
        self._rx_busy = -1         # end of the last reception handed to _rx_pending
        self._rx_done_end = -1     # end of the last reception charged
        self._batt_ns = 0
        self._batt_mark = {}
        self._util = 0.0
        self._util_t = 0
        self._cpu_pending = {}     # dvfs: (busy_ns, app, (hz, state)) -> count not yet charged
        self._sensor_comp = {}
        self._measure_ns = {}
        self._due = False          # cached _batch_due() (False: not computed)

    # ---------------------------------------------------------------- setup

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

    def _setup_radio(self):
        b = self.board
        self.radio = None
        self.rm = None
        self.tl = None
        if b.radio is None:
            return
        rm = self.rm = RadioModel(b)
        self.radio = rm.component
        self.r_sleep = rm.sleep
        self.r_listen = rm.listen
        self.r_tx = rm.tx
        self.max_payload = rm.max_payload
        self.ack_ns = rm.ack_ns
        self.tail_ns = rm.tail_ns
        self.ramp_out_ns = rm.ramp_out_ns
        self._new_timeline()

    def _new_timeline(self):
        if self.rm is not None:
            self.tl = RadioTimeline(self.rm, self.ledger, self.attr, background_rx=self.policy == "always_on")

    # ---------------------------------------------------------------- parameters (iot_policy map)

    def set_param_reader(self, fn):
        """``fn() -> list or tuple of u64`` (the iot_policy array); re-read on every wakeup and enqueue."""
        self._param_reader = fn
        self._refresh_params()

    def update_params(self, values):
        """Set policy values: a list indexed like iot_policy, or {IOT_POLICY_NAME or short name: int}."""
        self._param_seen = None
        if isinstance(values, dict):
            before = list(self.policy_values)
            for name, value in values.items():
                self.policy_values[_param_index(name)] = int(value)
            changed = self.policy_values != before
        else:
            current = self.policy_values
            n = len(current)
            if len(values) >= n and values[:n] == current:
                return
            changed = False
            for i in range(min(n, len(values))):
                value = int(values[i])
                if current[i] != value:
                    current[i] = value
                    changed = True
        if changed:
            self._due = False
            self._rearm()

    def _rearm(self):
        """Apply the listen interval and the duty period as they are now: the next window comes
        one (new) interval after the last one, or one interval from now if there was none."""
        if self.boot_ns is None:
            return
        now = self.now_ns
        interval = self.pval("LISTEN_INTERVAL_NS")
        if interval and self.radio is not None:
            base = self._last_listen if self._last_listen is not None else self.boot_ns
            nxt = base + interval
            self._next_listen = nxt if nxt > now else now
        else:
            self._next_listen = None
        if self.policy == "duty_cycle":
            base = self._last_duty if self._last_duty is not None else self.boot_ns
            nxt = base + self._duty_period()
            self._next_duty = nxt if nxt > now else now
        check = self.pval("CHECK_INTERVAL_NS") if (self._batching and self.radio is not None) else 0
        if check != self._chk_int:
            self._count_checks(now)
            self._chk_int = check
            self._chk_next = None
            if check:
                base = self._chk_last if self._chk_last is not None else self.boot_ns
                nxt = base + check
                self._chk_next = nxt if nxt > now else now
            if self._rx_pending:
                self._replan_rx()

    def _count_checks(self, t):
        """Count the channel checks of the wake-up-sampling schedule up to ``t`` (inclusive)."""
        nxt = self._chk_next
        if nxt is not None and nxt <= t:
            step = self._chk_int
            n = (t - nxt) // step + 1
            self._chk_count += n
            self._chk_last = nxt + (n - 1) * step
            self._chk_next = nxt + n * step

    def _checks_due(self, t):
        """Checks up to ``t`` not yet charged (read-only)."""
        n = self._chk_count - self._chk_done
        nxt = self._chk_next
        if nxt is not None and nxt <= t:
            n += (t - nxt) // self._chk_int + 1
        return n

    def _refresh_params(self):
        if self._param_reader is not None:
            values = self._param_reader()
            # a reader may hand back the very tuple it gave last time when the map is unchanged (the
            # runtime's does): policy_values already equal it unless update_params was called since
            # (that resets _param_seen). Only a tuple: a list may have been changed in place.
            if values and (values is not self._param_seen or type(values) is not tuple):
                self.update_params(values)
                self._param_seen = values

    def pval(self, name):
        return self.policy_values[_param_index(name)]

    # ---------------------------------------------------------------- radio model

    def airtime_ns(self, nbytes):
        """Airtime of one packet (energy/radio.py)."""
        return self.rm.airtime_ns(nbytes)

    def _listening(self, t):
        """The radio is awake at ``t`` (a burst then starts from rx)."""
        return self.tl.awake(t)

    def _settle_tail(self, t):
        if self.tl is not None:
            self.tl.settle_tail(t)

    def _burst(self, t, packets):
        """Send ``packets`` (queue entries) starting at ``t``; completions go to self.done."""
        self._due = False
        if not packets:
            return
        if len(packets) > 1:
            packets.sort(key=_by_deadline)
        stats = self.stats
        done = self.done
        ends = self.tl.burst(t, packets)
        stats["listen_ns"] = self.tl.listen_ns
        for q, cursor in zip(packets, ends):
            if cursor > q[1]:
                stats["missed"] += 1
            stats["packets"] += 1
            stats["bytes"] += q[2]
            done.append((cursor, q[2], q[3], True))
        stats["bursts"] += 1

    def _listen(self, start, duration, app):
        """Keep the radio in rx for [start, start+duration) (only the part not already listened)."""
        self.tl.listen(start, start + duration, app)
        self.stats["listen_ns"] = self.tl.listen_ns

    # ---------------------------------------------------------------- the runtime's interface

    def boot(self, now_ns):
        self.boot_ns = now_ns
        self.now_ns = now_ns
        self.ledger = Ledger(self.board.models, now_ns)
        self.attr = Attribution(self.ledger)
        self._new_timeline()
        self._batt_ns = now_ns
        self._batt_mark = {}
        self._util_t = now_ns
        if self.radio is not None:
            if self.policy == "always_on":
                self.ledger.set_background(self.radio, self.r_listen, now_ns)
            else:
                self.ledger.set_background(self.radio, self.r_sleep, now_ns, transition=False)
        self.ledger.set_background(self.cpu, self.cpu_sleep, now_ns, transition=False)
        self._refresh_params()
        self._rearm()

    def _duty_period(self):
        return self.pval("DUTY_PERIOD_NS") or self.params["duty_period_ns"]

    def _duty_window(self):
        return self.pval("LISTEN_WINDOW_NS") or self.params["duty_window_ns"]

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

    def _charge_checks(self, t):
        """Charge the idle channel checks up to ``t``: a sleep->rx wake-up and cca_ns in rx each."""
        self._count_checks(t)
        n = self._chk_count - self._chk_done
        if n <= 0:
            return
        self._chk_done = self._chk_count
        rm = self.rm
        ns = self.ledger.add_transition(rm.component, rm.sleep, rm.listen, n)
        if ns:
            self.attr.charge(SYSTEM, rm.component, rm.sleep + ">" + rm.listen, ns)
        self.ledger.add(rm.component, rm.listen, rm.cca_ns * n)
        self.attr.charge(SYSTEM, rm.component, rm.listen, rm.cca_ns * n)
        self.stats["checks"] = self.stats.get("checks", 0) + n

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

    def enqueue_tx(self, now_ns, nbytes, deadline_ns, app):
        """Queue ``nbytes`` for ``app``, to be delivered by the absolute time ``deadline_ns``."""
        if self.radio is None:
            self.done.append((now_ns, nbytes, app, False))
            return
        if self._rx_pending:
            self._receive_due(now_ns)
        self._refresh_params()
        if self.record:
            self.trace_tx.append((now_ns, deadline_ns, nbytes, app))
        entry = [now_ns, deadline_ns, nbytes, app, self.airtime_ns(nbytes)]
        if self.policy == "always_on" or (self._batching and
                                          self._listening(now_ns)):
            self._burst(now_ns, [entry])
            return
        self.queue.append(entry)
        self._due = False
        if self._batching:
            # holding costs nothing under the model; only the runtime's queue limit forces a send
            limit = self.pval("TX_QUEUE_LIMIT_BYTES")
            queued = 0
            for q in self.queue:
                queued += q[2]
            if limit and queued * 4 >= limit * 3:
                batch = self.queue
                self.queue = []
                self._burst(now_ns, batch)

    def request_listen(self, now_ns, duration_ns, app):
        if self.radio is None or duration_ns <= 0:
            return
        if self._rx_pending:
            self._receive_due(now_ns)
        if self.record:
            self.trace_listen.append((now_ns, duration_ns, app))
        self._listen(now_ns, duration_ns, app)
        if self.queue and self._batching:
            batch = self.queue
            self.queue = []
            self._burst(now_ns, batch)

    def rx_arrival(self, now_ns, nbytes):
        """A packet of ``nbytes`` reaches the antenna at ``now_ns``: True when the radio listens
        then (it is received and its airtime is spent in rx), False when it is missed (counted)."""
        if self.radio is None:
            return True
        if self._rx_pending:
            self._receive_due(now_ns)
        air = self.rm.airtime_ns(nbytes)
        # a sender strobes for a full check interval and retransmits once (ContikiMAC with one
        # MAC retry): it reaches this node for up to two intervals after its packet's arrival
        reach = 2 * self.pval("CHECK_INTERVAL_NS")
        if self.record:
            self.trace_rx.append((now_ns, air, nbytes, reach))
        if reach and (now_ns < self._rx_busy or not self.tl.listening(now_ns)):
            return self._rx_deferred(now_ns, nbytes, reach)
        if not self.tl.listening(now_ns):
            self.stats["rx_missed"] += 1
            return False
        self.stats["rx_packets"] += 1
        if reach:
            self._count_sender(1, nbytes, 0)
        if not self.tl.background_rx:
            # stay in rx until the whole packet is in (the window may end during it)
            self.tl.listen(now_ns, now_ns + air, SYSTEM)
            self.stats["listen_ns"] = self.tl.listen_ns
        return True

    def _rx_deferred(self, now_ns, nbytes, reach):
        """Wake-up sampling: the sender repeats the packet for up to two check intervals (``reach``);
        it is received at the first instant the radio listens in that time (a channel check, a
        scheduled window, a duty wake-up, or right after the reception before it), else missed."""
        entry = self._place_rx(now_ns, nbytes)
        if entry is None or entry[0] > now_ns + reach:
            self.stats["rx_missed"] += 1
            return False
        self._rx_pending.append(entry)
        self._rx_busy = entry[1]
        self.stats["rx_packets"] += 1
        return True

    def _place_rx(self, arrival, nbytes):
        """[listen, end, nbytes, at a check, arrival, copies, copy start] of the reception of a
        packet its sender starts repeating at ``arrival``, or None when the radio never listens."""
        if arrival < self._rx_busy:
            listen, checked = self._rx_busy, False          # still receiving: catch the next copy
        else:
            listen, checked = None, False
            if self._chk_int:
                self._count_checks(arrival - 1)
                listen, checked = self._chk_next, True
            for t in (self._next_listen, self._next_duty if self.policy == "duty_cycle" else None):
                if t is not None and t >= arrival and (listen is None or t < listen):
                    listen, checked = t, False
        if listen is None:
            return None
        start, end, copies = self.rm.strobe_copy(arrival, listen, nbytes, checked)
        return [listen, end, nbytes, checked, arrival, copies, start]

    def _replan_rx(self):
        """The check schedule changed: receptions still to come move to its checks."""
        old = self._rx_pending
        self._rx_pending = []
        self._rx_busy = self._rx_done_end
        for entry in old:
            new = self._place_rx(entry[4], entry[2]) or entry
            self._rx_pending.append(new)
            self._rx_busy = new[1]

    def _count_sender(self, copies, nbytes, wait_ns):
        stats = self.stats
        stats["rx_deferred"] = stats.get("rx_deferred", 0) + (1 if wait_ns > 0 else 0)
        stats["rx_wait_ns"] = stats.get("rx_wait_ns", 0) + wait_ns
        stats["sender_j"] = stats.get("sender_j", 0.0) + self.rm.sender_j(copies, nbytes)

    def _receive_due(self, now_ns):
        """Charge the receptions (wake-up sampling) that have started by ``now_ns``."""
        pending = self._rx_pending
        while pending and pending[0][0] <= now_ns:
            start, end, nbytes, checked, arrival, copies, copy = pending.pop(0)
            if checked:
                self._count_checks(start)
                self._chk_done += 1     # this check's wake-up is the reception's
                self.stats["checks"] = self.stats.get("checks", 0) + 1
            self.tl.listen(start, end, SYSTEM)
            self.stats["listen_ns"] = self.tl.listen_ns
            self._rx_done_end = end
            self._count_sender(copies, nbytes, copy - arrival)

    def _batch_due(self):
        if self._due is False:
            self._due = self._compute_due()
        return self._due

    def _compute_due(self):
        """When batching must send: the latest start that still meets every queued deadline, or
        when the oldest packet has waited IOT_POLICY_MAX_BATCH_DELAY_NS."""
        if not self.queue:
            return None
        guard = self.params["guard_ns"] + self.ramp_out_ns
        ack = self.ack_ns
        payload = self.max_payload
        due = None
        cumulative = 0
        oldest = None
        for q in sorted(self.queue, key=_by_deadline):
            frames = (q[2] + payload - 1) // payload  # self._frames(q[2])
            cumulative += q[4] + ack * (frames if frames > 1 else 1)
            t = q[1] - guard - cumulative
            if due is None or t < due:
                due = t
            if oldest is None or q[0] < oldest:
                oldest = q[0]
        hold = self.policy_values[_HOLD_INDEX]
        if hold:
            if oldest + hold < due:
                due = oldest + hold
        return due

    def next_wakeup_ns(self):
        """When the scheduler must act next (None: nothing due). Re-reads iot_policy first, so a
        value a program wrote (at boot, say) re-arms the schedules before the runtime waits."""
        self._refresh_params()
        best = None
        if self.done:
            for d in self.done:
                if best is None or d[0] < best:
                    best = d[0]
        if self._batching:
            due = self._due
            if due is False:
                due = self._batch_due()
            if due is not None and (best is None or due < best):
                best = due
        elif self.policy == "duty_cycle" and self._next_duty is not None:
            if best is None or self._next_duty < best:
                best = self._next_duty
        nl = self._next_listen
        if nl is not None and (best is None or nl < best):
            best = nl
        if self._rx_pending:
            t = self._rx_pending[0][0]
            if best is None or t < best:
                best = t
        return best

    def on_wakeup(self, now_ns):
        """Do what was due by ``now_ns``; return finished transmissions [(done_ns, nbytes, app, ok)]."""
        if now_ns < self.now_ns:
            now_ns = self.now_ns    # a wake-up asked for a time already past happens now
        self._refresh_params()
        if self._rx_pending:
            self._receive_due(now_ns)
        if self._next_listen is not None and self._next_listen <= now_ns:
            window = self.pval("LISTEN_WINDOW_NS")
            if self.record and window:
                self.trace_listen.append((now_ns, window, SYSTEM))
            self._listen(now_ns, window, SYSTEM)
            self._last_listen = now_ns
            interval = self.pval("LISTEN_INTERVAL_NS")
            self._next_listen = now_ns + interval if interval else None
            if self.queue and self._batching:
                batch = self.queue
                self.queue = []
                self._burst(now_ns, batch)
        if self._batching:
            due = self._batch_due()
            if due is not None and due <= now_ns:
                batch = self.queue
                self.queue = []
                self._burst(now_ns, batch)
        elif self.policy == "duty_cycle":
            if self._next_duty is not None and self._next_duty <= now_ns:
                window = self._duty_window()
                self._listen(now_ns, window, SYSTEM)
                if self.queue:
                    batch = self.queue
                    self.queue = []
                    self._burst(now_ns, batch)
                self._last_duty = now_ns
                self._next_duty = now_ns + self._duty_period()
        done = self.done
        if not done:
            return []
        out = [d for d in done if d[0] <= now_ns]
        if out:
            self.done = [d for d in done if d[0] > now_ns]
        return out

    def take_done(self):
        """Every transmission the scheduler has finished or timed so far, ``[(done_ns, nbytes, app,
        ok)]``, handed over once: the runtime delivers each at its own time, so no wake-up is
        needed for it (on_wakeup then has none of them to return)."""
        done = self.done
        if not done:
            return ()
        self.done = []
        return done

    def advance(self, now_ns):
        """Integrate energy up to ``now_ns``; the battery model is updated every battery_step."""
        if now_ns < self.now_ns:
            return
        self.now_ns = now_ns
        if self._rx_pending:
            self._receive_due(now_ns)
        if now_ns - self._batt_ns >= self.params["battery_step_ns"]:
            self._update_battery(now_ns)

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

    def flush(self):
        """End of run: send what is still queued (the policy pays for it), then bring the ledger
        and the battery up to the latest time the runtime reported."""
        if self._rx_pending:
            self._receive_due(1 << 62)   # the senders already strobe: those packets are received
        if self.queue:
            batch = self.queue
            self.queue = []
            self._burst(self.now_ns, batch)
        self._settle_tail(self.now_ns)
        self._update_battery(self.now_ns)
        self._apply_pending()
        self.ledger.flush(self.now_ns)

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

    # ---------------------------------------------------------------- reporting

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
            joules = ns * m.current_a(state) * m.voltage_v * 1e-9
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
        if self.policy == "oracle" and self.record:
            extra["oracle"] = oracle(self).oracle_info
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
                app_j[app] = app_j.get(app, 0.0) + amount * m.current_a(state) * m.voltage_v * 1e-9

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
            joules = amount * m.current_a(state) * m.voltage_v * 1e-9
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



def make_scheduler(policy_name, board, params=None):
    """A Scheduler for ``policy_name`` (see POLICIES) on ``board`` (Board, name or path)."""
    return Scheduler(policy_name, board, params)


def oracle(source, end_ns=None):
    """The offline optimum of ``source``'s recorded trace, replayed (kernel/oracle.py)."""
    from iotbpf.kernel.oracle import replay
    return replay(source, end_ns)


def compare(schedulers, oracle_sched=None):
    """Rows for a policy comparison: [{policy, energy_j, average_current_a, lifetime_days,
    deadline_misses, ratio_to_oracle}], plus an "oracle" row (lower bound when the radio has a tail).

    The oracle replays the longest recorded run; ratios compare average power, so runs of
    different length (a battery that died early) compare fairly. A live run of the "oracle"
    policy is labelled "oracle (live)"."""
    rows = []
    ref = None
    if oracle_sched is None:
        # the oracle replays the longest recorded run (a run cut short by a dead battery saw less)
        longest = None
        for s in schedulers.values():
            if s.record and (longest is None or s.elapsed_ns() > longest.elapsed_ns()):
                longest = s
        if longest is not None:
            oracle_sched = oracle(longest)
    ref_w = None
    if oracle_sched is not None:
        ref = oracle_sched.oracle_info["lower_bound_j"]
        dur = oracle_sched.elapsed_ns()
        ref_w = ref / (dur * 1e-9) if dur > 0 else None
    for name, s in schedulers.items():
        s.flush()
        e = s.energy_used_j()
        dur = s.elapsed_ns()
        # ratio of average power, so a run cut short by a dead battery compares fairly
        ratio = (e / (dur * 1e-9) / ref_w) if (ref_w and dur > 0) else None
        label = name + " (live)" if name == "oracle" else name
        rows.append({"policy": label, "energy_j": e, "average_current_a": s.average_current_a(),
                     "lifetime_days": s.lifetime_days(), "deadline_misses": s.stats["missed"],
                     "rx_missed": s.stats["rx_missed"], "ratio_to_oracle": ratio})
    if oracle_sched is not None:
        rows.append({"policy": "oracle", "energy_j": ref,
                     "average_current_a": oracle_sched.average_current_a(),
                     "lifetime_days": oracle_sched.lifetime_days(),
                     "deadline_misses": oracle_sched.stats["missed"], "rx_missed": 0, "ratio_to_oracle": 1.0,
                     "gap": oracle_sched.oracle_info["gap"], "exact": oracle_sched.oracle_info["exact"]})
    return rows
