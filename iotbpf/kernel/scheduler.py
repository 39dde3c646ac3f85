"""Energy-aware radio/CPU scheduler policies, the offline oracle, and the node's energy bookkeeping.

The runtime reports what programs did (CPU bursts, sensor reads, packets with deadlines,
listen requests); a policy decides when the radio wakes, listens and transmits and at which
frequency the CPU runs; every choice is charged to the Energest ledger (integer ns per
component and state), attributed per app (BatteryStats rules) and drained from the battery.
Policies read their parameters from the ``iot_policy`` well-known map (kernel/maps.py).

The documented radio/CPU model (what the oracle optimises exactly):
- The radio sleeps unless it transmits, or listens (a window an app requested, a scheduled
  window from IOT_POLICY_LISTEN_INTERVAL/WINDOW, or always, for ``always_on``).
- A transmit *burst* at time t costs one transition: sleep->tx if the radio sleeps at t, or
  rx->tx if it is listening at t (datasheet times/currents). Then each packet costs its own
  airtime, ceil(n / max_payload) frames of (payload + frame overhead) bytes at the bit rate (LoRa:
  the SX127x time-on-air formula), plus an ACK reception per frame. Packet costs are the same in
  every policy; only burst times (and how many) differ. Foreground activities are accounted as
  if sequential (overlaps only shorten the background state).
- A radio with a tail (``tail_ms``, e.g. a phone's Wi-Fi) stays in rx for the tail after a burst,
  cut short by the next burst.
- The CPU runs each burst of work at one frequency: ``race`` = the highest (then sleeps),
  ``dvfs`` = schedutil-like lowest frequency >= 1.25 x utilisation x f_max, ``min_energy`` =
  the frequency with the least energy for that burst (the oracle's choice).

Oracle: burst times are chosen by an exact dynamic programme (weighted interval stabbing):
each packet must be sent in [arrival, deadline - ramp - own airtime]; a burst costs the
transition energy of the radio state at its time; the DP finds the cheapest set of burst
times covering every packet, then the trace is replayed through the same accounting. Exact
for this model when the radio has no tail; with a tail the DP ignores tail energy and the
reported lower bound subtracts all tail energy (a true lower bound) — the gap is reported.
Not considered: keeping the radio listening between two bursts instead of sleeping. That can
only pay when two bursts are closer than (E_sleep->tx - E_rx->tx) / P_rx apart: 0 for the
nRF52840 (equal ramps), 19.5 us for the CC2420, shorter than any packet on these boards.
It must never look at wall-clock time or draw random numbers.
"""

