"""App timers: arming, cancelling, and firing them (the event of a simulated node-year), with
the work bound applied to each expiry. A part of Runtime (kernel/runtime.py); MicroPython-compatible.
"""

from iotbpf.ebpf.engines.vm import UNLIMITED as _UNLIMITED
from iotbpf.ebpf.engines.vm import BPFFault
from iotbpf.kernel.appstate import MAX_LOG, RUN_COST
from iotbpf.kernel.hooks import HOOKS

_pack_timer = HOOKS["timer"].packer()  # the timer context, fields in declared order


class Timers:
    """Runtime's timer methods (Runtime inherits them)."""

    def arm_timer(self, app, timer_id, delay_ns, period_ns, jitter_ns=0):
        """(Re-)arm an app's timer: fires after delay_ns, then every period_ns (0 = once)."""
        timer = app.timers.get(timer_id)
        gen = (timer[0] + 1) if timer is not None else 1
        app.timers[timer_id] = [gen, period_ns, 0, jitter_ns]
        now = self.clock.now_ns()
        self.queue.push(now + delay_ns + self._jitter(jitter_ns), self._timer_fire, (app, timer_id, gen))

    def cancel_timer(self, app, timer_id):
        timer = app.timers.pop(timer_id, None)
        return timer is not None

    def _jitter(self, jitter_ns):
        if not jitter_ns or self.platform is None:
            return 0
        return self.platform.jitter_ns(jitter_ns)

    def _timer_fire(self, now, arg):
        """A timer expires: run the app's timer programs. In a simulated run (``_direct_end``
        set by run_until) a periodic timer whose next expiry would be the very next event to
        pop fires again here, without the heap: the same events in the same order.

        This is Runtime._run_each and _account inlined for one app's timer programs: the event
        of a node-year. Going through _run_each instead costs 5 % more instructions of a
        simulated sensor_node (1031 M against 978 M, ``bench/instructions.sh 10d``), so the copy
        stays; tests/kernel/test_runtime.py checks it against the heap loop and the work-bound
        tests against the other hooks."""
        app, timer_id, gen = arg
        queue = self.queue
        timers = app.timers
        stats = self._timer_stats
        out = app.env.trace_output
        while True:
            timer = timers.get(timer_id)
            if timer is None or timer[0] != gen:
                return  # cancelled or re-armed
            if app.work_left <= 0:
                back = self._throttled(app, now)
                if back is not None:
                    self._timer_throttled(app, timer_id, gen, timer, now, back)
                    return
            expirations = timer[2] + 1
            timer[2] = expirations
            period = timer[1]
            if period:
                # the next expiry takes its sequence number now, as a push here would
                seq = queue.take_seq()
                at = now + period
                if timer[3]:
                    at += self._jitter(timer[3])
            else:
                del timers[timer_id]
            # the hot path of a node-year: pack the timer context directly (layout from hooks.py)
            # and run the program with _account inlined
            stats.events += 1
            atts = self._timer_atts.get(app.id)
            if atts is None:
                atts = self._timer_atts[app.id] = tuple(a for a in self.hooks["timer"] if a.app is app)
            sched = self.scheduler
            for att in atts:
                if att.detached:
                    continue
                _pack_timer(att.ctx, 0, now, period, timer_id, expirations)
                vm = att.vm
                try:
                    vm.run_event(att.ctx_addr)
                except BPFFault as exc:
                    self._account(att, now, vm.last.insns_executed)
                    self._fault(att, stats, now, exc)
                    continue
                ex = vm.ex  # Execution.insns_executed, inlined (the run may not have set a budget)
                insns = (_UNLIMITED if ex.budget is None else ex.budget) - ex.left
                memo = att.run_memo.get(insns)
                if memo is None or att.run_memo_for is not sched:
                    memo = self._run_memo(att, insns)
                memo[2] += 1  # the run, for att's and the hook's statistics (Attached.fold)
                counter = memo[1]
                if counter is not None:
                    counter[0] += 1  # what sched.cpu_busy(now, busy, app.name) would count
                elif sched is not None:
                    sched.cpu_busy(now, memo[0], app.name)
                app.work_left -= insns + RUN_COST
                if out and len(out) > MAX_LOG:
                    del out[: len(out) - MAX_LOG]
            if not period:
                return
            end = self._direct_end
            if end is None or at >= end or self.dead_at_ns is not None or not queue.comes_first(at, seq):
                queue.push_seq(at, seq, self._timer_fire_bound, arg)
                return
            # (at, seq) would be the heap's minimum: pop it at once
            now = at
            self.clock.now = at
            self._direct_fired += 1


    def _timer_throttled(self, app, timer_id, gen, timer, now, back):
        """A timer of an app out of work credit expires at ``now``; the credit is back at
        ``back``. A periodic timer's expirations before then are dropped (counted) and it goes
        on at its first expiry after; a one-shot timer is deferred to ``back``."""
        period = timer[1]
        if period:
            skipped = (back - now + period - 1) // period
            at = now + skipped * period + (self._jitter(timer[3]) if timer[3] else 0)
        else:
            skipped = 1
            at = back
        app.throttled += skipped
        self._timer_stats.throttled += skipped
        self.queue.push(at, self._timer_fire_bound, (app, timer_id, gen))
