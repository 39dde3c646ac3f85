"""Energy-aware radio/CPU scheduler: the policies (scheduler_policy.py), the oracle
(oracle.py) and their comparison, under one name for callers (``from iotbpf.kernel.scheduler
import make_scheduler, compare, oracle, POLICIES``). The model is in docs/energy.md.
"""

from iotbpf.energy.radio import RadioModel, RadioTimeline, lora_time_on_air_ns  # noqa: F401 (re-export)
from iotbpf.kernel.oracle import replay
from iotbpf.kernel.scheduler_base import NS_PER_DAY, NS_PER_S, SchedulerBase  # noqa: F401 (re-export)
from iotbpf.kernel.scheduler_policy import (  # noqa: F401 (re-export)
    CPU_POLICIES,
    DEFAULTS,
    PARAM_NAMES,
    POLICIES,
    Scheduler,
)


def make_scheduler(policy_name, board, params=None):
    """A Scheduler for ``policy_name`` (see POLICIES) on ``board`` (Board, name or path)."""
    return Scheduler(policy_name, board, params, offline=replay if policy_name == "oracle" else None)


def run_trace(sched, end_ns, tx=(), listens=(), rx=(), cpu=(), tx_app=None):
    """Drive a booted live scheduler through a trace without the VM, the live counterpart of
    ``oracle``: (t, nbytes, relative deadline) packets to send, (t, duration) listen requests,
    (t, nbytes) arrivals over the air and (t, busy ns) CPU bursts, each told at its time (at one
    instant: listens, then sends, then arrivals and bursts) with the scheduler's own wake-ups in
    between; ``tx_app(nbytes)`` names a packet's app ("app" by default). Returns ``sched``, flushed."""
    events = [(t, 1, "tx", n, d) for t, n, d in tx] + [(t, 0, "listen", d, 0) for t, d in listens] \
        + [(t, 2, "rx", n, 0) for t, n in rx] + [(t, 2, "cpu", b, 0) for t, b in cpu]
    events.sort(key=lambda e: (e[0], e[1]))

    def catch_up(t):
        while True:
            wake = sched.next_wakeup_ns()
            if wake is None or wake > t:
                return
            sched.advance(wake)
            sched.on_wakeup(wake)

    for t, _order, kind, x, d in events:
        catch_up(t)
        sched.advance(t)
        if kind == "tx":
            sched.enqueue_tx(t, x, t + d, tx_app(x) if tx_app is not None else "app")
        elif kind == "listen":
            sched.request_listen(t, x, "listener")
        elif kind == "rx":
            sched.rx_arrival(t, x)
        else:
            sched.cpu_busy(t, x, "app")
    catch_up(end_ns)
    sched.advance(end_ns)
    sched.flush()
    return sched


def oracle(source, end_ns=None):
    """The offline optimum of ``source``'s recorded trace, replayed (kernel/oracle.py)."""
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
