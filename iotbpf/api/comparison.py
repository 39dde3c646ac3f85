"""``compare``: one simulation per scheduler policy, same seed and events, against the offline
oracle; ``Comparison`` holds the rows and prints the table."""

from __future__ import annotations

import os
from typing import Any

from iotbpf.api.node import Node, duration_ns
from iotbpf.ebpf.errors import IotbpfError


class Comparison(list):
    """Rows of a policy comparison (a list of dicts: policy, energy_j, average_current_a,
    lifetime_days, deadline_misses, ratio_to_oracle), plus an "oracle" row: the minimum energy
    for the same events. ``text()`` is the table ``iotbpf simulate --compare`` prints."""

    policies: list = []   # the comparison document's rows (own span, avg power, death) of these runs

    def text(self) -> str:
        from iotbpf.report.text import format_comparison

        return format_comparison(self.policies)

    def row(self, policy: str) -> dict:
        """The row of one policy (KeyError if it was not compared)."""
        for r in self:
            if r["policy"] == policy:
                return r
        raise KeyError(policy)


def compare(policies: list | tuple | str, app: str | os.PathLike = "sensor_node", board: str | None = None,
            days: float = 30, seed: int = 0, duration: str | int | None = None,
            events: Any = None) -> Comparison:
    """Simulate ``app`` once per scheduler policy (same seed, same events) and compare them with
    the offline oracle, as ``iotbpf simulate APP --compare P1,P2`` does.

    ``policies``: names from ``iotbpf.kernel.scheduler.POLICIES`` (always_on, duty_cycle,
    batching, dvfs, race, oracle) as a list or a comma-separated string; ``duration`` (e.g.
    "12h") overrides ``days``. Returns a Comparison (list of row dicts; ``.text()`` for the table).
    """
    from iotbpf.kernel.scheduler import POLICIES
    from iotbpf.kernel.scheduler import compare as _compare

    if isinstance(policies, str):
        policies = [p.strip() for p in policies.split(",") if p.strip()]
    policies = list(policies)
    if not policies:
        raise IotbpfError("compare needs at least one policy (known: %s)" % ", ".join(POLICIES))
    for p in policies:
        if p not in POLICIES:
            raise IotbpfError("unknown policy %r (known: %s)" % (p, ", ".join(POLICIES)))
    if len(set(policies)) != len(policies):
        raise IotbpfError("a policy is listed twice: %s" % ", ".join(policies))
    if duration is None:
        if not isinstance(days, (int, float)) or days <= 0:
            raise IotbpfError("days must be a positive number, not %r" % (days,))
        duration = int(round(days * 86400)) * 1000000000
    ns = duration_ns(duration)
    from iotbpf.report.export import comparison_rows

    schedulers, dead = {}, {}
    for policy in policies:
        node = Node(app, board=board, seed=seed, policy=policy, events=events)
        runtime = node.build()
        if node.scheduler is None:
            raise IotbpfError("compare needs a board (board=..., or \"board\" in app.json)")
        node.simulate(ns, samples=0)
        schedulers[policy] = node.scheduler
        dead[policy] = runtime.dead_at_ns
    rows = Comparison(_compare(schedulers))
    rows.policies = comparison_rows(schedulers, list(rows), dead)
    return rows
