"""The offline oracle: the least-energy radio schedule of a recorded trace under the documented model.

It knows the whole trace (packets to send with their deadlines, listen windows that were
required, packets that arrived over the air) and chooses burst times, which packets each
burst carries, and whether the radio sleeps or stays in rx in each gap; deadlines are hard.
Costs come from energy/radio.py's RadioTimeline, the same code the live policies are charged
by, and the chosen schedule is replayed through a Scheduler. Every cluster of packets up to
EXACT_MAX is solved by branch and bound over ordered bursts and candidate start times (exact
by the argument in docs/energy.md, checked against an exhaustive search in the tests); a larger
cluster gets the best schedule its heuristics find plus a certified lower bound, and the gap is
reported. docs/energy.md has the
model, the algorithm and its complexity. It must never look at wall-clock time or draw random
numbers.
"""

from iotbpf.energy.attribution import SYSTEM
from iotbpf.energy.radio import RadioTimeline
from iotbpf.kernel.scheduler_policy import Scheduler

EXACT_MAX = 6            # packets per cluster solved exactly
NODE_BUDGET = 400000     # search nodes per cluster before settling for the bound


class _Sink:
    """A ledger + attribution stand-in that only sums the energy above sleep of one radio (J)."""

    def __init__(self, radio):
        self.j = 0.0
        m = radio.model
        v = m.voltage_v
        self._dp = {}
        for state in m.states:
            self._dp[state] = m.current_a(state) * v - radio.p_sleep
        self._tr = {}
        for key, tr in m.transitions.items():
            self._tr[key] = (tr.time_ns, tr.time_ns * (tr.current_a * v - radio.p_sleep) * 1e-9)

    def add(self, comp, state, ns):
        self.j += ns * self._dp[state] * 1e-9

    def add_transition(self, comp, src, dst, count=1):
        tr = self._tr.get(src + ">" + dst)
        if tr is None or not tr[0]:
            return 0
        self.j += tr[1] * count
        return tr[0] * count

    def charge(self, app, comp, state, ns):
        pass

    def split(self, apps, comp, state, ns):
        pass


class Problem:
    """One trace for one radio: packets [(arrival, deadline, nbytes, app)], required listen
    windows [(start, end, app)] (requested, scheduled from the map, and each received packet's
    airtime), between ``start_ns`` and ``end_ns``."""

    def __init__(self, radio, packets, listens, start_ns, end_ns):
        self.radio = radio
        # a deadline no schedule can meet (shorter than a wake-up and the packet alone) is
        # moved to that earliest completion and counted
        self.impossible = 0
        fixed = []
        for a, d, n, app in sorted(packets, key=lambda p: (p[0], p[1])):
            soonest = a + radio.ramp_out_ns + radio.packet_ns(n)
            if d < soonest:
                self.impossible += 1
                d = soonest
            fixed.append((a, d, n, app))
        self.packets = fixed
        self.listens = sorted(listens)
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.dur = [radio.packet_ns(p[2]) for p in self.packets]
        self.air = [radio.airtime_ns(p[2]) for p in self.packets]
        self.fixed_j = [radio.packet_j(p[2]) for p in self.packets]


def _entries(prob, ids):
    """Queue entries of packets ``ids`` in the order a burst sends them (earliest deadline first)."""
    pk = prob.packets
    ids = sorted(ids, key=lambda i: (pk[i][1], i))
    return ids, [[pk[i][0], pk[i][1], pk[i][2], pk[i][3], prob.air[i]] for i in ids]


def _latest(prob, ids, ramp):
    """The latest start of a burst of ``ids`` (EDF order) with an entry ramp of ``ramp`` ns."""
    pk = prob.packets
    cum = ramp
    best = None
    for i in ids:
        cum += prob.dur[i]
        t = pk[i][1] - cum
        if best is None or t < best:
            best = t
    return best


