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