from iotbpf.energy.accounting import Ledger
from iotbpf.energy.attribution import SYSTEM, Attribution
from iotbpf.energy.board import load_board
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
        if policy not in POLICIES and policy != "planned":
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
        self.planned = list(p.get("wake_times", ()))
        self._plan_i = 0
        self._setup_cpu()
        self._setup_radio()
        self.queue = []            # [arrival, deadline, nbytes, app, airtime_ns]
        self.done = []             # completions not yet handed to the runtime
        self.trace_tx = []         # (arrival, deadline, nbytes, app)
        self.trace_listen = []     # (start, duration, app)
        self._cpu_cells = {}       # (busy_ns, app) -> [count, charged] (trace_cpu); callers may bump a count
        self._sensor_cells = {}    # (sensor, app) -> [count, charged] (trace_sensor)
        self.trace_wakelock = {}   # (duration, app) -> count
        self.stats = {"bursts": 0, "packets": 0, "bytes": 0, "missed": 0, "listen_ns": 0}
        self.boot_ns = None
        self.now_ns = 0
        self._listen_until = -1
        self._next_listen = None
        self._next_duty = None
        self._tail = None          # (start_ns, apps) of a pending radio tail
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
        if b.radio is None:
            return
        self.radio = b.radio["component"]
        model = b.models[self.radio]
        rp = dict(model.params)
        rp.update({k: v for k, v in b.radio.get("params", {}).items() if k != "source"})
        self.r_sleep = b.radio["sleep_state"]
        self.r_listen = b.radio["listen_state"]
        self.r_tx = b.radio["tx_state"]
        self.bitrate = rp.get("bitrate_bps", 250000)
        self.max_payload = int(rp.get("max_payload_bytes", 100))
        self.frame_overhead = int(rp.get("frame_overhead_bytes", 0))
        self.ack_ns = int(rp.get("ack_rx_us", 0) * 1000)
        self.tail_ns = int(rp.get("tail_ms", 0) * 1000000)
        self.lora = None
        if "lora_sf" in rp:
            self.lora = (int(rp["lora_sf"]), int(rp["lora_bw_hz"]), int(rp.get("lora_cr", 1)),
                         int(rp.get("lora_preamble", 8)))
        tr_out = model.transition(self.r_sleep, self.r_tx)
        tr_in = model.transition(self.r_listen, self.r_tx)
        self.ramp_out_ns = tr_out.time_ns if tr_out else 0
        self.ramp_in_ns = tr_in.time_ns if tr_in else 0
        v = model.voltage_v
        self.burst_cost_out = (tr_out.time_ns * tr_out.current_a * v * 1e-9) if tr_out else 0.0
        self.burst_cost_in = (tr_in.time_ns * tr_in.current_a * v * 1e-9) if tr_in else 0.0

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
        """Airtime of one packet: its frames with header overhead at the radio's bit rate."""
        frames = max(1, (nbytes + self.max_payload - 1) // self.max_payload)
        if self.lora is not None:
            total = 0
            left = nbytes
            for _ in range(frames):
                n = min(left, self.max_payload)
                left -= n
                total += lora_time_on_air_ns(n + self.frame_overhead, *self.lora)
            return total
        bits = (nbytes + frames * self.frame_overhead) * 8
        return (bits * NS_PER_S + self.bitrate - 1) // self.bitrate

    def _frames(self, nbytes):
        return max(1, (nbytes + self.max_payload - 1) // self.max_payload)

    def _listening(self, t):
        return self.ledger.background.get(self.radio) == self.r_listen or t < self._listen_until

    def _settle_tail(self, t):
        if self._tail is None:
            return
        start, apps = self._tail
        self._tail = None
        ns = min(self.tail_ns, t - start) if t >= start else 0
        if ns > 0 and not self._listening(start):
            self.ledger.add(self.radio, self.r_listen, ns)
            self.attr.split(apps, self.radio, self.r_listen, ns)

    def _burst(self, t, packets):
        """Send ``packets`` (queue entries) starting at ``t``; completions go to self.done."""
        self._due = False
        if not packets:
            return
        if self._tail is not None:
            self._settle_tail(t)
        if len(packets) > 1:
            packets.sort(key=_by_deadline)
        led = self.ledger
        attr = self.attr
        radio = self.radio
        r_tx = self.r_tx
        r_listen = self.r_listen
        apps = [q[3] for q in packets]
        src = r_listen if self._listening(t) else self.r_sleep
        ns = led.add_transition(radio, src, r_tx)
        if ns:
            attr.split(apps, radio, src + ">" + r_tx, ns)
        cursor = t + ns
        ack_ns = self.ack_ns
        stats = self.stats
        done = self.done
        for q in packets:
            air = q[4]
            nbytes = q[2]
            app = q[3]
            led.add(radio, r_tx, air)
            attr.charge(app, radio, r_tx, air)
            ack = ack_ns * self._frames(nbytes)
            if ack:
                led.add(radio, r_listen, ack)
                attr.charge(app, radio, r_listen, ack)
            cursor += air + ack
            if cursor > q[1]:
                stats["missed"] += 1
            stats["packets"] += 1
            stats["bytes"] += nbytes
            done.append((cursor, nbytes, app, True))
        stats["bursts"] += 1
        if self.tail_ns:
            self._tail = (cursor, apps)

    def _listen(self, start, duration, app):
        """Keep the radio in rx for [start, start+duration) (only the part not already listened)."""
        end = start + duration
        if self.ledger.background.get(self.radio) == self.r_listen:
            self._listen_until = max(self._listen_until, end)
            return
        begin = max(start, self._listen_until)
        if end <= begin:
            return
        led = self.ledger
        if begin > self._listen_until:
            ns = led.add_transition(self.radio, self.r_sleep, self.r_listen)
            if ns:
                self.attr.charge(app, self.radio, self.r_sleep + ">" + self.r_listen, ns)
        led.add(self.radio, self.r_listen, end - begin)
        self.attr.charge(app, self.radio, self.r_listen, end - begin)
        self.stats["listen_ns"] += end - begin
        self._listen_until = end

    # ---------------------------------------------------------------- the runtime's interface

    def boot(self, now_ns):
        self.boot_ns = now_ns
        self.now_ns = now_ns
        self.ledger = Ledger(self.board.models, now_ns)
        self.attr = Attribution(self.ledger)
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
        self._schedule_listen(now_ns)
        if self.policy == "duty_cycle":
            self._next_duty = now_ns + self._duty_period()

    def _duty_period(self):
        return self.pval("LISTEN_INTERVAL_NS") or self.params["duty_period_ns"]

    def _duty_window(self):
        return self.pval("LISTEN_WINDOW_NS") or self.params["duty_window_ns"]

    def _schedule_listen(self, now_ns):
        interval = self.pval("LISTEN_INTERVAL_NS")
        if interval and self.policy != "duty_cycle" and self.radio is not None:
            if self._next_listen is None:
                self._next_listen = now_ns + interval
        else:
            self._next_listen = None

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
        if self.record:
            self.trace_listen.append((now_ns, duration_ns, app))
        self._settle_tail(now_ns)
        self._listen(now_ns, duration_ns, app)
        if self.queue and self._batching:
            batch = self.queue
            self.queue = []
            self._burst(now_ns, batch)

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
        elif self.policy == "planned" and self._plan_i < len(self.planned):
            t = self.planned[self._plan_i]
            if best is None or t < best:
                best = t
        nl = self._next_listen
        if nl is not None and (best is None or nl < best):
            best = nl
        return best

    def on_wakeup(self, now_ns):
        """Do what was due by ``now_ns``; return finished transmissions [(done_ns, nbytes, app, ok)]."""
        self._refresh_params()
        if self._next_listen is not None and self._next_listen <= now_ns:
            self._listen(now_ns, self.pval("LISTEN_WINDOW_NS"), SYSTEM)
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
                self._listen(now_ns, self._duty_window(), SYSTEM)
                if self.queue:
                    batch = self.queue
                    self.queue = []
                    self._burst(now_ns, batch)
                self._next_duty = now_ns + self._duty_period()
        elif self.policy == "planned":
            while self._plan_i < len(self.planned) and self.planned[self._plan_i] <= now_ns:
                self._plan_i += 1
                ready = [q for q in self.queue if q[0] <= now_ns]
                if ready:
                    self.queue = [q for q in self.queue if q[0] > now_ns]
                    self._burst(now_ns, ready)
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
        if self.queue:
            batch = self.queue
            self.queue = []
            self._burst(self.now_ns, batch)
        self._settle_tail(self.now_ns)
        self._update_battery(self.now_ns)
        self._apply_pending()
        self.ledger.flush(self.now_ns)

    def energy_used_j(self):
        self._apply_pending()
        self.ledger.flush(self.now_ns)
        return self.ledger.energy_j()

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
        (minus harvest); None when the drain is not positive (energy-neutral or better)."""
        self.flush()
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
        """Per component and state, per app, battery and predicted lifetime (plain dict)."""
        self.flush()
        comps = {}
        for (comp, state), (ns, joules) in sorted(self.ledger.by_state().items()):
            entry = comps.setdefault(comp, {"energy_j": 0.0, "states": {}})
            entry["energy_j"] += joules
            entry["states"][state] = {"ns": ns, "energy_j": joules}
        apps = {}
        for app, joules in sorted(self.attr.per_app_j().items(), key=lambda kv: str(kv[0])):
            apps[str(app)] = joules
        batt = self.battery.describe()
        batt["time_to_empty_s"] = self.battery.time_to_empty_s()
        extra = {}
        if self.policy == "oracle" and self.record:
            extra["oracle"] = oracle(self).oracle_info
        out = {
            "policy": self.policy, "cpu_policy": self.cpu_policy, "board": self.board.name,
            "duration_ns": self.elapsed_ns(), "energy_j": self.ledger.energy_j(),
            "average_current_a": self.average_current_a(), "components": comps, "apps": apps,
            "battery": batt, "lifetime_days": self.lifetime_days(),
            "tx": dict(self.stats), "ns_per_insn": self.board.ns_per_insn,
        }
        out.update(extra)
        return out

    def sample(self, now_ns):
        """A read-only snapshot at ``now_ns`` for live plots and reports; changes nothing, so a run
        gives the same results whether or not it is sampled. Keys: t_ns, components {comp:
        {energy_j, states_ns, states_j}}, apps {app: J}, soc_percent, time_to_empty_s."""
        led = self.ledger
        ns = dict(led.ns)
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
        for comp, state in led.background.items():
            unsettled = now_ns - led._since[comp] - led._debt[comp]
            if unsettled > 0:
                add(comp, state, unsettled)
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

    def summary_lines(self):
        """Human-readable lines for `iotbpf simulate` (per component, per app, battery, lifetime)."""
        s = self.summary()
        lines = ["energy: %.6g J over %s, average current %s (policy %s, cpu %s, board %s)"
                 % (s["energy_j"], _days(s["duration_ns"]), _amps(s["average_current_a"]), s["policy"],
                    s["cpu_policy"], s["board"])]
        for comp, entry in s["components"].items():
            parts = ["%s %.3g J" % (st, v["energy_j"]) for st, v in entry["states"].items() if v["ns"]]
            lines.append("  component %-10s %.6g J  (%s)" % (comp, entry["energy_j"], ", ".join(parts)))
        for app, joules in s["apps"].items():
            lines.append("  app %-16s %.6g J" % (app, joules))
        b = s["battery"]
        life = s["lifetime_days"]
        lines.append("battery: %s %.0f mAh, state of charge %.1f %%, drawn %.4g mAh%s"
                     % (b["model"], b["capacity_mah"], 100.0 * b["soc"], b["drawn_mah"],
                        ", harvested %.4g mAh" % b["harvested_mah"] if b["harvested_mah"] else ""))
        lines.append("predicted lifetime: %s" % ("unlimited (energy-neutral)" if life is None
                                                 else "%.1f days" % life))
        if "oracle" in s:
            o = s["oracle"]
            lines.append("oracle (offline optimum of this trace): %.6g J in %d bursts; live run / oracle = %.4f"
                         % (o["lower_bound_j"], o["bursts"], s["energy_j"] / o["lower_bound_j"]
                            if o["lower_bound_j"] else 0.0))
        return lines


def _days(ns):
    return "%.4g days" % (ns / NS_PER_DAY)


def _amps(a):
    if a >= 1e-3:
        return "%.4g mA" % (a * 1e3)
    return "%.4g uA" % (a * 1e6)


def lora_time_on_air_ns(payload_bytes, sf, bw_hz, cr, preamble):
    """LoRa packet time on air (Semtech SX1276 datasheet section 4.1.1.7): explicit header, CRC on,
    low-data-rate optimisation for SF11/12 at 125 kHz."""
    de = 1 if (sf >= 11 and bw_hz <= 125000) else 0
    t_sym_ns = (1 << sf) * NS_PER_S // bw_hz
    num = 8 * payload_bytes - 4 * sf + 28 + 16
    den = 4 * (sf - 2 * de)
    extra = (num + den - 1) // den if num > 0 else 0
    n_payload = 8 + max(extra * (cr + 4), 0)
    return (preamble * 4 + 17) * t_sym_ns // 4 + n_payload * t_sym_ns


def make_scheduler(policy_name, board, params=None):
    """A Scheduler for ``policy_name`` (see POLICIES) on ``board`` (Board, name or path)."""
    return Scheduler(policy_name, board, params)


# -------------------------------------------------------------------- the offline oracle

def _tx_windows(sched, trace_tx):
    """Each packet's feasible burst interval [arrival, latest start] under the documented model."""
    out = []
    for arrival, deadline, nbytes, _app in trace_tx:
        own = sched.airtime_ns(nbytes) + sched.ack_ns * sched._frames(nbytes)
        latest = deadline - sched.ramp_out_ns - own
        if latest < arrival:
            latest = arrival
        out.append((arrival, latest))
    return out


def _listen_intervals(trace_listen, scheduled):
    spans = sorted([(s, s + d) for s, d, _a in trace_listen] + list(scheduled))
    merged = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1][1] = e
        else:
            merged.append([s, e])
    return merged


def optimal_burst_times(windows, listens, cost_out, cost_in):
    """Exact minimum-cost set of burst times covering every [a, l] window (weighted interval stabbing).

    A burst at t costs ``cost_in`` if t lies in a listen interval [s, e), else ``cost_out``.
    Candidates: every latest start l, every listen end e-1 and every s-1 before a listen start
    (a point can always move right to one of these without losing a packet or changing its cost).
    f[j] = c(p_j) + min f[k] over k with p_k >= max{a : l < p_j}; a sliding-window minimum makes it O(m log m).
    Returns (total cost, sorted burst times).
    """
    if not windows:
        return 0.0, []
    starts = [s for s, _e in listens]

    def inside(t):
        lo, hi = 0, len(starts) - 1
        found = -1
        while lo <= hi:
            mid = (lo + hi) // 2
            if starts[mid] <= t:
                found = mid
                lo = mid + 1
            else:
                hi = mid - 1
        return found >= 0 and t < listens[found][1]

    cands = set(last for _a, last in windows)
    amin = min(a for a, _l in windows)
    lmax = max(last for _a, last in windows)
    for s, e in listens:
        # the right end of each constant-cost stretch: the window's last ns, and the ns before it
        if e - 1 >= amin and s <= lmax:
            cands.add(e - 1)
        if amin <= s - 1 <= lmax:
            cands.add(s - 1)
    pts = sorted(cands)
    cost = [cost_in if inside(p) else cost_out for p in pts]
    by_l = sorted(windows, key=lambda w: w[1])
    amax_prefix = []  # max arrival among windows with l < p_j, computed incrementally
    INF = float("inf")
    f = [INF] * len(pts)
    prev = [-1] * len(pts)
    # monotonic deque of candidate indices k (increasing p_k) with increasing f[k]
    dq = []
    head = 0
    wi = 0
    amax = None
    best_virtual = 0.0  # f of the virtual start point p_0 = -inf
    for j, p in enumerate(pts):
        while wi < len(by_l) and by_l[wi][1] < p:
            a = by_l[wi][0]
            amax = a if amax is None or a > amax else amax
            wi += 1
        amax_prefix.append(amax)
        while head < len(dq) and amax is not None and pts[dq[head]] < amax:
            head += 1
        base = None
        if amax is None:
            base = (best_virtual, -1)
        if head < len(dq):
            k = dq[head]
            if base is None or f[k] < base[0]:
                base = (f[k], k)
        if base is not None and base[0] < INF:
            f[j] = base[0] + cost[j]
            prev[j] = base[1]
        if f[j] < INF:
            while len(dq) > head and f[dq[-1]] >= f[j]:
                dq.pop()
            dq.append(j)
    max_arrival = max(a for a, _l in windows)
    best = None
    for j, p in enumerate(pts):
        if p >= max_arrival and f[j] < INF and (best is None or f[j] < f[best]):
            best = j
    if best is None:
        raise ValueError("no feasible burst schedule (internal error)")
    times = []
    j = best
    while j >= 0:
        times.append(pts[j])
        j = prev[j]
    times.reverse()
    return f[best], times


def _scheduled_listens(sched, start_ns, end_ns):
    interval = sched.pval("LISTEN_INTERVAL_NS")
    window = sched.pval("LISTEN_WINDOW_NS")
    out = []
    if interval and window and sched.radio is not None:
        t = start_ns + interval
        while t < end_ns:
            out.append((t, t + window))
            t += interval
    return out


def oracle(source, end_ns=None):
    """Replay ``source``'s recorded trace (a Scheduler made with record=True) with the optimal
    burst times and the minimum-energy CPU frequencies; returns the replayed Scheduler.

    ``oracle.summary()["oracle"]`` holds the DP cost, the tail-free lower bound and the gap.
    """
    board = source.board
    params = {"record": False}
    start = source.boot_ns or 0
    end = source.now_ns if end_ns is None else end_ns
    replay = Scheduler("planned", board, params)
    replay.policy_values = list(source.policy_values)
    replay.boot(start)
    if replay.radio is not None:
        windows = _tx_windows(replay, source.trace_tx)
        listens = _listen_intervals(source.trace_listen, _scheduled_listens(replay, start, end))
        dp_cost, times = optimal_burst_times(windows, listens, replay.burst_cost_out, replay.burst_cost_in)
    else:
        dp_cost, times = 0.0, []
    replay.planned = times
    # radio events in time order: listens (requested and scheduled) and planned bursts
    events = []
    for s, d, app in source.trace_listen:
        events.append((s, 0, "listen", (d, app)))
    for arrival, deadline, nbytes, app in source.trace_tx:
        events.append((arrival, 1, "tx", (nbytes, deadline, app)))
    for t in times:
        events.append((t, 2, "wake", None))
    events.sort(key=lambda e: (e[0], e[1]))
    replay._next_listen = start + replay.pval("LISTEN_INTERVAL_NS") if replay._next_listen else None
    for t, _order, kind, arg in events:
        while replay._next_listen is not None and replay._next_listen <= t:
            replay.on_wakeup(replay._next_listen)
        if kind == "listen":
            replay.request_listen(t, arg[0], arg[1])
        elif kind == "tx":
            replay.enqueue_tx(t, arg[0], arg[1], arg[2])
        else:
            replay.on_wakeup(t)
    while replay._next_listen is not None and replay._next_listen <= end:
        replay.on_wakeup(replay._next_listen)
    for (busy, app), count in source.trace_cpu.items():
        for _ in range(count):
            replay.cpu_busy(start, busy, app)
    for (sensor, app), count in source.trace_sensor.items():
        for _ in range(count):
            replay.sensor_read(start, sensor, app)
    for (dur, app), count in source.trace_wakelock.items():
        for _ in range(count):
            replay.hold_wakelock(start, dur, app)
    replay.advance(end)
    replay.flush()
    energy = replay.energy_used_j()
    tail_j = 0.0
    if replay.tail_ns and replay.radio is not None:
        tail_j = _tail_energy_upper(replay)
    replay.oracle_info = {"dp_burst_cost_j": dp_cost, "energy_j": energy,
                          "lower_bound_j": energy - tail_j, "gap": (tail_j / energy) if energy else 0.0,
                          "bursts": len(times)}
    return replay


def _tail_energy_upper(sched):
    model = sched.board.models[sched.radio]
    return sched.stats["bursts"] * sched.tail_ns * model.current_a(sched.r_listen) * model.voltage_v * 1e-9


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
                     "ratio_to_oracle": ratio})
    if oracle_sched is not None:
        rows.append({"policy": "oracle", "energy_j": ref,
                     "average_current_a": oracle_sched.average_current_a(),
                     "lifetime_days": oracle_sched.lifetime_days(),
                     "deadline_misses": oracle_sched.stats["missed"], "ratio_to_oracle": 1.0,
                     "gap": oracle_sched.oracle_info["gap"]})
    return rows


def format_compare(rows):
    """The `iotbpf simulate --compare` table as text."""
    lines = ["%-14s %14s %14s %14s %8s %10s" % ("policy", "energy J", "avg current", "lifetime d",
                                                 "misses", "x oracle")]
    for r in rows:
        life = r["lifetime_days"]
        lines.append("%-14s %14.6g %14s %14s %8d %10s" % (
            r["policy"], r["energy_j"], _amps(r["average_current_a"]),
            "unlimited" if life is None else "%.1f" % life, r["deadline_misses"],
            "-" if r["ratio_to_oracle"] is None else "%.4f" % r["ratio_to_oracle"]))
    return "\n".join(lines)