class _Search:
    """Branch and bound over one cluster: the next burst (a subset of the packets left, its
    start time among the candidates, its entry from sleep or rx) until none is left."""

    def __init__(self, prob, ids, listens, tl, sink, budget):
        self.prob = prob
        self.ids = ids
        self.listens = listens
        self.tl = tl
        self.sink = sink
        self.budget = budget
        self.nodes = 0
        self.last_start = None    # start of the burst before the one being chosen
        self.best = None          # (energy, plan): the best schedule found so far
        r = prob.radio
        self.ramp_max = max(r.ramp_out_ns, r.ramp_in_ns)
        # the most a packet's burst can save against its fixed cost: the listening it displaces
        # (only where there is listening to displace), and an rx->tx ramp cheaper than rx
        shared = bool(listens) or r.tail_ns > 0
        ramp_save = max(0.0, r.ramp_in_ns * r.dp_rx * 1e-9 - r.cost_in)
        self.save_per = {i: (max(0.0, r.dp_rx) * prob.dur[i] * 1e-9 if shared else 0.0) + ramp_save
                         for i in ids}
        self.latest_alone = {i: _latest(prob, [i], min(r.ramp_in_ns, r.ramp_out_ns)) for i in ids}

    def feed_listens(self, k, t, plan):
        """Feed the listen windows starting at or before ``t`` (from index k); a gap before one
        is held in rx when that costs less than waking (exact: nothing else depends on it).
        Each window fed counts against the search budget, so dense windows cannot stall it."""
        tl = self.tl
        r = self.prob.radio
        listens = self.listens
        first = k
        while k < len(listens) and listens[k][0] <= t:
            s, e, app = listens[k]
            a = tl.awake_until
            if a >= self.prob.start_ns and s > a and r.dp_rx * (s - a) * 1e-9 < r.cost_wake_rx:
                tl.listen(a, s, SYSTEM)
                plan.append(("hold", a, s))
            tl.listen(s, e, app)
            plan.append(("listen", s, e, app))
            k += 1
        self.nodes += k - first  # windows fed are search work too: the budget bounds time
        return k

    def run(self, best=None):
        """Search from the current timeline state; ``best``: a known (energy, plan) to beat."""
        self.best = best
        self._dfs(frozenset(self.ids), 0, self.prob.start_ns - 1, [])
        return self.best, self.nodes <= self.budget

    def _bound(self, left):
        total = 0.0
        for i in left:
            total += self.prob.fixed_j[i] - self.save_per[i]
        return total

    def _dfs(self, left, k, last_t, plan):
        self.nodes += 1
        if self.nodes > self.budget:
            return
        tl = self.tl
        sink = self.sink
        if not left:
            state = tl.state()
            j0 = sink.j
            plan_len = len(plan)
            self.feed_listens(k, 1 << 62, plan)
            tl.settle_tail(1 << 62, cut=False)
            if self.best is None or sink.j < self.best[0] - 1e-15:
                self.best = (sink.j, list(plan))
            del plan[plan_len:]
            tl.restore(state)
            sink.j = j0
            return
        if self.best is not None and sink.j + self._bound(left) >= self.best[0] - 1e-15:
            return
        prob = self.prob
        r = prob.radio
        pk = prob.packets
        left_list = sorted(left)
        n = len(left_list)
        for mask in range(1, 1 << n):
            ids = [left_list[b] for b in range(n) if mask >> b & 1]
            release = max(pk[i][0] for i in ids)
            rest = [i for i in left_list if i not in ids]
            ids, entries = _entries(prob, ids)
            for from_rx in (False, True):
                ramp = r.ramp_in_ns if from_rx else r.ramp_out_ns
                latest = _latest(prob, ids, ramp)
                lo = max(release, last_t, tl.tx_until)
                if latest < lo:
                    continue
                dur = ramp + sum(prob.dur[i] for i in ids)
                cands = {lo, latest}
                for s, e, _app in self.listens:
                    # s - 1: the burst (its ramp) starts just before the window and displaces it
                    for c in (s, s - 1, e, s - dur, e - dur, e - 1):
                        if lo <= c <= latest:
                            cands.add(c)
                if tl.awake_until >= lo and tl.awake_until <= latest:
                    cands.add(tl.awake_until)
                for j in rest:
                    # end as j arrives or must start, directly or after a chain of the packets
                    # left that arrive before j, each in a burst of its own (ramp_in apart)
                    chain = dur
                    for m in rest:
                        if m != j and pk[m][0] < pk[j][0]:
                            chain += prob.dur[m] + r.ramp_in_ns
                    for end in (pk[j][0], _latest(prob, [j], r.ramp_in_ns)):
                        for c in (end - dur, end - chain):
                            if lo <= c <= latest:
                                cands.add(c)
                for t in sorted(cands):
                    self._try(left, k, plan, ids, entries, t, from_rx, rest)

    def _try(self, left, k, plan, ids, entries, t, from_rx, rest):
        tl = self.tl
        sink = self.sink
        r = self.prob.radio
        state = tl.state()
        j0 = sink.j
        plan_len = len(plan)
        if t <= tl.tx_until and self.last_start is not None and \
                max(self.prob.packets[i][0] for i in ids) <= self.last_start:
            return    # chained right after a burst that could have carried it: merging is no worse
        k2 = self.feed_listens(k, t, plan)
        awake = tl.awake(t)
        ok = True
        if from_rx and not awake:
            # stay in rx since the last activity, or wake to rx just before t (the wake-up's own
            # time, wake_rx_ns, must fit after boot and the previous burst)
            a = tl.awake_until
            h = a if (a >= self.prob.start_ns and t - a <= r.break_even_ns()) else t - 1
            if h == t - 1 and h - r.wake_rx_ns < max(self.prob.start_ns, tl.tx_until):
                ok = False
            else:
                tl.listen(h, t, SYSTEM)
                plan.append(("hold", h, t))
        elif not from_rx and awake:
            ok = False    # the same as from_rx (no choice): explored there
        if ok:
            ends = tl.burst(t, entries)
            for q, end in zip(entries, ends):
                if end > q[1]:
                    ok = False
                    break
            # every packet left must still fit in a burst of its own after this one
            for j in rest:
                if ok and self.latest_alone[j] < tl.tx_until:
                    ok = False
        if ok:
            plan.append(("burst", t, list(ids)))
            prev = self.last_start
            self.last_start = t
            self._dfs(left - frozenset(ids), k2, t, plan)
            self.last_start = prev
        del plan[plan_len:]
        tl.restore(state)
        sink.j = j0


