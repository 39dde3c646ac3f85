"""The node runtime: owns virtual time and the event loop, runs the apps' programs on hooks with
an instruction budget and a work bound, isolates faults, keeps per-hook statistics, and drives
the scheduler. MicroPython-compatible.

A faulting run is stopped and recorded as (hook, pc, reason); after ``fault_max`` faults within
``fault_window`` ns the program is detached (an event in ``runtime.events`` says so). The OS only
provides mechanism; behaviour is in the programs. Its parts: kernel/appstate.py (an app's state),
kernel/loader.py (loading, verifying, attaching, updates), kernel/timers.py, kernel/events.py
(the queue and its loop); the devices come from a Platform (kernel/platform.py), energy from a
Scheduler (kernel/scheduler.py: ``boot``, ``cpu_busy``, ``sensor_read``, ``enqueue_tx``,
``request_listen``, ``next_wakeup_ns``, ``on_wakeup``, ``advance``, ``soc``, ``battery_dead``,
``summary``). Without a scheduler a packet is sent at once (FIFO, airtime from the platform) and
energy reads as 0.

Public API: ``Runtime(platform=None, clock=None, scheduler=None, board=None, node_id=0, seed=0,
engine="compiled", verify=True, battery_report_ns=3600 s, map_budget_bytes=256 KiB,
pin_dir=None)``; ``load_app(manifest, programs, maps=None) -> App``; ``boot()``;
``start_platform(end_ns)``; ``run_until(t_ns, progress=None) -> events handled``; ``run_for(ns)``;
``raise_event(hook, fields, app=None) -> [r0]``; ``post(hook, fields, at_ns)``; ``inject(hook,
fields)`` (thread-safe) + ``run_realtime(duration_ns)``; ``replace_program(app, section, program)``,
``verify_program(...)``; ``pin_maps()``; ``policy(name, default)``; ``summary() -> dict``;
``hook_stats``, ``faults`` (records: t_ns, app, hook, section, pc, kind, reason, message),
``events`` (detached / replaced / battery_dead), ``logs`` ((t_ns, app, text, value)),
``shared_maps`` (the well-known maps by name).
"""

import struct

from iotbpf.ebpf.engines.vm import BPFFault
from iotbpf.ebpf.errors import LoadError
from iotbpf.energy.accounting import LedgerProfile
from iotbpf.kernel import wellknown
from iotbpf.kernel.appstate import MAX_LOG, RUN_COST, HookStats
from iotbpf.kernel.clock import NS_PER_H, NS_PER_S, VirtualClock
from iotbpf.kernel.events import EventQueue
from iotbpf.kernel.hooks import HOOK_NAMES, HOOKS
from iotbpf.kernel.loader import Loader, _make_well_known_maps
from iotbpf.kernel.timers import Timers

_pack_txq = wellknown.TXQ_STATE.packer()  # iot_txq's one entry
_TXQ_SIZE = wellknown.TXQ_STATE.size
_POLICY_INDEX = {}

DEFAULT_NS_PER_INSN = 125  # a 64 MHz Cortex-M4 interpreting eBPF at ~8 cycles per instruction
BATTERY_REPORT_NS = NS_PER_H
TX_QUEUE_LIMIT_BYTES = 4096
LOW_PERMILLE = 200
CRITICAL_PERMILLE = 50
MAX_FAULT_RECORDS = 1000
RUN_MEMO_MAX = 4096  # distinct instruction counts remembered per program (Attached.run_memo)
MAP_BUDGET_BYTES = 256 * 1024  # per app, unless the board or the caller says otherwise


