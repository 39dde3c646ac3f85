"""The Scheduler: energy-aware radio/CPU policies and the node's energy bookkeeping.

The runtime reports what programs did (CPU bursts, sensor reads, packets with deadlines,
listen requests, packets arriving over the air); a policy decides when the radio wakes, listens
and transmits and at which frequency the CPU runs. The physics (airtime, ramps, tails, what a
burst or a listen window costs) live in energy/radio.py, the offline optimum in kernel/oracle.py;
every choice is charged to the Energest ledger, attributed per app and drained from the battery.
Policies read their parameters from the ``iot_policy`` well-known map (kernel/wellknown.py) whenever
it changes. Readers (summary, sample) never change the scheduler's state. The documented model
is in docs/energy.md. The class is split by concern: CPU and sensor bookkeeping
(scheduler_cpu.py), receiving with wake-up sampling (scheduler_rx.py), readers (scheduler_report.py);
the runtime's contract is scheduler_base.py. It must never look at wall-clock time or draw random
numbers.
"""

from iotbpf.energy.accounting import Ledger
from iotbpf.energy.attribution import SYSTEM, Attribution
from iotbpf.energy.board import load_board
from iotbpf.energy.radio import RadioModel, RadioTimeline, lora_time_on_air_ns  # noqa: F401 (re-export)
from iotbpf.kernel import wellknown as wkmaps
from iotbpf.kernel.scheduler_base import NS_PER_DAY, NS_PER_S, SchedulerBase  # noqa: F401 (re-export)
from iotbpf.kernel.scheduler_cpu import CpuAccounting, _counter  # noqa: F401 (re-export)
from iotbpf.kernel.scheduler_report import Readers
from iotbpf.kernel.scheduler_rx import WakeUpSampling

POLICIES = ("always_on", "duty_cycle", "batching", "dvfs", "race", "oracle")
CPU_POLICIES = ("race", "dvfs", "min_energy")
PARAM_NAMES = tuple(row[0] for row in wkmaps.POLICY_PARAMS)
_PARAM_INDEX = {}
for _row in wkmaps.POLICY_PARAMS:
    _PARAM_INDEX[_row[0]] = _row[1]
    _PARAM_INDEX[_row[0][len("IOT_POLICY_"):]] = _row[1]


def _by_deadline(entry):
    return entry[1]


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


class Scheduler(CpuAccounting, WakeUpSampling, Readers, SchedulerBase):
    """One node's energy side: policy state, ledger, attribution, battery, harvester.

    ``offline``: the oracle's replay (kernel/oracle.py ``replay``) a live "oracle" policy adds to
    its summary; make_scheduler passes it (this module does not import the oracle, which imports it)."""

    def __init__(self, policy, board, params=None, offline=None):
        if policy not in POLICIES and policy != "planned":   # "planned": the oracle's replay
            raise ValueError("unknown policy %r (known: %s)" % (policy, ", ".join(POLICIES)))
        self.policy = policy
        self.offline = offline
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

    # ---------------------------------------------------------------- reporting