def _clusters(prob):
    """Split the packets into clusters that cannot interact: the next arrival comes later than
    every deadline so far plus the longest gap worth staying awake for, a tail and a ramp."""
    r = prob.radio
    horizon = r.break_even_ns() + r.tail_ns + max(r.ramp_out_ns, r.ramp_in_ns, r.wake_rx_ns) + 1
    pk = prob.packets
    out = []
    cur = []
    reach = None
    for i, p in enumerate(pk):
        if cur and p[0] > reach + horizon:
            out.append(cur)
            cur = []
        cur.append(i)
        d = max(p[1], p[0] + prob.dur[i])
        reach = d if reach is None or d > reach or len(cur) == 1 else reach
    if cur:
        out.append(cur)
    return out


def _greedy(prob, ids, listens, tl, sink):
    """A feasible schedule for a cluster too big to search: each packet sent at its arrival
    with whatever else is waiting, as late as the earliest deadline among them allows."""
    pk = prob.packets
    plan = []
    search = _Search(prob, ids, listens, tl, sink, 0)
    k = 0
    todo = sorted(ids, key=lambda i: pk[i][0])
    i = 0
    r = prob.radio
    while i < len(todo):
        group = [todo[i]]
        i += 1
        g_ids, entries = _entries(prob, group)
        t = max(pk[todo[i - 1]][0], tl.tx_until)
        k = search.feed_listens(k, t, plan)
        if tl.awake_until >= prob.start_ns and not tl.awake(t) and r.hold_pays(t - tl.awake_until):
            plan.append(("hold", tl.awake_until, t))
            tl.listen(tl.awake_until, t, SYSTEM)
        tl.burst(t, entries)
        plan.append(("burst", t, g_ids))
    search.feed_listens(k, 1 << 62, plan)
    tl.settle_tail(1 << 62, cut=False)
    return plan


