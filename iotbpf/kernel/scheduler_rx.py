"""The scheduler's wake-up sampling (ContikiMAC / low-power listening): channel checks charged in
closed form, receptions deferred to the next check and serialised, the senders' strobing energy
reported apart. Part of the Scheduler class (kernel/scheduler_policy.py); the model is in
docs/energy.md. It must never look at wall-clock time or draw random numbers.
"""

from iotbpf.energy.attribution import SYSTEM


class WakeUpSampling:
    """Receiving for a Scheduler (a mixin: it uses the Scheduler's radio, timeline and parameters)."""

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
