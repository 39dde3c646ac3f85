"""An energy-neutral duty-cycle controller in the spirit of Kansal, Hsu, Zahedi & Srivastava,
"Power management in energy harvesting sensor networks", ACM Trans. Embedded Computing Systems
6(4), 2007.

Harvest prediction (their section 3): the day is cut into ``slots`` slots; the prediction for a
slot is an exponentially weighted moving average across days of the energy harvested in that slot,
``pred = alpha * pred + (1 - alpha) * observed``. Duty cycle (their section 4, energy-neutral
operation): the node's load at sampling period T is P(T) = P_floor + e_sample / T; over the next
day a slot's surplus is stored at the battery's charge efficiency, a deficit is drawn; the
controller picks the shortest period whose predicted net storage over the day is at least the
correction that brings the battery back to ``target_soc`` within ``recover_days`` (their
adaptation to the battery's actual level), clamped to [period_min_ns, period_max_ns].

The node learns e_sample from what it consumed per sample in the last slot (the ledger) and
P_floor from the board's sleep currents. It acts through a map: every slot it writes the period
into the app's map (``map_name``, a u64 at ``offset``), which the app's timer program reads and
re-arms itself with (apps/neutral_node). One event per slot, no per-event cost.
MicroPython-compatible.
"""

import struct

from iotbpf.energy.models import ModelError

NS_PER_S = 1000000000
DAY_NS = 86400 * NS_PER_S


def floor_power_w(board):
    """The board's power with every component asleep (CPU and radio in their sleep states)."""
    total = 0.0
    for comp, model in board.models.items():
        state = model.default_state
        if comp == board.cpu["component"]:
            state = board.cpu["sleep_state"]
        elif board.radio is not None and comp == board.radio["component"]:
            state = board.radio["sleep_state"]
        total += model.power_w(state)
    return total


def neutral_period_ns(predicted_j, slot_s, floor_w, sample_j, eta, want_net_j, period_min_ns, period_max_ns):
    """Shortest sampling period (ns, clamped) whose day of slots stores at least ``want_net_j``
    net: each slot stores eta x (harvest - load) when positive and draws the deficit otherwise."""

    def net(period_ns):
        load = (floor_w + sample_j * NS_PER_S / period_ns) * slot_s
        total = 0.0
        for h in predicted_j:
            d = h - load
            total += eta * d if d > 0 else d
        return total

    if net(period_min_ns) >= want_net_j:
        return period_min_ns
    if net(period_max_ns) < want_net_j:
        return period_max_ns
    lo, hi = period_min_ns, period_max_ns  # net(lo) < want <= net(hi); net grows with the period
    while hi - lo > NS_PER_S:
        mid = (lo + hi) // 2
        if net(mid) >= want_net_j:
            hi = mid
        else:
            lo = mid
    return hi


class EnergyNeutral:
    """Per-slot EWMA harvest prediction and an energy-neutral sampling period for one app."""

    def __init__(self, slots=24, alpha=0.5, period_min_ns=60 * NS_PER_S, period_max_ns=3600 * NS_PER_S,
                 target_soc=0.6, recover_days=3.0, map_name=".data.duty", offset=0):
        if slots < 1 or DAY_NS % slots:
            raise ModelError("energy-neutral: slots must divide the day (got %r)" % (slots,))
        if not 0.0 <= alpha < 1.0 or not 0 < period_min_ns <= period_max_ns:
            raise ModelError("energy-neutral: alpha in [0, 1), 0 < period_min_ns <= period_max_ns")
        self.slots = slots
        self.slot_ns = DAY_NS // slots
        self.alpha = alpha
        self.period_min_ns = period_min_ns
        self.period_max_ns = period_max_ns
        self.target_soc = target_soc
        self.recover_days = recover_days
        self.map_name = map_name
        self.offset = offset
        self.pred = [None] * slots
        self.sample_j = None
        self.period_ns = None
        self.history = []  # (t_ns, period_ns, soc, harvested_j in the slot, predicted day J)

    def attach(self, runtime, app_name):
        """Drive ``app_name`` on ``runtime`` (its scheduler must have a battery and a harvester)."""
        sched = runtime.scheduler
        if sched is None or getattr(sched, "harvester", None) is None:
            raise ModelError("energy-neutral: the node needs an energy scheduler with a harvester")
        app = None
        for a in runtime.apps:
            if a.name == app_name:
                app = a
        if app is None or self.map_name not in app.maps:
            raise ModelError("energy-neutral: app %r with a map %r not loaded" % (app_name, self.map_name))
        self.runtime = runtime
        self.sched = sched
        self.map = app.maps[self.map_name]
        self.floor_w = floor_power_w(sched.board)
        self.eta = getattr(sched.battery, "charge_eff", 1.0)
        now = runtime.clock.now_ns()
        self._mark = (now, 0.0, runtime.hook_stats["timer"].runs)
        runtime.queue.push(now + self.slot_ns, self._slot, None)

    def _slot(self, now, arg):
        rt = self.runtime
        sched = self.sched
        t0, used0, runs0 = self._mark
        rt.battery_permille()  # integrates energy and battery up to now
        used = sched.energy_used_j()
        runs = rt.hook_stats["timer"].runs
        harvested = sched.harvester.energy_j(t0 - (sched.boot_ns or 0), now - (sched.boot_ns or 0))
        self._mark = (now, used, runs)
        dt_s = (now - t0) * 1e-9
        n = runs - runs0
        if n > 0:
            e = (used - used0 - self.floor_w * dt_s) / n
            if e > 0:
                self.sample_j = e if self.sample_j is None else 0.5 * (self.sample_j + e)
        slot = ((t0 - (sched.boot_ns or 0)) // self.slot_ns) % self.slots
        old = self.pred[slot]
        self.pred[slot] = harvested if old is None else self.alpha * old + (1.0 - self.alpha) * harvested
        batt = sched.battery
        soc = batt.soc()
        day_j = None
        if self.sample_j is not None and None not in self.pred:
            capacity_j = batt.capacity_c * batt.voltage_v
            want = (self.target_soc - soc) * capacity_j / self.recover_days
            self.period_ns = neutral_period_ns(self.pred, self.slot_ns * 1e-9, self.floor_w, self.sample_j,
                                               self.eta, want, self.period_min_ns, self.period_max_ns)
            day_j = sum(self.pred)
            self._write(self.period_ns)
        self.history.append((now, self.period_ns, soc, harvested, day_j))
        if rt.dead_at_ns is None:
            rt.queue.push(now + self.slot_ns, self._slot, None)

    def _write(self, period_ns):
        buf = self.map.values
        need = self.offset + 8
        if len(buf) < need:
            buf.extend(bytes(need - len(buf)))
        struct.pack_into("<Q", buf, self.offset, period_ns)