def _rolling(prob, ids, listens, tl, sink):
    """A feasible schedule for a cluster too big to search whole: consecutive chunks of EXACT_MAX
    packets (by arrival) searched one after the other from where the previous left the radio,
    each with the listen windows before the next chunk; a chunk the search cannot place is sent
    greedily."""
    pk = prob.packets
    order = sorted(ids, key=lambda i: (pk[i][0], pk[i][1]))
    plan = []
    li = 0
    for c in range(0, len(order), EXACT_MAX):
        chunk = order[c:c + EXACT_MAX]
        nxt = pk[order[c + EXACT_MAX]][0] if c + EXACT_MAX < len(order) else None
        mine = []
        while li < len(listens) and (nxt is None or listens[li][0] < nxt):
            mine.append(listens[li])
            li += 1
        state = tl.state()
        j0 = sink.j
        search = _Search(prob, chunk, mine, tl, sink, NODE_BUDGET // 8)
        best, _complete = search.run()
        tl.restore(state)
        sink.j = j0
        part = best[1] if best is not None else _greedy(prob, chunk, mine, tl, sink)
        tl.restore(state)
        sink.j = j0
        _apply(prob, tl, part)
        plan.extend(part)
    tl.settle_tail(1 << 62, cut=False)
    return plan


def _batch_like(prob, ids, listens, tl, sink):
    """Another feasible schedule for a big cluster, the live batching rule with hindsight: the
    queue goes out at the start of a listen window, or at the latest start that meets all its
    deadlines from sleep, whichever comes first."""
    pk = prob.packets
    r = prob.radio
    events = [(pk[i][0], 1, i) for i in ids] + [(s, 0, k) for k, (s, _e, _a) in enumerate(listens)]
    events.sort()
    plan = []
    queue = []
    search = _Search(prob, [], listens, tl, sink, 0)
    k = 0

    def send(t):
        g_ids, entries = _entries(prob, queue)
        t = max(t, tl.tx_until)
        plan.append(("burst", t, g_ids))
        tl.burst(t, entries)
        del queue[:]

    for t, kind, _x in events + [(1 << 62, 2, None)]:
        while queue:
            due = _latest(prob, _entries(prob, queue)[0], r.ramp_out_ns)
            if due >= t:
                break
            k = search.feed_listens(k, due, plan)
            send(due)
        if kind == 0:
            k = search.feed_listens(k, t, plan)
            if queue:
                send(t)
        elif kind == 1:
            queue.append(_x)
    search.feed_listens(k, 1 << 62, plan)
    tl.settle_tail(1 << 62, cut=False)
    return plan


def _lower_bound(prob, ids, listens, state):
    """A certified lower bound for a cluster: its listen windows alone (optimal holds), every
    packet's fixed cost minus the listening it could displace (a burst displaces only listening
    inside its own span, so packet i at most the windows' listening between its arrival and its
    deadline, and at most its own time plus a ramp; a tail or a hold is listening the schedule
    itself added, never below zero net), minus one free wake-up per window that a packet's
    burst could touch, and one entry ramp for each burst the deadlines force."""
    r = prob.radio
    sink = _Sink(r)
    tl = RadioTimeline(r, sink, sink)
    tl.restore(state)
    search = _Search(prob, [], listens, tl, sink, 0)
    search.feed_listens(0, 1 << 62, [])
    ramp_max = max(r.ramp_out_ns, r.ramp_in_ns)
    union = []
    for s, e, _app in sorted(listens):
        if union and s <= union[-1][1]:
            if e > union[-1][1]:
                union[-1][1] = e
        else:
            union.append([s, e])
    dp = max(0.0, r.dp_rx)
    pk = prob.packets
    total = sink.j
    touched = 0
    reach = r.tail_ns + r.break_even_ns() + ramp_max
    for s, e in union:
        for i in ids:
            if s <= pk[i][1] + reach and e >= pk[i][0] - reach:
                touched += 1
                break
    displaced = 0
    for i in ids:
        total += prob.fixed_j[i]
        lo, hi = pk[i][0], pk[i][1]
        overlap = 0
        for s, e in union:
            if s < hi and e > lo:
                overlap += min(e, hi) - max(s, lo)
        displaced += min(overlap, prob.dur[i] + ramp_max)
    # bursts never overlap one another: together they displace at most all the windows' listening
    displaced = min(displaced, sum(e - s for s, e in union))
    total -= dp * displaced * 1e-9
    total -= touched * r.cost_wake_rx
    # every burst pays an entry ramp; a burst starting at t carries only packets with
    # arrival <= t <= deadline - own time, so the bursts are at least the fewest points that
    # stab every such interval (the greedy by right end is optimal for that)
    spans = sorted((pk[i][1] - prob.dur[i], pk[i][0]) for i in ids)
    bursts = 0
    last = None
    for right, left in spans:
        if last is None or left > last:
            bursts += 1
            last = right
    total += max(1, bursts) * min(r.cost_in, r.cost_out)
    # the cluster's last burst keeps the radio in rx for its whole tail (nothing comes after it
    # within a tail: clusters are that far apart), except where a window listens anyway
    if r.tail_ns:
        total += dp * max(0, r.tail_ns - sum(e - s for s, e in union)) * 1e-9
    return total


def solve(prob):
    """The least-energy schedule of ``prob``: (energy above sleep J, plan, lower bound J, exact).

    ``plan``: [("listen", s, e, app) | ("hold", s, e) | ("burst", t, [packet ids])] in time order."""
    r = prob.radio
    sink = _Sink(r)
    tl = RadioTimeline(r, sink, sink)
    clusters = _clusters(prob)
    pk = prob.packets
    listens = prob.listens
    plan = []
    lower = 0.0
    exact = True
    li = 0
    for c, ids in enumerate(clusters):
        nxt = pk[clusters[c + 1][0]][0] if c + 1 < len(clusters) else None
        mine = []
        while li < len(listens) and (nxt is None or listens[li][0] < nxt):
            mine.append(listens[li])
            li += 1
        state = tl.state()
        j0 = sink.j
        greedy_plan, greedy_j, greedy_ok = None, 0.0, False
        for heuristic in ((_greedy,) if len(ids) <= EXACT_MAX else (_rolling, _batch_like)):
            plan_h = heuristic(prob, ids, mine, tl, sink)
            j_h = sink.j - j0
            ok_h = _meets_deadlines(prob, tl, state, plan_h)
            tl.restore(state)
            sink.j = j0
            if greedy_plan is None or (ok_h and (not greedy_ok or j_h < greedy_j)):
                greedy_plan, greedy_j, greedy_ok = plan_h, j_h, ok_h
        best = None
        complete = False
        if len(ids) <= EXACT_MAX:
            search = _Search(prob, ids, mine, tl, sink, NODE_BUDGET)
            best, complete = search.run((sink.j + greedy_j, greedy_plan) if greedy_ok else None)
            tl.restore(state)
            sink.j = j0
            if best is None and complete:
                # no schedule meets every deadline of this cluster: the ones the greedy schedule
                # misses are moved to its completion times (counted), then the search runs again
                _relax(prob, tl, state, greedy_plan)
                greedy_ok = True
                search = _Search(prob, ids, mine, tl, sink, NODE_BUDGET)
                best, complete = search.run((sink.j + greedy_j, greedy_plan))
                tl.restore(state)
                sink.j = j0
        if best is not None and (not greedy_ok or best[0] - j0 <= greedy_j):
            chosen = best[1]
            if complete:
                lower += best[0] - j0
            else:
                exact = False
                lower += _lower_bound(prob, ids, mine, state)
        else:
            chosen = greedy_plan
            if not greedy_ok:
                _relax(prob, tl, state, greedy_plan)
            exact = exact and complete
            lower += greedy_j if complete else _lower_bound(prob, ids, mine, state)
        _apply(prob, tl, chosen)
        plan.extend(chosen)
    if not clusters:
        search = _Search(prob, [], listens, tl, sink, 0)
        search.feed_listens(0, 1 << 62, plan)
        lower = sink.j
    tl.settle_tail(1 << 62, cut=False)
    if exact:
        lower = sink.j
    return sink.j, plan, min(lower, sink.j), exact


def _relax(prob, tl, state, plan):
    """Move each deadline ``plan`` misses (run from ``state``) to the packet's completion; counted
    in ``prob.impossible``."""
    sink = _Sink(prob.radio)
    scratch = RadioTimeline(prob.radio, sink, sink)
    scratch.restore(state)
    for i, end in _apply(prob, scratch, plan).items():
        a, d, n, app = prob.packets[i]
        if end > d:
            prob.packets[i] = (a, end, n, app)
            prob.impossible += 1


def _meets_deadlines(prob, tl, state, plan):
    """True when ``plan`` run from timeline ``state`` completes every packet by its deadline."""
    sink = _Sink(prob.radio)
    scratch = RadioTimeline(prob.radio, sink, sink)
    scratch.restore(state)
    done = _apply(prob, scratch, plan)
    return all(done[i] <= prob.packets[i][1] for i in done)


def _apply(prob, tl, plan):
    """Run ``plan`` on the timeline ``tl``; returns the completion time of every packet sent."""
    done = {}
    for step in plan:
        if step[0] == "burst":
            ids, entries = _entries(prob, step[2])
            for i, end in zip(ids, tl.burst(step[1], entries)):
                done[i] = end
        else:
            tl.listen(step[1], step[2], step[3] if step[0] == "listen" else SYSTEM)
    return done


def deferral_slack(radio, rx, listens, packets):
    """How much less than the oracle's schedule (each packet received as it arrives) a receiver
    may spend when senders repeat their packets for ``reach`` ns (a wake-up-sampling MAC), J.

    Move every reception of the best such schedule back to its arrival: a reception whose reach
    (arrival to arrival + reach + two copies, widened by the break-even time, a tail and a ramp)
    holds no other activity paid its own wake-up and airtime there as it does at its arrival
    (0); one whose reach meets only other receptions (which never overlap it: the receiver takes
    one packet at a time) may have shared a wake-up with them (one wake-up); one whose reach meets
    other listening or a burst (a required window, a packet between its arrival and deadline)
    may have had its airtime paid by that listening, shared a wake-up, and left a wake-up or a
    ramp difference behind (its airtime in rx, two wake-ups and the ramp difference). The sum
    over deferrable receptions is subtracted from the lower bound (docs/energy.md)."""
    r = radio
    reach_any = False
    for entry in rx:
        if entry[3]:
            reach_any = True
            break
    if not reach_any:
        return 0.0
    margin = r.break_even_ns() + r.tail_ns + max(r.ramp_out_ns, r.ramp_in_ns, r.wake_rx_ns) + 1
    merged = _merge([(s, s + d) for s, d, _app in listens] + [(p[0], p[1]) for p in packets], margin)
    starts = [m[0] for m in merged]
    zones = [(t - margin, t + reach + 2 * (air + r.ack_ns) + margin) for t, air, _n, reach in rx]
    # receptions whose reach zones overlap another's: [lo, hi, count] of each run of overlaps
    runs = _merge(zones, 0, count=True)
    rstarts = [m[0] for m in runs]
    near_j = 2 * r.cost_wake_rx + abs(r.cost_out - r.cost_in)
    total = 0.0
    for (_t, air, _n, reach), (lo, hi) in zip(rx, zones):
        if not reach:
            continue
        k = _bisect_right(starts, hi) - 1
        if k >= 0 and merged[k][1] >= lo:
            total += near_j + air * max(0.0, r.dp_rx) * 1e-9
        elif runs[_bisect_right(rstarts, lo) - 1][2] > 1:
            total += r.cost_wake_rx
    return total


def _merge(spans, margin, count=False):
    """[[lo, hi(, count)]] of ``spans`` joined where they overlap or come within 2 x ``margin``."""
    out = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 2 * margin:
            if hi > out[-1][1]:
                out[-1][1] = hi
            if count:
                out[-1][2] += 1
        else:
            out.append([lo, hi, 1] if count else [lo, hi])
    return out


def _bisect_right(xs, x):
    lo, hi = 0, len(xs)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < xs[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def replay(source, end_ns=None):
    """The oracle for ``source``'s recorded trace (a Scheduler made with record=True): the optimal
    radio schedule and the minimum-energy CPU frequencies, replayed through a Scheduler, which is
    returned. Its ``oracle_info``: energy_j, lower_bound_j (equal when exact), gap (relative),
    exact, bursts, impossible (deadlines no schedule meets, relaxed to the soonest completion)."""
    start = source.boot_ns or 0
    end = source.now_ns if end_ns is None else end_ns
    rep = Scheduler("planned", source.board, {"record": False})
    rep.policy_values = list(source.policy_values)
    rep.boot(start)
    rep._next_listen = None
    gap_j = 0.0
    exact = True
    bursts = 0
    impossible = 0
    if rep.radio is not None:
        listens = [(s, s + d, app) for s, d, app in source.trace_listen]
        listens += [(t, t + air, SYSTEM) for t, air, _n, _reach in source.trace_rx]
        prob = Problem(rep.rm, source.trace_tx, listens, start, end)
        energy, plan, lower, exact = solve(prob)
        slack = deferral_slack(rep.rm, source.trace_rx, source.trace_listen, prob.packets)
        if slack > 0.0:
            lower -= slack
            exact = False
        gap_j = energy - lower
        impossible = prob.impossible
        rep.stats["missed"] += impossible
        for step in plan:
            if step[0] == "burst":
                rep._burst(step[1], _entries(prob, step[2])[1])
                bursts += 1
            else:
                rep.tl.listen(step[1], step[2], step[3] if step[0] == "listen" else SYSTEM)
        rep.stats["listen_ns"] = rep.tl.listen_ns
        rep.tl.settle_tail(end, cut=False)
    for (busy, app), count in source.trace_cpu.items():
        for _ in range(count):
            rep.cpu_busy(start, busy, app)
    for (sensor, app), count in source.trace_sensor.items():
        for _ in range(count):
            rep.sensor_read(start, sensor, app)
    for (dur, app), count in source.trace_wakelock.items():
        for _ in range(count):
            rep.hold_wakelock(start, dur, app)
    rep.advance(end)
    rep.flush()
    total = rep.energy_used_j()
    rep.oracle_info = {"energy_j": total, "lower_bound_j": total - gap_j,
                       "gap": (gap_j / total) if total else 0.0, "exact": exact, "bursts": bursts,
                       "impossible": impossible}
    return rep