class Runtime(Loader, Timers):
    """One node: apps, hooks, event queue, clock, devices (platform) and the energy scheduler."""

    def __init__(self, platform=None, clock=None, scheduler=None, board=None, node_id=0, seed=0,
                 engine="compiled", verify=True, battery_report_ns=BATTERY_REPORT_NS,
                 map_budget_bytes=MAP_BUDGET_BYTES, pin_dir=None):
        self.platform = platform
        self.clock = clock if clock is not None else VirtualClock()
        self.scheduler = scheduler
        self.board = board
        self.node_id = node_id
        self.seed = seed
        self.engine = engine
        self.verify = verify
        self.battery_report_ns = battery_report_ns
        self.map_budget_bytes = map_budget_bytes
        self.pin_dir = pin_dir
        self.boot_reason = 0
        self.queue = EventQueue()
        self.apps = []
        self.hooks = {}
        for name in HOOK_NAMES:
            self.hooks[name] = []
        self.hook_stats = {}
        for name in HOOK_NAMES:
            self.hook_stats[name] = HookStats()
        self.faults = []
        self.fault_count = 0
        self.events = []
        self.logs = []
        self.log_count = 0
        self.trace_sink = None  # fn(kind "trace"|"log", t_ns, app, text) for --trace-log
        self.inbox = []
        self.booted = False
        self.dead_at_ns = None
        self.end_ns = None
        self.tx = {"queued": 0, "queued_bytes": 0, "sent": 0, "lost": 0, "rejected": 0,
                   "missed_deadlines": 0, "in_flight": 0, "in_flight_bytes": 0}
        self.rx = {"received": 0, "passed": 0, "dropped": 0, "missed": 0}
        self._radio_free_ns = 0
        self._sched_tx = []  # with a scheduler: FIFO of (nbytes, app, deadline, queued_at)
        self._wakeup_gen = 0
        self._wakeup_at = None
        self._death_gen = 0  # the battery-death check that is still valid (see _schedule_death)
        self._death_rate = None  # the net drain (A) the pending death check was predicted at
        ns = getattr(board, "ns_per_insn", None) if board is not None else None
        self.ns_per_insn = ns if ns else DEFAULT_NS_PER_INSN
        self._insn_ns = getattr(board, "insn_ns", None) if board is not None else None
        self._busy_ns = {}  # instruction count -> CPU ns (see _busy_for)
        self._timer_stats = self.hook_stats["timer"]
        self._timer_fire_bound = self._timer_fire  # one bound method for every re-armed timer
        self._timer_atts = {}  # app id -> its timer programs in hook order (cleared on any change)
        self._direct_end = None  # run_until's end while timers may fire again without the heap
        self._direct_fired = 0  # timer events _timer_fire handled that way
        self.shared_maps = _make_well_known_maps()
        defaults = wellknown.policy_defaults()
        if battery_report_ns:
            defaults[wellknown.policy_index("battery_report_ns")] = battery_report_ns
        _array_store_all(self.shared_maps["iot_policy"], defaults)
        self._policy_cache = None  # (raw bytes of iot_policy, its values) for _policy_values
        self._helpers = None

    # ---------------------------------------------------------------- running

    def boot(self):
        """Start the node: the scheduler boots, then every app's boot programs run and its
        manifest timers are armed."""
        if self.booted:
            return
        self.booted = True
        now = self.clock.now_ns()
        if self.scheduler is not None:
            self.scheduler.boot(now)
            batt = self.scheduler.battery
            if getattr(batt, "rate_dependent", False) and self.scheduler.ledger is not None:
                # the battery's rate effects see each burst's current, read from the ledger at
                # each battery update (issue 21), not the interval's average
                batt.profile_source = LedgerProfile(self.scheduler.ledger, batt.voltage_v)
            self.scheduler.set_param_reader(self._policy_values)
        for app in self.apps:
            self._start_app(app)
        if self.battery_report_ns:
            self.queue.push(now + self.battery_report_ns, self._battery_event, None)
        if self.scheduler is not None and self.scheduler.battery_dead():
            self.queue.push(now, self._battery_death, None)  # browned out at the first pulse
        self._reschedule_wakeup()

    def _start_app(self, app):
        now = self.clock.now_ns()
        fields = {"now_ns": now, "node_id": self.node_id, "reason": self.boot_reason,
                  "battery_permille": self.battery_permille(), "app_id": app.id}
        self._run_hook(self.hooks["boot"], "boot", fields, app)
        for tid, start, period, jitter in app.manifest.timer_specs:
            self.arm_timer(app, tid, start, period, jitter)

    def start_platform(self, end_ns):
        if self.platform is not None:
            self.platform.start(self, end_ns)

    def run_until(self, end_ns, progress=None):
        """Process events up to (not including) ``end_ns``; returns the number of events handled.

        ``progress(now_ns)`` is called every 4096 events (for a progress bar).
        """
        if not self.booted:
            self.boot()
        clock = self.clock
        handled = 0
        self.end_ns = end_ns
        virtual = getattr(clock, "virtual", False)
        if virtual and progress is None:
            # the loop of a simulated node-year; periodic timers may fire again in _timer_fire
            # while they stay the earliest event (counted in _direct_fired)
            self._direct_end = end_ns
            self._direct_fired = 0
            try:
                handled = self.queue.dispatch(end_ns, clock)
            finally:
                self._direct_end = None
                handled += self._direct_fired
        else:
            handled = self.queue.dispatch(end_ns, clock, virtual, progress)
        if self.dead_at_ns is None and clock.now_ns() < end_ns:
            clock.sleep_until(end_ns)
        if self.scheduler is not None:
            self.scheduler.advance(clock.now_ns())
        return handled

    def run_for(self, duration_ns, progress=None):
        return self.run_until(self.clock.now_ns() + duration_ns, progress)

    def post(self, hook, fields, at_ns):
        """Schedule an event for ``hook`` at ``at_ns`` (virtual time; from the event loop's thread)."""
        _check_fields(hook, fields)
        self.queue.push(at_ns, self._posted, (hook, fields))

    def _posted(self, now, arg):
        self.raise_event(arg[0], arg[1])

    def inject(self, hook, fields):
        """Queue an event from another thread (a GPIO callback); the real-time loop delivers it."""
        _check_fields(hook, fields)
        self.inbox.append((hook, fields))

    def run_realtime(self, duration_ns, poll_ns=10000000):
        """Run on the node's (monotonic) clock for duration_ns, delivering injected events."""
        if not self.booted:
            self.boot()
        end = self.clock.now_ns() + duration_ns
        while True:
            now = self.clock.now_ns()
            while self.inbox:
                hook, fields = self.inbox.pop(0)
                self.raise_event(hook, fields)
            self.queue.dispatch_due(now)
            if now >= end or self.dead_at_ns is not None:
                break
            nxt = self.queue.peek_time()
            wake = now + poll_ns
            if nxt is not None and nxt < wake:
                wake = nxt
            self.clock.sleep_until(min(wake, end))
        if self.scheduler is not None:
            self.scheduler.advance(self.clock.now_ns())

    def raise_event(self, hook, fields, app=None):
        """Deliver an event now to every program attached to ``hook`` (of ``app`` only, if given).

        ``fields`` is a dict of context values; ``now_ns`` is filled in. Returns the list of r0
        values of the programs that ran without fault.
        """
        values = dict(fields)
        values["now_ns"] = self.clock.now_ns()
        if hook == "radio_rx":
            return self._radio_rx(values)
        return self._run_hook(self.hooks[hook], hook, values, app)

    def _run_hook(self, attached, hook_name, values, only_app=None):
        """One event on a hook, its context given as {field: value} (``now_ns`` among them;
        missing fields are 0): the r0 of each program that ran without fault."""
        return self._run_each(attached, self.hook_stats[hook_name], values["now_ns"], only_app,
                              HOOKS[hook_name].pack_into, (values,))

    def _run_hook_values(self, hook_name, now, values, only_app=None):
        """_run_hook for a hook without array fields, given every field's value in declared
        order (the completion of each packet and the battery report run this: no dict)."""
        return self._run_each(self.hooks[hook_name], self.hook_stats[hook_name], now, only_app,
                              HOOKS[hook_name].packer(), (0,) + values)

    def _run_each(self, attached, stats, now, only_app, pack, args):
        """The event path: count the event in ``stats`` (its hook's), then run each program of
        ``attached`` (``only_app``'s, if given) whose app has work credit, on its context packed
        by ``pack(ctx, *args)``; the r0s of those that did not fault. (Timers/_timer_fire has
        this path inlined: it is the event of a node-year.)"""
        stats.events += 1
        results = []
        for att in tuple(attached):
            app = att.app
            if (only_app is not None and app is not only_app) or att.detached:
                continue
            if app.work_left <= 0 and self._throttled(app, now) is not None:
                app.throttled += 1
                stats.throttled += 1
                continue
            pack(att.ctx, *args)
            r0 = self._run(att, stats, now)
            if r0 is not None:
                results.append(r0)
        return results

    def _run(self, att, stats, now):
        """Run one attached program on its (already packed) context; None if it faulted."""
        vm = att.vm
        try:
            r0 = vm.run_event(att.ctx_addr)
        except BPFFault as exc:
            self._account(att, now, vm.last.insns_executed)
            self._fault(att, stats, now, exc)
            return None
        self._account(att, now, vm.last.insns_executed)
        return r0

    def _run_memo(self, att, insns):
        """The run_memo cell ``[CPU ns, scheduler counter or None, runs]`` for runs of ``insns``
        instructions of ``att`` (made on first use; at most RUN_MEMO_MAX per program)."""
        sched = self.scheduler
        if att.run_memo_for is not sched or len(att.run_memo) >= RUN_MEMO_MAX:
            att.fold()
            att.run_memo = {}
            att.run_memo_for = sched
        busy = self._busy_ns.get(insns)
        if busy is None:
            busy = self._busy_for(insns)
        memo = att.run_memo[insns] = [busy, sched.cpu_counter(busy, att.app.name) if sched is not None else None, 0]
        return memo

    def _busy_for(self, insns):
        """CPU ns of ``insns`` instructions on the board (memoised: runs repeat the same counts)."""
        busy = self._insn_ns(insns) if self._insn_ns is not None else int(insns * self.ns_per_insn)
        if len(self._busy_ns) < 4096:
            self._busy_ns[insns] = busy
        return busy

    def _account(self, att, now, insns):
        """Charge one run of ``insns`` instructions to its program, its hook, the scheduler and
        its app's work credit (_timer_fire has this inlined)."""
        sched = self.scheduler
        memo = att.run_memo.get(insns)
        if memo is None or att.run_memo_for is not sched:
            memo = self._run_memo(att, insns)
        memo[2] += 1  # the run, for att's and its hook's statistics (Attached.fold)
        counter = memo[1]
        if counter is not None:
            counter[0] += 1  # what sched.cpu_busy(now, busy, app name) would count
        elif sched is not None:
            sched.cpu_busy(now, memo[0], att.app.name)
        att.app.work_left -= insns + RUN_COST
        out = att.app.env.trace_output
        if out and len(out) > MAX_LOG:
            del out[: len(out) - MAX_LOG]

    def _throttled(self, app, now):
        """For an app out of work credit: None if a work period has passed since its credit was
        last refilled (it is refilled now), else the time it will be."""
        back = app.work_since + app.work_period_ns
        if now >= back:
            app.work_left = app.work_budget
            app.work_since = now
            return None
        return back

    def _fault(self, att, stats, now, exc):
        att.faults += 1
        stats.faults += 1
        self.fault_count += 1
        record = {"t_ns": now, "app": att.app.name, "hook": att.hook.name, "section": att.section,
                  "pc": exc.pc, "kind": exc.kind, "reason": exc.reason, "message": str(exc)}
        if len(self.faults) < MAX_FAULT_RECORDS:
            self.faults.append(record)
        window = att.app.manifest.fault_window_ns
        recent = [t for t in att.recent_faults if now - t < window]
        recent.append(now)
        att.recent_faults = recent
        if len(recent) >= att.app.manifest.fault_max and not att.detached:
            self.detach(att, "%d faults within %d s; last: %s" % (len(recent), window // NS_PER_S, exc))

    def detach(self, att, reason):
        """Detach one program from its hook; an event records it."""
        att.detached = True
        lst = self.hooks[att.hook.name]
        if att in lst:
            lst.remove(att)
        self._timer_atts = {}
        self.events.append({"t_ns": self.clock.now_ns(), "event": "detached", "app": att.app.name,
                            "hook": att.hook.name, "section": att.section, "reason": reason})

    # ---------------------------------------------------------------- devices (helpers call these)

    def sensor_read(self, app, sensor_id):
        if self.platform is None:
            return None
        now = self.clock.now_ns()
        value = self.platform.sensor_read(sensor_id, now)
        if value is not None and self.scheduler is not None:
            self.scheduler.sensor_read(now, sensor_id, app.name)
        return value

    def gpio_read(self, pin):
        return self.platform.gpio_read(pin) if self.platform is not None else None

    def gpio_write(self, app, pin, level):
        return bool(self.platform.gpio_write(pin, level)) if self.platform is not None else False

    def radio_send(self, app, payload, deadline_rel_ns):
        """Queue a packet for the scheduler; False when the transmit queue is full."""
        nbytes = len(payload)
        tx = self.tx
        if tx["in_flight_bytes"] + nbytes > self.policy("tx_queue_limit_bytes", TX_QUEUE_LIMIT_BYTES):
            tx["rejected"] += 1
            return False
        now = self.clock.now_ns()
        deadline = now + deadline_rel_ns
        tx["queued"] += 1
        tx["queued_bytes"] += nbytes
        tx["in_flight"] += 1
        tx["in_flight_bytes"] += nbytes
        app.tx_packets += 1
        app.tx_bytes += nbytes
        if self.scheduler is not None:
            self._sched_tx.append((nbytes, app, deadline, now, payload))
            self.scheduler.enqueue_tx(now, nbytes, deadline, app.name)
            self._reschedule_wakeup()
        else:
            start = now if now > self._radio_free_ns else self._radio_free_ns
            done = start + (self.platform.airtime_ns(nbytes) if self.platform is not None else 0)
            self._radio_free_ns = done
            self.queue.push(done, self._tx_done_plain, (nbytes, app, deadline, now, payload))
        self._update_txq()
        return True

    def radio_listen(self, app, duration_ns):
        if self.scheduler is not None:
            self.scheduler.request_listen(self.clock.now_ns(), duration_ns, app.name)
            self._reschedule_wakeup()

    def energy_used_uj(self):
        if self.scheduler is None:
            return 0
        self.scheduler.advance(self.clock.now_ns())
        return int(self.scheduler.energy_used_j() * 1000000)

    def battery_permille(self):
        if self.scheduler is None:
            return 1000
        self.scheduler.advance(self.clock.now_ns())
        soc = self.scheduler.soc()
        return max(0, min(1000, int(soc * 1000 + 0.5)))

    def log(self, app, text, value):
        self.log_count += 1
        if len(self.logs) >= MAX_LOG:
            del self.logs[0]
        try:
            msg = text.decode()
        except Exception:
            msg = repr(text)
        now = self.clock.now_ns()
        self.logs.append((now, app.name, msg, value))
        if self.platform is not None:
            self.platform.log_line(now, app.name, msg, value)
        if self.trace_sink is not None:
            self.trace_sink("log", now, app.name, "%s %d" % (msg, value))

    # ---------------------------------------------------------------- radio

    def _radio_rx(self, values):
        sched = self.scheduler
        if sched is not None and not sched.rx_arrival(values["now_ns"], values.get("len", 0)):
            self.rx["missed"] += 1   # the radio was not listening: the packet never reaches a program
            return []
        self.rx["received"] += 1
        results = self._run_hook(self.hooks["radio_rx"], "radio_rx", values)
        nbytes = values.get("len", 0)
        for att in self.hooks["radio_rx"]:
            _demand_add(self.shared_maps["iot_app_demand"], att.app.id, 0, nbytes, 0, 1)
        if 0 in results:
            self.rx["dropped"] += 1
        else:
            self.rx["passed"] += 1
        return results

    def _tx_done_plain(self, now, arg):
        nbytes, app, deadline, queued_at, payload = arg
        ok = self.platform.delivered() if self.platform is not None else True
        self._complete_tx(now, nbytes, app, deadline, queued_at, ok, payload)

    def _complete_tx(self, now, nbytes, app, deadline, queued_at, ok, payload):
        if self.platform is not None:
            # a real platform sends the bytes here (serial, MQTT); its answer counts as delivery
            ok = bool(self.platform.transmit(app.name, payload, now)) and ok
        tx = self.tx
        tx["in_flight"] -= 1
        tx["in_flight_bytes"] -= nbytes
        missed = 1 if now > deadline else 0
        if ok:
            tx["sent"] += 1
        else:
            tx["lost"] += 1
        tx["missed_deadlines"] += missed
        _demand_add(self.shared_maps["iot_app_demand"], app.id, nbytes, 0, 1, 0)
        self._update_txq()
        # radio_tx_done's fields: now_ns, latency_ns, nbytes, ok, deadline_missed, pad
        self._run_hook_values("radio_tx_done", now, (now, now - queued_at, nbytes, 1 if ok else 0, missed, 0), app)

    def _reschedule_wakeup(self):
        sched = self.scheduler
        if sched is None:
            return
        # finished transmissions become events at their own times (no wake-up for them)
        for done_ns, nbytes, app_name, ok in sched.take_done():
            now = self.clock.now_ns()
            at = now if done_ns is None or done_ns < now else done_ns
            self.queue.push(at, self._tx_finished, (nbytes, app_name, ok))
        wake = sched.next_wakeup_ns()
        if wake is None or wake == self._wakeup_at:
            return
        now = self.clock.now_ns()
        if wake < now:
            wake = now
        self._wakeup_gen += 1
        self._wakeup_at = wake
        self.queue.push(wake, self._wakeup, self._wakeup_gen)

    def _wakeup(self, now, gen):
        if gen != self._wakeup_gen:
            return
        self._wakeup_at = None
        done = self.scheduler.on_wakeup(now)
        for done_ns, nbytes, app_name, ok in done or ():  # a scheduler without take_done
            self._tx_finished(now if done_ns is None or done_ns < now else done_ns, (nbytes, app_name, ok))
        self._reschedule_wakeup()

    def _tx_finished(self, now, arg):
        """A transmission the scheduler timed ends now: radio_tx_done."""
        nbytes, app_name, ok = arg
        entry = self._pop_sched_tx(app_name, nbytes)
        if entry is None:
            return
        _n, app, deadline, queued_at, payload = entry
        if ok and self.platform is not None:
            ok = self.platform.delivered()
        self._complete_tx(now, nbytes, app, deadline, queued_at, ok, payload)

    def _pop_sched_tx(self, app_name, nbytes):
        pending = self._sched_tx
        for i in range(len(pending)):
            entry = pending[i]
            if entry[1].name == app_name and entry[0] == nbytes:
                del pending[i]
                return entry
        return None

    def _update_txq(self):
        tx = self.tx
        earliest = None
        for entry in self._sched_tx:  # (a loop: there are one or two)
            if earliest is None or entry[2] < earliest:
                earliest = entry[2]
        buf = self.shared_maps["iot_txq"].values
        if len(buf) < _TXQ_SIZE:
            buf.extend(bytes(_TXQ_SIZE - len(buf)))
        _pack_txq(buf, 0, tx["in_flight_bytes"], earliest or 0, tx["in_flight"], tx["sent"], tx["lost"],
                  tx["missed_deadlines"])

    # ---------------------------------------------------------------- battery

    def _battery_event(self, now, arg):
        permille = self.battery_permille()
        flags = 0
        if permille < self.policy("low_battery_permille", LOW_PERMILLE):
            flags |= 1
        if permille < self.policy("critical_permille", CRITICAL_PERMILLE):
            flags |= 2
        # battery's fields: now_ns, energy_used_uj, soc_permille, flags
        self._run_hook_values("battery", now, (now, self.energy_used_uj(), permille, flags))
        if self._battery_check(now):
            return
        period = self.policy("battery_report_ns", self.battery_report_ns)
        self.queue.push(now + period, self._battery_event, None)
        self._schedule_death(now, now + period)

    def _battery_check(self, now):
        """True (and the node stopped now) if the battery is dead. The death is dated when the
        node stops: a constant drain's closed-form nanosecond (the check is put there), or, with
        bursts, the check that finds the battery empty, at most half the time the previous check
        predicted after the burst that emptied it (see _schedule_death); the battery's own
        dead_at_ns is set to the same time, so every report gives one lifetime."""
        sched = self.scheduler
        if sched is None or self.dead_at_ns is not None or not sched.battery_dead():
            return self.dead_at_ns is not None
        batt = sched.battery
        boot = sched.boot_ns or 0
        if batt is not None and getattr(batt, "dead_at_ns", None) is not None and boot + batt.dead_at_ns < now:
            batt.dead_at_ns = now - boot
        self.dead_at_ns = now
        self.queue.stop()  # the event loop ends after this event
        self.events.append({"t_ns": now, "event": "battery_dead"})
        return True

    def _schedule_death(self, now, before, chained=False):
        """A check at the moment the battery empties at its present drain, if before ``before``
        (the closed form, computed once per battery report, never per event). While more than a
        millisecond is left the check goes halfway there and predicts again, at the faster of the
        report interval's drain and the last check's (a check's short interval may hold no burst),
        so a burst that empties the battery early is found soon after it (a few dozen checks in a
        node's life)."""
        batt = self.scheduler.battery if self.scheduler is not None else None
        empty_in = getattr(batt, "empty_in_ns", None)
        self._death_gen = gen = self._death_gen + 1  # one pending check at a time
        if empty_in is None:
            return
        if not chained:
            self._death_rate = batt.last_net_a  # the drain of a whole report interval
        elif batt.last_net_a is not None and (self._death_rate is None or batt.last_net_a > self._death_rate):
            self._death_rate = batt.last_net_a  # a check's short interval drained faster
        left = empty_in(self._death_rate)
        if left is not None and now + left < before:
            self.queue.push(now + (left if left <= 1000000 else (left + 1) // 2), self._battery_death, gen)

    def _battery_death(self, now, gen):
        if gen is not None and gen != self._death_gen:
            return  # superseded by a later prediction
        self.battery_permille()  # integrate the battery up to now
        if not self._battery_check(now):
            self._schedule_death(now, now + self.policy("battery_report_ns", self.battery_report_ns), True)

    def policy(self, name, default):
        """A parameter from the iot_policy map (programs and remote commands may change it); 0 = default."""
        index = _POLICY_INDEX.get(name)
        if index is None:
            index = _POLICY_INDEX[name] = wellknown.policy_index(name)
        buf = self.shared_maps["iot_policy"].values
        value = struct.unpack_from("<Q", buf, index * 8)[0] if len(buf) >= index * 8 + 8 else 0
        return value if value else default

    def _policy_values(self):
        """The iot_policy map as a tuple of u64 (the scheduler's param reader). While the map's
        bytes are unchanged the same tuple is returned, so the scheduler can skip the compare."""
        buf = self.shared_maps["iot_policy"].values
        n = wellknown.POLICY_SLOTS * 8
        cached = self._policy_cache
        if cached is not None and len(buf) >= n and buf[:n] == cached[0]:
            return cached[1]
        values = tuple(_array_values(self.shared_maps["iot_policy"], wellknown.POLICY_SLOTS))
        self._policy_cache = (bytes(buf[:n]), values) if len(buf) >= n else None
        return values

    # ---------------------------------------------------------------- reporting

    def summary(self):
        """Deterministic dict: per-hook stats, per-program stats, faults, radio, energy."""
        hooks = {}
        for name in HOOK_NAMES:
            hooks[name] = self.hook_stats[name].as_dict()
        programs = []
        for app in self.apps:
            for att in app.attached:
                programs.append({"app": app.name, "hook": att.hook.name, "section": att.section,
                                 "runs": att.runs, "instructions": att.insns, "faults": att.faults,
                                 "handler_ns": att.handler_ns, "detached": att.detached})
        out = {"node_id": self.node_id, "seed": self.seed, "now_ns": self.clock.now_ns(),
               "apps": [a.name for a in self.apps], "hooks": hooks, "programs": programs,
               "faults": self.fault_count, "fault_records": self.faults[:20], "events": list(self.events),
               "radio": {"tx": dict(self.tx), "rx": dict(self.rx)}, "logs": self.log_count,
               "battery_dead_ns": self.dead_at_ns}
        throttled = {}
        for app in self.apps:
            if app.throttled:
                throttled[app.name] = app.throttled
        if throttled:  # (only then: runs within their bounds report as before)
            out["throttled"] = {"apps": throttled, "hooks": dict(
                (name, self.hook_stats[name].throttled) for name in HOOK_NAMES if self.hook_stats[name].throttled)}
        if self.scheduler is not None:
            out["energy"] = self.scheduler.summary()
        return out


def _check_fields(hook, fields):
    """LoadError for an unknown hook or context field (events given from outside the node)."""
    h = HOOKS.get(hook)
    if h is None:
        raise LoadError("unknown hook %r (known: %s)" % (hook, ", ".join(HOOK_NAMES)))
    for name in fields:
        if name not in h.field_names:
            raise LoadError("hook %s has no context field %r (fields: %s)" % (hook, name, ", ".join(h.field_names)))


def _array_store(array_map, index, fmt, values):
    buf = array_map.values
    size = array_map.spec.value_size
    need = (index + 1) * size
    if len(buf) < need:
        buf.extend(bytes(need - len(buf)))
    struct.pack_into(fmt, buf, index * size, *values)


def _array_store_all(array_map, values):
    for i in range(len(values)):
        _array_store(array_map, i, "<Q", (values[i],))


def _array_values(array_map, count):
    buf = array_map.values
    if len(buf) >= count * 8:
        return list(struct.unpack_from("<%dQ" % count, buf, 0))
    out = []
    for i in range(count):
        if (i + 1) * 8 <= len(buf):
            out.append(struct.unpack_from("<Q", buf, i * 8)[0])
        else:
            out.append(0)
    return out


_DEMAND_KEYS = {}  # app id -> its u32 key in iot_app_demand


def _demand_add(demand_map, app_id, tx_bytes, rx_bytes, tx_packets, rx_packets):
    key = _DEMAND_KEYS.get(app_id)
    if key is None:
        key = _DEMAND_KEYS[app_id] = struct.pack("<I", app_id)
    fmt = wellknown.APP_DEMAND.fmt
    slot = demand_map.lookup_slot(key)
    if slot is None:
        demand_map.update(key, struct.pack(fmt, tx_bytes, rx_bytes, tx_packets, rx_packets))
        return
    # the entry exists: add in place, as a program's atomic adds to its value would
    buf = demand_map.values
    off = slot * demand_map.value_size
    a, b, c, d = struct.unpack_from(fmt, buf, off)
    struct.pack_into(fmt, buf, off, (a + tx_bytes) & 0xFFFFFFFFFFFFFFFF, (b + rx_bytes) & 0xFFFFFFFFFFFFFFFF,
                     (c + tx_packets) & 0xFFFFFFFF, (d + rx_packets) & 0xFFFFFFFF)
